"""Credit packages and Stripe purchases, end to end: the gateway over ASGI on SQLite and
PostgreSQL, the `stripe` library talking HTTP to a local fake Stripe, and webhook deliveries
signed the way Stripe signs them (computed here, not with the library)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from billing.models import Account, Purchase, StripeEvent, Transfer
from gateway.core.settings import Settings
from gateway.credits import stripe as stripe_gateway
from tests.conftest import Gateway, make_settings, running_gateway
from tests.fake_stripe import FakeStripe, charge, event, sign

# The stripe library's HTTPXClient posts its form body as `data=<str>`, which httpx deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

API_KEY = "sk_test_51MediahubFakeKey0123456789abcdef"
WEBHOOK_SECRET = "whsec_test_" + "5f0c3a9e1b7d4c2a8e6f"
IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(api_key=API_KEY).start()
    try:
        yield fake
    finally:
        fake.stop()


def stripe_settings(database_url: str, tmp_path: Path, fake: FakeStripe,
                    **overrides: Any) -> Settings:
    values: dict[str, Any] = {"stripe_api_key": API_KEY,
                              "stripe_webhook_secret": WEBHOOK_SECRET,
                              "stripe_base_url": fake.url}
    values.update(overrides)
    return make_settings(database_url, tmp_path, **values)


@pytest.fixture
async def gw(database_url: str, tmp_path: Path,
             fake_stripe: FakeStripe) -> AsyncIterator[Gateway]:
    async with running_gateway(stripe_settings(database_url, tmp_path, fake_stripe)) as gw:
        yield gw


# --- helpers ------------------------------------------------------------------------------

async def new_package(gw: Gateway, tenant_id: str, *, credits: int = 100_000,
                      price_cents: int = 1_000, currency: str = "usd",
                      name: str = "100 credits") -> dict[str, Any]:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/packages", headers=gw.admin(),
                             json={"name": name, "credits": credits,
                                   "price_cents": price_cents, "currency": currency})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def buy(gw: Gateway, auth: dict[str, str], package_id: str) -> dict[str, Any]:
    r = await gw.client.post("/v1/credits/purchase", headers=auth,
                             json={"package_id": package_id})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def available(gw: Gateway, auth: dict[str, str]) -> int:
    r = await gw.client.get("/v1/credits/balance", headers=auth)
    assert r.status_code == 200, r.text
    return int(r.json()["available"])


async def deliver(gw: Gateway, evt: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
                  timestamp: int | None = None,
                  signature: str | None = None) -> httpx.Response:
    payload = json.dumps(evt).encode()
    header = signature if signature is not None else sign(payload, secret,
                                                          timestamp=timestamp)
    return await gw.client.post("/v1/webhooks/stripe", content=payload,
                                headers={"Stripe-Signature": header,
                                         "Content-Type": "application/json"})


async def purchase_row(gw: Gateway, purchase_id: str) -> Purchase:
    async with gw.runtime.db.session() as session:
        row = await session.get(Purchase, purchase_id)
    assert row is not None
    return row


async def purchase_grants(gw: Gateway, tenant_id: str) -> list[Transfer]:
    async with gw.runtime.db.session() as session:
        return list(await session.scalars(
            select(Transfer).where(Transfer.tenant_id == tenant_id,
                                   Transfer.kind == "purchase")))


async def bought_and_paid(gw: Gateway, fake: FakeStripe, auth: dict[str, str],
                          package_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A purchase whose completed checkout was delivered; (purchase, paid session)."""
    bought = await buy(gw, auth, package_id)
    paid = fake.complete(bought["session_id"])
    r = await deliver(gw, event("checkout.session.completed", paid))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "processed"
    return bought, paid


# --- packages -----------------------------------------------------------------------------

