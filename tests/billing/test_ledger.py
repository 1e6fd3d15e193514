"""The ledger's guarantees, on the embedded SQLite and on PostgreSQL.

Money is conserved across a tenant's accounts, a no-overdraft wallet is never overdrawn (not by
the verbs, not under races, not even by a hand-written UPDATE), every reservation ends exactly
once, and every verb is idempotent by its key. On PostgreSQL the verbs mostly take their
one-statement path once an account's flags are cached, and the step-by-step path on a first
use, a repeat or a refusal: the tests go through both.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.ledger import AlreadyResolved, Balance, Totals
from billing.models import PENDING, POST_PENDING, SINGLE, VOID_PENDING, Account, Transfer
from tenants.kernel.db import Database, new_id, utcnow
from tenants.kernel.errors import Conflict, InsufficientCredits
from tenants.schemas import TenantCreate
from tenants.service import create_tenant

T = TypeVar("T")
FAR_FUTURE = timedelta(days=1)


# --- helpers: every verb runs in its own transaction, the way the gateway calls it -----------


@dataclass(frozen=True)
class Books:
    tenant_id: str
    wallet: str
    funding: str
    revenue: str  # the platform's revenue, which reservations pay by default
    accounts: dict[str, str]  # code -> id, system accounts included


def new_key(label: str) -> str:
    # The PostgreSQL database is shared by the whole session: keys must be globally unique.
    return f"test:{label}:{secrets.token_hex(8)}"


def pool_for(url: str, connections: int) -> dict[str, Any]:
    """Enough PostgreSQL connections for every task to hold one at once."""
    return {} if url.startswith("sqlite") else {"pool_size": connections, "max_overflow": 0}


async def open_books(db: Database) -> Books:
    slug = f"ledger-{secrets.token_hex(6)}"
    async with db.transaction() as session:
        tenant = await create_tenant(session, TenantCreate(name=f"Ledger {slug}", slug=slug))
        ids = await ledger.open_tenant_accounts(session, tenant.id)
    return Books(tenant_id=tenant.id, wallet=ids[ledger.TENANT_WALLET],
                 funding=ids[ledger.FUNDING], revenue=ids[ledger.PLATFORM_REVENUE],
                 accounts=dict(ids))


async def grant(db: Database, books: Books, amount: int, key: str,
                reason: str = "test") -> Transfer:
    async with db.transaction() as session:
        return await ledger.grant(session, tenant_id=books.tenant_id, to_account=books.wallet,
                                  amount_mc=amount, idempotency_key=key, reason=reason)


Call = Callable[[AsyncSession], Awaitable[Transfer]]


def reserving(books: Books, amount: int, key: str, timeout_at: datetime | None = None) -> Call:
    return lambda session: ledger.reserve(
        session, tenant_id=books.tenant_id, from_account=books.wallet, amount_mc=amount,
        idempotency_key=key, timeout_at=timeout_at or utcnow() + FAR_FUTURE,
        generation_id=None)


def posting(books: Books, pending_id: str, amount: int | None = None) -> Call:
    return lambda session: ledger.post(session, tenant_id=books.tenant_id,
                                       pending_id=pending_id, amount_mc=amount)


def voiding(books: Books, pending_id: str) -> Call:
    return lambda session: ledger.void(session, tenant_id=books.tenant_id,
                                       pending_id=pending_id)


def moving(books: Books, amount: int, key: str, *, back: bool) -> Call:
    async def call(session: AsyncSession) -> Transfer:
        customer = await ledger.customer_wallet(session, books.tenant_id, "cus_moves")
        source, target = (customer, books.wallet) if back else (books.wallet, customer)
        return await ledger.move(session, tenant_id=books.tenant_id, from_account=source,
                                 to_account=target, amount_mc=amount, idempotency_key=key,
                                 reason="move")
    return call


async def in_transaction(db: Database, call: Call) -> Transfer:
    async with db.transaction() as session:
        return await call(session)


async def reserve(db: Database, books: Books, amount: int, key: str,
                  timeout_at: datetime | None = None) -> Transfer:
    async with db.transaction() as session:
        return await reserving(books, amount, key, timeout_at)(session)


async def post(db: Database, books: Books, pending_id: str,
               amount: int | None = None) -> Transfer:
    async with db.transaction() as session:
        return await posting(books, pending_id, amount)(session)


async def void(db: Database, books: Books, pending_id: str) -> Transfer:
    async with db.transaction() as session:
        return await voiding(books, pending_id)(session)


async def together(db: Database, calls: list[Call]) -> list[Transfer | BaseException]:
    """Run each call in its own transaction, all at once; their results or errors, in order.

    On PostgreSQL every transaction first holds its connection and has begun, then all meet at
    a barrier and race for real. SQLite's writers serialize on BEGIN IMMEDIATE, so there they
    set off together and queue for the write lock.
    """
    barrier = asyncio.Barrier(len(calls))

    async def one(call: Call) -> Transfer:
        if db.is_sqlite:
            await barrier.wait()
            async with db.transaction() as session:
                return await call(session)
        async with db.transaction() as session:
            try:
                await session.execute(text("SELECT 1"))
            except BaseException:
                await barrier.abort()  # no one waits forever for a racer that cannot start
                raise
            await barrier.wait()
            return await call(session)

    return await asyncio.gather(*(one(call) for call in calls), return_exceptions=True)


async def wallet_balance(db: Database, books: Books) -> Balance:
    async with db.session() as session:
        return await ledger.balance(session, tenant_id=books.tenant_id, account=books.wallet)


async def resolutions_of(db: Database, pending_id: str) -> list[Transfer]:
    async with db.session() as session:
        return list(await session.scalars(
            select(Transfer).where(Transfer.pending_id == pending_id)))


def totals_from(transfers: list[Transfer], account: str) -> Totals:
    """An account's four counters, summed here from the transfers that name it."""
    resolved = {t.pending_id for t in transfers if t.pending_id is not None}
    posted = [t for t in transfers if t.phase in (SINGLE, POST_PENDING)]
    held = [t for t in transfers if t.phase == PENDING and t.id not in resolved]
    return Totals(
        debits_posted=sum(t.amount_mc for t in posted if t.debit_account_id == account),
        credits_posted=sum(t.amount_mc for t in posted if t.credit_account_id == account),
        debits_pending=sum(t.amount_mc for t in held if t.debit_account_id == account),
        credits_pending=sum(t.amount_mc for t in held if t.credit_account_id == account),
    )


