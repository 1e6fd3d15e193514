"""`GET /v1/usage`: counts and credits of a caller's generations, grouped (issue #16).

Sums the `generations` rows of one tenant created in `[from, to)` with one SQL `GROUP BY`:
the scan is bound by the index `ix_generations_tenant_created` (tenant_id, created_at), so
it reads the tenant's rows of the period and nothing else (docs/usage.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import msgspec
from sqlalchemy import case, func, select

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.generations.models import FAILED, SUCCEEDED, Generation
from gateway.providers.states import provider_label
from tenants.kernel.dialect import utc_day
from tenants.kernel.errors import InvalidRequest, PermissionDenied
from tenants.schemas import shows_provider_names

#: What `group_by` may name, and the column each groups by.
DIMENSIONS = ("key", "day", "type", "provider", "customer", "status")
#: The longest period one request may sum: a year, leap day included.
MAX_SPAN = timedelta(days=366)
#: Session roles that see their whole tenant's usage (the others: refused).
TENANT_ROLES = frozenset({"owner", "admin", "billing"})


class UsageRow(msgspec.Struct):
    """One group: the dimensions asked for (the others are absent), then the sums."""

    key_id: str | msgspec.UnsetType | None = msgspec.UNSET
    day: str | msgspec.UnsetType = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    provider: str | msgspec.UnsetType = msgspec.UNSET
    customer_id: str | msgspec.UnsetType | None = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET
    count: int = 0
    succeeded: int = 0
    failed: int = 0
    #: Millicredits charged: succeeded generations, cached answers included.
    charged_mc: int = 0
    unit: Literal["millicredit"] = "millicredit"


class UsageList(msgspec.Struct, rename={"from_": "from"}):
    """The groups, sorted by their dimensions, and the period summed (`to` exclusive)."""

    data: list[UsageRow]
    from_: datetime
    to: datetime
    group_by: list[str]
    #: Whose generations: `tenant`, `key` (the calling key's own) or `customer`.
    scope: Literal["tenant", "key", "customer"]
    object: Literal["list"] = "list"


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """A parsed, valid request."""

    group_by: tuple[str, ...]
    start: datetime
    end: datetime


def parse_moment(raw: str, param: str) -> datetime:
    """An ISO 8601 date (midnight) or date-time as UTC (UTC when it carries no offset); 422
    `invalid_date` naming `param` otherwise. Used by every report's `from`/`to`/`as_of`."""
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: an offset past the calendar's ends
        raise InvalidRequest(f"{param} must be an ISO 8601 date or date-time",
                             code="invalid_date", param=param) from None


def parse(group_by: str | None, start: str | None, end: str | None, *,
          now: datetime) -> UsageQuery:
    """The request's query, checked (called by the route before `usage`): 422
    `invalid_group_by`, `invalid_date`, `invalid_range` (empty, reversed or over 366 days).
    `to` defaults to the end of the calendar month (UTC) that contains `now`, `from` to the
    start of the month that `to` ends."""
    dims: list[str] = []
    for part in (group_by or "").split(","):
        name = part.strip()
        if not name:
            continue
        if name not in DIMENSIONS:
            raise InvalidRequest(f"group_by {name!r} is not one of {', '.join(DIMENSIONS)}",
                                 code="invalid_group_by", param="group_by")
        if name not in dims:
            dims.append(name)
    last = parse_moment(end, "to") if end else _next_month(_month_of(now))
    try:
        first = parse_moment(start, "from") if start else _month_of(
            last - timedelta(microseconds=1))
    except OverflowError:  # `to` at the very start of the calendar
        raise InvalidRequest("to must be after from", code="invalid_range",
                             param="to") from None
    if last <= first:
        raise InvalidRequest("to must be after from", code="invalid_range", param="to")
    if last - first > MAX_SPAN:
        raise InvalidRequest("a period is at most 366 days", code="invalid_range", param="to")
    return UsageQuery(group_by=tuple(dims), start=first, end=last)


def _month_of(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + 1, month=1) if month.month == 12 else (
        month.replace(month=month.month + 1))


def scope_of(principal: Principal) -> Literal["tenant", "key", "customer"]:
    """Whose generations `principal` is shown: its customer's (a customer key, a key acting
    with `X-Customer-Id`, a portal customer); the tenant's (a tenant-wide key with `billing`
    or `tenant_admin`, an owner/admin/billing session); else the calling key's own. A
    session of another role (developer, viewer) is refused: its generations carry no key."""
    if principal.customer_id is not None:
        return "customer"
    if principal.kind == "user":
        if principal.role in TENANT_ROLES:
            return "tenant"
        raise PermissionDenied("usage needs an owner, admin or billing role",
                               code="usage_forbidden")
    if principal.scopes & {"billing", "tenant_admin"}:
        return "tenant"
    if "read" not in principal.scopes:
        raise PermissionDenied("usage needs a key with read or billing", code="missing_scope")
    return "key"


async def usage(runtime: Runtime, principal: Principal, query: UsageQuery) -> UsageList:
    """Called by `GET /v1/usage`: the caller's generations created in the period, grouped
    by `query.group_by` (none: one total row, or no row when there were none).

    A customer is charged (and shown) the retail price: its sums are the retail prices its
    generation views show; provider names are the neutral ones a white-label tenant's
    customers see elsewhere (`provider_label`).
    """
    scope = scope_of(principal)
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    g = Generation
    customer = scope == "customer"
    charged: Any = g.charged_mc
    if customer:
        # The tenant paid wholesale and bills its customer itself: the customer sees retail.
        charged = case((g.customer_reservation_id.is_(None), g.retail_mc), else_=g.charged_mc)
    async with runtime.db.session() as session:
        columns = {"key": g.api_key_id, "day": utc_day(session, g.created_at), "type": g.type,
                   "provider": g.provider, "customer": g.customer_id, "status": g.status}
        keys = [columns[d].label(d) for d in query.group_by]
        stmt = (select(*keys, func.count().label("count"),
                       func.sum(case((g.status == SUCCEEDED, 1), else_=0)).label("succeeded"),
                       func.sum(case((g.status == FAILED, 1), else_=0)).label("failed"),
                       func.coalesce(func.sum(case(
                           (g.status == SUCCEEDED, func.coalesce(charged, 0)), else_=0)),
                           0).label("charged_mc"))
                .where(g.tenant_id == principal.tenant, g.created_at >= query.start,
                       g.created_at < query.end))
        if scope == "customer":
            stmt = stmt.where(g.customer_id == principal.customer_id)
        elif scope == "key":
            stmt = stmt.where(g.api_key_id == principal.key_id)
        if keys:
            stmt = stmt.group_by(*keys).order_by(*keys)
        rows = (await session.execute(stmt)).all()
    neutral = customer and not shows_provider_names(tenant.branding)
    data = []
    for row in rows:
        m = row._mapping
        if not m["count"]:
            continue
        fields: dict[str, Any] = {}
        for dim in query.group_by:
            value = m[dim]
            if dim == "provider" and neutral:
                value = provider_label(runtime, tenant, value, customer=True)
            fields[{"key": "key_id", "customer": "customer_id"}.get(dim, dim)] = value
        data.append(UsageRow(**fields, count=int(m["count"]), succeeded=int(m["succeeded"]),
                             failed=int(m["failed"]), charged_mc=int(m["charged_mc"])))
    return UsageList(data=data, from_=query.start, to=query.end,
                     group_by=list(query.group_by), scope=scope)
