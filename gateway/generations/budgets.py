"""Monthly budgets per API key and per customer (issue #16), checked in the submit's unit of
work, so they are exact under concurrency on PostgreSQL and SQLite, as the tenant's daily
spend cap is (`quotas.py`, whose design this follows):

- a budget is `monthly_budget_mc` on the key or the customer (None: no budget), read in the
  submit's transaction, so a change of amount applies to the very next submit. Whether a
  key or customer has a budget at all comes from the caches the submit already reads (the
  key cache, the tenant views), so a submit without budgets issues no budget query: a
  budget set where there was none applies at once in the process that set it and within
  those caches' few seconds (`ttl_s`, 5) in the others;
- what a generation counts is what its caller's paying wallet reserves: retail when a
  customer's wallet pays (a customer of a tenant in `mediahub` billing mode), else wholesale
  (the tenant's wallet). That is the generation's `cost.estimated`, and on success
  `cost.charged`;
- the count is a row per (tenant, `key`|`customer`, subject id, calendar month UTC) in
  `monthly_spend`, taken by a conditional upsert (`... WHERE spent + amount <= budget`), so
  the row's lock decides races; a refusal is a 402 `budget_exceeded` naming the budget and
  what is left;
- the generation records the month each subject counted it in (`key_budget_month`,
  `customer_budget_month`), and the transaction that ends it gives back what it did not
  spend (`give_back`): all of it on failure, cancel or expiry, the reserved minus the
  charged on success. Only generations submitted under a budget are counted: a budget set
  mid-month counts from then on.

Lock order: every unit takes the tenant's daily spend row, then the key's, then the
customer's month row, then the wallets (the other order deadlocks against a group commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from sqlalchemy import ColumnElement, case, func, literal, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from billing import wallets
from gateway.generations.models import QUEUED, RUNNING, SUCCEEDED, Generation
from tenants.kernel.errors import InsufficientCredits
from tenants.models import ApiKey, Customer, MonthlySpend, Tenant

KEY = "key"
CUSTOMER = "customer"


def month_of(day: date) -> date:
    """The month `day` is in, as its first day (the `month` of `monthly_spend`)."""
    return day.replace(day=1)


def caller_amount(tenant: Tenant, generation: Generation) -> int:
    """What the generation's caller's paying wallet reserves for it: retail when a
    customer's wallet pays (`mediahub` billing mode), else wholesale."""
    if generation.customer_id is not None and tenant.billing_mode == wallets.MEDIAHUB:
        return generation.retail_mc
    return generation.wholesale_mc


async def admit(session: AsyncSession, tenant: Tenant, generation: Generation,
                day: date, *, key_budgeted: bool = True, customer_budgeted: bool = True,
                ) -> None:
    """Count the generation against its key's and its customer's monthly budgets, or
    refuse it (`InsufficientCredits`, code `budget_exceeded`, 402) when it would take one
    past its budget. Called in the submit's unit (before the wallets are touched), with
    the submit's UTC day.

    `key_budgeted` / `customer_budgeted`: whether the key / customer had a budget when the
    caller's caches last read it (`Principal.key_budgeted`,
    `TenantViews.customer_budgeted`); a subject known to have none is not read, so a
    submit without budgets issues no budget query. A budget's amount is always read here,
    in the transaction."""
    key_id = generation.api_key_id if key_budgeted else None
    customer_id = generation.customer_id if customer_budgeted else None
    if key_id is None and customer_id is None:
        return
    key_budget = (select(ApiKey.monthly_budget_mc)
                  .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant.id)
                  .scalar_subquery() if key_id is not None else null())
    customer_budget = (select(Customer.monthly_budget_mc)
                       .where(Customer.id == customer_id,
                              Customer.tenant_id == tenant.id)
                       .scalar_subquery() if customer_id is not None else null())
    budgets = (await session.execute(select(key_budget, customer_budget))).one()
    amount = caller_amount(tenant, generation)
    month = month_of(day)
    if budgets[0] is not None and key_id is not None:
        await _take(session, tenant.id, KEY, key_id, month, amount, int(budgets[0]))
        generation.key_budget_month = month
    if budgets[1] is not None and customer_id is not None:
        await _take(session, tenant.id, CUSTOMER, customer_id, month, amount,
                    int(budgets[1]))
        generation.customer_budget_month = month


