"""The analytics API (gateway/analytics, gateway/admin/analytics_routes): every series against
hand-computed sums, the tenant's time zone moving generations across midnight, week and
month buckets, the customer's own view and its isolation, CSV bytes, bad parameters and the
guards; SQLite and PostgreSQL both.

Generations and their transfers are made with the real ledger verbs and rows
(tests/billing/test_usage_rollups.py, `one_generation`); the rollups are then built by
`billing.usage.rollup` as the periodic job builds them.

The world, in Asia/Riyadh (UTC+3), `mediahub` billing (customers pay retail 3000, the tenant
wholesale 1000; a post of N settles min(N, reserved) on each), provider cost 7777 each:

- G1: alice, image, alpha, made Nov 29 18:00 UTC (Riyadh: the 29th), posted 2000;
  attempts alpha 100 ms.
- G2: alice, image, alpha, made Nov 29 22:00 UTC (Riyadh: the 30th), posted 3000;
  attempts beta 400 ms, then alpha 200 ms (a failover).
- G3: bob, audio, beta, made Dec 1 00:00 UTC (Riyadh: Dec 1), voided (failed); beta 50 ms.
- G4: the tenant's own, image, beta, made Nov 30 00:00 UTC (Riyadh: the 30th), posted 800
  (the tenant pays wholesale); beta 1000 ms.
"""

from __future__ import annotations

import secrets
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from billing import ledger
from billing.usage import rollup
from gateway.analytics.service import tenant_reader
from gateway.core.auth import Principal
from tenants.kernel.errors import PermissionDenied
from tenants.models import Customer
from tests.billing.test_usage_rollups import World, one_generation
from tests.conftest import Gateway, Tenant

PERIOD = {"from": "2026-11-29", "to": "2026-12-02"}
ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]


async def customer_key(gw: Gateway, tenant: Tenant, external_id: str) -> tuple[dict[str, str],
                                                                                str, str]:
    """A key bound to a new customer: its auth, the customer's internal id, its wallet."""
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                             json={"name": external_id, "scopes": ["generate", "read", "billing"],
                                   "customer_id": external_id})
    assert r.status_code == 201, r.text
    async with gw.runtime.db.transaction() as session:
        customer_id = await session.scalar(select(Customer.id).where(
            Customer.tenant_id == tenant.id, Customer.external_id == external_id))
        assert customer_id is not None
        wallet = await ledger.customer_wallet(session, tenant.id, customer_id)
        await ledger.grant(session, tenant_id=tenant.id, to_account=wallet, amount_mc=50_000,
                           idempotency_key=f"seed:{customer_id}", reason="seed")
    return {"Authorization": f"Bearer {r.json()['key']}"}, customer_id, wallet


async def world(gw: Gateway, *, hours: int = 0, providers: tuple[str, str] = ("alpha", "beta"),
                ) -> tuple[Tenant, dict[str, str], dict[str, str]]:
    """The table above (shifted by `hours`, with `providers` for alpha and beta), its rollups
    built; returns the tenant, alice's and bob's auth."""
    tenant = await gw.tenant(scopes=ADMIN_SCOPES, billing_mode="mediahub")
    r = await gw.client.patch("/v1/tenant", headers=tenant.auth,
                              json={"time_zone": "Asia/Riyadh"})
    assert r.status_code == 200, r.text
    assert r.json()["time_zone"] == "Asia/Riyadh"
    alice, alice_id, alice_wallet = await customer_key(gw, tenant, "alice")
    bob, bob_id, bob_wallet = await customer_key(gw, tenant, "bob")
    w = World(tenant_id=tenant.id, tz=ZoneInfo("Asia/Riyadh"), customers=[alice_id, bob_id],
              wallets=[alice_wallet, bob_wallet], key_id=tenant.key_id)
    a, b = providers
    for step in (
        ("gen", 0, False, "image", a, 0, "post", 2000, 0, [(a, 100)]),
        ("gen", 0, False, "image", a, 4, "post", 3000, 0, [(b, 400), (a, 200)]),
        ("gen", 1, False, "audio", b, 30, "void", 0, 0, [(b, 50)]),
        ("gen", None, False, "image", b, 6, "post", 800, 0, [(b, 1000)]),
    ):
        await one_generation(gw.runtime.db, w, (*step[:5], step[5] + hours, *step[6:]))
    await rollup.rebuild_since(gw.runtime.db, tenant.id, None)
    return tenant, alice, bob


