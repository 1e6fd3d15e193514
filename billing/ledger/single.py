"""The single-statement path: on PostgreSQL, outside a group commit, a reservation (or a
transfer outright from a wallet to a system account) and a settlement each take one statement.

Each is a data-modifying WITH doing the portable path's steps in the same order: insert the
transfer (or its resolution) with `ON CONFLICT DO NOTHING`, then, only if it was inserted, the
conditional wallet UPDATE. One round trip and no ORM work per verb is what keeps the hot path
cheap (`bench/ledger_bench.py`). Anything unusual (a repeat, a refusal, an unknown id) is left
to the portable path (these functions return None), which finds the same answer and raises the
same errors; a refused debit undoes its transfer there too (`portable.refuse_debit`).

A transfer takes this path only when this process knows its accounts' flags
(`accounts.known_wallet_paying_system`); `verbs.py` chooses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from billing.ledger.portable import note_low_balance, refuse_debit
from billing.models import PENDING, VOID_PENDING, Account, Transfer
from tenants.kernel.db import new_id, utcnow


async def transfer(session: AsyncSession, values: dict[str, Any], *,
                   low_threshold_mc: int | None) -> Transfer | None:
    """Insert the transfer `values` (a known wallet paying a system account) and debit its
    wallet, in one statement; None for a repeat (nothing inserted nor debited: the portable
    path finds the first)."""
    tenant_id, debit, amount_mc = (values["tenant_id"], values["debit_account_id"],
                                   values["amount_mc"])
    statement = _DEBIT_PENDING if values["phase"] == PENDING else _DEBIT_POSTED
    row = (await session.execute(
        statement, {f"p_{name}": value for name, value in values.items()})).one()
    if row.inserted is not None:
        if row.available is None:
            await refuse_debit(session, tenant_id, debit, amount_mc, values["id"])
        note_low_balance(session, tenant_id, debit, int(row.available), amount_mc,
                         low_threshold_mc)
        return Transfer(**values)
    # A repeat: nothing was inserted nor debited; the portable path finds the first.
    return None


async def resolve(session: AsyncSession, tenant_id: str, pending_id: str, phase: str,
                  amount_mc: int | None) -> Transfer | None:
    """End the reservation `pending_id` in one statement; None when nothing was inserted
    (unknown, out of range or already resolved: the portable path reads why, and returns the
    earlier resolution or raises)."""
    values: dict[str, Any] = {
        "id": new_id("tr"), "tenant_id": tenant_id, "pending_id": pending_id,
        "idempotency_key": f"{phase}:{pending_id}", "phase": phase,
        "amount_mc": 0 if phase == VOID_PENDING else amount_mc, "created_at": utcnow()}
    row = (await session.execute(
        _RESOLVE, {f"p_{name}": value for name, value in values.items()})).first()
    if row is not None:
        return Transfer(**{**values, **row._asdict()}, reason=None, timeout_at=None)
    return None


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
