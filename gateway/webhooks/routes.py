"""`/v1/webhook_endpoints` and `/v1/webhook_secret`: a tenant's outgoing-webhook setup.

All need a tenant key (not bound to a customer) with the `tenant_admin` scope.
"""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.webhooks import endpoints
from gateway.webhooks.schemas import (
    AttemptList,
    Deleted,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    SecretOut,
)
from gateway.webhooks.service import WebhooksDep


class WebhookEndpointController(Controller):
    path = "/v1/webhook_endpoints"
    tags = ["webhooks"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @post("/", status_code=201, summary="Create a webhook endpoint")
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: EndpointCreate) -> EndpointCreated:
        """Register a receiver; the answer carries its signing secret, shown only here.

        `409 webhook_endpoint_limit` when the tenant already has as many endpoints as the
        operator allows (`MEDIAHUB_WEBHOOK_MAX_ENDPOINTS`, 20 by default)."""
        return await endpoints.create(runtime, principal.tenant, data)

    @get("/", summary="List webhook endpoints, newest first")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> EndpointList:
        """The tenant's webhook endpoints, newest first, cursor-paginated; secrets are never
        shown again."""
        return await endpoints.list_page(runtime, principal.tenant, limit=page_limit(limit),
                                         cursor=cursor)

    @get("/{endpoint_id:str}", summary="Read a webhook endpoint")
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   endpoint_id: FromPath[str]) -> EndpointOut:
        """One of the tenant's webhook endpoints (its URL, events, state); another tenant's is
        404."""
        return await endpoints.read(runtime, principal.tenant, endpoint_id)

    @delete("/{endpoint_id:str}", status_code=200, summary="Delete a webhook endpoint")
    async def remove(self, principal: Principal, runtime: RuntimeDep,
                     endpoint_id: FromPath[str]) -> Deleted:
        """Delete it, with its pending deliveries and its delivery log."""
        return await endpoints.remove(runtime, principal.tenant, endpoint_id)

    @post("/{endpoint_id:str}/rotate_secret", status_code=200,
          summary="Rotate an endpoint's signing secret")
    async def rotate(self, principal: Principal, runtime: RuntimeDep,
                     endpoint_id: FromPath[str]) -> SecretOut:
        """A new secret (shown once); for 24 h deliveries carry signatures by both."""
        return await endpoints.rotate_secret(runtime, principal.tenant, endpoint_id)

    @get("/{endpoint_id:str}/deliveries", summary="An endpoint's delivery log, newest first")
    async def deliveries(self, principal: Principal, runtime: RuntimeDep,
                         endpoint_id: FromPath[str], limit: FromQuery[int | None] = None,
                         cursor: FromQuery[str | None] = None) -> AttemptList:
        """Every attempt to deliver an event to this endpoint: the event, the attempt number,
        the receiver's status code or the error, and when the next attempt is due."""
        return await endpoints.deliveries(runtime, principal.tenant, endpoint_id,
                                          limit=page_limit(limit), cursor=cursor)


@post("/v1/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/replay", status_code=202,
      summary="Send a webhook delivery again", tags=["webhooks"],
      guards=[requires("tenant_admin", tenant_wide=True)])
async def replay_delivery(principal: Principal, webhooks: WebhooksDep,
                          endpoint_id: FromPath[str], delivery_id: FromPath[str]) -> DeliveryOut:
    """Queue a new delivery of the same event with the same body to the endpoint (`202`,
    the new delivery, `replay_of` naming the one replayed), whatever became of the first:
    signed when it is sent with a fresh timestamp and the endpoint's current secret, retried
    like any delivery. The `webhook-id` header is the event's id, as on the first delivery.
    Another tenant's endpoint or delivery is 404 `webhook_delivery_not_found`. Audited as
    `webhook_delivery.replayed`."""
    return await webhooks.replay(principal.tenant, endpoint_id, delivery_id,
                                 actor=principal.actor)


@get("/v1/webhook_secret", summary="The secret that signs per-request webhook_url deliveries",
     tags=["webhooks"], guards=[requires("tenant_admin", tenant_wide=True)])
async def webhook_url_secret(principal: Principal, runtime: RuntimeDep) -> SecretOut:
    """Deliveries to a generation's own `webhook_url` are signed with this tenant-wide
    `whsec_…` secret (derived from the server's secret key; stable until it changes)."""
    return endpoints.url_secret(runtime, principal.tenant)
