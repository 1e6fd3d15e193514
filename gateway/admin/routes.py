"""The operator API under `/admin/v1` (API.md, "Operator API")."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter

from billing import ledger, wallets
from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.http import check_admin, key_cache
from gateway.core.runtime import Runtime
from gateway.credits.purchases import (
    PackageCreate,
    PackageList,
    PackageOut,
    create_package,
    list_packages,
)
from gateway.providers.states import ProviderStateList, health_check_all, operator_view
from gateway.tenancy import provider_keys as provider_key_routes
from gateway.tenancy.provider_keys import ProviderKeyDeleted, ProviderKeyList
from tenants import service as tenants
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.models import ApiKey, Tenant
from tenants.provider_keys import ProviderKeyIn, ProviderKeyOut
from tenants.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
    cache_of,
    routing_of,
)


class CreditGrant(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(gt=0, le=10**15)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    #: The tenant's own id for a customer: grant to that customer's wallet (`mediahub` mode).
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class GrantOut(msgspec.Struct):
    id: str
    tenant_id: str
    amount: int
    reason: str | None
    balance: int
    unit: str = "millicredit"
    object: str = "credit_grant"


class TenantList(msgspec.Struct):
    data: list[TenantOut]
    next_cursor: str | None
    object: str = "list"


class KeyList(msgspec.Struct):
    data: list[KeyOut]
    object: str = "list"


def _tenant_out(tenant: Tenant, domains: list[str]) -> TenantOut:
    return TenantOut(id=tenant.id, name=tenant.name, slug=tenant.slug, domains=domains,
                     branding=tenant.branding, pricing=tenant.pricing,
                     rate_limits=tenant.rate_limits, billing_mode=tenant.billing_mode,
                     low_balance_threshold_mc=tenant.low_balance_threshold_mc,
                     created_at=tenant.created_at,
                     routing=msgspec.to_builtins(routing_of(tenant.routing)),
                     cache=msgspec.to_builtins(cache_of(tenant.cache)))


def _key_out(key: ApiKey) -> KeyOut:
    return KeyOut(id=key.id, name=key.name, prefix=key.prefix, scopes=key.scopes,
                  customer_id=key.customer_id, created_at=key.created_at,
                  revoked_at=key.revoked_at)


async def create_tenant(runtime: Runtime, body: TenantCreate) -> TenantOut:
    """Create a tenant with its ledger accounts in one transaction (also used by the CLI)."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.create_tenant(session, body)
        await ledger.open_tenant_accounts(session, tenant.id)
        return _tenant_out(tenant, sorted(body.domains))


async def create_key(runtime: Runtime, tenant_id: str, body: KeyCreate) -> KeyCreated:
    async with runtime.db.transaction() as session:
        key, secret = await tenants.create_key(session, tenant_id, body)
        return KeyCreated(id=key.id, key=secret, prefix=key.prefix, name=key.name,
                          scopes=key.scopes, customer_id=key.customer_id,
                          created_at=key.created_at)


async def grant_credits(runtime: Runtime, tenant_id: str, body: CreditGrant,
                        idempotency_key: str) -> GrantOut:
    """Grant credits to a tenant's wallet once per idempotency key."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        customer_id = None
        if body.customer_id is not None:
            customer = await tenants.customer_for(session, tenant_id, body.customer_id,
                                                  create=True)
            customer_id = customer.id if customer is not None else None
        wallet = await wallets.own_wallet(session, tenant, customer_id)
        transfer = await ledger.grant(
            session, tenant_id=tenant_id, to_account=wallet, amount_mc=body.amount,
            idempotency_key=f"grant:{tenant_id}:{idempotency_key}", reason=body.reason)
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
    return GrantOut(id=transfer.id, tenant_id=tenant_id, amount=transfer.amount_mc,
                    reason=transfer.reason, balance=held.available_mc)


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Operator auth for every route below, checked before the body is read or validated.

    A guard (not a call inside each handler) so that a caller without the admin token gets
    401 even when its body is invalid, instead of a 422 that describes the operator schema.
    """
    check_admin(connection, connection.app.state.runtime)


