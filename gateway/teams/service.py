"""Team use cases behind `/v1/teams` (docs/teams.md): each opens one transaction, calls the
team rules (`tenants.teams.service`) and the ledger, and renders. The mail of an invitation
goes out after its commit; funding moves posted credits between wallets."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger, wallets
from billing.models import Transfer
from gateway.core.auth import Principal
from gateway.core.mail import Mail
from gateway.core.runtime import Runtime
from gateway.generations.models import SUCCEEDED, Generation
from tenants import audit
from tenants.kernel.errors import InvalidRequest, PermissionDenied
from tenants.models import Customer, Tenant
from tenants.teams import allocations
from tenants.teams import service as teams
from tenants.teams.models import MANAGERS, Team, TeamInvitation, TeamMember
from tenants.teams.schemas import (
    AllocationEntry,
    AllocationList,
    AllocationOut,
    AllocationSet,
    Funding,
    FundingOut,
    InvitationCreate,
    InvitationList,
    InvitationOut,
    MemberList,
    MemberOut,
    TeamBalanceOut,
    TeamList,
    TeamOut,
    UsageOut,
    UsageRow,
)


def caller(principal: Principal) -> teams.Caller:
    """The team rules' view of a principal: a tenant-wide caller is one without a customer
    whose key holds `tenant_admin`."""
    return teams.Caller(tenant_id=principal.tenant, customer_id=principal.customer_id,
                        tenant_admin="tenant_admin" in principal.scopes,
                        actor=principal.actor)


def this_month() -> str:
    """The calendar month (UTC) allocations count in now, as the submit does."""
    return f"{datetime.now(UTC):%Y-%m}"


def _team_out(team: Team, role: str) -> TeamOut:
    return TeamOut(id=team.id, name=team.name, role=role, created_at=team.created_at)


def _allocation_out(usage: allocations.Usage | None) -> AllocationOut | None:
    if usage is None:
        return None
    return AllocationOut(limit=usage.limit_mc, period=usage.period, spent=usage.spent_mc,
                         remaining=usage.remaining_mc)


def _invitation_out(invitation: TeamInvitation) -> InvitationOut:
    return InvitationOut(id=invitation.id, team_id=invitation.team_id, email=invitation.email,
                         role=invitation.role, created_at=invitation.created_at,
                         expires_at=invitation.expires_at)


async def create(runtime: Runtime, principal: Principal, name: str) -> TeamOut:
    """`POST /v1/teams`: a team owned by the calling customer, with its wallet opened."""
    async with runtime.db.transaction() as session:
        team = await teams.create_team(session, caller(principal), name)
        await ledger.open_team_wallet(session, principal.tenant, team.id)
    return _team_out(team, "owner")


async def list_teams(runtime: Runtime, principal: Principal, *, limit: int,
                     cursor: str | None) -> TeamList:
    """`GET /v1/teams`: the caller customer's teams (a tenant-wide key: all of them)."""
    async with runtime.db.session() as session:
        rows, next_cursor = await teams.list_teams(session, caller(principal), limit=limit,
                                                   cursor=cursor)
    return TeamList(data=[_team_out(t, r) for t, r in rows], next_cursor=next_cursor)


async def read(runtime: Runtime, principal: Principal, team_id: str) -> TeamOut:
    async with runtime.db.session() as session:
        team, role = await teams.access(session, caller(principal), team_id)
    return _team_out(team, role)


async def rename(runtime: Runtime, principal: Principal, team_id: str, name: str) -> TeamOut:
    async with runtime.db.transaction() as session:
        team, role = await teams.rename_team(session, caller(principal), team_id, name)
    return _team_out(team, role)


async def _member_out(session: AsyncSession, member: TeamMember,
                      external_id: str) -> MemberOut:
    return MemberOut(customer_id=external_id, role=member.role,
                     allocation=_allocation_out(await teams.usage_of(session, member,
                                                                     this_month())),
                     created_at=member.created_at)


async def members(runtime: Runtime, principal: Principal, team_id: str, *, limit: int,
                  cursor: str | None) -> MemberList:
    """`GET /v1/teams/{id}/members`: current members, oldest first, with allocations."""
    async with runtime.db.session() as session:
        rows, next_cursor = await teams.members(session, caller(principal), team_id,
                                                limit=limit, cursor=cursor)
        data = [await _member_out(session, m, external) for m, external in rows]
    return MemberList(data=data, next_cursor=next_cursor)