async def check_books(db: Database, books: Books) -> list[Transfer]:
    """Assert the ledger's invariants for one tenant; returns the tenant's transfers."""
    async with db.session() as session:
        accounts = {a.code: a for a in await session.scalars(
            select(Account).where(Account.tenant_id == books.tenant_id))}
        transfers = list(await session.scalars(
            select(Transfer).where(Transfer.tenant_id == books.tenant_id)))
        totals = await ledger.balances(session, books.tenant_id)  # the ledger's own view
    assert books.accounts.items() <= {code: a.id for code, a in accounts.items()}.items()
    assert all(code.startswith("customer:") for code in set(accounts) - set(books.accounts))
    assert set(totals) == set(accounts)
    ids = {a.id for a in accounts.values()}
    assert all({t.debit_account_id, t.credit_account_id} <= ids for t in transfers)

    # Each reservation is resolved at most once, only by a resolution naming it.
    pendings = {t.id: t for t in transfers if t.phase == PENDING}
    resolutions = [t for t in transfers if t.pending_id is not None]
    assert all(t.phase in (POST_PENDING, VOID_PENDING) for t in resolutions)
    per_pending = Counter(t.pending_id for t in resolutions)
    assert all(n == 1 for n in per_pending.values()), per_pending
    assert set(per_pending) <= set(pendings)
    for t in resolutions:
        held = pendings[t.pending_id]  # type: ignore[index]
        assert (t.debit_account_id, t.credit_account_id) == (
            held.debit_account_id, held.credit_account_id)
        assert t.amount_mc <= held.amount_mc
        assert t.phase == POST_PENDING or t.amount_mc == 0

    # Every account's counters (kept on a wallet's row, derived for a system account) are the
    # sums of the transfers behind it; a wallet's reserved money is its open reservations.
    for code, account in accounts.items():
        assert totals[code] == totals_from(transfers, account.id), code
        stored = Totals(account.debits_posted, account.credits_posted,
                        account.debits_pending, account.credits_pending)
        assert stored == (Totals(0, 0, 0, 0) if account.system else totals[code]), code
    for account in accounts.values():
        if not account.system:
            assert account.debits_pending == sum(
                t.amount_mc for t in pendings.values()
                if t.id not in per_pending and t.debit_account_id == account.id)

    # Double entry: posted money is conserved, and every pending debit has its pending credit.
    assert sum(t.credits_posted - t.debits_posted for t in totals.values()) == 0
    assert (sum(t.credits_pending for t in totals.values())
            == sum(t.debits_pending for t in totals.values()))
    # No wallet is overdrawn, counting what it has reserved.
    for code, account in accounts.items():
        assert account.no_overdraft == (not account.system)
        if account.no_overdraft:
            assert account.debits_posted + account.debits_pending <= account.credits_posted, code
    return transfers


