"""The portal origin a request came from, for links that must land on the tenant's portal
(Stripe's return page, a team invitation's accept page)."""

from __future__ import annotations

from gateway.core.runtime import Runtime
from tenants import service as tenants


async def portal_origin(runtime: Runtime, tenant_id: str, scheme: str,
                        host: str) -> str | None:
    """`scheme://host` when `host` is one of the tenant's verified portal domains (so Stripe
    returns the buyer to the portal they bought from), else None (the public base URL).
    Checked against the tenant's domains so a forged Host never steers the redirect."""
    if not host or len(host) > 300:
        return None
    async with runtime.db.session() as session:
        tenant = await tenants.tenant_for_host(session, host)
    if tenant is None or tenant.id != tenant_id:
        return None
    return f"{'https' if scheme == 'https' else 'http'}://{host}"