async def series(gw: Gateway, auth: dict[str, str], name: str, **query: str) -> Any:
    r = await gw.client.get(f"/v1/analytics/{name}", headers=auth,
                            params={**PERIOD, **query})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "analytics.series"
    return body


def rows(body: dict[str, Any], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(row[n] for n in names) for row in body["data"]]


async def test_credits_by_day_week_month_and_group_in_the_tenant_time_zone(
        gateway: Gateway) -> None:
    tenant, _, _ = await world(gateway)
    body = await series(gateway, tenant.auth, "credits")
    assert body["time_zone"] == "Asia/Riyadh"
    assert (body["from"], body["to"], body["interval"], body["group_by"]) == (
        "2026-11-29", "2026-12-02", "day", None)
    assert body["columns"] == [{"name": "period", "type": "date"},
                               {"name": "count", "type": "integer"},
                               {"name": "charged_mc", "type": "millicredits"},
                               {"name": "wholesale_mc", "type": "millicredits"}]
    cols = ("period", "count", "charged_mc", "wholesale_mc")
    # G2 was made at 22:00 UTC on the 29th: already the 30th in Riyadh.
    assert rows(body, *cols) == [("2026-11-29", 1, 2000, 1000),
                                 ("2026-11-30", 2, 3800, 1800),
                                 ("2026-12-01", 1, 0, 0)]
    # Weeks start on Monday: Sunday the 29th is the week of the 23rd.
    week = await series(gateway, tenant.auth, "credits", interval="week")
    assert rows(week, *cols) == [("2026-11-23", 1, 2000, 1000), ("2026-11-30", 3, 3800, 1800)]
    month = await series(gateway, tenant.auth, "credits", interval="month")
    assert rows(month, *cols) == [("2026-11-01", 3, 5800, 2800), ("2026-12-01", 1, 0, 0)]

    by_customer = await series(gateway, tenant.auth, "credits", group_by="customer")
    assert by_customer["columns"][1] == {"name": "group", "type": "string"}
    assert rows(by_customer, "period", "group", *cols[1:]) == [
        ("2026-11-29", "alice", 1, 2000, 1000),
        ("2026-11-30", None, 1, 800, 800),  # the tenant's own: it paid wholesale
        ("2026-11-30", "alice", 1, 3000, 1000),
        ("2026-12-01", "bob", 1, 0, 0)]
    by_key = await series(gateway, tenant.auth, "credits", group_by="key", interval="month")
    assert rows(by_key, "period", "group", "count") == [
        ("2026-11-01", tenant.key_id, 3), ("2026-12-01", tenant.key_id, 1)]

    # The tenant moves to UTC: the next refresh rebuilds its rollups, G2 is the 29th's.
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json={"time_zone": "UTC"})
    assert r.status_code == 200, r.text
    await rollup.refresh(gateway.runtime.db)
    utc = await series(gateway, tenant.auth, "credits")
    assert utc["time_zone"] == "UTC"
    assert rows(utc, *cols) == [("2026-11-29", 2, 5000, 2000), ("2026-11-30", 1, 800, 800),
                                ("2026-12-01", 1, 0, 0)]