class AdminController(Controller):
    path = "/admin/v1"
    tags = ["operator"]
    guards = [admin_guard]

    @post("/tenants", status_code=201, summary="Create a tenant")
    async def create_tenant(self, runtime: RuntimeDep,
                            data: TenantCreate) -> TenantOut:
        return await create_tenant(runtime, data)

    @get("/tenants", summary="List tenants")
    async def list_tenants(self, runtime: RuntimeDep,
                           limit: FromQuery[int | None] = None,
                           cursor: FromQuery[str | None] = None) -> TenantList:
        size = page_limit(limit)
        async with runtime.db.session() as session:
            rows = await tenants.list_tenants(session, limit=size, cursor=cursor)
            more = len(rows) > size
            rows = rows[:size]
            data = [_tenant_out(t, await tenants.tenant_domains(session, t.id)) for t in rows]
        return TenantList(data=data, next_cursor=rows[-1].id if more and rows else None)

    @get("/tenants/{tenant_id:str}", summary="Read a tenant")
    async def read_tenant(self, runtime: RuntimeDep,
                          tenant_id: FromPath[str]) -> TenantOut:
        async with runtime.db.session() as session:
            tenant = await tenants.get_tenant(session, tenant_id)
            return _tenant_out(tenant, await tenants.tenant_domains(session, tenant_id))

    @patch("/tenants/{tenant_id:str}", summary="Change a tenant")
    async def update_tenant(self, runtime: RuntimeDep,
                            tenant_id: FromPath[str], data: TenantUpdate) -> TenantOut:
        async with runtime.db.transaction() as session:
            tenant = await tenants.update_tenant(session, tenant_id, data)
            out = _tenant_out(tenant, await tenants.tenant_domains(session, tenant_id))
        # The new settings at once here, within 5 s elsewhere.
        runtime.limiter.forget(tenant_id)
        runtime.tenant_views.forget(tenant_id)
        return out

    @post("/tenants/{tenant_id:str}/keys", status_code=201, summary="Create an API key")
    async def create_key(self, runtime: RuntimeDep,
                         tenant_id: FromPath[str], data: KeyCreate) -> KeyCreated:
        """The response is the only place the key's secret ever appears."""
        return await create_key(runtime, tenant_id, data)

    @get("/tenants/{tenant_id:str}/keys", summary="List a tenant's keys (no secrets)")
    async def list_keys(self, runtime: RuntimeDep,
                        tenant_id: FromPath[str]) -> KeyList:
        async with runtime.db.session() as session:
            await tenants.get_tenant(session, tenant_id)
            return KeyList(data=[_key_out(k) for k in await tenants.list_keys(session,
                                                                              tenant_id)])

    @delete("/tenants/{tenant_id:str}/keys/{key_id:str}", status_code=200,
            summary="Revoke an API key")
    async def revoke_key(self, runtime: RuntimeDep,
                         tenant_id: FromPath[str], key_id: FromPath[str]) -> KeyOut:
        async with runtime.db.transaction() as session:
            key = await tenants.revoke_key(session, tenant_id, key_id)
        key_cache.evict_key_id(key.id)
        return _key_out(key)

    @post("/tenants/{tenant_id:str}/credits", status_code=201,
          summary="Grant credits to a tenant's wallet")
    async def grant(self, runtime: RuntimeDep,
                    tenant_id: FromPath[str],
                    data: CreditGrant,
                    idempotency_key: Annotated[str | None, HeaderParameter(
                        name="Idempotency-Key", required=False)] = None) -> Response[GrantOut]:
        if not idempotency_key:
            raise InvalidRequest("credit grants need an Idempotency-Key header",
                                 code="idempotency_key_required", param="Idempotency-Key")
        return Response(await grant_credits(runtime, tenant_id, data, idempotency_key),
                        status_code=201)

    @post("/tenants/{tenant_id:str}/packages", status_code=201,
          summary="Add a credit package to a tenant's offer")
    async def create_package(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                             data: PackageCreate) -> PackageOut:
        return await create_package(runtime, tenant_id, data)

    @get("/tenants/{tenant_id:str}/packages", summary="List a tenant's credit packages")
    async def list_packages(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                            limit: FromQuery[int | None] = None,
                            cursor: FromQuery[str | None] = None) -> PackageList:
        return await list_packages(runtime, tenant_id, active_only=False, limit=limit,
                                   cursor=cursor)

    @get("/tenants/{tenant_id:str}/provider_keys",
         summary="A tenant's own provider keys (no secrets)")
    async def list_provider_keys(self, runtime: RuntimeDep,
                                 tenant_id: FromPath[str]) -> ProviderKeyList:
        return await provider_key_routes.list_keys(runtime, tenant_id)

    @put("/tenants/{tenant_id:str}/provider_keys/{provider:str}",
         summary="Set a tenant's own key (and, operator only, endpoint) for a provider")
    async def set_provider_key(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                               provider: FromPath[str], data: ProviderKeyIn) -> ProviderKeyOut:
        """As the tenant's `PUT /v1/provider_keys/{provider}`, plus `base_url`: the
        operator may point the tenant's calls at its own endpoint (a self-hosted engine)."""
        return await provider_key_routes.set_key(runtime, tenant_id, provider, data)

    @delete("/tenants/{tenant_id:str}/provider_keys/{provider:str}", status_code=200,
            summary="Forget a tenant's own key for a provider")
    async def delete_provider_key(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                                  provider: FromPath[str]) -> ProviderKeyDeleted:
        return await provider_key_routes.delete_key(runtime, tenant_id, provider)

    @get("/providers", summary="Every provider's state: health, latency, errors, breaker")
    async def list_providers(self, runtime: RuntimeDep) -> ProviderStateList:
        """The routing state of every installed provider as the gateway sees it."""
        return await operator_view(runtime)

    @post("/providers/check", status_code=200, summary="Run the provider health checks now")
    async def check_providers(self, runtime: RuntimeDep) -> ProviderStateList:
        """Call every configured provider's health check (as the schedule does) and answer
        the state afterwards."""
        await health_check_all(runtime)
        return await operator_view(runtime)

    @post("/providers/{name:str}/reset", status_code=200,
          summary="Close a provider's circuit breaker")
    async def reset_provider(self, runtime: RuntimeDep,
                             name: FromPath[str]) -> ProviderStateList:
        """Close the breaker and clear any Retry-After backoff, in this process and in the
        table (other processes pick it up on their next refresh)."""
        provider = runtime.plugins.get(name)
        if provider is None:
            raise NotFound("no such provider", code="provider_not_found", param="name")
        await runtime.routing.reset(runtime, provider)
        return await operator_view(runtime)
