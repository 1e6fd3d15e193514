"""The ledger's verbs: `open_tenant_accounts`, `customer_wallet`, `grant`, `reserve`, `post`,
`void`, `clawback`, `balance`, `balances`, `expired_reservations`.

Every verb runs inside the caller's transaction (so a generation row and its reservations
commit together) and is idempotent: the same idempotency key with the same fields returns the
first transfer; with other fields it raises `Conflict`.

How it stays correct under concurrency, on PostgreSQL and SQLite alike:
- a transfer is inserted first with `ON CONFLICT DO NOTHING`; a repeat (or a racing twin,
  which waits on the unique index) finds the first one and changes no balance;
- a wallet is debited by one conditional UPDATE (`... WHERE available >= amount`), so no
  read-modify-write can overdraw it; a CHECK constraint refuses it besides;
- a reservation ends by inserting its resolution, whose `pending_id` is UNIQUE: exactly once.

System accounts (funding, platform and tenant revenue) keep no counters: their balances are
the sums of their transfers, so the only row a reservation locks is the paying wallet's.

On PostgreSQL a reservation and its settlement each take one statement (a data-modifying
WITH) doing those same steps in that order: insert the transfer (or its resolution) with
`ON CONFLICT DO NOTHING`, then, only if it was inserted, the conditional wallet UPDATE. One
round trip and no ORM work per verb is what keeps the hot path cheap (`bench/ledger_bench.py`);
anything unusual (a repeat, a refusal, an unknown id) falls back to the step-by-step path,
which finds the same answer and raises the same errors. SQLite always runs step by step.

Inside a group commit's shared transaction (`Database.grouped`) on PostgreSQL, reservations,
posts and voids only note what they do; the end of the batch does it for all its units in
three statements (new transfers, resolutions, one conditional UPDATE per wallet), so a batch
costs the same round trips whatever its size and a hot wallet's row is locked only from its
UPDATE to the commit (see "batched verbs"). A resolution's transfer is complete once its batch
committed. Anything the batch end cannot do as asked rolls the batch back, and its units run
alone on the paths above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from billing.models import (
    PENDING,
    POST_PENDING,
    SINGLE,
    VOID_PENDING,
    Account,
    LedgerEvent,
    Transfer,
)
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InsufficientCredits, NotFound
from tenants.kernel.group_commit import SharedBatch, batch_of

TENANT_WALLET = "tenant_wallet"
FUNDING = "funding"
PLATFORM_REVENUE = "platform_revenue"
TENANT_REVENUE = "tenant_revenue"
SYSTEM_CODES = (FUNDING, PLATFORM_REVENUE, TENANT_REVENUE)


def customer_code(customer_id: str) -> str:
    return f"customer:{customer_id}"


@dataclass(frozen=True, slots=True)
class Balance:
    available_mc: int
    pending_mc: int
    posted_mc: int


@dataclass(frozen=True, slots=True)
class Totals:
    """An account's four TigerBeetle counters, wherever they are kept."""

    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def posted_balance(self) -> int:
        return self.credits_posted - self.debits_posted


class AlreadyResolved(Conflict):
    """The pending transfer was already posted or voided (by a retry, a cancel or the sweeper)."""

    default_code = "transfer_already_resolved"


# Account ids and flags never change once created, so they are cached for the process.
_ids: dict[tuple[str, str], str] = {}
_system: dict[str, bool] = {}