# --- 1. a random walk through every verb, checked after every step ----------------------------


@dataclass
class Reservation:
    id: str
    key: str
    amount: int
    timeout_at: datetime
    # (phase, amount, resolution id) once posted or voided.
    resolution: tuple[str, int, str] | None = None


# One rule picks the operation by weight: Hypothesis's own per-example rule switching (and its
# lean towards the first rule) left whole runs with almost no posts or voids.
OPERATIONS = ("reserve", "resolve", "grant", "reserve", "resolve", "replay", "resolve_again",
              "sweep_expired", "move")


def ledger_machine(runner: asyncio.Runner, db: Database) -> type[RuleBasedStateMachine]:
    """A state machine whose steps call the ledger on `db` through `runner`'s event loop."""

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.books = self.run(open_books(db))  # a fresh tenant per example
            self.t0 = utcnow()
            self.granted = 0  # net of what moved out to the customer's wallet
            self.customer = 0  # the customer's wallet (moves only)
            self.charged = 0
            self.transfers = 0
            self.grants: list[tuple[str, int, str]] = []  # key, amount, transfer id
            self.reservations: dict[str, Reservation] = {}
            self.refused: list[tuple[str, int, datetime]] = []  # keys InsufficientCredits left

        def run(self, coro: Awaitable[T]) -> T:
            return runner.run(coro)  # type: ignore[arg-type]

        # The model.
        @property
        def pending(self) -> int:
            return sum(r.amount for r in self.reservations.values() if r.resolution is None)

        @property
        def posted(self) -> int:
            return self.granted - self.charged

        @property
        def available(self) -> int:
            return self.posted - self.pending

        def open_ids(self) -> list[str]:
            return [r.id for r in self.reservations.values() if r.resolution is None]

        def closed_ids(self) -> list[str]:
            return [r.id for r in self.reservations.values() if r.resolution is not None]

        def expect(self) -> Balance:
            return Balance(available_mc=self.available, pending_mc=self.pending,
                           posted_mc=self.posted)

        # (Hypothesis leans to its simplest choices: here, a generous grant.)
        @initialize(amount=st.integers(0, 20_000).map(lambda n: 20_000 - n))
        def opening_grant(self, amount: int) -> None:
            self.do_grant(amount)

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
            if operation in ("resolve", "resolve_again", "replay") and not self.reservations:
                operation = "reserve"
            if operation == "resolve" and not self.open_ids():
                operation = "sweep_expired"
            if operation == "resolve_again" and not self.closed_ids():
                operation = "resolve"
            getattr(self, operation)(data)

        # Grants.
        def grant(self, data: st.DataObject) -> None:
            self.do_grant(data.draw(st.integers(0, 10_000).map(lambda n: 10_000 - n),
                                    label="amount"))

        def do_grant(self, amount: int) -> None:
            key = new_key("grant")
            t = self.run(grant(db, self.books, amount, key))
            assert (t.phase, t.amount_mc, t.debit_account_id, t.credit_account_id) == (
                SINGLE, amount, self.books.funding, self.books.wallet)
            self.grants.append((key, amount, t.id))
            self.granted += amount
            self.transfers += 1

        # Moves between the tenant's wallet and a customer's (`ledger.move`), either way;
        # refused, with nothing changed, when the source wallet is short.
        def move(self, data: st.DataObject) -> None:
            back = data.draw(st.booleans(), label="back")
            amount = data.draw(st.integers(0, 4_000), label="amount")
            have = self.customer if back else self.available
            call = moving(self.books, amount, new_key("move"), back=back)
            if amount > have:
                with pytest.raises(InsufficientCredits):
                    self.run(in_transaction(db, call))
                return
            t = self.run(in_transaction(db, call))
            assert (t.phase, t.amount_mc) == (SINGLE, amount)
            delta = -amount if back else amount
            self.customer += delta
            self.granted -= delta
            self.transfers += 1

        # Reservations: affordable ones, overdrafts, and retries of refused keys.
        def reserve(self, data: st.DataObject) -> None:
            modes = ["fresh", "fresh", "overdraw"] + (["retry"] if self.refused else [])
            mode = data.draw(st.sampled_from(modes), label="mode")
            if mode == "retry":
                # A refused reservation consumed nothing, not even its idempotency key.
                attempt = data.draw(st.sampled_from(self.refused), label="refused")
                if self.try_reserve(*attempt):
                    self.refused.remove(attempt)
                return
            if mode == "overdraw":
                amount = self.available + data.draw(st.integers(1, 3_000), label="excess")
            else:
                amount = data.draw(st.integers(0, 4_000), label="amount")
            key = new_key("reserve")
            minutes = data.draw(st.integers(-60, 120), label="timeout in minutes")
            timeout_at = self.t0 + timedelta(minutes=minutes)
            if not self.try_reserve(key, amount, timeout_at):
                self.refused.append((key, amount, timeout_at))

        def try_reserve(self, key: str, amount: int, timeout_at: datetime) -> bool:
            if amount > self.available:
                # Refused, and (the caller's transaction rolling back) nothing changed: the
                # balance and the transfers are checked against the model after this step.
                with pytest.raises(InsufficientCredits) as caught:
                    self.run(reserve(db, self.books, amount, key, timeout_at))
                assert caught.value.extra == {
                    "required": amount, "available": self.available,
                    "shortfall": amount - self.available, "unit": "millicredit"}
                return False
            t = self.run(reserve(db, self.books, amount, key, timeout_at))
            assert (t.phase, t.amount_mc, t.debit_account_id, t.credit_account_id) == (
                PENDING, amount, self.books.wallet, self.books.revenue)
            self.reservations[t.id] = Reservation(t.id, key, amount, timeout_at)
            self.transfers += 1
            return True

        # Repeats of a used key: the same fields give the first transfer and move nothing, even
        # when the reservation has ended since or would no longer be affordable.
        def replay(self, data: st.DataObject) -> None:
            done = [("grant", key, amount, first) for key, amount, first in self.grants] + [
                ("reserve", r.key, r.amount, r.id) for r in self.reservations.values()]
            verb, key, amount, first = data.draw(st.sampled_from(done), label="replayed")
            change = data.draw(st.integers(0, 50), label="change")
            if verb == "grant":
                call = grant(db, self.books, amount + change, key)
            else:
                call = reserve(db, self.books, amount + change, key,
                               self.reservations[first].timeout_at)
            if change == 0:
                assert self.run(call).id == first
                return
            with pytest.raises(Conflict) as caught:
                self.run(call)
            assert (caught.value.code, caught.value.param) == ("idempotency_key_reused",
                                                               "amount_mc")

        # Resolutions.
        def resolved(self, r: Reservation, t: Transfer, phase: str, amount: int) -> None:
            assert (t.phase, t.pending_id, t.amount_mc) == (phase, r.id, amount)
            assert (t.debit_account_id, t.credit_account_id) == (
                self.books.wallet, self.books.revenue)
            r.resolution = (phase, amount, t.id)
            self.charged += amount
            self.transfers += 1

        def resolve(self, data: st.DataObject) -> None:
            r = self.reservations[data.draw(st.sampled_from(self.open_ids()), label="pending")]
            if data.draw(st.booleans(), label="void"):
                self.resolved(r, self.run(void(db, self.books, r.id)), VOID_PENDING, 0)
                return
            amount = data.draw(st.none() | st.integers(0, r.amount), label="post amount")
            t = self.run(post(db, self.books, r.id, amount))
            self.resolved(r, t, POST_PENDING, r.amount if amount is None else amount)

        def resolve_again(self, data: st.DataObject) -> None:
            r = self.reservations[data.draw(st.sampled_from(self.closed_ids()),
                                            label="resolved")]
            assert r.resolution is not None
            phase, amount, first = r.resolution
            verb, again = data.draw(st.sampled_from([
                ("void", None), ("post", None), ("post", amount),
                ("post", (amount + 1) % (r.amount + 1))]), label="again")
            if verb == "void":
                call = void(db, self.books, r.id)
            else:
                call = post(db, self.books, r.id, again)
            same = (phase == VOID_PENDING and verb == "void") or (
                phase == POST_PENDING and verb == "post" and again in (None, amount))
            if same:
                assert self.run(call).id == first
            else:
                with pytest.raises(AlreadyResolved):
                    self.run(call)

        # Expiry: what the sweeper finds at `now`, and voids.
        def sweep_expired(self, data: st.DataObject) -> None:
            now = self.t0 + timedelta(minutes=data.draw(st.integers(-90, 60), label="now"))
            found = self.run(self.expired(now))
            ours = [t for t in found if t.tenant_id == self.books.tenant_id]
            assert all(t.phase == PENDING and t.timeout_at < now for t in found)  # type: ignore[operator]
            assert [t.timeout_at for t in ours] == sorted(t.timeout_at for t in ours)  # type: ignore[type-var]
            assert {t.id for t in ours} == {
                i for i in self.open_ids() if self.reservations[i].timeout_at < now}
            for t in ours:
                self.resolved(self.reservations[t.id], self.run(void(db, self.books, t.id)),
                              VOID_PENDING, 0)
            assert not [t for t in self.run(self.expired(now))
                        if t.tenant_id == self.books.tenant_id]

        async def expired(self, now: datetime) -> list[Transfer]:
            async with db.session() as session:
                # Other tests' tenants share the PostgreSQL database: ask for all of them.
                return await ledger.expired_reservations(session, now=now, limit=1_000_000)

        # After every step.
        @invariant()
        def books_agree_with_the_model(self) -> None:
            transfers = self.run(check_books(db, self.books))
            assert len(transfers) == self.transfers
            assert self.run(wallet_balance(db, self.books)) == self.expect()
            resolutions = {t.pending_id: t for t in transfers if t.pending_id is not None}
            for r in self.reservations.values():
                if r.resolution is None:
                    assert r.id not in resolutions
                else:
                    t = resolutions[r.id]
                    assert (t.phase, t.amount_mc, t.id) == r.resolution

    return LedgerMachine


