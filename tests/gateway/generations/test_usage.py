"""`GET /v1/usage` (gateway/generations/usage.py): exact sums by status and charge, each
grouping, the scope of each caller, the period's bounds and bad parameters; SQLite and
PostgreSQL both (the day is truncated per dialect)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from gateway.generations.models import Generation
from gateway.providers.states import provider_label
from tenants.kernel.db import new_id
from tenants.models import Customer
from tests.conftest import Gateway, Tenant

DAY1 = datetime(2026, 11, 3, 23, 59, 59, tzinfo=UTC)
DAY2 = datetime(2026, 11, 4, 0, 0, 0, tzinfo=UTC)
PERIOD = {"from": "2026-11-01", "to": "2026-12-01"}


async def add(gw: Gateway, tenant_id: str, *, at: datetime, status: str = "succeeded",
              charged: int | None = None, key_id: str | None = None,
              customer_id: str | None = None, provider: str = "echo", type: str = "image",
              cached: bool = False, retail: int = 0) -> None:
    """A generation row as the lifecycle leaves it (charged only when it succeeded)."""
    async with gw.runtime.db.transaction() as session:
        session.add(Generation(
            id=new_id("gen"), tenant_id=tenant_id, customer_id=customer_id, api_key_id=key_id,
            type=type, operation="text_to_image" if type == "image" else "text_to_speech",
            prompt="p", provider=provider, status=status, cached=cached, cost_usd_micros=0,
            wholesale_mc=charged or 0, retail_mc=retail, estimated_mc=charged or 0,
            charged_mc=charged, request_hash="h", created_at=at))


async def usage(gw: Gateway, auth: dict[str, str], **query: str) -> Any:
    r = await gw.client.get("/v1/usage", headers=auth, params={**PERIOD, **query})
    assert r.status_code == 200, r.text
    return r.json()


async def world(gw: Gateway) -> tuple[Tenant, dict[str, str], str, str]:
    """A tenant (its key with billing), a second key of it with `read` only (its auth, its
    id), a customer's internal id; rows of every kind, and another tenant's rows."""
    tenant = await gw.tenant(scopes=["generate", "read", "billing", "tenant_admin"])
    other = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                                 json={"name": "dev", "scopes": ["generate", "read"]})
    assert other.status_code == 201, other.text
    dev_auth = {"Authorization": f"Bearer {other.json()['key']}"}
    dev_id = other.json()["id"]
    customer_id = new_id("cus")
    async with gw.runtime.db.transaction() as session:
        session.add(Customer(id=customer_id, tenant_id=tenant.id, external_id="alice"))
    t, k = tenant.id, tenant.key_id
    await add(gw, t, at=DAY1, charged=520, key_id=k)
    await add(gw, t, at=DAY1, status="failed", key_id=k)
    await add(gw, t, at=DAY2, charged=300, key_id=k, cached=True)  # a cache hit, billed
    await add(gw, t, at=DAY2, charged=1000, key_id=dev_id, provider="scripted", type="audio")
    await add(gw, t, at=DAY2, status="canceled", key_id=dev_id)
    await add(gw, t, at=DAY2, charged=200, key_id=k, customer_id=customer_id, retail=700)
    # Outside the period: the last instant before it, and its exclusive end.
    await add(gw, t, at=datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), charged=5, key_id=k)
    await add(gw, t, at=datetime(2026, 12, 1, tzinfo=UTC), charged=7, key_id=k)
    stranger = await gw.tenant()
    await add(gw, stranger.id, at=DAY1, charged=99_999, key_id=stranger.key_id)
    return tenant, dev_auth, dev_id, customer_id


def sums(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["count"], row["succeeded"], row["failed"], row["charged_mc"]


async def test_totals_and_each_grouping_are_exact(gateway: Gateway) -> None:
    tenant, _, dev_id, customer_id = await world(gateway)
    body = await usage(gateway, tenant.auth)
    assert body["scope"] == "tenant"
    assert body["object"] == "list"
    assert body["from"].startswith("2026-11-01T00:00:00")
    assert body["to"].startswith("2026-12-01")
    assert [sums(r) for r in body["data"]] == [(6, 4, 1, 520 + 300 + 1000 + 200)]
    assert body["data"][0]["unit"] == "millicredit"
    assert "day" not in body["data"][0]

    by_day = (await usage(gateway, tenant.auth, group_by="day"))["data"]
    assert [(r["day"], sums(r)) for r in by_day] == [
        ("2026-11-03", (2, 1, 1, 520)), ("2026-11-04", (4, 3, 0, 1500))]

    by_key = {r["key_id"]: sums(r) for r in
              (await usage(gateway, tenant.auth, group_by="key"))["data"]}
    assert by_key == {tenant.key_id: (4, 3, 1, 1020), dev_id: (2, 1, 0, 1000)}

    combo = (await usage(gateway, tenant.auth, group_by="type,provider,status"))["data"]
    assert [(r["type"], r["provider"], r["status"], sums(r)) for r in combo] == [
        ("audio", "scripted", "succeeded", (1, 1, 0, 1000)),
        ("image", "echo", "canceled", (1, 0, 0, 0)),
        ("image", "echo", "failed", (1, 0, 1, 0)),
        ("image", "echo", "succeeded", (3, 3, 0, 1020)),
    ]
    assert set(combo[0]) == {"type", "provider", "status", "count", "succeeded", "failed",
                             "charged_mc", "unit"}

    by_customer = {r["customer_id"]: sums(r) for r in
                   (await usage(gateway, tenant.auth, group_by="customer"))["data"]}
    assert by_customer == {None: (5, 3, 1, 1820), customer_id: (1, 1, 0, 200)}


async def test_a_key_without_billing_sees_its_own_and_a_customer_its_own_at_retail(
        gateway: Gateway) -> None:
    tenant, dev_auth, dev_id, customer_id = await world(gateway)
    own = await usage(gateway, dev_auth, group_by="key")
    assert own["scope"] == "key"
    assert [(r["key_id"], sums(r)) for r in own["data"]] == [(dev_id, (2, 1, 0, 1000))]

    # The tenant paid wholesale (200) for its customer: the customer sees retail (700),
    # and the white-label tenant's neutral provider name.
    alice = {**tenant.auth, "X-Customer-Id": "alice"}
    seen = await usage(gateway, alice, group_by="provider")
    assert seen["scope"] == "customer"
    label = provider_label(gateway.runtime, await gateway.runtime.tenant_views.tenant(tenant.id),
                           "echo", customer=True)
    assert label.startswith("engine_")
    assert [(r["provider"], sums(r)) for r in seen["data"]] == [(label, (1, 1, 0, 700))]
    async with gateway.runtime.db.session() as session:
        assert await session.scalar(select(Customer.id).where(
            Customer.tenant_id == tenant.id, Customer.external_id == "alice")) == customer_id


async def test_an_empty_period_has_no_rows_and_defaults_to_this_month(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/usage", headers=tenant.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"] == []
    assert body["group_by"] == []
    now = datetime.now(UTC)
    assert body["from"].startswith(f"{now:%Y-%m}-01T00:00:00")
    start = datetime.fromisoformat(body["from"])
    end = datetime.fromisoformat(body["to"])
    assert end.day == 1
    assert end > now > start
    assert (end - start).days in (28, 29, 30, 31)


async def test_bad_parameters_are_422_with_their_param(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    for query, code, param in (
            ({"group_by": "day,colour"}, "invalid_group_by", "group_by"),
            ({"from": "yesterday"}, "invalid_date", "from"),
            ({"to": "2026-13-01"}, "invalid_date", "to"),
            ({"from": "2026-11-02", "to": "2026-11-01"}, "invalid_range", "to"),
            ({"from": "2025-01-01", "to": "2026-01-03"}, "invalid_range", "to"),
            ({"to": "0001-01-01"}, "invalid_range", "to"),
            ({"from": "0001-01-01T00:00:00+01:00"}, "invalid_date", "from")):
        r = await gateway.client.get("/v1/usage", headers=tenant.auth, params=query)
        assert r.status_code == 422, (query, r.text)
        error = r.json()["error"]
        assert (error["code"], error["param"]) == (code, param), query
    # Date-times with an offset are moved to UTC; a year and a day (leap) is allowed.
    r = await gateway.client.get("/v1/usage", headers=tenant.auth, params={
        "from": "2026-11-01T02:00:00+02:00", "to": "2027-11-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["from"].startswith("2026-11-01T00:00:00")


async def test_a_key_with_only_generate_is_refused(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["generate"])
    r = await gateway.client.get("/v1/usage", headers=tenant.auth)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "missing_scope"


async def test_a_finished_generation_counts_with_its_charge(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, {"type": "image", "prompt": "a lighthouse"})
    r = await gateway.client.get("/v1/usage", headers=tenant.auth,
                                 params={"group_by": "provider,status"})
    assert r.status_code == 200, r.text
    assert done["status"] == "succeeded"
    assert done["cost"]["charged"] > 0
    assert [(x["provider"], x["status"], x["charged_mc"]) for x in r.json()["data"]] == [
        (done["provider"], "succeeded", done["cost"]["charged"])]
