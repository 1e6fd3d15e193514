"""Teams, their members and invitations: the database side of `/v1/teams` (the routes, mail
and funding are `gateway/teams/`).

Who may do what (docs/teams.md): members (any role) read their team; owners and admins
manage it (invitations, roles, allocations); only owners touch owners. A tenant-wide caller
(a key without a customer that holds `tenant_admin`) sees and manages every team of its
tenant but is no member: it cannot spend for one. A team the caller may not see is a 404,
whether it belongs to another tenant or the caller is no member.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenants import audit
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tenants.kernel.pagination import keyset, page
from tenants.models import Customer, Tenant
from tenants.teams import allocations
from tenants.teams.models import (
    MANAGERS,
    OWNER,
    Team,
    TeamInvitation,
    TeamMember,
)

#: The role a tenant-wide caller has in every team of its tenant (a manager, not a member).
TENANT = "tenant"
MEDIAHUB = "mediahub"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, as the team rules need it (built from the gateway's `Principal`)."""

    tenant_id: str
    customer_id: str | None
    tenant_admin: bool
    actor: str


def _token_hash(token: str) -> str:
    # Tokens are 256-bit random: a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(token.encode()).hexdigest()


def _member_snapshot(member: TeamMember) -> dict[str, object]:
    return {"team_id": member.team_id, "customer_id": member.customer_id,
            "role": member.role, "allocation_mc": member.allocation_mc,
            "allocation_period": member.allocation_period,
            "removed_at": member.removed_at}


async def _team(session: AsyncSession, tenant_id: str, team_id: str) -> Team:
    team = await session.scalar(select(Team).where(Team.id == team_id,
                                                   Team.tenant_id == tenant_id))
    if team is None:
        raise NotFound("no such team", code="team_not_found", param="team_id")
    return team


async def active_member(session: AsyncSession, tenant_id: str, team_id: str,
                        customer_id: str) -> TeamMember | None:
    """The customer's current membership of the team, or None."""
    return await session.scalar(select(TeamMember).where(
        TeamMember.tenant_id == tenant_id, TeamMember.team_id == team_id,
        TeamMember.customer_id == customer_id, TeamMember.removed_at.is_(None)))


async def role_in(session: AsyncSession, tenant_id: str, team_id: str,
                  customer_id: str) -> str:
    """The customer's role in the team; `NotFound` (`team_not_found`) when the team is not
    this tenant's or the customer is no member. Called when `X-Team-Id` or a body's
    `team_id` names the team a request acts for."""
    member = await active_member(session, tenant_id, team_id, customer_id)
    if member is None:
        raise NotFound("no such team", code="team_not_found", param="team_id")
    return member.role


def _tenant_wide(caller: Caller) -> None:
    if not caller.tenant_admin:
        raise PermissionDenied("teams are a customer's: act for one (a customer key or "
                               "X-Customer-Id), or use a tenant_admin key",
                               code="customer_required")


async def access(session: AsyncSession, caller: Caller, team_id: str, *,
                 manage: bool = False) -> tuple[Team, str]:
    """The team and the caller's role in it; `manage`: owners, admins and tenant-wide
    callers only (403 `team_role` for others). `NotFound` when the caller may not see it."""
    if caller.customer_id is None:
        _tenant_wide(caller)
        return await _team(session, caller.tenant_id, team_id), TENANT
    role = await role_in(session, caller.tenant_id, team_id, caller.customer_id)
    if manage and role not in MANAGERS:
        raise PermissionDenied("only the team's owners and admins may do this",
                               code="team_role")
    return await _team(session, caller.tenant_id, team_id), role


def _need_customer(caller: Caller) -> str:
    if caller.customer_id is None:
        raise InvalidRequest("this acts for a customer: use a customer key or X-Customer-Id",
                             code="customer_required", param="X-Customer-Id")
    return caller.customer_id


