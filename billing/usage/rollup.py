"""Writing the rollups: `rebuild` (a tenant's local days, from scratch) and `refresh` (the
periodic job: every (tenant, day) touched since the watermark, and every tenant whose time
zone changed).

What a row holds, and from where (docs/analytics.md):
- `count`, `succeeded`, `failed`, `canceled`, `cached`, `cost_usd_micros` (provider cost of
  the succeeded generations; a cache hit costs the platform nothing), `failovers` (generations
  that called more than one provider): the generations CREATED on that local day;
- `attempts` and the latency histogram: those generations' provider calls (`attempts_log`,
  skips and calls still running left out), under the provider each call went to;
- `charged_mc` (what the payer was charged: the customer's wallet in `mediahub` billing, else
  the tenant's) and `wholesale_mc` (what the tenant paid the platform): the generation's
  transfers POSTED on that local day, net of any transfer of the generation paying back.

A recompute of a tenant's days deletes its rows of those days and inserts them again in one
transaction, after locking the tenant's `usage_zones` row: recomputing twice, or in two
processes at once, leaves the same rows.

Reads are bound by indexes: generations by `ix_generations_tenant_created` (tenant_id,
created_at), transfers by `ix_transfers_tenant_generation_created` (tenant_id, created_at)
WHERE generation_id IS NOT NULL, the touched generations by `ix_generations_status_updated`
(status, updated_at), rollups by `ix_usage_rollups_tenant_day`.

The generations table belongs to the gateway, above this package: it is read here through a
lightweight table of the columns used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    String,
    column,
    delete,
    func,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.accounts import PLATFORM_REVENUE, TENANT_REVENUE, account_id
from billing.ledger.dialect import insert_ignoring_conflicts
from billing.models import POST_PENDING, SINGLE, Transfer
from billing.usage import latency
from billing.usage.models import UsageRollup, UsageWatermark, UsageZone
from tenants.kernel.db import Database, JSONType, Money, UTCDateTime, utcnow
from tenants.models import Tenant

#: The refresh re-reads this much before its watermark: a transaction that committed after
#: the last refresh read, with an `updated_at` from before it, is still seen.
OVERLAP = timedelta(minutes=10)
WATERMARK = "rollups"
POSTING_SLACK = timedelta(minutes=1)
#: Every status a generation has: the touched-generations scan names them all, so it is a
#: range scan of `ix_generations_status_updated` per status.
STATUSES = ("queued", "running", "succeeded", "failed", "canceled")

_g = table(
    "generations",
    column("id", String), column("tenant_id", String), column("customer_id", String),
    column("team_id", String), column("api_key_id", String), column("type", String),
    column("provider", String), column("status", String), column("cached", Boolean),
    column("cost_usd_micros", Money), column("customer_reservation_id", String),
    column("attempts_log", JSONType), column("created_at", UTCDateTime),
    column("updated_at", UTCDateTime),
)

Key = tuple[date, str | None, str | None, str | None, str, str]


@dataclass
class _Row:
    count: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    cached: int = 0
    charged_mc: int = 0
    wholesale_mc: int = 0
    cost_usd_micros: int = 0
    attempts: int = 0
    failovers: int = 0
    latency: list[int] = field(default_factory=list)


def zone(name: str) -> ZoneInfo:
    """The `ZoneInfo` of a stored IANA name (validated when it was stored)."""
    return ZoneInfo(name)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a local day begins (a day of a DST change is 23 or 25 hours long)."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as half-open runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


async def _lock_zone(session: AsyncSession, tenant_id: str) -> tuple[str, str | None]:
    """Lock the tenant's `usage_zones` row (creating it); returns the tenant's time zone and
    the one its rollups were built in (None: never built)."""
    tz_name = await session.scalar(select(Tenant.time_zone).where(Tenant.id == tenant_id))
    if tz_name is None:
        raise LookupError(f"no tenant {tenant_id}")
    await session.execute(insert_ignoring_conflicts(session, UsageZone.__table__)
                          .values(tenant_id=tenant_id, time_zone="")
                          .on_conflict_do_nothing())
    built = await session.scalar(select(UsageZone.time_zone)
                                 .where(UsageZone.tenant_id == tenant_id).with_for_update())
    return tz_name, built or None


async def _all_days(session: AsyncSession, tenant_id: str, tz: ZoneInfo) -> list[date]:
    first = await session.scalar(select(func.min(_g.c.created_at))
                                 .where(_g.c.tenant_id == tenant_id))
    if first is None:
        return []
    start, end = local_day(first, tz), local_day(utcnow(), tz) + timedelta(days=1)
    return [start + timedelta(days=n) for n in range((end - start).days)]


async def recompute(session: AsyncSession, tenant_id: str, days: Iterable[date] | None) -> int:
    """Replace the tenant's rollups of `days` (local dates; None: all of them) in the
    caller's transaction. A tenant whose rollups were built in another time zone is rebuilt
    whole. Returns the number of rows written."""
    tz_name, built = await _lock_zone(session, tenant_id)
    tz = zone(tz_name)
    if days is None or (built is not None and built != tz_name):
        await session.execute(delete(UsageRollup).where(UsageRollup.tenant_id == tenant_id))
        wanted = await _all_days(session, tenant_id, tz)
    else:
        wanted = list(days)
    written = 0
    for start, end in _runs(wanted):
        rows = await _compute(session, tenant_id, tz, start, end)
        await session.execute(delete(UsageRollup).where(
            UsageRollup.tenant_id == tenant_id, UsageRollup.day >= start,
            UsageRollup.day < end))
        if rows:
            await session.execute(insert(UsageRollup), [_values(tenant_id, k, r)
                                                        for k, r in sorted(rows.items(),
                                                                           key=_sort_key)])
        written += len(rows)
    await session.execute(update(UsageZone).where(UsageZone.tenant_id == tenant_id)
                          .values(time_zone=tz_name))
    return written


def _sort_key(item: tuple[Key, _Row]) -> tuple[Any, ...]:
    return tuple("" if part is None else str(part) for part in item[0])


def _values(tenant_id: str, key: Key, row: _Row) -> dict[str, Any]:
    day, customer_id, team_id, api_key_id, media_type, provider = key
    return {"tenant_id": tenant_id, "day": day, "customer_id": customer_id,
            "team_id": team_id, "api_key_id": api_key_id, "type": media_type,
            "provider": provider, "count": row.count, "succeeded": row.succeeded,
            "failed": row.failed, "canceled": row.canceled, "cached": row.cached,
            "charged_mc": row.charged_mc, "wholesale_mc": row.wholesale_mc,
            "cost_usd_micros": row.cost_usd_micros, "attempts": row.attempts,
            "failovers": row.failovers, "latency_buckets": latency.trimmed(row.latency)}


async def _compute(session: AsyncSession, tenant_id: str, tz: ZoneInfo, start: date,
                   end: date) -> dict[Key, _Row]:
    """The rollups of the local days [start, end) from the generations and transfers."""
    lo, hi = day_start(start, tz), day_start(end, tz)
    rows: dict[Key, _Row] = {}

    def row(key: Key) -> _Row:
        found = rows.get(key)
        if found is None:
            found = rows[key] = _Row()
        return found

    generations = await session.execute(
        select(_g.c.customer_id, _g.c.team_id, _g.c.api_key_id, _g.c.type, _g.c.provider,
               _g.c.status, _g.c.cached, _g.c.cost_usd_micros, _g.c.attempts_log,
               _g.c.created_at)
        .where(_g.c.tenant_id == tenant_id, _g.c.created_at >= lo, _g.c.created_at < hi))
    for g in generations:
        day = local_day(g.created_at, tz)
        dims = (g.customer_id, g.team_id, g.api_key_id)
        r = row((day, *dims, g.type, g.provider))
        r.count += 1
        r.succeeded += g.status == "succeeded"
        r.failed += g.status == "failed"
        r.canceled += g.status == "canceled"
        r.cached += bool(g.cached)
        if g.status == "succeeded":
            r.cost_usd_micros += int(g.cost_usd_micros or 0)
        called = [a for a in (g.attempts_log or [])
                  if a.get("outcome") in ("succeeded", "failed")]
        if len({a["provider"] for a in called}) > 1:
            r.failovers += 1
        for attempt in called:
            a = row((day, *dims, g.type, str(attempt["provider"])))
            a.attempts += 1
            latency.add(a.latency, int(attempt.get("latency_ms") or 0))

    retail = await account_id(session, tenant_id, TENANT_REVENUE)
    wholesale = await account_id(session, tenant_id, PLATFORM_REVENUE)
    t = Transfer.__table__.c
    transfers = await session.execute(
        select(t.amount_mc, t.debit_account_id, t.credit_account_id, t.created_at,
               _g.c.customer_id, _g.c.team_id, _g.c.api_key_id, _g.c.type, _g.c.provider,
               _g.c.customer_reservation_id)
        .join(_g, _g.c.id == t.generation_id)
        .where(t.tenant_id == tenant_id, t.generation_id.is_not(None),
               t.created_at >= lo, t.created_at < hi,
               t.phase.in_((SINGLE, POST_PENDING)), _g.c.tenant_id == tenant_id))
    for tr in transfers:
        sign = 1 if tr.credit_account_id in (retail, wholesale) else -1
        revenue = tr.credit_account_id if sign == 1 else tr.debit_account_id
        if revenue not in (retail, wholesale):
            continue  # between wallets: no charge
        r = row((local_day(tr.created_at, tz), tr.customer_id, tr.team_id, tr.api_key_id,
                 tr.type, tr.provider))
        amount = sign * int(tr.amount_mc)
        if revenue == wholesale:
            r.wholesale_mc += amount
        # The payer: the customer's wallet (retail) when the generation reserved on it.
        if (revenue == retail) == (tr.customer_reservation_id is not None):
            r.charged_mc += amount
    return rows


async def rebuild(db: Database, tenant_id: str, start: date, end: date) -> int:
    """Recompute the tenant's rollups of the local days [start, end) in one transaction.

    Called by tests, the CLI (`mediahub analytics rollup`) and `refresh`. Returns the rows
    written."""
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    async with db.transaction() as session:
        return await recompute(session, tenant_id, days)


async def rebuild_tenant(db: Database, tenant_id: str) -> int:
    """Recompute all of a tenant's rollups (a changed time zone; the CLI without
    `--since`). Returns the rows written."""
    async with db.transaction() as session:
        return await recompute(session, tenant_id, None)


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh did: the tenants recomputed, and the rows written."""

    tenants: int
    rows: int


