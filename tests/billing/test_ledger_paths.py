"""The ledger's three paths leave the same books.

Hypothesis draws a sequence of rounds of operations (grants, reservations including ones beyond
the balance and one past it, posts of any amount including above the reservation, voids, a
reservation posted in the same unit as a cache hit does, credits moved between the tenant's
wallet and a customer's either way (`ledger.move`, refused when short), repeated idempotency
keys, settles of settled, refused or unknown reservations), and the same sequence runs on a
fresh tenant through each path:

- portable, on PostgreSQL: `ledger.limited_to(ledger.Path.PORTABLE)`, each operation in its
  own transaction;
- portable, on SQLite: the only path there, each operation in its own transaction;
- single-statement, on PostgreSQL: `ledger.limited_to(ledger.Path.SINGLE)` (the default
  outside a group commit anyway), each operation in its own transaction; the tenant's accounts
  are known to the process beforehand, so that reservations take this path from the first;
- batched, on PostgreSQL: each round's operations sent at once through `Database.grouped`,
  where they share a batch (the default path in a group commit's shared transaction; a round of
  one operation runs alone).

Every operation's outcome (its transfer, or which error with which details) and the books
(every account's four counters, as kept and as `ledger.balances` reports them, and every
transfer matched by idempotency key, ids aside) must come out identical. Each run also checks,
from the statements it sent, that it took the path it is named after.

Within a round the operations that free credits (grants, posts, voids) come before those that
spend them (reservations): a batch checks a wallet once at its end, which rightly lets a
reservation through that a later unit of the batch pays for, where units one after another
would refuse it. So ordered, a batch that commits gives what its units give one by one, and one
that cannot is run unit by unit. A settle names a reservation of an earlier round. Within one
unit the order is the caller's: a cache hit that reserves beyond the balance and posts less
is refused in a batch as alone (the last test); the sequences draw such hits too.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import Account, Transfer
from tenants.kernel.db import Database, utcnow
from tenants.kernel.errors import DomainError, InsufficientCredits
from tenants.schemas import TenantCreate
from tenants.service import create_tenant

# --- operations ---------------------------------------------------------------------------------

UNKNOWN_KEY = -1  # a reservation key no operation uses: settling it meets "no such transfer"


@dataclass(frozen=True)
class Grant:
    key: int
    amount_mc: int


@dataclass(frozen=True)
class Reserve:
    key: int
    amount_mc: int


@dataclass(frozen=True)
class Hit:
    """A reservation posted in the same unit (a cache hit)."""

    key: int
    amount_mc: int
    post_mc: int | None


@dataclass(frozen=True)
class Drain:
    """A reservation of what the wallet held at the round's start, plus `adjust_mc` (what
    the round frees and spends before it, as drawn, less a margin): at the boundary of what a
    wallet allows, or just past it."""

    key: int
    adjust_mc: int


@dataclass(frozen=True)
class Move:
    """Credits moved between the tenant's wallet and a customer's (`ledger.move`): out of
    the wallet, or (`back`) into it."""

    key: int
    amount_mc: int
    back: bool


@dataclass(frozen=True)
class Post:
    reservation: int  # the key of a reservation of an earlier round, or UNKNOWN_KEY
    amount_mc: int | None


@dataclass(frozen=True)
class Void:
    reservation: int


Op = Grant | Reserve | Hit | Drain | Post | Void | Move
Rounds = list[list[Op]]

KINDS = ("reserve", "post", "reserve", "void", "post", "grant", "hit", "drain", "overdraw",
         "drain", "move", "move back")
MAX_UNITS = 6  # in a round
MAX_GRANT = 6_000
MAX_RESERVE = 4_000


@st.composite
def sequences(draw: st.DrawFn) -> Rounds:
    """An opening grant, then rounds of operations, each round clean or not.

    A clean round holds only operations sure to succeed: fresh keys, reservations within
    what the wallet surely holds, settles within the amount of reservations surely open; and
    at most one reservation of what is left, a little less, or a little more (refused). On
    the batched path its units commit as one batch. The other rounds meet every refusal too:
    reservations far beyond the balance, keys repeated with the same fields or reused with
    others, posts above the reservation, settles of settled, refused or unknown reservations.