def test_random_ledger_operations_keep_every_invariant(database_url: str) -> None:
    with asyncio.Runner() as runner:
        db = Database(database_url)
        try:
            run_state_machine_as_test(
                ledger_machine(runner, db),
                settings=settings(max_examples=30, stateful_step_count=25, deadline=None,
                                  database=None, suppress_health_check=[HealthCheck.too_slow]),
            )
        finally:
            runner.run(db.dispose())


@st.composite
def batch_rounds(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], list[tuple[int, str, int]]]:
    """A grant; reservations (amount, copies of the same call); then settles of some of
    them (which reservation, post/void/post-above-reserved, amount), repeats included."""
    # Mostly what a batch can do at its end (a generous grant, distinct keys, settles within
    # the reservation), so that batches commit as batches; the rest sends them back alone.
    granted = draw(st.integers(0, 30_000).map(lambda n: 30_000 - n), label="grant")
    reservations = draw(st.lists(st.tuples(st.integers(0, 4_000),
                                           st.sampled_from([1, 1, 1, 2])),
                                 min_size=1, max_size=16), label="reservations")
    settles = draw(st.lists(st.tuples(st.integers(0, 15),
                                      st.sampled_from(["post", "void", "post", "too_much"]),
                                      st.integers(0, 4_000)), max_size=20), label="settles")
    return granted, reservations, settles