async def refresh(db: Database, *, now: datetime | None = None) -> Refreshed:
    """The periodic job: recompute every (tenant, local day) a generation touched since the
    watermark (its creation day and the day of its last change, which is when its transfers
    were posted), and rebuild tenants whose time zone changed; then move the watermark.
    Each tenant in its own transaction. Returns what it did."""
    started = now or utcnow()
    async with db.session() as session:
        mark = await session.scalar(select(UsageWatermark.at)
                                    .where(UsageWatermark.name == WATERMARK))
        since = (mark - OVERLAP) if mark is not None else datetime(1970, 1, 1, tzinfo=UTC)
        touched = (await session.execute(
            select(_g.c.tenant_id, _g.c.created_at, _g.c.updated_at)
            .where(_g.c.status.in_(STATUSES), _g.c.updated_at > since))).all()
        zones = (await session.execute(
            select(Tenant.id, Tenant.time_zone, UsageZone.time_zone)
            .join(UsageZone, UsageZone.tenant_id == Tenant.id)
            .where(UsageZone.time_zone != Tenant.time_zone))).all()
        tz_of = dict((await session.execute(select(Tenant.id, Tenant.time_zone))).all())
    moved = {tenant_id for tenant_id, _, _ in zones}
    days: dict[str, set[date]] = {}
    for tenant_id, created, changed in touched:
        if tenant_id in moved or tenant_id not in tz_of:
            continue  # rebuilt whole below; or deleted since (its rows went with it)
        tz = zone(tz_of[tenant_id])
        # A posting is stamped a moment after the row's `updated_at`, in the same
        # transaction: near midnight it may be the next day's.
        days.setdefault(tenant_id, set()).update(
            (local_day(created, tz), local_day(changed, tz),
             local_day(changed + POSTING_SLACK, tz)))
    rows = 0
    for tenant_id in sorted(moved):
        rows += await rebuild_tenant(db, tenant_id)
    for tenant_id, tenant_days in sorted(days.items()):
        async with db.transaction() as session:
            rows += await recompute(session, tenant_id, tenant_days)
    async with db.transaction() as session:
        await session.execute(insert_ignoring_conflicts(session, UsageWatermark.__table__)
                              .values(name=WATERMARK, at=started).on_conflict_do_nothing())
        await session.execute(update(UsageWatermark).where(
            UsageWatermark.name == WATERMARK, UsageWatermark.at < started).values(at=started))
    return Refreshed(tenants=len(moved | set(days)), rows=rows)


async def rebuild_since(db: Database, tenant_id: str | None, since: date | None) -> int:
    """Recompute the rollups of one tenant (None: every tenant) from the local day `since`
    (None: from its first generation) through today in its time zone, a tenant per
    transaction. Called by `mediahub analytics rollup`. Returns the rows written."""
    async with db.session() as session:
        stmt = select(Tenant.id, Tenant.time_zone).order_by(Tenant.id)
        if tenant_id is not None:
            stmt = stmt.where(Tenant.id == tenant_id)
        found = (await session.execute(stmt)).all()
    if tenant_id is not None and not found:
        raise LookupError(f"no tenant {tenant_id}")
    rows = 0
    for tid, tz_name in found:
        if since is None:
            rows += await rebuild_tenant(db, tid)
        else:
            rows += await rebuild(db, tid, since,
                                  local_day(utcnow(), zone(tz_name)) + timedelta(days=1))
    return rows
