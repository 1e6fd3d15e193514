"""The batched path: inside a group commit's shared transaction (`Database.grouped`, a batch
of two units or more) on PostgreSQL, reservations, posts and voids only note what they do, and
the end of the batch does it for all its units at once.

The verbs that would each cost a statement, and hold a wallet's row lock from a batch's first
unit to its COMMIT, only note what they do (`note_transfer`, `note_resolution`); the end of the
batch (`_flush_batch`, which `SharedBatch.state` defers) does it all in three statements,
whatever the number of units: insert the new transfers, insert the resolutions of pending ones
(reading what they resolve), then update each wallet once, in id order (no deadlocks between
batches), unless that would overdraw it. So a batch costs the same round trips whatever its
size, and a hot wallet's row is locked only from its UPDATE to the commit. A resolution's
transfer is complete once its batch committed.

Anything the end of the batch cannot do exactly as the units asked (a repeated key, a
reservation already resolved, a wallet short because a concurrent batch spent it) raises: the
batch rolls back and its units run again alone, on the single-statement and portable paths,
where each one meets its own outcome (its first transfer, AlreadyResolved, a 402).

A wallet is checked on its net change by the UPDATE, then on its new debits against what it
held before the batch: a unit that reserves beyond the balance and posts less in the same unit
would pass the first check, where alone its reservation meets a 402; the second refuses the
batch and its units run alone (tests/billing/test_ledger_paths.py pins it).

A transfer takes this path only when this process knows its accounts' flags
(`accounts.known_wallet_paying_system`); `verbs.py` chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.accounts import is_system
from billing.ledger.portable import move, note_low_balance
from billing.models import PENDING, VOID_PENDING, Transfer
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.group_commit import batch_of


def note_transfer(session: AsyncSession, values: dict[str, Any], *,
                  low_threshold_mc: int | None) -> Transfer:
    """Note the transfer `values` (a known wallet paying a system account) for the batch's
    end; returns it as it will be inserted."""
    tenant_id, debit, amount_mc = (values["tenant_id"], values["debit_account_id"],
                                   values["amount_mc"])
    batch = _notes(session)
    batch.transfers.append(values)
    deltas = batch.wallet(debit, tenant_id)
    if values["phase"] == PENDING:
        deltas.debits_pending += amount_mc
    else:
        deltas.debits_posted += amount_mc
    deltas.debited_mc += amount_mc
    deltas.low_threshold_mc = low_threshold_mc or deltas.low_threshold_mc
    return Transfer(**values)


def note_resolution(session: AsyncSession, tenant_id: str, pending_id: str, phase: str,
                    amount_mc: int | None) -> Transfer:
    """Note a resolution of `pending_id` for the batch's end, which also fills in what the
    returned transfer takes from the reservation (accounts, kind, generation; the amount when
    it is all of it)."""
    transfer = Transfer(id=new_id("tr"), tenant_id=tenant_id, pending_id=pending_id,
                        idempotency_key=f"{phase}:{pending_id}", phase=phase,
                        amount_mc=0 if phase == VOID_PENDING else amount_mc,
                        created_at=utcnow(), reason=None, timeout_at=None)
    _notes(session).resolutions.append(transfer)
    return transfer


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
    """What a batch's verbs noted; one per batch (`SharedBatch.state`)."""

    transfers: list[dict[str, Any]] = field(default_factory=list)
    # Returned to their units with only what the unit gave; completed by `_flush_batch`.
    resolutions: list[Transfer] = field(default_factory=list)
    deltas: dict[str, _Deltas] = field(default_factory=dict)

    def wallet(self, account: str, tenant_id: str) -> _Deltas:
        return self.deltas.setdefault(account, _Deltas(tenant_id))

    async def at_batch_end(self, session: AsyncSession) -> None:
        await _flush_batch(session, self)


def _notes(session: AsyncSession) -> _Batch:
    shared = batch_of(session)
    assert shared is not None  # verbs.path_for chose this path for a batch's session
    return shared.state(_Batch)


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
        # Alone, each new debit must fit what the wallet held before it; the UPDATE above
        # checked the net change only, which a reserve-then-post unit (a charged cache hit)
        # can pass while its reservation alone would be refused. Frees by resolutions in the
        # same batch are not counted here: such a batch is refused and its units run alone,
        # which only costs speed.
        if d.debited_mc > int(available) + d.debits_pending + d.debits_posted:
            raise BatchRefused("a debit would not have fitted the wallet alone")
        if d.debited_mc:
            note_low_balance(session, d.tenant_id, account, int(available), d.debited_mc,
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
        if not await is_system(session, row.debit_account_id):
            deltas = batch.wallet(row.debit_account_id, transfer.tenant_id)
            deltas.debits_pending -= row.reserved_mc
            deltas.debits_posted += row.amount_mc
        # Never a wallet today (reservations pay revenue accounts), but exact if one is.
        await move(session, row.credit_account_id, credits_pending=-row.reserved_mc,
                   credits_posted=row.amount_mc)
