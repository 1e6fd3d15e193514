"""Periodic repairs of generations: nudge the ones that stopped moving, end the ones whose
reservations expired, and requeue what a stopped embedded process left behind. Declared as
periodic tasks in `gateway.generations.tasks`; every API and worker process runs them."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from sqlalchemy import and_, or_, select

from billing import ledger
from gateway.generations import jobs, lifecycle
from gateway.generations.models import QUEUED, RUNNING, Generation
from gateway.generations.services import Services
from tenants.kernel.db import utcnow

log = logging.getLogger(__name__)


async def reconcile(services: Services, *, now: datetime | None = None,
                    limit: int = 500) -> int:
    """Nudge every generation that stopped moving; returns how many were nudged.

    Stopped moving: `queued` for longer than a lease (its job never reached the queue, or SAQ
    lost it), or `running` past its lease (its worker died, or a poll job was lost). Each gets
    a run job keyed by its claim count, so repeated rounds queue it once; the job's claim
    takes the generation over atomically, and does nothing if it moved meanwhile.
    """
    now = now or utcnow()
    stale = now - lifecycle.lease(services)
    async with services.runtime.db.session() as session:
        rows = (await session.execute(
            select(Generation.id, Generation.type, Generation.attempts)
            .where(or_(and_(Generation.status == QUEUED, Generation.updated_at < stale),
                       and_(Generation.status == RUNNING,
                            or_(Generation.lease_until < now,
                                and_(Generation.lease_until.is_(None),
                                     Generation.updated_at < stale)))))
            .order_by(Generation.updated_at)
            .limit(limit)
        )).all()
    for generation_id, media_type, attempts in rows:
        await jobs.enqueue_run(services.runtime, generation_id, media_type,
                               key=jobs.nudge_key(generation_id, attempts))
    if rows:
        log.info("reconciler nudged %d stalled generations", len(rows))
    return len(rows)


async def expire_reservations(services: Services, *, now: datetime | None = None) -> int:
    """Void reservations past their timeout and fail their generations; returns how many.

    Works in batches until none is left, so a backlog never waits for the next round
    (`now` is for tests).
    """
    count = 0
    while True:
        async with services.runtime.db.session() as session:
            expired = await ledger.expired_reservations(session, now=now)
        if not expired:
            return count
        for pending in expired:
            count += 1
            if pending.generation_id is not None and await lifecycle.end(
                services, Generation(id=pending.generation_id, tenant_id=pending.tenant_id),
                lifecycle.Failed("reservation_expired",
                                 "the generation did not finish before its reservation "
                                 "expired"),
            ):
                continue
            # No generation to fail (or it already ended): release the credits alone.
            async with services.runtime.db.transaction() as session:
                with contextlib.suppress(ledger.AlreadyResolved):
                    await ledger.void(session, tenant_id=pending.tenant_id,
                                      pending_id=pending.id)


async def recover_embedded(services: Services) -> int:
    """Requeue what a stopped embedded process left behind; returns how many.

    Called at start in embedded mode only, where this process is the sole worker: anything
    `running` was interrupted mid-job, and an in-process queue kept nothing across the stop.
    """
    queued = await lifecycle.requeue_interrupted(services)
    for generation_id, media_type in queued:
        await jobs.enqueue_run(services.runtime, generation_id, media_type)
    return len(queued)