async def create_team(session: AsyncSession, caller: Caller, name: str) -> Team:
    """Create a team whose owner is the calling customer; called by `POST /v1/teams`, which
    opens its wallet in the same transaction (`billing.ledger.open_team_wallet`). Teams exist
    only in the `mediahub` billing mode (customers have no wallets here otherwise):
    `InvalidRequest` (`teams_unavailable`)."""
    customer_id = _need_customer(caller)
    tenant = await session.get(Tenant, caller.tenant_id)
    if tenant is None or tenant.billing_mode != MEDIAHUB:
        raise InvalidRequest("teams need the tenant's 'mediahub' billing mode (customer "
                             "wallets)", code="teams_unavailable")
    team = Team(id=new_id("team"), tenant_id=caller.tenant_id, name=name,
                created_by=customer_id)
    session.add(team)
    await session.flush()
    owner = TeamMember(id=new_id("tmem"), tenant_id=caller.tenant_id, team_id=team.id,
                       customer_id=customer_id, role=OWNER)
    session.add(owner)
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team.created", target_type="team", target_id=team.id,
                       after={"name": name, "owner": customer_id})
    return team


async def list_teams(session: AsyncSession, caller: Caller, *, limit: int,
                     cursor: str | None) -> tuple[list[tuple[Team, str]], str | None]:
    """The caller customer's teams with its role in each (a tenant-wide caller: all of the
    tenant's), newest first; one page and the next cursor."""
    if caller.customer_id is None:
        _tenant_wide(caller)
        query = select(Team).where(Team.tenant_id == caller.tenant_id)
        rows = list(await session.scalars(keyset(query, Team.created_at, Team.id, cursor,
                                                 limit)))
        kept, next_cursor = page(rows, limit)
        return [(t, TENANT) for t in kept], next_cursor
    joined = (select(Team, TeamMember.role)
              .join(TeamMember, TeamMember.team_id == Team.id)
              .where(Team.tenant_id == caller.tenant_id,
                     TeamMember.customer_id == caller.customer_id,
                     TeamMember.removed_at.is_(None)))
    found = (await session.execute(keyset(joined, Team.created_at, Team.id, cursor,
                                          limit))).all()
    teams = [row[0] for row in found]
    roles = {row[0].id: row[1] for row in found}
    kept, next_cursor = page(teams, limit)
    return [(t, roles[t.id]) for t in kept], next_cursor


async def rename_team(session: AsyncSession, caller: Caller, team_id: str,
                      name: str) -> tuple[Team, str]:
    """Rename a team (owners, admins); audited."""
    team, role = await access(session, caller, team_id, manage=True)
    before = team.name
    team.name = name
    team.updated_at = utcnow()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team.updated", target_type="team", target_id=team.id,
                       before={"name": before}, after={"name": name})
    return team, role


async def customer_by_external(session: AsyncSession, tenant_id: str,
                               external_id: str) -> Customer:
    found = await session.scalar(select(Customer).where(Customer.tenant_id == tenant_id,
                                                        Customer.external_id == external_id))
    if found is None:
        raise NotFound("no such member", code="member_not_found", param="customer_id")
    return found


async def members(session: AsyncSession, caller: Caller, team_id: str, *, limit: int,
                  cursor: str | None) -> tuple[list[tuple[TeamMember, str]], str | None]:
    """The team's current members (oldest first) with the tenant's own id of each."""
    await access(session, caller, team_id)
    query = (select(TeamMember, Customer.external_id)
             .join(Customer, Customer.id == TeamMember.customer_id)
             .where(TeamMember.tenant_id == caller.tenant_id, TeamMember.team_id == team_id,
                    TeamMember.removed_at.is_(None)))
    rows = (await session.execute(keyset(query, TeamMember.created_at, TeamMember.id, cursor,
                                         limit, newest_first=False))).all()
    kept, next_cursor = page([row[0] for row in rows], limit)
    external = {row[0].id: row[1] for row in rows}
    return [(m, external[m.id]) for m in kept], next_cursor


async def _target(session: AsyncSession, caller: Caller, team_id: str,
                  external_id: str) -> TeamMember:
    customer = await customer_by_external(session, caller.tenant_id, external_id)
    member = await active_member(session, caller.tenant_id, team_id, customer.id)
    if member is None:
        raise NotFound("no such member", code="member_not_found", param="customer_id")
    return member


async def _owners(session: AsyncSession, tenant_id: str, team_id: str) -> int:
    return len(list(await session.scalars(select(TeamMember.id).where(
        TeamMember.tenant_id == tenant_id, TeamMember.team_id == team_id,
        TeamMember.role == OWNER, TeamMember.removed_at.is_(None)).with_for_update())))


