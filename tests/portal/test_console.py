"""The reseller console (`/console`) in a real browser: the tenant's staff sign in on the
tenant's domain and manage it through the same API the self-service routes document.

Branding's live preview (the real portal in two iframes, fed the draft before saving), a
custom domain verified against a real token server on loopback, a tier markup that changes
the next estimate of a customer of that tier, a key's secret shown once, customer search and
a credit grant, the webhook delivery log with a real delivery (tests/receiver.py), what a
viewer sees, and axe plus screenshots of every screen (desktop and phone, English and Arabic).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect
from sqlalchemy import delete

from tenants.models import Domain
from tests.conftest import Inbox
from tests.gateway.people.support import PASSWORD, token_of
from tests.gateway.tenancy.test_domains import TokenServer, token_server
from tests.gateway.webhooks.test_webhooks import eventually
from tests.portal.conftest import Portal, axe_violations
from tests.receiver import Receiver, receiver


@pytest.fixture
async def tokens() -> AsyncIterator[TokenServer]:
    async with token_server() as server:
        yield server


@pytest.fixture
def portal_settings(tokens: TokenServer) -> dict[str, Any]:
    # Loopback is a "public" address here: the domain check reaches the token server and
    # webhooks reach the receiver, both on 127.0.0.1.
    return {"egress_allow_networks": ("127.0.0.0/8", "::1/128"),
            "domain_verification_port": tokens.port}


async def staff(portal: Portal, role: str) -> str:
    """A staff member of `role` invited by the operator who set a password: its email."""
    address = f"s-{secrets.token_hex(5)}@example.com"
    r = await portal.api.post(f"/admin/v1/tenants/{portal.tenant_id}/users", headers=portal.admin,
                              json={"email": address, "role": role})
    assert r.status_code == 201, r.text
    link = Inbox.link(await portal.smtp.next(address))
    done = await portal.api.post("/v1/auth/reset/confirm", headers={"Host": portal.host},
                                 json={"token": token_of(link), "password": PASSWORD})
    assert done.status_code == 200, done.text
    return address


async def owner_page(portal: Portal, *, phone: bool = False, locale: str = "en",
                     then: str = "/console") -> Page:
    page = await portal.page(phone=phone, locale=locale)
    await portal.sign_in(page, await staff(portal, "owner"), then=then)
    return page


async def test_staff_land_on_the_console_and_see_the_overview(portal: Portal) -> None:
    address = await staff(portal, "owner")
    page = await portal.page()
    await page.goto(f"{portal.origin}/signin")
    await page.locator("input[type=email]").fill(address)
    await page.locator("input[type=password]").fill(PASSWORD)
    await page.locator("form button[type=submit]").click()
    # No `next`: staff land on the console, not the studio.
    await page.wait_for_url(f"{portal.origin}/console")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # The tenant's wallet got 10 000 credits from the fixture; one key, one domain.
    await expect(page.get_by_test_id("tenant-balance")).to_have_text("10,000")
    await expect(page.get_by_test_id("count-keys")).to_have_text("1")
    await expect(page.get_by_test_id("count-domains")).to_have_text("1 of 1 verified")


async def test_branding_preview_follows_the_draft_and_the_portal_follows_the_save(
        portal: Portal) -> None:
    page = await owner_page(portal, then="/console/branding")
    desktop = page.frame_locator("[data-testid=preview-desktop]")
    phone = page.frame_locator("[data-testid=preview-phone]")
    await expect(desktop.locator(".brand-name")).to_have_text("Acme Studio")
    await expect(phone.locator(".brand-name")).to_have_text("Acme Studio")

    await page.get_by_label("Name shown to customers").fill("Nimbus Media")
    await page.get_by_label("Primary", exact=True).fill("#b91c1c")
    # Both frames show the draft before anything is saved ...
    for frame in (desktop, phone):
        await expect(frame.locator(".brand-name")).to_have_text("Nimbus Media")
        await expect(frame.locator("html")).to_have_attribute(
            "style", re.compile(r"--color-primary:\s*#b91c1c"))
    # ... and nothing is saved yet.
    config = (await portal.api.get("/v1/portal/config", headers={"Host": portal.host})).json()
    assert config["name"] == "Acme Studio"
    assert config["branding"]["colors"]["primary"] == "#0f766e"

    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    config = (await portal.api.get("/v1/portal/config", headers={"Host": portal.host})).json()
    assert config["name"] == "Nimbus Media"
    assert config["branding"]["colors"]["primary"] == "#b91c1c"

    # The portal itself, opened afresh, is in the new brand.
    visitor = await portal.page()
    await visitor.goto(f"{portal.origin}/signin")
    await expect(visitor.locator(".brand-name")).to_have_text("Nimbus Media")
    primary = await visitor.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--color-primary')")
    assert primary.strip() == "#b91c1c"
    # A page that is not framed by the console ignores preview messages.
    await visitor.evaluate("""window.postMessage({type: "mediahub:branding-preview",
        name: "Forged", branding: {}}, location.origin)""")
    await expect(visitor.locator(".brand-name")).to_have_text("Nimbus Media")


async def test_a_domain_is_added_and_verified(portal: Portal, tokens: TokenServer) -> None:
    # Only `localhost` resolves to loopback here and the database outlives a test: free the
    # name another test (tests/gateway/tenancy/test_domains.py) may have left taken.
    assert portal.services is not None
    async with portal.services.runtime.db.transaction() as session:
        await session.execute(delete(Domain).where(Domain.hostname == "localhost"))
    page = await owner_page(portal, then="/console/domains")
    await page.get_by_label("Domain name").fill("localhost")
    await page.get_by_role("button", name="Add domain").click()
    card = page.locator("[data-hostname=localhost]")
    await expect(card.get_by_test_id("domain-status")).to_have_text("Pending")
    token = (await card.get_by_test_id("domain-token").inner_text()).strip()
    await expect(card).to_contain_text(
        f"http://localhost:{tokens.port}/.well-known/mediahub-verification")

    # The token server answers something else first: the failure says why.
    tokens.body = b"not the token"
    await card.get_by_role("button", name="Verify now").click()
    await expect(card.get_by_test_id("verify-result")).to_be_visible()
    await expect(card.get_by_test_id("domain-status")).to_have_text("Pending")

    tokens.body = token.encode()
    await card.get_by_role("button", name="Verify now").click()
    await expect(card.get_by_test_id("verify-result")).to_have_text(
        "Verified: the domain now serves your portal.")
    await expect(card.get_by_test_id("domain-status")).to_have_text("Verified")
    assert tokens.paths[-1] == "/.well-known/mediahub-verification"
    listed = (await portal.api.get("/v1/tenant/domains", headers=portal.tenant_auth)).json()
    assert {d["hostname"]: d["status"] for d in listed["data"]}["localhost"] == "verified"


async def estimate(portal: Portal, customer: str) -> int:
    r = await portal.api.post("/v1/generations/estimate",
                              headers={**portal.tenant_auth, "X-Customer-Id": customer},
                              json={"type": "image", "prompt": "a red fox",
                                    "provider": "local-image"})
    assert r.status_code == 200, r.text
    amount: int = r.json()["amount"]
    return amount


async def test_a_tier_markup_changes_the_next_estimate(portal: Portal) -> None:
    r = await portal.api.post("/v1/customers", headers=portal.tenant_auth,
                              json={"external_id": "gold-1", "tier": "gold"})
    assert r.status_code == 201, r.text
    before = await estimate(portal, "gold-1")

    page = await owner_page(portal, then="/console/pricing")
    example = page.get_by_test_id("pricing-example")
    await expect(example).to_be_visible()
    example_before = await example.inner_text()
    await page.get_by_role("button", name="Add a tier").click()
    await page.locator("input[name=tier-name-1]").fill("gold")
    await page.get_by_label("gold extra markup (%)").fill("50")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()

    tenant = (await portal.api.get("/v1/tenant", headers=portal.tenant_auth)).json()
    assert tenant["pricing"]["tier_markup_bps"] == {"gold": 5000, "standard": 0}
    # Retail is wholesale raised by the markups (none before for this tier), rounded up.
    after = await estimate(portal, "gold-1")
    assert after == -(-before * 15_000 // 10_000)
    await page.get_by_label("Customer tier").select_option("gold")
    await expect(example).not_to_have_text(example_before)
    # The worked example shows the API's own integers, and its retail is the estimate's.
    r = await portal.api.post("/v1/tenant/pricing/example", headers=portal.tenant_auth,
                              json={"type": "image", "tier": "gold"})
    assert r.status_code == 200, r.text
    worked = r.json()
    assert [s["label"] for s in worked["steps"]] == ["provider cost", "wholesale", "retail"]
    steps = example.locator("ol.c-steps li")
    await expect(steps).to_have_count(3)
    for i, step in enumerate(worked["steps"]):
        if step["unit"] == "millicredit":
            await expect(steps.nth(i).locator(".c-step-amount")).to_have_text(
                f"{step['amount'] / 1000:,.3f}".rstrip("0").rstrip(".") + " credits")
        await expect(steps.nth(i)).to_contain_text(step["detail"])
    await expect(page.get_by_test_id("example-retail")).to_contain_text(
        f"{worked['retail_mc'] / 1000:,.3f}".rstrip("0").rstrip("."))
    if worked["provider"] == "local-image":
        assert worked["retail_mc"] == after


async def test_a_key_secret_is_shown_once_and_a_viewer_sees_no_keys(portal: Portal) -> None:
    page = await owner_page(portal, then="/console/keys")
    await page.get_by_role("button", name="New key").click()
    await page.get_by_label("Name", exact=True).fill("render farm")
    await page.get_by_label("Billing").check()
    await page.get_by_role("button", name="Create key").click()
    secret = (await page.get_by_test_id("secret").inner_text()).strip()
    assert secret.startswith("mh_")
    # The secret works, with the scopes chosen.
    r = await portal.api.get("/v1/credits/balance", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_test_id("secret")).to_have_count(0)
    row = page.locator("tr", has_text="render farm")
    await expect(row).to_contain_text("Billing, Generate, Read")
    await page.reload()
    await expect(page.locator("tr", has_text="render farm")).to_be_visible()
    assert secret not in await page.content()

    viewer = await portal.page()
    await portal.sign_in(viewer, await staff(portal, "viewer"), then="/console")
    nav = viewer.get_by_role("navigation", name="Console")
    await expect(nav.get_by_role("link", name="Overview")).to_be_visible()
    await expect(nav.get_by_role("link", name="API keys")).to_have_count(0)
    await viewer.goto(f"{portal.origin}/console/keys")
    await viewer.wait_for_url(f"{portal.origin}/console")
    await expect(viewer.get_by_role("heading", name="Overview")).to_be_visible()


async def test_customers_are_searched_and_granted_credits(portal: Portal) -> None:
    for external in ("acme-1", "acme-2", "zen-1"):
        r = await portal.api.post("/v1/customers", headers=portal.tenant_auth,
                                  json={"external_id": external})
        assert r.status_code == 201, r.text
    page = await owner_page(portal, then="/console/customers")
    await expect(page.get_by_test_id("customers").locator("tbody tr")).to_have_count(3)
    await page.get_by_label("Customer id starts with").fill("ACME")
    await page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("customers").locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="zen-1")).to_have_count(0)

    await page.get_by_role("link", name="acme-1").click()
    await expect(page.get_by_role("heading", name="Customer acme-1")).to_be_visible()
    await page.get_by_label("Credits", exact=True).fill("5")
    await page.get_by_label("Reason").fill("welcome bonus")
    await page.get_by_role("button", name="Give credits").click()
    await expect(page.get_by_test_id("move-result")).to_have_text(
        "Gave 5 credits. The customer now has 5.")
    await expect(page.get_by_test_id("customer-balance")).to_have_text("5")
    # A second submission is a second move (its own Idempotency-Key), not a replay.
    await page.get_by_label("Credits", exact=True).fill("2")
    await page.get_by_label("Reason").fill("more")
    await page.get_by_role("button", name="Give credits").click()
    await expect(page.get_by_test_id("move-result")).to_have_text(
        "Gave 2 credits. The customer now has 7.")
    customer = (await portal.api.get("/v1/customers/acme-1", headers=portal.tenant_auth)).json()
    assert customer["balance"]["available"] == 7_000

    # Over the balance: the API's error shows on the amount field.
    await page.get_by_label("Take back to your wallet").check()
    await page.get_by_label("Credits", exact=True).fill("100")
    await page.get_by_label("Reason").fill("oops")
    await page.get_by_role("button", name="Take credits back").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    customer = (await portal.api.get("/v1/customers/acme-1", headers=portal.tenant_auth)).json()
    assert customer["balance"]["available"] == 7_000


async def test_the_delivery_log_shows_a_real_delivery(portal: Portal) -> None:
    async with receiver() as rec:
        await webhook_delivered(portal, rec)


async def webhook_delivered(portal: Portal, rec: Receiver) -> None:
    page = await owner_page(portal, then="/console/webhooks")
    await page.get_by_role("button", name="New endpoint").click()
    await page.get_by_label("Endpoint URL").fill(f"{rec.url}/hook")
    await page.get_by_role("button", name="Create endpoint").click()
    secret = (await page.get_by_test_id("secret").inner_text()).strip()
    assert secret.startswith("whsec_")
    await page.get_by_role("button", name="Done").click()

    r = await portal.api.post("/v1/generations",
                              headers={**portal.tenant_auth, "Prefer": "wait=60"},
                              json={"type": "image", "prompt": "a red fox",
                                    "provider": "local-image"})
    assert r.status_code == 200, r.text
    [request] = await rec.wait_for(1)
    assert b"generation.succeeded" in request.body

    # The attempt is logged just after the receiver answered.
    listed = await portal.api.get("/v1/webhook_endpoints", headers=portal.tenant_auth)
    [made] = listed.json()["data"]
    await eventually(lambda: attempts_logged(portal, made["id"]))
    await page.get_by_role("button", name="Delivery log").click()
    row = page.get_by_test_id("deliveries").locator("tbody tr").first
    await expect(row).to_contain_text("generation.succeeded")
    await expect(row.get_by_test_id("delivery-status")).to_have_text("200")

    await row.get_by_role("button", name=re.compile("^Replay")).click()
    replays = page.get_by_test_id("replays")
    await expect(replays).to_contain_text("replay of")
    first, again = await rec.wait_for(2)
    # The same event, body and webhook-id; a new delivery naming the first as replayed.
    assert again.body == first.body
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    log_url = f"/v1/webhook_endpoints/{made['id']}/deliveries"

    async def replay_logged() -> bool:
        data = (await portal.api.get(log_url, headers=portal.tenant_auth)).json()["data"]
        return any(d.get("replay_of") for d in data)

    await eventually(replay_logged)
    attempts = (await portal.api.get(log_url, headers=portal.tenant_auth)).json()["data"]
    [replay] = [d for d in attempts if d.get("replay_of")]
    await expect(replays).to_contain_text(replay["delivery_id"])
    assert replay["replay_of"] in {d["delivery_id"] for d in attempts if not d.get("replay_of")}


async def attempts_logged(portal: Portal, endpoint_id: str) -> bool:
    r = await portal.api.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
                             headers=portal.tenant_auth)
    return bool(r.json()["data"])


SCREENS = ["", "branding", "domains", "pricing", "packages", "limits", "providers", "keys",
           "customers", "teams", "webhooks", "audit"]


async def test_every_screen_is_accessible_in_both_languages_and_sizes(portal: Portal) -> None:
    # Something in each list, so the screens show their tables and cards.
    auth = portal.tenant_auth
    for path, body in (
            ("/v1/customers", {"external_id": "acme-1", "tier": "gold"}),
            ("/v1/credits/packages", {"name": "Starter", "credits": 100_000,
                                      "price_cents": 999, "currency": "usd"}),
            ("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/mediahub",
                                       "description": "Order system"})):
        r = await portal.api.post(path, headers=auth, json=body)
        assert r.status_code == 201, r.text
    r = await portal.api.patch("/v1/tenant", headers=auth,
                               json={"pricing": {"markup_bps": {"default": 2000},
                                                 "tier_markup_bps": {"gold": 5000}}})
    assert r.status_code == 200, r.text
    for phone in (False, True):
        for locale in ("en", "ar"):
            page = await owner_page(portal, phone=phone, locale=locale)
            size = "phone" if phone else "desktop"
            for screen in SCREENS:
                await page.goto(f"{portal.origin}/console/{screen}".rstrip("/"))
                await expect(page.locator(".c-page h1")).to_be_visible()
                await expect(page.get_by_role("status").filter(has_text=re.compile(
                    "Loading|جارٍ التحميل"))).to_have_count(0)
                name = screen or "overview"
                await portal.shot(page, f"console-{name}-{locale}-{size}")
                assert axe_violations(await Axe().run(page)) == [], (name, locale, size)
            if phone:
                # The side nav is a menu on phones.
                menu = page.get_by_role("button", name=re.compile("Console menu|قائمة"))
                await menu.click()
                await expect(page.get_by_role("navigation").locator("ul.open")).to_be_visible()
                await portal.shot(page, f"console-menu-{locale}-{size}")


async def test_an_api_error_shows_on_the_field_it_names(portal: Portal) -> None:
    r = await portal.api.patch(f"/admin/v1/tenants/{portal.tenant_id}", headers=portal.admin,
                               json={"caps": {"burst": 10}})
    assert r.status_code == 200, r.text
    page = await owner_page(portal, then="/console/limits")
    burst = page.get_by_label("Burst", exact=True)
    await expect(page.get_by_text("Limit: 10", exact=True)).to_be_visible()
    await burst.fill("50")
    await page.get_by_role("button", name="Save", exact=True).click()
    # The API's 422 names `rate_limits.burst`: its message sits under that field.
    error = page.locator("[data-param='rate_limits.burst']")
    await expect(error).to_have_text("This is above the limit the platform set for you.")
    await expect(burst).to_have_attribute("aria-invalid", "true")
    await burst.fill("8")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    tenant = (await portal.api.get("/v1/tenant", headers=portal.tenant_auth)).json()
    assert tenant["rate_limits"]["burst"] == 8
