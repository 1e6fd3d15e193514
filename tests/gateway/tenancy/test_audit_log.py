"""The audit log's routes: a tenant's owners and admins read their tenant's events (never
another's), the operator everyone's; each change says who, what, before and after."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway

ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]


async def events(gateway: Gateway, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await gateway.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def test_changes_are_logged_with_actor_before_and_after(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"name": "By the key"})
    assert r.status_code == 200, r.text
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"name": "By the operator",
                                         "caps": {"requests_per_minute": 10}})
    assert r.status_code == 200, r.text

    log = await events(gateway, "/v1/audit_log", tenant.auth)
    newest, by_key = [e for e in log if e["action"] == "tenant.updated"]
    assert newest["actor"] == "operator"
    assert newest["before"] == {"name": "By the key", "caps": {}}
    assert newest["after"] == {"name": "By the operator", "caps": {"requests_per_minute": 10}}
    assert by_key["actor"] == f"key:{tenant.key_id}"
    assert by_key["before"] == {"name": f"Tenant {r.json()['slug']}"}
    assert by_key["after"] == {"name": "By the key"}
    assert by_key["target_type"] == "tenant"
    assert by_key["target_id"] == tenant.id
    assert by_key["tenant_id"] == tenant.id
    created = [e for e in log if e["action"] == "tenant.created"]
    assert len(created) == 1
    assert created[0]["actor"] == "operator"
    assert created[0]["after"]["id"] == tenant.id
    # Newest first, and the action filter.
    assert [e["created_at"] for e in log] == sorted((e["created_at"] for e in log),
                                                     reverse=True)
    only = await events(gateway, "/v1/audit_log?action=tenant.created", tenant.auth)
    assert [e["action"] for e in only] == ["tenant.created"]


async def test_domains_and_images_are_logged(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.post("/v1/tenant/domains", headers=tenant.auth,
                                  json={"hostname": f"audit-{tenant.id[4:]}.example.com"})
    assert r.status_code == 201, r.text
    await gateway.client.delete(f"/v1/tenant/domains/{r.json()['hostname']}",
                                headers=tenant.auth)
    actions = [e["action"] for e in await events(gateway, "/v1/audit_log", tenant.auth)]
    assert actions[:2] == ["domain.deleted", "domain.created"]
    log = await events(gateway, "/v1/audit_log?action=domain.created", tenant.auth)
    assert "verification_token" not in str(log)


async def test_a_tenant_never_sees_another_tenants_events(gateway: Gateway) -> None:
    a = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    b = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    await gateway.client.patch("/v1/tenant", headers=a.auth, json={"name": "A2"})
    await gateway.client.patch("/v1/tenant", headers=b.auth, json={"name": "B2"})
    for tenant, other in ((a, b), (b, a)):
        log = await events(gateway, f"/v1/audit_log?tenant_id={other.id}&limit=100",
                           tenant.auth)
        assert log
        assert {e["tenant_id"] for e in log} == {tenant.id}
        assert other.id not in str(log)
    # The operator sees both, or one.
    everyone = await events(gateway, "/admin/v1/audit_log?limit=100", gateway.admin())
    assert {a.id, b.id} <= {e["tenant_id"] for e in everyone}
    only_b = await events(gateway, f"/admin/v1/audit_log?tenant_id={b.id}", gateway.admin())
    assert {e["tenant_id"] for e in only_b} == {b.id}
    # tenant.created, key.created (the test key), tenant.updated: b's and no one else's.
    assert sorted(e["action"] for e in only_b) == ["key.created", "tenant.created",
                                                   "tenant.updated"]


async def test_the_log_pages_with_a_cursor(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    for i in range(5):
        r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                       json={"name": f"Name {i}"})
        assert r.status_code == 200, r.text
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "/v1/audit_log?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = await gateway.client.get(query, headers=tenant.auth)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 2
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # tenant.created, key.created (the test key) and five updates.
    assert len(seen) == len(set(seen)) == 7
    everything = await events(gateway, "/v1/audit_log?limit=100", tenant.auth)
    assert [e["id"] for e in everything] == seen
    bad = await gateway.client.get("/v1/audit_log?cursor=nonsense", headers=tenant.auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"
    over = await gateway.client.get("/v1/audit_log?limit=1000", headers=tenant.auth)
    assert over.status_code == 422


async def test_the_log_needs_tenant_admin_or_the_operator(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["generate", "read", "billing"])
    r = await gateway.client.get("/v1/audit_log", headers=tenant.auth)
    assert r.status_code == 403
    r = await gateway.client.get("/admin/v1/audit_log", headers=tenant.auth)
    assert r.status_code == 401
