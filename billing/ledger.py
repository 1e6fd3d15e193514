"""The ledger's verbs: `open_tenant_accounts`, `grant`, `reserve`, `post`, `void`, `balance`,
`expire_reservations`.

Every verb runs inside the caller's transaction (so a generation row and its reservation commit
together) and is idempotent: the same idempotency key with the same fields returns the first
transfer; with other fields it raises `Conflict`. Balances change only through conditional
UPDATEs, so no read-modify-write race can overdraw a wallet on either database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import PENDING, POST_PENDING, SINGLE, VOID_PENDING, Account, Transfer
from tenants.db import new_id, utcnow
from tenants.errors import Conflict, InsufficientCredits, NotFound

TENANT_WALLET = "tenant_wallet"
FUNDING = "funding"
REVENUE = "revenue"


@dataclass(frozen=True, slots=True)
class Balance:
    available_mc: int
    pending_mc: int
    posted_mc: int


class AlreadyResolved(Conflict):
    """The pending transfer was already posted or voided (by a retry, a cancel or the sweeper)."""

    default_code = "transfer_already_resolved"


async def open_tenant_accounts(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """Create a tenant's wallet, funding and revenue accounts; called when a tenant is created.

    Returns `{code: account_id}`. The system side is per tenant, so no account row is shared by
    every tenant's traffic.
    """
    ids: dict[str, str] = {}
    for code, no_overdraft in ((TENANT_WALLET, True), (FUNDING, False), (REVENUE, False)):
        account = Account(id=new_id("acc"), tenant_id=tenant_id, code=code,
                          no_overdraft=no_overdraft)
        session.add(account)
        ids[code] = account.id
    await session.flush()
    return ids


async def account_id(session: AsyncSession, tenant_id: str, code: str) -> str:
    """The id of a tenant's account by code; raises `NotFound` when it does not exist."""
    found = await session.scalar(
        select(Account.id).where(Account.tenant_id == tenant_id, Account.code == code)
    )
    if found is None:
        raise NotFound(f"no {code} account for this tenant", code="account_not_found")
    return found


async def _existing(session: AsyncSession, idempotency_key: str) -> Transfer | None:
    return await session.scalar(
        select(Transfer).where(Transfer.idempotency_key == idempotency_key)
    )


def _same_or_conflict(found: Transfer, **fields: object) -> Transfer:
    for name, value in fields.items():
        if getattr(found, name) != value:
            raise Conflict(
                "idempotency key already used with other parameters",
                code="idempotency_key_reused", param=name,
            )
    return found


async def _insert(session: AsyncSession, transfer: Transfer) -> bool:
    """Insert under a savepoint; False when a unique key (idempotency or pending_id) exists."""
    try:
        async with session.begin_nested():
            session.add(transfer)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def _move(session: AsyncSession, account: str, *, debits_posted: int = 0,
                credits_posted: int = 0, debits_pending: int = 0,
                credits_pending: int = 0) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == account)
        .values(
            debits_posted=Account.debits_posted + debits_posted,
            credits_posted=Account.credits_posted + credits_posted,
            debits_pending=Account.debits_pending + debits_pending,
            credits_pending=Account.credits_pending + credits_pending,
        )
    )


