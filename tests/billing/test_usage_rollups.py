"""The usage rollups (billing/usage) equal the sums over the generations and the ledger's
transfers, on SQLite and PostgreSQL: after any sequence of grants, reservations, settles,
voids and refunds over several customers, types, providers and local days (hypothesis); a
recompute is idempotent and safe when two run at once; a changed time zone rebuilds; the
latency histogram's percentiles stay within its documented error.

Transfers are made by the real ledger verbs; their `created_at` (the verbs' clock) is then
moved to the step's simulated moment, so that postings fall on the days the test chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from billing import ledger
from billing.models import POST_PENDING, Transfer
from billing.usage import latency, rollup
from billing.usage.models import UsageRollup, UsageZone
from gateway.generations.models import AttemptRecord, Generation
from tenants.kernel.db import Database, new_id, utcnow
from tenants.kernel.errors import InsufficientCredits
from tenants.models import Customer, Tenant
from tenants.schemas import TenantCreate
from tenants.service import create_tenant

BASE = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)  # a week and a month end within reach
ZONES = ("UTC", "Asia/Riyadh", "America/New_York")
TYPES = ("image", "audio")
PROVIDERS = ("alpha", "beta")
FAR = timedelta(days=30)


@dataclass
class World:
    tenant_id: str
    tz: ZoneInfo
    customers: list[str]  # internal ids; wallets opened
    wallets: list[str]
    key_id: str = "key_test"
    #: Expected rollups, built from what the test did (not from the database).
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def row(self, day: date, customer: str | None, team: str | None, media: str,
            provider: str) -> dict[str, Any]:
        key = (day, customer, team, self.key_id, media, provider)
        if key not in self.rows:
            self.rows[key] = {"count": 0, "succeeded": 0, "failed": 0, "canceled": 0,
                              "cached": 0, "charged_mc": 0, "wholesale_mc": 0,
                              "cost_usd_micros": 0, "attempts": 0, "failovers": 0,
                              "latency": []}
        return self.rows[key]


async def open_world(db: Database, zone_name: str, customers: int) -> World:
    slug = f"roll-{secrets.token_hex(6)}"
    async with db.transaction() as session:
        tenant = await create_tenant(session, TenantCreate(name=slug, slug=slug,
                                                           billing_mode="mediahub"))
        tenant.time_zone = zone_name
        await ledger.open_tenant_accounts(session, tenant.id)
        ids, wallets = [], []
        for n in range(customers):
            customer = Customer(id=new_id("cus"), tenant_id=tenant.id, external_id=f"c{n}")
            session.add(customer)
            await session.flush()
            ids.append(customer.id)
            wallets.append(await ledger.customer_wallet(session, tenant.id, customer.id))
    async with db.transaction() as session:
        wallet = await ledger.account_id(session, tenant.id, ledger.TENANT_WALLET)
        await ledger.grant(session, tenant_id=tenant.id, to_account=wallet,
                           amount_mc=10_000_000, idempotency_key=f"seed:{tenant.id}",
                           reason="seed")
        for n, customer_wallet in enumerate(wallets):  # enough for some generations
            await ledger.grant(session, tenant_id=tenant.id, to_account=customer_wallet,
                               amount_mc=12_000, idempotency_key=f"seed:{tenant.id}:{n}",
                               reason="seed")
    return World(tenant_id=tenant.id, tz=ZoneInfo(zone_name), customers=ids, wallets=wallets)


async def _stamp(session: Any, transfer_id: str, at: datetime) -> None:
    await session.execute(update(Transfer).where(Transfer.id == transfer_id)
                          .values(created_at=at))


# One step: ("grant", customer, amount, hour) | ("refund", customer, amount, hour) |
# ("gen", customer|None, team?, type, provider, hour, outcome, post amount, delay hours,
#  attempts [(provider, latency)])
Step = tuple[Any, ...]


def steps() -> st.SearchStrategy[list[Step]]:
    hours = st.integers(0, 24 * 9)
    who = st.integers(0, 2)
    grant = st.tuples(st.just("grant"), who, st.integers(1, 5_000), hours)
    refund = st.tuples(st.just("refund"), who, st.integers(1, 5_000), hours)
    attempt = st.tuples(st.sampled_from(PROVIDERS), st.integers(0, 200_000))
    gen = st.tuples(st.just("gen"), st.one_of(st.none(), who), st.booleans(),
                    st.sampled_from(TYPES), st.sampled_from(PROVIDERS), hours,
                    st.sampled_from(["post", "void", "pending", "cancel", "cached"]),
                    st.integers(0, 3_000), st.integers(0, 30),
                    st.lists(attempt, max_size=3))
    return st.lists(st.one_of(grant, refund, gen, gen), max_size=25)


async def play(db: Database, world: World, plan: list[Step]) -> None:
    for step in plan:
        if step[0] in ("grant", "refund"):
            _, who, amount, hour = step
            who %= len(world.customers)
            at = BASE + timedelta(hours=hour)
            async with db.transaction() as session:
                if step[0] == "grant":
                    done = await ledger.grant(
                        session, tenant_id=world.tenant_id, to_account=world.wallets[who],
                        amount_mc=amount, idempotency_key=f"g:{new_id('k')}", reason="t")
                else:  # a purchase refunded: names no generation, so no usage moves
                    done = await ledger.clawback(
                        session, tenant_id=world.tenant_id, from_account=world.wallets[who],
                        amount_mc=amount, idempotency_key=f"r:{new_id('k')}", reason="t")
                await _stamp(session, done.id, at)
            continue
        await one_generation(db, world, step)


async def one_generation(db: Database, world: World, step: Step) -> None:
    """A generation row and its reservations in one transaction, as a submit makes them; a
    customer wallet too short to reserve makes nothing (the transaction rolls back)."""
    with contextlib.suppress(InsufficientCredits):
        await _generation(db, world, step)


async def _generation(db: Database, world: World, step: Step) -> None:
    _, who, in_team, media, provider, hour, outcome, posted, delay, attempts = step
    created = BASE + timedelta(hours=hour)
    settled = created + timedelta(hours=delay)
    customer = None if who is None else world.customers[who % len(world.customers)]
    team = "team_x" if in_team and customer is not None else None
    retail, wholesale, cost = 3_000, 1_000, 7_777
    status = {"post": "succeeded", "cached": "succeeded", "void": "failed",
              "cancel": "canceled", "pending": "running"}[outcome]
    log = [AttemptRecord(provider=p, outcome="failed" if i < len(attempts) - 1 else
                         ("succeeded" if status == "succeeded" else "failed"),
                         latency_ms=ms) for i, (p, ms) in enumerate(attempts)]
    gen_id = new_id("gen")
    async with db.transaction() as session:
        session.add(Generation(
            id=gen_id, tenant_id=world.tenant_id, customer_id=customer, team_id=team,
            api_key_id=world.key_id, type=media, operation="op", prompt="p",
            provider=provider, status=status, cached=outcome == "cached",
            cost_usd_micros=0 if outcome == "cached" else cost, wholesale_mc=wholesale,
            retail_mc=retail, estimated_mc=retail, request_hash="h", attempts_log=log,
            created_at=created, updated_at=settled))
        await session.flush()
        tenant_wallet = await ledger.account_id(session, world.tenant_id, ledger.TENANT_WALLET)
        reservations = []
        if customer is not None:
            wallet = world.wallets[world.customers.index(customer)]
            r = await ledger.reserve(
                session, tenant_id=world.tenant_id, from_account=wallet,
                amount_mc=retail, to_code=ledger.TENANT_REVENUE,
                idempotency_key=f"gen:{gen_id}:retail", timeout_at=created + FAR,
                generation_id=gen_id)
            reservations.append((r, retail, True))
            await _stamp(session, r.id, created)
            await session.execute(update(Generation).where(Generation.id == gen_id)
                                  .values(customer_reservation_id=r.id))
        w = await ledger.reserve(session, tenant_id=world.tenant_id, from_account=tenant_wallet,
                                 amount_mc=wholesale, idempotency_key=f"gen:{gen_id}:wholesale",
                                 timeout_at=created + FAR, generation_id=gen_id)
        await _stamp(session, w.id, created)
        reservations.append((w, wholesale, False))
    expected_day = created.astimezone(world.tz).date()
    row = world.row(expected_day, customer, team, media, provider)
    row["count"] += 1
    if status != "running":
        row[status] += 1
    row["cached"] += outcome == "cached"
    if status == "succeeded":
        row["cost_usd_micros"] += 0 if outcome == "cached" else cost
    if len({a.provider for a in log}) > 1:
        row["failovers"] += 1
    for a in log:
        arow = world.row(expected_day, customer, team, media, a.provider)
        arow["attempts"] += 1
        latency.add(arow["latency"], a.latency_ms)
    if outcome == "pending":
        return
    async with db.transaction() as session:
        for transfer, reserved, is_retail in reservations:
            if outcome in ("post", "cached"):
                amount = min(posted, reserved)
                done = await ledger.post(session, tenant_id=world.tenant_id,
                                         pending_id=transfer.id, amount_mc=amount)
                prow = world.row(settled.astimezone(world.tz).date(), customer, team, media,
                                 provider)
                if not is_retail:
                    prow["wholesale_mc"] += amount
                if is_retail or customer is None:
                    prow["charged_mc"] += amount
            else:
                done = await ledger.void(session, tenant_id=world.tenant_id,
                                         pending_id=transfer.id)
            await _stamp(session, done.id, settled)


async def actual(db: Database, tenant_id: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    async with db.session() as session:
        found = (await session.scalars(select(UsageRollup)
                                       .where(UsageRollup.tenant_id == tenant_id))).all()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in found:
        key = (r.day, r.customer_id, r.team_id, r.api_key_id, r.type, r.provider)
        assert key not in out, f"two rollups for {key}"
        out[key] = {"count": r.count, "succeeded": r.succeeded, "failed": r.failed,
                    "canceled": r.canceled, "cached": r.cached, "charged_mc": r.charged_mc,
                    "wholesale_mc": r.wholesale_mc, "cost_usd_micros": r.cost_usd_micros,
                    "attempts": r.attempts, "failovers": r.failovers,
                    "latency": list(r.latency_buckets)}
    return out


def normalised(rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
    """Rows with something in them (a posting of 0 may leave an all-zero row), histograms
    without trailing zeros."""
    out = {}
    for key, row in rows.items():
        clean = {**row, "latency": latency.trimmed(list(row["latency"]))}
        if any(clean.values()):
            out[key] = clean
    return out


async def ledger_totals(db: Database, tenant_id: str) -> tuple[int, int]:
    """What the tenant's revenue accounts received from postings, straight from the ledger."""
    async with db.session() as session:
        retail = await ledger.account_id(session, tenant_id, ledger.TENANT_REVENUE)
        wholesale = await ledger.account_id(session, tenant_id, ledger.PLATFORM_REVENUE)
        sums = {}
        for account in (retail, wholesale):
            sums[account] = int(await session.scalar(
                select(func.coalesce(func.sum(Transfer.amount_mc), 0)).where(
                    Transfer.tenant_id == tenant_id, Transfer.credit_account_id == account,
                    Transfer.phase == POST_PENDING)) or 0)
    return sums[retail], sums[wholesale]


