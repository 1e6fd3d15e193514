"""The portal origin a link must point at (Stripe's return page, a team invitation's accept
page): the tenant's portal, never the platform host, where no portal is served."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.core.runtime import Runtime
from tenants import service as tenants


async def portal_origin(runtime: Runtime, tenant_id: str, scheme: str,
                        host: str) -> str | None:
    """`scheme://host[:port]` when `host` is one of the tenant's verified portal domains (the
    portal the request came from); else the tenant's first domain with the public base URL's
    scheme (as `gateway.people.sites.home_site`); None when it has no domain (the public base
    URL then). Rebuilt from the parsed host name and a numeric port only, and checked against
    the tenant's domains, so a forged Host never steers a link."""
    hostname = tenants.normalize_host(host) if host and len(host) <= 300 else ""
    async with runtime.db.session() as session:
        owner = await tenants.tenant_for_host(session, hostname) if hostname else None
        if owner is not None and owner.id == tenant_id:
            _, colon, port = host.strip().rpartition(":")
            suffix = f":{port}" if colon and port.isdigit() else ""
            return f"{'https' if scheme == 'https' else 'http'}://{hostname}{suffix}"
        domains = await tenants.tenant_domains(session, tenant_id)
    if not domains:
        return None
    return f"{urlsplit(runtime.settings.public_base_url).scheme or 'https'}://{domains[0]}"
