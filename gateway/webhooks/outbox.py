"""Writing webhook events into the outbox, inside the caller's own transaction.

Imported by the generation service and pipeline; it depends only on the models, so the
generation code does not import the delivery machinery (which renders generations).
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.webhooks.models import WebhookEvent
from tenants.db import new_id, utcnow

#: Generation status → event type.
GENERATION_EVENTS = {"succeeded": "generation.succeeded", "failed": "generation.failed",
                     "canceled": "generation.canceled"}


async def generation_ended(session: AsyncSession, tenant_id: str, generation_id: str,
                           status: str) -> None:
    """Record `generation.<status>` in the transaction that ended the generation, so the
    event exists exactly when the new state is committed (nothing lost on a crash)."""
    await session.execute(insert(WebhookEvent).values(
        id=new_id("evt"), tenant_id=tenant_id, type=GENERATION_EVENTS[status],
        generation_id=generation_id, created_at=utcnow()))
