"""The operator suspends a tenant: every request with its keys or sessions is a 403
`tenant_suspended` at once, on every gateway process; the operator API and the portal
config still answer; resume lets it back in; both audited."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.conftest import Gateway, Inbox, make_settings, running_gateway
from tests.gateway.people.support import PASSWORD, invited, open_tenant

IMAGE = {"type": "image", "prompt": "a cat", "provider": "local-image"}


async def test_suspend_refuses_keys_and_sessions_and_resume_restores(
        gateway: Gateway, smtp_server: Inbox) -> None:
    host = f"s-{secrets.token_hex(4)}.example"
    tenant_id, slug, key = await open_tenant(gateway, domains=[host])
    auth = {"Authorization": f"Bearer {key}"}
    staff, staff_in = await invited(gateway, smtp_server, tenant_id, slug, "admin")
    assert (await gateway.client.get("/v1/credits/balance", headers=auth)).status_code == 200
    assert (await staff.get("/v1/generations")).status_code == 200

    r = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/suspend",
                                  headers=gateway.admin(), json={"reason": "unpaid invoice"})
    assert r.status_code == 200, r.text
    assert r.json()["suspension_reason"] == "unpaid invoice"
    assert r.json()["suspended_at"] is not None

    for refused in (await gateway.client.get("/v1/credits/balance", headers=auth),
                    await gateway.client.post("/v1/generations", headers=auth, json=IMAGE),
                    await staff.get("/v1/generations"),
                    await staff.post("/v1/generations", json=IMAGE,
                                     headers={"X-CSRF-Token": staff_in["csrf_token"]})):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "tenant_suspended"
        assert "unpaid invoice" in refused.json()["error"]["message"]
    config = await gateway.client.get("/v1/portal/config", headers={"host": host})
    assert config.status_code == 200
    assert config.json()["suspended"] is True
    # No one signs in, up or back while suspended, with the right password or not.
    sign_in = {"email": staff_in["user"]["email"], "password": PASSWORD, "tenant": slug}
    for path, body in (("/v1/auth/login", sign_in),
                       ("/v1/auth/magic", {"email": sign_in["email"], "tenant": slug}),
                       ("/v1/auth/signup", {"email": "new@example.com", "password": PASSWORD,
                                            "tenant": slug})):
        refused = await gateway.client.post(path, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "tenant_suspended"
    # The operator still reads and changes it.
    read = await gateway.client.get(f"/admin/v1/tenants/{tenant_id}", headers=gateway.admin())
    assert read.json()["suspended_at"] == r.json()["suspended_at"]
    patched = await gateway.client.patch(f"/admin/v1/tenants/{tenant_id}",
                                         headers=gateway.admin(), json={"name": "Renamed"})
    assert patched.status_code == 200
    assert patched.json()["suspended_at"] is not None

    back = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/resume",
                                     headers=gateway.admin())
    assert back.status_code == 200, back.text
    assert back.json()["suspended_at"] is None
    assert back.json()["suspension_reason"] is None
    assert (await gateway.client.get("/v1/credits/balance", headers=auth)).status_code == 200
    assert (await staff.get("/v1/generations")).status_code == 200
    config = await gateway.client.get("/v1/portal/config", headers={"host": host})
    assert config.json()["suspended"] is False
    assert (await gateway.client.post("/v1/auth/login", json=sign_in)).status_code == 200

    audit = (await gateway.client.get(f"/admin/v1/audit_log?tenant_id={tenant_id}",
                                      headers=gateway.admin())).json()["data"]
    actions = [(e["action"], e["actor"]) for e in audit
               if e["action"] in ("tenant.suspended", "tenant.resumed")]
    assert actions == [("tenant.resumed", "operator"), ("tenant.suspended", "operator")]
    suspended = next(e for e in audit if e["action"] == "tenant.suspended")
    assert suspended["after"]["suspension_reason"] == "unpaid invoice"
    # Resuming an active tenant changes nothing and logs nothing.
    again = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/resume",
                                      headers=gateway.admin())
    assert again.status_code == 200
    audit = (await gateway.client.get(f"/admin/v1/audit_log?tenant_id={tenant_id}"
                                      "&action=tenant.resumed", headers=gateway.admin()))
    assert len(audit.json()["data"]) == 1


async def test_suspension_is_the_operators_and_checked(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["generate", "read", "billing", "tenant_admin"])
    other = await gateway.tenant()
    # A tenant cannot lift or set it through its own settings, nor call the operator API.
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"suspended_at": None})
    assert r.status_code in (400, 422)
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/suspend",
                                  headers=tenant.auth, json={"reason": "x"})
    assert r.status_code == 401
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "x", "other": 1}):
        r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/suspend",
                                      headers=gateway.admin(), json=body)
        assert r.status_code in (400, 422), body
    r = await gateway.client.post("/admin/v1/tenants/ten_nope/suspend",
                                  headers=gateway.admin(), json={"reason": "x"})
    assert r.status_code == 404
    # Suspending one tenant leaves the others alone.
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/suspend",
                                  headers=gateway.admin(), json={"reason": "abuse"})
    assert r.status_code == 200
    assert (await gateway.client.get("/v1/credits/balance",
                                     headers=other.auth)).status_code == 200
    assert (await gateway.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).status_code == 403


async def test_suspension_reaches_another_process_at_once(pg_url: str, valkey: str,
                                                          tmp_path: Path) -> None:
    """Two gateway processes (each with its own tenant views and key cache) share the
    database and Valkey: the one that did not suspend refuses the very next request, though
    its cached view of the tenant is still fresh."""
    settings = make_settings(pg_url, tmp_path, valkey_url=valkey)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        tenant = await one.tenant()
        # Both processes have read (and cached) the tenant and its key.
        assert (await one.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).status_code == 200
        assert (await two.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).status_code == 200
        r = await one.client.post(f"/admin/v1/tenants/{tenant.id}/suspend",
                                  headers=one.admin(), json={"reason": "fraud review"})
        assert r.status_code == 200, r.text
        cached = await two.runtime.tenant_views.tenant(tenant.id)
        assert cached.suspended_at is None  # process two's view predates the suspension
        refused = await two.client.get("/v1/credits/balance", headers=tenant.auth)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "tenant_suspended"

        assert (await one.client.post(f"/admin/v1/tenants/{tenant.id}/resume",
                                      headers=one.admin())).status_code == 200
        assert (await one.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).status_code == 200
        # Process two lets it in once its view is re-read (at most `ttl_s` later).
        two.runtime.tenant_views.forget(tenant.id)
        assert (await two.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).status_code == 200
