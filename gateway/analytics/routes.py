"""`/v1/analytics/...`: the tenant's series and a customer's own (docs/analytics.md). Thin:
parse the common query, call one series, render JSON or CSV."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import Controller, get
from litestar.params import FromPath, HeaderParameter, Parameter, QueryParameter

from gateway.analytics import service
from gateway.analytics.csv import csv_response
from gateway.analytics.query import Query, parse
from gateway.analytics.schemas import Series
from gateway.core.auth import Principal, requires, with_team
from gateway.core.deps import RuntimeDep
from gateway.core.runtime import Runtime
from tenants.kernel.db import utcnow
from tenants.kernel.errors import NotFound

Text = Annotated[str | None, Parameter(max_length=40, required=False)]
From = Annotated[str | None, QueryParameter(name="from", max_length=40, required=False)]
Format = Annotated[str | None, QueryParameter(name="format", max_length=10, required=False)]
Accept = Annotated[str | None, HeaderParameter(name="Accept", required=False)]


def render(series: Series, query: Query) -> Series:
    """The series as JSON, or as a CSV attachment when the query asks for it. The CSV is a
    `Response`, which Litestar sends as it is: typed as the series so that the OpenAPI
    schema documents the JSON form (the routes' descriptions name the CSV one)."""
    if not query.csv:
        return series
    return cast(Series, csv_response([c.name for c in series.columns], series.data,
                                     service.filename(series)))


async def _query(runtime: Runtime, tenant_id: str, name: str, *, start: str | None,
                 end: str | None, interval: str | None, group_by: str | None,
                 fmt: str | None, accept: str | None) -> Query:
    tenant = await runtime.tenant_views.tenant(tenant_id)
    return parse(start=start, end=end, interval=interval, group_by=group_by, fmt=fmt,
                 accept=accept, groups=service.GROUPS[name], time_zone=tenant.time_zone,
                 now=utcnow())


class AnalyticsController(Controller):
    path = "/v1/analytics"
    tags = ["analytics"]
    guards = [requires()]

    @get("/me/credits", summary="A customer's credits over time, by type or team member")
    async def me_credits(self, principal: Principal, runtime: RuntimeDep,
                         from_: From = None, to: Text = None, interval: Text = None,
                         group_by: Text = None, fmt: Format = None, accept: Accept = None,
                         team_id: Annotated[str | None, QueryParameter(
                             max_length=40, required=False)] = None) -> Series:
        """Columns `period`, `group` (with `group_by`), `count`, `charged_mc` of the calling
        customer's own generations (a customer key, `X-Customer-Id` on a tenant-wide key,
        or a portal session; else 403 `customer_required`), or with `X-Team-Id` (or
        `team_id`) of its team's (`group_by=member`: per member; a team the customer is no
        member of: 404 `team_not_found`). `group_by`: `type` or `member`. `charged_mc` is
        null when the tenant bills its customers itself. Common query as the tenant's
        series; `format=csv` for CSV."""
        principal = await with_team(runtime, principal, team_id)
        query = await _query(runtime, principal.tenant, "me/credits", start=from_, end=to,
                             interval=interval, group_by=group_by, fmt=fmt, accept=accept)
        return render(await service.customer_credits(runtime, principal, query), query)

    @get("/{series:str}", summary="A tenant analytics series (credits, success, types, ...)")
    async def read(self, principal: Principal, runtime: RuntimeDep, series: FromPath[str],
                   from_: From = None, to: Text = None, interval: Text = None,
                   group_by: Text = None, fmt: Format = None,
                   accept: Accept = None) -> Series:
        """One of the tenant's series from the usage rollups (docs/analytics.md):
        `credits` (per period: count, charged_mc, wholesale_mc; group_by type, provider,
        customer, team or key), `success` (count, succeeded, failed, canceled,
        success_rate; group_by type or provider), `types` (per type over the period: count,
        charged_mc, share), `costs` (per provider: count, cost_usd_micros, wholesale_mc,
        charged_mc), `latency` (per provider and type: attempts, p50_ms, p95_ms, p99_ms),
        `margin` (per period: charged_mc, wholesale_mc, margin_mc; group_by type, provider
        or customer). An unknown series: 404 `series_not_found`.

        Query: `from`, `to` (local dates in the tenant's `time_zone`, `to` exclusive;
        default the 30 days to today included; at most 366 days, else 422
        `period_too_long`), `interval` (`day`, `week` from Monday, `month`), `group_by` (one
        dimension the series allows, else 422 `invalid_group_by`), `format` (`json`, `csv`;
        or `Accept: text/csv`). Who: a staff session (owner, admin, billing, viewer) or a
        tenant-wide key with `tenant_admin` or `billing`; else 403 `analytics_forbidden`."""
        tenant_id = service.tenant_reader(principal)
        if series not in service.TENANT_SERIES:
            raise NotFound(f"no analytics series {series!r}", code="series_not_found",
                           param="series")
        query = await _query(runtime, tenant_id, series, start=from_, end=to,
                             interval=interval, group_by=group_by, fmt=fmt, accept=accept)
        return render(await service.tenant_series(runtime, series, tenant_id, query), query)
