"""Writing webhook events into the outbox, inside the caller's own transaction.

Imported by the generation service and pipeline; it depends only on the models, so the
generation code does not import the delivery machinery (which renders generations).
"""

from __future__ import annotations

from sqlalchemy import exists, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.generations.models import Generation
from gateway.webhooks.models import WebhookEndpoint, WebhookEvent
from tenants.kernel.db import new_id, utcnow

#: Generation status → event type.
GENERATION_EVENTS = {"succeeded": "generation.succeeded", "failed": "generation.failed",
                     "canceled": "generation.canceled"}


async def generation_ended(session: AsyncSession, tenant_id: str, generation_id: str,
                           status: str) -> bool:
    """Record `generation.<status>` in the transaction that ended the generation, so the
    event exists exactly when the new state is committed (nothing lost on a crash).

    Only when someone can receive it (the tenant has an endpoint, or the generation a
    `webhook_url`): checked in the same statement, so a tenant without webhooks pays no
    outbox row and no dispatch on every generation. Returns whether an event was written
    (the caller wakes the dispatcher after its commit only then).
    """
    listened = or_(
        exists().where(WebhookEndpoint.tenant_id == tenant_id),
        exists().where(Generation.id == generation_id, Generation.tenant_id == tenant_id,
                       Generation.webhook_url.is_not(None)))
    written = await session.execute(insert(WebhookEvent).from_select(
        ["id", "tenant_id", "type", "generation_id", "created_at"],
        select(literal(new_id("evt")), literal(tenant_id), literal(GENERATION_EVENTS[status]),
               literal(generation_id), literal(utcnow(), WebhookEvent.created_at.type))
        .where(listened)))
    return bool(written.rowcount)  # type: ignore[attr-defined]
