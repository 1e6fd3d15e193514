"""Tenants (and customer tiers) as the hot paths read them: from `Runtime.tenant_views`, at
most a few seconds old, so a submit or a job does not pay a database round trip for them. An
operator's change shows within `TenantViews.ttl_s`, at once in the process that made it."""

from __future__ import annotations

from gateway.core.runtime import Runtime
from tenants.kernel.errors import NotFound
from tenants.models import Customer, Tenant


async def tenant_and_tier(runtime: Runtime, tenant_id: str,
                          customer_id: str | None) -> tuple[Tenant, str | None]:
    """The tenant and the customer's tier (None without a customer or tier); called by the
    submit path, the settle of a finished job and provider calls. Raises `NotFound`."""
    key = (tenant_id, customer_id)
    cached = runtime.tenant_views.get(key)
    if cached is not None:
        return cached
    async with runtime.db.session() as session:
        tenant = await session.get(Tenant, tenant_id)
        tier = None
        if customer_id is not None:
            customer = await session.get(Customer, customer_id)
            tier = customer.tier if customer is not None else None
    if tenant is None:
        raise NotFound("no such tenant", code="tenant_not_found")
    runtime.tenant_views.put(key, (tenant, tier))
    return tenant, tier


async def tenant_row(runtime: Runtime, tenant_id: str) -> Tenant:
    """`tenant_and_tier` without a customer: the tenant alone."""
    return (await tenant_and_tier(runtime, tenant_id, None))[0]
