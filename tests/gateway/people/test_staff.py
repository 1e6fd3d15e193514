"""Staff management: invitations, roles, the owner rules and the audit trail."""

from __future__ import annotations

import asyncio

from tenants.audit import list_events
from tests.conftest import Gateway, Inbox
from tests.gateway.people.support import email, invited, open_tenant


async def test_owner_rules_and_audit(gateway: Gateway, smtp_server: Inbox) -> None:
    tenant_id, slug, key = await open_tenant(gateway)
    owner, owner_in = await invited(gateway, smtp_server, tenant_id, slug, "owner")
    own_csrf = {"X-CSRF-Token": owner_in["csrf_token"]}
    owner_id = owner_in["user"]["id"]

    # The last owner can be neither demoted nor removed.
    demote = await owner.patch(f"/v1/users/{owner_id}", json={"role": "admin"},
                               headers=own_csrf)
    assert demote.status_code == 409
    assert demote.json()["error"]["code"] == "last_owner"
    remove = await owner.delete(f"/v1/users/{owner_id}", headers=own_csrf)
    assert remove.status_code == 409

    admin, admin_in = await invited(gateway, smtp_server, tenant_id, slug, "admin",
                                    by=owner, csrf=owner_in["csrf_token"])
    adm_csrf = {"X-CSRF-Token": admin_in["csrf_token"]}
    # An admin manages staff but cannot make or unmake owners.
    dev, dev_in = await invited(gateway, smtp_server, tenant_id, slug, "developer",
                                by=admin, csrf=admin_in["csrf_token"])
    promote = await admin.patch(f"/v1/users/{admin_in['user']['id']}", json={"role": "owner"},
                                headers=adm_csrf)
    assert promote.status_code == 403
    assert promote.json()["error"]["code"] == "owner_required"
    invite_owner = await admin.post("/v1/users", json={"email": email(), "role": "owner"},
                                    headers=adm_csrf)
    assert invite_owner.status_code == 403
    touch_owner = await admin.delete(f"/v1/users/{owner_id}", headers=adm_csrf)
    assert touch_owner.status_code == 403
    # A tenant_admin key cannot either.
    admin_key = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/keys",
                                          headers=gateway.admin(),
                                          json={"name": "a", "scopes": ["tenant_admin"]})
    by_key = await gateway.client.patch(
        f"/v1/users/{dev_in['user']['id']}", json={"role": "owner"},
        headers={"Authorization": f"Bearer {admin_key.json()['key']}"})
    assert by_key.status_code == 403
    # A role change applies at the next request.
    change = await admin.patch(f"/v1/users/{dev_in['user']['id']}", json={"role": "viewer"},
                               headers=adm_csrf)
    assert change.status_code == 200, change.text
    assert change.json()["role"] == "viewer"
    assert (await dev.get("/v1/users/me")).json()["user"]["role"] == "viewer"

    # With a second owner, the first may step down; the second is then the last.
    made = await owner.patch(f"/v1/users/{admin_in['user']['id']}", json={"role": "owner"},
                             headers=own_csrf)
    assert made.status_code == 200, made.text
    stepped = await owner.patch(f"/v1/users/{owner_id}", json={"role": "admin"},
                                headers=own_csrf)
    assert stepped.status_code == 200, stepped.text
    last = await admin.delete(f"/v1/users/{admin_in['user']['id']}", headers=adm_csrf)
    assert last.status_code == 409

    # Removing a user disables it and ends its sessions.
    gone = await admin.delete(f"/v1/users/{dev_in['user']['id']}", headers=adm_csrf)
    assert gone.status_code == 200, gone.text
    assert gone.json()["disabled_at"] is not None
    assert (await dev.get("/v1/users/me")).status_code == 401

    # Another tenant's user is 404.
    other_id, other_slug, _ = await open_tenant(gateway)
    _, stranger_in = await invited(gateway, smtp_server, other_id, other_slug, "viewer")
    foreign = await admin.patch(f"/v1/users/{stranger_in['user']['id']}",
                                json={"role": "admin"}, headers=adm_csrf)
    assert foreign.status_code == 404

    listed = await admin.get("/v1/users", params={"role": "owner"})
    assert [u["id"] for u in listed.json()["data"]] == [admin_in["user"]["id"]]
    async with gateway.runtime.db.session() as session:
        events = await list_events(session, tenant_id=tenant_id, limit=50, cursor=None)
    actions = [e.action for e in events.data]
    assert actions.count("user.invited") == 3
    assert actions.count("user.role_changed") == 3
    assert "user.disabled" in actions
    role_change = next(e for e in events.data if e.action == "user.role_changed")
    assert role_change.actor.startswith("user:")
    assert key


async def test_operator_invites_and_duplicates_conflict(
        gateway: Gateway, smtp_server: Inbox) -> None:
    tenant_id, _, _ = await open_tenant(gateway)
    address = email()
    first = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/users",
                                      headers=gateway.admin(),
                                      json={"email": address, "role": "owner"})
    assert first.status_code == 201
    assert first.json()["email_verified"] is False
    await smtp_server.next(address)
    again = await gateway.client.post(f"/admin/v1/tenants/{tenant_id}/users",
                                      headers=gateway.admin(),
                                      json={"email": address.upper(), "role": "admin"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "user_exists"
    missing = await gateway.client.post("/admin/v1/tenants/ten_nope/users",
                                        headers=gateway.admin(),
                                        json={"email": email(), "role": "owner"})
    assert missing.status_code == 404


async def test_two_owners_demoting_each_other_at_once_leave_one(
        gateway: Gateway, smtp_server: Inbox) -> None:
    tenant_id, slug, _ = await open_tenant(gateway)
    a, a_in = await invited(gateway, smtp_server, tenant_id, slug, "owner")
    b, b_in = await invited(gateway, smtp_server, tenant_id, slug, "owner")
    first, second = await asyncio.gather(
        a.patch(f"/v1/users/{b_in['user']['id']}", json={"role": "admin"},
                headers={"X-CSRF-Token": a_in["csrf_token"]}),
        b.patch(f"/v1/users/{a_in['user']['id']}", json={"role": "admin"},
                headers={"X-CSRF-Token": b_in["csrf_token"]}))
    # Exactly one wins. The other either raced it (409: the last owner stays) or came after
    # it, already demoted, and may no longer unmake an owner (403).
    codes = sorted([first.status_code, second.status_code])
    assert codes[0] == 200, codes
    assert codes[1] in (403, 409), codes
    # Whoever lost is an admin now, and still sees the staff list.
    owners = await a.get("/v1/users", params={"role": "owner"})
    assert len(owners.json()["data"]) == 1
