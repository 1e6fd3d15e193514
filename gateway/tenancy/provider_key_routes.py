"""`/v1/provider_keys`: the tenant's own provider keys (thin; `provider_keys` does the work)."""

from __future__ import annotations

from litestar import Controller, delete, get, put
from litestar.params import FromPath

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
from gateway.tenancy.provider_keys import (
    ProviderKeyDeleted,
    ProviderKeyList,
    TenantProviderKeyIn,
    delete_key,
    list_keys,
    set_key,
)
from tenants.provider_keys import ProviderKeyIn, ProviderKeyOut


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
