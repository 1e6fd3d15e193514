"""The operator API under `/admin/v1` (API.md, "Operator API")."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter

from gateway.core.auth import OPERATOR, operator_only
from gateway.core.deps import RuntimeDep, page_limit
from gateway.credits import packages, purchases
from gateway.credits import service as credits
from gateway.credits.purchases import PackageCreate, PackageList, PackageOut
from gateway.credits.service import CreditGrant, GrantOut
from gateway.generations.services import ServicesDep
from gateway.people import staff
from gateway.people.schemas import InviteIn, UserOut
from gateway.providers.states import ProviderStateList, health_check_all, operator_view
from gateway.tenancy import provider_keys as own_provider_keys
from gateway.tenancy import service as tenancy
from gateway.tenancy import suspension
from gateway.tenancy.audit_log import list_audit
from gateway.tenancy.provider_keys import ProviderKeyDeleted, ProviderKeyList
from gateway.tenancy.service import KeyList, TenantList
from gateway.tenancy.suspension import SuspendIn
from tenants.audit import AuditLog
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.keys import KeyUpdate
from tenants.provider_keys import ProviderKeyIn, ProviderKeyOut
from tenants.schemas import KeyCreate, KeyCreated, KeyOut, TenantCreate, TenantOut, TenantUpdate

#: The longest grant `Idempotency-Key`: it is stored as `grant:<tenant id>:<key>` in
#: `transfers.idempotency_key` (255 characters; tenant ids up to 32), and PostgreSQL refused
#: a longer one with a 500 where SQLite stored it. One limit for both, checked at the edge.
MAX_GRANT_IDEMPOTENCY_KEY = 255 - len("grant:") - 32 - 1


class AdminController(Controller):
    path = "/admin/v1"
    tags = ["operator"]
    guards = [operator_only]

    @post("/tenants", status_code=201, summary="Create a tenant")
    async def create_tenant(self, runtime: RuntimeDep,
                            data: TenantCreate) -> TenantOut:
        """A `routing.allowed_providers` entry naming no installed provider is a 422
        `unknown_provider` (`param: "routing.allowed_providers[i]"`); so on change."""
        return await tenancy.create_tenant(runtime, data)

    @get("/tenants", summary="List tenants")
    async def list_tenants(self, runtime: RuntimeDep,
                           limit: FromQuery[int | None] = None,
                           cursor: FromQuery[str | None] = None) -> TenantList:
        """Every tenant, newest first, cursor-paginated (`limit` 1-100, `cursor` from
        `next_cursor`)."""
        return await tenancy.list_tenants(runtime, limit=page_limit(limit), cursor=cursor)

    @get("/tenants/{tenant_id:str}", summary="Read a tenant")
    async def read_tenant(self, runtime: RuntimeDep,
                          tenant_id: FromPath[str]) -> TenantOut:
        """One tenant with its settings (branding, pricing, routing, limits); 404
        `tenant_not_found`."""
        return await tenancy.read_tenant(runtime, tenant_id)

    @patch("/tenants/{tenant_id:str}", summary="Change a tenant")
    async def update_tenant(self, runtime: RuntimeDep,
                            tenant_id: FromPath[str], data: TenantUpdate) -> TenantOut:
        """Changes only the fields sent; validated as on creation. Answers the tenant as it now
        is."""
        return await tenancy.update_tenant(runtime, tenant_id, data)

    @post("/tenants/{tenant_id:str}/suspend", status_code=200, summary="Suspend a tenant")
    async def suspend_tenant(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                             data: SuspendIn) -> TenantOut:
        """From now on, on every gateway process, each request with one of the tenant's
        keys or sessions is a 403 `tenant_suspended` (its message carries `reason`); its
        portal config answers `"suspended": true`; the operator API still works on it.
        Generations already queued finish. Suspending again replaces the reason. Audited
        as `tenant.suspended`; answers the tenant with `suspended_at` set."""
        return await suspension.suspend(runtime, tenant_id, data, actor=OPERATOR.actor)

    @post("/tenants/{tenant_id:str}/resume", status_code=200,
          summary="Lift a tenant's suspension")
    async def resume_tenant(self, runtime: RuntimeDep, tenant_id: FromPath[str]) -> TenantOut:
        """The tenant's keys and sessions work again (on other processes within seconds).
        Audited as `tenant.resumed`; resuming a tenant that is not suspended changes
        nothing."""
        return await suspension.resume(runtime, tenant_id, actor=OPERATOR.actor)

    @post("/tenants/{tenant_id:str}/keys", status_code=201, summary="Create an API key")
    async def create_key(self, runtime: RuntimeDep,
                         tenant_id: FromPath[str], data: KeyCreate) -> KeyCreated:
        """The response is the only place the key's secret ever appears."""
        return await tenancy.create_key(runtime, tenant_id, data)

    @get("/tenants/{tenant_id:str}/keys", summary="List a tenant's keys (no secrets)")
    async def list_keys(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                        limit: FromQuery[int | None] = None,
                        cursor: FromQuery[str | None] = None) -> KeyList:
        """Newest first, cursor-paginated; each with this month's spend."""
        return await tenancy.list_keys(runtime, tenant_id, limit=page_limit(limit),
                                       cursor=cursor)

    @patch("/tenants/{tenant_id:str}/keys/{key_id:str}",
           summary="Change an API key's name, budget or rate limit")
    async def update_key(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                         key_id: FromPath[str], data: KeyUpdate) -> KeyOut:
        """As the tenant's own `PATCH /v1/keys/{id}` (audited with actor `operator`)."""
        return await tenancy.update_key(runtime, tenant_id, key_id, data,
                                        actor=OPERATOR.actor)

    @delete("/tenants/{tenant_id:str}/keys/{key_id:str}", status_code=200,
            summary="Revoke an API key")
    async def revoke_key(self, runtime: RuntimeDep,
                         tenant_id: FromPath[str], key_id: FromPath[str]) -> KeyOut:
        """The key stops authenticating at once (cached identities are evicted); answers the
        revoked key, without its secret."""
        return await tenancy.revoke_key(runtime, tenant_id, key_id)

    @post("/tenants/{tenant_id:str}/users", status_code=201,
          summary="Invite a tenant's user (its first owner)")
    async def invite_user(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                          data: InviteIn) -> UserOut:
        """Mails the address a link to set its password; how a tenant gets its first owner.
        409 `user_exists`; 404 for an unknown tenant."""
        return await staff.invite_as_operator(runtime, tenant_id, data)

    @post("/tenants/{tenant_id:str}/credits", status_code=201,
          summary="Grant credits to a tenant's wallet")
    async def grant(self, runtime: RuntimeDep,
                    tenant_id: FromPath[str],
                    data: CreditGrant,
                    idempotency_key: Annotated[str | None, HeaderParameter(
                        name="Idempotency-Key", required=False,
                        max_length=MAX_GRANT_IDEMPOTENCY_KEY)] = None) -> Response[GrantOut]:
        """Add credits to the tenant's wallet; the `Idempotency-Key` header (required, at
        most 216 characters) makes a retry return the first grant."""
        if not idempotency_key:
            raise InvalidRequest("credit grants need an Idempotency-Key header",
                                 code="idempotency_key_required", param="Idempotency-Key")
        return Response(await credits.grant_credits(runtime, tenant_id, data,
                                                    idempotency_key), status_code=201)

    @post("/tenants/{tenant_id:str}/packages", status_code=201,
          summary="Add a credit package to a tenant's offer")
    async def create_package(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                             data: PackageCreate) -> PackageOut:
        """A package of credits the tenant's customers can buy with Stripe Checkout; on sale at
        once."""
        return await packages.create_package(runtime, tenant_id, data, actor=OPERATOR.actor)

    @get("/tenants/{tenant_id:str}/packages", summary="List a tenant's credit packages")
    async def list_packages(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                            limit: FromQuery[int | None] = None,
                            cursor: FromQuery[str | None] = None) -> PackageList:
        """The tenant's packages, retired ones included, cursor-paginated."""
        return await purchases.list_packages(runtime, tenant_id, active_only=False,
                                             limit=limit, cursor=cursor)

    @get("/tenants/{tenant_id:str}/provider_keys",
         summary="A tenant's own provider keys (no secrets)")
    async def list_provider_keys(self, runtime: RuntimeDep,
                                 tenant_id: FromPath[str]) -> ProviderKeyList:
        """Which providers the tenant brings its own key for: provider, hint of the key's end,
        dates; never the key."""
        return await own_provider_keys.list_keys(runtime, tenant_id)

    @put("/tenants/{tenant_id:str}/provider_keys/{provider:str}",
         summary="Set a tenant's own key (and, operator only, endpoint) for a provider")
    async def set_provider_key(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                               provider: FromPath[str], data: ProviderKeyIn) -> ProviderKeyOut:
        """As the tenant's `PUT /v1/provider_keys/{provider}`, plus `base_url`: the
        operator may point the tenant's calls at its own endpoint (a self-hosted engine)."""
        return await own_provider_keys.set_key(runtime, tenant_id, provider, data)

    @delete("/tenants/{tenant_id:str}/provider_keys/{provider:str}", status_code=200,
            summary="Forget a tenant's own key for a provider")
    async def delete_provider_key(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                                  provider: FromPath[str]) -> ProviderKeyDeleted:
        """The tenant's calls to the provider use the platform's key again (if it has one)."""
        return await own_provider_keys.delete_key(runtime, tenant_id, provider)

    @get("/audit_log", summary="The audit log of every tenant, or of one")
    async def audit_log(self, runtime: RuntimeDep,
                        tenant_id: FromQuery[str | None] = None,
                        limit: FromQuery[int | None] = None,
                        cursor: FromQuery[str | None] = None,
                        action: FromQuery[str | None] = None) -> AuditLog:
        """Who changed what in tenants' setups, newest first; `tenant_id` and `action`
        filter."""
        return await list_audit(runtime, tenant_id=tenant_id, limit=page_limit(limit),
                                cursor=cursor, action=action)

    @get("/providers", summary="Every provider's state: health, latency, errors, breaker")
    async def list_providers(self, runtime: RuntimeDep, services: ServicesDep) -> ProviderStateList:
        """The routing state of every installed provider as the gateway sees it."""
        return await operator_view(runtime, services.providers)

    @post("/providers/check", status_code=200, summary="Run the provider health checks now")
    async def check_providers(self, runtime: RuntimeDep,
                              services: ServicesDep) -> ProviderStateList:
        """Call every configured provider's health check (as the schedule does) and answer
        the state afterwards."""
        await health_check_all(runtime, services.providers)
        return await operator_view(runtime, services.providers)

    @post("/providers/{name:str}/reset", status_code=200,
          summary="Close a provider's circuit breaker")
    async def reset_provider(self, runtime: RuntimeDep, services: ServicesDep,
                             name: FromPath[str]) -> ProviderStateList:
        """Close the breaker and clear any Retry-After backoff, in this process and in the
        table (other processes pick it up on their next refresh)."""
        provider = runtime.plugins.get(name)
        if provider is None:
            raise NotFound("no such provider", code="provider_not_found", param="name")
        await services.providers.reset(runtime, provider)
        return await operator_view(runtime, services.providers)
