"""A tenant's own provider credentials ("bring your own key"): `/v1/provider_keys` for the
tenant (a `tenant_admin` key not bound to a customer), and the operator's equivalents under
`/admin/v1/tenants/{id}/provider_keys` (gateway/routes/admin.py).

Keys are write-only: listings show the provider, the key's last four characters and when it
was set. Only the operator may give a tenant its own endpoint (`base_url`): a tenant-chosen
address would let it aim the gateway's provider client at internal hosts.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, put
from litestar.params import FromPath

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
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


class ProviderKeyController(Controller):
    path = "/v1/provider_keys"
    tags = ["provider keys"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @get("/", summary="The tenant's own provider keys (no secrets)")
    async def list_(self, principal: Principal,
                    runtime: RuntimeDep) -> ProviderKeyList:
        """Each provider the tenant set its own key for: last four characters, when set."""
        return await list_keys(runtime, principal.tenant)

    @put("/{provider:str}", summary="Set the tenant's own key for a provider")
    async def put_(self, principal: Principal, runtime: RuntimeDep,
                   provider: FromPath[str], data: TenantProviderKeyIn) -> ProviderKeyOut:
        """From now on this tenant's generations on `provider` use this key (and only this
        tenant's); stored encrypted, never shown again."""
        return await set_key(runtime, principal.tenant, provider,
                             ProviderKeyIn(api_key=data.api_key, api_secret=data.api_secret))

    @delete("/{provider:str}", status_code=200, summary="Forget the tenant's own key")
    async def delete_(self, principal: Principal, runtime: RuntimeDep,
                      provider: FromPath[str]) -> ProviderKeyDeleted:
        """The platform's key (if any) serves the tenant again."""
        return await delete_key(runtime, principal.tenant, provider)
