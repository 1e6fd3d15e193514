"""`GET /v1/analytics/segments` and `/v1/analytics/segments/{segment}/customers`: a tenant's
customer segments (gateway/analytics/segments.py). Thin: parse, call, render."""

from __future__ import annotations

from typing import Annotated, cast

import msgspec
from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery, Parameter

from gateway.analytics import segments
from gateway.analytics.csv import csv_response
from gateway.analytics.segments import SegmentCustomers, SegmentReport
from gateway.core.auth import Principal, staff_or_key
from gateway.core.deps import RuntimeDep, page_limit
from gateway.generations.usage import parse_moment
from tenants.kernel.db import utcnow

AsOf = Annotated[str | None, Parameter(max_length=40, required=False)]
Format = Annotated[str, Parameter(pattern="^(json|csv)$", required=False)]


class SegmentController(Controller):
    path = "/v1/analytics/segments"
    tags = ["analytics"]
    guards = [staff_or_key(roles=("owner", "admin", "billing", "viewer"),
                           scopes=("tenant_admin", "billing"))]

    @get("/", summary="Customer segments with their spend and margin")
    async def report(self, principal: Principal, runtime: RuntimeDep, as_of: AsOf = None,
                     format: Format = "json") -> Response[SegmentReport]:
        """As of `as_of` (ISO 8601, UTC unless it carries an offset; default now): how many
        of the tenant's customers are `new`, `active`, `returning`, `at_risk`, `lapsed` (a
        partition) and `top_spenders` (overlapping), with each segment's `spend_mc`
        (retail of its succeeded generations over the last `active_days`), `wholesale_mc`
        and `margin_mc` (retail - wholesale). The rules and the tenant's `thresholds`
        (`PATCH /v1/tenant {"analytics": …}`) are in docs/analytics-segments.md.
        `format=csv`: the rows as a CSV attachment. An owner, admin, billing or viewer
        session, or a key with `tenant_admin` or `billing`."""
        moment = parse_moment(as_of, "as_of") if as_of else utcnow()
        found = await segments.report(runtime, principal.tenant, moment)
        if format == "csv":
            rows = (msgspec.structs.asdict(r) for r in found.data)
            # The schema documents the JSON form; the CSV is the same rows.
            return cast("Response[SegmentReport]",
                        csv_response(found.columns, rows, "segments.csv"))
        return Response(found)

    @get("/{segment:str}/customers", summary="The customers in one segment")
    async def members(self, principal: Principal, runtime: RuntimeDep,
                      segment: FromPath[str], as_of: AsOf = None,
                      limit: FromQuery[int | None] = None,
                      after: Annotated[str | None, Parameter(max_length=32,
                                                             required=False)] = None,
                      ) -> SegmentCustomers:
        """The customers in `segment` as of `as_of` (default now), by customer id: each
        with its `external_id`, `tier`, first and last generation and `spend_mc` over the
        active window. `limit` 1-100 (default 20); `after`: the `next_cursor` of the page
        before. 404 `segment_not_found` for an unknown segment."""
        moment = parse_moment(as_of, "as_of") if as_of else utcnow()
        return await segments.customers(runtime, principal.tenant,
                                        segments.check_segment(segment), moment,
                                        limit=page_limit(limit), after=after)
