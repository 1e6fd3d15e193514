"""The console's analytics page (`/console/analytics`) and the operator's, on real data: two
customers make generations through the real API at a known price (the tenant's 20 % markup
over the platform's wholesale price), the rollups are built as the periodic job builds them
(`billing.usage.rollup`), and the browser then reads the credits panel's table view (exact
credits and dates), switches its group-by, downloads its CSV, reads the segments and their
margin, opens a segment's customers, and changes the time zone to see the days move. The
overview's margin figure, the operator's platform/tenants/providers/breakers panels, axe and
screenshots (desktop and phone, English and Arabic).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Locator, Page, expect

from billing.usage import rollup
from plugins.errors import ProviderError
from tests.portal.conftest import Portal, axe_violations
from tests.portal.test_console import owner_page
from tests.portal.test_operator import operator_page

MARKUP_BPS = 2_000


def credits(mc: int) -> str:
    """Millicredits as the tables show them: credits with three decimals."""
    return f"{mc / 1000:,.3f}"


def day(d: date) -> str:
    """A calendar day as the English tables show it (`Dec 5, 2026`)."""
    return f"{d:%b} {d.day}, {d.year}"


class World:
    """What the test made: the per-generation prices, the generations' creation moments and
    the customers' ids by external id."""

    def __init__(self, wholesale_mc: int, retail_mc: int, created: list[datetime],
                 customers: dict[str, str]) -> None:
        self.wholesale_mc = wholesale_mc
        self.retail_mc = retail_mc
        self.created = created
        self.customers = customers