async def open_tenant_accounts(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """Create a tenant's wallet and its system accounts; called when a tenant is created.

    Returns `{code: account_id}`.
    """
    ids: dict[str, str] = {}
    for code in (TENANT_WALLET, *SYSTEM_CODES):
        system = code in SYSTEM_CODES
        account = Account(id=new_id("acc"), tenant_id=tenant_id, code=code,
                          no_overdraft=not system, system=system)
        session.add(account)
        ids[code] = account.id
    await session.flush()
    return ids


async def account_id(session: AsyncSession, tenant_id: str, code: str) -> str:
    """The id of a tenant's account by code; raises `NotFound` when it does not exist."""
    cached = _ids.get((tenant_id, code))
    if cached is not None:
        return cached
    row = (await session.execute(
        select(Account.id, Account.system)
        .where(Account.tenant_id == tenant_id, Account.code == code)
    )).first()
    if row is None:
        raise NotFound(f"no {code} account for this tenant", code="account_not_found")
    _ids[(tenant_id, code)] = row.id
    _system[row.id] = row.system
    return str(row.id)


def _insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    insert = pg_insert if _on_postgresql(session) else sqlite_insert
    return insert(table)


def _on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def customer_wallet(session: AsyncSession, tenant_id: str, customer_id: str) -> str:
    """The customer's retail wallet, opened on first use (safely under concurrency).

    A wallet this session opened is not cached: its transaction may still roll it back (a
    first generation refused by the empty wallet does), and a cached id of a row that never
    committed would break every later use of the wallet in this process.
    """
    code = customer_code(customer_id)
    if (tenant_id, code) in _ids:
        return _ids[(tenant_id, code)]
    opened = _opened_by(session)
    new = await session.scalar(
        _insert_ignoring_conflicts(session, Account)
        .values(id=new_id("acc"), tenant_id=tenant_id, code=code, no_overdraft=True,
                system=False, debits_posted=0, credits_posted=0, debits_pending=0,
                credits_pending=0, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(Account.id)
    )
    if new is not None:
        opened.add(new)
        return str(new)
    found = await session.scalar(
        select(Account.id).where(Account.tenant_id == tenant_id, Account.code == code))
    assert found is not None  # the insert met it
    if found not in opened:  # committed by another transaction, not opened by this session
        _ids[(tenant_id, code)] = found
        _system[found] = False
    return str(found)


class _OpenedHere(set[str]):
    """The customer wallets a session opened itself (see `customer_wallet`)."""


def _opened_by(session: AsyncSession) -> set[str]:
    """The customer wallets this session opened, kept with the session (so with its
    transaction) in `session.info` under the private class `_OpenedHere`."""
    opened: _OpenedHere | None = session.info.get(_OpenedHere)
    if opened is None:
        opened = session.info[_OpenedHere] = _OpenedHere()
    return opened


async def _is_system(session: AsyncSession, account: str) -> bool:
    if account not in _system:
        flag = await session.scalar(select(Account.system).where(Account.id == account))
        if flag is None:
            raise NotFound("no such account", code="account_not_found")
        _system[account] = bool(flag)
    return _system[account]


async def _insert_transfer(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a transfer; False when its idempotency key or pending_id already exists."""
    inserted = await session.scalar(
        _insert_ignoring_conflicts(session, Transfer)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(Transfer.id)
    )
    return inserted is not None


def _same_or_conflict(found: Transfer, fields: dict[str, Any]) -> Transfer:
    for name, value in fields.items():
        if getattr(found, name) != value:
            raise Conflict(
                "idempotency key already used with other parameters",
                code="idempotency_key_reused", param=name,
            )
    return found


async def _move(session: AsyncSession, account: str, **deltas: int) -> None:
    if await _is_system(session, account):
        return
    await session.execute(
        update(Account).where(Account.id == account)
        .values({name: getattr(Account, name) + delta for name, delta in deltas.items()})
    )


async def _debit_wallet(session: AsyncSession, tenant_id: str, account: str, amount_mc: int,
                        *, pending: bool, low_threshold_mc: int | None,
                        transfer_id: str) -> None:
    """Debit a wallet, refusing when a no-overdraft wallet would go below zero."""
    column = Account.debits_pending if pending else Account.debits_posted
    available = Account.credits_posted - Account.debits_posted - Account.debits_pending
    after = await session.scalar(
        update(Account)
        .where(Account.id == account, Account.tenant_id == tenant_id,
               (~Account.no_overdraft) | (available >= amount_mc))
        .values({column: column + amount_mc})
        .returning(Account.credits_posted - Account.debits_posted - Account.debits_pending)
    )
    if after is None:
        await _refuse_debit(session, tenant_id, account, amount_mc, transfer_id)
    _note_low_balance(session, tenant_id, account, int(after), amount_mc, low_threshold_mc)


async def _refuse_debit(session: AsyncSession, tenant_id: str, account: str,
                        amount_mc: int, transfer_id: str) -> NoReturn:
    """Undo the transfer just inserted for this debit, then raise why the debit matched no
    row: no such wallet, or not enough credits.

    The undo keeps a caller that catches the error and commits from saving a transfer that
    moved no money (the insert comes first so that repeats never touch a balance).
    """
    await session.execute(delete(Transfer).where(Transfer.id == transfer_id))
    held = await session.get(Account, account)
    if held is None or held.tenant_id != tenant_id:
        raise NotFound("no such account", code="account_not_found")
    have = held.credits_posted - held.debits_posted - held.debits_pending
    raise InsufficientCredits(
        f"this needs {amount_mc} millicredits and {have} are available",
        extra={"required": amount_mc, "available": have,
               "shortfall": amount_mc - have, "unit": "millicredit"},
    )


def _note_low_balance(session: AsyncSession, tenant_id: str, account: str, after: int,
                      amount_mc: int, low_threshold_mc: int | None) -> None:
    """Record `credits.low` when this debit took the wallet below the threshold."""
    if low_threshold_mc and after < low_threshold_mc <= after + amount_mc:
        session.add(LedgerEvent(
            id=new_id("evt"), tenant_id=tenant_id, type="credits.low",
            payload={"account_id": account, "available": after,
                     "threshold": low_threshold_mc, "unit": "millicredit"}))


# PostgreSQL's one-statement verbs, built once on the tables (Core, not ORM: ORM-enabled DML
# costs more Python per call than the database spends on the statement).
_transfers: Table = Transfer.__table__  # type: ignore[assignment]
_accounts: Table = Account.__table__  # type: ignore[assignment]


def _param(name: str) -> Any:
    return bindparam(f"p_{name}", type_=_transfers.c[name].type)


def _inserting_cte() -> Any:
    """The transfer's insert as a CTE yielding its id, or no row for a repeat."""
    return (pg_insert(_transfers)
            .values({c.name: _param(c.name) for c in _transfers.columns})
            .on_conflict_do_nothing()
            .returning(_transfers.c.id)
            .cte("inserted"))


def _debiting_statement(column: str) -> Select[Any]:
    """Insert a transfer, then (only if it was inserted) debit `column` of its wallet.

    Returns one row: `inserted` (the id, or NULL for a repeat) and `available` (the wallet's
    available balance after, or NULL when the wallet refused or does not exist).
    """
    inserted = _inserting_cte()
    a = _accounts.c
    available = a.credits_posted - a.debits_posted - a.debits_pending
    amount = _param("amount_mc")
    debited = (update(_accounts)
               .where(a.id == _param("debit_account_id"), a.tenant_id == _param("tenant_id"),
                      (~a.no_overdraft) | (available >= amount),
                      exists(select(inserted.c.id)))
               .values({column: a[column] + amount})
               .returning(available.label("available"))
               .cte("debited"))
    return select(select(inserted.c.id).scalar_subquery().label("inserted"),
                  select(debited.c.available).scalar_subquery().label("available"))


def _resolving_statement() -> Select[Any]:
    """Insert a pending transfer's resolution, then (only if inserted) move its counters.

    Returns the resolution's columns, or no row when nothing was inserted: no such pending
    transfer for this tenant, an amount out of range, or already resolved.
    """
    t = _transfers.c
    # Looked up by primary key alone (a generic plan must not pick another index); the
    # tenant and phase are checked on the row found.
    pending = (select(t.id, t.tenant_id, t.phase, t.amount_mc, t.debit_account_id,
                      t.credit_account_id, t.kind, t.generation_id)
               .where(t.id == _param("pending_id"))
               .cte("pending"))
    posted = func.coalesce(_param("amount_mc"), pending.c.amount_mc)
    resolution = (pg_insert(_transfers)
                  .from_select(
                      ["id", "tenant_id", "idempotency_key", "debit_account_id",
                       "credit_account_id", "amount_mc", "phase", "pending_id", "kind",
                       "generation_id", "created_at"],
                      select(_param("id"), pending.c.tenant_id, _param("idempotency_key"),
                             pending.c.debit_account_id, pending.c.credit_account_id, posted,
                             _param("phase"), pending.c.id, pending.c.kind,
                             pending.c.generation_id, _param("created_at"))
                      .where(pending.c.tenant_id == _param("tenant_id"),
                             pending.c.phase == PENDING,
                             posted >= 0, posted <= pending.c.amount_mc))
                  .on_conflict_do_nothing()
                  .returning(t.amount_mc, t.debit_account_id, t.credit_account_id, t.kind,
                             t.generation_id, t.pending_id)
                  .cte("resolution"))
    a = _accounts.c

    def move(side: str, account: Any) -> Any:
        # One UPDATE per side, each joined on the primary key. System accounts keep no
        # counters, so their row is never locked: only the wallet moves.
        return (update(_accounts)
                .where(a.id == account, ~a.system, resolution.c.pending_id == pending.c.id)
                .values({f"{side}s_pending": a[f"{side}s_pending"] - pending.c.amount_mc,
                         f"{side}s_posted": a[f"{side}s_posted"] + resolution.c.amount_mc})
                .returning(a.id)
                .cte(f"moved_{side}"))

    # Nothing reads the two UPDATEs: add_cte renders them, and PostgreSQL runs a
    # data-modifying WITH whether or not anything reads it (debit and credit are distinct
    # accounts, a CHECK says so, so no row is updated twice).
    return select(resolution).add_cte(move("debit", pending.c.debit_account_id),
                                      move("credit", pending.c.credit_account_id))


_DEBIT_PENDING = _debiting_statement("debits_pending")
_DEBIT_POSTED = _debiting_statement("debits_posted")
_RESOLVE = _resolving_statement()


# ------------------------------------------------------------------------- batched verbs
#
# Inside a group commit (tenants/group_commit.py) on PostgreSQL, the verbs that would each
# cost a statement, and hold a wallet's row lock from a batch's first unit to its COMMIT,
# only note what they do; the end of the batch (`_flush_batch`) does it all in three
# statements, whatever the number of units: insert the new transfers, insert the
# resolutions of pending ones (reading what they resolve), then update each wallet once, in
# id order (no deadlocks between batches), unless that would overdraw it.
#
# Anything the end of the batch cannot do exactly as the units asked (a repeated key, a
# reservation already resolved, a wallet short because a concurrent batch spent it) raises:
# the batch rolls back and its units run again alone, on the exact step-by-step paths,
# where each one meets its own outcome (its first transfer, AlreadyResolved, a 402).

class BatchRefused(Exception):
    """The end of a batch found something its units must meet alone (see above)."""


@dataclass(slots=True)
class _Deltas:
    tenant_id: str
    debits_pending: int = 0
    debits_posted: int = 0
    debited_mc: int = 0  # reserved or posted outright by this batch: for credits.low
    low_threshold_mc: int | None = None


@dataclass(slots=True)
class _Batch:
    transfers: list[dict[str, Any]] = field(default_factory=list)
    # Returned to their units with only what the unit gave; completed by `_flush_batch`.
    resolutions: list[Transfer] = field(default_factory=list)
    deltas: dict[str, _Deltas] = field(default_factory=dict)

    def wallet(self, account: str, tenant_id: str) -> _Deltas:
        return self.deltas.setdefault(account, _Deltas(tenant_id))

    async def at_batch_end(self, session: AsyncSession) -> None:
        await _flush_batch(session, self)


def _deferring(session: AsyncSession) -> SharedBatch | None:
    """The group commit's batch whose end does this session's verbs, or None to do them now."""
    shared = batch_of(session)
    return shared if shared is not None and _on_postgresql(session) else None


_TRANSFER_COLUMNS = ("id", "tenant_id", "idempotency_key", "debit_account_id",
                     "credit_account_id", "amount_mc", "phase", "kind", "generation_id",
                     "reason", "timeout_at", "created_at")

# New transfers (none resolves another), many rows in one statement.
_INSERT_TRANSFERS = text("""
INSERT INTO transfers (id, tenant_id, idempotency_key, debit_account_id, credit_account_id,
                       amount_mc, phase, kind, generation_id, reason, timeout_at, created_at)
SELECT * FROM unnest(CAST(:id AS varchar[]), CAST(:tenant_id AS varchar[]),
                     CAST(:idempotency_key AS varchar[]), CAST(:debit_account_id AS varchar[]),
                     CAST(:credit_account_id AS varchar[]), CAST(:amount_mc AS bigint[]),
                     CAST(:phase AS varchar[]), CAST(:kind AS varchar[]),
                     CAST(:generation_id AS varchar[]), CAST(:reason AS varchar[]),
                     CAST(:timeout_at AS timestamptz[]), CAST(:created_at AS timestamptz[]))
ON CONFLICT DO NOTHING RETURNING id
""")

# Resolutions, each of a pending transfer (phase 'pending', models.PENDING) of its tenant and
# within its amount (NULL: all of it). Returns each inserted one with what it reserved.
_INSERT_RESOLUTIONS = text("""
WITH r AS (
    SELECT * FROM unnest(CAST(:id AS varchar[]), CAST(:pending_id AS varchar[]),
                         CAST(:tenant_id AS varchar[]), CAST(:idempotency_key AS varchar[]),
                         CAST(:phase AS varchar[]), CAST(:amount_mc AS bigint[]),
                         CAST(:created_at AS timestamptz[]))
        AS r(id, pending_id, tenant_id, idempotency_key, phase, amount_mc, created_at)),
ins AS (
    INSERT INTO transfers (id, tenant_id, idempotency_key, debit_account_id, credit_account_id,
                           amount_mc, phase, pending_id, kind, generation_id, created_at)
    SELECT r.id, p.tenant_id, r.idempotency_key, p.debit_account_id, p.credit_account_id,
           COALESCE(r.amount_mc, p.amount_mc), r.phase, p.id, p.kind, p.generation_id,
           r.created_at
    -- Each reservation looked up by primary key alone: OFFSET 0 keeps the planner from
    -- folding the tenant and phase tests in, which let a generic plan scan every pending
    -- transfer ever made (through the sweeper's index on phase) and hash them.
    FROM r CROSS JOIN LATERAL (SELECT * FROM transfers t WHERE t.id = r.pending_id OFFSET 0) p
    WHERE p.tenant_id = r.tenant_id AND p.phase = 'pending'
      AND COALESCE(r.amount_mc, p.amount_mc) BETWEEN 0 AND p.amount_mc
    ON CONFLICT DO NOTHING
    RETURNING id, pending_id, debit_account_id, credit_account_id, amount_mc, kind,
              generation_id)
SELECT ins.*, p.amount_mc AS reserved_mc FROM ins JOIN transfers p ON p.id = ins.pending_id
""")

# Lock the batch's wallets in id order (so two batches never deadlock), then add each one's
# deltas unless that would overdraw it; rows refused (or of another tenant) are missing from
# RETURNING. The lock is FOR NO KEY UPDATE, what the UPDATE takes anyway: FOR UPDATE would
# conflict with the KEY SHARE locks that every batch's transfer inserts hold on the same
# wallet (their foreign keys), and deadlock two batches.
_APPLY_DELTAS = text("""
WITH d AS (
    SELECT * FROM unnest(CAST(:ids AS varchar[]), CAST(:tenants AS varchar[]),
                         CAST(:pending AS bigint[]), CAST(:posted AS bigint[]))
        AS d(id, tenant_id, dpending, dposted)),
locked AS MATERIALIZED (
    SELECT a.id FROM accounts a WHERE a.id IN (SELECT id FROM d) ORDER BY a.id
    FOR NO KEY UPDATE)
UPDATE accounts a
SET debits_pending = a.debits_pending + d.dpending, debits_posted = a.debits_posted + d.dposted
FROM d
WHERE a.id = d.id AND a.tenant_id = d.tenant_id AND a.id IN (SELECT id FROM locked)
  AND (NOT a.no_overdraft
       OR a.credits_posted - (a.debits_posted + d.dposted) - (a.debits_pending + d.dpending) >= 0)
RETURNING a.id, a.credits_posted - a.debits_posted - a.debits_pending AS available
""")


async def _flush_batch(session: AsyncSession, batch: _Batch) -> None:
    """Do what the batch's verbs noted, in three statements; called by the group commit
    after its last unit, before it commits. Raises `BatchRefused` (the batch then rolls back
    and its units run alone)."""
    if batch.transfers:
        inserted = (await session.execute(_INSERT_TRANSFERS, {
            c: [t[c] for t in batch.transfers] for c in _TRANSFER_COLUMNS})).all()
        if len(inserted) != len(batch.transfers):
            raise BatchRefused("a transfer repeats an idempotency key")
    if batch.resolutions:
        await _resolve_all(session, batch)
    ids = sorted(a for a, d in batch.deltas.items() if d.debits_pending or d.debits_posted)
    if not ids:
        return
    rows = (await session.execute(_APPLY_DELTAS, {
        "ids": ids, "tenants": [batch.deltas[a].tenant_id for a in ids],
        "pending": [batch.deltas[a].debits_pending for a in ids],
        "posted": [batch.deltas[a].debits_posted for a in ids]})).all()
    if len(rows) != len(ids):
        # Short (a concurrent batch spent it) or not the tenant's: alone, each unit meets
        # its own 402 or 404.
        raise BatchRefused("a wallet would be overdrawn, or is not its tenant's")
    for account, available in rows:
        d = batch.deltas[account]
        if d.debited_mc:
            _note_low_balance(session, d.tenant_id, account, int(available), d.debited_mc,
                              d.low_threshold_mc)


async def _resolve_all(session: AsyncSession, batch: _Batch) -> None:
    """Insert the batch's resolutions, complete the transfers their units hold, and note
    what each moves."""
    rows = (await session.execute(_INSERT_RESOLUTIONS, {
        c: [getattr(t, c) for t in batch.resolutions]
        for c in ("id", "pending_id", "tenant_id", "idempotency_key", "phase", "amount_mc",
                  "created_at")})).all()
    if len(rows) != len(batch.resolutions):
        raise BatchRefused("a reservation is unknown, out of range or already resolved")
    found = {row.id: row for row in rows}
    for transfer in batch.resolutions:
        row = found[transfer.id]
        for name in ("debit_account_id", "credit_account_id", "amount_mc", "kind",
                     "generation_id"):
            setattr(transfer, name, getattr(row, name))
        if not await _is_system(session, row.debit_account_id):
            deltas = batch.wallet(row.debit_account_id, transfer.tenant_id)
            deltas.debits_pending -= row.reserved_mc
            deltas.debits_posted += row.amount_mc
        # Never a wallet today (reservations pay revenue accounts), but exact if one is.
        await _move(session, row.credit_account_id, credits_pending=-row.reserved_mc,
                    credits_posted=row.amount_mc)


async def _transfer(session: AsyncSession, *, tenant_id: str, debit: str, credit: str,
                    amount_mc: int, phase: str, kind: str, idempotency_key: str,
                    generation_id: str | None = None, reason: str | None = None,
                    timeout_at: datetime | None = None,
                    low_threshold_mc: int | None = None) -> Transfer:
    if amount_mc < 0:
        raise ValueError("amount_mc must not be negative")
    fields: dict[str, Any] = {
        "tenant_id": tenant_id, "debit_account_id": debit, "credit_account_id": credit,
        "amount_mc": amount_mc, "phase": phase, "kind": kind, "reason": reason}
    values = {"id": new_id("tr"), "idempotency_key": idempotency_key,
              "generation_id": generation_id, "timeout_at": timeout_at, "pending_id": None,
              "created_at": utcnow(), **fields}
    shared = _deferring(session)
    if _system.get(debit) is False and _system.get(credit) and shared is not None:
        # A known wallet paying a system account, in a batch: done at the batch's end.
        batch = shared.state(_Batch)
        batch.transfers.append(values)
        deltas = batch.wallet(debit, tenant_id)
        if phase == PENDING:
            deltas.debits_pending += amount_mc
        else:
            deltas.debits_posted += amount_mc
        deltas.debited_mc += amount_mc
        deltas.low_threshold_mc = low_threshold_mc or deltas.low_threshold_mc
        return Transfer(**values)
    if _system.get(debit) is False and _system.get(credit) and _on_postgresql(session):
        # A known wallet paying a system account (every reservation): one statement. Accounts
        # not seen yet by this process take the step-by-step path, which learns their flags.
        statement = _DEBIT_PENDING if phase == PENDING else _DEBIT_POSTED
        row = (await session.execute(
            statement, {f"p_{name}": value for name, value in values.items()})).one()
        if row.inserted is not None:
            if row.available is None:
                await _refuse_debit(session, tenant_id, debit, amount_mc, values["id"])
            _note_low_balance(session, tenant_id, debit, int(row.available), amount_mc,
                              low_threshold_mc)
            return Transfer(**values)
        # A repeat: nothing was inserted nor debited; the step-by-step path finds the first.
    if not await _insert_transfer(session, values):
        found = await session.scalar(
            select(Transfer).where(Transfer.idempotency_key == idempotency_key))
        assert found is not None
        return _same_or_conflict(found, fields)
    pending = phase == PENDING
    if await _is_system(session, debit):
        pass  # funding may go negative: it is where credits come from
    else:
        await _debit_wallet(session, tenant_id, debit, amount_mc, pending=pending,
                            low_threshold_mc=low_threshold_mc, transfer_id=values["id"])
    if pending:
        await _move(session, credit, credits_pending=amount_mc)
    else:
        await _move(session, credit, credits_posted=amount_mc)
    # Built from what was inserted: reading the row back would cost a round trip.
    return Transfer(**values)


async def grant(session: AsyncSession, *, tenant_id: str, to_account: str, amount_mc: int,
                idempotency_key: str, reason: str | None, kind: str = "grant") -> Transfer:
    """Move credits from the tenant's funding account to a wallet, posted at once.

    Called by the operator's credit grant and by completed purchases. Returns the transfer.
    """
    funding = await account_id(session, tenant_id, FUNDING)
    return await _transfer(session, tenant_id=tenant_id, debit=funding, credit=to_account,
                           amount_mc=amount_mc, phase=SINGLE, kind=kind,
                           idempotency_key=idempotency_key, reason=reason)


async def reserve(session: AsyncSession, *, tenant_id: str, from_account: str, amount_mc: int,
                  idempotency_key: str, timeout_at: datetime, generation_id: str | None,
                  to_code: str = PLATFORM_REVENUE, kind: str = "generation",
                  low_threshold_mc: int | None = None) -> Transfer:
    """Reserve credits on a wallet for a revenue account (a pending transfer).

    Called before a generation is queued. Raises `InsufficientCredits` (and the caller's
    transaction rolls back) when the wallet's available balance is short. Records a
    `credits.low` event when this reservation takes the wallet below `low_threshold_mc`.
    Returns the pending transfer.
    """
    revenue = await account_id(session, tenant_id, to_code)
    return await _transfer(session, tenant_id=tenant_id, debit=from_account, credit=revenue,
                           amount_mc=amount_mc, phase=PENDING, kind=kind,
                           idempotency_key=idempotency_key, generation_id=generation_id,
                           timeout_at=timeout_at, low_threshold_mc=low_threshold_mc)


async def _resolve(session: AsyncSession, tenant_id: str, pending_id: str, phase: str,
                   amount_mc: int | None) -> Transfer:
    if amount_mc is not None and amount_mc < 0:
        raise ValueError("a post must be between 0 and the reserved amount")
    shared = _deferring(session)
    if shared is not None:
        # Done at the batch's end, which also fills in what this transfer takes from the
        # reservation (accounts, kind, generation; the amount when it is all of it).
        transfer = Transfer(id=new_id("tr"), tenant_id=tenant_id, pending_id=pending_id,
                            idempotency_key=f"{phase}:{pending_id}", phase=phase,
                            amount_mc=0 if phase == VOID_PENDING else amount_mc,
                            created_at=utcnow(), reason=None, timeout_at=None)
        shared.state(_Batch).resolutions.append(transfer)
        return transfer
    if _on_postgresql(session):
        values: dict[str, Any] = {
            "id": new_id("tr"), "tenant_id": tenant_id, "pending_id": pending_id,
            "idempotency_key": f"{phase}:{pending_id}", "phase": phase,
            "amount_mc": 0 if phase == VOID_PENDING else amount_mc, "created_at": utcnow()}
        row = (await session.execute(
            _RESOLVE, {f"p_{name}": value for name, value in values.items()})).first()
        if row is not None:
            return Transfer(**{**values, **row._asdict()}, reason=None, timeout_at=None)
        # Nothing inserted (unknown, out of range or already resolved): the step-by-step
        # path below reads why, and returns the earlier resolution or raises.
    pending = await session.get(Transfer, pending_id)
    if pending is None or pending.tenant_id != tenant_id or pending.phase != PENDING:
        raise NotFound("no such pending transfer", code="transfer_not_found")
    posted_mc = 0 if phase == VOID_PENDING else pending.amount_mc
    if amount_mc is not None:
        posted_mc = amount_mc
    if not 0 <= posted_mc <= pending.amount_mc:
        raise ValueError("a post must be between 0 and the reserved amount")
    values = {
        "id": new_id("tr"), "tenant_id": tenant_id, "idempotency_key": f"{phase}:{pending_id}",
        "debit_account_id": pending.debit_account_id,
        "credit_account_id": pending.credit_account_id, "amount_mc": posted_mc,
        "phase": phase, "pending_id": pending_id, "kind": pending.kind,
        "generation_id": pending.generation_id, "reason": None, "timeout_at": None,
        "created_at": utcnow(),
    }
    # The unique pending_id makes this insert the single point where a reservation ends.
    if not await _insert_transfer(session, values):
        earlier = await session.scalar(select(Transfer).where(Transfer.pending_id == pending_id))
        assert earlier is not None
        if earlier.phase == phase and (amount_mc is None or earlier.amount_mc == posted_mc):
            return earlier
        raise AlreadyResolved(f"the reservation was already {earlier.phase.split('_')[0]}ed")
    await _move(session, pending.debit_account_id, debits_pending=-pending.amount_mc,
                debits_posted=posted_mc)
    await _move(session, pending.credit_account_id, credits_pending=-pending.amount_mc,
                credits_posted=posted_mc)
    return Transfer(**values)


async def post(session: AsyncSession, *, tenant_id: str, pending_id: str,
               amount_mc: int | None = None) -> Transfer:
    """Settle a reservation at `amount_mc` (default: all of it); the rest is released.

    Called when a generation succeeds. Repeats return the same posting; raises
    `AlreadyResolved` if the reservation was voided.
    """
    return await _resolve(session, tenant_id, pending_id, POST_PENDING, amount_mc)


async def void(session: AsyncSession, *, tenant_id: str, pending_id: str) -> Transfer:
    """Release a reservation in full; called on failure, cancel and expiry. Idempotent."""
    return await _resolve(session, tenant_id, pending_id, VOID_PENDING, None)


async def clawback(session: AsyncSession, *, tenant_id: str, from_account: str,
                   amount_mc: int, idempotency_key: str, reason: str) -> Transfer:
    """Take up to `amount_mc` back from a wallet to funding, as far as its balance allows.

    Called for refunds. Returns the transfer; its `amount_mc` is what was actually taken (the
    caller records the rest as owed). Idempotent by key.
    """
    existing = await session.scalar(
        select(Transfer).where(Transfer.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    held = await balance(session, tenant_id=tenant_id, account=from_account)
    take = max(0, min(amount_mc, held.available_mc))
    funding = await account_id(session, tenant_id, FUNDING)
    return await _transfer(session, tenant_id=tenant_id, debit=from_account, credit=funding,
                           amount_mc=take, phase=SINGLE, kind="refund",
                           idempotency_key=idempotency_key, reason=reason)


async def _derived_totals(session: AsyncSession, accounts: list[str]) -> dict[str, Totals]:
    """Counters of system accounts, summed from their transfers."""
    resolution = aliased(Transfer)
    posted = Transfer.phase.in_((SINGLE, POST_PENDING))
    open_pending = and_(Transfer.phase == PENDING, resolution.id.is_(None))
    totals: dict[str, Totals] = {}
    for account in accounts:
        def sum_if(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, Transfer.amount_mc), else_=0)), 0)

        row = (await session.execute(
            select(sum_if(posted & (Transfer.debit_account_id == account)),
                   sum_if(posted & (Transfer.credit_account_id == account)),
                   sum_if(open_pending & (Transfer.debit_account_id == account)),
                   sum_if(open_pending & (Transfer.credit_account_id == account)))
            .select_from(Transfer)
            .outerjoin(resolution, resolution.pending_id == Transfer.id)
            .where(or_(Transfer.debit_account_id == account,
                       Transfer.credit_account_id == account))
        )).one()
        totals[account] = Totals(*(int(v) for v in row))
    return totals


async def balances(session: AsyncSession, tenant_id: str) -> dict[str, Totals]:
    """Every account of a tenant by code, with its counters (derived for system accounts)."""
    accounts = list(await session.scalars(select(Account).where(Account.tenant_id == tenant_id)))
    derived = await _derived_totals(session, [a.id for a in accounts if a.system])
    return {
        a.code: derived[a.id] if a.system else Totals(a.debits_posted, a.credits_posted,
                                                      a.debits_pending, a.credits_pending)
        for a in accounts
    }


async def balance(session: AsyncSession, *, tenant_id: str, account: str) -> Balance:
    """An account's available, pending (reserved) and posted balances in millicredits."""
    held = await session.scalar(
        select(Account).where(Account.id == account, Account.tenant_id == tenant_id)
    )
    if held is None:
        raise NotFound("no such account", code="account_not_found")
    totals = ((await _derived_totals(session, [held.id]))[held.id] if held.system else
              Totals(held.debits_posted, held.credits_posted, held.debits_pending,
                     held.credits_pending))
    posted = totals.posted_balance
    return Balance(available_mc=posted - totals.debits_pending,
                   pending_mc=totals.debits_pending, posted_mc=posted)


async def expired_reservations(session: AsyncSession, *, now: datetime | None = None,
                               limit: int = 100) -> list[Transfer]:
    """Pending transfers whose timeout passed and that nothing resolved yet (for the sweeper)."""
    resolution = aliased(Transfer)
    rows = await session.scalars(
        select(Transfer)
        .outerjoin(resolution, resolution.pending_id == Transfer.id)
        .where(Transfer.phase == PENDING, Transfer.timeout_at < (now or utcnow()),
               resolution.id.is_(None))
        .order_by(Transfer.timeout_at)
        .limit(limit)
    )
    return list(rows)