def test_random_concurrent_batches_keep_every_invariant(database_url: str) -> None:
    """Units sent all at once through `Database.grouped` share batches (on PostgreSQL the
    verbs are then done at each batch's end). Whatever the mix (reservations beyond the
    balance, repeated keys, a reservation posted and voided together, posts above what was
    reserved), every unit meets the outcome it would meet alone, and the books hold."""
    with asyncio.Runner() as runner:
        db = Database(database_url)
        shared = 0  # units committed in batches of two or more, over all examples

        @given(rounds=batch_rounds())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(rounds: tuple[int, list[tuple[int, int]], list[tuple[int, str, int]]]) -> None:
            nonlocal shared
            before = db._group.units - db._group.batches
            runner.run(one_example(db, *rounds))
            shared += db._group.units - db._group.batches - before

        try:
            check()
        finally:
            runner.run(db.dispose())
        assert shared > 0  # the examples did exercise shared batches


async def one_example(db: Database, granted: int, reservations: list[tuple[int, int]],
                      settles: list[tuple[int, str, int]]) -> None:
    books = await open_books(db)
    if granted:
        await grant(db, books, granted, new_key("grant"))
    calls: list[tuple[int, Call]] = []
    for n, (amount, copies) in enumerate(reservations):
        key = new_key("reserve")
        calls += [(n, reserving(books, amount, key))] * copies
    outcomes = await asyncio.gather(*(db.grouped(call) for _, call in calls),
                                    return_exceptions=True)
    held: dict[int, Transfer] = {}
    for (n, _call), outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, Transfer):
            # Copies of one call get the one transfer.
            assert held.setdefault(n, outcome).id == outcome.id
            assert outcome.amount_mc == reservations[n][0]
        else:
            assert isinstance(outcome, InsufficientCredits), outcome
            assert n not in held
    assert sum(reservations[n][0] for n in held) <= granted

    ordered = [held[n] for n in sorted(held)]
    settle_calls: list[tuple[Transfer, str, int, Call]] = []
    for which, verb, amount in settles:
        if not ordered:
            break
        pending = ordered[which % len(ordered)]
        if verb == "void":
            settle_calls.append((pending, verb, 0, voiding(books, pending.id)))
        else:
            wanted = pending.amount_mc + 1 + amount if verb == "too_much" else (
                amount % (pending.amount_mc + 1))
            settle_calls.append((pending, verb, wanted, posting(books, pending.id, wanted)))
    results = await asyncio.gather(*(db.grouped(call) for *_, call in settle_calls),
                                   return_exceptions=True)
    transfers = await check_books(db, books)
    ended = {t.pending_id: t for t in transfers if t.pending_id is not None}
    for (pending, verb, wanted, _call), result in zip(settle_calls, results, strict=True):
        if verb == "too_much":
            assert isinstance(result, (ValueError, AlreadyResolved)), result
            continue
        resolution = ended.get(pending.id)
        assert resolution is not None  # a valid settle was sent: the reservation ended
        if isinstance(result, Transfer):
            # The one resolution, returned complete (a batch fills it in at its end).
            assert (result.id, result.phase, result.amount_mc) == (
                resolution.id, resolution.phase, resolution.amount_mc)
            assert (result.debit_account_id, result.credit_account_id, result.kind) == (
                books.wallet, books.revenue, "generation")
            assert result.amount_mc == wanted
        else:
            assert isinstance(result, AlreadyResolved), result
            assert (resolution.phase, resolution.amount_mc) != (
                POST_PENDING if verb == "post" else VOID_PENDING, wanted)
    charged = sum(t.amount_mc for t in ended.values() if t.phase == POST_PENDING)
    still = sum(t.amount_mc for t in ordered if t.id not in ended)
    assert await wallet_balance(db, books) == Balance(
        available_mc=granted - charged - still, pending_mc=still, posted_mc=granted - charged)