async def test_operator_creates_packages_and_clients_see_their_own(gw: Gateway) -> None:
    tenant, other = await gw.tenant(credits_mc=0), await gw.tenant(credits_mc=0)
    created = await new_package(gw, tenant.id, credits=250_000, price_cents=2_500,
                                name="Starter")
    assert created["id"].startswith("pkg_")
    assert {k: created[k] for k in ("name", "credits", "price_cents", "currency", "active",
                                    "unit", "object")} == {
        "name": "Starter", "credits": 250_000, "price_cents": 2_500, "currency": "usd",
        "active": True, "unit": "millicredit", "object": "credit_package"}
    await new_package(gw, other.id, name="Other's")

    listed = await gw.client.get(f"/admin/v1/tenants/{tenant.id}/packages", headers=gw.admin())
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["data"]] == [created["id"]]

    mine = await gw.client.get("/v1/credits/packages", headers=tenant.auth)
    assert mine.status_code == 200, mine.text
    assert [p["name"] for p in mine.json()["data"]] == ["Starter"]
    assert mine.json()["next_cursor"] is None

    # Any valid key may list; no key may not.
    reader = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                                  json={"name": "reader", "scopes": ["read"]})
    r = await gw.client.get("/v1/credits/packages",
                            headers={"Authorization": f"Bearer {reader.json()['key']}"})
    assert [p["id"] for p in r.json()["data"]] == [created["id"]]
    assert (await gw.client.get("/v1/credits/packages")).status_code == 401


@pytest.mark.parametrize(("body", "param"), [
    ({"name": "x", "credits": 0, "price_cents": 100}, "credits"),
    ({"name": "x", "credits": 1000, "price_cents": 0}, "price_cents"),
    ({"name": "x", "credits": 1000, "price_cents": 100, "currency": "USD"}, "currency"),
    ({"name": "x", "credits": 1000, "price_cents": 100, "currency": "usdx"}, "currency"),
    ({"name": "", "credits": 1000, "price_cents": 100}, "name"),
    ({"credits": 1000, "price_cents": 100}, "name"),
])
async def test_bad_packages_are_refused(gw: Gateway, body: dict[str, Any], param: str) -> None:
    tenant = await gw.tenant(credits_mc=0)
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/packages", headers=gw.admin(),
                             json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == param


async def test_packages_of_an_unknown_tenant_are_404(gw: Gateway) -> None:
    r = await gw.client.post("/admin/v1/tenants/ten_nope/packages", headers=gw.admin(),
                             json={"name": "x", "credits": 1000, "price_cents": 100})
    assert r.status_code == 404
    r = await gw.client.get("/admin/v1/tenants/ten_nope/packages", headers=gw.admin())
    assert r.status_code == 404
    r = await gw.client.get("/admin/v1/tenants/ten_nope/packages")
    assert r.status_code == 401


# --- creating the checkout ----------------------------------------------------------------

async def test_purchase_creates_a_checkout_session_as_stripe_documents(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=250_000, price_cents=2_500,
                                name="Starter pack")
    bought = await buy(gw, tenant.auth, package["id"])
    assert bought["purchase_id"].startswith("pur_")
    assert bought["session_id"].startswith("cs_test_")
    assert bought["checkout_url"] == fake_stripe.sessions[bought["session_id"]]["url"]
    assert bought["status"] == "open"
    assert (bought["credits"], bought["price_cents"], bought["currency"]) == (
        250_000, 2_500, "usd")

    [sent] = fake_stripe.posts("/v1/checkout/sessions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == bought["purchase_id"]
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = sent.form
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][unit_amount]"] == "2500"
    assert form["line_items[0][price_data][product_data][name]"] == "Starter pack"
    assert form["line_items[0][quantity]"] == "1"
    assert form["client_reference_id"] == bought["purchase_id"]
    assert form["metadata[purchase_id]"] == bought["purchase_id"]
    assert form["metadata[tenant_id]"] == tenant.id
    assert form["payment_intent_data[metadata][purchase_id]"] == bought["purchase_id"]
    page = f"http://testserver/portal/credits?purchase={bought['purchase_id']}"
    assert form["success_url"] == f"{page}&session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"] == f"{page}&canceled=1"

    stored = await purchase_row(gw, bought["purchase_id"])
    assert (stored.session_id, stored.status, stored.tenant_id) == (
        bought["session_id"], "open", tenant.id)
    r = await gw.client.get(f"/v1/credits/purchases/{bought['purchase_id']}",
                            headers=tenant.auth)
    assert r.status_code == 200
    assert r.json()["session_id"] == bought["session_id"]
    # Nothing is granted before Stripe says the checkout was paid.
    assert await available(gw, tenant.auth) == 0


