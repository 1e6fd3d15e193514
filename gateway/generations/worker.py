"""The worker side of a generation: run the provider, store the outputs, settle the credits.

`run_generation` is what a queued `generation.run` job calls, `poll_generation` what a
scheduled `generation.poll` job calls. Either may run twice for one generation (a redelivered
job, a reconciler nudge) or after a cancel: a job first claims the row with one conditional
UPDATE (queued → running, or a running row whose lease passed; a poll: the lease sequence it
was scheduled with), and every later write is conditional on still holding that claim
(`lease_seq`), so a repeat calls no provider and changes nothing.

Asynchronous providers: the run job calls `submit`, saves the task id, schedules a poll job
`poll_delay_s` later and ends, so no worker slot is held while a video renders. Each poll
asks once: a result settles, a still-running task schedules the next poll (back-off from
the provider's hint), an error fails over as below, and past `ASYNC_PROVIDER_TIMEOUT_S` the
task is canceled at the provider and counts as a timeout. A re-run that finds a recorded
task id polls it; it never submits again.

Crash safety: a running generation has a lease (`MEDIAHUB_JOB_LEASE_S`) that its job renews
while it works. A worker killed mid-job stops renewing; `reconcile` (every sweep interval)
nudges such generations, and queued ones whose job never reached the queue, and the next
claim takes them over. A job cancelled at shutdown hands its generation back at once.

Failover: the row carries its `candidates` (ranked at submit time, best first). The worker
tries them in order within the one job: a candidate whose breaker is open or whose Retry-After
has not passed is skipped; a retryable error (timeout, 5xx, 429, network) moves on to the next;
a final one (content policy, invalid input, auth) fails the generation at once. Every call and
skip is appended to `attempts_log` (saved before the next call), and `provider` names the one
being called, so in the end the provider that served it. A redelivered job goes on with the
candidates not yet called, and resumes polling an asynchronous task whose id it recorded.

Money: the reservation was priced with the first candidate and is never made again. A later
candidate may cost more; the charge is still capped at what was reserved (the platform takes
the difference), and `cost_usd_micros` records what the provider actually charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.pricing import price
from gateway.core.runtime import Runtime
from gateway.core.tenant_views import tenant_and_tier
from gateway.generations import cache, quotas
from gateway.generations import inputs as media_urls
from gateway.generations.models import QUEUED, RUNNING, SUCCEEDED, Generation
from gateway.generations.service import finish_failed, pending_tasks
from gateway.providers.credentials import credentials_for
from gateway.webhooks import outbox
from plugins.errors import ProviderError, error_from_exception
from plugins.provider import Provider, ProviderRequest, ProviderResult, ProviderTask
from tenants.kernel.db import utcnow

log = logging.getLogger(__name__)

#: How long one provider call (generate, submit, one poll) may take before it counts as a
#: (retryable) timeout; an asynchronous provider's task gets `ASYNC_PROVIDER_TIMEOUT_S` from
#: its submission, over all its polls.
PROVIDER_TIMEOUT_S: float = 300
ASYNC_PROVIDER_TIMEOUT_S: float = 600
#: Polling an asynchronous task: the provider's hint (`ProviderTask.poll_after_s`, at least
#: the minimum), times `POLL_BACKOFF` per poll that found it still running, capped.
MIN_POLL_INTERVAL_S: float = 0.05
POLL_BACKOFF: float = 1.5
MAX_POLL_INTERVAL_S: float = 60.0
#: A generation claimed more often than this (each claim after the first: a worker that
#: died or was stopped while holding it) fails, with its reservation voided.
MAX_CLAIMS = 5

_EXTENSIONS = {"image/png": ".png", "audio/wav": ".wav", "video/mp4": ".mp4",
               "model/gltf-binary": ".glb", "application/pdf": ".pdf"}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, or running with its lease passed (its worker died or stopped renewing)."""
    return or_(Generation.status == QUEUED,
               and_(Generation.status == RUNNING,
                    or_(Generation.lease_until.is_(None), Generation.lease_until < now)))