async def make_world(portal: Portal) -> World:
    """alice makes two images, bob one, at the tenant's price; rollups built."""
    auth = portal.tenant_auth
    r = await portal.api.patch("/v1/tenant", headers=auth,
                               json={"pricing": {"markup_bps": {"default": MARKUP_BPS}}})
    assert r.status_code == 200, r.text
    example = await portal.api.post("/v1/tenant/pricing/example", headers=auth,
                                    json={"type": "image", "provider": "local-image"})
    assert example.status_code == 200, example.text
    wholesale = example.json()["wholesale_mc"]
    # Retail is wholesale raised by the markup, rounded up to a whole millicredit.
    retail = -(-wholesale * (10_000 + MARKUP_BPS) // 10_000)
    assert example.json()["retail_mc"] == retail
    assert retail > wholesale > 0
    customers: dict[str, str] = {}
    created: list[datetime] = []
    for external_id, n in (("alice", 2), ("bob", 1)):
        c = await portal.api.post("/v1/customers", headers=auth, json={"external_id": external_id})
        assert c.status_code == 201, c.text
        customers[external_id] = c.json()["id"]
        g = await portal.api.post(f"/v1/customers/{c.json()['id']}/credits",
                                  headers={**auth, "Idempotency-Key": f"seed-{external_id}"},
                                  json={"amount": 100_000, "reason": "test"})
        assert g.status_code in (200, 201), g.text
        for _ in range(n):
            made = await portal.api.post(
                "/v1/generations",
                headers={**auth, "X-Customer-Id": external_id, "Prefer": "wait=60"},
                json={"type": "image", "prompt": "a red fox", "provider": "local-image"})
            assert made.status_code == 200, made.text
            assert made.json()["status"] == "succeeded"
            created.append(datetime.fromisoformat(made.json()["created_at"]))
    for external_id, n in (("alice", 2), ("bob", 1)):
        b = await portal.api.get("/v1/credits/balance",
                                 headers={**auth, "X-Customer-Id": external_id})
        assert b.json()["available"] == 100_000 - n * retail, b.text
    assert portal.services is not None
    await rollup.rebuild_since(portal.services.runtime.db, portal.tenant_id, None)
    return World(wholesale, retail, created, customers)


async def set_period(page: Page, start: date, end: date) -> None:
    picker = page.locator(".period-picker")
    await picker.get_by_label("From").fill(start.isoformat())
    await picker.get_by_label("To").fill(end.isoformat())


def credits_panel(page: Page) -> Locator:
    return page.locator(".chart-panel").filter(
        has=page.get_by_role("heading", name=re.compile("^Credits over time")))


async def table_rows(panel: Locator) -> Locator:
    await panel.get_by_role("button", name="Table").click()
    return panel.locator("tbody tr")


async def test_the_analytics_page_reads_real_rollups(portal: Portal) -> None:
    w = await make_world(portal)
    today = datetime.now(UTC).date()
    [made_on] = {c.astimezone(UTC).date() for c in w.created}
    page = await owner_page(portal, then="/console/analytics")
    await expect(page.get_by_test_id("time-zone")).to_contain_text("UTC")
    await set_period(page, today - timedelta(days=2), today + timedelta(days=2))

    # ROI: 3 generations, retail charged, wholesale paid, margin and its share.
    charged, paid = 3 * w.retail_mc, 3 * w.wholesale_mc
    pct = f"{(charged - paid) / charged * 100:.1f}".rstrip("0").rstrip(".")
    await expect(page.get_by_test_id("roi")).to_have_text(
        f"This period: {credits(charged).rstrip('0').rstrip('.')} credits charged, "
        f"{credits(paid).rstrip('0').rstrip('.')} credits paid wholesale, margin "
        f"{credits(charged - paid).rstrip('0').rstrip('.')} credits ({pct}%).")

    panel = credits_panel(page)
    await expect(panel).to_have_attribute("data-state", "ready")
    rows = await table_rows(panel)
    await expect(panel.locator("th[scope=col]")).to_have_text(
        ["Period", "Group", "Generations", "Credits charged", "Wholesale credits"])
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0).locator("th")).to_have_text(day(made_on))
    await expect(rows.nth(0).locator("td")).to_have_text(
        ["image", "3", credits(charged), credits(paid)])

    await page.get_by_test_id("group-by").select_option("customer")
    await expect(panel.get_by_role("heading")).to_have_text("Credits over time by Customer")
    await expect(rows).to_have_count(2)
    # Rows come in the order of the customers' ids, not their names.
    await expect(rows.filter(has_text="alice").locator("td")).to_have_text(
        ["alice", "2", credits(2 * w.retail_mc), credits(2 * w.wholesale_mc)])
    await expect(rows.filter(has_text="bob").locator("td")).to_have_text(
        ["bob", "1", credits(w.retail_mc), credits(w.wholesale_mc)])
    link = panel.get_by_role("link", name="Download CSV")
    assert "group_by=customer" in (await link.get_attribute("href") or "")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    path = await download.path()
    header, *lines, end = path.read_bytes().decode().split("\r\n")
    assert (header, end) == ("period,group,count,charged_mc,wholesale_mc", "")
    assert sorted(lines) == [f"{made_on},alice,2,{2 * w.retail_mc},{2 * w.wholesale_mc}",
                             f"{made_on},bob,1,{w.retail_mc},{w.wholesale_mc}"]

    # Segments: both customers are new; the top 10 % of two spenders is one (alice).
    segments = page.get_by_test_id("segments")
    new = segments.locator("tr[data-segment=new]")
    await expect(new.locator("td")).to_have_text(
        ["2", credits(charged), credits(paid), credits(charged - paid)])
    await expect(segments.locator("tr[data-segment=top_spenders] td").first).to_have_text("1")
    await expect(segments.locator("tr[data-segment=lapsed] td").first).to_have_text("0")
    await new.get_by_role("button", name="New").click()
    listed = page.get_by_test_id("segment-customers")
    await expect(listed.locator("tbody tr")).to_have_count(2)
    alice = listed.get_by_role("link", name="alice")
    await expect(alice).to_have_attribute("href", f"/console/customers/{w.customers['alice']}")
    alice_row = listed.locator("tbody tr").filter(has_text="alice")
    await expect(alice_row.locator("td").last).to_have_text(credits(2 * w.retail_mc))

    # A zone where these generations fall on another day than in UTC.
    zone = next(z for z in ("Pacific/Kiritimati", "Etc/GMT+12")
                if len({c.astimezone(ZoneInfo(z)).date() for c in w.created}) == 1
                and w.created[0].astimezone(ZoneInfo(z)).date() != made_on)
    local_day = w.created[0].astimezone(ZoneInfo(zone)).date()
    settings = page.locator("#analytics-settings")
    await settings.get_by_label("Time zone").fill("Mars/Olympus")
    await settings.get_by_role("button", name="Save time zone").click()
    await expect(settings.locator("[data-param=time_zone]")).to_be_visible()
    await settings.get_by_label("Time zone").fill(zone)
    await settings.get_by_role("button", name="Save time zone").click()
    await expect(page.get_by_test_id("time-zone")).to_contain_text(zone)
    tenant = await portal.api.get("/v1/tenant", headers=portal.tenant_auth)
    assert tenant.json()["time_zone"] == zone
    # The next run of the periodic job rebuilds the tenant's rollups in its new zone.
    assert portal.services is not None
    await rollup.refresh(portal.services.runtime.db)
    await page.reload()
    await set_period(page, today - timedelta(days=2), today + timedelta(days=2))
    panel = credits_panel(page)
    rows = await table_rows(panel)
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0).locator("th")).to_have_text(day(local_day))
    await expect(rows.nth(0).locator("td")).to_have_text(
        ["image", "3", credits(charged), credits(paid)])

    # The segment thresholds are saved on the tenant; a bad one is shown on its field.
    thresholds = settings.get_by_role("group", name="Segment thresholds")
    await thresholds.get_by_label("Lapsed after (days)").fill("10")
    await settings.get_by_role("button", name="Save thresholds").click()
    await expect(settings.get_by_role("alert")).to_contain_text(
        "`lapsed_days` must be greater than `active_days`")
    await thresholds.get_by_label("Lapsed after (days)").fill("120")
    await settings.get_by_role("button", name="Save thresholds").click()
    await expect(settings.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    tenant = await portal.api.get("/v1/tenant", headers=portal.tenant_auth)
    assert tenant.json()["analytics"]["lapsed_days"] == 120
    assert axe_violations(await Axe().run(page)) == []

    # The overview: the period's margin and a credits chart.
    await page.goto(f"{portal.origin}/console")
    await expect(page.get_by_test_id("overview-margin")).to_have_text(
        f"{credits(charged - paid).rstrip('0').rstrip('.')} credits ({pct}%)")
    await expect(page.locator(".chart-panel[data-state=ready]")).to_have_count(1)


async def test_the_operator_analytics_show_real_rows(portal: Portal) -> None:
    w = await make_world(portal)
    assert portal.services is not None
    runtime, states = portal.services.runtime, portal.services.providers
    provider = runtime.plugins.get("local-image")
    assert provider is not None
    for _ in range(states.config.failure_threshold):
        await states.record(runtime, provider, latency_ms=20.0,
                            error=ProviderError.server_error("upstream answered 500"))
    page = await operator_page(portal, then="/operator/analytics")
    await expect(page.locator(".chart-panel[data-state=ready]")).to_have_count(6)

    async def table(title: str) -> Locator:
        panel = page.locator(".chart-panel").filter(has=page.get_by_role("heading", name=title))
        await panel.get_by_role("button", name="Table").click()
        return panel.locator("tbody tr")

    tenants = await table("Wholesale credits by tenant")
    row = tenants.filter(has_text=portal.tenant_id)
    await expect(row.locator("td").nth(0)).to_have_text("3")
    await expect(row.locator("td").nth(1)).to_have_text(credits(3 * w.retail_mc))
    await expect(row.locator("td").nth(2)).to_have_text(credits(3 * w.wholesale_mc))
    providers = await table("Provider latency")
    await expect(providers.filter(has_text="local-image")).to_have_count(1)
    breakers = await table("Breaker openings")
    await expect(breakers.filter(has_text="local-image").locator("td").nth(1)).to_have_text("1")
    assert axe_violations(await Axe().run(page)) == []
    await portal.shot(page, "operator-analytics-real-en-desktop")
    # The breaker's state outlives this gateway (valkey): close it for the tests after.
    r = await portal.api.post("/admin/v1/providers/local-image/reset", headers=portal.admin)
    assert r.status_code == 200, r.text


async def test_analytics_screens_in_both_languages_and_sizes(portal: Portal) -> None:
    await make_world(portal)
    for locale in ("en", "ar"):
        for phone in (False, True):
            size = "phone" if phone else "desktop"
            page = await owner_page(portal, phone=phone, locale=locale, then="/console/analytics")
            await expect(page.locator(".chart-panel[data-state=ready]")).to_have_count(7)
            await expect(page.get_by_test_id("segments")).to_be_visible()
            await expect(page.get_by_test_id("roi")).to_be_visible()
            await page.locator("tr[data-segment=new] button").click()
            await expect(page.get_by_test_id("segment-customers")).to_be_visible()
            await portal.shot(page, f"console-analytics-{locale}-{size}")
            assert axe_violations(await Axe().run(page)) == [], (locale, size)
            await page.goto(f"{portal.origin}/console")
            await expect(page.locator(".chart-panel[data-state=ready]")).to_have_count(1)
            await portal.shot(page, f"console-overview-money-{locale}-{size}")
