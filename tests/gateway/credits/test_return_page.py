"""The page Stripe Checkout sends a buyer back to (`/portal/credits`), on SQLite and
PostgreSQL: it exists, speaks in the tenant's name and tells what became of the purchase."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.fake_stripe import FakeStripe, event
from tests.gateway.credits.test_stripe import (  # noqa: F401 (fixtures used by name)
    buy,
    deliver,
    fake_stripe,
    gw,
    new_package,
)


async def test_the_stripe_return_page_says_what_became_of_the_purchase(
    gw: Gateway, fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    tenant = await gw.tenant(credits_mc=0)
    package = await new_package(gw, tenant.id)
    bought = await buy(gw, tenant.auth, package["id"])
    page = f"/portal/credits?purchase={bought['purchase_id']}"

    r = await gw.client.get(f"{page}&session_id={bought['session_id']}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Tenant t-" in r.text  # the tenant's name (`Tenant <slug>` in these tests)
    assert "payment went through" in r.text

    canceled = await gw.client.get(f"{page}&canceled=1")
    assert canceled.status_code == 200
    assert "canceled" in canceled.text

    r = await deliver(gw, event("checkout.session.completed",
                                fake_stripe.complete(bought["session_id"])))
    assert r.status_code == 200, r.text
    paid = await gw.client.get(page)
    assert "credits are in your balance" in paid.text

    for unknown in ("/portal/credits?purchase=pur_nope", "/portal/credits",
                    f"/portal/credits?purchase={'x' * 300}"):
        assert (await gw.client.get(unknown)).status_code == 404


async def test_the_return_page_escapes_the_tenant_name(gw: Gateway) -> None:  # noqa: F811
    r = await gw.client.post("/admin/v1/tenants", headers=gw.admin(),
                             json={"name": "<script>x</script>", "slug": "escaped"})
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    k = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/keys", headers=gw.admin(),
                             json={"name": "k", "scopes": ["billing"]})
    package = await new_package(gw, tenant_id)
    bought = await buy(gw, {"Authorization": f"Bearer {k.json()['key']}"}, package["id"])
    r = await gw.client.get(f"/portal/credits?purchase={bought['purchase_id']}")
    assert "<script>" not in r.text
    assert "&lt;script&gt;" in r.text