async def _claim(runtime: Runtime, generation_id: str) -> Generation | None:
    """Take the generation for this run job, atomically (one conditional UPDATE): queued →
    running, or a running one whose lease passed. None when someone else holds it or it
    ended. The claim bumps `lease_seq`, so a stale job still holding the old one can no
    longer write."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation_id, _claimable(now))
            .values(status=RUNNING, started_at=func.coalesce(Generation.started_at, now),
                    updated_at=now, lease_until=now + _lease(runtime),
                    attempts=Generation.attempts + 1, lease_seq=Generation.lease_seq + 1)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return None
        return await session.get(Generation, generation_id)


async def _claim_poll(runtime: Runtime, generation_id: str, seq: int) -> Generation | None:
    """Take the generation for the poll job scheduled with lease sequence `seq`; None when
    that poll is stale (another job claimed it since, or it ended)."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.status == RUNNING,
                   Generation.lease_seq == seq)
            .values(lease_seq=seq + 1, lease_until=now + _lease(runtime), updated_at=now)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return None
        return await session.get(Generation, generation_id)


def _lease(runtime: Runtime) -> timedelta:
    return timedelta(seconds=runtime.settings.job_lease_s)


@contextlib.asynccontextmanager
async def _renewing(runtime: Runtime, generation: Generation) -> AsyncIterator[None]:
    """Renew the lease every third of it while the job works (a slow provider call), as long
    as the job still holds the generation."""
    seq = generation.lease_seq
    every = runtime.settings.job_lease_s / 3

    async def renew() -> None:
        while True:
            await asyncio.sleep(every)
            now = utcnow()
            try:
                async with runtime.db.transaction() as session:
                    await session.execute(
                        update(Generation)
                        .where(Generation.id == generation.id, Generation.status == RUNNING,
                               Generation.lease_seq == seq)
                        .values(lease_until=now + _lease(runtime))
                    )
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


async def _store(runtime: Runtime, generation: Generation,
                 result: ProviderResult) -> list[dict[str, object]]:
    stored: list[dict[str, object]] = []
    for index, output in enumerate(result.outputs):
        key = f"{generation.tenant_id}/{generation.id}/{index}{_extension(output.content_type)}"
        await runtime.storage.put(key, output.data, output.content_type)
        item: dict[str, object] = {"key": key, "content_type": output.content_type,
                                   "bytes": len(output.data)}
        for name in ("width", "height", "duration_s"):
            value = getattr(output, name)
            if value is not None:
                item[name] = value
        stored.append(item)
    return stored


async def _succeed(runtime: Runtime, generation: Generation, result: ProviderResult,
                   outputs: list[dict[str, object]], *, provider: str,
                   attempts_log: list[dict[str, Any]],
                   recorded_cost_usd_micros: int | None = None) -> None:
    tenant, tier = await tenant_and_tier(runtime, generation.tenant_id, generation.customer_id)
    actual = price(result.cost_usd_micros, media_type=generation.type,
                   tenant_pricing=tenant.pricing, tier=tier,
                   platform_markup_bps=runtime.settings.platform_markup_bps)
    # Never charge above a reservation, whatever the provider reports (a failover provider
    # dearer than the first candidate included).
    wholesale = min(actual.wholesale_mc, generation.wholesale_mc)
    retail = min(actual.retail_mc, generation.retail_mc)
    charged = retail if generation.customer_reservation_id else wholesale
    now = utcnow()

    announced = settled = False

    async def settle(session: AsyncSession) -> None:
        nonlocal announced, settled
        announced = settled = False
        moved = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.status == RUNNING)
            .values(status=SUCCEEDED, outputs=outputs, charged_mc=charged,
                    cost_usd_micros=(actual.cost_usd_micros if recorded_cost_usd_micros is None
                                     else recorded_cost_usd_micros),
                    wholesale_mc=wholesale,
                    retail_mc=retail, provider=provider, attempts_log=attempts_log,
                    completed_at=now, updated_at=now)
        )
        if moved.rowcount == 0:  # type: ignore[attr-defined]
            # Canceled while the provider worked: the cancel already voided the reservations.
            return
        settled = True
        announced = await outbox.generation_ended(session, generation.tenant_id,
                                                  generation.id, SUCCEEDED)
        # The day's spend row before the wallets, as every unit takes them (submit, fail,
        # and a group commit, whose wallet updates come last): the other order deadlocks.
        await quotas.give_back(session, generation.tenant_id, generation.spend_day,
                               generation.wholesale_mc - wholesale)
        assert generation.reservation_id is not None
        await ledger.post(session, tenant_id=generation.tenant_id,
                          pending_id=generation.reservation_id, amount_mc=wholesale)
        if generation.customer_reservation_id is not None:
            await ledger.post(session, tenant_id=generation.tenant_id,
                              pending_id=generation.customer_reservation_id, amount_mc=retail)

    await runtime.db.grouped(settle)
    if settled:
        # After the commit: a hit must only ever copy a generation that is succeeded.
        await cache.remember(runtime, tenant, generation, provider=provider,
                             outputs=[dict(o) for o in outputs],
                             cost_usd_micros=actual.cost_usd_micros)
    if announced:
        runtime.webhooks.wake()