async def _take(session: AsyncSession, tenant_id: str, kind: str, subject_id: str,
                month: date, amount_mc: int, budget_mc: int) -> None:
    spent: int | None = None
    if amount_mc <= budget_mc:
        insert = (pg_insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite_insert)(MonthlySpend)
        statement = insert.values(tenant_id=tenant_id, subject_kind=kind,
                                  subject_id=subject_id, month=month, spent_mc=amount_mc)
        total = MonthlySpend.spent_mc + statement.excluded.spent_mc
        spent = await session.scalar(
            statement.on_conflict_do_update(
                index_elements=[MonthlySpend.tenant_id, MonthlySpend.subject_kind,
                                MonthlySpend.subject_id, MonthlySpend.month],
                set_={"spent_mc": total}, where=total <= budget_mc)
            .returning(MonthlySpend.spent_mc))
    if spent is None:
        already = await session.scalar(select(MonthlySpend.spent_mc).where(
            *_subject(tenant_id, kind, subject_id, month))) or 0
        left = max(0, budget_mc - already)
        what = "API key" if kind == KEY else "customer"
        raise InsufficientCredits(
            f"this generation needs {amount_mc} millicredits and the {what}'s monthly "
            f"budget of {budget_mc} millicredits has {left} left this month; the budget "
            "starts again on the 1st at 00:00 UTC",
            code="budget_exceeded",
            extra={"budget": budget_mc, "remaining": left, "required": amount_mc,
                   "subject": kind, "unit": "millicredit"})


def _subject(tenant_id: str, kind: str, subject_id: str,
             month: date) -> tuple[ColumnElement[bool], ...]:
    return (MonthlySpend.tenant_id == tenant_id, MonthlySpend.subject_kind == kind,
            MonthlySpend.subject_id == subject_id, MonthlySpend.month == month)


async def give_back(session: AsyncSession, generation: Generation, *,
                    key_month: date | None, customer_month: date | None,
                    amount_mc: int) -> None:
    """Return unspent millicredits to the month rows that counted them; called in the
    transaction that ends a generation, right after the daily spend's give-back (failed,
    canceled, expired: all it counted; succeeded: the reserved minus the charged)."""
    if amount_mc <= 0:
        return
    spent = MonthlySpend.spent_mc
    for kind, subject_id, month in ((KEY, generation.api_key_id, key_month),
                                    (CUSTOMER, generation.customer_id, customer_month)):
        if month is None or subject_id is None:
            continue
        await session.execute(
            update(MonthlySpend)
            .where(*_subject(generation.tenant_id, kind, subject_id, month))
            .values(spent_mc=case((spent > amount_mc, spent - amount_mc), else_=0)))


def month_start(now: datetime) -> datetime:
    """The first instant (UTC) of `now`'s calendar month."""
    return datetime.combine(now.astimezone(UTC).date().replace(day=1), time.min, UTC)


async def month_spend(session: AsyncSession, tenant_id: str,
                      column: InstrumentedAttribute[str | None], ids: Sequence[str],
                      now: datetime) -> dict[str, int]:
    """What the generations of each of `ids` (API keys: `Generation.api_key_id`; customers:
    `Generation.customer_id`) charged (succeeded) or hold (queued, running) since the start
    of `now`'s calendar month, by id; read for the keys' and customers' listings."""
    if not ids:
        return {}
    amount = case((Generation.status == SUCCEEDED, func.coalesce(Generation.charged_mc, 0)),
                  (Generation.status.in_((QUEUED, RUNNING)), Generation.estimated_mc),
                  else_=literal(0))
    rows = await session.execute(
        select(column, func.sum(amount))
        .where(Generation.tenant_id == tenant_id, Generation.created_at >= month_start(now),
               column.in_(ids))
        .group_by(column))
    return {str(subject): int(total or 0) for subject, total in rows}
