"""Which tenant a sign-in request is for, and the links mailed or minted for it.

A tenant's portal lives on its domains (`tenants.domains`): there the `Host` names the tenant.
On the platform's own host (that of `MEDIAHUB_PUBLIC_BASE_URL`) the request names it with
`tenant` (its slug) in the body or the link's query. Any other host is 404
`domain_unverified`. Links in mail point back at the host the request came to (only known
hosts get this far), so a customer of a custom domain never sees the platform's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import cookies
from gateway.core.settings import Settings
from tenants import service as tenants
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class Caller:
    """What a sign-in request says about where it came from."""

    host: str
    scheme: str
    ip: str
    user_agent: str
    https: bool

    @classmethod
    def of(cls, request: Request[Any, Any, Any], settings: Settings) -> Caller:
        return cls(host=request.headers.get("host", ""), scheme=request.url.scheme,
                   ip=request.client.host if request.client else "",
                   user_agent=request.headers.get("user-agent", "")[:200],
                   https=cookies.is_https(settings, request))


@dataclass(frozen=True, slots=True)
class Site:
    """The tenant a request is for and the origin its links use."""

    tenant: Tenant
    #: `scheme://host[:port]` of the request (or the public base URL on the platform host).
    origin: str
    #: Whether the request came to the platform's own host (links then carry `tenant`).
    platform: bool

    def link(self, path: str, **query: str) -> str:
        """An absolute link to `path` on this site (with the tenant's slug on the platform
        host)."""
        if self.platform:
            query = {**query, "tenant": self.tenant.slug}
        return f"{self.origin}{path}?{urlencode(query)}"


def _origin(caller: Caller) -> str:
    # Rebuilt from the parsed host and a numeric port only: nothing else of the header
    # reaches a mailed link.
    host = cookies.hostname(caller.host)
    _, colon, port = caller.host.strip().rpartition(":")
    scheme = "https" if caller.https else "http"
    if colon and port.isdigit():
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await session.scalar(select(Tenant).where(Tenant.slug == slug))


async def resolve_site(session: AsyncSession, settings: Settings, caller: Caller,
                       slug: str | None) -> Site:
    """The tenant of a sign-in request (module docstring); 422 `tenant_required` without a
    slug on the platform host, 404 `tenant_not_found` for an unknown slug, 404
    `domain_unverified` for a host no tenant has, 422 `tenant_mismatch` for a slug that is
    not the host's tenant."""
    host = cookies.hostname(caller.host)
    if host and host == cookies.platform_host(settings):
        if slug is None:
            raise InvalidRequest("on this host, name the tenant with `tenant` (its slug)",
                                 code="tenant_required", param="tenant")
        tenant = await tenant_by_slug(session, slug)
        if tenant is None:
            raise NotFound("no such tenant", code="tenant_not_found", param="tenant")
        return Site(tenant=tenant, origin=settings.public_base_url.rstrip("/"), platform=True)
    tenant = await tenants.tenant_for_host(session, host) if host else None
    if tenant is None:
        raise NotFound("no portal is configured for this hostname", code="domain_unverified")
    if slug is not None and slug != tenant.slug:
        raise InvalidRequest("`tenant` names another tenant than this host's",
                             code="tenant_mismatch", param="tenant")
    return Site(tenant=tenant, origin=_origin(caller), platform=False)


async def home_site(session: AsyncSession, settings: Settings, tenant: Tenant) -> Site:
    """Where links minted by a tenant's backend or the operator point: the tenant's first
    domain (alphabetically) with the public base URL's scheme, or the platform host."""
    domains = await tenants.tenant_domains(session, tenant.id)
    if not domains:
        return Site(tenant=tenant, origin=settings.public_base_url.rstrip("/"), platform=True)
    scheme = urlsplit(settings.public_base_url).scheme or "https"
    return Site(tenant=tenant, origin=f"{scheme}://{domains[0]}", platform=False)


async def check_return_url(session: AsyncSession, settings: Settings, tenant_id: str,
                           url: str | None) -> str:
    """A portal session's `return_url`, refused (422, `param: "return_url"`) unless it is a
    path on the same host or an http(s) URL on one of the tenant's domains or the platform
    host: never an open redirect. None: `/`."""
    if url is None:
        return "/"
    bad = InvalidRequest("return_url must be a path or a URL on one of the tenant's domains",
                         code="invalid_return_url", param="return_url")
    if any(ord(c) < 0x21 or c == "\\" for c in url):
        raise bad
    if url.startswith("/"):
        if url.startswith("//"):
            raise bad  # protocol-relative: another host
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise bad
    host = parts.hostname.lower().rstrip(".")
    allowed = set(await tenants.tenant_domains(session, tenant_id))
    allowed.add(cookies.platform_host(settings))
    if host not in allowed:
        raise bad
    return url