def _attempt(provider: str, outcome: str, error_code: str | None, latency_ms: int = 0,
             **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": provider, "outcome": outcome,
                             "error_code": error_code, "latency_ms": latency_ms,
                             "at": utcnow().isoformat()}
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


def _settle(attempts_log: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    """Append a finished attempt, replacing the provider's `running` entry (its task id is
    kept on the finished one)."""
    for index, item in enumerate(attempts_log):
        if item["provider"] == entry["provider"] and item["outcome"] == "running":
            if item.get("task_id"):
                entry.setdefault("task_id", item["task_id"])
            del attempts_log[index]
            break
    attempts_log.append(entry)


async def _save_progress(runtime: Runtime, generation: Generation, provider: str,
                         attempts_log: list[dict[str, Any]]) -> bool:
    """Record who is being called and the attempts so far; False once this job no longer
    holds the generation (canceled, ended by the sweeper, or taken over): then nothing more
    may be called."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.status == RUNNING,
                   Generation.lease_seq == generation.lease_seq)
            .values(provider=provider, attempts_log=list(attempts_log), updated_at=now,
                    lease_until=now + _lease(runtime))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _running_entry(attempts_log: list[dict[str, Any]], provider: str) -> dict[str, Any] | None:
    for item in attempts_log:
        if item["provider"] == provider and item["outcome"] == "running":
            return item
    return None


def _begin_call(attempts_log: list[dict[str, Any]], provider: str) -> dict[str, Any]:
    """The provider's `running` entry, saved before the call: found later without a task
    id, it says a call was in flight when its worker died."""
    entry = _running_entry(attempts_log, provider)
    if entry is None:
        entry = _attempt(provider, "running", None)
        attempts_log.append(entry)
    return entry


def _interrupted(runtime: Runtime, attempts_log: list[dict[str, Any]]) -> None:
    """Deal with calls a previous holder started and never saw end (no task id recorded).

    A provider that takes our idempotency key (`Provider.idempotency_keys`) is simply called
    again with the same key: it will not charge twice. Any other provider may have done (and
    billed) the work, so it is not called again for this generation: the call counts as
    failed (`interrupted`, retryable) and the generation fails over to its next candidate,
    or fails with its reservation voided. The customer is never charged twice either way.
    """
    for index, item in enumerate(list(attempts_log)):
        if item["outcome"] != "running" or item.get("task_id"):
            continue
        provider = runtime.plugins.get(item["provider"])
        if provider is not None and provider.idempotency_keys:
            attempts_log.remove(item)
            continue
        attempts_log[index] = _attempt(item["provider"], "failed", "interrupted")


class _Stopped(Exception):
    """The generation stopped running (canceled) while its provider was being called."""


Outcome = ProviderResult | ProviderTask | ProviderError | None


async def _call_once(runtime: Runtime, generation: Generation, provider: Provider,
                     request: ProviderRequest, attempts_log: list[dict[str, Any]],
                     ) -> tuple[Outcome, int]:
    """One call under its timeout: `generate`'s result, or an asynchronous provider's
    accepted task (its id saved before anything else happens); the classified error; or
    None when the generation was canceled meanwhile. With the call's latency in ms."""
    started = runtime.routing.timer()
    outcome: Outcome
    try:
        credentials = await credentials_for(runtime, generation.tenant_id, provider.name)
        if not provider.asynchronous:
            outcome = await media_urls.fetch_outputs(runtime, await asyncio.wait_for(
                provider.generate(request, credentials, runtime.http), PROVIDER_TIMEOUT_S))
        else:
            task = await asyncio.wait_for(
                provider.submit(request, credentials, runtime.http), PROVIDER_TIMEOUT_S)
            entry = _begin_call(attempts_log, provider.name)
            entry.update(task_id=task.task_id, poll_after_s=task.poll_after_s,
                         at=utcnow().isoformat())
            if not await _save_progress(runtime, generation, provider.name, attempts_log):
                raise _Stopped
            outcome = task
    except _Stopped:
        await _cancel_task(runtime, generation, provider, task)
        outcome = None
    except Exception as exc:
        outcome = _classified(exc, generation, provider)
    return outcome, round((runtime.routing.timer() - started) * 1000)


def _classified(exc: Exception, generation: Generation, provider: Provider) -> ProviderError:
    error = error_from_exception(exc)
    if error.code == "provider_error":
        log.warning("provider raised %s", type(exc).__name__, exc_info=exc,
                    extra={"generation_id": generation.id, "provider": provider.name})
    return error


async def _cancel_task(runtime: Runtime, generation: Generation, provider: Provider,
                       task: ProviderTask) -> None:
    """Best effort: a failure to cancel must not hide what happened to the generation."""
    try:
        credentials = await credentials_for(runtime, generation.tenant_id, provider.name)
        await provider.cancel(task, credentials, runtime.http)
    except Exception:
        log.warning("could not cancel task %s at %s", task.task_id, provider.name,
                    exc_info=True)


async def _poll_once(runtime: Runtime, generation: Generation, provider: Provider,
                     task: ProviderTask, entry: dict[str, Any]) -> tuple[Outcome, int]:
    """Ask the provider once about a task: its result, the task again while it runs, or
    the classified error; a task past `ASYNC_PROVIDER_TIMEOUT_S` since its submission is
    canceled at the provider and counts as a (retryable) timeout. Latency: since submit."""
    submitted = datetime.fromisoformat(entry["at"])
    outcome: Outcome
    if utcnow() - submitted > timedelta(seconds=ASYNC_PROVIDER_TIMEOUT_S):
        await _cancel_task(runtime, generation, provider, task)
        outcome = ProviderError.timeout("the provider's task did not finish in time")
    else:
        try:
            credentials = await credentials_for(runtime, generation.tenant_id, provider.name)
            result = await asyncio.wait_for(provider.poll(task, credentials, runtime.http),
                                            PROVIDER_TIMEOUT_S)
            if result is None:
                outcome = task
            elif isinstance(result, ProviderTask):
                # The task's next stage: recorded with the attempt by the poll scheduled next.
                entry.update(task_id=result.task_id, poll_after_s=result.poll_after_s,
                             polls=0)
                outcome = result
            else:
                outcome = await media_urls.fetch_outputs(runtime, result)
        except Exception as exc:
            outcome = _classified(exc, generation, provider)
    return outcome, round((utcnow() - submitted).total_seconds() * 1000)


def poll_delay_s(hint_s: float, polls: int) -> float:
    """When to ask again: the provider's own hint, growing by `POLL_BACKOFF` with each poll
    that found the task still running, capped at `MAX_POLL_INTERVAL_S`."""
    hint = max(hint_s, MIN_POLL_INTERVAL_S)
    return float(min(hint * POLL_BACKOFF ** min(polls, 64), MAX_POLL_INTERVAL_S))


async def _schedule_poll(runtime: Runtime, generation: Generation, provider: str,
                         attempts_log: list[dict[str, Any]]) -> None:
    """Hand the generation to a poll job `poll_delay_s` from now and end this job, freeing
    its slot. The row is written first (the poll's lease sequence, and a lease lasting until
    the poll's time plus a lease), then the job queued: a crash in between leaves a lease
    that runs out, and the reconciler takes over."""
    entry = _running_entry(attempts_log, provider)
    assert entry is not None
    polls = int(entry.get("polls", 0))
    delay_s = poll_delay_s(float(entry.get("poll_after_s", 5.0)), polls)
    entry["polls"] = polls + 1
    now = utcnow()
    seq = generation.lease_seq + 1
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.status == RUNNING,
                   Generation.lease_seq == generation.lease_seq)
            .values(lease_seq=seq, provider=provider, attempts_log=list(attempts_log),
                    lease_until=now + timedelta(seconds=delay_s) + _lease(runtime),
                    updated_at=now)
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        return  # canceled meanwhile: the cancel called the provider's cancel itself
    generation.lease_seq = seq
    assert runtime.queue is not None
    try:
        await runtime.queue.enqueue_poll(generation.id, generation.type, seq=seq,
                                         delay_s=delay_s)
    except Exception:
        log.warning("could not queue the poll; the reconciler will resume the task",
                    exc_info=True, extra={"generation_id": generation.id})


