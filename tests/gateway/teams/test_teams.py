"""Teams end to end over the API, on SQLite and PostgreSQL, with mail read from a real SMTP
server: form a team, invite, accept, fund, spend for the team within allocations."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.core.settings import Settings
from plugins.errors import ProviderError
from tenants.audit import AuditEvent
from tenants.kernel.db import utcnow
from tenants.teams.models import TeamAllocationSpend, TeamInvitation
from tests.conftest import (
    Gateway,
    Inbox,
    ProvidersPlugin,
    Scripted,
    make_settings,
    running_gateway,
    scripted,
)
from tests.gateway.teams.helpers import (
    IMAGE,
    allocate,
    customer,
    grant_customer,
    join,
    new_team,
    retail,
    team_balance,
    token_of,
)


@pytest.fixture
async def fixed() -> Scripted:
    return scripted("fixed", cost_usd_micros=10_000, actual_usd_micros=10_000)


@pytest.fixture
async def gw(settings: Settings, fixed: Scripted) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, extra=[ProvidersPlugin(fixed)]) as gateway:
        yield gateway


async def test_a_member_spends_from_the_team_wallet_not_its_own(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=500_000)
    bob = await join(gw, smtp_server, team, "bob")
    price = await retail(gw, bob)
    assert (await team_balance(gw, team))["available"] == 500_000

    done = await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE)
    assert done["status"] == "succeeded"
    assert done["cost"]["charged"] == price
    assert (await team_balance(gw, team))["available"] == 500_000 - price
    assert (await gw.balance(bob))["available"] == 0  # bob's own wallet paid nothing

    # `team_id` in the body works as the header does.
    done = await gw.finish(bob, {**IMAGE, "team_id": team.id})
    assert done["status"] == "succeeded"
    assert (await team_balance(gw, team))["available"] == 500_000 - 2 * price

    # The owner sees the member's team generations; usage per member and type.
    listed = await gw.client.get("/v1/generations", headers={**team.owner,
                                                              "X-Team-Id": team.id})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) == 2
    one = await gw.client.get(f"/v1/generations/{done['id']}", headers=team.owner)
    assert one.status_code == 200, one.text
    usage = await gw.client.get(f"/v1/teams/{team.id}/usage", headers=team.owner)
    assert usage.status_code == 200, usage.text
    assert usage.json()["data"] == [
        {"customer_id": "bob", "type": "image", "spent": 2 * price, "generations": 2}]
    assert usage.json()["total"] == 2 * price


async def test_funding_is_idempotent_audited_and_refused_when_short(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw)
    await grant_customer(gw, team.tenant, "alice", 10_000)
    headers = {**team.owner, "Idempotency-Key": "fund-1"}
    first = await gw.client.post(f"/v1/teams/{team.id}/credits", headers=headers,
                                 json={"amount": 6_000})
    assert first.status_code == 201, first.text
    again = await gw.client.post(f"/v1/teams/{team.id}/credits", headers=headers,
                                 json={"amount": 6_000})
    assert again.json()["id"] == first.json()["id"]
    assert (await team_balance(gw, team))["available"] == 6_000
    assert (await gw.balance(team.owner))["available"] == 4_000
    short = await gw.client.post(f"/v1/teams/{team.id}/credits",
                                 headers={**team.owner, "Idempotency-Key": "fund-2"},
                                 json={"amount": 4_001})
    assert short.status_code == 402, short.text
    missing = await gw.client.post(f"/v1/teams/{team.id}/credits", headers=team.owner,
                                   json={"amount": 1})
    assert missing.status_code in (400, 422), missing.text
    # A plain member may not fund: managers only.
    bob = await join(gw, smtp_server, team, "bob")
    refused = await gw.client.post(f"/v1/teams/{team.id}/credits",
                                   headers={**bob, "Idempotency-Key": "b"}, json={"amount": 1})
    assert refused.status_code == 403, refused.text
    async with gw.runtime.db.session() as session:
        actions = list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == team.tenant.id)))
    assert actions.count("team.funded") == 1
    assert {"team.created", "team_invitation.created", "team_member.joined"} <= set(actions)


async def test_the_tenant_funds_a_team_with_a_tenant_admin_key(gw: Gateway) -> None:
    team = await new_team(gw)
    k = await gw.client.post(f"/admin/v1/tenants/{team.tenant.id}/keys", headers=gw.admin(),
                             json={"name": "admin", "scopes": ["tenant_admin", "read"]})
    admin = {"Authorization": f"Bearer {k.json()['key']}"}
    listed = await gw.client.get("/v1/teams", headers=admin)
    assert [t["id"] for t in listed.json()["data"]] == [team.id]
    r = await gw.client.post(f"/v1/teams/{team.id}/credits",
                             headers={**admin, "Idempotency-Key": "t"}, json={"amount": 7_000})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "tenant"
    assert (await team_balance(gw, team))["available"] == 7_000
    # A tenant key without tenant_admin and without a customer has no teams.
    plain = await gw.client.get("/v1/teams", headers=team.tenant.auth)
    assert plain.status_code == 403, plain.text


async def test_a_viewer_sees_the_gallery_and_cannot_spend(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=100_000)
    bob = await join(gw, smtp_server, team, "bob")
    carol = await join(gw, smtp_server, team, "carol", role="viewer")
    done = await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE)
    refused = await gw.client.post("/v1/generations", headers={**carol, "X-Team-Id": team.id},
                                   json=IMAGE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "team_viewer"
    seen = await gw.client.get(f"/v1/generations/{done['id']}", headers=carol)
    assert seen.status_code == 200, seen.text
    listed = await gw.client.get(f"/v1/generations?team_id={team.id}", headers=carol)
    assert [g["id"] for g in listed.json()["data"]] == [done["id"]]
    # Seeing is not cancelling: a cancel takes the caller's own generations only.
    r = await gw.client.post(f"/v1/generations/{done['id']}/cancel", headers=carol)
    assert r.status_code == 404, r.text
    # A team member's own (non-team) generations stay its own.
    await grant_customer(gw, team.tenant, "bob", 100_000)
    own = await gw.finish(bob, IMAGE)
    r = await gw.client.get(f"/v1/generations/{own['id']}", headers=carol)
    assert r.status_code == 404, r.text


async def test_a_member_cannot_exceed_its_allocation_exact_boundary(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=10_000_000)
    bob = await join(gw, smtp_server, team, "bob")
    price = await retail(gw, bob)
    assert price > 1
    entry = await allocate(gw, team, "bob", 3 * price - 1)
    assert (entry["spent"], entry["remaining"]) == (0, 3 * price - 1)
    as_team = {**bob, "X-Team-Id": team.id}
    for _ in range(2):
        assert (await gw.finish(as_team, IMAGE))["status"] == "succeeded"
    over = await gw.client.post("/v1/generations", headers=as_team, json=IMAGE)
    assert over.status_code == 402, over.text
    error = over.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_credits", "allocation_exceeded")
    assert (error["remaining"], error["required"]) == (price - 1, price)
    await allocate(gw, team, "bob", 3 * price)  # one millicredit more: exactly enough
    assert (await gw.finish(as_team, IMAGE))["status"] == "succeeded"
    listed = await gw.client.get(f"/v1/teams/{team.id}/allocations", headers=team.owner)
    assert listed.json()["data"] == [
        {"customer_id": "bob", "limit": 3 * price, "period": "month", "spent": 3 * price,
         "remaining": 0, "unit": "millicredit", "object": "allocation"}]
    # Bob's own, non-team generations are not limited by the team's allocation.
    await grant_customer(gw, team.tenant, "bob", price)
    assert (await gw.finish(bob, IMAGE))["status"] == "succeeded"


async def test_a_total_allocation_counts_in_total(gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=10_000_000)
    bob = await join(gw, smtp_server, team, "bob")
    price = await retail(gw, bob)
    await allocate(gw, team, "bob", price, period="total")
    assert (await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE))["status"] == "succeeded"
    async with gw.runtime.db.session() as session:
        periods = list(await session.scalars(select(TeamAllocationSpend.period).where(
            TeamAllocationSpend.team_id == team.id)))
    assert periods == ["total"]
    over = await gw.client.post("/v1/generations", headers={**bob, "X-Team-Id": team.id},
                                json=IMAGE)
    assert over.json()["error"]["code"] == "allocation_exceeded"
    assert over.json()["error"]["period"] == "total"


async def test_a_failed_generation_gives_the_allocation_back(
        gw: Gateway, smtp_server: Inbox, fixed: Scripted) -> None:
    team = await new_team(gw, funded=1_000_000)
    bob = await join(gw, smtp_server, team, "bob")
    price = await retail(gw, bob)
    await allocate(gw, team, "bob", price)
    fixed.script = [ProviderError("content policy", code="content_policy", retryable=False)]
    failed = await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE)
    assert failed["status"] == "failed"
    listed = await gw.client.get(f"/v1/teams/{team.id}/allocations", headers=team.owner)
    assert listed.json()["data"][0]["spent"] == 0
    assert (await team_balance(gw, team))["available"] == 1_000_000
    assert (await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE))["status"] == "succeeded"


async def test_invitations_work_once_and_not_after_expiry_or_revoke(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw)
    email = f"dan-{secrets.token_hex(4)}@example.com"
    r = await gw.client.post(f"/v1/teams/{team.id}/invitations", headers=team.owner,
                             json={"email": email, "role": "member"})
    assert r.status_code == 201, r.text
    assert "token" not in r.json()
    message = await smtp_server.next(email)
    assert "Studio" in str(message["Subject"])
    token = token_of(message)
    pending = await gw.client.get(f"/v1/teams/{team.id}/invitations", headers=team.owner)
    assert [i["email"] for i in pending.json()["data"]] == [email]
    dan, erin = customer(team.tenant, "dan"), customer(team.tenant, "erin")
    ok = await gw.client.post("/v1/teams/invitations/accept", headers=dan,
                              json={"token": token})
    assert ok.status_code == 200, ok.text
    twice = await gw.client.post("/v1/teams/invitations/accept", headers=erin,
                                 json={"token": token})
    assert twice.status_code == 404, twice.text
    assert twice.json()["error"]["code"] == "invitation_not_found"

    # Expired.
    late = f"late-{secrets.token_hex(4)}@example.com"
    await gw.client.post(f"/v1/teams/{team.id}/invitations", headers=team.owner,
                         json={"email": late})
    late_token = token_of(await smtp_server.next(late))
    async with gw.runtime.db.transaction() as session:
        await session.execute(update(TeamInvitation).where(TeamInvitation.email == late)
                              .values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = await gw.client.post("/v1/teams/invitations/accept", headers=erin,
                                   json={"token": late_token})
    assert expired.status_code == 404, expired.text

    # Revoked.
    gone = f"gone-{secrets.token_hex(4)}@example.com"
    r = await gw.client.post(f"/v1/teams/{team.id}/invitations", headers=team.owner,
                             json={"email": gone})
    gone_token = token_of(await smtp_server.next(gone))
    d = await gw.client.delete(f"/v1/teams/{team.id}/invitations/{r.json()['id']}",
                               headers=team.owner)
    assert d.status_code == 204, d.text
    revoked = await gw.client.post("/v1/teams/invitations/accept", headers=erin,
                                   json={"token": gone_token})
    assert revoked.status_code == 404, revoked.text
    # A member cannot invite.
    refused = await gw.client.post(f"/v1/teams/{team.id}/invitations", headers=dan,
                                   json={"email": "x@example.com"})
    assert refused.status_code == 403, refused.text


async def test_another_tenants_team_and_a_non_member_are_404(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=100_000)
    other = await gw.tenant(billing_mode="mediahub")
    stranger = customer(other, "alice")  # same external id, another tenant
    outsider = customer(team.tenant, "mallory")  # same tenant, no member
    for auth in (stranger, outsider):
        for path in ("", "/members", "/balance", "/allocations", "/usage"):
            r = await gw.client.get(f"/v1/teams/{team.id}{path}", headers=auth)
            assert r.status_code == 404, (path, r.text)
        r = await gw.client.post("/v1/generations", headers={**auth, "X-Team-Id": team.id},
                                 json=IMAGE)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "team_not_found"
    bob = await join(gw, smtp_server, team, "bob")
    done = await gw.finish({**bob, "X-Team-Id": team.id}, IMAGE)
    r = await gw.client.get(f"/v1/generations/{done['id']}", headers=outsider)
    assert r.status_code == 404, r.text


async def test_teams_need_the_mediahub_billing_mode(gw: Gateway) -> None:
    tenant = await gw.tenant()
    r = await gw.client.post("/v1/teams", headers=customer(tenant, "a"), json={"name": "x"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "teams_unavailable"


async def test_roles_and_the_last_owner(gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw)
    bob = await join(gw, smtp_server, team, "bob", role="admin")
    r = await gw.client.patch(f"/v1/teams/{team.id}/members/alice", headers=bob,
                              json={"role": "member"})
    assert r.status_code == 403, r.text  # an admin cannot unmake an owner
    r = await gw.client.patch(f"/v1/teams/{team.id}/members/alice", headers=team.owner,
                              json={"role": "member"})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "last_owner"
    r = await gw.client.patch(f"/v1/teams/{team.id}/members/bob", headers=team.owner,
                              json={"role": "owner"})
    assert r.status_code == 200, r.text
    r = await gw.client.delete(f"/v1/teams/{team.id}/members/alice", headers=team.owner)
    assert r.status_code == 204, r.text  # alice leaves; bob owns it now
    members = await gw.client.get(f"/v1/teams/{team.id}/members", headers=bob)
    assert [(m["customer_id"], m["role"]) for m in members.json()["data"]] == [("bob", "owner")]
    r = await gw.client.get(f"/v1/teams/{team.id}", headers=team.owner)
    assert r.status_code == 404, r.text
    bob_owner = customer(team.tenant, "bob")
    assert (await gw.client.put(f"/v1/teams/{team.id}/allocations/bob", headers=bob_owner,
                                json={"limit_mc": 5})).status_code == 200
    assert (await gw.client.delete(f"/v1/teams/{team.id}/allocations/bob",
                                   headers=bob_owner)).status_code == 204
    async with gw.runtime.db.session() as session:
        events = list(await session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == team.tenant.id).order_by(AuditEvent.created_at)))
    actions = [e.action for e in events]
    for action in ("team_member.role_changed", "team_member.removed", "team_allocation.set",
                   "team_allocation.removed"):
        assert action in actions, actions
    changed = next(e for e in events if e.action == "team_member.role_changed")
    assert changed.actor == f"key:{team.tenant.key_id}"
    assert (changed.before["role"], changed.after["role"]) == ("admin", "owner")


async def test_a_cached_answer_for_the_team_is_charged_to_the_team(
        database_url: str, tmp_path: Path, smtp_server: Inbox, fixed: Scripted) -> None:
    settings = make_settings(database_url, tmp_path, cache_ttl_s=3600,
                             smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    async with running_gateway(settings, extra=[ProvidersPlugin(fixed)]) as gw:
        team = await new_team(gw, funded=1_000_000, cache={"charge": "full"})
        bob = await join(gw, smtp_server, team, "bob")
        price = await retail(gw, bob)
        await allocate(gw, team, "bob", 2 * price)
        as_team = {**bob, "X-Team-Id": team.id}
        first = await gw.finish(as_team, IMAGE)
        hit = await gw.finish(as_team, IMAGE)
        assert (first["cached"], hit["cached"]) == (False, True)
        assert hit["cost"]["charged"] == price
        assert (await team_balance(gw, team))["available"] == 1_000_000 - 2 * price
        assert (await gw.balance(bob))["available"] == 0
        over = await gw.client.post("/v1/generations", headers=as_team, json=IMAGE)
        assert over.json()["error"]["code"] == "allocation_exceeded"
        members = await gw.client.get(f"/v1/generations?team_id={team.id}", headers=bob)
        assert {g["id"] for g in members.json()["data"]} == {first["id"], hit["id"]}
