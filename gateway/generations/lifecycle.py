"""Every change of a generation's row, and the one way a generation ends.

The row is the source of truth for a generation's state (DESIGN.md, step 6): jobs are only
nudges to advance it. So every write to a live row is a conditional UPDATE here:

- `claim` (queued → running, or a running row whose lease passed) and `claim_poll` (the
  poll scheduled with lease sequence `seq`) take the row for one job and bump `lease_seq`;
  every later write of that job is conditional on the sequence it holds, so a stale or
  duplicate job changes nothing;
- `renewing` keeps the lease while a job works; `save_progress` records the provider being
  called and the attempts so far; `await_poll` hands the row to a poll job;
- `hand_back` (running → queued, a fresh run job) when a job is cut off;
- `requeue_interrupted` (every running → queued) when an embedded process restarts;
- `end` (→ succeeded, failed or canceled): settles or voids the reservations, gives back the
  day's spend and writes the webhook event in the same transaction. Then, after the commit,
  it runs what must follow it: the result cache is pointed at a success, a coalescing
  leader's followers are queued, waiting requests are woken, the webhook dispatcher is
  woken. Nothing else moves a generation to a final state.

Every committed change of status (and every progress save) is then told to the event streams
(`announce`, gateway/generations/events.py); an end also sends the customer's web push
notifications (gateway/generations/push.py) in the background.

Writes that happen inside a group commit (`Database.grouped`) may run twice (the batch is
retried unit by unit), so the after-commit effects are collected by the unit and run once
`grouped` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.pricing import price
from gateway.core.metrics import instruments
from gateway.generations import budgets, cache, jobs, push, quotas, team_spend
from gateway.generations.events import GenerationEvent
from gateway.generations.models import (
    CANCELED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    AttemptRecord,
    ErrorRecord,
    Generation,
    StoredOutput,
)
from gateway.generations.services import Services
from gateway.providers.models import VoiceClone
from gateway.webhooks import outbox
from plugins.provider import ProviderTask
from tenants.kernel.db import new_id, utcnow

log = logging.getLogger(__name__)


async def announce(services: Services, generation: Generation, status: str, *,
                   progress: float | None = None) -> None:
    """Tell the open event streams that `generation` is now `status`; called after the
    change is committed (here, and by `submit` for a new generation). Never raises."""
    await services.events.publish(generation.tenant_id, generation.customer_id, GenerationEvent(
        id=generation.id, status=status, progress=progress, type=generation.type,
        team_id=generation.team_id))


def lease(services: Services) -> timedelta:
    return timedelta(seconds=services.runtime.settings.job_lease_s)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, or running with its lease passed (its worker died or stopped renewing)."""
    return or_(Generation.status == QUEUED,
               and_(Generation.status == RUNNING,
                    or_(Generation.lease_until.is_(None), Generation.lease_until < now)))


async def claim(services: Services, generation_id: str, *,
                unless_follower: bool = False) -> Generation | None:
    """Take the generation for a run job, atomically: queued → running, or a running one
    whose lease passed. None when someone else holds it or it ended (or, `unless_follower`,
    when it follows a coalescing leader: the caller checks the leader first). The claim
    bumps `lease_seq`, so a stale job still holding the old one can no longer write. One
    statement: the row comes back from the UPDATE itself."""
    now = utcnow()
    where: list[ColumnElement[bool]] = [Generation.id == generation_id, _claimable(now)]
    if unless_follower:
        where.append(Generation.coalesced_from.is_(None))
    async with services.runtime.db.transaction() as session:
        claimed = await session.scalar(
            update(Generation)
            .where(*where)
            .values(status=RUNNING, started_at=func.coalesce(Generation.started_at, now),
                    updated_at=now, lease_until=now + lease(services),
                    attempts=Generation.attempts + 1, lease_seq=Generation.lease_seq + 1)
            .returning(Generation)
        )
    if claimed is not None:
        await announce(services, claimed, RUNNING)
    return claimed


async def claim_poll(services: Services, generation_id: str, seq: int) -> Generation | None:
    """Take the generation for the poll job scheduled with lease sequence `seq`; None when
    that poll is stale (another job claimed it since, or it ended)."""
    now = utcnow()
    async with services.runtime.db.transaction() as session:
        claimed: Generation | None = await session.scalar(
            update(Generation)
            .where(Generation.id == generation_id, Generation.status == RUNNING,
                   Generation.lease_seq == seq)
            .values(lease_seq=seq + 1, lease_until=now + lease(services), updated_at=now)
            .returning(Generation)
        )
    return claimed