async def run_generation(runtime: Runtime, generation_id: str) -> None:
    """The `generation.run` job: claim the generation and advance it; called by queue
    workers. A no-op when the generation is held by another job or has ended, or is a
    follower whose leader still works (the leader queues it when it ends)."""
    if not await cache.may_start(runtime, generation_id):
        return
    generation = await _seen_through(runtime, _claim(runtime, generation_id))
    if generation is None:
        return
    if generation.attempts > MAX_CLAIMS:
        await _give_up(runtime, generation)
        return
    await _advance(runtime, generation)


async def poll_generation(runtime: Runtime, generation_id: str, seq: int) -> None:
    """The `generation.poll` job: ask the provider once about the generation's task, then
    settle, fail over, or schedule the next poll. A no-op for a stale poll."""
    generation = await _seen_through(runtime, _claim_poll(runtime, generation_id, seq))
    if generation is None:
        return
    await _advance(runtime, generation)


async def _seen_through(runtime: Runtime,
                        claiming: Coroutine[Any, Any, Generation | None]) -> Generation | None:
    """The claim's result. A job cancelled while its claim commits (the worker stops) lets
    the claim finish and hands the generation back, instead of leaving it running with no
    job on it until the lease runs out."""
    claim = asyncio.ensure_future(claiming)
    try:
        return await asyncio.shield(claim)
    except asyncio.CancelledError:
        await asyncio.shield(_hand_back_claimed(runtime, claim))
        raise


