"""The portable path: each verb step by step, the same on PostgreSQL and SQLite.

Used always on SQLite; on PostgreSQL for anything the faster paths do not do themselves: a
transfer other than a known wallet paying a system account (every grant, which pays from the
funding account; a reservation on a wallet this process has not seen yet), and whatever the
single-statement path leaves to it (a repeated key, a refusal, an unknown or already resolved
reservation), to find the same answer and raise the same errors. The single-statement path
also ends its refusals here (`refuse_debit`), and both faster paths record `credits.low` with
`note_low_balance`.

How it stays correct under concurrency:
- a transfer is inserted first with `ON CONFLICT DO NOTHING`; a repeat (or a racing twin,
  which waits on the unique index) finds the first one and changes no balance;
- a wallet is debited by one conditional UPDATE (`... WHERE available >= amount`), so no
  read-modify-write can overdraw it; a CHECK constraint refuses it besides;
- a reservation ends by inserting its resolution, whose `pending_id` is UNIQUE: exactly once.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.accounts import is_system
from billing.ledger.dialect import insert_ignoring_conflicts
from billing.ledger.errors import AlreadyResolved
from billing.models import PENDING, VOID_PENDING, Account, LedgerEvent, Transfer
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InsufficientCredits, NotFound


async def transfer(session: AsyncSession, values: dict[str, Any], fields: dict[str, Any], *,
                   low_threshold_mc: int | None) -> Transfer:
    """Insert the transfer `values` (`fields`: those a repeat of its key must match), then
    move its accounts' counters; a repeat returns the first transfer."""
    tenant_id, debit, credit = (values["tenant_id"], values["debit_account_id"],
                                values["credit_account_id"])
    amount_mc, phase = values["amount_mc"], values["phase"]
    if not await _insert_transfer(session, values):
        found = await session.scalar(
            select(Transfer).where(Transfer.idempotency_key == values["idempotency_key"]))
        assert found is not None
        return _same_or_conflict(found, fields)
    pending = phase == PENDING
    if await is_system(session, debit):
        pass  # funding may go negative: it is where credits come from
    else:
        await _debit_wallet(session, tenant_id, debit, amount_mc, pending=pending,
                            low_threshold_mc=low_threshold_mc, transfer_id=values["id"])
    if pending:
        await move(session, credit, credits_pending=amount_mc)
    else:
        await move(session, credit, credits_posted=amount_mc)
    # Built from what was inserted: reading the row back would cost a round trip.
    return Transfer(**values)


async def resolve(session: AsyncSession, tenant_id: str, pending_id: str, phase: str,
                  amount_mc: int | None) -> Transfer:
    """End the reservation `pending_id` with a resolution of `phase` (posting `amount_mc`,
    default all of it); a repeat returns the earlier resolution, another raises
    `AlreadyResolved`."""
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
    await move(session, pending.debit_account_id, debits_pending=-pending.amount_mc,
               debits_posted=posted_mc)
    await move(session, pending.credit_account_id, credits_pending=-pending.amount_mc,
               credits_posted=posted_mc)
    return Transfer(**values)


async def _insert_transfer(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a transfer; False when its idempotency key or pending_id already exists."""
    inserted = await session.scalar(
        insert_ignoring_conflicts(session, Transfer)
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


async def move(session: AsyncSession, account: str, **deltas: int) -> None:
    """Add `deltas` to an account's counters; nothing for a system account (it keeps none)."""
    if await is_system(session, account):
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
        await refuse_debit(session, tenant_id, account, amount_mc, transfer_id)
    note_low_balance(session, tenant_id, account, int(after), amount_mc, low_threshold_mc)


async def refuse_debit(session: AsyncSession, tenant_id: str, account: str,
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


def note_low_balance(session: AsyncSession, tenant_id: str, account: str, after: int,
                     amount_mc: int, low_threshold_mc: int | None) -> None:
    """Record `credits.low` when this debit took the wallet below the threshold."""
    if low_threshold_mc and after < low_threshold_mc <= after + amount_mc:
        session.add(LedgerEvent(
            id=new_id("evt"), tenant_id=tenant_id, type="credits.low",
            payload={"account_id": account, "available": after,
                     "threshold": low_threshold_mc, "unit": "millicredit"}))