def test_rollups_equal_the_sums_over_transfers_and_generations(database_url: str) -> None:
    with asyncio.Runner() as runner:
        db = Database(database_url)

        @given(plan=steps(), zone_name=st.sampled_from(ZONES))
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(plan: list[Step], zone_name: str) -> None:
            runner.run(one_example(db, plan, zone_name))

        try:
            check()
        finally:
            runner.run(db.dispose())


async def one_example(db: Database, plan: list[Step], zone_name: str) -> None:
    world = await open_world(db, zone_name, customers=3)
    await play(db, world, plan)
    start = (BASE - timedelta(days=1)).date()
    end = (BASE + timedelta(days=12)).date()
    await rollup.rebuild(db, world.tenant_id, start, end)
    got = await actual(db, world.tenant_id)
    assert normalised(got) == normalised(world.rows)
    # And the whole period's money against the ledger itself: the payer is the customer's
    # wallet (retail) when there is a customer, else the tenant's (wholesale).
    retail, wholesale = await ledger_totals(db, world.tenant_id)
    assert sum(v["wholesale_mc"] for v in got.values()) == wholesale
    assert sum(v["charged_mc"] for v in got.values()) == retail + sum(
        v["wholesale_mc"] for k, v in got.items() if k[1] is None)
    # Recomputing changes nothing.
    await rollup.rebuild(db, world.tenant_id, start, end)
    assert await actual(db, world.tenant_id) == got