"""
    opening = draw(st.integers(0, 20_000).map(lambda n: 30_000 - n), label="opening grant")
    rounds: Rounds = [[Grant(0, opening)]]
    grants = [(0, opening)]  # (key, amount) drawn, for repeats
    reservations: list[tuple[int, int]] = []  # (key, amount) drawn, overdraws aside
    keys = 0  # reservation keys drawn
    moves = 0  # move keys drawn
    # The wallet's available balance is at least what fresh grants gave less every
    # reservation drawn (whatever their fate), and at most every grant drawn.
    surely_held = at_most = opening
    drawn: list[int] = []  # reservation keys drawn in earlier rounds, overdraws aside
    surely_open: dict[int, int] = {}  # of those, the ones surely made and not settled

    def fresh_or_earlier(earlier: list[tuple[int, int]], amounts: st.SearchStrategy[int],
                         fresh_key: int, clean: bool) -> tuple[int, int]:
        """A fresh key (always in a clean round); else an earlier key with its amount (a
        repeat) or another (a reuse, refused when the first transfer exists)."""
        mode = draw(st.sampled_from(["fresh", "fresh", "repeat", "reuse"]
                                    if earlier and not clean else ["fresh"]), label="key")
        if mode == "fresh":
            return fresh_key, draw(amounts, label="amount")
        key, amount = draw(st.sampled_from(earlier), label="earlier")
        return key, amount if mode == "repeat" else draw(amounts, label="other amount")

    def post_amount(reserved: int | None, clean: bool) -> int | None:
        """All of it, or an amount; above the reservation at times, unless clean."""
        within = st.integers(0, reserved if reserved is not None else MAX_RESERVE)
        return draw(st.none() | within | (within if clean else st.integers(0, 5_000)),
                    label="post")

    for _ in range(draw(st.integers(1, 8), label="rounds")):
        clean = draw(st.booleans(), label="clean")
        ops: list[Op] = []
        made: dict[int, int] = {}  # reservations this round surely makes
        # What the round's operations free (they run first) and, in order, spend, as far as
        # is known here (all of it in a clean round); a drain reserves what is left.
        freed = spent = 0
        drain: tuple[int, int, int] | None = None  # key, margin, spent before it
        for _ in range(draw(st.integers(1, MAX_UNITS), label="units")):
            kind = draw(st.sampled_from(KINDS), label="kind")
            ceiling = min(MAX_RESERVE, surely_held)
            if (kind in ("post", "void") and clean and not surely_open) or (
                    kind in ("reserve", "hit") and clean and ceiling < 0) or (
                    kind == "hit" and ceiling < 0) or (kind == "overdraw" and clean) or (
                    kind == "drain" and drain is not None) or (
                    kind.startswith("move") and clean):
                kind = "grant"
            if kind.startswith("move"):
                # Out of the wallet a spend (refused when short), into it a free that the
                # customer's wallet may be short of: neither is sure, so rounds with moves
                # are never clean.
                amount = draw(st.integers(0, MAX_RESERVE), label="move")
                back = kind == "move back"
                ops.append(Move(moves, amount, back))
                moves += 1
                if back:
                    at_most += amount
                else:
                    surely_held -= amount
                    spent += amount
                continue
            if kind in ("post", "void"):
                if clean:
                    target = draw(st.sampled_from(sorted(surely_open)), label="reservation")
                elif drawn and draw(st.integers(0, 9), label="known") > 0:
                    target = draw(st.sampled_from(drawn), label="reservation")
                else:
                    target = UNKNOWN_KEY
                reserved = surely_open.pop(target, None)
                if kind == "void":
                    ops.append(Void(target))
                    freed += reserved or 0
                    continue
                amount = post_amount(reserved, clean)
                ops.append(Post(target, amount))
                if reserved is not None and amount is not None and amount <= reserved:
                    freed += reserved - amount
            elif kind == "grant":
                grant = fresh_or_earlier(grants, st.integers(0, MAX_GRANT), len(grants), clean)
                if grant[0] == len(grants):  # surely granted, before the round's reservations
                    freed += grant[1]
                    if drain is None:  # (a drain takes it all)
                        surely_held += grant[1]
                grants.append(grant)
                at_most += grant[1]
                ops.append(Grant(*grant))
            elif kind == "overdraw":  # beyond anything the wallet holds, even after the
                # round's grants (which run first)
                beyond = draw(st.integers(1, 5_000), label="beyond")
                amount = at_most + MAX_UNITS * MAX_GRANT + beyond
                # A cache hit too: it posts little of what it reserves, so only a check of
                # each debit (not the batch's net change) refuses it as a unit alone is.
                ops.append(Hit(keys, amount, draw(st.integers(0, 500), label="hit post"))
                           if draw(st.booleans(), label="as a hit") else Reserve(keys, amount))
                keys += 1
            elif kind == "drain":
                # Exact in a clean round, where a negative margin is one past what is left
                # (refused, the rest of the round is as sure).
                margin = draw(st.sampled_from([0, -1, 0, 1, 0, -2, 2]) | st.integers(0, 500)
                              if clean else st.integers(-500, 500), label="margin")
                drain = (keys, margin, spent)
                ops.append(Drain(keys, 0))  # its adjustment once the round is drawn
                keys += 1
                surely_held = min(surely_held, 0)  # what is left, had it passed
            else:
                fits = kind == "hit" or clean
                key, amount = fresh_or_earlier(
                    [(k, a) for k, a in reservations if not fits or a <= ceiling],
                    st.integers(0, ceiling if fits else MAX_RESERVE), keys, clean)
                if key == keys:
                    keys += 1
                reservations.append((key, amount))
                surely_held -= amount
                if kind == "reserve":
                    ops.append(Reserve(key, amount))
                    spent += amount
                    if clean:
                        made[key] = amount
                else:
                    post = post_amount(amount, clean)
                    ops.append(Hit(key, amount, post))
                    spent += amount if post is None else post
        if drain is not None:
            key, margin, before = drain
            ops = [Drain(key, freed - before - margin) if isinstance(op, Drain) else op
                   for op in ops]
        rounds.append(frees_first(ops))
        drawn += sorted({op.key for op in ops if isinstance(op, Reserve | Hit)
                         and op.amount_mc <= MAX_RESERVE} - set(drawn))
        surely_open |= made
    return rounds


def frees_first(ops: list[Op]) -> list[Op]:
    """A round's operations, those that free credits before those that spend them (stable)."""
    return sorted(ops, key=lambda op: isinstance(op, Reserve | Hit | Drain)
                  or (isinstance(op, Move) and not op.back))


