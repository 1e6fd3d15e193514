"""Customer segments as of a moment (`GET /v1/analytics/segments`, its customers list), by
the tenant's thresholds, with spend and margin per segment; never another tenant's."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.generations.models import Generation
from tenants.kernel.db import new_id
from tenants.models import Customer
from tests.conftest import Gateway, Inbox, Tenant
from tests.gateway.people.support import invited, open_tenant

T = datetime(2027, 3, 1, tzinfo=UTC)
AS_OF = {"as_of": "2027-03-01T00:00:00Z"}
ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]


async def customer(gw: Gateway, tenant_id: str, external_id: str, tier: str = "standard",
                   ) -> str:
    customer_id = new_id("cus")
    async with gw.runtime.db.transaction() as session:
        session.add(Customer(id=customer_id, tenant_id=tenant_id, external_id=external_id,
                             tier=tier))
    return customer_id


async def generated(gw: Gateway, tenant_id: str, customer_id: str, days_ago: float, *,
                    retail: int = 0, wholesale: int = 0, status: str = "succeeded") -> None:
    """A generation row as the lifecycle leaves it, `days_ago` before T."""
    async with gw.runtime.db.transaction() as session:
        session.add(Generation(
            id=new_id("gen"), tenant_id=tenant_id, customer_id=customer_id, type="image",
            operation="text_to_image", prompt="p", provider="echo", status=status,
            cached=False, cost_usd_micros=0, wholesale_mc=wholesale, retail_mc=retail,
            estimated_mc=wholesale, charged_mc=retail if status == "succeeded" else None,
            request_hash="h", created_at=T - timedelta(days=days_ago)))


async def world(gw: Gateway, tenant: Tenant) -> dict[str, str]:
    """One customer per segment (and a few edge cases), and another tenant's big spender."""
    t = tenant.id
    ids = {name: await customer(gw, t, name) for name in
           ("new", "active", "returning", "at_risk", "lapsed", "idle", "later")}
    await generated(gw, t, ids["new"], 5, retail=1000, wholesale=600)
    await generated(gw, t, ids["active"], 40, retail=70, wholesale=50)  # before the window
    await generated(gw, t, ids["active"], 3, retail=2000, wholesale=1500)
    await generated(gw, t, ids["returning"], 100)
    await generated(gw, t, ids["returning"], 10, retail=500, wholesale=300)
    await generated(gw, t, ids["at_risk"], 200)
    await generated(gw, t, ids["at_risk"], 45, retail=900, wholesale=800)
    await generated(gw, t, ids["lapsed"], 300)
    await generated(gw, t, ids["lapsed"], 90, retail=50, wholesale=10)  # exactly 90 days
    # Active without spending: a failed generation in each window charges nothing.
    await generated(gw, t, ids["idle"], 50, status="failed")
    await generated(gw, t, ids["idle"], 2, retail=400, wholesale=100, status="failed")
    # Only after T: not a customer yet as of T.
    await generated(gw, t, ids["later"], -1, retail=5000, wholesale=1000)
    other = await gw.tenant(credits_mc=0)
    rich = await customer(gw, other.id, "rich")
    await generated(gw, other.id, rich, 1, retail=99_999, wholesale=1)
    return ids