async def test_a_changed_time_zone_moves_days_and_concurrent_recomputes_agree(
        database_url: str) -> None:
    db = Database(database_url, **({} if database_url.startswith("sqlite")
                                   else {"pool_size": 6, "max_overflow": 0}))
    try:
        world = await open_world(db, "UTC", customers=1)
        # 22:30 UTC on the 30th is already the 1st of December in Riyadh (UTC+3).
        hour = int((datetime(2026, 11, 30, 22, 30, tzinfo=UTC) - BASE) / timedelta(hours=1))
        await one_generation(db, world, ("gen", 0, False, "image", "alpha", hour, "post",
                                         500, 0, [("alpha", 120)]))
        async with db.transaction() as session:
            # Exactly 22:30 (the step's hour is whole), and changed now: after the watermark.
            await session.execute(update(Generation).where(
                Generation.tenant_id == world.tenant_id).values(
                created_at=datetime(2026, 11, 30, 22, 30, tzinfo=UTC), updated_at=utcnow()))
        first = await rollup.refresh(db)
        assert first.rows >= 1
        days = {k[0] for k in await actual(db, world.tenant_id)}
        assert days == {date(2026, 11, 30)}

        async with db.transaction() as session:
            await session.execute(update(Tenant).where(Tenant.id == world.tenant_id)
                                  .values(time_zone="Asia/Riyadh"))
        await rollup.refresh(db)  # sees the zone differ: rebuilds the tenant whole
        rows = await actual(db, world.tenant_id)
        assert {k[0] for k in rows} == {date(2026, 12, 1)}
        async with db.session() as session:
            assert await session.scalar(select(UsageZone.time_zone).where(
                UsageZone.tenant_id == world.tenant_id)) == "Asia/Riyadh"

        # Many recomputes of the same days at once leave one set of rows.
        await asyncio.gather(*(rollup.rebuild(db, world.tenant_id, date(2026, 11, 28),
                                              date(2026, 12, 3)) for _ in range(5)))
        assert await actual(db, world.tenant_id) == rows
    finally:
        await db.dispose()


