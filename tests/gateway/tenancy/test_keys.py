"""`/v1/keys`: a tenant's owners manage its API keys themselves (issue #13), each change
audited; a key's own rate limit (issue #16)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenants.audit import AuditEvent
from tests.conftest import Gateway


async def admin_key(gw: Gateway, **fields: Any) -> tuple[str, dict[str, str]]:
    """A tenant and a `tenant_admin` key of it: (tenant id, auth headers)."""
    tenant = await gw.tenant(scopes=["tenant_admin", "generate", "read", "billing"], **fields)
    return tenant.id, tenant.auth


async def audit_events(gw: Gateway, tenant_id: str, action: str) -> list[AuditEvent]:
    async with gw.runtime.db.session() as session:
        return list(await session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id,
                                     AuditEvent.action == action)
            .order_by(AuditEvent.created_at)))


async def test_a_tenant_admin_creates_lists_reads_changes_and_revokes_keys(
        gateway: Gateway) -> None:
    tenant_id, auth = await admin_key(gateway)
    admin_key_id = (await gateway.client.get("/v1/keys", headers=auth)).json()["data"][0]["id"]
    r = await gateway.client.post("/v1/keys", headers=auth, json={
        "name": "worker", "scopes": ["generate", "read"], "monthly_budget_mc": 5_000,
        "rate_limit": {"requests_per_minute": 120, "burst": 10}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("mh_")
    assert (created["monthly_budget_mc"], created["rate_limit"]) == (
        5_000, {"requests_per_minute": 120, "burst": 10})
    new_auth = {"Authorization": f"Bearer {created['key']}"}
    assert (await gateway.client.get("/v1/credits/packages", headers=new_auth)).status_code == 200

    listing = (await gateway.client.get("/v1/keys", headers=auth)).json()
    assert [k["id"] for k in listing["data"]] == [created["id"], admin_key_id]  # newest first
    assert all("key" not in k and "secret_hash" not in k for k in listing["data"])
    assert listing["data"][0]["month_spend_mc"] == 0
    page = (await gateway.client.get("/v1/keys?limit=1", headers=auth)).json()
    assert len(page["data"]) == 1
    assert page["next_cursor"]
    rest = (await gateway.client.get(f"/v1/keys?limit=1&cursor={page['next_cursor']}",
                                     headers=auth)).json()
    assert ([k["id"] for k in rest["data"]], rest["next_cursor"]) == ([admin_key_id], None)

    r = await gateway.client.patch(f"/v1/keys/{created['id']}", headers=auth,
                                   json={"name": "worker-2", "monthly_budget_mc": None})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["monthly_budget_mc"]) == ("worker-2", None)
    got = (await gateway.client.get(f"/v1/keys/{created['id']}", headers=auth)).json()
    assert (got["name"], got["rate_limit"]["burst"]) == ("worker-2", 10)

    r = await gateway.client.delete(f"/v1/keys/{created['id']}", headers=auth)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    # Refused at once (the key had just been used, so it sat in the key cache).
    r = await gateway.client.get("/v1/credits/packages", headers=new_auth)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "revoked_api_key")

    created_events = await audit_events(gateway, tenant_id, "key.created")
    mine = [e for e in created_events if e.target_id == created["id"]]
    assert [e.actor for e in mine] == [f"key:{admin_key_id}"]
    assert mine[0].after["monthly_budget_mc"] == 5_000
    assert "key" not in mine[0].after
    [updated] = await audit_events(gateway, tenant_id, "key.updated")
    assert (updated.before["name"], updated.after["name"]) == ("worker", "worker-2")
    assert (updated.before["monthly_budget_mc"], updated.after["monthly_budget_mc"]) == (
        5_000, None)
    [revoked] = await audit_events(gateway, tenant_id, "key.revoked")
    assert revoked.before["revoked_at"] is None
    assert revoked.after["revoked_at"] is not None
    # Revoking again changes nothing and records nothing.
    assert (await gateway.client.delete(f"/v1/keys/{created['id']}",
                                        headers=auth)).status_code == 200
    assert len(await audit_events(gateway, tenant_id, "key.revoked")) == 1


async def test_another_tenants_key_is_not_found_and_other_keys_are_refused(
        gateway: Gateway) -> None:
    _, auth = await admin_key(gateway)
    other = await gateway.tenant()
    for method, path in (("GET", f"/v1/keys/{other.key_id}"),
                         ("PATCH", f"/v1/keys/{other.key_id}"),
                         ("DELETE", f"/v1/keys/{other.key_id}")):
        r = await gateway.client.request(method, path, headers=auth,
                                         json={"name": "x"} if method == "PATCH" else None)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "key_not_found"), path
    # The other tenant's key still works.
    assert (await gateway.client.get("/v1/credits/balance",
                                     headers=other.auth)).status_code == 200
    # A key without tenant_admin: 403, and its request changes nothing.
    r = await gateway.client.post("/v1/keys", headers=other.auth, json={"name": "x"})
    assert (r.status_code, r.json()["error"]["type"]) == (403, "permission_error")
    r = await gateway.client.get("/v1/keys", headers=other.auth)
    assert r.status_code == 403
    # A tenant_admin key bound to a customer cannot manage the tenant.
    tenant_id, _ = await admin_key(gateway)
    bound = await gateway.client.post(
        f"/admin/v1/tenants/{tenant_id}/keys", headers=gateway.admin(),
        json={"name": "bound", "scopes": ["tenant_admin"], "customer_id": "c1"})
    r = await gateway.client.get("/v1/keys", headers={
        "Authorization": f"Bearer {bound.json()['key']}"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "customer_key")
    # No key at all: 401.
    assert (await gateway.client.get("/v1/keys")).status_code == 401


async def test_bad_input_is_a_4xx(gateway: Gateway) -> None:
    _, auth = await admin_key(gateway)
    for body in ({"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]},
                 {"name": "x", "monthly_budget_mc": -1},
                 {"name": "x", "rate_limit": {"requests_per_minute": 0}},
                 {"name": "x", "unknown": 1}):
        r = await gateway.client.post("/v1/keys", headers=auth, json=body)
        assert r.status_code in (400, 422), (body, r.text)
    assert (await gateway.client.get("/v1/keys?cursor=zz", headers=auth)).status_code == 422


class Clock:
    def __init__(self) -> None:
        self.now_us = 1_900_000_000 * 1_000_000

    def __call__(self) -> int:
        return self.now_us


async def test_a_keys_own_rate_limit_applies_instead_of_the_tenants_default(
        gateway: Gateway) -> None:
    clock = Clock()
    gateway.runtime.limiter.clock = clock
    _, auth = await admin_key(gateway, rate_limits={"key_requests_per_minute": 1000,
                                                    "key_burst": 100})
    r = await gateway.client.post("/v1/keys", headers=auth, json={
        "name": "slow", "scopes": ["read"],
        "rate_limit": {"requests_per_minute": 6, "burst": 2}})
    slow = {"Authorization": f"Bearer {r.json()['key']}"}
    codes = [(await gateway.client.get("/v1/providers", headers=slow)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    r = await gateway.client.get("/v1/providers", headers=slow)
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert (r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"],
            r.headers["Retry-After"]) == ("2", "0", "10")  # one every 10 s
    # The tenant's admin key keeps the tenant's default (100 at once).
    assert all([(await gateway.client.get("/v1/providers", headers=auth)).status_code == 200
                for _ in range(10)])
    # Raised by PATCH: applies at once (the key cache forgets the key); once what the
    # key owes under the old rate has passed, it may send 50 at once (the old rate: 2).
    key_id = (await gateway.client.get("/v1/keys", headers=auth)).json()["data"][0]["id"]
    r = await gateway.client.patch(f"/v1/keys/{key_id}", headers=auth,
                                   json={"rate_limit": {"requests_per_minute": 600,
                                                        "burst": 50}})
    assert r.status_code == 200, r.text
    clock.now_us += 30 * 1_000_000
    codes = [(await gateway.client.get("/v1/providers", headers=slow)).status_code
             for _ in range(51)]
    assert codes == [200] * 50 + [429]


async def test_the_operators_key_and_grant_changes_are_audited(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys",
                                  headers=gateway.admin(), json={"name": "ops"})
    key_id = r.json()["id"]
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}/keys/{key_id}",
                                   headers=gateway.admin(), json={"monthly_budget_mc": 7})
    assert (r.status_code, r.json()["monthly_budget_mc"]) == (200, 7)
    [updated] = await audit_events(gateway, tenant.id, "key.updated")
    assert (updated.actor, updated.after["monthly_budget_mc"]) == ("operator", 7)
    await gateway.client.delete(f"/admin/v1/tenants/{tenant.id}/keys/{key_id}",
                                headers=gateway.admin())
    created = [e for e in await audit_events(gateway, tenant.id, "key.created")
               if e.target_id == key_id]
    revoked = await audit_events(gateway, tenant.id, "key.revoked")
    assert [e.actor for e in created + revoked] == ["operator", "operator"]
    # The seed grant of `gw.tenant`, once; a repeat of its key is not a second event.
    again = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/credits",
                                      headers={**gateway.admin(), "Idempotency-Key": "seed"},
                                      json={"amount": 1_000_000, "reason": "test"})
    assert again.status_code == 201
    [grant] = await audit_events(gateway, tenant.id, "credits.granted")
    assert (grant.actor, grant.target_type, grant.after["amount_mc"]) == (
        "operator", "tenant", 1_000_000)