def _held(generation: Generation) -> ColumnElement[bool]:
    """The row is still running under the claim this job holds."""
    return and_(Generation.id == generation.id, Generation.status == RUNNING,
                Generation.lease_seq == generation.lease_seq)


@contextlib.asynccontextmanager
async def renewing(services: Services, generation: Generation) -> AsyncIterator[None]:
    """Renew the lease every third of it while the job works (a slow provider call), as long
    as the job still holds the generation."""
    every = services.runtime.settings.job_lease_s / 3
    held = _held(generation)

    async def renew() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                async with services.runtime.db.transaction() as session:
                    await session.execute(update(Generation).where(held)
                                          .values(lease_until=utcnow() + lease(services)))
            except Exception:
                log.warning("could not renew the lease", exc_info=True,
                            extra={"generation_id": generation.id})

    renewer = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


async def save_progress(services: Services, generation: Generation, provider: str,
                        attempts_log: list[AttemptRecord]) -> bool:
    """Record who is being called and the attempts so far; False once this job no longer
    holds the generation (canceled, ended by the sweeper, or taken over): then nothing more
    may be called."""
    now = utcnow()
    async with services.runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation).where(_held(generation))
            .values(provider=provider, attempts_log=list(attempts_log), updated_at=now,
                    lease_until=now + lease(services)))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await announce(services, generation, RUNNING)
    return True


async def await_poll(services: Services, generation: Generation, provider: str,
                     attempts_log: list[AttemptRecord], delay_s: float) -> bool:
    """Hand the generation to a poll job `delay_s` from now: the row first (the poll's lease
    sequence, and a lease lasting until the poll's time plus a lease), then the job. A crash
    in between leaves a lease that runs out, and the reconciler takes over. False when the
    job no longer held it (canceled meanwhile: the cancel called the provider's cancel)."""
    now = utcnow()
    seq = generation.lease_seq + 1
    async with services.runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation).where(_held(generation))
            .values(lease_seq=seq, provider=provider, attempts_log=list(attempts_log),
                    lease_until=now + timedelta(seconds=delay_s) + lease(services),
                    updated_at=now))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    generation.lease_seq = seq
    try:
        await jobs.enqueue_poll(services.runtime, generation.id, generation.type, seq=seq,
                                delay_s=delay_s)
    except Exception:
        log.warning("could not queue the poll; the reconciler will resume the task",
                    exc_info=True, extra={"generation_id": generation.id})
    return True


async def hand_back(services: Services, generation: Generation) -> None:
    """A job cut off while it held the generation: back to `queued` and a fresh run job,
    which polls a recorded task instead of submitting again. Failing that, the lease runs
    out and the reconciler does the same."""
    try:
        async with services.runtime.db.transaction() as session:
            result = await session.execute(
                update(Generation).where(_held(generation))
                .values(status=QUEUED, lease_until=None, updated_at=utcnow()))
        if result.rowcount:  # type: ignore[attr-defined]
            await announce(services, generation, QUEUED)
            await jobs.enqueue_run(services.runtime, generation.id, generation.type,
                                   key=jobs.nudge_key(generation.id, generation.attempts))
    except Exception:
        log.warning("could not hand the generation back; the reconciler will",
                    exc_info=True, extra={"generation_id": generation.id})


async def requeue_interrupted(services: Services) -> list[tuple[str, str]]:
    """Every running generation back to queued; returns (id, type) of every queued one.
    Called at the start of an embedded process, the sole worker of its database."""
    async with services.runtime.db.transaction() as session:
        await session.execute(update(Generation).where(Generation.status == RUNNING)
                              .values(status=QUEUED, updated_at=utcnow()))
        return [(row.id, row.type) for row in (await session.execute(
            select(Generation.id, Generation.type).where(Generation.status == QUEUED)))]


