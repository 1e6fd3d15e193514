"""`/v1/tenant`, `/v1/tenant/domains`, `/v1/audit_log`: a tenant's owners and admins (an
owner/admin session or a `tenant_admin` key not bound to a customer) manage the tenant
themselves, and `/v1/tenants/{id}/branding/{name}` serves its brand images to anyone.
Thin: each handler calls one service function (docs/reseller.md)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery

from gateway.core.auth import Principal, requires, staff_or_key
from gateway.core.deps import RuntimeDep, page_limit
from gateway.generations.services import ServicesDep
from gateway.tenancy import assets, domains, pricing_example, tenant_settings
from gateway.tenancy.assets import AssetDeleted
from gateway.tenancy.audit_log import list_audit
from gateway.tenancy.domains import DomainDeleted, DomainIn, DomainList, DomainOut
from gateway.tenancy.pricing_example import PricingExample, PricingExampleIn
from gateway.tenancy.tenant_settings import TenantSelfUpdate
from tenants.audit import AuditLog
from tenants.branding import Branding
from tenants.schemas import TenantOut

#: Brand images change rarely and their URLs carry a content version (`?v=`).
_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600",
                  "X-Content-Type-Options": "nosniff",
                  "Content-Security-Policy": "default-src 'none'; sandbox"}


class TenantSelfController(Controller):
    path = "/v1/tenant"
    tags = ["self-service"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @get("/", summary="The caller's tenant and its settings")
    async def read(self, principal: Principal, runtime: RuntimeDep) -> TenantOut:
        """The tenant as the operator sees it: name, branding, pricing, rate limits,
        routing, cache policy, domains, and the operator's `caps` (read-only)."""
        return await tenant_settings.read_own_tenant(runtime, principal.tenant)

    @patch("/", summary="Change the caller's tenant, within the operator's caps")
    async def update(self, principal: Principal, runtime: RuntimeDep,
                     data: TenantSelfUpdate) -> TenantOut:
        """Fields left out stay; each object sent replaces that object. A rate limit above
        the operator's ceiling (or 0, no limit, under one) is a 422 `over_cap` naming the
        field; a provider the operator does not permit, a 422 `provider_not_permitted`.
        Applies at once; audited as `tenant.updated`."""
        return await tenant_settings.update_own_tenant(runtime, principal.tenant, principal.actor,
                                                 data)

    @put("/branding/{name:str}", summary="Upload a brand image (logo, favicon, icon)")
    async def put_asset(self, principal: Principal, runtime: RuntimeDep,
                        request: Request[Any, Any, Any], name: FromPath[str]) -> Branding:
        """The raw image is the body, its type the `Content-Type` (image/png, image/jpeg,
        image/webp or image/x-icon; SVG is refused). At most 1 MiB (else 413
        `asset_too_large`) and 4096 px a side; a body that is not the image it claims is a
        422 `invalid_image`. Answers the tenant's branding, the image's public `url` in it."""
        assets.check_size(request.headers.get("content-length"))
        body = await request.body()
        return await assets.put_asset(runtime, principal.tenant, principal.actor, name,
                                      request.headers.get("content-type", ""), body)

    @delete("/branding/{name:str}", status_code=200, summary="Remove a brand image")
    async def delete_asset(self, principal: Principal, runtime: RuntimeDep,
                           name: FromPath[str]) -> AssetDeleted:
        """The image is no longer served; 404 when the tenant has none."""
        return await assets.delete_asset(runtime, principal.tenant, principal.actor, name)

    @get("/domains", summary="The tenant's custom domains")
    async def list_domains(self, principal: Principal, runtime: RuntimeDep) -> DomainList:
        """Pending and verified; a pending one carries its verification instructions."""
        return await domains.list_domains(runtime, principal.tenant)

    @post("/domains", status_code=201, summary="Add a custom domain (pending)")
    async def add_domain(self, principal: Principal, runtime: RuntimeDep,
                         data: DomainIn) -> DomainOut:
        """The domain serves nothing until verified: serve `verification.token` at
        `verification.url`, then call `/verify`. 409 `domain_taken` when the hostname is
        anyone's already; 422 `domain_limit_reached` past the operator's `max_domains`."""
        return await domains.add_domain(runtime, principal.tenant, principal.actor, data)

    @post("/domains/{hostname:str}/verify", status_code=200,
          summary="Verify a custom domain")
    async def verify_domain(self, principal: Principal, runtime: RuntimeDep,
                            hostname: FromPath[str]) -> DomainOut:
        """The gateway fetches `http://<hostname>/.well-known/mediahub-verification` and
        compares the body with the token; a 422 `domain_verification_failed` says what it
        found (unreachable, an HTTP status, another body)."""
        return await domains.verify_domain(runtime, principal.tenant, principal.actor,
                                           hostname)

    @delete("/domains/{hostname:str}", status_code=200, summary="Remove a custom domain")
    async def delete_domain(self, principal: Principal, runtime: RuntimeDep,
                            hostname: FromPath[str]) -> DomainDeleted:
        """The hostname stops serving the tenant at once."""
        return await domains.delete_domain(runtime, principal.tenant, principal.actor,
                                           hostname)


@post("/v1/tenant/pricing/example", status_code=200, tags=["self-service"],
      summary="A worked example of the tenant's pricing",
      guards=[staff_or_key(roles=("owner", "admin", "billing"), scopes=("tenant_admin",))])
async def pricing_example_route(principal: Principal, services: ServicesDep,
                                data: PricingExampleIn) -> PricingExample:
    """How the price of one request is made for a customer of `tier` (default `standard`):
    the provider's cost in USD micros, the wholesale price (the platform's markup) and the
    retail price (the tenant's markups for the media type and the tier), each step with its
    arithmetic. Priced by the very code `POST /v1/generations/estimate` uses, so the two
    always agree. An owner, admin or billing session, or a `tenant_admin` key; 422 for
    params no provider accepts, 503 when none can serve the request now."""
    return await pricing_example.example(services, principal.tenant, data)


class AuditLogController(Controller):
    path = "/v1/audit_log"
    tags = ["self-service"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @get("/", summary="The tenant's audit log")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None,
                    action: FromQuery[str | None] = None) -> AuditLog:
        """Who (`user:<id>`, `key:<id>` or `operator`) changed what in this tenant's setup,
        with before and after; newest first, `action` (e.g. `tenant.updated`) filters."""
        return await list_audit(runtime, tenant_id=principal.tenant,
                                limit=page_limit(limit), cursor=cursor, action=action)


class BrandAssetController(Controller):
    path = "/v1/tenants"
    tags = ["self-service"]

    @get("/{tenant_id:str}/branding/{name:str}", summary="A tenant's brand image (public)")
    async def read_asset(self, runtime: RuntimeDep, tenant_id: FromPath[str],
                         name: FromPath[str]) -> Response[bytes]:
        """No credential needed (the sign-in page shows the logo): `logo`, `favicon` or
        `icon`; 404 when the tenant has none."""
        data, content_type = await assets.read_asset(runtime, tenant_id, name)
        return Response(data, media_type=content_type, headers=_ASSET_HEADERS)
