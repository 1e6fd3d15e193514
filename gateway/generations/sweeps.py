"""Periodic repairs of generations: nudge the ones that stopped moving, end the ones whose
reservations expired, and requeue what a stopped embedded process left behind. Declared as
periodic tasks in `gateway.generations.tasks`; every API and worker process runs them."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, literal_column, or_, select

from billing.models import Transfer
from gateway.generations import jobs, lifecycle
from gateway.generations.models import QUEUED, RUNNING, Generation
from gateway.generations.services import Services
from tenants.kernel.db import utcnow

log = logging.getLogger(__name__)

# The states as SQL constants, not bind parameters: a prepared statement soon runs with a
# generic plan, which guesses a parameter matches a fifth of the table (five states) and
# scans it whole; constants are planned from the column's statistics (few are in flight).
_QUEUED: ColumnElement[str] = literal_column(f"'{QUEUED}'")
_RUNNING: ColumnElement[str] = literal_column(f"'{RUNNING}'")


def stalled_query(now: datetime, stale: datetime, limit: int) -> Select[str, str, int]:
    """The reconciler's statement: generations `queued` since before `stale`, or `running`
    past their lease; bound to `ix_generations_status_updated` (tests/gateway/test_plans.py)."""
    return (select(Generation.id, Generation.type, Generation.attempts)
            .where(or_(and_(Generation.status == _QUEUED, Generation.updated_at < stale),
                       and_(Generation.status == _RUNNING,
                            or_(Generation.lease_until < now,
                                and_(Generation.lease_until.is_(None),
                                     Generation.updated_at < stale)))))
            .order_by(Generation.updated_at)
            .limit(limit))


def expired_query(now: datetime, limit: int) -> Select[str, str]:
    """The sweeper's statement: generations still in flight whose reservation timed out.

    Driven from the few in-flight generations (`ix_generations_status_updated`) to their
    reservation by primary key, never from `transfers`: every reservation ever made stays
    `pending` there (its resolution is another row), so a scan by phase and timeout read the
    whole history every round. Only generations reserve, and a generation's reservations
    end in the transaction that ends it, so an unresolved reservation always belongs to a
    `queued` or `running` generation.
    """
    return (select(Generation.id, Generation.tenant_id)
            .join(Transfer, Transfer.id == Generation.reservation_id)
            .where(or_(Generation.status == _QUEUED, Generation.status == _RUNNING),
                   Transfer.timeout_at < now)
            .order_by(Transfer.timeout_at)
            .limit(limit))


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
        rows = (await session.execute(stalled_query(now, stale, limit))).all()
    for generation_id, media_type, attempts in rows:
        await jobs.enqueue_run(services.runtime, generation_id, media_type,
                               key=jobs.nudge_key(generation_id, attempts))
    if rows:
        log.info("reconciler nudged %d stalled generations", len(rows))
    return len(rows)


async def expire_reservations(services: Services, *, now: datetime | None = None,
                              batch: int = 100) -> int:
    """Fail the in-flight generations whose reservations expired (which voids them);
    returns how many.

    Works in batches until none is left, so a backlog never waits for the next round
    (`now` is for tests). Reads only in-flight generations (`expired_query`), whatever the
    size of the history.
    """
    count = 0
    while True:
        async with services.runtime.db.session() as session:
            expired = (await session.execute(expired_query(now or utcnow(), batch))).all()
        ended = 0
        for generation_id, tenant_id in expired:
            if await lifecycle.end(
                services, Generation(id=generation_id, tenant_id=tenant_id),
                lifecycle.Failed("reservation_expired",
                                 "the generation did not finish before its reservation "
                                 "expired"),
            ):
                ended += 1
        count += ended
        # A round that ended nothing lost every race to other processes: they finish it.
        if len(expired) < batch or not ended:
            return count


async def recover_embedded(services: Services) -> int:
    """Requeue what a stopped embedded process left behind; returns how many.

    Called at start in embedded mode only, where this process is the sole worker: anything
    `running` was interrupted mid-job, and an in-process queue kept nothing across the stop.
    """
    queued = await lifecycle.requeue_interrupted(services)
    for generation_id, media_type in queued:
        await jobs.enqueue_run(services.runtime, generation_id, media_type)
    return len(queued)