# --- one run of the sequence through one path -----------------------------------------------

UNKNOWN = "tr_no_such_reservation"
Outcome = tuple[Any, ...]


@dataclass
class Books:
    tenant_id: str
    wallet: str
    customer_wallet: str  # of the one customer the moves go to and from
    prefix: str  # of this run's idempotency keys (the PostgreSQL database is shared)


@dataclass
class Run:
    """What one path made of the sequence, normalized so that runs compare: outcomes and
    transfers name transfers by idempotency key (resolutions by their reservation's), not id."""

    outcomes: list[Outcome]
    accounts: dict[str, tuple[ledger.Totals, ledger.Totals]]  # code -> (reported, as kept)
    transfers: dict[str, tuple[Any, ...]]  # normalized idempotency key -> the transfer


async def open_books(db: Database) -> Books:
    slug = f"paths-{secrets.token_hex(6)}"
    async with db.transaction() as session:
        tenant = await create_tenant(session, TenantCreate(name=f"Paths {slug}", slug=slug))
        ids = await ledger.open_tenant_accounts(session, tenant.id)
        customer_wallet = await ledger.customer_wallet(session, tenant.id, "cus_paths")
    async with db.session() as session:
        # Learn the accounts' flags, as a process has once it served the tenant: the faster
        # paths only run for accounts it knows (others take the portable path, once).
        for code in (ledger.TENANT_WALLET, ledger.FUNDING, ledger.PLATFORM_REVENUE):
            await ledger.account_id(session, tenant.id, code)
    return Books(tenant.id, ids[ledger.TENANT_WALLET], customer_wallet, prefix=f"{slug}:")


