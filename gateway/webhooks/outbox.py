"""Writing webhook events into the outbox, inside the caller's own transaction.

Called by the generations' lifecycle in the transaction that ends a generation.
"""

from __future__ import annotations

from sqlalchemy import Exists, exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.webhooks.models import WebhookEndpoint, WebhookEvent
from tenants.kernel.db import new_id, utcnow

#: Generation status → event type.
GENERATION_EVENTS = {"succeeded": "generation.succeeded", "failed": "generation.failed",
                     "canceled": "generation.canceled"}


def has_endpoint(tenant_id: str) -> Exists:
    """Whether the tenant has a webhook endpoint, as a column: what `lifecycle.end` reads in
    the RETURNING of the UPDATE that ends a generation, so the outbox needs no statement of
    its own when nobody listens."""
    return exists().where(WebhookEndpoint.tenant_id == tenant_id)


async def generation_ended(session: AsyncSession, tenant_id: str, generation_id: str,
                           status: str, *, has_webhook_url: bool,
                           tenant_has_endpoint: bool | None = None) -> bool:
    """Record `generation.<status>` in the transaction that ended the generation, so the
    event exists exactly when the new state is committed (nothing lost on a crash).

    Only when someone can receive it (the generation has a `webhook_url`, which the caller
    knows, or the tenant has an endpoint: `tenant_has_endpoint` when the caller read it in
    this transaction (`has_endpoint`), else checked in the same statement), so a tenant
    without webhooks pays no outbox row and no dispatch on every generation. Returns whether
    an event was written (the caller wakes the dispatcher after its commit only then).
    """
    if not has_webhook_url and tenant_has_endpoint is False:
        return False
    chosen = select(literal(new_id("evt")), literal(tenant_id),
                    literal(GENERATION_EVENTS[status]), literal(generation_id),
                    literal(utcnow(), WebhookEvent.created_at.type))
    if not has_webhook_url and tenant_has_endpoint is None:
        chosen = chosen.where(has_endpoint(tenant_id))
    written = await session.execute(insert(WebhookEvent).from_select(
        ["id", "tenant_id", "type", "generation_id", "created_at"], chosen))
    return bool(written.rowcount)  # type: ignore[attr-defined]