async def set_role(session: AsyncSession, caller: Caller, team_id: str, external_id: str,
                   role: str) -> TeamMember:
    """Change a member's role (owners, admins; only an owner makes or unmakes an owner; the
    last owner stays one: 409 `last_owner`); audited."""
    _, mine = await access(session, caller, team_id, manage=True)
    member = await _target(session, caller, team_id, external_id)
    if OWNER in (role, member.role) and mine not in (OWNER, TENANT):
        raise PermissionDenied("only an owner may make or unmake an owner", code="team_role")
    if member.role == OWNER and role != OWNER and await _owners(
            session, caller.tenant_id, team_id) <= 1:
        raise Conflict("a team keeps at least one owner", code="last_owner",
                       param="role")
    before = _member_snapshot(member)
    member.role = role
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_member.role_changed", target_type="team_member",
                       target_id=member.id, before=before, after=_member_snapshot(member))
    return member


async def remove_member(session: AsyncSession, caller: Caller, team_id: str,
                        external_id: str) -> TeamMember:
    """Remove a member (owners and admins; any member may leave): its allocation ends, its
    generations in flight settle normally. The last owner cannot leave (409 `last_owner`)."""
    leaving = caller.customer_id is not None
    if leaving:
        customer = await customer_by_external(session, caller.tenant_id, external_id)
        leaving = customer.id == caller.customer_id
    _, mine = await access(session, caller, team_id, manage=not leaving)
    member = await _target(session, caller, team_id, external_id)
    if member.role == OWNER and not leaving and mine not in (OWNER, TENANT):
        raise PermissionDenied("only an owner may remove an owner", code="team_role")
    if member.role == OWNER and await _owners(session, caller.tenant_id, team_id) <= 1:
        raise Conflict("a team keeps at least one owner", code="last_owner",
                       param="customer_id")
    before = _member_snapshot(member)
    member.removed_at = utcnow()
    member.allocation_mc = None
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_member.removed", target_type="team_member",
                       target_id=member.id, before=before, after=_member_snapshot(member))
    return member


# -- invitations -----------------------------------------------------------------------------

async def invite(session: AsyncSession, caller: Caller, team_id: str, email: str, role: str,
                 ttl_s: int) -> tuple[Team, TeamInvitation, str]:
    """Record an invitation (owners, admins); returns the team, the invitation and its
    one-time token (only its hash is stored), for the caller to mail. Audited."""
    team, _ = await access(session, caller, team_id, manage=True)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    invitation = TeamInvitation(id=new_id("tinv"), tenant_id=caller.tenant_id,
                                team_id=team.id, email=email.strip(), role=role,
                                token_hash=_token_hash(token), invited_by=caller.actor,
                                created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(invitation)
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_invitation.created", target_type="team_invitation",
                       target_id=invitation.id,
                       after={"team_id": team.id, "email": invitation.email, "role": role,
                              "expires_at": invitation.expires_at})
    return team, invitation, token


async def pending_invitations(session: AsyncSession, caller: Caller, team_id: str, *,
                              limit: int, cursor: str | None,
                              ) -> tuple[list[TeamInvitation], str | None]:
    """The team's invitations neither accepted, revoked nor expired, newest first."""
    await access(session, caller, team_id, manage=True)
    query = select(TeamInvitation).where(
        TeamInvitation.tenant_id == caller.tenant_id, TeamInvitation.team_id == team_id,
        TeamInvitation.accepted_at.is_(None), TeamInvitation.revoked_at.is_(None),
        TeamInvitation.expires_at > utcnow())
    rows = list(await session.scalars(keyset(query, TeamInvitation.created_at,
                                             TeamInvitation.id, cursor, limit)))
    return page(rows, limit)


