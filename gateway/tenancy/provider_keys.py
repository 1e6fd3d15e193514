"""A tenant's own provider credentials ("bring your own key"), as `/v1/provider_keys`
(`gateway.tenancy.provider_key_routes`, a `tenant_admin` key not bound to a customer) and
the operator's `/admin/v1/tenants/{id}/provider_keys` (`gateway.admin.routes`) manage them.

Keys are write-only: listings show the provider, the key's last four characters and when it
was set. Only the operator may give a tenant its own endpoint (`base_url`): a tenant-chosen
address would let it aim the gateway's provider client at internal hosts.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.core.runtime import Runtime
from tenants import provider_keys
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.provider_keys import ProviderKeyIn, ProviderKeyOut
from tenants.service import get_tenant

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class TenantProviderKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    api_key: Secret
    api_secret: Secret | None = None


class ProviderKeyList(msgspec.Struct):
    data: list[ProviderKeyOut]
    object: str = "list"


class ProviderKeyDeleted(msgspec.Struct):
    provider: str
    deleted: bool = True
    object: str = "provider_key"


def _keyable(runtime: Runtime, provider: str) -> None:
    """Refuse a provider that is not installed (404) or takes no key (422)."""
    found = runtime.plugins.get(provider)
    if found is None:
        raise NotFound(f"no provider named {provider!r}", code="unknown_provider",
                       param="provider")
    if found.local:
        raise InvalidRequest(f"{provider} runs on this machine and takes no key",
                             code="provider_takes_no_key", param="provider")


async def set_key(runtime: Runtime, tenant_id: str, provider: str,
                  body: ProviderKeyIn) -> ProviderKeyOut:
    """Store the tenant's credentials for `provider` (replacing any); used by both APIs."""
    _keyable(runtime, provider)
    async with runtime.db.transaction() as session:
        tenant = await get_tenant(session, tenant_id)
        provider_keys.set_key(tenant, provider, body, runtime.settings.secret_key)
        out = next(k for k in provider_keys.listing(tenant) if k.provider == provider)
    runtime.tenant_views.forget(tenant_id)
    return out


async def list_keys(runtime: Runtime, tenant_id: str) -> ProviderKeyList:
    async with runtime.db.session() as session:
        tenant = await get_tenant(session, tenant_id)
        return ProviderKeyList(data=provider_keys.listing(tenant))


async def delete_key(runtime: Runtime, tenant_id: str, provider: str) -> ProviderKeyDeleted:
    async with runtime.db.transaction() as session:
        tenant = await get_tenant(session, tenant_id)
        if not provider_keys.delete_key(tenant, provider):
            raise NotFound(f"no own key for {provider!r}", code="provider_key_not_found",
                           param="provider")
    runtime.tenant_views.forget(tenant_id)
    return ProviderKeyDeleted(provider=provider)
