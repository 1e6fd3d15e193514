"""Group commit (`Database.grouped`): concurrent units share transactions, yet each caller
sees only its own unit's outcome and nothing half-done commits; on both databases."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import Transfer
from tenants.kernel.db import Database, utcnow
from tenants.kernel.errors import Conflict, InsufficientCredits, NotFound
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


async def test_a_batch_reserves_and_posts_one_reservation_in_one_unit(db: Database) -> None:
    """A cache hit reserves and posts in one unit; in a batch both are done at its end, the
    post after the reservation it resolves. What the post returned is complete once the
    batch committed (accounts, kind, generation: taken from the reservation)."""
    tenant_id, wallet = await funded_wallet(db, 10_000)

    def hit(i: int) -> Callable[[AsyncSession], Awaitable[Transfer]]:
        async def unit(session: AsyncSession) -> Transfer:
            pending = await ledger.reserve(
                session, tenant_id=tenant_id, from_account=wallet, amount_mc=1_000,
                idempotency_key=f"hit{i}-{tenant_id}", timeout_at=utcnow() + timedelta(hours=1),
                generation_id=f"gen_hit{i}")
            return await ledger.post(session, tenant_id=tenant_id, pending_id=pending.id,
                                     amount_mc=400 + i)
        return unit

    posts = await asyncio.gather(*(db.grouped(hit(i)) for i in range(6)))
    assert db._group.fallbacks == 0
    assert [(p.debit_account_id, p.amount_mc, p.kind, p.generation_id) for p in posts] == [
        (wallet, 400 + i, "generation", f"gen_hit{i}") for i in range(6)]
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
        books = await ledger.balances(session, tenant_id)
    spent = sum(400 + i for i in range(6))
    assert (held.available_mc, held.pending_mc) == (10_000 - spent, 0)
    assert sum(t.posted_balance for t in books.values()) == 0


async def test_a_batch_never_moves_another_tenants_wallet(db: Database) -> None:
    """A unit naming another tenant's wallet (one this process already knows) is refused
    with a 404 like anywhere else, and that wallet does not move, while the units beside
    it in the batch commit."""
    victim_id, victim_wallet = await funded_wallet(db, 5_000)
    tenant_id, wallet = await funded_wallet(db, 5_000)
    await db.grouped(reservation(victim_id, victim_wallet, 10, f"known-{victim_id}"))
    outcomes = await asyncio.gather(
        db.grouped(reservation(tenant_id, wallet, 100, f"own-{tenant_id}")),
        db.grouped(reservation(tenant_id, victim_wallet, 1_000, f"theirs-{tenant_id}")),
        return_exceptions=True)
    assert isinstance(outcomes[0], Transfer)
    assert isinstance(outcomes[1], NotFound)
    async with db.session() as session:
        theirs = await ledger.balance(session, tenant_id=victim_id, account=victim_wallet)
        own = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
        stray = await session.scalar(select(func.count()).select_from(Transfer).where(
            Transfer.idempotency_key == f"theirs-{tenant_id}"))
    assert (theirs.available_mc, theirs.pending_mc) == (4_990, 10)
    assert (own.available_mc, own.pending_mc) == (4_900, 100)
    assert stray == 0


async def test_two_settles_of_one_reservation_in_one_batch_end_it_once(db: Database) -> None:
    """A post and a void of the same reservation sent together: exactly one ends it, the
    other meets AlreadyResolved (or, for a second identical post, the first posting)."""
    tenant_id, wallet = await funded_wallet(db, 5_000)
    pending = await db.grouped(reservation(tenant_id, wallet, 1_000, f"twice-{tenant_id}"))

    async def post(session: AsyncSession) -> Transfer:
        return await ledger.post(session, tenant_id=tenant_id, pending_id=pending.id,
                                 amount_mc=600)

    async def void(session: AsyncSession) -> Transfer:
        return await ledger.void(session, tenant_id=tenant_id, pending_id=pending.id)

    outcomes = await asyncio.gather(db.grouped(post), db.grouped(void), db.grouped(post),
                                    return_exceptions=True)
    ended = [o for o in outcomes if isinstance(o, Transfer)]
    refused = [o for o in outcomes if isinstance(o, ledger.AlreadyResolved)]
    assert len(ended) + len(refused) == 3
    assert len({t.id for t in ended}) == 1  # one resolution, returned to each repeat of it
    async with db.session() as session:
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
        resolutions = await session.scalar(select(func.count()).select_from(Transfer).where(
            Transfer.pending_id == pending.id))
    assert resolutions == 1
    assert held.pending_mc == 0
    assert held.available_mc in (4_400, 5_000)  # posted 600, or voided


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


async def test_a_batch_looks_reservations_up_by_primary_key_under_a_generic_plan(
    pg_url: str,
) -> None:
    """The batch's resolutions statement runs as a prepared statement, soon with a generic
    plan. Planned with the tenant and phase tests folded in, that plan scanned every pending
    transfer ever made through the sweeper's index on phase (the batch's cost grew with the
    table: 0.26 of pgbench's TPS instead of 0.44). Each reservation must be found by its
    primary key alone."""
    db = Database(pg_url)
    try:
        async with db.transaction() as session:
            await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            plan = "\n".join((await session.execute(
                text("EXPLAIN " + ledger._INSERT_RESOLUTIONS.text),
                {"id": ["tr_x"], "pending_id": ["tr_p"], "tenant_id": ["ten_x"],
                 "idempotency_key": ["k"], "phase": ["post_pending"], "amount_mc": [1],
                 "created_at": [utcnow()]})).scalars())
    finally:
        await db.dispose()
    assert "ix_transfers_pending_timeout" not in plan, plan
    assert "Seq Scan on transfers" not in plan, plan
    assert plan.count("Index Scan using pk_transfers") == 2, plan
