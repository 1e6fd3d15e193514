"""Job quotas checked when a generation is submitted: concurrent jobs per tenant and media
type, and the tenant's daily spend cap. Both are exact under concurrency, on PostgreSQL and
SQLite, because both are decided inside the submit's own unit of work
(`Database.grouped`), in the transaction that writes the generation row:

- **Concurrent jobs** are *counted*, not kept in a counter: the generations of the tenant and
  type that are `queued` or `running` (an index covers it). A count cannot leak: a
  generation that fails, is canceled, expires or succeeds stops counting the moment its
  status changes, whoever changes it. To make count-then-insert atomic, the unit first takes
  a transaction-scoped advisory lock on (tenant, type) on PostgreSQL (READ COMMITTED: the
  count, a later statement, sees every generation committed before the lock was granted);
  SQLite transactions start with `BEGIN IMMEDIATE`, so writers are serialised already. Under
  group commit the units of one batch share the transaction and see each other's rows; a
  refused unit raises, its batch rolls back and every unit reruns alone, so only the refused
  one is refused. A counter row in Valkey or the database would need a decrement on every
  path that ends a generation (and a repair when one is missed); the count needs none, and
  costs nothing for tenants without a limit.
- **Daily spend** is a counter row per tenant and UTC day (`tenant_daily_spend`), because
  summing a day's generations on every submit would grow with the tenant's volume. A
  conditional upsert takes the reservation's wholesale amount (`... WHERE spent + amount <=
  cap`), so the row's lock decides races; the generation records the day it was counted on
  (`spend_day`) and the transaction that ends it gives back what it did not spend
  (`give_back`). Only generations submitted under a cap are counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.ratelimit import TenantLimits
from gateway.generations.models import QUEUED, RUNNING, Generation
from tenants.kernel.errors import RateLimited
from tenants.models import TenantDailySpend

#: `Retry-After` of a concurrency refusal: when a slot frees cannot be known; a hint.
CONCURRENCY_RETRY_S = 5


@dataclass(frozen=True, slots=True)
class Quota:
    """What one submit must fit in; made by `quota_for`, checked by `admit` in the unit."""

    tenant_id: str
    media_type: str
    concurrent_jobs: int  # 0: no limit
    daily_spend_cap_mc: int  # 0: no cap
    day: date
    until_tomorrow_s: int


def quota_for(limits: TenantLimits, tenant_id: str, media_type: str, now_us: int) -> Quota:
    """The quota of a submit at `now_us` (the limiter's clock, so tests can move days)."""
    now = datetime.fromtimestamp(now_us / 1_000_000, UTC)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return Quota(tenant_id=tenant_id, media_type=media_type,
                 concurrent_jobs=limits.concurrency_for(media_type),
                 daily_spend_cap_mc=limits.daily_spend_cap_mc, day=now.date(),
                 until_tomorrow_s=max(1, int(-(-(tomorrow - now).total_seconds() // 1))))


async def admit(session: AsyncSession, quota: Quota, generation: Generation) -> None:
    """Refuse (`RateLimited`, 429) a generation that would exceed the tenant's concurrent
    jobs or daily spend, else count its spend. Called in the submit's unit, before the
    generation row is added."""
    if quota.concurrent_jobs > 0:
        await _check_concurrency(session, quota)
    if quota.daily_spend_cap_mc > 0:
        await _take_spend(session, quota, generation.wholesale_mc)
        generation.spend_day = quota.day


def _lock_id(*parts: str) -> int:
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _check_concurrency(session: AsyncSession, quota: Quota) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"),
                              {"id": _lock_id("jobs", quota.tenant_id, quota.media_type)})
    active = await session.scalar(
        select(func.count()).select_from(Generation)
        .where(Generation.tenant_id == quota.tenant_id, Generation.type == quota.media_type,
               Generation.status.in_((QUEUED, RUNNING))))
    if (active or 0) >= quota.concurrent_jobs:
        raise RateLimited(
            f"this tenant already has {quota.concurrent_jobs} {quota.media_type} generations "
            "queued or running, its limit; submit again when one finishes",
            code="concurrency_limit", retry_after_s=CONCURRENCY_RETRY_S,
            extra={"limit": quota.concurrent_jobs})


async def _take_spend(session: AsyncSession, quota: Quota, amount_mc: int) -> None:
    cap = quota.daily_spend_cap_mc
    spent: int | None = None
    if amount_mc <= cap:
        insert = (pg_insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite_insert)(TenantDailySpend)
        statement = insert.values(tenant_id=quota.tenant_id, day=quota.day, spent_mc=amount_mc)
        total = TenantDailySpend.spent_mc + statement.excluded.spent_mc
        spent = await session.scalar(
            statement.on_conflict_do_update(
                index_elements=[TenantDailySpend.tenant_id, TenantDailySpend.day],
                set_={"spent_mc": total}, where=total <= cap)
            .returning(TenantDailySpend.spent_mc))
    if spent is None:
        raise RateLimited(
            f"this would take the tenant past its daily spend cap of {cap} millicredits; "
            "the cap resets at 00:00 UTC",
            code="daily_spend_cap", retry_after_s=quota.until_tomorrow_s,
            extra={"cap": cap, "required": amount_mc, "unit": "millicredit"})


async def give_back(session: AsyncSession, tenant_id: str, day: date | None,
                    amount_mc: int) -> None:
    """Return unspent millicredits to the day that counted them; called in the transaction
    that ends a generation (failed, canceled, expired: all of it; succeeded: the reserved
    minus the charged). A generation counted on no day (no cap) gives nothing back."""
    if day is None or amount_mc <= 0:
        return
    spent = TenantDailySpend.spent_mc
    await session.execute(
        update(TenantDailySpend)
        .where(TenantDailySpend.tenant_id == tenant_id, TenantDailySpend.day == day)
        .values(spent_mc=case((spent > amount_mc, spent - amount_mc), else_=0)))
