"""What the ledger holds: an account's balance, a tenant's counters, and the reservations
past their timeout. Reads only, the same on both databases and on every path (the paths differ
in how they write, not in what they leave).

A wallet keeps its four counters on its row; a system account keeps none (so a reservation
locks no row but the paying wallet's), and its counters are summed from its transfers here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing.ledger.accounts import customer_code
from billing.models import PENDING, POST_PENDING, SINGLE, Account, Transfer
from tenants.kernel.db import utcnow
from tenants.kernel.errors import NotFound


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


async def customer_balances(session: AsyncSession, *, tenant_id: str,
                            customer_ids: list[str]) -> dict[str, Balance]:
    """The balances of customers' wallets by customer id, in one query (a customer whose
    wallet was never opened is absent: its balance is zero). Read for the customers'
    listing; opens nothing."""
    if not customer_ids:
        return {}
    prefix = len(customer_code(""))
    rows = await session.scalars(select(Account).where(
        Account.tenant_id == tenant_id,
        Account.code.in_([customer_code(c) for c in customer_ids])))
    out: dict[str, Balance] = {}
    for held in rows:
        posted = held.credits_posted - held.debits_posted
        out[held.code[prefix:]] = Balance(available_mc=posted - held.debits_pending,
                                          pending_mc=held.debits_pending, posted_mc=posted)
    return out


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


async def payer_available(session: AsyncSession, *, tenant_id: str,
                          transfer_id: str) -> int | None:
    """The available balance, in millicredits, of the wallet a transfer (a generation's
    reservation) debited, in one query; None when there is no such transfer or it debited a
    system account. Read for a finished generation's `X-Credits-Remaining` header."""
    row = (await session.execute(
        select(Account.credits_posted - Account.debits_posted - Account.debits_pending)
        .join(Transfer, Transfer.debit_account_id == Account.id)
        .where(Transfer.id == transfer_id, Transfer.tenant_id == tenant_id,
               Account.tenant_id == tenant_id, Account.system.is_(False))
    )).first()
    return None if row is None else int(row[0])