async def revoke_invitation(session: AsyncSession, caller: Caller, team_id: str,
                            invitation_id: str) -> TeamInvitation:
    """Revoke a pending invitation (owners, admins); an accepted one is 409. Audited."""
    await access(session, caller, team_id, manage=True)
    invitation = await session.scalar(select(TeamInvitation).where(
        TeamInvitation.id == invitation_id, TeamInvitation.team_id == team_id,
        TeamInvitation.tenant_id == caller.tenant_id))
    if invitation is None:
        raise NotFound("no such invitation", code="invitation_not_found", param="id")
    if invitation.accepted_at is not None:
        raise Conflict("the invitation was already accepted", code="invitation_used")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        await session.flush()
        await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                           action="team_invitation.revoked", target_type="team_invitation",
                           target_id=invitation.id, after={"team_id": team_id})
    return invitation


async def accept(session: AsyncSession, caller: Caller, token: str) -> tuple[Team, TeamMember]:
    """Use an invitation once: the calling customer becomes a member with the invited role.
    One conditional UPDATE takes the token (so two racing accepts cannot both succeed); an
    unknown, used, revoked or expired token, or another tenant's, is 404
    `invitation_not_found`; an active member is 409 `already_member` (the token stays
    unused: the transaction rolls back)."""
    customer_id = _need_customer(caller)
    now = utcnow()
    taken = (await session.execute(
        update(TeamInvitation)
        .where(TeamInvitation.token_hash == _token_hash(token),
               TeamInvitation.tenant_id == caller.tenant_id,
               TeamInvitation.accepted_at.is_(None), TeamInvitation.revoked_at.is_(None),
               TeamInvitation.expires_at > now)
        .values(accepted_at=now, accepted_by=customer_id)
        .returning(TeamInvitation.id, TeamInvitation.team_id, TeamInvitation.role))).first()
    if taken is None:
        raise NotFound("this invitation is unknown, used, revoked or expired",
                       code="invitation_not_found", param="token")
    team = await _team(session, caller.tenant_id, taken.team_id)
    member = await session.scalar(select(TeamMember).where(
        TeamMember.tenant_id == caller.tenant_id, TeamMember.team_id == team.id,
        TeamMember.customer_id == customer_id))
    if member is not None and member.removed_at is None:
        raise Conflict("you are already a member of this team", code="already_member",
                       param="token")
    if member is None:
        member = TeamMember(id=new_id("tmem"), tenant_id=caller.tenant_id, team_id=team.id,
                            customer_id=customer_id, role=taken.role)
        session.add(member)
    else:  # a former member comes back, with no allocation until one is given
        member.role, member.removed_at, member.allocation_mc = taken.role, None, None
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_member.joined", target_type="team_member",
                       target_id=member.id,
                       after={**_member_snapshot(member), "invitation_id": taken.id})
    return team, member


# -- allocations -----------------------------------------------------------------------------

async def set_allocation(session: AsyncSession, caller: Caller, team_id: str,
                         external_id: str, limit_mc: int, period: str) -> TeamMember:
    """Give a member a limit per calendar month or in total (owners, admins); audited. What
    it spent in the period so far still counts."""
    await access(session, caller, team_id, manage=True)
    member = await _target(session, caller, team_id, external_id)
    before = _member_snapshot(member)
    member.allocation_mc, member.allocation_period = limit_mc, period
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_allocation.set", target_type="team_member",
                       target_id=member.id, before=before, after=_member_snapshot(member))
    return member


async def remove_allocation(session: AsyncSession, caller: Caller, team_id: str,
                            external_id: str) -> TeamMember:
    """End a member's allocation (it is then limited by the team's wallet alone); audited."""
    await access(session, caller, team_id, manage=True)
    member = await _target(session, caller, team_id, external_id)
    if member.allocation_mc is None:
        raise NotFound("this member has no allocation", code="allocation_not_found",
                       param="customer_id")
    before = _member_snapshot(member)
    member.allocation_mc = None
    await session.flush()
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="team_allocation.removed", target_type="team_member",
                       target_id=member.id, before=before, after=_member_snapshot(member))
    return member


async def usage_of(session: AsyncSession, member: TeamMember,
                   month: str) -> allocations.Usage | None:
    """A member's allocation with what it counted in the current period (None: none)."""
    if member.allocation_mc is None:
        return None
    period = allocations.period_of(member.allocation_period, month)
    return allocations.Usage(limit_mc=member.allocation_mc, period=member.allocation_period,
                             spent_mc=await allocations.spent(session, member.tenant_id,
                                                              member.team_id,
                                                              member.customer_id, period))
