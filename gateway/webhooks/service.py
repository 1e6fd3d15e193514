"""Dispatching and delivering outgoing webhooks.

1. **Outbox.** Events are rows in `webhook_events`, written in the transaction that made them
   (`outbox.generation_ended`; `credits.low` rows are copied from the ledger's own outbox,
   `ledger_events`, under the same id).
2. **Dispatch** (`Webhooks.dispatch_pending`, woken after a commit and run by the sweeper
   every 30 s as a safety net): each undispatched event is claimed with a conditional UPDATE
   (so one process fans it out), its body rendered once, and one delivery row written per
   target: each of the tenant's endpoints subscribed to the type, and the generation's own
   `webhook_url`. Then a job per delivery is queued.
3. **Delivery** (`Webhooks.deliver`, the job): the attempt is claimed (the delivery's
   `attempts` counter moves n → n+1 once, so a duplicate job sends nothing), the body is
   signed and POSTed through the egress guard, the attempt is logged, and the delivery
   becomes `succeeded` (2xx), `failed` (a final answer, or the last attempt) or stays
   `pending` with the next attempt queued after an exponential back-off with jitter.
   Retried: 5xx, 408, 429 (its `Retry-After` honoured), timeouts and connection errors.

The queue is SAQ (`<prefix>:webhooks`, worked by every `mediahub worker`) with Valkey, or an
in-process scheduler when embedded; either way tenants share the sending slots fairly (no
tenant has more than `MEDIAHUB_WEBHOOK_MAX_IN_FLIGHT` attempts in flight, see `queues`). The
database is the source of truth: a delivery whose job was lost is picked up by
`redeliver_overdue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar.di import NamedDependency
from saq import Worker
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import LedgerEvent
from gateway.core.egress import EgressError, UrlNotAllowed
from gateway.core.metrics import instruments
from gateway.core.runtime import Runtime
from gateway.webhooks import signing
from gateway.webhooks.models import (
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from gateway.webhooks.queues import (
    DELIVER_WEBHOOK,
    InProcessWebhookQueue,
    SaqWebhookQueue,
    WebhookQueue,
)
from gateway.webhooks.schemas import DeliveryOut
from plugins.errors import parse_retry_after
from tenants import audit
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import NotFound

log = logging.getLogger(__name__)

#: Previous secret's lifetime after a rotation (it keeps signing beside the new one).
ROTATION_OVERLAP = timedelta(hours=24)
#: A job that has not run this long after its delivery was due is presumed lost.
_OVERDUE = timedelta(seconds=60)
_BATCH = 100


def build_webhook_worker(queue: SaqWebhookQueue, webhooks: Webhooks, *,
                         concurrency: int) -> Worker[Any]:
    """A SAQ worker for the webhooks queue, delivering with `webhooks`."""

    async def deliver(ctx: dict[str, Any], *, delivery_id: str, tenant_id: str | None = None,
                      refused: int = 0) -> None:
        # Jobs queued before the tenant rode along carry none: it is looked up then.
        await webhooks.deliver_in_turn(queue, delivery_id, tenant_id, refused=refused)

    return Worker(queue.queue, functions=[(DELIVER_WEBHOOK, deliver)],
                  concurrency=concurrency, shutdown_grace_period_s=0)


def backoff_s(attempt: int, *, base_ms: int, max_s: int) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), capped, times a jitter in
    [0.5, 1] so receivers recovering from an outage are not hit by every sender at once."""
    delay = min(base_ms / 1000 * 2 ** (attempt - 1), float(max_s))
    return float(delay * random.uniform(0.5, 1.0))


def _retryable(status_code: int) -> bool:
    return status_code >= 500 or status_code in (408, 429)


#: Renders a generation event's `data` and tells its per-request `webhook_url`, inside the
#: fan-out's transaction: `(session, tenant_id, generation_id)` → `(data, webhook_url)`, or
#: None when the generation is gone. Given by the generations package, which owns the view.
GenerationPayload = Callable[[AsyncSession, str, str],
                             Awaitable[tuple[Any, str | None] | None]]