# --- 2. concurrent reservations against one wallet --------------------------------------------


async def test_concurrent_reservations_take_exactly_what_the_wallet_holds(
        database_url: str) -> None:
    attempts, affordable, amount = 60, 17, 1_000
    db = Database(database_url, **pool_for(database_url, attempts))
    try:
        books = await open_books(db)
        funded = affordable * amount + amount - 1  # one short of an 18th
        await grant(db, books, funded, new_key("seed"))

        results = await together(
            db, [reserving(books, amount, new_key(f"race{i}")) for i in range(attempts)])

        won = [r for r in results if isinstance(r, Transfer)]
        refused = [r for r in results if isinstance(r, InsufficientCredits)]
        assert len(won) + len(refused) == attempts, [
            r for r in results if not isinstance(r, Transfer | InsufficientCredits)]
        assert len(won) == affordable
        assert len(refused) == attempts - affordable
        assert await wallet_balance(db, books) == Balance(
            available_mc=amount - 1, pending_mc=affordable * amount, posted_mc=funded)
        transfers = await check_books(db, books)
        assert sorted(t.id for t in transfers if t.phase == PENDING) == sorted(
            t.id for t in won)
    finally:
        await db.dispose()


# --- 3. a reservation ends exactly once ---------------------------------------------------------


async def test_racing_posts_and_voids_resolve_a_reservation_once(database_url: str) -> None:
    racers, reserved, charged = 20, 5_000, 3_000
    db = Database(database_url, **pool_for(database_url, 2 * racers))
    try:
        books = await open_books(db)
        await grant(db, books, 10 * reserved, new_key("seed"))
        for round_ in range(4):
            pending = await reserve(db, books, reserved, new_key("reserve"))
            before = await wallet_balance(db, books)
            verbs = [POST_PENDING, VOID_PENDING] * racers
            if round_ % 2:
                verbs.reverse()
            results = await together(db, [
                posting(books, pending.id, charged) if verb == POST_PENDING
                else voiding(books, pending.id) for verb in verbs])

            resolutions = await resolutions_of(db, pending.id)
            assert len(resolutions) == 1
            winner = resolutions[0]
            for verb, result in zip(verbs, results, strict=True):
                if verb == winner.phase:
                    assert isinstance(result, Transfer), result
                    assert result.id == winner.id
                else:
                    assert isinstance(result, AlreadyResolved), result
            spent = charged if winner.phase == POST_PENDING else 0
            assert winner.amount_mc == spent
            assert await wallet_balance(db, books) == Balance(
                available_mc=before.available_mc + reserved - spent,
                pending_mc=before.pending_mc - reserved,
                posted_mc=before.posted_mc - spent)
            await check_books(db, books)
    finally:
        await db.dispose()


