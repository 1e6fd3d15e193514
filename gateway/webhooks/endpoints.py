"""A tenant's outgoing-webhook setup: its endpoints, their secrets and delivery log. Called
by the `/v1/webhook_endpoints` routes; every query is scoped by the tenant."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from gateway.core.egress import check_url
from gateway.core.runtime import Runtime
from gateway.webhooks import signing
from gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks.schemas import (
    AttemptList,
    AttemptOut,
    Deleted,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    SecretOut,
)
from gateway.webhooks.service import ROTATION_OVERLAP
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, NotFound
from tenants.kernel.pagination import keyset, page
from tenants.models import Tenant


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


async def create(runtime: Runtime, tenant_id: str, body: EndpointCreate) -> EndpointCreated:
    """Register a receiver (its URL refused unless egress may reach it); the answer carries
    its signing secret, shown only here. Refused with `409 webhook_endpoint_limit` when the
    tenant already has `MEDIAHUB_WEBHOOK_MAX_ENDPOINTS`: each endpoint multiplies every
    event's deliveries."""
    await check_url(runtime.egress, body.url, param="url")
    endpoint = WebhookEndpoint(
        id=new_id("whe"), tenant_id=tenant_id, url=body.url,
        events=sorted(set(body.events)), description=body.description,
        secret_salt=secrets.token_hex(32), created_at=utcnow())
    cap = runtime.settings.webhook_max_endpoints
    async with runtime.db.transaction() as session:
        if not runtime.db.is_sqlite:
            # Two creates at once must not both see room for one more: they queue on the
            # tenant's row. (SQLite's BEGIN IMMEDIATE already serialises writers.)
            await session.execute(select(Tenant.id).where(Tenant.id == tenant_id)
                                  .with_for_update())
        count = await session.scalar(select(func.count()).select_from(WebhookEndpoint)
                                     .where(WebhookEndpoint.tenant_id == tenant_id))
        if (count or 0) >= cap:
            raise Conflict(f"a tenant may have at most {cap} webhook endpoints; delete one "
                           "first", code="webhook_endpoint_limit")
        session.add(endpoint)
    secret = signing.endpoint_secret(runtime.settings.secret_key, endpoint.secret_salt)
    return EndpointCreated(id=endpoint.id, url=endpoint.url, events=endpoint.events,
                           description=endpoint.description, created_at=endpoint.created_at,
                           secret=secret)


async def list_page(runtime: Runtime, tenant_id: str, *, limit: int,
                    cursor: str | None) -> EndpointList:
    query = keyset(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id),
                   WebhookEndpoint.created_at, WebhookEndpoint.id, cursor, limit)
    async with runtime.db.session() as session:
        rows, next_cursor = page(list(await session.scalars(query)), limit)
    return EndpointList(data=[_out(e) for e in rows], next_cursor=next_cursor)


async def read(runtime: Runtime, tenant_id: str, endpoint_id: str) -> EndpointOut:
    return _out(await _endpoint(runtime, tenant_id, endpoint_id))


async def remove(runtime: Runtime, tenant_id: str, endpoint_id: str) -> Deleted:
    """Delete it, with its pending deliveries and its delivery log."""
    endpoint = await _endpoint(runtime, tenant_id, endpoint_id)
    async with runtime.db.transaction() as session:
        await session.delete(await session.merge(endpoint))
    return Deleted(id=endpoint_id)


async def rotate_secret(runtime: Runtime, tenant_id: str, endpoint_id: str) -> SecretOut:
    """A new secret (shown once); for `ROTATION_OVERLAP` deliveries carry signatures by
    both."""
    endpoint = await _endpoint(runtime, tenant_id, endpoint_id)
    salt = secrets.token_hex(32)
    expires = utcnow() + ROTATION_OVERLAP
    async with runtime.db.transaction() as session:
        row = await session.merge(endpoint)
        row.previous_secret_salt, row.previous_expires_at = row.secret_salt, expires
        row.secret_salt = salt
    return SecretOut(secret=signing.endpoint_secret(runtime.settings.secret_key, salt),
                     previous_expires_at=expires)


async def deliveries(runtime: Runtime, tenant_id: str, endpoint_id: str, *, limit: int,
                     cursor: str | None) -> AttemptList:
    """Every attempt to deliver an event to the endpoint, newest first."""
    await _endpoint(runtime, tenant_id, endpoint_id)
    query = keyset(select(WebhookAttempt, WebhookDelivery.replay_of)
                   .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                   .where(WebhookAttempt.tenant_id == tenant_id,
                          WebhookAttempt.endpoint_id == endpoint_id),
                   WebhookAttempt.created_at, WebhookAttempt.id, cursor, limit)
    async with runtime.db.session() as session:
        found = (await session.execute(query)).all()
    replays = {attempt.id: replay_of for attempt, replay_of in found}
    rows, next_cursor = page([attempt for attempt, _ in found], limit)
    return AttemptList(
        data=[AttemptOut(id=a.id, delivery_id=a.delivery_id, event_id=a.event_id,
                         event_type=a.event_type, url=a.url, attempt=a.attempt,
                         status_code=a.status_code, error=a.error,
                         duration_ms=a.duration_ms, next_attempt_at=a.next_attempt_at,
                         created_at=a.created_at, replay_of=replays[a.id])
              for a in rows],
        next_cursor=next_cursor)


def url_secret(runtime: Runtime, tenant_id: str) -> SecretOut:
    """The tenant-wide secret that signs deliveries to generations' own `webhook_url`."""
    return SecretOut(secret=signing.url_secret(runtime.settings.secret_key, tenant_id))