async def set_role(runtime: Runtime, principal: Principal, team_id: str, customer_id: str,
                   role: str) -> MemberOut:
    async with runtime.db.transaction() as session:
        member = await teams.set_role(session, caller(principal), team_id, customer_id, role)
        return await _member_out(session, member, customer_id)


async def remove(runtime: Runtime, principal: Principal, team_id: str,
                 customer_id: str) -> None:
    async with runtime.db.transaction() as session:
        await teams.remove_member(session, caller(principal), team_id, customer_id)


async def invite(runtime: Runtime, principal: Principal, team_id: str,
                 body: InvitationCreate, origin: str | None = None) -> InvitationOut:
    """`POST /v1/teams/{id}/invitations`: record the invitation, then (after the commit) mail
    its one-time link, from the tenant. `origin` (`portal_origin`: the tenant's portal the
    invitation was sent from) is where the link's `/teams/accept` page lives."""
    settings = runtime.settings
    async with runtime.db.transaction() as session:
        team, invitation, token = await teams.invite(session, caller(principal), team_id,
                                                     body.email, body.role,
                                                     settings.email_link_ttl_s)
        tenant = await session.get(Tenant, principal.tenant)
        assert tenant is not None
    base = (origin or settings.public_base_url).rstrip("/")
    link = f"{base}/teams/accept?token={token}"
    sender = tenant.branding.sender_email
    runtime.mailer.send_later(Mail(
        to=invitation.email, subject=f"You are invited to the team {team.name}",
        text=(f"You are invited to join the team {team.name} on {tenant.name} as "
              f"{invitation.role}.\n\nAccept the invitation (the link works once, until "
              f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n"),
        sender_name=tenant.name,
        sender_address=sender if isinstance(sender, str) and sender else None))
    return _invitation_out(invitation)


async def invitations(runtime: Runtime, principal: Principal, team_id: str, *, limit: int,
                      cursor: str | None) -> InvitationList:
    async with runtime.db.session() as session:
        rows, next_cursor = await teams.pending_invitations(
            session, caller(principal), team_id, limit=limit, cursor=cursor)
    return InvitationList(data=[_invitation_out(i) for i in rows], next_cursor=next_cursor)


async def revoke(runtime: Runtime, principal: Principal, team_id: str,
                 invitation_id: str) -> None:
    async with runtime.db.transaction() as session:
        await teams.revoke_invitation(session, caller(principal), team_id, invitation_id)


async def accept(runtime: Runtime, principal: Principal, token: str) -> TeamOut:
    """`POST /v1/teams/invitations/accept`: the calling customer joins; returns the team."""
    async with runtime.db.transaction() as session:
        team, member = await teams.accept(session, caller(principal), token)
    return _team_out(team, member.role)


async def set_allocation(runtime: Runtime, principal: Principal, team_id: str,
                         customer_id: str, body: AllocationSet) -> AllocationEntry:
    async with runtime.db.transaction() as session:
        member = await teams.set_allocation(session, caller(principal), team_id, customer_id,
                                            body.limit_mc, body.period)
        usage = await teams.usage_of(session, member, this_month())
    assert usage is not None
    return _entry(customer_id, usage)


def _entry(customer_id: str, usage: allocations.Usage) -> AllocationEntry:
    return AllocationEntry(customer_id=customer_id, limit=usage.limit_mc, period=usage.period,
                           spent=usage.spent_mc, remaining=usage.remaining_mc)


async def remove_allocation(runtime: Runtime, principal: Principal, team_id: str,
                            customer_id: str) -> None:
    async with runtime.db.transaction() as session:
        await teams.remove_allocation(session, caller(principal), team_id, customer_id)


async def allocation_list(runtime: Runtime, principal: Principal,
                          team_id: str) -> AllocationList:
    """`GET /v1/teams/{id}/allocations`: every member with an allocation, spent (this month
    or in total, reservations in flight included) and remaining."""
    async with runtime.db.session() as session:
        who = caller(principal)
        await teams.access(session, who, team_id)
        rows = (await session.execute(
            select(TeamMember, Customer.external_id)
            .join(Customer, Customer.id == TeamMember.customer_id)
            .where(TeamMember.tenant_id == principal.tenant, TeamMember.team_id == team_id,
                   TeamMember.removed_at.is_(None), TeamMember.allocation_mc.is_not(None))
            .order_by(TeamMember.created_at, TeamMember.id))).all()
        data = []
        for member, external in rows:
            usage = await teams.usage_of(session, member, this_month())
            assert usage is not None
            data.append(_entry(external, usage))
    return AllocationList(data=data)


async def balance(runtime: Runtime, principal: Principal, team_id: str) -> TeamBalanceOut:
    """`GET /v1/teams/{id}/balance`: the team wallet's balance (any member)."""
    async with runtime.db.session() as session:
        await teams.access(session, caller(principal), team_id)
        wallet = await ledger.team_wallet(session, principal.tenant, team_id)
        held = await ledger.balance(session, tenant_id=principal.tenant, account=wallet)
    return TeamBalanceOut(available=held.available_mc, pending=held.pending_mc,
                      posted=held.posted_mc)


async def fund(runtime: Runtime, principal: Principal, team_id: str, body: Funding,
               idempotency_key: str) -> FundingOut:
    """`POST /v1/teams/{id}/credits`: move `amount` into the team's wallet, once per
    Idempotency-Key: from the calling customer's wallet (an owner or admin, `billing` scope),
    or from the tenant's wallet (a tenant-wide `tenant_admin` key). 402 when the source is
    short; audited (`team.funded`)."""
    who = caller(principal)
    async with runtime.db.transaction() as session:
        _, role = await teams.access(session, who, team_id, manage=True)
        tenant = await session.get(Tenant, principal.tenant)
        assert tenant is not None
        if role == teams.TENANT:
            source, kind = await ledger.account_id(session, tenant.id,
                                                   ledger.TENANT_WALLET), "tenant"
        else:
            if "billing" not in principal.scopes:
                raise PermissionDenied("this key lacks the 'billing' scope", param="billing")
            assert role in MANAGERS
            source = await wallets.own_wallet(session, tenant, principal.customer_id)
            kind = "customer"
        target = await ledger.team_wallet(session, tenant.id, team_id)
        key = f"team_funding:{team_id}:{source}:{idempotency_key}"
        repeat = await session.scalar(select(Transfer.id).where(
            Transfer.idempotency_key == key))
        transfer = await ledger.move(session, tenant_id=tenant.id, from_account=source,
                                     to_account=target, amount_mc=body.amount,
                                     idempotency_key=key, reason=f"team {team_id} funded",
                                     kind="team_funding")
        if repeat is None:
            await audit.record(session, tenant_id=tenant.id, actor=principal.actor,
                               action="team.funded", target_type="team", target_id=team_id,
                               after={"amount_mc": body.amount, "source": kind,
                                      "transfer_id": transfer.id})
        held = await ledger.balance(session, tenant_id=tenant.id, account=target)
    return FundingOut(id=transfer.id, team_id=team_id, amount=transfer.amount_mc, source=kind,
                      balance=held.available_mc)


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidRequest("month must be YYYY-MM", code="invalid_month",
                             param="month") from exc
    if not 2000 <= start.year <= 9998:
        raise InvalidRequest("month is out of range", code="invalid_month", param="month")
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(
        month=start.month + 1)
    return start, end


async def usage(runtime: Runtime, principal: Principal, team_id: str,
                month: str | None) -> UsageOut:
    """`GET /v1/teams/{id}/usage?month=YYYY-MM` (default: this month, UTC): what the team's
    succeeded generations charged its wallet that month, per member and media type."""
    month = month or this_month()
    start, end = _month_bounds(month)
    async with runtime.db.session() as session:
        await teams.access(session, caller(principal), team_id)
        rows = (await session.execute(
            select(Customer.external_id, Generation.type,
                   func.coalesce(func.sum(Generation.charged_mc), 0), func.count())
            .join(Customer, Customer.id == Generation.customer_id)
            .where(Generation.tenant_id == principal.tenant, Generation.team_id == team_id,
                   Generation.status == SUCCEEDED, Generation.created_at >= start,
                   Generation.created_at < end)
            .group_by(Customer.external_id, Generation.type)
            .order_by(Customer.external_id, Generation.type))).all()
    data = [UsageRow(customer_id=r[0], type=r[1], spent=int(r[2] or 0), generations=int(r[3]))
            for r in rows]
    return UsageOut(team_id=team_id, month=month, data=data,
                    total=sum(r.spent for r in data))