class Webhooks:
    """The process's webhook sender, built by its entry point (`Services.webhooks`)."""

    def __init__(self, runtime: Runtime, generation_payload: GenerationPayload) -> None:
        self.runtime = runtime
        self.generation_payload = generation_payload
        settings = runtime.settings
        self.queue: WebhookQueue
        if settings.valkey_url:
            self.queue = SaqWebhookQueue(settings.valkey_url, prefix=settings.queue_prefix,
                                         timeout_s=settings.webhook_timeout_s,
                                         per_tenant=settings.webhook_max_in_flight)
        else:
            self.queue = InProcessWebhookQueue(
                self.deliver, concurrency=settings.webhook_concurrency,
                per_tenant=settings.webhook_max_in_flight)
        self._dispatching: asyncio.Task[None] | None = None
        self._again = False

    # -- dispatch ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Dispatch new outbox events soon; called right after a commit that wrote one.

        Never blocks the caller and never raises: the sweeper's periodic dispatch catches
        anything a failed wake-up left behind.
        """
        if self._dispatching is not None and not self._dispatching.done():
            self._again = True
            return
        self._dispatching = asyncio.create_task(self._dispatch_until_idle())

    async def _dispatch_until_idle(self) -> None:
        while True:
            self._again = False
            try:
                await self.dispatch_pending()
            except Exception:
                log.exception("webhook dispatch failed")
            if not self._again:
                return

    async def idle(self) -> None:
        """Wait for a running dispatch, then (embedded) for every delivery attempt."""
        while self._dispatching is not None and not self._dispatching.done():
            await self._dispatching
        drain = getattr(self.queue, "drain", None)
        if drain is not None:
            await drain()
            if self._dispatching is not None and not self._dispatching.done():
                await self.idle()

    async def dispatch_pending(self) -> int:
        """Fan out every undispatched event; returns how many deliveries were queued."""
        await self._import_ledger_events()
        queued = 0
        while True:
            async with self.runtime.db.session() as session:
                ids = list(await session.scalars(
                    select(WebhookEvent.id).where(WebhookEvent.dispatched_at.is_(None))
                    .order_by(WebhookEvent.created_at).limit(_BATCH)))
            for event_id in ids:
                tenant_id, delivery_ids = await self._fan_out(event_id)
                for delivery_id in delivery_ids:
                    await self.queue.schedule(tenant_id, delivery_id, 1, 0)
                    queued += 1
            if len(ids) < _BATCH:
                return queued

    async def _import_ledger_events(self) -> None:
        """Copy new `ledger_events` (credits.low) into the outbox under their own ids."""
        async with self.runtime.db.transaction() as session:
            rows = list(await session.scalars(
                select(LedgerEvent)
                .where(~exists().where(WebhookEvent.id == LedgerEvent.id))
                .order_by(LedgerEvent.created_at).limit(_BATCH)))
            for row in rows:
                await session.execute(_insert_ignoring_duplicates(
                    self.runtime.db.is_sqlite,
                    {"id": row.id, "tenant_id": row.tenant_id, "type": row.type,
                     "payload": row.payload, "created_at": row.created_at}))

    async def _fan_out(self, event_id: str) -> tuple[str, list[str]]:
        """Claim one event and write its deliveries; returns its tenant and their ids (none
        when another process claimed it first)."""
        now = utcnow()
        async with self.runtime.db.transaction() as session:
            claimed = await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.dispatched_at.is_(None))
                .values(dispatched_at=now))
            if claimed.rowcount == 0:  # type: ignore[attr-defined]
                return "", []
            event = await session.get(WebhookEvent, event_id)
            assert event is not None
            data: Any = event.payload or {}
            targets: list[tuple[str | None, str]] = []
            if event.generation_id is not None:
                found = await self.generation_payload(session, event.tenant_id,
                                                      event.generation_id)
                if found is not None:
                    data, webhook_url = found
                    if webhook_url:
                        targets.append((None, webhook_url))
            endpoints = await session.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.tenant_id == event.tenant_id))
            targets[:0] = [(e.id, e.url) for e in endpoints
                           if not e.events or event.type in e.events]
            event.body = msgspec.json.encode({
                "id": event.id, "type": event.type,
                "created_at": event.created_at.isoformat(), "data": data}).decode()
            ids = []
            for endpoint_id, url in targets:
                delivery_id = new_id("whd")
                ids.append(delivery_id)
                session.add(WebhookDelivery(
                    id=delivery_id, tenant_id=event.tenant_id, event_id=event.id,
                    endpoint_id=endpoint_id, url=url, status=PENDING, attempts=0,
                    next_attempt_at=now, created_at=now, updated_at=now))
        return event.tenant_id, ids

    async def replay(self, tenant_id: str, endpoint_id: str, delivery_id: str, *,
                     actor: str) -> DeliveryOut:
        """Send one of an endpoint's deliveries again (`POST /v1/webhooks/{endpoint_id}/
        deliveries/{delivery_id}/replay`): a new delivery of the same event and body to the
        same URL, `replay_of` the original, signed when it is sent (a fresh timestamp, the
        endpoint's current secret) and sent through the normal queue with its retries. The
        `webhook-id` stays the event's, so a receiver that already handled it can tell.
        Another tenant's or endpoint's delivery is 404; audited as
        `webhook_delivery.replayed`. Returns the new delivery as written (`pending`)."""
        now = utcnow()
        async with self.runtime.db.transaction() as session:
            original = await session.scalar(select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.tenant_id == tenant_id,
                WebhookDelivery.endpoint_id == endpoint_id))
            if original is None:
                raise NotFound("no such delivery for this webhook endpoint",
                               code="webhook_delivery_not_found", param="delivery_id")
            replayed = WebhookDelivery(
                id=new_id("whd"), tenant_id=tenant_id, event_id=original.event_id,
                endpoint_id=endpoint_id, url=original.url, status=PENDING, attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now, replay_of=original.id)
            session.add(replayed)
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="webhook_delivery.replayed",
                               target_type="webhook_delivery", target_id=replayed.id,
                               after={"replay_of": original.id, "event_id": original.event_id,
                                      "endpoint_id": endpoint_id})
            event_type = await session.scalar(select(WebhookEvent.type).where(
                WebhookEvent.id == original.event_id))
        await self.queue.schedule(tenant_id, replayed.id, 1, 0)
        return DeliveryOut(id=replayed.id, endpoint_id=endpoint_id,
                           event_id=replayed.event_id, event_type=event_type or "",
                           url=replayed.url, status=replayed.status,
                           attempts=replayed.attempts, replay_of=replayed.replay_of,
                           created_at=replayed.created_at)

    async def redeliver_overdue(self) -> int:
        """Queue again the pending deliveries whose job seems lost (a restart, a lost
        Valkey); returns how many. A duplicate job is harmless: attempts are claimed."""
        cutoff = utcnow() - _OVERDUE
        async with self.runtime.db.session() as session:
            rows = (await session.execute(
                select(WebhookDelivery.tenant_id, WebhookDelivery.id,
                       WebhookDelivery.attempts)
                .where(WebhookDelivery.status == PENDING,
                       WebhookDelivery.next_attempt_at < cutoff)
                .limit(_BATCH))).all()
        for tenant_id, delivery_id, attempts in rows:
            await self.queue.schedule(tenant_id, delivery_id, attempts + 1, 0)
        return len(rows)

    async def sweep(self) -> None:
        """The periodic safety net: dispatch what no wake-up did, requeue lost jobs, and
        forget what is past its retention."""
        await self.dispatch_pending()
        await self.redeliver_overdue()
        days = self.runtime.settings.webhook_retention_days
        if days:
            await self.prune(utcnow() - timedelta(days=days))

    async def prune(self, before: datetime) -> int:
        """Delete events created before `before` whose deliveries have all ended (their
        deliveries and delivery log go with them), and the `credits.low` ledger events they
        were copied from; returns how many events. An event still being delivered stays."""
        deleted = 0
        while True:
            async with self.runtime.db.transaction() as session:
                ids = list(await session.scalars(
                    select(WebhookEvent.id)
                    .where(WebhookEvent.created_at < before,
                           WebhookEvent.dispatched_at.is_not(None),
                           ~exists().where(WebhookDelivery.event_id == WebhookEvent.id,
                                           WebhookDelivery.status == PENDING))
                    .limit(_BATCH)))
                if not ids:
                    return deleted
                # The ledger's copy first: with the event gone it would be imported again.
                await session.execute(delete(LedgerEvent).where(LedgerEvent.id.in_(ids)))
                await session.execute(delete(WebhookAttempt).where(
                    WebhookAttempt.event_id.in_(ids)))
                await session.execute(delete(WebhookDelivery).where(
                    WebhookDelivery.event_id.in_(ids)))
                await session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
            deleted += len(ids)

    # -- delivery ---------------------------------------------------------------------------

    async def _secrets(self, delivery: WebhookDelivery) -> list[str]:
        key = self.runtime.settings.secret_key
        if delivery.endpoint_id is None:
            return [signing.url_secret(key, delivery.tenant_id)]
        async with self.runtime.db.session() as session:
            endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None:
            return []
        found = [signing.endpoint_secret(key, endpoint.secret_salt)]
        if (endpoint.previous_secret_salt and endpoint.previous_expires_at
                and endpoint.previous_expires_at > utcnow()):
            found.append(signing.endpoint_secret(key, endpoint.previous_secret_salt))
        return found

    async def _claim(self, delivery_id: str) -> tuple[WebhookDelivery, WebhookEvent] | None:
        """Take the next attempt of a due, pending delivery, once; None otherwise."""
        now = utcnow()
        lease = timedelta(seconds=self.runtime.settings.webhook_timeout_s + 30)
        async with self.runtime.db.transaction() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != PENDING:
                return None
            if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(
                    seconds=0.5):
                return None  # not due: the job for the due attempt is queued
            claimed = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
                       WebhookDelivery.attempts == delivery.attempts)
                .values(attempts=delivery.attempts + 1, next_attempt_at=now + lease,
                        updated_at=now)
                .execution_options(synchronize_session=False))
            if claimed.rowcount == 0:  # type: ignore[attr-defined]
                return None
            event = await session.get(WebhookEvent, delivery.event_id)
        if event is None or event.body is None:
            return None
        delivery.attempts += 1  # detached now: the claimed number, for this attempt only
        return delivery, event

    async def deliver_in_turn(self, queue: SaqWebhookQueue, delivery_id: str,
                              tenant_id: str | None, *, refused: int = 0) -> None:
        """The SAQ job: one attempt when its tenant is under its in-flight cap, else queued
        again a moment later (later each time: `refused` counts the times before); either
        way the worker's slot is free again at once for other tenants' jobs, so one
        tenant's slow receivers cannot hold them all."""
        if tenant_id is None:
            async with self.runtime.db.session() as session:
                tenant_id = await session.scalar(select(WebhookDelivery.tenant_id).where(
                    WebhookDelivery.id == delivery_id))
            if tenant_id is None:
                return  # gone with its endpoint or its event
        token = await queue.slots.acquire(tenant_id)
        if token is None:
            await queue.defer(tenant_id, delivery_id, refused)
            return
        try:
            await self.deliver(delivery_id)
        finally:
            await queue.slots.release(tenant_id, token)

    async def deliver(self, delivery_id: str) -> None:
        """One attempt of one delivery: the job SAQ (or the in-process queue) runs."""
        claimed = await self._claim(delivery_id)
        if claimed is None:
            return
        delivery, event = claimed
        settings = self.runtime.settings
        body = (event.body or "").encode()
        secrets = await self._secrets(delivery)
        if not secrets:
            return  # the endpoint was deleted (its deliveries with it)
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "mediahub-webhooks/1",
                   "webhook-id": event.id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": signing.signature_header(secrets, event.id, timestamp,
                                                                 body)}
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            posted = await self.runtime.egress.post(delivery.url, body, headers,
                                                    timeout_s=settings.webhook_timeout_s)
            status_code = posted.status_code
            ok = 200 <= status_code < 300
            retryable = _retryable(status_code)
            error = None if ok else f"HTTP {status_code}"
            if status_code == 429:
                retry_after = parse_retry_after(posted.headers.get("retry-after"))
        except UrlNotAllowed as exc:
            # The name now resolves somewhere private: refuse for good.
            ok, retryable, error = False, False, f"{exc.code}: {exc.message}"
        except EgressError as exc:
            ok, retryable, error = False, True, f"{exc.code}: {exc.message}"
        duration_ms = round((time.monotonic() - started) * 1000)
        await self._record(delivery, event, ok=ok, retryable=retryable,
                           status_code=status_code, error=error, duration_ms=duration_ms,
                           retry_after_s=retry_after)

    async def _record(self, delivery: WebhookDelivery, event: WebhookEvent, *, ok: bool,
                      retryable: bool, status_code: int | None, error: str | None,
                      duration_ms: int, retry_after_s: float | None) -> None:
        settings = self.runtime.settings
        now = utcnow()
        delay: float | None = None
        if ok:
            status = SUCCEEDED
        elif retryable and delivery.attempts < settings.webhook_max_attempts:
            status = PENDING
            delay = backoff_s(delivery.attempts, base_ms=settings.webhook_retry_base_ms,
                              max_s=settings.webhook_retry_max_s)
            if retry_after_s is not None:
                delay = min(max(delay, retry_after_s), float(settings.webhook_retry_max_s))
        else:
            status = FAILED
        next_at = now + timedelta(seconds=delay) if delay is not None else None
        metric = instruments()
        metric.webhook_attempts.labels(
            "succeeded" if ok else "retrying" if status == PENDING else "failed").inc()
        if ok and event.created_at is not None:
            metric.webhook_lag.observe(max(0.0, (now - event.created_at).total_seconds()))
        async with self.runtime.db.transaction() as session:
            await session.execute(insert(WebhookAttempt).values(
                id=new_id("wha"), tenant_id=delivery.tenant_id, delivery_id=delivery.id,
                endpoint_id=delivery.endpoint_id, event_id=event.id, event_type=event.type,
                url=delivery.url, attempt=delivery.attempts, status_code=status_code,
                error=error[:500] if error else None, duration_ms=duration_ms,
                next_attempt_at=next_at, created_at=now))
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery.id,
                       WebhookDelivery.attempts == delivery.attempts)
                .values(status=status, next_attempt_at=next_at, last_status_code=status_code,
                        last_error=error[:500] if error else None, updated_at=now))
        if delay is not None:
            await self.queue.schedule(delivery.tenant_id, delivery.id, delivery.attempts + 1,
                                      delay)

    async def close(self) -> None:
        if self._dispatching is not None:
            self._dispatching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dispatching
        await self.queue.close()


#: The process's webhook sender, injected by name into the routes that queue deliveries.
WebhooksDep = NamedDependency[Webhooks]


def _insert_ignoring_duplicates(is_sqlite: bool, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the outbox (two processes may copy one ledger
    event at once; the primary key keeps one)."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(WebhookEvent).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(WebhookEvent).values(**values).on_conflict_do_nothing()