def unit_for(op: Op, books: Books, reservations: dict[int, str], held_mc: int) -> Callable[
        [AsyncSession], Awaitable[Any]]:
    """The operation as a unit of work; `reservations` maps reservation keys to the ids that
    earlier rounds made, `held_mc` is what the wallet held at the round's start."""
    tenant_id, timeout_at = books.tenant_id, utcnow() + timedelta(hours=1)

    def reserve(session: AsyncSession, key: int, amount_mc: int) -> Awaitable[Transfer]:
        return ledger.reserve(session, tenant_id=tenant_id, from_account=books.wallet,
                              amount_mc=amount_mc, idempotency_key=f"{books.prefix}r{key}",
                              timeout_at=timeout_at, generation_id=f"gen_{key}")

    async def unit(session: AsyncSession) -> Any:
        match op:
            case Grant(key, amount_mc):
                return await ledger.grant(session, tenant_id=tenant_id, to_account=books.wallet,
                                          amount_mc=amount_mc,
                                          idempotency_key=f"{books.prefix}g{key}",
                                          reason="paths")
            case Reserve(key, amount_mc):
                return await reserve(session, key, amount_mc)
            case Drain(key, adjust_mc):
                return await reserve(session, key, held_mc + adjust_mc)
            case Hit(key, amount_mc, post_mc):
                held = await reserve(session, key, amount_mc)
                posted = await ledger.post(session, tenant_id=tenant_id, pending_id=held.id,
                                           amount_mc=post_mc)
                return held, posted
            case Post(key, amount_mc):
                return await ledger.post(session, tenant_id=tenant_id,
                                         pending_id=reservations.get(key, UNKNOWN),
                                         amount_mc=amount_mc)
            case Move(key, amount_mc, back):
                wallets = (books.customer_wallet, books.wallet)
                source, target = wallets if back else wallets[::-1]
                return await ledger.move(session, tenant_id=tenant_id, from_account=source,
                                         to_account=target, amount_mc=amount_mc,
                                         idempotency_key=f"{books.prefix}m{key}",
                                         reason="paths")
            case Void(key):
                return await ledger.void(session, tenant_id=tenant_id,
                                         pending_id=reservations.get(key, UNKNOWN))
        raise AssertionError(op)

    return unit


async def run_sequence(db: Database, rounds: Rounds, *, batched: bool) -> Run:
    """Run the rounds on a fresh tenant: each round's units at once through
    `Database.grouped` when `batched`, else one after another in transactions of their own."""
    books = await open_books(db)
    reservations: dict[int, str] = {}
    raw: list[Any] = []
    for ops in rounds:
        async with db.session() as session:
            held = await ledger.balance(session, tenant_id=books.tenant_id, account=books.wallet)
        units = [unit_for(op, books, reservations, held.available_mc) for op in ops]
        if batched:
            results = await asyncio.gather(*(db.grouped(u) for u in units),
                                           return_exceptions=True)
        else:
            results = [await alone(db, u) for u in units]
        raw += results
        for op, result in zip(ops, results, strict=True):
            made = result[0] if isinstance(op, Hit) and isinstance(result, tuple) else result
            if isinstance(op, Reserve | Hit | Drain) and isinstance(made, Transfer):
                reservations[op.key] = made.id
    return await read_run(db, books, raw)


async def alone(db: Database, unit: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    try:
        async with db.transaction() as session:
            return await unit(session)
    except Exception as exc:
        return exc


async def read_run(db: Database, books: Books, raw: list[Any]) -> Run:
    async with db.session() as session:
        rows = list(await session.scalars(
            select(Account).where(Account.tenant_id == books.tenant_id)))
        reported = await ledger.balances(session, books.tenant_id)
        transfers = list(await session.scalars(
            select(Transfer).where(Transfer.tenant_id == books.tenant_id)))
    code = {a.id: a.code for a in rows}
    by_id = {t.id: t for t in transfers}

    def key(t: Transfer) -> str:
        if t.pending_id is not None:
            return f"{t.phase}:{key(by_id[t.pending_id])}"
        assert t.idempotency_key.startswith(books.prefix)
        return t.idempotency_key.removeprefix(books.prefix)

    def transfer(t: Transfer) -> tuple[Any, ...]:
        return (key(t), t.phase, t.amount_mc, code[t.debit_account_id],
                code[t.credit_account_id], t.kind, t.generation_id, t.reason)

    def outcome(result: Any) -> Outcome:
        if isinstance(result, Transfer):
            # What the verb returned is the transfer the books hold, in every field compared.
            assert transfer(by_id[result.id]) == transfer(result)
            return ("ok", transfer(result))
        if isinstance(result, tuple):
            return ("ok", *(transfer(t) for t in result))
        if isinstance(result, DomainError):
            return ("error", type(result).__name__, result.code, result.param, result.extra,
                    str(result))
        assert isinstance(result, ValueError), repr(result)
        return ("error", type(result).__name__, str(result))

    kept = {a.code: ledger.Totals(a.debits_posted, a.credits_posted, a.debits_pending,
                                  a.credits_pending) for a in rows}
    normalized = {key(t): transfer(t) for t in transfers}
    assert len(normalized) == len(transfers)
    return Run(outcomes=[outcome(r) for r in raw],
               accounts={c: (reported[c], kept[c]) for c in kept},
               transfers=normalized)


# --- which path a run took, from the statements it sent --------------------------------------


@contextmanager
def statements_of(db: Database) -> Iterator[Counter[str]]:
    """Counts the statements `db` sends inside the block, by the path they belong to."""
    seen: Counter[str] = Counter()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "unnest(" in statement:
            seen["batched"] += 1
        elif "WITH inserted AS" in statement or "WITH pending AS" in statement:
            seen["single"] += 1
        seen["all"] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)