async def segments(gw: Gateway, auth: dict[str, str], **query: str) -> dict[str, Any]:
    r = await gw.client.get("/v1/analytics/segments", headers=auth,
                            params={**AS_OF, **query})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def table(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {row["segment"]: (row["customers"], row["spend_mc"], row["wholesale_mc"],
                             row["margin_mc"]) for row in body["data"]}


async def members(gw: Gateway, auth: dict[str, str], segment: str,
                  **query: str) -> list[str]:
    found: list[str] = []
    after: str | None = None
    while True:
        params = {**AS_OF, "limit": "1", **query, **({"after": after} if after else {})}
        r = await gw.client.get(f"/v1/analytics/segments/{segment}/customers", headers=auth,
                                params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        found += [c["external_id"] for c in page["data"]]
        after = page["next_cursor"]
        if after is None:
            return found


async def test_segments_partition_customers_and_sum_their_margin(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    await world(gateway, tenant)
    body = await segments(gateway, tenant.auth)
    assert body["object"] == "analytics.segments"
    assert body["as_of"] == "2027-03-01T00:00:00Z"
    assert body["thresholds"] == {"new_days": 30, "active_days": 30, "lapsed_days": 90,
                                  "top_spender_percent": 10}
    assert body["columns"] == ["segment", "customers", "spend_mc", "wholesale_mc",
                               "margin_mc"]
    assert table(body) == {
        "new": (1, 1000, 600, 400),
        "active": (2, 2000, 1500, 500),       # `active` and `idle` (no spend)
        "returning": (1, 500, 300, 200),
        "at_risk": (1, 0, 0, 0),              # spend counts over the active window only
        "lapsed": (1, 0, 0, 0),
        "top_spenders": (1, 2000, 1500, 500),  # 10 % of 3 spenders, rounded up: 1
    }
    assert set(await members(gateway, tenant.auth, "active")) == {"active", "idle"}
    assert await members(gateway, tenant.auth, "lapsed") == ["lapsed"]
    assert await members(gateway, tenant.auth, "top_spenders") == ["active"]
    r = await gateway.client.get("/v1/analytics/segments/new/customers", headers=tenant.auth,
                                 params=AS_OF)
    [new] = r.json()["data"]
    assert (new["external_id"], new["tier"], new["spend_mc"]) == ("new", "standard", 1000)
    assert new["first_at"] == new["last_at"] == "2027-02-24T00:00:00Z"

    # The tenant's thresholds move the boundaries.
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json={
        "analytics": {"top_spender_percent": 50, "lapsed_days": 91}})
    assert r.status_code == 200, r.text
    assert r.json()["analytics"] == {"lapsed_days": 91, "top_spender_percent": 50}
    moved = table(await segments(gateway, tenant.auth))
    assert moved["lapsed"][0] == 0
    assert moved["at_risk"][0] == 2
    assert moved["top_spenders"] == (2, 3000, 2100, 900)  # 50 % of 3, rounded up: 2

    # Later, everyone has aged: nobody is new; `new` has gone quiet for 45 days.
    later = table(await segments(gateway, tenant.auth, as_of="2027-04-10"))
    assert later["new"][0] == 0
    assert "new" in await members(gateway, tenant.auth, "at_risk", as_of="2027-04-10")

    r = await gateway.client.get("/v1/analytics/segments", headers=tenant.auth,
                                 params={**AS_OF, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == body["columns"]
    assert ["returning", "1", "500", "300", "200"] in rows


async def test_thresholds_are_validated(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    for bad in ({"active_days": 90, "lapsed_days": 90}, {"new_days": 0},
                {"top_spender_percent": 101}, {"lapsed_days": 10}, {"whatever": 1}):
        r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                       json={"analytics": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"analytics": {"new_days": 7}})
    assert r.status_code == 200, r.text
    assert (await segments(gateway, tenant.auth))["thresholds"]["new_days"] == 7
    for query in ({"as_of": "soon"}, {"format": "xml"}):
        r = await gateway.client.get("/v1/analytics/segments", headers=tenant.auth,
                                     params=query)
        assert r.status_code in (400, 422), query
    r = await gateway.client.get("/v1/analytics/segments/whales/customers",
                                 headers=tenant.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "segment_not_found"


async def test_who_may_read_segments(gateway: Gateway, smtp_server: Inbox) -> None:
    tenant_id, slug, key = await open_tenant(gateway)
    ours = await customer(gateway, tenant_id, "ours")
    await generated(gateway, tenant_id, ours, 1, retail=10, wholesale=5)
    billing_key = {"Authorization": f"Bearer {key}"}  # generate, read, billing
    assert (await gateway.client.get("/v1/analytics/segments",
                                     headers=billing_key)).status_code == 200
    reader = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/keys",
                                       headers=gateway.admin(),
                                       json={"name": "r", "scopes": ["read"]})
    read_only = {"Authorization": f"Bearer {reader.json()['key']}"}
    assert (await gateway.client.get("/v1/analytics/segments",
                                     headers=read_only)).status_code == 403
    bound = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/keys",
                                      headers=gateway.admin(),
                                      json={"name": "c", "scopes": ["billing"],
                                            "customer_id": "ours"})
    assert bound.status_code == 201, bound.text
    r = await gateway.client.get("/v1/analytics/segments",
                                 headers={"Authorization": f"Bearer {bound.json()['key']}"})
    assert r.status_code == 403
    viewer, _ = await invited(gateway, smtp_server, tenant_id, slug, "viewer")
    seen = await viewer.get("/v1/analytics/segments", params=AS_OF)
    assert seen.status_code == 200, seen.text
    developer, _ = await invited(gateway, smtp_server, tenant_id, slug, "developer")
    assert (await developer.get("/v1/analytics/segments")).status_code == 403
    # Another tenant's customers are never counted nor listed.
    other = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    assert all(row["customers"] == 0
               for row in (await segments(gateway, other.auth))["data"])
    assert await members(gateway, other.auth, "new") == []
