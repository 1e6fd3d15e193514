"""`GET /admin/v1/analytics/breakers`: the operator's history of provider breakers. Thin:
gateway/providers/events.py counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, cast

import msgspec
from litestar import Response, get
from litestar.params import Parameter, QueryParameter

from gateway.analytics.csv import csv_response
from gateway.core.auth import operator_only
from gateway.core.deps import RuntimeDep
from gateway.generations.usage import parse_moment
from gateway.providers import events
from gateway.providers.events import BreakerSeries
from tenants.kernel.db import utcnow

Moment = Annotated[str | None, Parameter(max_length=40, required=False)]
Format = Annotated[str, Parameter(pattern="^(json|csv)$", required=False)]


@get("/admin/v1/analytics/breakers", tags=["operator"], guards=[operator_only],
     summary="How often each provider's breaker opened, per period")
async def breaker_history(runtime: RuntimeDep,
                          from_: Annotated[str | None, QueryParameter(
                              name="from", max_length=40, required=False)] = None,
                          to: Moment = None,
                          interval: Annotated[str, Parameter(max_length=10,
                                                             required=False)] = "day",
                          format: Format = "json") -> Response[BreakerSeries]:
    """`{"object": "analytics.series", "series": "breakers", "columns", "data": [{"period",
    "group", "openings", "closings"}]}`: for each provider (`group`) and each period
    (`interval` `day`, `week` from Monday or `month`, UTC; `period` its first day) with an
    event, how many times the platform key's breaker opened and closed. `from`/`to`: ISO
    8601 dates or date-times, UTC unless they carry an offset, `to` exclusive; default the
    30 days up to now; at most 731 days (422 `invalid_range`). `format=csv` answers the
    same rows as a CSV attachment. Each transition is counted once however many gateway
    processes saw it."""
    end = parse_moment(to, "to") if to else utcnow()
    start = parse_moment(from_, "from") if from_ else end - timedelta(days=30)
    series = await events.breaker_series(runtime, start=start, end=end,
                                         interval=events.check_range(start, end, interval))
    if format == "csv":
        rows = (msgspec.structs.asdict(r) for r in series.data)
        # The schema documents the JSON form; the CSV is the same rows.
        return cast("Response[BreakerSeries]",
                    csv_response(series.columns, rows, "breakers.csv"))
    return Response(series)
