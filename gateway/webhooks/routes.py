"""`/v1/webhook_endpoints` and `/v1/webhook_secret`: a tenant's outgoing-webhook setup.

All need a tenant key (not bound to a customer) with the `tenant_admin` scope.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.egress import check_url
from gateway.core.runtime import Runtime
from gateway.webhooks import signing
from gateway.webhooks.models import WebhookAttempt, WebhookEndpoint
from gateway.webhooks.service import ROTATION_OVERLAP
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import NotFound
from tenants.kernel.pagination import keyset, page

EventType = Literal["generation.succeeded", "generation.failed", "generation.canceled",
                    "credits.low"]


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    #: Empty or absent: every event type.
    events: list[EventType] = msgspec.field(default_factory=list)
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class EndpointOut(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    object: str = "webhook_endpoint"


class EndpointCreated(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    #: The `whsec_…` signing secret: shown here (and by rotate_secret) only.
    secret: str
    object: str = "webhook_endpoint"


class EndpointList(msgspec.Struct):
    data: list[EndpointOut]
    next_cursor: str | None
    object: str = "list"


class Deleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: str = "webhook_endpoint"


class SecretOut(msgspec.Struct):
    secret: str
    #: Until when the previous secret still signs too (rotation), if any.
    previous_expires_at: datetime | None = None
    object: str = "webhook_secret"


class AttemptOut(msgspec.Struct):
    id: str
    delivery_id: str
    event_id: str
    event_type: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None
    created_at: datetime
    object: str = "webhook_delivery_attempt"


class AttemptList(msgspec.Struct):
    data: list[AttemptOut]
    next_cursor: str | None
    object: str = "list"


async def _endpoint(runtime: Runtime, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    async with runtime.db.session() as session:
        found = await session.scalar(select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id))
    if found is None:
        raise NotFound("no such webhook endpoint", code="webhook_endpoint_not_found",
                       param="id")
    return found


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(id=endpoint.id, url=endpoint.url, events=endpoint.events,
                       description=endpoint.description, created_at=endpoint.created_at)


class WebhookEndpointController(Controller):
    path = "/v1/webhook_endpoints"
    tags = ["webhooks"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @post("/", status_code=201, summary="Create a webhook endpoint")
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: EndpointCreate) -> EndpointCreated:
        """Register a receiver; the answer carries its signing secret, shown only here."""
        tenant_id = principal.tenant
        await check_url(runtime.egress, data.url, param="url")
        endpoint = WebhookEndpoint(
            id=new_id("whe"), tenant_id=tenant_id, url=data.url,
            events=sorted(set(data.events)), description=data.description,
            secret_salt=secrets.token_hex(32), created_at=utcnow())
        async with runtime.db.transaction() as session:
            session.add(endpoint)
        secret = signing.endpoint_secret(runtime.settings.secret_key, endpoint.secret_salt)
        return EndpointCreated(id=endpoint.id, url=endpoint.url, events=endpoint.events,
                               description=endpoint.description,
                               created_at=endpoint.created_at, secret=secret)

    @get("/", summary="List webhook endpoints, newest first")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> EndpointList:
        tenant_id = principal.tenant
        size = page_limit(limit)
        query = keyset(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id),
                       WebhookEndpoint.created_at, WebhookEndpoint.id, cursor, size)
        async with runtime.db.session() as session:
            rows, next_cursor = page(list(await session.scalars(query)), size)
        return EndpointList(data=[_out(e) for e in rows], next_cursor=next_cursor)

    @get("/{endpoint_id:str}", summary="Read a webhook endpoint")
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   endpoint_id: FromPath[str]) -> EndpointOut:
        tenant_id = principal.tenant
        return _out(await _endpoint(runtime, tenant_id, endpoint_id))

    @delete("/{endpoint_id:str}", status_code=200, summary="Delete a webhook endpoint")
    async def remove(self, principal: Principal, runtime: RuntimeDep,
                     endpoint_id: FromPath[str]) -> Deleted:
        """Delete it, with its pending deliveries and its delivery log."""
        tenant_id = principal.tenant
        endpoint = await _endpoint(runtime, tenant_id, endpoint_id)
        async with runtime.db.transaction() as session:
            await session.delete(await session.merge(endpoint))
        return Deleted(id=endpoint_id)

    @post("/{endpoint_id:str}/rotate_secret", status_code=200,
          summary="Rotate an endpoint's signing secret")
    async def rotate(self, principal: Principal, runtime: RuntimeDep,
                     endpoint_id: FromPath[str]) -> SecretOut:
        """A new secret (shown once); for 24 h deliveries carry signatures by both."""
        tenant_id = principal.tenant
        endpoint = await _endpoint(runtime, tenant_id, endpoint_id)
        salt = secrets.token_hex(32)
        expires = utcnow() + ROTATION_OVERLAP
        async with runtime.db.transaction() as session:
            row = await session.merge(endpoint)
            row.previous_secret_salt, row.previous_expires_at = row.secret_salt, expires
            row.secret_salt = salt
        return SecretOut(secret=signing.endpoint_secret(runtime.settings.secret_key, salt),
                         previous_expires_at=expires)

    @get("/{endpoint_id:str}/deliveries", summary="An endpoint's delivery log, newest first")
    async def deliveries(self, principal: Principal, runtime: RuntimeDep,
                         endpoint_id: FromPath[str], limit: FromQuery[int | None] = None,
                         cursor: FromQuery[str | None] = None) -> AttemptList:
        """Every attempt to deliver an event to this endpoint: the event, the attempt number,
        the receiver's status code or the error, and when the next attempt is due."""
        tenant_id = principal.tenant
        await _endpoint(runtime, tenant_id, endpoint_id)
        size = page_limit(limit)
        query = keyset(select(WebhookAttempt).where(WebhookAttempt.tenant_id == tenant_id,
                                                    WebhookAttempt.endpoint_id == endpoint_id),
                       WebhookAttempt.created_at, WebhookAttempt.id, cursor, size)
        async with runtime.db.session() as session:
            rows, next_cursor = page(list(await session.scalars(query)), size)
        return AttemptList(
            data=[AttemptOut(id=a.id, delivery_id=a.delivery_id, event_id=a.event_id,
                             event_type=a.event_type, url=a.url, attempt=a.attempt,
                             status_code=a.status_code, error=a.error,
                             duration_ms=a.duration_ms, next_attempt_at=a.next_attempt_at,
                             created_at=a.created_at) for a in rows],
            next_cursor=next_cursor)


@get("/v1/webhook_secret", summary="The secret that signs per-request webhook_url deliveries",
     tags=["webhooks"], guards=[requires("tenant_admin", tenant_wide=True)])
async def webhook_url_secret(principal: Principal, runtime: RuntimeDep) -> SecretOut:
    """Deliveries to a generation's own `webhook_url` are signed with this tenant-wide
    `whsec_…` secret (derived from the server's secret key; stable until it changes)."""
    tenant_id = principal.tenant
    return SecretOut(secret=signing.url_secret(runtime.settings.secret_key, tenant_id))
