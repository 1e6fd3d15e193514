"""What a caller (or the whole tenant) makes most: types, style words, parameter values, and
when, by hour of day and day of week (`GET /v1/suggestions/trends`).

Bounded: the latest `MAX_TREND_ROWS` generations of the range are read (through the
`(tenant_id, created_at, id)` index) and counted here, so the hour and weekday come from the
same zone conversion on either database.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, select

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.generations.models import Generation
from gateway.suggestions.rules import styles_in
from gateway.suggestions.schemas import Count, DayCount, ParamCount, Trends
from gateway.suggestions.service import visible
from tenants.kernel.errors import InvalidRequest, PermissionDenied
from tenants.models import Tenant

MAX_TREND_ROWS: Final = 10_000
DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366
#: The parameters whose values are counted (scalars only).
TREND_PARAMS: Final = ("size", "aspect_ratio", "resolution", "quality", "style", "voice",
                       "duration_s", "model", "speed", "output_format")
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TOP: Final = 10


def report_zone(tenant: Tenant) -> tuple[tzinfo, str]:
    """The zone trends count hours and weekdays in, and its name: the tenant's
    `time_zone` where the tenant has one (a column another change adds), else UTC. The one
    place that picks it."""
    name = getattr(tenant, "time_zone", None)
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC, "UTC"


def _scope(principal: Principal, scope: str) -> list[ColumnElement[bool]]:
    """The generations a scope counts: `tenant` the tenant's (staff and tenant keys only),
    `me` the caller's own (a customer's and its current team's, a key's own, a staff
    member's portal ones)."""
    if scope == "tenant":
        if principal.customer_id is not None:
            raise PermissionDenied("the whole tenant's trends are for its staff and tenant "
                                   "keys", code="staff_only", param="scope")
        return visible(principal)
    where = visible(principal)
    if principal.customer_id is None:
        where += [Generation.customer_id.is_(None),
                  Generation.api_key_id.is_(None) if principal.key_id is None
                  else Generation.api_key_id == principal.key_id]
    return where


def _top(counter: Counter[str]) -> list[Count]:
    return [Count(key=key, count=count)
            for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


async def trends(runtime: Runtime, principal: Principal, *, scope: str,
                 start: datetime | None, end: datetime | None) -> Trends:
    """Called for `GET /v1/suggestions/trends`: counts over `start`..`end` (default the
    last 30 days; at most 366). Raises `PermissionDenied` for `scope=tenant` from a
    customer, `InvalidRequest` for an inverted or too long range."""
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = (start or end - timedelta(days=DEFAULT_DAYS)).astimezone(UTC)
    if start >= end:
        raise InvalidRequest("from must be before to", code="invalid_range", param="from")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidRequest(f"the range may span at most {MAX_DAYS} days",
                             code="invalid_range", param="from")
    where = _scope(principal, scope)
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    zone, zone_name = report_zone(tenant)
    async with runtime.db.session() as session:
        rows = (await session.execute(
            select(Generation.type, Generation.prompt, Generation.params,
                   Generation.created_at)
            .where(*where, Generation.created_at >= start, Generation.created_at < end)
            .order_by(Generation.created_at.desc(), Generation.id.desc())
            .limit(MAX_TREND_ROWS + 1))).all()
    truncated = len(rows) > MAX_TREND_ROWS
    rows = rows[:MAX_TREND_ROWS]
    types: Counter[str] = Counter()
    styles: Counter[str] = Counter()
    params: Counter[tuple[str, str]] = Counter()
    hours = [0] * 24
    days = [0] * 7
    for media_type, prompt, values, created in rows:
        types[media_type] += 1
        styles.update(set(styles_in(prompt or "")))
        for name in TREND_PARAMS:
            value = (values or {}).get(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                params[(name, str(value))] += 1
        local = created.astimezone(zone)
        hours[local.hour] += 1
        days[local.weekday()] += 1
    return Trends(
        scope=scope, start=start, end=end, time_zone=zone_name, total=len(rows),
        truncated=truncated, types=_top(types), styles=_top(styles),
        parameters=[ParamCount(name=name, value=value, count=count)
                    for (name, value), count in sorted(
                        params.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP * 2]],
        by_hour=hours, by_weekday=[DayCount(day=d, count=c) for d, c in zip(
            WEEKDAYS, days, strict=True)])