async def test_success_types_costs_latency_and_margin(gateway: Gateway) -> None:
    tenant, _, _ = await world(gateway)
    success = await series(gateway, tenant.auth, "success", group_by="type", interval="month")
    assert rows(success, "period", "group", "count", "succeeded", "failed", "canceled",
                "success_rate") == [("2026-11-01", "image", 3, 3, 0, 0, 1.0),
                                    ("2026-12-01", "audio", 1, 0, 1, 0, 0.0)]
    empty = await series(gateway, tenant.auth, "success", **{"from": "2026-10-01",
                                                             "to": "2026-10-02"})
    assert rows(empty, "period", "count", "success_rate") == [("2026-10-01", 0, None)]

    types = await series(gateway, tenant.auth, "types")
    assert types["interval"] is None
    assert [c["name"] for c in types["columns"]] == ["group", "count", "charged_mc", "share"]
    assert rows(types, "group", "count", "charged_mc", "share") == [
        ("image", 3, 5800, 0.75), ("audio", 1, 0, 0.25)]

    costs = await series(gateway, tenant.auth, "costs")
    assert rows(costs, "group", "count", "cost_usd_micros", "wholesale_mc", "charged_mc") == [
        ("alpha", 2, 2 * 7777, 2000, 5000), ("beta", 2, 7777, 800, 800)]

    lat = await series(gateway, tenant.auth, "latency")
    # Bucket middles (billing/usage/latency.py): 100 → 99, 200 → 197, 50 → 49, 400 → 395,
    # 1000 → 939 ms, each within 9.1 % of the true value.
    assert rows(lat, "provider", "type", "attempts", "p50_ms", "p95_ms", "p99_ms") == [
        ("alpha", "image", 2, 99, 197, 197),
        ("beta", "audio", 1, 49, 49, 49),
        ("beta", "image", 2, 395, 939, 939)]

    margin = await series(gateway, tenant.auth, "margin")
    assert rows(margin, "period", "charged_mc", "wholesale_mc", "margin_mc") == [
        ("2026-11-29", 2000, 1000, 1000), ("2026-11-30", 3800, 1800, 2000),
        ("2026-12-01", 0, 0, 0)]
    by_provider = await series(gateway, tenant.auth, "margin", group_by="provider",
                               interval="month")
    assert rows(by_provider, "period", "group", "margin_mc") == [
        ("2026-11-01", "alpha", 3000), ("2026-11-01", "beta", 0),
        ("2026-12-01", "beta", 0)]


