"""The operator console in a real browser, on the platform's own host (`http://127.0.0.1:<port>`,
which is no tenant's domain): the token sign-in, tenants (create, wholesale grants with the
wallet's balance, caps), a provider's open breaker and its reset, the audit log's diff, the
console being 404 on a tenant's domain, suspending and resuming the portal's tenant (its
portal then says it is suspended); and the chart panel (ChartPanel) on the customer's usage
page on real generations and rollups: its table view reached by keyboard with figures
formatted per column type, a team's members and its CSV."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Request, expect

from billing.usage import rollup
from plugins.errors import ProviderError
from tests.conftest import ADMIN_TOKEN
from tests.portal.conftest import Portal, axe_violations
from tests.portal.test_auth import session_of


async def operator_page(portal: Portal, *, phone: bool = False, locale: str = "en",
                        then: str = "/operator/tenants") -> Page:
    """A fresh browser signed in to the console with the operator token, at `then`."""
    page = await portal.page(phone=phone, locale=locale)
    await page.goto(f"{portal.base}/operator")
    await page.locator("input[type=password]").fill(ADMIN_TOKEN)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(f"{portal.base}/operator/tenants")
    if then != "/operator/tenants":
        await page.goto(f"{portal.base}{then}")
    return page


async def test_a_wrong_token_is_refused_and_sign_out_forgets_the_token(portal: Portal) -> None:
    page = await portal.page()
    await page.goto(f"{portal.base}/operator/providers")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Operator sign-in")
    await page.get_by_label("Operator token").fill("not-the-operator-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That token was not accepted.")
    assert await page.evaluate("sessionStorage.getItem('operator.token')") is None

    await page.get_by_label("Operator token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Providers")
    assert await page.evaluate("sessionStorage.getItem('operator.token')") == ADMIN_TOKEN
    # The page itself names no tenant: it is the platform's.
    assert "Acme Studio" not in await page.content()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Operator sign-in")
    assert await page.evaluate("sessionStorage.getItem('operator.token')") is None


async def test_create_a_tenant_grant_credits_and_read_the_grant_in_the_audit_log(
        portal: Portal) -> None:
    page = await operator_page(portal)
    slug = f"globex-{secrets.token_hex(3)}"
    await page.get_by_label("Name").fill("Globex Media")
    await page.get_by_label("Slug").fill(slug)
    await page.get_by_label("Billing mode").select_option("mediahub")
    await page.get_by_role("button", name="Create tenant").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Globex Media")
    tenant_id = page.url.rsplit("/", 1)[1]
    r = await portal.api.get(f"/admin/v1/tenants/{tenant_id}", headers=portal.admin)
    assert (r.json()["slug"], r.json()["billing_mode"]) == (slug, "mediahub")

    grant = page.get_by_role("region", name="Wholesale credits")
    await grant.get_by_label("Credits").fill("12.5")
    await grant.get_by_label("Reason").fill("launch")
    await grant.get_by_role("button", name="Grant credits").click()
    balance = page.get_by_test_id("tenant-balance")
    await expect(balance).to_have_text("Wallet balance now: 12.5 credits")
    await grant.get_by_label("Credits").fill("2")
    await grant.get_by_label("Reason").fill("top-up")
    await grant.get_by_role("button", name="Grant credits").click()
    await expect(balance).to_have_text("Wallet balance now: 14.5 credits")
    # Two submits, two keys: two grants in the books (a retry of one would have been one).
    log = await portal.api.get("/admin/v1/audit_log", headers=portal.admin,
                               params={"tenant_id": tenant_id, "action": "credits.granted"})
    amounts = sorted(e["after"]["amount_mc"] for e in log.json()["data"])
    assert amounts == [2_000, 12_500]

    caps = page.get_by_role("region", name="Caps")
    await caps.get_by_label("Concurrent jobs").fill("3")
    await caps.get_by_label("Daily spend cap (credits)").fill("50")
    await caps.get_by_role("button", name="Save caps").click()
    await expect(caps.get_by_role("status")).to_have_text("Caps saved.")
    r = await portal.api.get(f"/admin/v1/tenants/{tenant_id}", headers=portal.admin)
    assert r.json()["caps"]["concurrent_jobs"] == 3
    assert r.json()["caps"]["daily_spend_cap_mc"] == 50_000

    await page.get_by_role("link", name="This tenant's audit log").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    entry = page.locator(".audit-entry[data-action='credits.granted']").filter(
        has_text="credits.granted").last  # newest first: the last is the first grant
    await entry.locator("summary").click()
    diff = entry.get_by_role("table")
    await expect(diff.get_by_role("row", name="amount_mc")).to_contain_text("12500")
    await expect(diff.get_by_role("row", name="reason")).to_contain_text('"launch"')



async def test_suspending_the_tenant_closes_its_portal_until_resumed(portal: Portal) -> None:
    customer = await portal.page()
    await customer.goto(f"{portal.origin}/signin")
    await expect(customer.locator("input[type=email]")).to_be_visible()

    page = await operator_page(portal, then=f"/operator/tenants/{portal.tenant_id}")
    suspend = page.get_by_role("region", name="Suspension")
    await suspend.get_by_label("Reason").fill("unpaid invoice")
    await suspend.get_by_role("button", name="Suspend tenant").click()
    await expect(suspend).to_contain_text("Suspended since")
    await expect(suspend).to_contain_text("Reason: unpaid invoice")
    r = await portal.api.get(f"/admin/v1/tenants/{portal.tenant_id}", headers=portal.admin)
    assert r.json()["suspended_at"] is not None
    assert r.json()["suspension_reason"] == "unpaid invoice"
    blocked = await portal.api.get("/v1/credits/balance", headers=portal.tenant_auth)
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "tenant_suspended"
    await page.goto(f"{portal.base}/operator/tenants")
    # The database outlives a test, so the tenant may be pages down the list (25 a page).
    row = page.locator("tr", has_text=portal.slug)
    more = page.get_by_role("button", name="Load more")
    await expect(page.locator("tbody tr").first).to_be_visible()
    rows = page.locator("tbody tr")
    while await row.count() == 0 and await more.count() == 1:
        shown = await rows.count()
        await more.click()
        await expect(rows).not_to_have_count(shown)
    await expect(row).to_contain_text("Suspended")

    await customer.reload()
    await expect(customer.get_by_test_id("portal-suspended")).to_contain_text(
        "This service is suspended")
    await expect(customer.locator("input[type=email]")).to_have_count(0)
    arabic = await portal.page(locale="ar")
    await arabic.goto(f"{portal.origin}/signin")
    await expect(arabic.get_by_test_id("portal-suspended")).to_contain_text("هذه الخدمة موقوفة")
    assert axe_violations(await Axe().run(arabic)) == []

    await page.goto(f"{portal.base}/operator/tenants/{portal.tenant_id}")
    await suspend.get_by_role("button", name="Resume tenant").click()
    await expect(suspend.get_by_role("button", name="Suspend tenant")).to_be_visible()
    r = await portal.api.get(f"/admin/v1/tenants/{portal.tenant_id}", headers=portal.admin)
    assert r.json()["suspended_at"] is None
    await customer.reload()
    await expect(customer.locator("input[type=email]")).to_be_visible()
    await expect(customer.get_by_test_id("portal-suspended")).to_have_count(0)


async def test_an_open_breaker_is_shown_and_reset(portal: Portal) -> None:
    assert portal.services is not None
    runtime, states = portal.services.runtime, portal.services.providers
    provider = runtime.plugins.all()[0]
    for _ in range(states.config.failure_threshold):
        await states.record(runtime, provider, latency_ms=20.0,
                            error=ProviderError.server_error("upstream answered 500"))
    page = await operator_page(portal, then="/operator/providers")
    card = page.locator(f"[data-provider='{provider.name}']")
    await expect(card.locator("[data-breaker]")).to_have_text("Breaker: open")
    await expect(card).to_contain_text("Last error: server_error")
    await card.get_by_role("button", name=f"Reset the breaker of {provider.name}").click()
    await expect(card.locator("[data-breaker]")).to_have_text("Breaker: closed")
    r = await portal.api.get("/admin/v1/providers", headers=portal.admin)
    assert {p["name"]: p for p in r.json()["data"]}[provider.name]["breaker"] == "closed"
    # "Check now" runs the health checks and keeps the page on the answer.
    await page.get_by_role("button", name="Check now").click()
    await expect(page.get_by_role("button", name="Check now")).to_be_enabled()


async def test_the_console_is_404_on_a_tenants_domain_and_served_bare_on_the_platform_host(
        portal: Portal) -> None:
    for path in ("/operator", "/operator/tenants/ten_x"):
        on_tenant = await portal.api.get(path, headers={"Host": portal.host})
        assert on_tenant.status_code == 404, on_tenant.text
        on_platform = await portal.api.get(path)
        assert on_platform.status_code == 200
        assert "<title>Operator console</title>" in on_platform.text
        assert "Acme Studio" not in on_platform.text
    # A domain a tenant added but has not proven yet is that tenant's too: no console there.
    pending = f"pending-{secrets.token_hex(3)}.portal.test"
    added = await portal.api.post("/v1/tenant/domains", headers=portal.tenant_auth,
                                  json={"hostname": pending})
    assert added.status_code == 201, added.text
    assert (await portal.api.get("/operator", headers={"Host": pending})).status_code == 404
    page = await portal.page()
    response = await page.goto(f"{portal.origin}/operator")
    assert response is not None
    assert response.status == 404
    # The portal's own pages stay where they were: not on the platform host.
    assert (await portal.api.get("/usage")).status_code == 404
    assert (await portal.api.get("/usage", headers={"Host": portal.host})).status_code == 200


async def generate(portal: Portal, session: dict[str, str], n: int) -> int:
    """`n` images made through the API with `session` (a customer's whose wallet held
    200 credits, maybe with its X-Team-Id); the rollups rebuilt. Returns the retail price of
    one taken from the customer's own wallet."""
    price = 0
    for _ in range(n):
        r = await portal.api.post("/v1/generations", headers={**session, "Prefer": "wait=60"},
                                  json={"type": "image", "prompt": "a red fox",
                                        "provider": "local-image"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded", r.text
    balance = await portal.api.get("/v1/credits/balance", headers=session)
    if n:
        price = (200_000 - balance.json()["available"]) // n
    assert portal.services is not None
    await rollup.rebuild_since(portal.services.runtime.db, portal.tenant_id, None)
    return price


def today_label() -> str:
    today = datetime.now(UTC).date()
    return f"{today:%b} {today.day}, {today.year}"


async def test_usage_panels_show_the_table_by_keyboard(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/usage")
    await expect(page.get_by_role("link", name="Usage")).to_have_class("active")
    panel = page.get_by_role("region", name="Credits by content type")
    # Nothing made yet: the panel says so instead of drawing nothing.
    await expect(panel).to_have_attribute("data-state", "empty")
    csv = panel.get_by_role("link", name="Download CSV")
    assert "format=csv" in (await csv.get_attribute("href") or "")
    assert await csv.get_attribute("download") is not None

    price = await generate(portal, await session_of(portal, address), 3)
    await page.reload()
    await expect(panel.locator(".chart-canvas .recharts-wrapper")).to_be_visible()
    table_button = panel.get_by_role("button", name="Table")
    await table_button.focus()
    await page.keyboard.press("Enter")
    await expect(table_button).to_have_attribute("aria-pressed", "true")
    table = panel.get_by_role("table", name="Credits by content type")
    await expect(table.locator("th[scope=col]")).to_have_text(
        ["Period", "Group", "Generations", "Credits charged"])
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0).locator("th[scope=row]")).to_have_text(today_label())
    await expect(rows.nth(0).locator("td")).to_have_text(["image", "3", f"{3 * price / 1000:,.3f}"])
    # Space on the other button brings the chart back.
    chart_button = panel.get_by_role("button", name="Chart")
    await chart_button.focus()
    await page.keyboard.press("Space")
    await expect(chart_button).to_have_attribute("aria-pressed", "true")
    assert axe_violations(await Axe().run(page)) == []


async def test_console_and_usage_screens_in_both_languages_and_sizes(portal: Portal) -> None:
    assert portal.services is not None
    runtime, states = portal.services.runtime, portal.services.providers
    provider = runtime.plugins.all()[0]
    for _ in range(states.config.failure_threshold):
        await states.record(runtime, provider, latency_ms=20.0,
                            error=ProviderError.server_error("upstream answered 500"))
    g = await portal.api.post(f"/admin/v1/tenants/{portal.tenant_id}/credits",
                              headers={**portal.admin, "Idempotency-Key": "shots"},
                              json={"amount": 5_000, "reason": "screenshots"})
    assert g.status_code == 201, g.text
    address = await portal.customer()
    await generate(portal, await session_of(portal, address), 2)
    for locale in ("en", "ar"):
        for phone in (False, True):
            size = "phone" if phone else "desktop"
            page = await operator_page(portal, phone=phone, locale=locale)
            await expect(page.locator("html")).to_have_attribute(
                "dir", "rtl" if locale == "ar" else "ltr")
            screens = {
                "tenants": "/operator/tenants",
                "tenant": f"/operator/tenants/{portal.tenant_id}",
                "providers": "/operator/providers",
                "audit": f"/operator/audit?tenant_id={portal.tenant_id}",
                "analytics": "/operator/analytics",
            }
            for name, path in screens.items():
                await page.goto(f"{portal.base}{path}")
                await expect(page.locator("main h1")).to_be_visible()
                await expect(page.locator("[role=status]:not([aria-live])")).to_have_count(0)
                if name == "audit":
                    await page.locator(".audit-entry summary").first.click()
                if name == "analytics":
                    await expect(page.locator(".chart-panel[data-state=error]")).to_have_count(0)
                    await expect(page.locator(".chart-panel[data-state=ready]")).to_have_count(6)
                await portal.shot(page, f"operator-{name}-{locale}-{size}")
                assert axe_violations(await Axe().run(page)) == [], (name, locale, size)

            customer = await portal.page(phone=phone, locale=locale)
            await portal.sign_in(customer, address, then="/usage")
            await expect(customer.locator(".chart-panel[data-state=ready]")).to_have_count(2)
            await expect(customer.locator(".chart-canvas .recharts-wrapper")).to_have_count(2)
            await portal.shot(customer, f"usage-chart-{locale}-{size}")
            await customer.locator(".chart-toggle button").nth(1).click()
            await portal.shot(customer, f"usage-table-{locale}-{size}")
            assert axe_violations(await Axe().run(customer)) == [], ("usage", locale, size)


async def test_usage_in_a_team_workspace_asks_for_the_team_and_shows_members(
        portal: Portal) -> None:
    owner = await portal.customer()
    session = await session_of(portal, owner)
    team = await portal.api.post("/v1/teams", headers=session, json={"name": "Design crew"})
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    funded = await portal.api.post(f"/v1/teams/{team_id}/credits",
                                   headers={**session, "Idempotency-Key": "fund"},
                                   json={"amount": 50_000})
    assert funded.status_code in (200, 201), funded.text
    await generate(portal, {**session, "X-Team-Id": team_id}, 2)
    left = await portal.api.get(f"/v1/teams/{team_id}/balance", headers=session)
    price = (50_000 - left.json()["available"]) // 2
    asked: list[tuple[str, str | None]] = []

    def seen(request: Request) -> None:
        url = urlsplit(request.url)
        if url.path == "/v1/analytics/me/credits":
            asked.append((dict(parse_qsl(url.query))["group_by"], request.headers.get("x-team-id")))

    page = await portal.page()
    page.on("request", seen)
    await portal.sign_in(page, owner, then="/usage")
    await expect(page.get_by_role("region", name="Credits by member")).to_have_count(0)
    # The personal workspace's series has answered (nothing spent there) before the switch.
    await expect(page.get_by_role("region", name="Credits by content type")).to_have_attribute(
        "data-state", "empty")
    await page.get_by_label("Workspace").select_option(team_id)
    member_panel = page.get_by_role("region", name="Credits by member")
    await expect(member_panel.locator(".recharts-wrapper")).to_be_visible()
    await expect(page.get_by_text("The credits this team spent")).to_be_visible()
    assert ("member", team_id) in asked
    assert ("type", team_id) in asked
    assert ("type", None) in asked  # the personal workspace before the switch
    # A link cannot send X-Team-Id: the team's CSV is made from the loaded series.
    href = await member_panel.get_by_role("link", name="Download CSV").get_attribute("href")
    assert href is not None
    assert href.startswith("blob:")
    csv = await page.evaluate("async (href) => (await fetch(href)).text()", href)
    header, row = csv.splitlines()
    assert header == "period,group,count,charged_mc"
    period, _member, count, charged = row.split(",")
    assert (period, count, charged) == (datetime.now(UTC).date().isoformat(), "2", str(2 * price))