async def test_a_retried_create_never_makes_two_sessions(
    database_url: str, tmp_path: Path, fake_stripe: FakeStripe,
) -> None:
    settings = stripe_settings(database_url, tmp_path, fake_stripe)
    args: dict[str, Any] = {
        "purchase_id": "pur_retried", "tenant_id": "ten_x", "product_name": "Pack",
        "price_cents": 500, "currency": "usd", "success_url": "https://example.com/ok",
        "cancel_url": "https://example.com/no"}
    first = await stripe_gateway.create_checkout_session(settings, **args)
    again = await stripe_gateway.create_checkout_session(settings, **args)
    assert again == first
    assert len(fake_stripe.sessions) == 1
    sent = fake_stripe.posts("/v1/checkout/sessions")
    assert [r.headers["idempotency-key"] for r in sent] == ["pur_retried", "pur_retried"]


async def test_another_tenants_package_is_404_and_billing_scope_is_needed(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant, other = await gw.tenant(credits_mc=0), await gw.tenant(credits_mc=0)
    theirs = await new_package(gw, other.id)
    r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                             json={"package_id": theirs["id"]})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "not_found_error"
    r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                             json={"package_id": "pkg_nope"})
    assert r.status_code == 404

    reader = await gw.client.post(f"/admin/v1/tenants/{other.id}/keys", headers=gw.admin(),
                                  json={"name": "reader", "scopes": ["read", "generate"]})
    r = await gw.client.post("/v1/credits/purchase",
                             headers={"Authorization": f"Bearer {reader.json()['key']}"},
                             json={"package_id": theirs["id"]})
    assert r.status_code == 403
    assert (await gw.client.post("/v1/credits/purchase",
                                 json={"package_id": theirs["id"]})).status_code == 401
    assert fake_stripe.posts("/v1/checkout/sessions") == []
    async with gw.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Purchase)
                                    .where(Purchase.tenant_id.in_((tenant.id, other.id)))) == 0


async def test_without_stripe_configured_purchases_are_503(
    database_url: str, tmp_path: Path,
) -> None:
    async with running_gateway(make_settings(database_url, tmp_path)) as gw:
        tenant = await gw.tenant(credits_mc=0)
        package = await new_package(gw, tenant.id)
        r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                                 json={"package_id": package["id"]})
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["type"] == "unavailable_error"
        assert error["code"] == "stripe_not_configured"
        assert "MEDIAHUB_STRIPE_API_KEY" in error["message"]
        # Webhooks cannot be verified without the secret: Stripe keeps retrying (non-2xx).
        r = await deliver(gw, event("checkout.session.completed", {"id": "cs_test_x"}))
        assert r.status_code == 503
        assert "MEDIAHUB_STRIPE_WEBHOOK_SECRET" in r.json()["error"]["message"]


async def test_a_refused_api_key_fails_the_purchase_with_502(
    database_url: str, tmp_path: Path, fake_stripe: FakeStripe,
) -> None:
    settings = stripe_settings(database_url, tmp_path, fake_stripe,
                               stripe_api_key="sk_test_wrongwrongwrong1234")
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(credits_mc=0)
        package = await new_package(gw, tenant.id)
        r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                                 json={"package_id": package["id"]})
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert (error["type"], error["code"]) == ("provider_error",
                                                  "stripe_authentication_failed")
        assert error["stripe_request_id"].startswith("req_")
        assert "sk_test_wrong" not in r.text
        [sent] = fake_stripe.posts("/v1/checkout/sessions")
        assert sent.headers["authorization"] == "Bearer sk_test_wrongwrongwrong1234"
        async with gw.runtime.db.session() as session:
            [row] = await session.scalars(select(Purchase)
                                          .where(Purchase.tenant_id == tenant.id))
        assert (row.status, row.session_id) == ("failed", None)


async def test_a_parameter_stripe_refuses_is_502_naming_it(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, currency="xyz")
    r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                             json={"package_id": package["id"]})
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["code"] == "stripe_invalid_request"
    assert "line_items[0][price_data][currency]" in error["message"]
    assert "Invalid currency: xyz" in error["message"]
    async with gw.runtime.db.session() as session:
        statuses = list(await session.scalars(select(Purchase.status)
                                              .where(Purchase.tenant_id == tenant.id)))
    assert statuses == ["failed"]