async def _hand_back_claimed(runtime: Runtime,
                             claim: asyncio.Future[Generation | None]) -> None:
    try:
        generation = await claim
    except Exception:
        log.warning("a cancelled job's claim failed; nothing was taken", exc_info=True)
        return
    if generation is not None:
        await _hand_back(runtime, generation)


async def _give_up(runtime: Runtime, generation: Generation) -> None:
    """Claimed too often (every worker that took it died or stopped): fail and void."""
    for name, task in pending_tasks(generation.attempts_log or []).items():
        provider = runtime.plugins.get(name)
        if provider is not None:
            await _cancel_task(runtime, generation, provider, task)
    await finish_failed(runtime, generation.tenant_id, generation.id, code="interrupted",
                        message="the generation was interrupted too many times")


async def _advance(runtime: Runtime, generation: Generation) -> None:
    try:
        follow = await cache.leader_outcome(runtime, generation)
        if follow is None:
            async with _renewing(runtime, generation):
                await _run(runtime, generation)
        else:
            await _follow(runtime, generation, follow)
    except asyncio.CancelledError:
        # The worker stops (SIGTERM past its grace period): hand the generation back.
        await asyncio.shield(_hand_back(runtime, generation))
        raise
    except Exception:
        log.exception("generation crashed", extra={"generation_id": generation.id})
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="internal_error", message="the generation failed unexpectedly")
    # The in-flight marker goes before a waiting request is woken: an identical request it
    # sends next must not find a finished leader still marked as running.
    await cache.on_finished(runtime, generation.id)
    runtime.completions.done(generation.id)