async def test_repeats_return_the_resolution_and_the_other_verb_is_refused(
        database_url: str) -> None:
    db = Database(database_url)
    try:
        books = await open_books(db)
        await grant(db, books, 10_000, new_key("seed"))

        posted = await reserve(db, books, 2_000, new_key("reserve"))
        first = await post(db, books, posted.id, 1_200)
        assert (first.phase, first.amount_mc) == (POST_PENDING, 1_200)
        assert (await post(db, books, posted.id, 1_200)).id == first.id
        assert (await post(db, books, posted.id)).id == first.id
        with pytest.raises(AlreadyResolved):
            await post(db, books, posted.id, 1_000)
        with pytest.raises(AlreadyResolved):
            await void(db, books, posted.id)

        voided = await reserve(db, books, 3_000, new_key("reserve"))
        released = await void(db, books, voided.id)
        assert (released.phase, released.amount_mc) == (VOID_PENDING, 0)
        assert (await void(db, books, voided.id)).id == released.id
        with pytest.raises(AlreadyResolved):
            await post(db, books, voided.id)
        with pytest.raises(AlreadyResolved):
            await post(db, books, voided.id, 0)

        assert await wallet_balance(db, books) == Balance(
            available_mc=8_800, pending_mc=0, posted_mc=8_800)
        transfers = await check_books(db, books)
        assert len(transfers) == 5
    finally:
        await db.dispose()


# --- 4. the database itself refuses a violating row ---------------------------------------------


def driver_message(exc: IntegrityError) -> str:
    """The database's own words (not SQLAlchemy's echo of the statement)."""
    return str(exc.orig)


async def test_database_refuses_an_overdraft_and_a_second_resolution(
        database_url: str) -> None:
    db = Database(database_url)
    try:
        books = await open_books(db)
        await grant(db, books, 1_000, new_key("seed"))
        held = await reserve(db, books, 400, new_key("reserve"))
        before = await wallet_balance(db, books)

        for statement in (
            "UPDATE accounts SET debits_posted = credits_posted - debits_pending + 1 "
            "WHERE id = :id",
            "UPDATE accounts SET debits_pending = credits_posted - debits_posted + 1 "
            "WHERE id = :id",
        ):
            with pytest.raises(IntegrityError) as caught:
                async with db.transaction() as session:
                    await session.execute(text(statement), {"id": books.wallet})
            assert "no_overdraft" in driver_message(caught.value)
        # Control: up to the limit is accepted, and so is any debit of an overdraft account.
        async with db.session() as session:  # never committed
            exact = await session.execute(text(
                "UPDATE accounts SET debits_posted = credits_posted - debits_pending "
                "WHERE id = :id"), {"id": books.wallet})
            deep = await session.execute(text(
                "UPDATE accounts SET debits_posted = debits_posted + 1000000 WHERE id = :id"),
                {"id": books.funding})
            assert exact.rowcount == deep.rowcount == 1  # type: ignore[attr-defined]
        assert await wallet_balance(db, books) == before

        def resolution_row(pending_id: str) -> Transfer:
            return Transfer(id=new_id("tr"), tenant_id=books.tenant_id,
                            idempotency_key=new_key("manual"), debit_account_id=books.wallet,
                            credit_account_id=books.revenue, amount_mc=0, phase=POST_PENDING,
                            pending_id=pending_id, kind="generation")

        async def insert(row: Transfer) -> None:
            async with db.transaction() as session:
                session.add(row)

        await void(db, books, held.id)
        with pytest.raises(IntegrityError) as caught:
            await insert(resolution_row(held.id))
        assert "pending_id" in driver_message(caught.value)
        # Control: the same row is well-formed for an unresolved reservation, once.
        other = await reserve(db, books, 100, new_key("reserve"))
        async with db.session() as session:  # never committed
            session.add(resolution_row(other.id))
            await session.flush()
            session.add(resolution_row(other.id))
            with pytest.raises(IntegrityError) as caught:
                await session.flush()
            assert "pending_id" in driver_message(caught.value)
            await session.rollback()

        assert [t.id for t in await resolutions_of(db, held.id)] != []
        assert len(await resolutions_of(db, held.id)) == 1
        assert await resolutions_of(db, other.id) == []
        await check_books(db, books)
    finally:
        await db.dispose()


# --- 5. idempotency ----------------------------------------------------------------------------


