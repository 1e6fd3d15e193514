"""Group commit (`Database.grouped`): concurrent units share transactions, yet each caller
sees only its own unit's outcome and nothing half-done commits; on both databases."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import Transfer
from tenants.db import Database, utcnow
from tenants.errors import Conflict, InsufficientCredits
from tenants.models import Tenant
from tenants.schemas import TenantCreate
from tenants.service import create_tenant


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def funded_wallet(db: Database, amount_mc: int) -> tuple[str, str]:
    async with db.transaction() as session:
        tenant = await create_tenant(
            session, TenantCreate(name="g", slug=f"g-{secrets.token_hex(4)}"))
        ids = await ledger.open_tenant_accounts(session, tenant.id)
        await ledger.grant(session, tenant_id=tenant.id, to_account=ids["tenant_wallet"],
                           amount_mc=amount_mc, idempotency_key=f"g-{tenant.id}", reason="t")
    return tenant.id, ids["tenant_wallet"]


def reservation(tenant_id: str, wallet: str, amount_mc: int,
                key: str) -> Callable[[AsyncSession], Awaitable[Transfer]]:
    async def unit(session: AsyncSession) -> Transfer:
        return await ledger.reserve(
            session, tenant_id=tenant_id, from_account=wallet, amount_mc=amount_mc,
            idempotency_key=key, timeout_at=utcnow() + timedelta(hours=1), generation_id=None)
    return unit


async def test_concurrent_units_share_commits_and_each_gets_its_own_result(
    db: Database,
) -> None:
    tenant_id, wallet = await funded_wallet(db, 1_000_000)
    results = await asyncio.gather(*(
        db.grouped(reservation(tenant_id, wallet, 100 + i, f"r{i}-{tenant_id}"))
        for i in range(40)))
    assert [r.amount_mc for r in results] == [100 + i for i in range(40)]
    group = db._group
    assert group.units == 40
    assert group.batches < 40  # they shared transactions
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
    assert held.pending_mc == sum(100 + i for i in range(40))


async def test_a_failing_unit_fails_alone_and_leaves_nothing(db: Database) -> None:
    tenant_id, wallet = await funded_wallet(db, 1_000)
    slug = f"dup-{secrets.token_hex(4)}"

    async def duplicate_tenant(session: AsyncSession) -> None:
        # Writes a row, then breaks a unique constraint: neither may survive.
        await create_tenant(session, TenantCreate(name="a", slug=f"{slug}-ok"))
        await create_tenant(session, TenantCreate(name="b", slug=slug))
        await create_tenant(session, TenantCreate(name="c", slug=slug))

    outcomes = await asyncio.gather(
        db.grouped(reservation(tenant_id, wallet, 300, f"a-{tenant_id}")),
        db.grouped(duplicate_tenant),
        db.grouped(reservation(tenant_id, wallet, 5_000, f"big-{tenant_id}")),
        db.grouped(reservation(tenant_id, wallet, 400, f"b-{tenant_id}")),
        return_exceptions=True)
    assert isinstance(outcomes[0], Transfer)
    assert outcomes[0].amount_mc == 300
    assert isinstance(outcomes[1], Conflict)
    assert isinstance(outcomes[2], InsufficientCredits)
    assert isinstance(outcomes[3], Transfer)
    assert outcomes[3].amount_mc == 400
    async with db.session() as session:
        tenants = await session.scalar(
            select(func.count()).select_from(Tenant).where(Tenant.slug.startswith(slug)))
        keys = set(await session.scalars(
            select(Transfer.idempotency_key).where(Transfer.tenant_id == tenant_id)))
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
    assert tenants == 0
    assert keys == {f"g-{tenant_id}", f"a-{tenant_id}", f"b-{tenant_id}"}
    assert (held.available_mc, held.pending_mc) == (300, 700)


async def test_grouped_reservations_on_one_wallet_never_overdraw_it(db: Database) -> None:
    """200 concurrent reservations of 7 against a wallet holding 7 x 61 + 6: exactly 61 pass,
    whatever batches they fall into and however often a refusal sends one back to run alone."""
    tenant_id, wallet = await funded_wallet(db, 7 * 61 + 6)
    outcomes = await asyncio.gather(*(
        db.grouped(reservation(tenant_id, wallet, 7, f"h{i}-{tenant_id}"))
        for i in range(200)), return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, Transfer)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert (len(accepted), len(refused)) == (61, 139)
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
        pending = await session.scalar(
            select(func.count()).select_from(Transfer)
            .where(Transfer.tenant_id == tenant_id, Transfer.phase == "pending"))
    assert (held.available_mc, held.pending_mc) == (6, 7 * 61)
    assert pending == 61


async def test_a_repeated_unit_returns_the_first_result(db: Database) -> None:
    """Units may run twice (a batch that rolled back runs them again alone): ledger verbs
    return their first transfer for a repeated key."""
    tenant_id, wallet = await funded_wallet(db, 10_000)
    unit = reservation(tenant_id, wallet, 250, f"same-{tenant_id}")
    first, second = await asyncio.gather(db.grouped(unit), db.grouped(unit))
    assert first.id == second.id
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
    assert held.pending_mc == 250


async def test_two_processes_batching_on_one_wallet_never_overdraw_it(
    database_url: str,
) -> None:
    """Two pools (as two processes would) each send 100 concurrent reservations of 7 to a
    wallet holding 7 x 61 + 6. Batches read the balance without locking it and update the
    wallet once at their end; a batch that finds it spent by the other rolls back and its
    units run alone. Exactly 61 pass, and the counters agree with the transfers."""
    first, second = Database(database_url), Database(database_url)
    try:
        tenant_id, wallet = await funded_wallet(first, 7 * 61 + 6)
        outcomes = await asyncio.gather(*(
            db.grouped(reservation(tenant_id, wallet, 7, f"p{n}-{i}-{tenant_id}"))
            for n, db in enumerate((first, second)) for i in range(100)),
            return_exceptions=True)
        assert sum(isinstance(o, Transfer) for o in outcomes) == 61
        assert sum(isinstance(o, InsufficientCredits) for o in outcomes) == 139
        async with first.session() as session:
            held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
            reserved = await session.scalar(
                select(func.sum(Transfer.amount_mc))
                .where(Transfer.tenant_id == tenant_id, Transfer.phase == "pending"))
        assert (held.available_mc, held.pending_mc, reserved) == (6, 7 * 61, 7 * 61)
    finally:
        await first.dispose()
        await second.dispose()


async def test_settles_in_a_batch_release_and_post_exactly(db: Database) -> None:
    """Reserve 20, then post half of them at part of their amount and void the rest, all
    concurrently: the wallet ends at its grant minus exactly what was posted."""
    tenant_id, wallet = await funded_wallet(db, 100_000)
    pending = await asyncio.gather(*(
        db.grouped(reservation(tenant_id, wallet, 1_000, f"s{i}-{tenant_id}"))
        for i in range(20)))

    def settle(i: int, transfer: Transfer) -> Callable[[AsyncSession], Awaitable[Transfer]]:
        async def unit(session: AsyncSession) -> Transfer:
            if i % 2:
                return await ledger.void(session, tenant_id=tenant_id, pending_id=transfer.id)
            return await ledger.post(session, tenant_id=tenant_id, pending_id=transfer.id,
                                     amount_mc=50 * i)
        return unit

    await asyncio.gather(*(db.grouped(settle(i, t)) for i, t in enumerate(pending)))
    posted = sum(50 * i for i in range(0, 20, 2))
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
        books = await ledger.balances(session, tenant_id)
    assert (held.available_mc, held.pending_mc, held.posted_mc) == (
        100_000 - posted, 0, 100_000 - posted)
    assert sum(t.posted_balance for t in books.values()) == 0


async def test_a_unit_the_database_aborts_as_a_deadlock_victim_runs_again(pg_url: str) -> None:
    # Two units alone (batches of one) that lock two tenant rows in opposite orders, each
    # waiting until the other holds its first lock: PostgreSQL must abort one of them.
    db = Database(pg_url, group_commit={"max_batch": 1, "max_concurrent": 2})
    try:
        first, _ = await funded_wallet(db, 1)
        second, _ = await funded_wallet(db, 1)
        holding = {first: asyncio.Event(), second: asyncio.Event()}
        runs: list[str] = []

        def locking(mine: str, theirs: str) -> Callable[[AsyncSession], Awaitable[str]]:
            async def unit(session: AsyncSession) -> str:
                runs.append(mine)
                await session.execute(select(Tenant.id).where(Tenant.id == mine)
                                      .with_for_update())
                holding[mine].set()
                await holding[theirs].wait()
                await session.execute(select(Tenant.id).where(Tenant.id == theirs)
                                      .with_for_update())
                return mine
            return unit

        results = await asyncio.gather(db.grouped(locking(first, second)),
                                       db.grouped(locking(second, first)))
        assert sorted(results) == sorted([first, second])
        assert db._group.retries == 1
        assert len(runs) == 3  # the victim ran twice
    finally:
        await db.dispose()
