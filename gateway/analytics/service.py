"""The analytics series, read from the usage rollups (`billing.usage`; docs/analytics.md).

Each function is called by one route after `query.parse`, and returns a `Series`: columns and
rows. Every read is one `GROUP BY` over `usage_rollups` bound by `ix_usage_rollups_tenant_day`
(one tenant's days; the operator's series read every tenant's days of the period), then summed
into periods here: a week or a month is the sum of its days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.pricing import USD_MICROS_PER_MILLICREDIT
from billing.usage import latency
from billing.usage.models import UsageRollup
from gateway.analytics.query import Query, period_of, periods
from gateway.analytics.schemas import Column, ColumnType, Series
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from tenants.kernel.errors import PermissionDenied
from tenants.models import Customer

R = UsageRollup
#: Session roles that read their tenant's analytics.
STAFF_ROLES = frozenset({"owner", "admin", "billing", "viewer"})
#: Key scopes that read their tenant's analytics.
KEY_SCOPES = frozenset({"tenant_admin", "billing"})

#: What each series may be grouped by (the tenant's series).
GROUPS: dict[str, tuple[str, ...]] = {
    "credits": ("type", "provider", "customer", "team", "key"),
    "success": ("type", "provider"),
    "types": (),
    "costs": (),
    "latency": (),
    "margin": ("type", "provider", "customer"),
    "me/credits": ("type", "member"),
    "platform": (),
    "tenants": (),
    "providers": (),
}
_DIMENSION: dict[str, Any] = {"type": R.type, "provider": R.provider, "customer": R.customer_id,
                              "team": R.team_id, "key": R.api_key_id, "member": R.customer_id,
                              "tenant": R.tenant_id}
_SUMMED = ("count", "succeeded", "failed", "canceled", "cached", "charged_mc",
           "wholesale_mc", "cost_usd_micros", "attempts", "failovers")

Sums = dict[str, int]


def tenant_reader(principal: Principal) -> str:
    """The tenant whose analytics `principal` may read: a staff session of role owner, admin,
    billing or viewer, or a key with `tenant_admin` or `billing` not acting for a customer;
    else 403 `analytics_forbidden`."""
    if principal.customer_id is None:
        if principal.kind == "user" and principal.role in STAFF_ROLES:
            return principal.tenant
        if principal.kind == "key" and principal.scopes & KEY_SCOPES:
            return principal.tenant
    raise PermissionDenied("tenant analytics need a staff session (owner, admin, billing, "
                           "viewer) or a tenant-wide key with tenant_admin or billing",
                           code="analytics_forbidden")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _columns(spec: Sequence[tuple[str, ColumnType]]) -> list[Column]:
    return [Column(name=name, type=kind) for name, kind in spec]


async def _sums(session: AsyncSession, where: Sequence[ColumnElement[bool]], query: Query,
                group: str | None, *, by_period: bool = True) -> dict[tuple[Any, Any], Sums]:
    """The rollups' sums per (period or None, group value or None)."""
    dim = _DIMENSION[group].label("grp") if group else None
    keys: list[Any] = [R.day] if by_period else []
    if dim is not None:
        keys.append(dim)
    stmt = (select(*keys, *(func.sum(getattr(R, name)).label(name) for name in _SUMMED))
            .where(*where, R.day >= query.start, R.day < query.end))
    if keys:
        stmt = stmt.group_by(*keys)
    out: dict[tuple[Any, Any], Sums] = {}
    for row in (await session.execute(stmt)).all():
        m = row._mapping
        if m["count"] is None:
            continue  # no rows at all: SUM over nothing
        period = period_of(m["day"], query.interval) if by_period else None
        sums = out.setdefault((period, m["grp"] if dim is not None else None),
                              dict.fromkeys(_SUMMED, 0))
        for name in _SUMMED:
            sums[name] += int(m[name] or 0)
    return out