async def test_the_rollup_reads_are_bound_by_their_indexes(database_url: str) -> None:
    """The plans of the rollup's reads use the indexes the module docstring states (with
    sequential scans priced out, as the tables here are nearly empty)."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            pg = session.get_bind().dialect.name == "postgresql"
            if pg:
                await session.execute(text("SET LOCAL enable_seqscan = off"))
            explain = "EXPLAIN" if pg else "EXPLAIN QUERY PLAN"
            lo, hi = "'2026-11-01 00:00:00+00:00'", "'2026-11-02 00:00:00+00:00'"
            plans = []
            for sql in (
                f"SELECT id FROM transfers WHERE tenant_id = 'x' AND generation_id IS NOT NULL "
                f"AND created_at >= {lo} AND created_at < {hi}",
                f"SELECT id FROM generations WHERE tenant_id = 'x' AND created_at >= {lo} "
                f"AND created_at < {hi}",
                "SELECT id FROM usage_rollups WHERE tenant_id = 'x' AND day >= '2026-11-01' "
                "AND day < '2026-12-01'",
            ):
                rows = (await session.execute(text(f"{explain} {sql}"))).all()
                plans.append(" ".join(str(part) for row in rows for part in row))
        assert "ix_transfers_tenant_generation_created" in plans[0]
        # On an empty table either index that starts with tenant_id serves: no full scan.
        assert "Seq Scan" not in plans[1]
        assert "USING" in plans[1] or "Index" in plans[1]
        assert "ix_usage_rollups_tenant_day" in plans[2]
    finally:
        await db.dispose()


@given(values=st.lists(st.integers(1, 3_000_000), min_size=1, max_size=200),
       split=st.integers(0, 200), p=st.sampled_from([0.5, 0.95, 0.99]))
@settings(max_examples=200, deadline=None)
def test_latency_percentiles_merge_and_stay_within_the_bucket_error(
        values: list[int], split: int, p: float) -> None:
    a: list[int] = []
    b: list[int] = []
    for n, v in enumerate(values):
        latency.add(a if n < split else b, v)
    whole: list[int] = []
    for v in values:
        latency.add(whole, v)
    assert latency.merge([a, b]) == whole
    true = sorted(values)[max(1, math.ceil(p * len(values))) - 1]
    got = latency.percentile(whole, p)
    assert got is not None
    if true < 2 ** 22:
        # The documented bound, plus the rounding to whole milliseconds.
        assert abs(got - true) <= true * latency.MAX_RELATIVE_ERROR + 0.5


def test_an_empty_histogram_has_no_percentile() -> None:
    assert latency.percentile([], 0.5) is None
    assert latency.percentile([0, 0], 0.99) is None


