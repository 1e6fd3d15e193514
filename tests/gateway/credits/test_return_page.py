"""Where Stripe Checkout sends a buyer back (`/portal/credits?purchase=<id>`), on SQLite and
PostgreSQL: the portal app owns that page now (it is one of `SPA_ROUTES`) and reads the
purchase through `GET /v1/credits/purchases/{id}`; these tests pin that API and where the
return links point."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.conftest import Gateway
from tests.fake_stripe import FakeStripe, event
from tests.gateway.credits.test_stripe import (  # noqa: F401 (fixtures used by name)
    buy,
    deliver,
    fake_stripe,
    gw,
    new_package,
)


async def test_the_purchase_api_says_what_became_of_the_purchase(
    gw: Gateway, fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    bought = await buy(gw, tenant.auth, package["id"])
    page = f"/v1/credits/purchases/{bought['purchase_id']}"

    # Stripe returns before its webhook arrives: the page sees `open` and keeps asking.
    r = await gw.client.get(page, headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["credits"]) == ("open", package["credits"])

    r = await deliver(gw, event("checkout.session.completed",
                                fake_stripe.complete(bought["session_id"])))
    assert r.status_code == 200, r.text
    paid = await gw.client.get(page, headers=tenant.auth)
    assert paid.json()["status"] == "paid"

    # Another tenant's purchase, an unknown id or an oversized one: 404, never a 500.
    other = await gw.tenant(credits_mc=0)
    for unknown, auth in ((page, other.auth), ("/v1/credits/purchases/pur_nope", tenant.auth),
                          (f"/v1/credits/purchases/{'x' * 300}", tenant.auth)):
        assert (await gw.client.get(unknown, headers=auth)).status_code == 404


async def test_stripe_returns_to_the_portal_page_the_purchase_was_made_from(
    gw: Gateway, fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    plain = await gw.tenant(credits_mc=0)
    bought = await buy(gw, plain.auth, (await new_package(gw, plain.id))["id"])
    # A tenant without a domain: back to the public base URL, as before.
    session = fake_stripe.sessions[bought["session_id"]]
    assert session["success_url"] == (
        f"http://testserver/portal/credits?purchase={bought['purchase_id']}"
        "&session_id={CHECKOUT_SESSION_ID}")

    tenant = await gw.tenant(credits_mc=0, domains=["shop.return.test", "zz.return.test"])
    package = await new_package(gw, tenant.id)
    # Through the API host: to the tenant's (first) portal domain.
    bought = await buy(gw, tenant.auth, package["id"])
    session = fake_stripe.sessions[bought["session_id"]]
    assert session["success_url"].startswith("http://shop.return.test/portal/credits?purchase=")
    # From one of the tenant's portal domains (port kept): back to that portal.
    r = await gw.client.post("/v1/credits/purchase", json={"package_id": package["id"]},
                             headers={**tenant.auth, "Host": "ZZ.return.test:8443"})
    assert r.status_code == 201, r.text
    session = fake_stripe.sessions[r.json()["session_id"]]
    assert session["success_url"].startswith("http://zz.return.test:8443/portal/credits?")
    assert session["cancel_url"].endswith("&canceled=1")
    # A Host that is not this tenant's domain never steers the redirect (a malformed one is
    # refused at the edge before this).
    for forged in ("evil.example", "other.return.test:443"):
        r = await gw.client.post("/v1/credits/purchase", json={"package_id": package["id"]},
                                 headers={**tenant.auth, "Host": forged})
        assert r.status_code == 201, r.text
        session = fake_stripe.sessions[r.json()["session_id"]]
        assert urlsplit(session["success_url"]).hostname in ("shop.return.test",
                                                             "zz.return.test"), forged
        assert "evil" not in session["success_url"]
