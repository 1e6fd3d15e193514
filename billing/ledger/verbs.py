"""The ledger's writing verbs, `grant`, `move`, `reserve`, `post`, `void` and `clawback`, and the
choice of the path each takes.

Every verb runs inside the caller's transaction (so a generation row and its reservations
commit together) and is idempotent: the same idempotency key with the same fields returns the
first transfer; with other fields it raises `Conflict`.

Three paths do the same work and leave the same books (`tests/billing/test_ledger_paths.py`):
- `Path.PORTABLE` (`portable.py`), step by step: always on SQLite, and on PostgreSQL for
  whatever the other two leave to it;
- `Path.SINGLE` (`single.py`), one statement per reservation or settlement: on PostgreSQL;
- `Path.BATCHED` (`batched.py`), noted and done at the end of a group commit's batch: on
  PostgreSQL, in a batch's shared transaction (`tenants.kernel.group_commit.batch_of`).
`path_for` chooses by the session's database and whether it is a batch's; `limited_to` holds
the choice back (tests comparing the paths, diagnostics).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger import batched, portable, single
from billing.ledger.accounts import (
    FUNDING,
    PLATFORM_REVENUE,
    account_id,
    known_wallet_paying_system,
)
from billing.ledger.dialect import on_postgresql
from billing.ledger.reads import balance
from billing.models import PENDING, POST_PENDING, SINGLE, VOID_PENDING, Transfer
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.group_commit import batch_of


class Path(Enum):
    """How a verb does its work, from the simplest to the cheapest per verb."""

    PORTABLE = 1  # step by step; PostgreSQL and SQLite
    SINGLE = 2  # one statement per verb; PostgreSQL
    BATCHED = 3  # at the end of a group commit's batch; PostgreSQL, in a shared transaction


_limit: ContextVar[Path] = ContextVar("ledger_path_limit", default=Path.BATCHED)


@contextmanager
def limited_to(path: Path) -> Iterator[None]:
    """Verbs called inside this block (in this task, and in tasks it starts) take no path
    beyond `path` in `Path`'s order: `PORTABLE`, step by step on PostgreSQL too; `SINGLE`, one
    statement per verb even in a group commit's batch; `BATCHED`, the default.

    For tests that compare the paths and for diagnostics; the product never limits them.
    """
    token = _limit.set(path)
    try:
        yield
    finally:
        _limit.reset(token)


def path_for(session: AsyncSession) -> Path:
    """The path the verbs take in `session`: on SQLite `PORTABLE`; on PostgreSQL `BATCHED` in
    a group commit's shared transaction and `SINGLE` elsewhere; never beyond `limited_to`.

    A verb may still leave part of its work to the portable path: a transfer between accounts
    this process does not know yet, and anything unusual on the single-statement path (a
    repeat, a refusal). A batch whose end cannot do what its units asked runs them again
    alone, in sessions of their own.
    """
    if not on_postgresql(session):
        return Path.PORTABLE
    limit = _limit.get()
    if limit is Path.BATCHED and batch_of(session) is not None:
        return Path.BATCHED
    return Path.PORTABLE if limit is Path.PORTABLE else Path.SINGLE


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
    if known_wallet_paying_system(debit, credit):
        # A known wallet paying a system account (every reservation). Accounts not seen yet
        # by this process take the portable path, which learns their flags.
        path = path_for(session)
        if path is Path.BATCHED:
            return batched.note_transfer(session, values, low_threshold_mc=low_threshold_mc)
        if path is Path.SINGLE:
            done = await single.transfer(session, values, low_threshold_mc=low_threshold_mc)
            if done is not None:
                return done
            # A repeat: nothing was inserted nor debited; the portable path finds the first.
    return await portable.transfer(session, values, fields, low_threshold_mc=low_threshold_mc)


async def grant(session: AsyncSession, *, tenant_id: str, to_account: str, amount_mc: int,
                idempotency_key: str, reason: str | None, kind: str = "grant") -> Transfer:
    """Move credits from the tenant's funding account to a wallet, posted at once.

    Called by the operator's credit grant and by completed purchases. Returns the transfer.
    """
    funding = await account_id(session, tenant_id, FUNDING)
    return await _transfer(session, tenant_id=tenant_id, debit=funding, credit=to_account,
                           amount_mc=amount_mc, phase=SINGLE, kind=kind,
                           idempotency_key=idempotency_key, reason=reason)


async def move(session: AsyncSession, *, tenant_id: str, from_account: str, to_account: str,
               amount_mc: int, idempotency_key: str, reason: str | None,
               kind: str = "transfer") -> Transfer:
    """Move credits from one wallet to another, posted at once (a tenant giving credits to
    a customer's wallet or taking them back; a team's wallet funded from its owner's wallet
    or the tenant's).

    Raises `InsufficientCredits` (the caller's transaction rolls back) when `from_account`'s
    available balance is short. Between two wallets no faster path applies: it takes the
    portable one, as every transfer not paying a system account does. Returns the transfer.
    """
    return await _transfer(session, tenant_id=tenant_id, debit=from_account,
                           credit=to_account, amount_mc=amount_mc, phase=SINGLE, kind=kind,
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
    path = path_for(session)
    if path is Path.BATCHED:
        return batched.note_resolution(session, tenant_id, pending_id, phase, amount_mc)
    if path is Path.SINGLE:
        done = await single.resolve(session, tenant_id, pending_id, phase, amount_mc)
        if done is not None:
            return done
        # Nothing inserted (unknown, out of range or already resolved): the portable path
        # reads why, and returns the earlier resolution or raises.
    return await portable.resolve(session, tenant_id, pending_id, phase, amount_mc)


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