# -- the end --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Succeeded:
    """Success: the stored outputs, who served it and what the provider charged in USD
    micros (`cost_usd_micros`, priced for this generation's caller). `recorded_cost_usd_micros`
    is what the row keeps as the provider's cost when it differs (a coalesced follower paid
    no provider: 0)."""

    outputs: list[StoredOutput]
    provider: str
    cost_usd_micros: int
    recorded_cost_usd_micros: int | None = None
    #: A voice clone's id at the provider: recorded as the generation's caller's own
    #: (`gateway.providers.models.VoiceClone`) in the transaction that ends it.
    voice_id: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """Failure, or a cancel (`status="canceled"`): the reservations are voided.

    `frees_key`: the request was refused before anything ran (its job could not be queued):
    the row lets go of its Idempotency-Key, so the client's retry with it runs afresh
    instead of replaying this failure forever.
    """

    code: str
    message: str
    status: Literal["failed", "canceled"] = "failed"
    frees_key: bool = False


async def end(services: Services, generation: Generation, outcome: Succeeded | Failed, *,
              from_states: tuple[str, ...] = (QUEUED, RUNNING), held: bool = False,
              attempts_log: list[AttemptRecord] | None = None) -> bool:
    """End a generation, in one (group-committed) transaction: the row's final state, its
    reservations posted at the actual price (never above what was reserved) or voided, the
    day's spend given back, and the webhook event; then the after-commit effects (module
    docstring). Returns False when the row was no longer in `from_states` (someone else
    ended it), or, with `held`, no longer held under this job's claim: then nothing changed.

    A success must be `held` (only the job holding the claim may settle); `attempts_log`,
    when given, is saved with it (the worker's record of provider calls).
    """
    runtime = services.runtime
    now = utcnow()
    where: list[ColumnElement[bool]] = [Generation.id == generation.id,
                                        Generation.tenant_id == generation.tenant_id]
    where.append(_held(generation) if held else Generation.status.in_(from_states))
    values: dict[str, Any] = {"completed_at": now, "updated_at": now}
    if attempts_log is not None:
        values["attempts_log"] = attempts_log
    tenant = None
    if isinstance(outcome, Succeeded):
        assert held, "only the job holding a generation settles it"
        tenant, tier = await runtime.tenant_views.tenant_and_tier(generation.tenant_id,
                                                                  generation.customer_id)
        actual = price(outcome.cost_usd_micros, media_type=generation.type,
                       tenant_pricing=tenant.pricing, tier=tier,
                       platform_markup_bps=runtime.settings.platform_markup_bps)
        # Never charge above a reservation, whatever the provider reports (a failover
        # provider dearer than the first candidate included).
        wholesale = min(actual.wholesale_mc, generation.wholesale_mc)
        retail = min(actual.retail_mc, generation.retail_mc)
        values.update(
            status=SUCCEEDED, outputs=outcome.outputs, provider=outcome.provider,
            charged_mc=retail if generation.customer_reservation_id else wholesale,
            cost_usd_micros=(actual.cost_usd_micros if outcome.recorded_cost_usd_micros is None
                             else outcome.recorded_cost_usd_micros),
            wholesale_mc=wholesale, retail_mc=retail)
    else:
        values.update(status=outcome.status,
                      error=None if outcome.status == CANCELED
                      else ErrorRecord(code=outcome.code, message=outcome.message))
        if outcome.frees_key:
            values["idempotency_key"] = None
    status: str = values["status"]
    announced = False

    async def unit(session: AsyncSession) -> Any:
        nonlocal announced
        announced = False
        row = (await session.execute(
            update(Generation).where(*where).values(**values)
            .returning(Generation.customer_reservation_id, Generation.reservation_id,
                       Generation.spend_day, Generation.wholesale_mc,
                       Generation.webhook_url, Generation.retail_mc,
                       Generation.key_budget_month, Generation.customer_budget_month,
                       Generation.team_id, Generation.team_period, Generation.customer_id,
                       outbox.has_endpoint(generation.tenant_id).label("has_endpoint"))
        )).first()
        if row is None:
            return None
        announced = await outbox.generation_ended(
            session, generation.tenant_id, generation.id, status,
            has_webhook_url=row.webhook_url is not None,
            tenant_has_endpoint=bool(row.has_endpoint))
        # The day's spend row before the wallets, as every unit takes them (submit, fail,
        # and a group commit, whose wallet updates come last): the other order deadlocks.
        if status == SUCCEEDED:
            # RETURNING gives the row as updated: what was reserved is the held object's.
            await quotas.give_back(session, generation.tenant_id, row.spend_day,
                                   generation.wholesale_mc - values["wholesale_mc"])
            await budgets.give_back(session, generation, key_month=row.key_budget_month,
                                    customer_month=row.customer_budget_month,
                                    amount_mc=(generation.retail_mc if row.customer_reservation_id
                                               else generation.wholesale_mc)
                                    - values["charged_mc"])
            await team_spend.give_back(session, tenant_id=generation.tenant_id,
                                       team_id=row.team_id,
                                       customer_id=row.customer_id, period=row.team_period,
                                       amount_mc=generation.retail_mc - values["retail_mc"])
            assert row.reservation_id is not None
            await ledger.post(session, tenant_id=generation.tenant_id,
                              pending_id=row.reservation_id, amount_mc=values["wholesale_mc"])
            if row.customer_reservation_id is not None:
                await ledger.post(session, tenant_id=generation.tenant_id,
                                  pending_id=row.customer_reservation_id,
                                  amount_mc=values["retail_mc"])
            if isinstance(outcome, Succeeded) and outcome.voice_id is not None:
                # With the success, or not at all: a clone nobody owns would be nobody's to
                # list or delete (and the platform's account would keep it forever).
                session.add(VoiceClone(
                    id=new_id("vc"), tenant_id=generation.tenant_id,
                    customer_id=generation.customer_id, provider=outcome.provider,
                    voice_id=outcome.voice_id, generation_id=generation.id,
                    name=str(generation.params.get("name") or generation.prompt)[:200]))
        else:
            await quotas.give_back(session, generation.tenant_id, row.spend_day,
                                   row.wholesale_mc)
            await budgets.give_back(session, generation, key_month=row.key_budget_month,
                                    customer_month=row.customer_budget_month,
                                    amount_mc=(row.retail_mc if row.customer_reservation_id
                                               else row.wholesale_mc))
            await team_spend.give_back(session, tenant_id=generation.tenant_id,
                                       team_id=row.team_id,
                                       customer_id=row.customer_id, period=row.team_period,
                                       amount_mc=row.retail_mc)
            for pending_id in (row.customer_reservation_id, row.reservation_id):
                if pending_id is not None:
                    await ledger.void(session, tenant_id=generation.tenant_id,
                                      pending_id=pending_id)
        return row

    if await runtime.db.grouped(unit) is None:
        return False
    provider = values.get("provider") or generation.provider
    instruments().generation_ended(generation.type, provider, status)
    log.info("generation ended: %s", status, extra={
        "generation_id": generation.id, "tenant_id": generation.tenant_id,
        "customer_id": generation.customer_id, "provider": provider})
    # After the commit. A hit must only ever copy a generation that is succeeded; and the
    # in-flight marker goes before a waiting request is woken: an identical request it sends
    # next must not find a finished leader still marked as running.
    if isinstance(outcome, Succeeded):
        assert tenant is not None
        await cache.remember(runtime, tenant, generation, provider=outcome.provider,
                             outputs=outcome.outputs,
                             cost_usd_micros=outcome.cost_usd_micros)
    await cache.on_finished(runtime, generation, status)
    await services.completions.finished(generation.tenant_id, generation.id)
    await announce(services, generation, status)
    if status != CANCELED and generation.customer_id is not None:
        services.spawn(push.generation_ended(runtime, generation, status),
                       timeout_s=push.SEND_TIMEOUT_S)
    if announced:
        services.webhooks.wake()
    return True


#: How long to wait before polling a task whose provider gave no hint.
DEFAULT_POLL_AFTER_S = 5.0


def poll_hint_s(entry: AttemptRecord) -> float:
    """The provider's own hint for when to poll its task again."""
    return DEFAULT_POLL_AFTER_S if entry.poll_after_s is None else entry.poll_after_s


def pending_tasks(attempts_log: list[AttemptRecord]) -> dict[str, ProviderTask]:
    """Asynchronous tasks submitted for a generation and never seen to finish, by provider
    (the `running` entries of its attempts log that carry a task id)."""
    return {a.provider: ProviderTask(task_id=a.task_id, poll_after_s=poll_hint_s(a))
            for a in attempts_log if a.outcome == "running" and a.task_id}
