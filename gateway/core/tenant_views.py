"""Tenants (and customer tiers) as the hot paths read them: at most a few seconds old, so a
submit or a job does not pay a database round trip for them. An operator's or tenant's change
shows within `TenantViews.ttl_s` everywhere, at once in the process that made it (`forget`).
"""

from __future__ import annotations

import time

from tenants.kernel.db import Database
from tenants.kernel.errors import NotFound
from tenants.models import Customer, Tenant

#: A tenant row and the calling customer's tier (None: no customer, or no tier).
TenantView = tuple[Tenant, str | None]


class TenantViews:
    """Tenant rows (and customer tiers) as last read, for `ttl_s`.

    Read-only: the cached rows are detached and shared between requests.
    """

    def __init__(self, db: Database, ttl_s: float = 5.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str | None], tuple[float, TenantView]] = {}
        #: Whether the customer had a monthly budget, read with its tier.
        self._budgeted: dict[tuple[str, str | None], bool] = {}

    async def tenant_and_tier(self, tenant_id: str, customer_id: str | None) -> TenantView:
        """The tenant and the customer's tier (None without a customer or tier); called by
        the submit path, the settle of a finished job and provider calls. Raises
        `NotFound`."""
        key = (tenant_id, customer_id)
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        async with self.db.session() as session:
            tenant = await session.get(Tenant, tenant_id)
            tier = None
            budgeted = False
            if customer_id is not None:
                customer = await session.get(Customer, customer_id)
                tier = customer.tier if customer is not None else None
                budgeted = customer is None or customer.monthly_budget_mc is not None
        if tenant is None:
            raise NotFound("no such tenant", code="tenant_not_found")
        if len(self._entries) > 10_000:  # bounded: drop what has expired
            now = time.monotonic()
            self._entries = {k: e for k, e in self._entries.items() if e[0] >= now}
            self._budgeted = {k: b for k, b in self._budgeted.items() if k in self._entries}
        self._entries[key] = (time.monotonic() + self.ttl_s, (tenant, tier))
        self._budgeted[key] = budgeted
        return tenant, tier

    async def customer_budgeted(self, tenant_id: str, customer_id: str | None) -> bool:
        """Whether the customer has a monthly budget, as read with its tier (as fresh as
        `tenant_and_tier`); False without a customer. Read by the submit path, so a
        customer without a budget costs no budget query."""
        if customer_id is None:
            return False
        await self.tenant_and_tier(tenant_id, customer_id)
        return self._budgeted.get((tenant_id, customer_id), True)

    async def tenant(self, tenant_id: str) -> Tenant:
        """`tenant_and_tier` without a customer: the tenant alone."""
        return (await self.tenant_and_tier(tenant_id, None))[0]

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's entries at once (after a change made in this process)."""
        for key in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[key]
            self._budgeted.pop(key, None)