async def _debit_checked(session: AsyncSession, tenant_id: str, account: str, amount_mc: int,
                         *, pending: bool) -> None:
    """Debit `account`, refusing when a no-overdraft wallet would go below zero."""
    column = Account.debits_pending if pending else Account.debits_posted
    result = await session.execute(
        update(Account)
        .where(
            Account.id == account,
            Account.tenant_id == tenant_id,
            (~Account.no_overdraft)
            | (Account.credits_posted - Account.debits_posted - Account.debits_pending
               >= amount_mc),
        )
        .values({column: column + amount_mc})
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        held = await session.get(Account, account)
        if held is None or held.tenant_id != tenant_id:
            raise NotFound("no such account", code="account_not_found")
        available = held.credits_posted - held.debits_posted - held.debits_pending
        raise InsufficientCredits(
            f"this needs {amount_mc} millicredits and {available} are available",
            extra={"required": amount_mc, "available": available,
                   "shortfall": amount_mc - available, "unit": "millicredit"},
        )


async def _transfer(session: AsyncSession, *, tenant_id: str, debit: str, credit: str,
                    amount_mc: int, phase: str, kind: str, idempotency_key: str,
                    generation_id: str | None, reason: str | None,
                    timeout_at: datetime | None) -> Transfer:
    if amount_mc < 0:
        raise ValueError("amount_mc must not be negative")
    fields = {"debit_account_id": debit, "credit_account_id": credit, "amount_mc": amount_mc,
              "phase": phase, "kind": kind, "tenant_id": tenant_id, "reason": reason}
    found = await _existing(session, idempotency_key)
    if found is not None:
        return _same_or_conflict(found, **fields)
    pending = phase == PENDING
    await _debit_checked(session, tenant_id, debit, amount_mc, pending=pending)
    if pending:
        await _move(session, credit, credits_pending=amount_mc)
    else:
        await _move(session, credit, credits_posted=amount_mc)
    transfer = Transfer(id=new_id("tr"), idempotency_key=idempotency_key,
                        generation_id=generation_id, timeout_at=timeout_at,
                        **fields)
    if not await _insert(session, transfer):
        # A concurrent twin won the key; our balance changes roll back with the caller.
        raise Conflict("a concurrent request holds this idempotency key",
                       code="idempotency_key_in_use")
    return transfer


async def grant(session: AsyncSession, *, tenant_id: str, to_account: str, amount_mc: int,
                idempotency_key: str, reason: str | None, kind: str = "grant") -> Transfer:
    """Move credits from the tenant's funding account to a wallet, posted at once.

    Called by the operator's credit grant and by purchases. Returns the transfer.
    """
    funding = await account_id(session, tenant_id, FUNDING)
    return await _transfer(session, tenant_id=tenant_id, debit=funding, credit=to_account,
                           amount_mc=amount_mc, phase=SINGLE, kind=kind,
                           idempotency_key=idempotency_key, generation_id=None, reason=reason,
                           timeout_at=None)


async def reserve(session: AsyncSession, *, tenant_id: str, from_account: str, amount_mc: int,
                  idempotency_key: str, timeout_at: datetime, generation_id: str | None,
                  kind: str = "generation") -> Transfer:
    """Reserve credits on a wallet for the tenant's revenue account (a pending transfer).

    Called before a generation is queued. Raises `InsufficientCredits` (nothing changed) when
    the wallet's available balance is short. Returns the pending transfer.
    """
    revenue = await account_id(session, tenant_id, REVENUE)
    return await _transfer(session, tenant_id=tenant_id, debit=from_account, credit=revenue,
                           amount_mc=amount_mc, phase=PENDING, kind=kind,
                           idempotency_key=idempotency_key, generation_id=generation_id,
                           reason=None, timeout_at=timeout_at)


async def _resolve(session: AsyncSession, tenant_id: str, pending_id: str, phase: str,
                   amount_mc: int | None) -> Transfer:
    pending = await session.get(Transfer, pending_id)
    if pending is None or pending.tenant_id != tenant_id or pending.phase != PENDING:
        raise NotFound("no such pending transfer", code="transfer_not_found")
    posted_mc = 0 if phase == VOID_PENDING else pending.amount_mc
    if amount_mc is not None:
        posted_mc = amount_mc
    if not 0 <= posted_mc <= pending.amount_mc:
        raise ValueError("a post must be between 0 and the reserved amount")
    resolution = Transfer(
        id=new_id("tr"), tenant_id=tenant_id, idempotency_key=f"{phase}:{pending_id}",
        debit_account_id=pending.debit_account_id, credit_account_id=pending.credit_account_id,
        amount_mc=posted_mc, phase=phase, pending_id=pending_id, kind=pending.kind,
        generation_id=pending.generation_id,
    )
    # The unique pending_id makes this insert the single point where a reservation ends.
    if not await _insert(session, resolution):
        earlier = await session.scalar(select(Transfer).where(Transfer.pending_id == pending_id))
        assert earlier is not None
        if earlier.phase == phase and (amount_mc is None or earlier.amount_mc == posted_mc):
            return earlier
        raise AlreadyResolved(f"the reservation was already {earlier.phase.split('_')[0]}ed")
    await _move(session, pending.debit_account_id, debits_pending=-pending.amount_mc,
                debits_posted=posted_mc)
    await _move(session, pending.credit_account_id, credits_pending=-pending.amount_mc,
                credits_posted=posted_mc)
    return resolution


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


async def balance(session: AsyncSession, *, tenant_id: str, account: str) -> Balance:
    """The wallet's available, pending (reserved) and posted balances in millicredits."""
    held = await session.scalar(
        select(Account).where(Account.id == account, Account.tenant_id == tenant_id)
    )
    if held is None:
        raise NotFound("no such account", code="account_not_found")
    posted = held.credits_posted - held.debits_posted
    return Balance(available_mc=posted - held.debits_pending, pending_mc=held.debits_pending,
                   posted_mc=posted)


async def expired_reservations(session: AsyncSession, *, now: datetime | None = None,
                               limit: int = 100) -> list[Transfer]:
    """Pending transfers whose timeout passed and that nothing resolved yet (for the sweeper)."""
    resolved = select(Transfer.pending_id).where(Transfer.pending_id.is_not(None))
    rows = await session.scalars(
        select(Transfer)
        .where(Transfer.phase == PENDING, Transfer.timeout_at < (now or utcnow()),
               Transfer.id.not_in(resolved))
        .order_by(Transfer.timeout_at)
        .limit(limit)
    )
    return list(rows)
