"""Writing webhook events into the outbox, inside the caller's own transaction.

Called by the generations' lifecycle in the transaction that ends a generation.
"""

from __future__ import annotations

from sqlalchemy import exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.webhooks.models import WebhookEndpoint, WebhookEvent
from tenants.kernel.db import new_id, utcnow

#: Generation status → event type.
GENERATION_EVENTS = {"succeeded": "generation.succeeded", "failed": "generation.failed",
                     "canceled": "generation.canceled"}


async def generation_ended(session: AsyncSession, tenant_id: str, generation_id: str,
                           status: str, *, has_webhook_url: bool) -> bool:
    """Record `generation.<status>` in the transaction that ended the generation, so the
    event exists exactly when the new state is committed (nothing lost on a crash).

    Only when someone can receive it (the generation has a `webhook_url`, which the caller
    knows, or the tenant has an endpoint: checked in the same statement), so a tenant
    without webhooks pays no outbox row and no dispatch on every generation. Returns whether
    an event was written (the caller wakes the dispatcher after its commit only then).
    """
    chosen = select(literal(new_id("evt")), literal(tenant_id),
                    literal(GENERATION_EVENTS[status]), literal(generation_id),
                    literal(utcnow(), WebhookEvent.created_at.type))
    if not has_webhook_url:
        chosen = chosen.where(exists().where(WebhookEndpoint.tenant_id == tenant_id))
    written = await session.execute(insert(WebhookEvent).from_select(
        ["id", "tenant_id", "type", "generation_id", "created_at"], chosen))
    return bool(written.rowcount)  # type: ignore[attr-defined]
