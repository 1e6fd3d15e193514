"""The credits page in a real browser: the workspace's balance, the history with "load
more", the packages and a purchase through the project's fake Stripe (it speaks Stripe's
wire format) as far as the redirect to Checkout, then the return page Stripe sends the buyer
back to (`/portal/credits?purchase=<id>`, now an app page): confirming (polling until the
signed webhook lands), paid, canceled and refunded."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route, expect

from tests.fake_stripe import FakeStripe, charge, event, sign
from tests.gateway.credits.test_stripe import API_KEY, WEBHOOK_SECRET
from tests.portal.conftest import Portal, axe_violations


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(api_key=API_KEY).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def portal_settings(fake_stripe: FakeStripe) -> dict[str, Any]:
    return {"stripe_api_key": API_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_base_url": fake_stripe.url}


async def new_package(portal: Portal, name: str, credits: int, price_cents: int
                      ) -> dict[str, Any]:
    r = await portal.api.post(f"/admin/v1/tenants/{portal.tenant_id}/packages",
                              headers=portal.admin,
                              json={"name": name, "credits": credits,
                                    "price_cents": price_cents, "currency": "usd"})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def deliver(portal: Portal, evt: dict[str, Any]) -> None:
    payload = json.dumps(evt).encode()
    r = await portal.api.post("/v1/webhooks/stripe", content=payload,
                              headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET),
                                       "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


async def stripe_page(route: Route) -> None:
    # Checkout itself is Stripe's; the browser only has to arrive there.
    await route.fulfill(status=200, content_type="text/html",
                        body="<!doctype html><title>Checkout</title><h1>Stripe Checkout</h1>")


async def buy_through_checkout(portal: Portal, fake: FakeStripe, page: Page,
                               package_name: str) -> dict[str, Any]:
    """Click Buy on `package_name`, follow the redirect to Checkout; the Checkout session."""
    await page.route("https://checkout.stripe.com/**", stripe_page)
    before = set(fake.sessions)
    await page.get_by_role("button", name=f"Buy {package_name}").click()
    await page.wait_for_url("https://checkout.stripe.com/c/pay/*")
    (session_id,) = set(fake.sessions) - before
    assert page.url.endswith(session_id)
    return fake.sessions[session_id]


def back_from_stripe(url: str, session_id: str) -> str:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id)


async def test_balance_history_and_load_more(portal: Portal) -> None:
    address = await portal.customer(credits_mc=1_000)
    page = await portal.page()
    await portal.sign_in(page, address, then="/credits")
    customer_id = await page.evaluate(
        "fetch('/v1/users/me').then(r => r.json()).then(b => b.user.customer_id)")
    for _ in range(24):  # 25 transactions with the fixture's grant: two pages of 20
        g = await portal.api.post(f"/v1/customers/{customer_id}/credits",
                                  headers={**portal.tenant_auth,
                                           "Idempotency-Key": secrets.token_hex(8)},
                                  json={"amount": 500, "reason": "test"})
        assert g.status_code in (200, 201), g.text
    await page.reload()
    await expect(page.get_by_test_id("balance")).to_have_text("13")
    rows = page.locator("table.history tbody tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("Credits added")
    await page.get_by_role("button", name="Load more").click()
    await expect(rows).to_have_count(25)
    await expect(page.get_by_role("button", name="Load more")).to_have_count(0)


async def test_buying_goes_to_checkout_and_the_return_page_follows_the_purchase(
        portal: Portal, fake_stripe: FakeStripe) -> None:
    await new_package(portal, "Starter", credits=100_000, price_cents=999)
    address = await portal.customer(credits_mc=2_000)
    page = await portal.page()
    await portal.sign_in(page, address, then="/credits")
    card = page.locator(".package").filter(has_text="Starter")
    await expect(card).to_contain_text("100 credits")
    await expect(card).to_contain_text("$9.99")
    await portal.shot(page, "credits-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    session = await buy_through_checkout(portal, fake_stripe, page, "Starter")
    assert session["amount_total"] == 999
    # Stripe returns to the portal the buyer came from, to the app's page.
    success = back_from_stripe(session["success_url"], session["id"])
    assert success.startswith(f"{portal.origin}/portal/credits?purchase=")
    await page.goto(success)
    result = page.locator(".purchase-result")
    # The webhook has not arrived: "confirming", and the page keeps asking.
    await expect(result).to_have_attribute("data-state", "confirming")
    await expect(result).to_contain_text("Payment received")
    await portal.shot(page, "credits-confirming-en-desktop")
    await deliver(portal, event("checkout.session.completed",
                                fake_stripe.complete(session["id"])))
    await expect(result).to_have_attribute("data-state", "paid", timeout=20_000)
    await expect(result).to_contain_text("100 credits are in your balance")
    await expect(page.get_by_test_id("balance")).to_have_text("102")
    await expect(page.locator(".balance-badge")).to_contain_text("102")
    await expect(page.locator("table.history tbody tr").first).to_contain_text("Purchase")
    await portal.shot(page, "credits-paid-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # Refunded later: the same link says so.
    paid = fake_stripe.sessions[session["id"]]
    await deliver(portal, event("charge.refunded", charge(
        payment_intent=paid["payment_intent"], amount=999, amount_refunded=999)))
    await page.reload()
    await expect(result).to_have_attribute("data-state", "refunded")

    # Canceled at Checkout: the cancel link says nothing was charged, in Arabic too.
    await page.goto(f"{portal.origin}/credits")
    session = await buy_through_checkout(portal, fake_stripe, page, "Starter")
    arabic = await portal.page(phone=True, locale="ar")
    await portal.sign_in(arabic, address, then="/credits")
    await arabic.goto(session["cancel_url"])
    await expect(arabic.locator(".purchase-result")).to_have_attribute("data-state", "canceled")
    await expect(arabic.locator(".purchase-result")).to_contain_text("لم يُخصم أي مبلغ")
    await portal.shot(arabic, "credits-canceled-ar-phone")
    assert axe_violations(await Axe().run(arabic)) == []

    # Someone else's purchase, or none: "not found".
    await arabic.goto(f"{portal.origin}/portal/credits?purchase=pur_nope")
    await expect(arabic.locator(".purchase-result")).to_have_attribute("data-state", "not_found")


async def test_the_credits_page_in_english_and_arabic_on_phone_and_desktop(
        portal: Portal) -> None:
    await new_package(portal, "Starter", credits=100_000, price_cents=999)
    await new_package(portal, "Studio pack", credits=1_000_000, price_cents=7_900)
    address = await portal.customer(credits_mc=12_345)
    for locale in ("en", "ar"):
        for phone in (False, True):
            page = await portal.page(phone=phone, locale=locale)
            await portal.sign_in(page, address, then="/credits")
            await expect(page.locator(".package")).to_have_count(2)
            await expect(page.locator("table.history tbody tr")).to_have_count(1)
            await portal.shot(page, f"credits-{locale}-{'phone' if phone else 'desktop'}")
            assert axe_violations(await Axe().run(page)) == []
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= (390 if phone else 1280), "the page scrolls sideways"
