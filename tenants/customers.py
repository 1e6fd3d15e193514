"""A tenant's customers as its owners manage them: search, read, create, change tier and
budget. Every function takes the tenant id and filters by it: another tenant's customer is
`NotFound`. (`tenants.service.customer_for` finds or creates one by the tenant's own id, as
requests acting for a customer do.)"""

from __future__ import annotations

from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.kernel.db import new_id
from tenants.kernel.errors import Conflict, NotFound
from tenants.kernel.pagination import keyset, page
from tenants.models import Customer
from tenants.schemas import Millicredits, Tier

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
#: The highest code point: `q` + it bounds every string that starts with `q` (binary order).
_LAST = "\U0010ffff"


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    #: The tenant's own id for the customer (what `X-Customer-Id` sends).
    external_id: ExternalId
    tier: Tier = "standard"
    monthly_budget_mc: Millicredits | None = None


class CustomerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """`tier` prices the customer's next generation with the tenant's
    `pricing.tier_markup_bps[tier]`; `monthly_budget_mc: null` removes the budget."""

    tier: Tier | msgspec.UnsetType = msgspec.UNSET
    monthly_budget_mc: Millicredits | msgspec.UnsetType | None = msgspec.UNSET


async def get_customer(session: AsyncSession, tenant_id: str, ref: str) -> Customer:
    """A tenant's customer by our id (`cus_…`) or, failing that, by the tenant's own id for
    it; `NotFound` for an unknown or another tenant's customer."""
    found = await session.scalar(
        select(Customer).where(Customer.tenant_id == tenant_id, Customer.id == ref))
    if found is None:
        found = await session.scalar(
            select(Customer).where(Customer.tenant_id == tenant_id,
                                   Customer.external_id == ref))
    if found is None:
        raise NotFound("no such customer", code="customer_not_found")
    return found


async def search(session: AsyncSession, tenant_id: str, *, q: str | None, tier: str | None,
                 limit: int, cursor: str | None) -> tuple[list[Customer], str | None]:
    """A page of a tenant's customers, newest first: those whose own id starts with `q`
    (case-insensitive; bound by `ix_customers_tenant_search`) and of `tier`, if given."""
    query = select(Customer).where(Customer.tenant_id == tenant_id)
    if q:
        prefix = q.lower()
        query = query.where(Customer.search_key.startswith(prefix, autoescape=True))
        if session.get_bind().dialect.name != "postgresql":
            # SQLite bounds the index by a range (its LIKE is not index-bound here).
            query = query.where(Customer.search_key >= prefix,
                                Customer.search_key < prefix + _LAST)
    if tier:
        query = query.where(Customer.tier == tier)
    query = keyset(query, Customer.created_at, Customer.id, cursor, limit)
    return page(list(await session.scalars(query)), limit)


async def create_customer(session: AsyncSession, tenant_id: str,
                          body: CustomerCreate) -> Customer:
    """Create a customer explicitly; `Conflict` (`customer_exists`) when the tenant already
    has one with that id."""
    customer = Customer(id=new_id("cus"), tenant_id=tenant_id, external_id=body.external_id,
                        tier=body.tier, monthly_budget_mc=body.monthly_budget_mc)
    try:
        async with session.begin_nested():
            session.add(customer)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("this tenant already has a customer with that id",
                       code="customer_exists", param="external_id") from exc
    return customer


async def update_customer(session: AsyncSession, tenant_id: str, ref: str,
                          body: CustomerUpdate) -> Customer:
    """Change a customer's tier or monthly budget; returns the customer."""
    customer = await get_customer(session, tenant_id, ref)
    if body.tier is not msgspec.UNSET:
        customer.tier = body.tier
    if body.monthly_budget_mc is not msgspec.UNSET:
        customer.monthly_budget_mc = body.monthly_budget_mc
    await session.flush()
    return customer