async def test_stripe_rate_limiting_is_503(gw: Gateway, fake_stripe: FakeStripe) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    fake_stripe.fail_next(429, {"type": "invalid_request_error", "code": "rate_limit",
                                "message": "Too many requests hit the API too quickly."})
    r = await gw.client.post("/v1/credits/purchase", headers=tenant.auth,
                             json={"package_id": package["id"]})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "stripe_rate_limited"
    # The next attempt is a new purchase and goes through.
    assert (await buy(gw, tenant.auth, package["id"]))["status"] == "open"


# --- the webhook --------------------------------------------------------------------------

async def test_a_completed_checkout_grants_its_credits_once(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=250_000, price_cents=2_500)
    bought = await buy(gw, tenant.auth, package["id"])
    paid = fake_stripe.complete(bought["session_id"])
    evt = event("checkout.session.completed", paid)

    r = await deliver(gw, evt)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "outcome": "processed", "event_id": evt["id"]}
    assert await available(gw, tenant.auth) == 250_000
    row = await purchase_row(gw, bought["purchase_id"])
    assert (row.status, row.payment_intent) == ("paid", paid["payment_intent"])

    # Stripe sends it again (it retries for days): a 200 that changes nothing.
    again = await deliver(gw, evt)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert await available(gw, tenant.auth) == 250_000
    [grant] = await purchase_grants(gw, tenant.id)
    assert grant.amount_mc == 250_000
    r = await gw.client.get("/v1/credits/transactions", headers=tenant.auth)
    assert [(t["kind"], t["amount"]) for t in r.json()["data"]] == [("purchase", 250_000)]


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered body", "no header",
                                     "garbage header", "no v1", "not utf-8"])
