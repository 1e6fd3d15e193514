"""The operator console in a real browser, on the platform's own host (`http://127.0.0.1:<port>`,
which is no tenant's domain): the token sign-in, tenants (create, wholesale grants with the
wallet's balance, caps), a provider's open breaker and its reset, the audit log's diff, the
console being 404 on a tenant's domain; and the chart panel (ChartPanel) on the customer's
usage page: its error state while the analytics API is absent, and its table view reached by
keyboard with figures formatted per column type."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qsl, urlsplit

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route, expect

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

    # Suspension lands with another branch: until then the screen says it is unavailable.
    await page.go_back()
    suspend = page.get_by_role("region", name="Suspension")
    await suspend.get_by_label("Reason").fill("unpaid invoice")
    await suspend.get_by_role("button", name="Suspend tenant").click()
    await expect(suspend.get_by_role("status")).to_have_text(
        "Suspension is unavailable on this server.")


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


CREDITS_SERIES = {
    "object": "analytics.series", "series": "me_credits", "interval": "day",
    "time_zone": "UTC", "from": "2026-11-01", "to": "2026-11-03", "group_by": "type",
    "columns": [{"name": "period", "type": "date"}, {"name": "group", "type": "string"},
                {"name": "count", "type": "integer"},
                {"name": "charged_mc", "type": "millicredits"}],
    "data": [{"period": "2026-11-01", "group": "image", "count": 3, "charged_mc": 1250},
             {"period": "2026-11-01", "group": "audio", "count": 1, "charged_mc": 400},
             {"period": "2026-11-02", "group": "image", "count": 12, "charged_mc": 123456}],
}


async def analytics_contract(route: Route) -> None:
    # The envelope of GET /v1/analytics/me/credits as the analytics API answers it
    # (built on another branch); here only to give the panel figures to draw.
    await route.fulfill(status=200, content_type="application/json",
                        body=json.dumps(CREDITS_SERIES))


async def test_usage_panels_show_the_error_then_the_table_by_keyboard(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/usage")
    await expect(page.get_by_role("link", name="Usage")).to_have_class("active")
    panel = page.get_by_role("region", name="Credits by content type")
    # No analytics API on this server: the panel says so instead of drawing nothing.
    await expect(panel.get_by_role("alert")).to_contain_text("not available on this server yet")
    csv = panel.get_by_role("link", name="Download CSV")
    assert "format=csv" in (await csv.get_attribute("href") or "")
    assert await csv.get_attribute("download") is not None

    await page.route("**/v1/analytics/me/credits?*", analytics_contract)
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
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0).locator("th[scope=row]")).to_have_text("Nov 1, 2026")
    await expect(rows.nth(0).locator("td")).to_have_text(["image", "3", "1.250"])
    await expect(rows.nth(2).locator("td")).to_have_text(["image", "12", "123.456"])
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
                    await expect(page.locator(".chart-panel[data-state=error]")).to_have_count(6)
                await portal.shot(page, f"operator-{name}-{locale}-{size}")
                assert axe_violations(await Axe().run(page)) == [], (name, locale, size)

            customer = await portal.page(phone=phone, locale=locale)
            await customer.route("**/v1/analytics/me/credits?*", analytics_contract)
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
    asked: list[tuple[str, str | None]] = []

    async def contract(route: Route) -> None:
        url = urlsplit(route.request.url)
        asked.append((dict(parse_qsl(url.query))["group_by"],
                      await route.request.header_value("x-team-id")))
        await analytics_contract(route)

    page = await portal.page()
    await page.route("**/v1/analytics/me/credits?*", contract)
    await portal.sign_in(page, owner, then="/usage")
    await expect(page.get_by_role("region", name="Credits by member")).to_have_count(0)
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
    assert csv.splitlines()[:2] == ["period,group,count,charged_mc", "2026-11-01,image,3,1250"]
