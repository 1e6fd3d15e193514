"""`/admin/v1/analytics/...`: the operator's series over every tenant (docs/analytics.md).
Thin: parse the common query, call one series, render JSON or CSV."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from gateway.analytics import service
from gateway.analytics.query import parse
from gateway.analytics.routes import Accept, Format, From, Text, render
from gateway.analytics.schemas import Series
from gateway.core.auth import operator_only
from gateway.core.deps import RuntimeDep
from tenants.kernel.db import utcnow
from tenants.kernel.errors import NotFound


class AdminAnalyticsController(Controller):
    path = "/admin/v1/analytics"
    tags = ["operator"]
    guards = [operator_only]

    @get("/{series:str}", summary="A platform analytics series (platform, tenants, providers)")
    async def read(self, runtime: RuntimeDep, series: FromPath[str], from_: From = None,
                   to: Text = None, interval: Text = None, group_by: Text = None,
                   fmt: Format = None, accept: Accept = None) -> Series:
        """Every tenant's usage rollups, each tenant's days being its own local days
        (`time_zone` is null): `platform` (per period: count, charged_mc, wholesale_mc,
        cost_usd_micros, platform_margin_usd_micros = wholesale * 10 USD micros per
        millicredit - provider cost), `tenants` (per tenant over the period: the same
        sums), `providers` (per provider: count, succeeded, success_rate, failovers,
        failover_rate, attempts, p50_ms, p95_ms, p99_ms, cost_usd_micros,
        cost_per_output_usd_micros). An unknown series: 404 `series_not_found`.

        Query: `from`, `to` (dates, `to` exclusive; default the 30 days to today (UTC)
        included; at most 366 days, else 422 `period_too_long`), `interval` (`day`, `week`,
        `month`), `format` (`json`, `csv`; or `Accept: text/csv`); no `group_by`."""
        if series not in service.OPERATOR_SERIES:
            raise NotFound(f"no analytics series {series!r}", code="series_not_found",
                           param="series")
        query = parse(start=from_, end=to, interval=interval, group_by=group_by, fmt=fmt,
                      accept=accept, groups=service.GROUPS[series], time_zone="UTC",
                      now=utcnow())
        return render(await service.operator_series(runtime, series, query), query)