async def test_a_bad_signature_is_400_and_nothing_happens(
    gw: Gateway, fake_stripe: FakeStripe, forgery: str,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    bought = await buy(gw, tenant.auth, package["id"])
    evt = event("checkout.session.completed", fake_stripe.complete(bought["session_id"]))
    payload = json.dumps(evt).encode()
    headers = {"Content-Type": "application/json"}
    if forgery == "wrong secret":
        headers["Stripe-Signature"] = sign(payload, "whsec_someone_else")
    elif forgery == "tampered body":
        headers["Stripe-Signature"] = sign(payload, WEBHOOK_SECRET)
        evt["data"]["object"]["metadata"]["purchase_id"] = "pur_other"
        payload = json.dumps(evt).encode()
    elif forgery == "garbage header":
        headers["Stripe-Signature"] = "t=soon,v1=abc"
    elif forgery == "no v1":
        headers["Stripe-Signature"] = sign(payload, WEBHOOK_SECRET).replace("v1=", "v0=")
    elif forgery == "not utf-8":
        payload = b"\xff\xfe" + payload
        headers["Stripe-Signature"] = sign(payload, WEBHOOK_SECRET)
    r = await gw.client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert await available(gw, tenant.auth) == 0
    async with gw.runtime.db.session() as session:
        assert await session.get(StripeEvent, evt["id"]) is None
    assert (await purchase_row(gw, bought["purchase_id"])).status == "open"

    # The genuine delivery of the same event still works: nothing was consumed.
    assert (await deliver(gw, evt if forgery != "tampered body" else
                          event("checkout.session.completed",
                                fake_stripe.sessions[bought["session_id"]]))).status_code == 200
    assert await available(gw, tenant.auth) == 100_000


@pytest.mark.parametrize(("offset_s", "status"), [(-301, 400), (-3600, 400), (301, 400),
                                                   (3600, 400), (-290, 200), (290, 200)])
async def test_timestamps_more_than_300_s_off_either_way_are_refused(
    gw: Gateway, fake_stripe: FakeStripe, offset_s: int, status: int,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    bought = await buy(gw, tenant.auth, package["id"])
    evt = event("checkout.session.completed", fake_stripe.complete(bought["session_id"]))
    r = await deliver(gw, evt, timestamp=int(time.time()) + offset_s)
    assert r.status_code == status, r.text
    assert await available(gw, tenant.auth) == (100_000 if status == 200 else 0)
    if status == 400:
        assert r.json()["error"]["code"] in ("invalid_signature", "timestamp_in_future")


async def test_concurrent_deliveries_of_one_event_grant_once(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=123_456)
    bought = await buy(gw, tenant.auth, package["id"])
    evt = event("checkout.session.completed", fake_stripe.complete(bought["session_id"]))
    answers = await asyncio.gather(*(deliver(gw, evt) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["duplicate"] * 5 + ["processed"]
    assert await available(gw, tenant.auth) == 123_456
    assert len(await purchase_grants(gw, tenant.id)) == 1


async def test_two_events_about_one_payment_racing_grant_once(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    """`completed` and `async_payment_succeeded` (distinct event ids) for one session."""
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=70_000)
    bought = await buy(gw, tenant.auth, package["id"])
    paid = fake_stripe.complete(bought["session_id"])
    events = [event("checkout.session.completed", paid),
              event("checkout.session.async_payment_succeeded", paid),
              event("checkout.session.completed", paid)]
    answers = await asyncio.gather(*(deliver(gw, e) for e in events))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.json()["outcome"] for a in answers) == [
        "duplicate", "duplicate", "processed"]
    assert await available(gw, tenant.auth) == 70_000
    assert len(await purchase_grants(gw, tenant.id)) == 1


async def test_unpaid_and_unknown_events_are_recorded_and_ignored(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    bought = await buy(gw, tenant.auth, package["id"])
    unpaid = event("checkout.session.completed", fake_stripe.sessions[bought["session_id"]])
    other = event("customer.created", {"id": "cus_123", "object": "customer"})
    for evt in (unpaid, other):
        r = await deliver(gw, evt)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "ignored"
        assert (await deliver(gw, evt)).json()["outcome"] == "duplicate"
    async with gw.runtime.db.session() as session:
        recorded = await session.get(StripeEvent, other["id"])
    assert recorded is not None
    assert recorded.type == "customer.created"
    assert await available(gw, tenant.auth) == 0
    # A session that expires unpaid closes its purchase.
    expired = dict(fake_stripe.sessions[bought["session_id"]], status="expired")
    assert (await deliver(gw, event("checkout.session.expired", expired))).status_code == 200
    assert (await purchase_row(gw, bought["purchase_id"])).status == "expired"


# --- refunds ------------------------------------------------------------------------------

async def test_a_refund_within_the_balance_takes_the_credits_back(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=5_000)
    package = await new_package(gw, tenant.id, credits=100_000, price_cents=999)
    bought, paid = await bought_and_paid(gw, fake_stripe, tenant.auth, package["id"])
    assert await available(gw, tenant.auth) == 105_000
    pi = paid["payment_intent"]

    # A third refunded: credits taken in proportion, rounded down (never over credits_mc).
    third = event("charge.refunded", charge(payment_intent=pi, amount=999, amount_refunded=333))
    r = await deliver(gw, third)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "processed"
    assert await available(gw, tenant.auth) == 105_000 - 33_333
    row = await purchase_row(gw, bought["purchase_id"])
    assert (row.status, row.refunded_cents, row.clawed_back_mc, row.owed_mc) == (
        "partially_refunded", 333, 33_333, 0)
    assert (await deliver(gw, third)).json()["outcome"] == "duplicate"

    # The rest refunded (Stripe's amount_refunded is cumulative): exactly credits_mc in all.
    rest = event("charge.refunded", charge(payment_intent=pi, amount=999, amount_refunded=999))
    assert (await deliver(gw, rest)).status_code == 200
    assert await available(gw, tenant.auth) == 5_000
    row = await purchase_row(gw, bought["purchase_id"])
    assert (row.status, row.refunded_cents, row.clawed_back_mc, row.owed_mc) == (
        "refunded", 999, 100_000, 0)
    # An older refund state delivered late changes nothing.
    late = event("charge.refunded", charge(payment_intent=pi, amount=999, amount_refunded=333))
    assert (await deliver(gw, late)).json()["outcome"] == "duplicate"
    assert await available(gw, tenant.auth) == 5_000
    async with gw.runtime.db.session() as session:
        refunds = list(await session.scalars(select(Transfer.amount_mc).where(
            Transfer.tenant_id == tenant.id, Transfer.kind == "refund")))
    assert sorted(refunds) == [33_333, 66_667]


async def test_a_refund_after_spending_takes_what_is_left_and_records_the_rest_as_owed(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=100_000, price_cents=1_000)
    bought, paid = await bought_and_paid(gw, fake_stripe, tenant.auth, package["id"])
    r = await gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    assert r.status_code == 202, r.text
    await gw.drain()
    done = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
    spent = done.json()["cost"]["charged"]
    assert spent > 0
    assert await available(gw, tenant.auth) == 100_000 - spent

    refund = event("charge.refunded", charge(payment_intent=paid["payment_intent"],
                                             amount=1_000, amount_refunded=1_000))
    r = await deliver(gw, refund)
    assert r.status_code == 200, r.text
    row = await purchase_row(gw, bought["purchase_id"])
    assert (row.status, row.clawed_back_mc, row.owed_mc) == ("refunded", 100_000 - spent,
                                                             spent)
    balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
    assert (balance["available"], balance["posted"], balance["pending"]) == (0, 0, 0)
    async with gw.runtime.db.session() as session:
        wallets = list(await session.scalars(select(Account).where(
            Account.tenant_id == tenant.id, Account.system.is_(False))))
    for wallet in wallets:
        assert wallet.credits_posted - wallet.debits_posted - wallet.debits_pending >= 0
    r = await gw.client.get(f"/v1/credits/purchases/{bought['purchase_id']}",
                            headers=tenant.auth)
    assert (r.json()["clawed_back"], r.json()["owed"]) == (100_000 - spent, spent)


async def test_a_refund_before_its_completion_is_retried_by_stripe(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    """Stripe does not order events: a refund seen first is refused (non-2xx, not recorded),
    so Stripe delivers it again after the completion."""
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id, credits=40_000, price_cents=400)
    bought = await buy(gw, tenant.auth, package["id"])
    paid = fake_stripe.complete(bought["session_id"])
    refund = event("charge.refunded", charge(
        payment_intent=paid["payment_intent"], amount=400, amount_refunded=400,
        metadata={"purchase_id": bought["purchase_id"], "tenant_id": tenant.id}))
    early = await deliver(gw, refund)
    assert early.status_code == 409, early.text
    async with gw.runtime.db.session() as session:
        assert await session.get(StripeEvent, refund["id"]) is None

    assert (await deliver(gw, event("checkout.session.completed", paid))).status_code == 200
    assert await available(gw, tenant.auth) == 40_000
    assert (await deliver(gw, refund)).json()["outcome"] == "processed"
    assert await available(gw, tenant.auth) == 0
    # A refund of someone else's charge (not ours) is simply ignored.
    foreign = event("charge.refunded", charge(payment_intent="pi_not_ours", amount=100,
                                              amount_refunded=100))
    assert (await deliver(gw, foreign)).json()["outcome"] == "ignored"


# --- billing modes ------------------------------------------------------------------------

async def test_a_customer_key_in_mediahub_mode_buys_for_the_customer_wallet(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0, billing_mode="mediahub")
    package = await new_package(gw, tenant.id, credits=30_000, price_cents=300)
    k = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                             json={"name": "alice", "scopes": ["generate", "read", "billing"],
                                   "customer_id": "alice"})
    assert k.status_code == 201, k.text
    alice = {"Authorization": f"Bearer {k.json()['key']}"}

    bought, _ = await bought_and_paid(gw, fake_stripe, alice, package["id"])
    assert await available(gw, alice) == 30_000
    assert await available(gw, tenant.auth) == 0          # the tenant's wallet is untouched
    row = await purchase_row(gw, bought["purchase_id"])
    async with gw.runtime.db.session() as session:
        wallet = await session.get(Account, row.account_id)
    assert wallet is not None
    assert wallet.code.startswith("customer:")
    # Another caller of the same tenant cannot read the customer's purchase.
    r = await gw.client.get(f"/v1/credits/purchases/{bought['purchase_id']}",
                            headers=tenant.auth)
    assert r.status_code == 404
    r = await gw.client.get(f"/v1/credits/purchases/{bought['purchase_id']}", headers=alice)
    assert r.json()["status"] == "paid"


async def test_a_tenant_key_acting_for_a_customer_in_self_mode_has_no_wallet_to_top_up(
    gw: Gateway, fake_stripe: FakeStripe,
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    r = await gw.client.post("/v1/credits/purchase",
                             headers={**tenant.auth, "X-Customer-Id": "bob"},
                             json={"package_id": package["id"]})
    assert r.status_code == 404, r.text
    assert fake_stripe.posts("/v1/checkout/sessions") == []