async def _follow(runtime: Runtime, generation: Generation,
                  leader: cache.LeaderOutcome) -> None:
    """End a follower as its leader ended: its outputs, settled at this generation's own
    price (the leader's provider cost, priced for this caller; no provider cost of its own),
    or the leader's error with the reservation voided."""
    if not leader.succeeded:
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code=leader.error_code or "provider_error",
                            message=leader.error_message or "the provider failed")
        return
    await _succeed(runtime, generation,
                   ProviderResult(outputs=[], cost_usd_micros=leader.cost_usd_micros),
                   list(leader.outputs), provider=leader.provider, attempts_log=[],
                   recorded_cost_usd_micros=0)


async def _hand_back(runtime: Runtime, generation: Generation) -> None:
    """A job cut off while it held the generation: back to `queued` and a fresh run job,
    which polls a recorded task instead of submitting again. Failing that, the lease runs
    out and the reconciler does the same."""
    try:
        async with runtime.db.transaction() as session:
            result = await session.execute(
                update(Generation)
                .where(Generation.id == generation.id, Generation.status == RUNNING,
                       Generation.lease_seq == generation.lease_seq)
                .values(status=QUEUED, lease_until=None, updated_at=utcnow())
            )
        if result.rowcount and runtime.queue is not None:  # type: ignore[attr-defined]
            await runtime.queue.enqueue(generation.id, generation.type,
                                        key=nudge_key(generation.id, generation.attempts))
    except Exception:
        log.warning("could not hand the generation back; the reconciler will",
                    exc_info=True, extra={"generation_id": generation.id})


async def _with_inputs(runtime: Runtime, request: ProviderRequest) -> ProviderRequest:
    """The request with its stored inputs loaded (once per job: polls need none)."""
    if not media_urls.holds_inputs(request.params):
        return request
    params, inputs = await media_urls.load_inputs(runtime, request.params)
    return msgspec.structs.replace(request, params=params, inputs=inputs.media,
                                   samples=inputs.samples)


def nudge_key(generation_id: str, attempts: int) -> str:
    """The job key of a re-run after `attempts` claims: one such job per claim count, so
    repeated nudges for one stalled generation queue one job."""
    return f"{generation_id}:n{attempts}"


async def _run(runtime: Runtime, generation: Generation) -> None:
    """Try the candidates in order until one serves the request, a final error, or an
    asynchronous task to poll later."""
    states = runtime.routing
    await states.refresh(runtime)
    request = ProviderRequest(type=generation.type, operation=generation.operation,
                              prompt=generation.prompt, params=generation.params,
                              idempotency_key=generation.id)
    attempts_log: list[dict[str, Any]] = [dict(a) for a in generation.attempts_log or []]
    _interrupted(runtime, attempts_log)
    pending = pending_tasks(attempts_log)
    done = {a["provider"] for a in attempts_log if a.get("outcome") in ("succeeded", "failed")}
    last_error: ProviderError | None = None
    for name in generation.candidates or [generation.provider]:
        if name in done:
            continue
        provider = runtime.plugins.get(name)
        if provider is None:
            attempts_log.append(_attempt(name, "skipped", "provider_not_installed"))
            continue
        task = pending.get(name)
        if task is not None:
            # A task already at the provider: ask about it, never submit it again.
            entry = _running_entry(attempts_log, name)
            assert entry is not None
            outcome, latency_ms = await _poll_once(runtime, generation, provider, task, entry)
        else:
            refused, trial = states.acquire(provider)
            if refused is not None:
                attempts_log.append(_attempt(name, "skipped", refused))
                continue
            try:
                _begin_call(attempts_log, name)
                if not await _save_progress(runtime, generation, name, attempts_log):
                    return  # canceled (or expired) before this call: call nobody
                try:
                    request = await _with_inputs(runtime, request)
                except ProviderError as exc:
                    outcome, latency_ms = exc, 0
                else:
                    outcome, latency_ms = await _call_once(runtime, generation, provider,
                                                           request, attempts_log)
            finally:
                states.finish(provider, trial=trial)
        if outcome is None:
            return  # canceled while the provider worked
        if isinstance(outcome, ProviderTask):
            await _schedule_poll(runtime, generation, name, attempts_log)
            return
        if isinstance(outcome, ProviderResult):
            await states.record(runtime, provider, latency_ms=latency_ms, error=None)
            _settle(attempts_log, _attempt(name, "succeeded", None, latency_ms))
            outputs = await _store(runtime, generation, outcome)
            await _succeed(runtime, generation, outcome, outputs, provider=name,
                           attempts_log=attempts_log)
            return
        await states.record(runtime, provider, latency_ms=latency_ms, error=outcome)
        _settle(attempts_log, _attempt(name, "failed", outcome.code, latency_ms,
                                       retry_after_s=outcome.retry_after_s))
        if not outcome.retryable:
            await finish_failed(runtime, generation.tenant_id, generation.id,
                                code=outcome.code, message=outcome.message,
                                attempts_log=attempts_log)
            return
        last_error = outcome
    if last_error is None:
        # Failed over past every candidate: the last failure (maybe an earlier job's).
        failures = [a for a in attempts_log if a.get("outcome") == "failed"]
        if failures:
            last_error = ProviderError(_FAILED_MESSAGES.get(failures[-1]["error_code"],
                                                            "the provider failed"),
                                       code=failures[-1]["error_code"] or "provider_error",
                                       retryable=True)
    if last_error is not None:
        await finish_failed(runtime, generation.tenant_id, generation.id, code=last_error.code,
                            message=last_error.message, attempts_log=attempts_log)
    else:
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="providers_unavailable",
                            message="no provider could be called (circuit open, rate "
                                    "limited or not installed)",
                            attempts_log=attempts_log)


