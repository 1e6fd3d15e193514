"""Allocation counters on both databases: a month's limit resets with the month, a total one
does not; refusals say what is left; give-backs never go below zero; only active members who
may spend are counted; the database itself refuses a negative counter."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from tenants import service as tenants
from tenants.kernel.db import Database, new_id, utcnow
from tenants.kernel.errors import InsufficientCredits, NotFound, PermissionDenied
from tenants.schemas import TenantCreate
from tenants.teams import allocations
from tenants.teams.models import MEMBER, OWNER, VIEWER, Team, TeamAllocationSpend, TeamMember


async def team_with(db: Database, role: str = MEMBER, limit: int | None = 1_000,
                    period: str = "month") -> tuple[str, str, str]:
    slug = f"alloc-{secrets.token_hex(6)}"
    async with db.transaction() as session:
        tenant = await tenants.create_tenant(session, TenantCreate(
            name=slug, slug=slug, billing_mode="mediahub"))
        owner = await tenants.customer_for(session, tenant.id, "owner", create=True)
        member = await tenants.customer_for(session, tenant.id, "member", create=True)
        assert owner is not None
        assert member is not None
        team = Team(id=new_id("team"), tenant_id=tenant.id, name="t", created_by=owner.id)
        session.add(team)
        await session.flush()
        session.add_all([
            TeamMember(id=new_id("tmem"), tenant_id=tenant.id, team_id=team.id,
                       customer_id=owner.id, role=OWNER),
            TeamMember(id=new_id("tmem"), tenant_id=tenant.id, team_id=team.id,
                       customer_id=member.id, role=role, allocation_mc=limit,
                       allocation_period=period)])
    return tenant.id, team.id, member.id


async def take(db: Database, ids: tuple[str, str, str], amount: int, month: str) -> str | None:
    tenant_id, team_id, customer_id = ids
    async with db.transaction() as session:
        return await allocations.take(session, tenant_id=tenant_id, team_id=team_id,
                                      customer_id=customer_id, amount_mc=amount, month=month)


@pytest.fixture
async def db(database_url: str) -> Database:
    return Database(database_url)


async def test_a_monthly_allocation_resets_with_the_month(db: Database) -> None:
    ids = await team_with(db, limit=1_000, period="month")
    assert await take(db, ids, 600, "2026-12") == "2026-12"
    assert await take(db, ids, 400, "2026-12") == "2026-12"  # exactly the limit
    with pytest.raises(InsufficientCredits) as caught:
        await take(db, ids, 1, "2026-12")
    assert caught.value.code == "allocation_exceeded"
    assert caught.value.extra["remaining"] == 0
    assert await take(db, ids, 1_000, "2027-01") == "2027-01"  # a new month, a new limit
    await db.dispose()


async def test_a_total_allocation_spans_months(db: Database) -> None:
    ids = await team_with(db, limit=1_000, period="total")
    assert await take(db, ids, 700, "2026-12") == "total"
    with pytest.raises(InsufficientCredits) as caught:
        await take(db, ids, 301, "2027-01")
    assert (caught.value.extra["remaining"], caught.value.extra["period"]) == (300, "total")
    assert await take(db, ids, 300, "2027-02") == "total"
    await db.dispose()


async def test_give_back_returns_unspent_and_never_goes_below_zero(db: Database) -> None:
    ids = await team_with(db, limit=1_000)
    await take(db, ids, 800, "2026-12")
    async with db.transaction() as session:
        await allocations.give_back(session, ids[0], ids[1], ids[2], "2026-12", 300)
        assert await allocations.spent(session, ids[0], ids[1], ids[2], "2026-12") == 500
        await allocations.give_back(session, ids[0], ids[1], ids[2], "2026-12", 10_000)
        assert await allocations.spent(session, ids[0], ids[1], ids[2], "2026-12") == 0
        await allocations.give_back(session, ids[0], ids[1], ids[2], None, 5)  # counted nowhere
    await db.dispose()


async def test_no_allocation_counts_nothing_and_others_are_refused(db: Database) -> None:
    free = await team_with(db, limit=None)
    assert await take(db, free, 10**9, "2026-12") is None
    viewer = await team_with(db, role=VIEWER)
    with pytest.raises(PermissionDenied) as refused:
        await take(db, viewer, 1, "2026-12")
    assert refused.value.code == "team_viewer"
    removed = await team_with(db)
    async with db.transaction() as session:
        await session.execute(update(TeamMember).where(TeamMember.customer_id == removed[2])
                              .values(removed_at=utcnow()))
    with pytest.raises(NotFound):
        await take(db, removed, 1, "2026-12")
    await db.dispose()


async def test_the_database_refuses_a_negative_counter(db: Database) -> None:
    ids = await team_with(db)
    await take(db, ids, 10, "2026-12")
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(update(TeamAllocationSpend)
                                  .where(TeamAllocationSpend.team_id == ids[1])
                                  .values(spent_mc=-1))
    await db.dispose()
