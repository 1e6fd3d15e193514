"""A tenant's own credit packages (issue #13): created, changed and retired by its
`tenant_admin`; a change never touches a purchase already started; a retired package is
neither listed nor sold. Stripe is the local fake, as in test_stripe.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tenants.audit import AuditEvent
from tests.conftest import Gateway, running_gateway
from tests.fake_stripe import FakeStripe, event
from tests.gateway.credits.test_stripe import (
    available,
    buy,
    deliver,
    fake_stripe,
    purchase_row,
    stripe_settings,
)

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
__all__ = ["fake_stripe"]  # the fixture, used by name


@pytest.fixture
async def gw(database_url: str, tmp_path: Path,
             fake_stripe: FakeStripe) -> AsyncIterator[Gateway]:
    async with running_gateway(stripe_settings(database_url, tmp_path, fake_stripe)) as gw:
        yield gw


async def test_a_tenant_admin_creates_changes_and_retires_its_packages(
        gw: Gateway, fake_stripe: FakeStripe) -> None:
    owner = await gw.tenant(credits_mc=0, scopes=["tenant_admin", "billing"])
    r = await gw.client.post("/v1/credits/packages", headers=owner.auth, json={
        "name": "Starter", "credits": 100_000, "price_cents": 1_000})
    assert r.status_code == 201, r.text
    package = r.json()
    started = await buy(gw, owner.auth, package["id"])

    r = await gw.client.patch(f"/v1/credits/packages/{package['id']}", headers=owner.auth,
                              json={"price_cents": 2_000, "credits": 250_000,
                                    "name": "Starter+"})
    assert r.status_code == 200, r.text
    assert (r.json()["price_cents"], r.json()["credits"], r.json()["name"]) == (
        2_000, 250_000, "Starter+")
    # The checkout started before the change pays and grants what it was started with.
    row = await purchase_row(gw, started["purchase_id"])
    assert (row.price_cents, row.credits_mc) == (1_000, 100_000)
    paid = fake_stripe.complete(started["session_id"])
    assert (await deliver(gw, event("checkout.session.completed", paid))).status_code == 200
    assert await available(gw, owner.auth) == 100_000
    # One started now pays the new price.
    assert (await buy(gw, owner.auth, package["id"]))["price_cents"] == 2_000

    r = await gw.client.post(f"/v1/credits/packages/{package['id']}/retire",
                             headers=owner.auth)
    assert (r.status_code, r.json()["active"]) == (200, False)
    listed = (await gw.client.get("/v1/credits/packages", headers=owner.auth)).json()["data"]
    assert listed == []
    r = await gw.client.post("/v1/credits/purchase", headers=owner.auth,
                             json={"package_id": package["id"]})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "package_not_found")
    r = await gw.client.patch(f"/v1/credits/packages/{package['id']}", headers=owner.auth,
                              json={"price_cents": 5})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "package_retired")
    # Retiring again changes nothing; the operator still sees it, for history.
    again = await gw.client.post(f"/v1/credits/packages/{package['id']}/retire",
                                 headers=owner.auth)
    assert again.status_code == 200
    history = await gw.client.get(f"/admin/v1/tenants/{owner.id}/packages", headers=gw.admin())
    assert [p["active"] for p in history.json()["data"]] == [False]

    async with gw.runtime.db.session() as session:
        log = list(await session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == owner.id,
                                     AuditEvent.target_type == "credit_package")
            .order_by(AuditEvent.created_at)))
    assert [(e.action, e.actor) for e in log] == [
        ("package.created", f"key:{owner.key_id}"), ("package.updated", f"key:{owner.key_id}"),
        ("package.retired", f"key:{owner.key_id}")]
    assert (log[1].before["price_cents"], log[1].after["price_cents"]) == (1_000, 2_000)


async def test_other_tenants_and_other_keys_cannot_touch_packages(gw: Gateway) -> None:
    owner = await gw.tenant(credits_mc=0, scopes=["tenant_admin"])
    package = (await gw.client.post("/v1/credits/packages", headers=owner.auth, json={
        "name": "P", "credits": 1_000, "price_cents": 100})).json()
    stranger = await gw.tenant(credits_mc=0, scopes=["tenant_admin"])
    for path in (f"/v1/credits/packages/{package['id']}",
                 f"/v1/credits/packages/{package['id']}/retire"):
        method = "PATCH" if path.endswith(package["id"]) else "POST"
        r = await gw.client.request(method, path, headers=stranger.auth,
                                    json={"name": "x"} if method == "PATCH" else None)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "package_not_found")
    plain = await gw.tenant(credits_mc=0)
    r = await gw.client.post("/v1/credits/packages", headers=plain.auth, json={
        "name": "P", "credits": 1_000, "price_cents": 100})
    assert r.status_code == 403
    r = await gw.client.patch(f"/v1/credits/packages/{package['id']}", headers=owner.auth,
                              json={"price_cents": 0})
    assert r.status_code in (400, 422)
