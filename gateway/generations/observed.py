"""`GET /metrics`: the recorded metrics of every process (`gateway.core.metrics`) and the
values read when scraped: queue depth and oldest job age per queue, pending reservations,
webhook deliveries due, and each provider's breaker (docs/operations.md, "Metrics").

The scrape-time reads are platform-wide aggregates for the operator, never per tenant (no
tenant appears in a label), and each one is index-bound: queued generations through
`ix_generations_status_updated`, deliveries through `ix_webhook_deliveries_status_next`,
pending reservations through `ix_transfers_pending_timeout` over a bounded window, and the
wallets' pending totals from the accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from litestar import Request, Response, get
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from billing.models import PENDING as TRANSFER_PENDING
from billing.models import Account, Transfer
from gateway.core import metrics as core_metrics
from gateway.generations.models import QUEUED, Generation
from gateway.generations.services import Services
from gateway.providers.credentials import PLATFORM
from gateway.webhooks.models import PENDING as DELIVERY_PENDING
from gateway.webhooks.models import WebhookDelivery
from plugins.routing.breaker import HALF_OPEN, OPEN
from plugins.vocabulary import MEDIA_TYPES
from tenants.kernel.db import utcnow
from tenants.kernel.errors import NotFound

#: Unresolved reservations older than this are the sweeper's (it voids them within a sweep):
#: the window keeps the count's read bounded by recent reservations, not all ever made.
RESERVATION_WINDOW = timedelta(days=1)

_BREAKER_VALUE = {OPEN: 2.0, HALF_OPEN: 1.0}


async def read_now(services: Services) -> Sequence[Metric]:
    """The scrape-time metric families; called by `GET /metrics` on every scrape."""
    runtime = services.runtime
    now = utcnow()
    depth = GaugeMetricFamily("mediahub_queue_depth",
                              "Generations waiting for a worker, per queue (media type).",
                              labels=["queue"])
    oldest = GaugeMetricFamily("mediahub_queue_oldest_job_age_seconds",
                               "Age of the oldest generation waiting, per queue (0: none).",
                               labels=["queue"])
    reservations = GaugeMetricFamily(
        "mediahub_reservations_pending",
        "Credit reservations neither posted nor voided yet (made in the last day).")
    reserved = GaugeMetricFamily(
        "mediahub_reservations_pending_mc",
        "Millicredits held by pending reservations, over every wallet.")
    due = GaugeMetricFamily("mediahub_webhook_deliveries_due",
                            "Webhook deliveries whose next attempt is due and not made yet.")
    lag = GaugeMetricFamily("mediahub_webhook_oldest_due_seconds",
                            "How overdue the most overdue webhook delivery is (0: none).")
    async with runtime.db.session() as session:
        queued = {row.type: row for row in await session.execute(
            select(Generation.type, func.count().label("n"),
                   func.min(Generation.created_at).label("oldest"))
            .where(Generation.status == QUEUED).group_by(Generation.type))}
        resolution = aliased(Transfer)
        pending_count = await session.scalar(
            select(func.count()).select_from(Transfer)
            .outerjoin(resolution, resolution.pending_id == Transfer.id)
            .where(Transfer.phase == TRANSFER_PENDING,
                   Transfer.timeout_at > now - RESERVATION_WINDOW,
                   resolution.id.is_(None)))
        pending_mc = await session.scalar(select(func.coalesce(func.sum(
            Account.debits_pending), 0)).where(Account.system.is_(False)))
        deliveries = (await session.execute(
            select(func.count(), func.min(WebhookDelivery.next_attempt_at))
            .where(WebhookDelivery.status == DELIVERY_PENDING,
                   WebhookDelivery.next_attempt_at <= now))).one()
    for media_type in MEDIA_TYPES:
        row = queued.get(media_type)
        depth.add_metric([media_type], float(row.n if row else 0))
        oldest.add_metric([media_type], max(0.0, (now - row.oldest).total_seconds())
                          if row and row.oldest else 0.0)
    reservations.add_metric([], float(pending_count or 0))
    reserved.add_metric([], float(pending_mc or 0))
    due.add_metric([], float(deliveries[0] or 0))
    lag.add_metric([], max(0.0, (now - deliveries[1]).total_seconds()) if deliveries[1] else 0.0)
    return [depth, oldest, reservations, reserved, due, lag, await _breakers(services)]


async def _breakers(services: Services) -> Metric:
    states = services.providers
    await states.refresh(services.runtime)
    breaker = GaugeMetricFamily(
        "mediahub_provider_breaker_state",
        "Each provider's circuit breaker on the platform's credentials: 0 closed, "
        "1 half-open, 2 open.", labels=["provider"])
    now = states.now()
    for provider in services.runtime.plugins.all():
        state = states.stats(provider, PLATFORM).breaker.state(now)
        breaker.add_metric([provider.name], _BREAKER_VALUE.get(state, 0.0))
    return breaker


@get("/metrics", summary="Gateway metrics (Prometheus text format)", tags=["operations"],
     include_in_schema=True)
async def metrics(request: Request[Any, Any, Any], services: Services
                  ) -> Response[bytes]:
    """Every process's metrics in Prometheus' text exposition format, for a scraper:
    requests, generations, provider calls, webhooks and database pools as recorded, and
    queues, reservations and breakers as they are now (docs/operations.md, "Metrics").

    With `MEDIAHUB_METRICS_TOKEN` set it takes `Authorization: Bearer <token>`; without,
    it answers loopback clients only. Anyone else gets `404`."""
    client = request.scope.get("client")
    if not core_metrics.allowed(token=services.runtime.settings.metrics_token,
                                authorization=request.headers.get("authorization"),
                                client_host=client[0] if client else None):
        # Not found rather than forbidden: the route is not advertised to the outside.
        raise NotFound("no such route", code="not_found")
    return Response(core_metrics.exposition(await read_now(services)),
                    media_type=core_metrics.CONTENT_TYPE)