_FAILED_MESSAGES = {
    "interrupted": "the worker running the provider call stopped; the provider cannot be "
                   "called again safely for this generation",
}


async def reconcile(runtime: Runtime, *, now: datetime | None = None,
                    limit: int = 500) -> int:
    """Nudge every generation that stopped moving; returns how many were nudged.

    Called on a schedule by workers and API processes (`sweep_forever`). Stopped moving:
    `queued` for longer than a lease (its job never reached the queue, or SAQ lost it), or
    `running` past its lease (its worker died, or a poll job was lost). Each gets a run job
    keyed by its claim count, so repeated rounds queue it once; the job's claim takes the
    generation over atomically, and does nothing if it moved meanwhile.
    """
    now = now or utcnow()
    stale = now - _lease(runtime)
    async with runtime.db.session() as session:
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
    assert runtime.queue is not None
    for generation_id, media_type, attempts in rows:
        await runtime.queue.enqueue(generation_id, media_type,
                                    key=nudge_key(generation_id, attempts))
    if rows:
        log.info("reconciler nudged %d stalled generations", len(rows))
    return len(rows)


async def sweep_expired_reservations(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Void reservations past their timeout and fail their generations; returns how many.

    Called on a schedule by workers and the embedded server (`now` is for tests). Works in
    batches until none is left, so a backlog never waits for the next round.
    """
    count = 0
    while True:
        async with runtime.db.session() as session:
            expired = await ledger.expired_reservations(session, now=now)
        if not expired:
            return count
        for pending in expired:
            count += 1
            if pending.generation_id is not None and await finish_failed(
                runtime, pending.tenant_id, pending.generation_id, code="reservation_expired",
                message="the generation did not finish before its reservation expired",
            ):
                continue
            # No generation to fail (or it already ended): release the credits alone.
            async with runtime.db.transaction() as session:
                with contextlib.suppress(ledger.AlreadyResolved):
                    await ledger.void(session, tenant_id=pending.tenant_id,
                                      pending_id=pending.id)


async def recover_embedded(runtime: Runtime) -> int:
    """Requeue what a stopped embedded process left behind; returns how many.

    Called at start in embedded mode only, where this process is the sole worker: anything
    `running` was interrupted mid-job, and an in-process queue kept nothing across the stop.
    """
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Generation).where(Generation.status == RUNNING)
            .values(status=QUEUED, updated_at=now)
        )
        queued = (await session.execute(
            select(Generation.id, Generation.type).where(Generation.status == QUEUED)
        )).all()
    assert runtime.queue is not None
    for generation_id, media_type in queued:
        await runtime.queue.enqueue(generation_id, media_type)
    return len(queued)