async def on_path(db: Database, rounds: Rounds, path: ledger.Path) -> tuple[Run, Counter[str]]:
    with statements_of(db) as seen:
        if path is ledger.Path.BATCHED:
            run = await run_sequence(db, rounds, batched=True)
        else:
            with ledger.limited_to(path):
                run = await run_sequence(db, rounds, batched=False)
    return run, seen


# --- the test -----------------------------------------------------------------------------------


def test_every_path_leaves_the_same_books(pg_url: str, sqlite_template: Path,
                                          tmp_path: Path) -> None:
    sqlite_file = tmp_path / "paths.db"
    shutil.copy(sqlite_template, sqlite_file)
    totals: Counter[str] = Counter()
    with asyncio.Runner() as runner:
        pg, sqlite = Database(pg_url), Database(f"sqlite+aiosqlite:///{sqlite_file}")

        @given(rounds=sequences())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(rounds: Rounds) -> None:
            runner.run(one_example(rounds))

        async def one_example(rounds: Rounds) -> None:
            # Grants and moves between wallets always take the portable path; anything else
            # takes the single-statement path at least once.
            settles = any(not isinstance(op, (Grant, Move)) for ops in rounds for op in ops)
            reference, seen = await on_path(pg, rounds, ledger.Path.PORTABLE)
            assert seen["single"] == seen["batched"] == 0, seen
            on_sqlite, seen = await on_path(sqlite, rounds, ledger.Path.PORTABLE)
            assert seen["single"] == seen["batched"] == 0, seen
            single, seen = await on_path(pg, rounds, ledger.Path.SINGLE)
            assert seen["batched"] == 0, seen
            assert (seen["single"] > 0) == settles, seen
            units, batches = pg._group.units, pg._group.batches
            batched, seen = await on_path(pg, rounds, ledger.Path.BATCHED)
            totals["batched statements"] += seen["batched"]
            totals["units in shared batches"] += (
                pg._group.units - units - (pg._group.batches - batches))

            for name, run in (("sqlite", on_sqlite), ("single", single),
                              ("batched", batched)):
                assert run.outcomes == reference.outcomes, name
                assert run.accounts == reference.accounts, name
                assert run.transfers == reference.transfers, name

        try:
            check()
        finally:
            runner.run(pg.dispose())
            runner.run(sqlite.dispose())
    # The batched runs did share batches, and did their verbs at the batches' ends.
    assert totals["units in shared batches"] > 0, totals
    assert totals["batched statements"] > 0, totals


async def test_a_batch_refuses_a_hit_reserving_beyond_the_balance(pg_url: str) -> None:
    """A cache hit reserves then posts in one unit. Alone, a reservation beyond the balance is
    refused (402) whatever the unit does next; in a batch its end sees only the wallet's net
    change (the post), which fits, and the unit succeeds: it does not meet the outcome it
    would meet alone, unless each debit is checked against what the wallet held."""
    db = Database(pg_url)
    try:
        books = await open_books(db)
        await alone(db, unit_for(Grant(0, 1_000), books, {}, 0))
        hit = Hit(1, 5_000, 500)
        with ledger.limited_to(ledger.Path.SINGLE):
            if not isinstance(await alone(db, unit_for(hit, books, {}, 0)),
                              InsufficientCredits):
                pytest.fail("alone, the hit's reservation should be refused")
        outcomes = await asyncio.gather(
            db.grouped(unit_for(Reserve(2, 100), books, {}, 0)),
            db.grouped(unit_for(hit, books, {}, 0)), return_exceptions=True)
        assert isinstance(outcomes[0], Transfer)
        assert isinstance(outcomes[1], InsufficientCredits), outcomes[1]
    finally:
        await db.dispose()