def _per_period(sums: dict[tuple[Any, Any], Sums], query: Query,
                group: str | None) -> list[tuple[date, Any, Sums]]:
    """Rows in period then group order; without a group every period has a row (zeros)."""
    if group is None:
        return [(p, None, sums.get((p, None), dict.fromkeys(_SUMMED, 0)))
                for p in periods(query)]
    return [(p, g, s) for (p, g), s in sorted(
        sums.items(), key=lambda item: (item[0][0], "" if item[0][1] is None else item[0][1]))]


async def _external_ids(session: AsyncSession, tenant_id: str | None,
                        ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    stmt = select(Customer.id, Customer.external_id).where(Customer.id.in_(sorted(ids)))
    if tenant_id is not None:
        stmt = stmt.where(Customer.tenant_id == tenant_id)
    return {str(cid): str(ext) for cid, ext in (await session.execute(stmt)).all()}


def _envelope(name: str, query: Query, time_zone: str | None, columns: list[Column],
              data: list[dict[str, Any]], *, interval: bool = True) -> Series:
    return Series(series=name, interval=query.interval if interval else None,
                  time_zone=time_zone, from_=query.start.isoformat(), to=query.end.isoformat(),
                  group_by=query.group_by, columns=columns, data=data)


async def tenant_series(runtime: Runtime, name: str, tenant_id: str, query: Query) -> Series:
    """A tenant's series `name` (credits, success, types, costs, latency, margin) over the
    query's period, in the tenant's time zone. Called by `GET /v1/analytics/{series}`."""
    tenant = await runtime.tenant_views.tenant(tenant_id)
    tz = tenant.time_zone
    where = [R.tenant_id == tenant_id]
    group = query.group_by
    async with runtime.db.session() as session:
        if name == "latency":
            return _envelope(name, query, tz, *await _latency(session, where, query),
                             interval=False)
        whole = name in ("types", "costs")
        fixed = {"types": "type", "costs": "provider"}.get(name, group)
        sums = await _sums(session, where, query, fixed, by_period=not whole)
        names: dict[str, str] = {}
        if fixed == "customer":
            names = await _external_ids(session, tenant_id,
                                        {g for _, g in sums if g is not None})
    head: list[tuple[str, ColumnType]] = [] if whole else [("period", "date")]
    if fixed is not None:
        head.append(("group", "string"))
    rows = (sorted(((None, g, s) for (_, g), s in sums.items()),
                   key=lambda r: (-r[2]["count"], str(r[1])))
            if whole else _per_period(sums, query, fixed))
    total = sum(s["count"] for _, _, s in rows)
    spec, build = _TENANT_SERIES[name]
    data = []
    for period, grp, s in rows:
        row: dict[str, Any] = {} if period is None else {"period": period.isoformat()}
        if fixed is not None:
            row["group"] = names.get(grp, grp)
        row.update(build(s, total))
        data.append(row)
    return _envelope(name, query, tz, _columns(head + spec), data, interval=not whole)


_TENANT_SERIES: dict[str, tuple[list[tuple[str, ColumnType]], Any]] = {
    "credits": ([("count", "integer"), ("charged_mc", "millicredits"),
                 ("wholesale_mc", "millicredits")],
                lambda s, _: {"count": s["count"], "charged_mc": s["charged_mc"],
                              "wholesale_mc": s["wholesale_mc"]}),
    "success": ([("count", "integer"), ("succeeded", "integer"), ("failed", "integer"),
                 ("canceled", "integer"), ("success_rate", "ratio")],
                lambda s, _: {"count": s["count"], "succeeded": s["succeeded"],
                              "failed": s["failed"], "canceled": s["canceled"],
                              "success_rate": _ratio(s["succeeded"], s["count"])}),
    "types": ([("count", "integer"), ("charged_mc", "millicredits"), ("share", "ratio")],
              lambda s, total: {"count": s["count"], "charged_mc": s["charged_mc"],
                                "share": _ratio(s["count"], total)}),
    "costs": ([("count", "integer"), ("cost_usd_micros", "usd_micros"),
               ("wholesale_mc", "millicredits"), ("charged_mc", "millicredits")],
              lambda s, _: {"count": s["count"], "cost_usd_micros": s["cost_usd_micros"],
                            "wholesale_mc": s["wholesale_mc"], "charged_mc": s["charged_mc"]}),
    "margin": ([("charged_mc", "millicredits"), ("wholesale_mc", "millicredits"),
                ("margin_mc", "millicredits")],
               lambda s, _: {"charged_mc": s["charged_mc"], "wholesale_mc": s["wholesale_mc"],
                             "margin_mc": s["charged_mc"] - s["wholesale_mc"]}),
}
TENANT_SERIES = (*_TENANT_SERIES, "latency")


async def _histograms(session: AsyncSession, where: Sequence[ColumnElement[bool]],
                      query: Query, keys: Sequence[Any]) -> dict[tuple[Any, ...], list[int]]:
    stmt = (select(*keys, R.latency_buckets)
            .where(*where, R.day >= query.start, R.day < query.end, R.attempts > 0))
    merged: dict[tuple[Any, ...], list[int]] = {}
    for row in (await session.execute(stmt)).all():
        key = tuple(row[:-1])
        merged[key] = latency.merge([merged.get(key, []), row[-1] or []])
    return merged


def _percentiles(counts: list[int]) -> dict[str, int | None]:
    return {"attempts": sum(counts), "p50_ms": latency.percentile(counts, 0.50),
            "p95_ms": latency.percentile(counts, 0.95),
            "p99_ms": latency.percentile(counts, 0.99)}


async def _latency(session: AsyncSession, where: Sequence[ColumnElement[bool]],
                   query: Query) -> tuple[list[Column], list[dict[str, Any]]]:
    merged = await _histograms(session, where, query, (R.provider, R.type))
    data = [{"provider": provider, "type": media_type, **_percentiles(counts)}
            for (provider, media_type), counts in sorted(merged.items())]
    return _columns([("provider", "string"), ("type", "string"), ("attempts", "integer"),
                     ("p50_ms", "ms"), ("p95_ms", "ms"), ("p99_ms", "ms")]), data


async def customer_credits(runtime: Runtime, principal: Principal, query: Query) -> Series:
    """`GET /v1/analytics/me/credits`: the calling customer's own generations (those not spent
    from a team), or with `X-Team-Id` its team's (`group_by=member`: per member); count and
    the credits charged to its wallet (null in `self` billing mode, where the platform
    charges no customer wallet). A caller acting for no customer: 403 `customer_required`."""
    if principal.customer_id is None:
        raise PermissionDenied("this series is a customer's: use a customer key, "
                               "X-Customer-Id or a portal session", code="customer_required")
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    where = [R.tenant_id == principal.tenant]
    if principal.team_id is not None:
        where.append(R.team_id == principal.team_id)
    else:
        where += [R.customer_id == principal.customer_id, R.team_id.is_(None)]
    group = query.group_by
    async with runtime.db.session() as session:
        sums = await _sums(session, where, query, group)
        names = await _external_ids(session, principal.tenant,
                                    {g for _, g in sums if g is not None}
                                    if group == "member" else set())
    charged = tenant.billing_mode == "mediahub"
    head: list[tuple[str, ColumnType]] = [("period", "date")]
    if group is not None:
        head.append(("group", "string"))
    data = []
    for period, grp, s in _per_period(sums, query, group):
        row: dict[str, Any] = {"period": period.isoformat()}
        if group is not None:
            row["group"] = names.get(grp, grp)
        row.update(count=s["count"], charged_mc=s["charged_mc"] if charged else None)
        data.append(row)
    return _envelope("me/credits", query, tenant.time_zone,
                     _columns([*head, ("count", "integer"), ("charged_mc", "millicredits")]),
                     data)


def _platform_margin(s: Sums) -> int:
    # The platform's margin in USD micros: what tenants paid (1 mc = 10 USD micros,
    # billing/pricing.py) less what providers cost.
    return s["wholesale_mc"] * USD_MICROS_PER_MILLICREDIT - s["cost_usd_micros"]


async def operator_series(runtime: Runtime, name: str, query: Query) -> Series:
    """The operator's series `name` (platform, tenants, providers) over every tenant's
    rollups of the period's days (each tenant's days are its own local days). Called by
    `GET /admin/v1/analytics/{series}`."""
    async with runtime.db.session() as session:
        if name == "platform":
            sums = await _sums(session, [], query, None)
            data = [{"period": p.isoformat(), "count": s["count"],
                     "charged_mc": s["charged_mc"], "wholesale_mc": s["wholesale_mc"],
                     "cost_usd_micros": s["cost_usd_micros"],
                     "platform_margin_usd_micros": _platform_margin(s)}
                    for p, _, s in _per_period(sums, query, None)]
            spec: list[tuple[str, ColumnType]] = [
                ("period", "date"), ("count", "integer"), ("charged_mc", "millicredits"),
                ("wholesale_mc", "millicredits"), ("cost_usd_micros", "usd_micros"),
                ("platform_margin_usd_micros", "usd_micros")]
            return _envelope(name, query, None, _columns(spec), data)
        if name == "tenants":
            sums = await _sums(session, [], query, "tenant", by_period=False)
            data = [{"group": g, "count": s["count"], "charged_mc": s["charged_mc"],
                     "wholesale_mc": s["wholesale_mc"],
                     "cost_usd_micros": s["cost_usd_micros"],
                     "platform_margin_usd_micros": _platform_margin(s)}
                    for (_, g), s in sorted(sums.items(), key=lambda i: str(i[0][1]))]
            spec = [("group", "string"), ("count", "integer"), ("charged_mc", "millicredits"),
                    ("wholesale_mc", "millicredits"), ("cost_usd_micros", "usd_micros"),
                    ("platform_margin_usd_micros", "usd_micros")]
            return _envelope(name, query, None, _columns(spec), data, interval=False)
        sums = await _sums(session, [], query, "provider", by_period=False)
        merged = await _histograms(session, [], query, (R.provider,))
    data = []
    for provider in sorted({g for _, g in sums} | {k[0] for k in merged}):
        s = sums.get((None, provider), dict.fromkeys(_SUMMED, 0))
        data.append({"group": provider, "count": s["count"], "succeeded": s["succeeded"],
                     "success_rate": _ratio(s["succeeded"], s["count"]),
                     "failovers": s["failovers"],
                     "failover_rate": _ratio(s["failovers"], s["count"]),
                     **_percentiles(merged.get((provider,), [])),
                     "cost_usd_micros": s["cost_usd_micros"],
                     "cost_per_output_usd_micros": (s["cost_usd_micros"] // s["succeeded"]
                                                    if s["succeeded"] else None)})
    spec = [("group", "string"), ("count", "integer"), ("succeeded", "integer"),
            ("success_rate", "ratio"), ("failovers", "integer"), ("failover_rate", "ratio"),
            ("attempts", "integer"), ("p50_ms", "ms"), ("p95_ms", "ms"), ("p99_ms", "ms"),
            ("cost_usd_micros", "usd_micros"), ("cost_per_output_usd_micros", "usd_micros")]
    return _envelope(name, query, None, _columns(spec), data, interval=False)


OPERATOR_SERIES = ("platform", "tenants", "providers")


def filename(series: Series) -> str:
    """The CSV attachment's name: `<series>-<from>-<to>.csv` (`/` in a name becomes `-`)."""
    return f"{series.series.replace('/', '-')}-{series.from_}-{series.to}.csv"

