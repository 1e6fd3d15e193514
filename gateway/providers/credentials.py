"""Which credentials a call to a provider uses: the tenant's own key when it set one
(`tenants.provider_keys`), else the platform's (`MEDIAHUB_<PROVIDER>_API_KEY`, ...).

A tenant's key is only ever opened for that tenant's generations: it is sealed with the
tenant id as associated data, and looked up by the generation's tenant.
"""

from __future__ import annotations

import os

from gateway.core.runtime import Runtime, provider_env_name
from plugins.errors import ProviderError
from plugins.provider import Credentials
from tenants.models import Tenant
from tenants.provider_keys import UnsealError, own_credentials

#: The credential scope of the platform's keys, shared by every tenant without its own key;
#: a tenant's own key's scope is the tenant id. Routing state (breaker, back-off, error rate)
#: belongs to one scope: see gateway/providers/states.py.
PLATFORM = "platform"


def credential_scope(tenant: Tenant, provider_name: str) -> str:
    """Whose credentials a call for `tenant` to the provider uses, as a routing-state scope:
    the tenant id when the tenant set its own key for it, else `PLATFORM`. Called by
    planning (per candidate) and by the worker (per call)."""
    return tenant.id if provider_name in (tenant.provider_credentials or {}) else PLATFORM


def platform_credentials(provider_name: str) -> Credentials:
    """The platform's credentials for a provider: `MEDIAHUB_<PROVIDER>_API_KEY`,
    `_API_SECRET` and `_BASE_URL` (read at each call, so an operator's change needs no
    restart of the code that holds no copy)."""
    env_name = provider_env_name(provider_name)
    return Credentials(api_key=os.environ.get(f"MEDIAHUB_{env_name}_API_KEY") or None,
                       api_secret=os.environ.get(f"MEDIAHUB_{env_name}_API_SECRET") or None,
                       base_url=os.environ.get(f"MEDIAHUB_{env_name}_BASE_URL") or None)


def resolve(runtime: Runtime, tenant: Tenant, provider_name: str) -> Credentials:
    """The tenant's own credentials for the provider, or the platform's. An own key without
    its own endpoint uses the platform's endpoint setting (or the provider's default)."""
    platform = platform_credentials(provider_name)
    try:
        own = own_credentials(tenant, provider_name, runtime.settings.secret_key)
    except UnsealError as exc:
        # Final: retrying cannot help; the tenant (or operator) has to set the key again.
        raise ProviderError.auth(f"the tenant's own {provider_name} key does not open "
                                 "(was MEDIAHUB_SECRET_KEY changed?); set it again") from exc
    if own is None:
        return platform
    if own.base_url is None and platform.base_url is not None:
        return Credentials(api_key=own.api_key, api_secret=own.api_secret,
                           base_url=platform.base_url)
    return own


async def credentials_for(runtime: Runtime, tenant_id: str, provider_name: str) -> Credentials:
    """`resolve` for a generation's tenant; called before every provider call, poll and
    cancel made on the tenant's behalf. Raises `ProviderError` (auth) when the tenant's
    stored key does not open."""
    return resolve(runtime, await runtime.tenant_views.tenant(tenant_id), provider_name)
