"""`GET /v1/suggestions/trends`: exact counts by type, style, parameter, hour and weekday, and
who may see the whole tenant's."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import Gateway
from tests.gateway.suggestions.helpers import as_customer, customer_id, seed

# 2026-11-30 is a Monday.
MON_09 = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
MON_23 = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
WED_09 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SUN_00 = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)
RANGE = {"from": "2026-11-29T00:00:00Z", "to": "2026-12-07T00:00:00Z"}


async def test_trends_count_exactly_by_hour_weekday_style_and_parameter(
        gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    alice = await customer_id(gw, tenant, "alice")
    bob = await customer_id(gw, tenant, "bob")
    await seed(gw, tenant, "a fox, watercolour, soft light", customer=alice, created_at=MON_09,
               params={"size": "1024x1024", "style": "natural"})
    await seed(gw, tenant, "a harbour, cinematic, ألوان مائية", customer=alice,
               created_at=MON_23, params={"size": "1024x1024"}, status="failed")
    await seed(gw, tenant, "hello there", customer=alice, media_type="audio",
               created_at=WED_09, params={"voice": "alloy", "speed": 1.5})
    await seed(gw, tenant, "a cinematic night street", customer=bob, created_at=SUN_00,
               params={"size": "1792x1024", "seed": True})
    await seed(gw, tenant, "outside the range", customer=alice,
               created_at=datetime(2026, 12, 8, tzinfo=UTC))

    r = await gw.client.get("/v1/suggestions/trends", headers=as_customer(tenant, "alice"),
                            params={**RANGE, "scope": "me"})
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["scope"], me["total"], me["truncated"], me["time_zone"]) == (
        "me", 3, False, "UTC")
    assert me["types"] == [{"key": "image", "count": 2}, {"key": "audio", "count": 1}]
    assert me["styles"] == [{"key": "watercolour", "count": 2},
                            {"key": "cinematic", "count": 1}]
    assert me["parameters"] == [
        {"name": "size", "value": "1024x1024", "count": 2},
        {"name": "speed", "value": "1.5", "count": 1},
        {"name": "style", "value": "natural", "count": 1},
        {"name": "voice", "value": "alloy", "count": 1}]
    hours = [0] * 24
    hours[9], hours[23] = 2, 1
    assert me["by_hour"] == hours
    assert me["by_weekday"] == [{"day": d, "count": c} for d, c in zip(
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), (2, 0, 1, 0, 0, 0, 0), strict=True)]

    r = await gw.client.get("/v1/suggestions/trends", headers=tenant.auth,
                            params={**RANGE, "scope": "tenant"})
    whole = r.json()
    assert whole["total"] == 4
    assert whole["by_weekday"][6] == {"day": "Sun", "count": 1}
    assert whole["by_hour"][0] == 1
    # A tenant key's own "me" is what it made itself, not its customers'.
    r = await gw.client.get("/v1/suggestions/trends", headers=tenant.auth, params=RANGE)
    assert r.json()["total"] == 0


async def test_a_customer_may_not_see_the_whole_tenants_trends(gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    r = await gw.client.get("/v1/suggestions/trends", headers=as_customer(tenant, "alice"),
                            params={"scope": "tenant"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "staff_only"


async def test_a_bad_range_is_a_422(gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    for params in ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
                   {"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
                   {"scope": "everyone"}):
        r = await gw.client.get("/v1/suggestions/trends", headers=tenant.auth, params=params)
        assert r.status_code in (400, 422), (params, r.text)