async def test_a_customer_sees_only_its_own_credits(gateway: Gateway) -> None:
    tenant, alice, bob = await world(gateway)
    mine = await series(gateway, alice, "me/credits")
    assert mine["series"] == "me/credits"
    assert rows(mine, "period", "count", "charged_mc") == [
        ("2026-11-29", 1, 2000), ("2026-11-30", 1, 3000), ("2026-12-01", 0, 0)]
    by_type = await series(gateway, alice, "me/credits", group_by="type", interval="month")
    assert rows(by_type, "period", "group", "count", "charged_mc") == [
        ("2026-11-01", "image", 2, 5000)]
    theirs = await series(gateway, bob, "me/credits", interval="month")
    assert rows(theirs, "period", "count", "charged_mc") == [("2026-11-01", 0, 0),
                                                            ("2026-12-01", 1, 0)]
    # A tenant-wide key acting for alice sees alice's; without a customer, no `me`.
    acting = await series(gateway, {**tenant.auth, "X-Customer-Id": "alice"}, "me/credits",
                          interval="month")
    assert rows(acting, "period", "count") == [("2026-11-01", 2), ("2026-12-01", 0)]
    r = await gateway.client.get("/v1/analytics/me/credits", headers=tenant.auth)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "customer_required"
    # A team alice is no member of (or none at all): 404, never another's numbers.
    r = await gateway.client.get("/v1/analytics/me/credits", headers=alice,
                                 params={"team_id": "team_nothere"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "team_not_found"
    # The tenant's series are not a customer's.
    r = await gateway.client.get("/v1/analytics/credits", headers=alice)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "analytics_forbidden"
    # Another tenant sees nothing of this one.
    stranger = await gateway.tenant(scopes=ADMIN_SCOPES)
    other = await series(gateway, stranger.auth, "credits", interval="month")
    assert rows(other, "period", "count") == [("2026-11-01", 0), ("2026-12-01", 0)]


async def test_csv_is_the_same_rows_as_exact_bytes(gateway: Gateway) -> None:
    tenant, _, _ = await world(gateway)
    r = await gateway.client.get("/v1/analytics/credits", headers=tenant.auth,
                                 params={**PERIOD, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        'attachment; filename="credits-2026-11-29-2026-12-02.csv"')
    assert r.content == (b"period,count,charged_mc,wholesale_mc\r\n"
                         b"2026-11-29,1,2000,1000\r\n"
                         b"2026-11-30,2,3800,1800\r\n"
                         b"2026-12-01,1,0,0\r\n")
    # Accept: text/csv asks the same; a null is an empty cell.
    r = await gateway.client.get("/v1/analytics/success", headers={
        **tenant.auth, "Accept": "text/csv"}, params={"from": "2026-10-01", "to": "2026-10-02"})
    assert r.content == (b"period,count,succeeded,failed,canceled,success_rate\r\n"
                         b"2026-10-01,0,0,0,0,\r\n")


async def test_bad_parameters_are_422_and_unknown_series_404(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES)
    for query, code, param in (
        ({"group_by": "colour"}, "invalid_group_by", "group_by"),
        ({"from": "2026-13-01"}, "invalid_date", "from"),
        ({"to": "yesterday"}, "invalid_date", "to"),
        ({"from": "2025-01-01", "to": "2026-01-03"}, "period_too_long", "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "invalid_range", "to"),
        ({"to": "0001-01-02"}, "invalid_range", "to"),
        ({"interval": "hour"}, "invalid_interval", "interval"),
        ({"format": "xml"}, "invalid_format", "format"),
    ):
        r = await gateway.client.get("/v1/analytics/credits", headers=tenant.auth,
                                     params=query)
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["param"] == param
    # Each series has its own dimensions: success has no customer.
    r = await gateway.client.get("/v1/analytics/success", headers=tenant.auth,
                                 params={"group_by": "customer"})
    assert r.json()["error"]["code"] == "invalid_group_by"
    # 366 days is the longest period.
    ok = await gateway.client.get("/v1/analytics/credits", headers=tenant.auth,
                                  params={"from": "2024-01-01", "to": "2025-01-01"})
    assert ok.status_code == 200, ok.text
    r = await gateway.client.get("/v1/analytics/revenue", headers=tenant.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "series_not_found"
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"time_zone": "Mars/Olympus_Mons"})
    assert r.status_code == 422
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "invalid_time_zone", "time_zone")


async def test_who_may_read_tenant_analytics(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["generate", "read"])
    r = await gateway.client.get("/v1/analytics/credits", headers=tenant.auth)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "analytics_forbidden"
    assert (await gateway.client.get("/v1/analytics/credits")).status_code == 401
    billing = await gateway.tenant(scopes=["billing"])
    assert (await gateway.client.get("/v1/analytics/credits",
                                     headers=billing.auth)).status_code == 200

    def staff(role: str) -> Principal:
        return Principal(kind="user", tenant_id="ten_x", key_id=None, customer_id=None,
                         scopes=frozenset(), role=role, user_id="usr_x")

    for role in ("owner", "admin", "billing", "viewer"):
        assert tenant_reader(staff(role)) == "ten_x"
    for role in ("developer", "customer"):
        with pytest.raises(PermissionDenied, match="staff session"):
            tenant_reader(staff(role))


async def test_operator_series_and_guard(gateway: Gateway) -> None:
    # A period and provider names of this test's own (the PostgreSQL database is shared).
    hours = -24 * 1000  # from 2024-03-04 18:00 UTC
    tenant, _, _ = await world(gateway, hours=hours, providers=("op-a", "op-b"))
    period = {"from": "2024-03-04", "to": "2024-03-07"}
    r = await gateway.client.get("/admin/v1/analytics/platform", headers=tenant.auth)
    assert r.status_code == 401
    r = await gateway.client.get("/admin/v1/analytics/platform", headers=gateway.admin(),
                                 params=period)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["time_zone"] is None
    # wholesale 2800 mc = 28 000 USD micros, less the provider cost 3 * 7777.
    assert rows(body, "period", "count", "charged_mc", "wholesale_mc", "cost_usd_micros",
                "platform_margin_usd_micros") == [
        ("2024-03-04", 1, 2000, 1000, 7777, 10_000 - 7777),
        ("2024-03-05", 2, 3800, 1800, 2 * 7777, 18_000 - 2 * 7777),
        ("2024-03-06", 1, 0, 0, 0, 0)]

    r = await gateway.client.get("/admin/v1/analytics/tenants", headers=gateway.admin(),
                                 params=period)
    mine = [row for row in r.json()["data"] if row["group"] == tenant.id]
    assert [(m["count"], m["wholesale_mc"], m["cost_usd_micros"],
             m["platform_margin_usd_micros"]) for m in mine] == [
        (4, 2800, 3 * 7777, 28_000 - 3 * 7777)]

    r = await gateway.client.get("/admin/v1/analytics/providers", headers=gateway.admin(),
                                 params=period)
    found = {row["group"]: row for row in r.json()["data"] if row["group"] in ("op-a", "op-b")}
    a, b = found["op-a"], found["op-b"]
    assert (a["count"], a["succeeded"], a["success_rate"], a["failovers"],
            a["failover_rate"]) == (2, 2, 1.0, 1, 0.5)
    assert (a["attempts"], a["p50_ms"], a["p99_ms"], a["cost_usd_micros"],
            a["cost_per_output_usd_micros"]) == (2, 99, 197, 2 * 7777, 7777)
    assert (b["count"], b["succeeded"], b["success_rate"], b["failover_rate"],
            b["attempts"], b["cost_per_output_usd_micros"]) == (2, 1, 0.5, 0.0, 3, 7777)

    r = await gateway.client.get("/admin/v1/analytics/providers", headers=gateway.admin(),
                                 params={**period, "format": "csv"})
    assert r.headers["content-disposition"] == (
        'attachment; filename="providers-2024-03-04-2024-03-07.csv"')
    r = await gateway.client.get("/admin/v1/analytics/platform", headers=gateway.admin(),
                                 params={"group_by": "type"})
    assert r.status_code == 422
    r = await gateway.client.get("/admin/v1/analytics/credits", headers=gateway.admin())
    assert r.status_code == 404


async def test_the_refresh_is_registered_as_a_periodic_task(gateway: Gateway) -> None:
    periodic = {p.name: p for p in gateway.runtime.tasks.periodic}
    assert periodic["analytics.rollups"].interval_s == gateway.runtime.settings.rollup_interval_s
    tenant, _, _ = await world(gateway)
    # Running it changes nothing already built (its watermark is past these rows' changes).
    before = await series(gateway, tenant.auth, "credits")
    await periodic["analytics.rollups"].run()
    assert await series(gateway, tenant.auth, "credits") == before



async def test_the_portal_config_gives_the_tenant_time_zone(gateway: Gateway) -> None:
    """The usage page starts at "the last 30 days" in the tenant's zone, which a customer's
    browser learns only from the public portal config."""
    host = f"tz-{secrets.token_hex(4)}.example"
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, domains=[host])
    assert (await gateway.client.get("/v1/portal/config", headers={"host": host})
            ).json()["time_zone"] == "UTC"
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"time_zone": "Pacific/Kiritimati"})
    assert r.status_code == 200, r.text
    config = await gateway.client.get("/v1/portal/config", headers={"host": host})
    assert (config.json()["tenant_id"], config.json()["time_zone"]) == (
        tenant.id, "Pacific/Kiritimati")
