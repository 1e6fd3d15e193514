"""The history of the platform's provider breakers (`provider_events`, written by
`ProviderStates._persist`), counted per provider and period for the operator's
`GET /admin/v1/analytics/breakers`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy import select

from gateway.core.runtime import Runtime
from gateway.providers.models import ProviderEvent
from tenants.kernel.errors import InvalidRequest

Interval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
#: The longest period one request may count.
MAX_SPAN = timedelta(days=731)
COLUMNS = ("period", "group", "openings", "closings")


class BreakerRow(msgspec.Struct):
    #: The first day of the period (UTC; a week starts on Monday), `YYYY-MM-DD`.
    period: str
    #: The provider.
    group: str
    openings: int
    closings: int


class BreakerSeries(msgspec.Struct):
    interval: str
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    data: list[BreakerRow]
    columns: list[str] = msgspec.field(default_factory=lambda: list(COLUMNS))
    object: str = "analytics.series"
    series: str = "breakers"


def period_start(moment: datetime, interval: Interval) -> date:
    """The first day of the period of `interval` that holds `moment` (UTC)."""
    day = moment.astimezone(UTC).date()
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def check_range(start: datetime, end: datetime, interval: str) -> Interval:
    """The interval, checked with the range: 422 `invalid_interval`, `invalid_range`."""
    if interval not in INTERVALS:
        raise InvalidRequest(f"interval must be one of {', '.join(INTERVALS)}",
                             code="invalid_interval", param="interval")
    if end <= start:
        raise InvalidRequest("to must be after from", code="invalid_range", param="to")
    if end - start > MAX_SPAN:
        raise InvalidRequest("a range is at most 731 days", code="invalid_range", param="to")
    return interval


async def breaker_series(runtime: Runtime, *, start: datetime, end: datetime,
                         interval: Interval) -> BreakerSeries:
    """How often each provider's breaker opened (and closed) in each period of
    `[start, end)`, oldest period first, providers by name; periods without an event are
    left out. Called by the operator's analytics route."""
    async with runtime.db.session() as session:
        rows = (await session.execute(
            select(ProviderEvent.provider, ProviderEvent.kind, ProviderEvent.at)
            .where(ProviderEvent.at >= start, ProviderEvent.at < end))).all()
    # Few rows (a breaker opens a few times a day at worst): counted here, the same on
    # both databases, instead of per-dialect date truncation.
    counts: Counter[tuple[date, str, str]] = Counter(
        (period_start(at, interval), provider, kind) for provider, kind, at in rows)
    keys = sorted({(period, provider) for period, provider, _ in counts})
    return BreakerSeries(
        interval=interval, start=start, end=end,
        data=[BreakerRow(period=period.isoformat(), group=provider,
                         openings=counts[(period, provider, "breaker_opened")],
                         closings=counts[(period, provider, "breaker_closed")])
              for period, provider in keys])