async def test_a_repeated_key_returns_the_first_transfer_and_moves_money_once(
        database_url: str) -> None:
    db = Database(database_url)
    try:
        books = await open_books(db)
        key = new_key("grant")
        first = await grant(db, books, 5_000, key, reason="seed")
        assert (await grant(db, books, 5_000, key, reason="seed")).id == first.id
        for amount, reason, param in ((6_000, "seed", "amount_mc"), (5_000, "other", "reason")):
            with pytest.raises(Conflict) as caught:
                await grant(db, books, amount, key, reason=reason)
            assert not isinstance(caught.value, AlreadyResolved)
            assert (caught.value.code, caught.value.param) == ("idempotency_key_reused", param)
        assert await wallet_balance(db, books) == Balance(
            available_mc=5_000, pending_mc=0, posted_mc=5_000)

        key = new_key("reserve")
        held = await reserve(db, books, 2_000, key)
        assert (await reserve(db, books, 2_000, key)).id == held.id
        async with db.transaction() as session:  # twice within one transaction, too
            for _ in range(2):
                again = await ledger.reserve(
                    session, tenant_id=books.tenant_id, from_account=books.wallet,
                    amount_mc=2_000, idempotency_key=key, timeout_at=utcnow() + FAR_FUTURE,
                    generation_id=None)
                assert again.id == held.id
        with pytest.raises(Conflict) as caught:
            await reserve(db, books, 2_500, key)
        assert (caught.value.code, caught.value.param) == ("idempotency_key_reused", "amount_mc")
        assert await wallet_balance(db, books) == Balance(
            available_mc=3_000, pending_mc=2_000, posted_mc=5_000)

        # After the reservation ends, its key still names it and reserves nothing.
        await post(db, books, held.id, 1_500)
        assert (await reserve(db, books, 2_000, key)).id == held.id
        assert await wallet_balance(db, books) == Balance(
            available_mc=3_500, pending_mc=0, posted_mc=3_500)
        assert len(await check_books(db, books)) == 3
    finally:
        await db.dispose()


async def test_concurrent_repeats_of_one_key_move_money_once(database_url: str) -> None:
    racers = 20
    db = Database(database_url, **pool_for(database_url, racers))
    try:
        books = await open_books(db)
        await grant(db, books, 100_000, new_key("seed"))
        key = new_key("reserve")
        results = await together(db, [reserving(books, 1_000, key) for _ in range(racers)])

        transfers = await check_books(db, books)
        pendings = [t for t in transfers if t.phase == PENDING]
        assert len(pendings) == 1
        # Every twin waited for the first on the unique key and got its transfer.
        assert [r.id if isinstance(r, Transfer) else r for r in results] == (
            [pendings[0].id] * racers)
        assert await wallet_balance(db, books) == Balance(
            available_mc=99_000, pending_mc=1_000, posted_mc=100_000)
    finally:
        await db.dispose()


# --- customer wallets ----------------------------------------------------------------------


async def test_a_customer_wallet_rolled_back_on_first_use_opens_again(database_url: str) -> None:
    # A customer's first generation, refused because the new wallet is empty, rolls back the
    # transaction that opened the wallet; the process must not keep believing in that row.
    db = Database(database_url)
    try:
        books = await open_books(db)
        customer = new_id("cus")

        async def reserve_retail(wallet: str, session: AsyncSession) -> Transfer:
            return await ledger.reserve(
                session, tenant_id=books.tenant_id, from_account=wallet, amount_mc=1_000,
                idempotency_key=new_key("retail"), timeout_at=utcnow() + FAR_FUTURE,
                generation_id=None, to_code=ledger.TENANT_REVENUE)

        async def first_generation() -> None:
            async with db.transaction() as session:
                wallet = await ledger.customer_wallet(session, books.tenant_id, customer)
                await reserve_retail(wallet, session)

        with pytest.raises(InsufficientCredits):
            await first_generation()
        async with db.transaction() as session:  # a top-up
            wallet = await ledger.customer_wallet(session, books.tenant_id, customer)
            await ledger.grant(session, tenant_id=books.tenant_id, to_account=wallet,
                               amount_mc=5_000, idempotency_key=new_key("top-up"),
                               reason="test")
        async with db.transaction() as session:
            assert await ledger.customer_wallet(session, books.tenant_id, customer) == wallet
            await reserve_retail(wallet, session)
        async with db.session() as session:
            assert await ledger.balance(session, tenant_id=books.tenant_id,
                                        account=wallet) == Balance(
                available_mc=4_000, pending_mc=1_000, posted_mc=5_000)
        await check_books(db, books)
    finally:
        await db.dispose()
