"""Customer segments of one tenant as of a moment, with the spend and margin of each: the
"margin per customer segment" of the console (docs/analytics-segments.md has the rules).

Everything is read from the tenant's `generations` in one grouped statement per question,
bound by `ix_generations_tenant_customer_created` (tenant, customer, time): per customer its
first and last generation before the moment, whether it generated in the window before the
active one, and what its succeeded generations cost over the active window (retail, the
price the tenant sells at; wholesale, what the tenant pays). Margin = retail - wholesale.

As of T, with the tenant's thresholds (`tenants.schemas.TenantAnalytics`), a customer with a
generation before T is exactly one of, first rule that matches:

1. `new`: its first generation is less than `new_days` before T;
2. `active`: a generation less than `active_days` before T, and one in the `active_days`
   before that;
3. `returning`: a generation less than `active_days` before T, none in the window before;
4. `at_risk`: its last generation is `active_days` to `lapsed_days` before T;
5. `lapsed`: its last generation is `lapsed_days` or more before T.

`top_spenders` overlaps them: the `top_spender_percent` % (rounded up) of the customers who
spent anything over the active window, by retail spend (ties: customer id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.pricing import div_ceil
from gateway.core.runtime import Runtime
from gateway.generations.models import SUCCEEDED, Generation
from tenants.kernel.errors import NotFound
from tenants.models import Customer
from tenants.schemas import TenantAnalytics

Segment = Literal["new", "active", "returning", "at_risk", "lapsed", "top_spenders"]
SEGMENTS: tuple[Segment, ...] = ("new", "active", "returning", "at_risk", "lapsed",
                                 "top_spenders")
COLUMNS = ("segment", "customers", "spend_mc", "wholesale_mc", "margin_mc")
CUSTOMER_COLUMNS = ("id", "external_id", "tier", "first_at", "last_at", "spend_mc")


class Thresholds(msgspec.Struct):
    """The thresholds applied, every one spelt out (the tenant's setting omits defaults)."""

    new_days: int
    active_days: int
    lapsed_days: int
    top_spender_percent: int


class SegmentRow(msgspec.Struct):
    segment: str
    customers: int
    #: Retail price of the segment's succeeded generations over the active window.
    spend_mc: int
    #: What the tenant paid the platform for them (wholesale).
    wholesale_mc: int
    margin_mc: int


class SegmentReport(msgspec.Struct):
    as_of: datetime
    thresholds: Thresholds
    data: list[SegmentRow]
    columns: list[str] = msgspec.field(default_factory=lambda: list(COLUMNS))
    unit: str = "millicredit"
    object: str = "analytics.segments"


class SegmentCustomer(msgspec.Struct):
    id: str
    external_id: str
    tier: str
    first_at: datetime
    last_at: datetime
    spend_mc: int
    object: str = "customer"


class SegmentCustomers(msgspec.Struct):
    segment: str
    as_of: datetime
    data: list[SegmentCustomer]
    #: Pass as `after` for the next page; None at the end.
    next_cursor: str | None
    object: str = "list"


@dataclass(frozen=True, slots=True)
class _Windows:
    as_of: datetime
    new_since: datetime
    active_since: datetime
    before_since: datetime
    lapsed_since: datetime


def _windows(as_of: datetime, t: TenantAnalytics) -> _Windows:
    return _Windows(as_of=as_of, new_since=as_of - timedelta(days=t.new_days),
                    active_since=as_of - timedelta(days=t.active_days),
                    before_since=as_of - timedelta(days=2 * t.active_days),
                    lapsed_since=as_of - timedelta(days=t.lapsed_days))


def check_segment(segment: str) -> Segment:
    """`segment`, checked: 404 `segment_not_found` for a name that is none."""
    for known in SEGMENTS:
        if known == segment:
            return known
    raise NotFound(f"no segment {segment!r}: one of {', '.join(SEGMENTS)}",
                   code="segment_not_found", param="segment")


def _per_customer(tenant_id: str, w: _Windows) -> Any:
    """One row per customer of the tenant with a generation before `as_of`."""
    created = Generation.created_at
    # "Less than N days before T" is strictly after T - N: a generation exactly N days old
    # has left the window (so exactly `lapsed_days` of silence is lapsed).
    in_active = and_(created > w.active_since, Generation.status == SUCCEEDED)
    return (
        select(Generation.customer_id.label("customer_id"),
               func.min(created).label("first_at"),
               func.max(created).label("last_at"),
               func.max(case((and_(created > w.before_since, created <= w.active_since), 1),
                             else_=0)).label("before"),
               func.coalesce(func.sum(case((in_active, Generation.retail_mc), else_=0)),
                             0).label("spend_mc"),
               func.coalesce(func.sum(case((in_active, Generation.wholesale_mc), else_=0)),
                             0).label("wholesale_mc"))
        .where(Generation.tenant_id == tenant_id, Generation.customer_id.is_not(None),
               created < w.as_of)
        .group_by(Generation.customer_id)
        .subquery("per_customer"))


def _segment_of(agg: Any, w: _Windows) -> Any:
    """The partition's segment of each `_per_customer` row, as SQL (the module's rules)."""
    recent = agg.c.last_at > w.active_since
    return case((agg.c.first_at > w.new_since, literal("new")),
                (and_(recent, agg.c.before == 1), literal("active")),
                (recent, literal("returning")),
                (agg.c.last_at > w.lapsed_since, literal("at_risk")),
                else_=literal("lapsed"))


async def _top_spenders(session: AsyncSession, agg: Any, percent: int) -> Select[Any]:
    """The top spenders' rows of `agg`, as a statement (the share is counted first)."""
    spenders = await session.scalar(select(func.count()).select_from(agg)
                                    .where(agg.c.spend_mc > 0)) or 0
    return (select(agg).where(agg.c.spend_mc > 0)
            .order_by(agg.c.spend_mc.desc(), agg.c.customer_id)
            .limit(div_ceil(spenders * percent, 100)))


def _thresholds(t: TenantAnalytics) -> Thresholds:
    return Thresholds(new_days=t.new_days, active_days=t.active_days,
                      lapsed_days=t.lapsed_days, top_spender_percent=t.top_spender_percent)


async def report(runtime: Runtime, tenant_id: str, as_of: datetime) -> SegmentReport:
    """Every segment's customers, spend, wholesale and margin as of `as_of`, in the order of
    `SEGMENTS` (empty ones with zeros); called by `GET /v1/analytics/segments`."""
    settings = (await runtime.tenant_views.tenant(tenant_id)).analytics
    w = _windows(as_of, settings)
    agg = _per_customer(tenant_id, w)
    segment = _segment_of(agg, w).label("segment")
    async with runtime.db.session() as session:
        grouped = (await session.execute(
            select(segment, func.count(), func.sum(agg.c.spend_mc), func.sum(agg.c.wholesale_mc))
            .group_by(segment))).all()
        top = (await _top_spenders(session, agg, settings.top_spender_percent)).subquery()
        top_row = (await session.execute(
            select(func.count(), func.sum(top.c.spend_mc), func.sum(top.c.wholesale_mc)))).one()
    totals = {name: (int(n), int(spend or 0), int(wholesale or 0))
              for name, n, spend, wholesale in grouped}
    totals["top_spenders"] = (int(top_row[0]), int(top_row[1] or 0), int(top_row[2] or 0))
    rows = []
    for name in SEGMENTS:
        n, spend, wholesale = totals.get(name, (0, 0, 0))
        rows.append(SegmentRow(segment=name, customers=n, spend_mc=spend,
                               wholesale_mc=wholesale, margin_mc=spend - wholesale))
    return SegmentReport(as_of=as_of, thresholds=_thresholds(settings), data=rows)


async def customers(runtime: Runtime, tenant_id: str, segment: Segment, as_of: datetime, *,
                    limit: int, after: str | None) -> SegmentCustomers:
    """A page of the customers in `segment` as of `as_of`, by customer id, after the id
    `after`; called by `GET /v1/analytics/segments/{segment}/customers`."""
    settings = (await runtime.tenant_views.tenant(tenant_id)).analytics
    w = _windows(as_of, settings)
    agg = _per_customer(tenant_id, w)
    async with runtime.db.session() as session:
        if segment == "top_spenders":
            members = (await _top_spenders(session, agg, settings.top_spender_percent)
                       ).subquery()
        else:
            members = select(agg).where(_segment_of(agg, w) == segment).subquery()
        query = (select(Customer.id, Customer.external_id, Customer.tier, members.c.first_at,
                        members.c.last_at, members.c.spend_mc)
                 .join(members, members.c.customer_id == Customer.id)
                 .where(Customer.tenant_id == tenant_id)
                 .order_by(Customer.id).limit(limit + 1))
        if after:
            query = query.where(Customer.id > after)
        rows = (await session.execute(query)).all()
    kept = rows[:limit]
    return SegmentCustomers(
        segment=segment, as_of=as_of,
        data=[SegmentCustomer(id=r[0], external_id=r[1], tier=r[2], first_at=r[3],
                              last_at=r[4], spend_mc=int(r[5])) for r in kept],
        next_cursor=kept[-1][0] if len(rows) > limit and kept else None)
