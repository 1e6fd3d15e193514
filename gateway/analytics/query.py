"""The common query of every analytics route, checked: `from`, `to`, `interval`, `group_by`,
`format`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tenants.kernel.errors import InvalidRequest

Interval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
#: The longest period one request may read (a leap year).
MAX_DAYS = 366
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Query:
    """A valid request: local dates `[start, end)`, how to bucket, what to group by."""

    start: date
    end: date
    interval: Interval
    group_by: str | None
    csv: bool


def _date(raw: str, param: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{param} must be an ISO 8601 date (YYYY-MM-DD)",
                             code="invalid_date", param=param) from None


def parse(*, start: str | None, end: str | None, interval: str | None, group_by: str | None,
          fmt: str | None, accept: str | None, groups: tuple[str, ...], time_zone: str,
          now: datetime) -> Query:
    """Check the query (called by every analytics route before its series): 422
    `invalid_date`, `invalid_range` (`to` not after `from`), `period_too_long` (over 366
    days), `invalid_interval`, `invalid_group_by` (not one of `groups`), `invalid_format`.
    `to` defaults to tomorrow in `time_zone` (today included), `from` to 30 days before `to`;
    CSV when `format=csv`, or no `format` and `Accept: text/csv`."""
    last = _date(end, "to") if end else now.astimezone(ZoneInfo(time_zone)).date() + timedelta(
        days=1)
    try:
        first = _date(start, "from") if start else last - timedelta(days=DEFAULT_DAYS)
    except OverflowError:  # `to` within 30 days of the calendar's start
        raise InvalidRequest("to must be after from", code="invalid_range",
                             param="to") from None
    if last <= first:
        raise InvalidRequest("to must be after from", code="invalid_range", param="to")
    if (last - first).days > MAX_DAYS:
        raise InvalidRequest(f"a period is at most {MAX_DAYS} days", code="period_too_long",
                             param="to")
    chosen = interval or "day"
    if chosen not in INTERVALS:
        raise InvalidRequest("interval must be day, week or month", code="invalid_interval",
                             param="interval")
    if group_by is not None and group_by not in groups:
        allowed = ", ".join(groups) if groups else "nothing"
        raise InvalidRequest(f"group_by must be one of: {allowed}", code="invalid_group_by",
                             param="group_by")
    if fmt is not None and fmt not in ("json", "csv"):
        raise InvalidRequest("format must be json or csv", code="invalid_format",
                             param="format")
    wants_csv = fmt == "csv" or (fmt is None and (accept or "").startswith("text/csv"))
    return Query(start=first, end=last, interval=chosen, group_by=group_by, csv=wants_csv)


def period_of(day: date, interval: Interval) -> date:
    """The first day of the period `day` is in: itself, its week's Monday, its month's 1st."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def periods(query: Query) -> list[date]:
    """Every period the query's days fall in, in order."""
    out: list[date] = []
    day = query.start
    while day < query.end:
        p = period_of(day, query.interval)
        if not out or out[-1] != p:
            out.append(p)
        day += timedelta(days=1)
    return out
