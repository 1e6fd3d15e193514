"""Which providers a tenant's generations may route to: its routing policy's
`allowed_providers`, else the operator's `MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS`, else every
remote provider.

The offline (local) engines make placeholder files; a customer who asked for an image must not
be charged for one because the remote providers were failing. So they serve only a tenant
that chose them (named in its allow list, `*`, or its routing `order`) or a request that pins
one; failover stays among the providers the tenant allows.
"""

from __future__ import annotations

from gateway.core.runtime import Runtime
from plugins.provider import Provider
from tenants.kernel.errors import InvalidRequest
from tenants.models import Tenant
from tenants.schemas import TenantCaps, TenantRouting

#: In an allow list: every installed provider, the offline engines included.
EVERY = "*"


def allowed(runtime: Runtime, tenant: Tenant, provider: Provider) -> bool:
    """Whether routing may give one of `tenant`'s (unpinned) requests to `provider`; called by
    planning for each capable provider."""
    routing = tenant.routing
    if provider.name in routing.order:
        return True
    names = (routing.allowed_providers if routing.allowed_providers is not None
             else permitted(runtime, tenant))
    if names:
        return EVERY in names or provider.name in names
    return not provider.local


def permitted(runtime: Runtime, tenant: Tenant) -> tuple[str, ...]:
    """The providers the operator lets `tenant` allow (its caps' `allowed_providers`, else
    `MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS`); empty: every remote provider. Also the tenant's
    allow list while it has not set its own."""
    if tenant.caps.allowed_providers is not None:
        return tuple(tenant.caps.allowed_providers)
    return tuple(runtime.settings.default_allowed_providers)


def may_allow(runtime: Runtime, tenant: Tenant, name: str) -> bool:
    """Whether the tenant may name `name` (a provider or `*`) in its own routing; called by
    `PATCH /v1/tenant`."""
    names = permitted(runtime, tenant)
    if EVERY in names:
        return True
    if name == EVERY:
        return False
    if names:
        return name in names
    provider = runtime.plugins.get(name)
    return provider is not None and not provider.local


def check_caps(runtime: Runtime, caps: TenantCaps) -> None:
    """As `check_routing`, for the providers the operator permits a tenant (`caps`)."""
    for index, name in enumerate(caps.allowed_providers or []):
        if name != EVERY and runtime.plugins.get(name) is None:
            raise InvalidRequest(f"no provider named {name!r} is installed",
                                 code="unknown_provider",
                                 param=f"caps.allowed_providers[{index}]")


def check_routing(runtime: Runtime, routing: TenantRouting) -> None:
    """Refuse an allow list naming providers this gateway does not have (a typo would
    silently leave a tenant with fewer providers than meant); called when the operator
    creates or changes a tenant. Raises `InvalidRequest` (422) naming the entry."""
    for index, name in enumerate(routing.allowed_providers or []):
        if name != EVERY and runtime.plugins.get(name) is None:
            raise InvalidRequest(f"no provider named {name!r} is installed",
                                 code="unknown_provider",
                                 param=f"routing.allowed_providers[{index}]")
