"""Allocations: how much a member may spend for a team per calendar month (UTC) or in
total, exact under concurrency on PostgreSQL and SQLite.

A counter row per (team, member, period) (`TeamAllocationSpend`) is taken by a conditional
upsert in the submit's own unit of work, the transaction that writes the generation row and
its reservation: `... SET spent = spent + amount WHERE spent + amount <= limit`, so the row's
lock decides races, as the tenant's daily spend cap does (`gateway/generations/quotas.py`).
The generation records the period it was counted in (`team_period`) and the transaction that
ends it gives back what it did not spend (`give_back`). Only spending under an allocation is
counted: a member without one is limited by the team's wallet alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.kernel.errors import InsufficientCredits, NotFound, PermissionDenied
from tenants.teams.models import MONTH, SPENDERS, TOTAL, TeamAllocationSpend, TeamMember


def month_key(now_us: int) -> str:
    """The calendar month (UTC) of `now_us` as a period key: `2026-12`."""
    return f"{datetime.fromtimestamp(now_us / 1_000_000, UTC):%Y-%m}"


def period_of(allocation_period: str, month: str) -> str:
    """The counter a spend goes to: this month's, or the allocation's lifetime one."""
    return TOTAL if allocation_period == TOTAL else month


@dataclass(frozen=True, slots=True)
class Usage:
    """An allocation as its member uses it: `spent_mc` counts reservations in flight."""

    limit_mc: int
    period: str
    spent_mc: int

    @property
    def remaining_mc(self) -> int:
        return max(0, self.limit_mc - self.spent_mc)


async def spent(session: AsyncSession, tenant_id: str, team_id: str, customer_id: str,
                period: str) -> int:
    """What the member has counted against its allocation in `period` (0: nothing yet)."""
    found = await session.scalar(
        select(TeamAllocationSpend.spent_mc).where(
            TeamAllocationSpend.tenant_id == tenant_id, TeamAllocationSpend.team_id == team_id,
            TeamAllocationSpend.customer_id == customer_id,
            TeamAllocationSpend.period == period))
    return int(found or 0)


async def take(session: AsyncSession, *, tenant_id: str, team_id: str, customer_id: str,
               amount_mc: int, month: str) -> str | None:
    """Count `amount_mc` of a generation for the team against the member's allocation, in the
    submit's transaction. Returns the period counted in (None: the member has no allocation,
    nothing counted). Raises `NotFound` when the caller is no (longer a) member,
    `PermissionDenied` (`team_viewer`) for a viewer, and `InsufficientCredits`
    (`allocation_exceeded`, 402, with what is left) when the allocation would be exceeded."""
    member = (await session.execute(
        select(TeamMember.role, TeamMember.allocation_mc, TeamMember.allocation_period)
        .where(TeamMember.tenant_id == tenant_id, TeamMember.team_id == team_id,
               TeamMember.customer_id == customer_id, TeamMember.removed_at.is_(None))
    )).first()
    if member is None:
        raise NotFound("no such team", code="team_not_found", param="team_id")
    if member.role not in SPENDERS:
        raise PermissionDenied("a team viewer cannot spend the team's credits",
                               code="team_viewer", param="team_id")
    if member.allocation_mc is None:
        return None
    limit = int(member.allocation_mc)
    period = period_of(member.allocation_period, month)
    total: int | None = None
    if amount_mc <= limit:
        insert = (pg_insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite_insert)(TeamAllocationSpend)
        statement = insert.values(team_id=team_id, customer_id=customer_id, period=period,
                                  tenant_id=tenant_id, spent_mc=amount_mc)
        after = TeamAllocationSpend.spent_mc + statement.excluded.spent_mc
        total = await session.scalar(
            statement.on_conflict_do_update(
                index_elements=[TeamAllocationSpend.team_id, TeamAllocationSpend.customer_id,
                                TeamAllocationSpend.period],
                set_={"spent_mc": after}, where=after <= limit)
            .returning(TeamAllocationSpend.spent_mc))
    if total is None:
        used = await spent(session, tenant_id, team_id, customer_id, period)
        left = max(0, limit - used)
        when = "this month" if period != TOTAL else "in total"
        raise InsufficientCredits(
            f"this needs {amount_mc} millicredits and {left} are left of your team "
            f"allocation {when}", code="allocation_exceeded",
            extra={"required": amount_mc, "remaining": left, "limit": limit,
                   "period": MONTH if period != TOTAL else TOTAL, "unit": "millicredit"})
    return period


async def give_back(session: AsyncSession, tenant_id: str, team_id: str | None,
                    customer_id: str | None, period: str | None, amount_mc: int) -> None:
    """Return unspent millicredits to the allocation period that counted them; called in the
    transaction that ends a team's generation (failed, canceled, expired: all of it;
    succeeded: the reserved minus the charged). Counted in no period: nothing to give."""
    if team_id is None or customer_id is None or period is None or amount_mc <= 0:
        return
    spent_mc = TeamAllocationSpend.spent_mc
    await session.execute(
        update(TeamAllocationSpend)
        .where(and_(TeamAllocationSpend.tenant_id == tenant_id,
                    TeamAllocationSpend.team_id == team_id,
                    TeamAllocationSpend.customer_id == customer_id,
                    TeamAllocationSpend.period == period))
        .values(spent_mc=case((spent_mc > amount_mc, spent_mc - amount_mc), else_=0)))
