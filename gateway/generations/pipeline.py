"""The worker side of a generation: run the provider, store the outputs, settle the credits.

`run_generation` is what a queued job calls. It may run twice for one generation (a redelivered
job) or after a cancel: the conditional status updates make every repeat a no-op.

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
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.pricing import price
from gateway import media_urls
from gateway.generations import cache, quotas
from gateway.generations.models import QUEUED, RUNNING, SUCCEEDED, Generation
from gateway.generations.service import finish_failed
from gateway.runtime import Runtime
from gateway.webhooks import outbox
from plugins.base import (
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
    error_from_exception,
)
from tenants.db import utcnow
from tenants.models import Customer, Tenant

log = logging.getLogger(__name__)

#: How long one provider call may take before it counts as a (retryable) timeout; an
#: asynchronous provider's task, polled, gets `ASYNC_PROVIDER_TIMEOUT_S`.
PROVIDER_TIMEOUT_S: float = 300
ASYNC_PROVIDER_TIMEOUT_S: float = 600

_EXTENSIONS = {"image/png": ".png", "audio/wav": ".wav", "video/mp4": ".mp4",
               "model/gltf-binary": ".glb", "application/pdf": ".pdf"}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


async def _claim(runtime: Runtime, generation_id: str) -> Generation | None:
    """queued → running, once; None when the generation is not (or no longer) queued."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.status == QUEUED)
            .values(status=RUNNING, started_at=now, updated_at=now,
                    attempts=Generation.attempts + 1)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return None
        return await session.get(Generation, generation_id)


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
    async with runtime.db.session() as session:
        tenant = await session.get(Tenant, generation.tenant_id)
        customer = (await session.get(Customer, generation.customer_id)
                    if generation.customer_id else None)
    assert tenant is not None
    await cache.remember(runtime, tenant, generation)
    actual = price(result.cost_usd_micros, media_type=generation.type,
                   tenant_pricing=tenant.pricing, tier=customer.tier if customer else None,
                   platform_markup_bps=runtime.settings.platform_markup_bps)
    # Never charge above a reservation, whatever the provider reports (a failover provider
    # dearer than the first candidate included).
    wholesale = min(actual.wholesale_mc, generation.wholesale_mc)
    retail = min(actual.retail_mc, generation.retail_mc)
    charged = retail if generation.customer_reservation_id else wholesale
    now = utcnow()

    async def settle(session: AsyncSession) -> None:
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
        await outbox.generation_ended(session, generation.tenant_id, generation.id, SUCCEEDED)
        assert generation.reservation_id is not None
        await ledger.post(session, tenant_id=generation.tenant_id,
                          pending_id=generation.reservation_id, amount_mc=wholesale)
        if generation.customer_reservation_id is not None:
            await ledger.post(session, tenant_id=generation.tenant_id,
                              pending_id=generation.customer_reservation_id, amount_mc=retail)
        await quotas.give_back(session, generation.tenant_id, generation.spend_day,
                               generation.wholesale_mc - wholesale)

    await runtime.db.grouped(settle)
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
    """Record who is being called and the attempts so far; False once no longer running
    (canceled, or ended by the sweeper): then nothing more may be called."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.status == RUNNING)
            .values(provider=provider, attempts_log=list(attempts_log), updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class _Stopped(Exception):
    """The generation stopped running (canceled) while an asynchronous task was polled."""


async def _call(runtime: Runtime, generation: Generation, provider: Provider,
                request: ProviderRequest, attempts_log: list[dict[str, Any]],
                resume: ProviderTask | None) -> ProviderResult:
    """One call: `generate`, or for an asynchronous provider submit (recording the task id
    before waiting on it) and poll until done."""
    credentials = runtime.credentials(provider.name)
    if not provider.asynchronous:
        return await provider.generate(request, credentials, runtime.http)
    task = resume
    if task is None:
        task = await provider.submit(request, credentials, runtime.http)
        attempts_log.append(_attempt(provider.name, "running", None, task_id=task.task_id,
                                     poll_after_s=task.poll_after_s))
        if not await _save_progress(runtime, generation, provider.name, attempts_log):
            await provider.cancel(task, credentials, runtime.http)
            raise _Stopped
    try:
        while True:
            result = await provider.poll(task, credentials, runtime.http)
            if result is not None:
                return result
            await asyncio.sleep(task.poll_after_s)
            if not await _still_running(runtime, generation.id):
                await provider.cancel(task, credentials, runtime.http)
                raise _Stopped
    except asyncio.CancelledError:
        # Timed out (or the worker stops): do not leave the task running at the provider.
        with contextlib.suppress(Exception):
            await asyncio.shield(provider.cancel(task, credentials, runtime.http))
        raise


async def _still_running(runtime: Runtime, generation_id: str) -> bool:
    async with runtime.db.session() as session:
        status = await session.scalar(
            select(Generation.status).where(Generation.id == generation_id))
    return status == RUNNING


def _pending_tasks(attempts_log: list[dict[str, Any]]) -> dict[str, ProviderTask]:
    """Asynchronous tasks a previous run submitted and never saw finish, by provider."""
    return {a["provider"]: ProviderTask(task_id=a["task_id"],
                                        poll_after_s=a.get("poll_after_s", 5.0))
            for a in attempts_log if a.get("outcome") == "running" and a.get("task_id")}


async def run_generation(runtime: Runtime, generation_id: str) -> None:
    """Advance one generation from queued to a final state; called by queue workers."""
    if not await cache.may_start(runtime, generation_id):
        return  # a follower whose leader still works: the leader queues it when it ends
    generation = await _claim(runtime, generation_id)
    if generation is None:
        return
    try:
        follow = await cache.leader_outcome(runtime, generation)
        if follow is None:
            await _run(runtime, generation)
        else:
            await _follow(runtime, generation, follow)
    except Exception:
        log.exception("generation crashed", extra={"generation_id": generation.id})
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="internal_error", message="the generation failed unexpectedly")
    runtime.completions.done(generation.id)
    await cache.on_finished(runtime, generation.id)


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


async def _run(runtime: Runtime, generation: Generation) -> None:
    """Try the candidates in order until one serves the request or a final error."""
    states = runtime.routing
    await states.refresh(runtime)
    request = ProviderRequest(type=generation.type, operation=generation.operation,
                              prompt=generation.prompt, params=generation.params)
    attempts_log: list[dict[str, Any]] = list(generation.attempts_log or [])
    pending = _pending_tasks(attempts_log)
    done = {a["provider"] for a in attempts_log if a.get("outcome") in ("succeeded", "failed")}
    last_error: ProviderError | None = None
    for name in generation.candidates or [generation.provider]:
        if name in done:
            continue
        provider = runtime.plugins.get(name)
        if provider is None:
            attempts_log.append(_attempt(name, "skipped", "provider_not_installed"))
            continue
        refused, trial = states.acquire(provider)
        if refused is not None:
            attempts_log.append(_attempt(name, "skipped", refused))
            continue
        try:
            if not await _save_progress(runtime, generation, name, attempts_log):
                return  # canceled (or expired) before this call: call nobody
            outcome, latency_ms = await _call_once(runtime, generation, provider, request,
                                                   attempts_log, pending.get(name))
        finally:
            states.finish(provider, trial=trial)
        if outcome is None:
            return  # canceled while an asynchronous task ran
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
    if last_error is not None:
        await finish_failed(runtime, generation.tenant_id, generation.id, code=last_error.code,
                            message=last_error.message, attempts_log=attempts_log)
    else:
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="providers_unavailable",
                            message="no provider could be called (circuit open, rate "
                                    "limited or not installed)",
                            attempts_log=attempts_log)


async def _call_once(runtime: Runtime, generation: Generation, provider: Provider,
                     request: ProviderRequest, attempts_log: list[dict[str, Any]],
                     resume: ProviderTask | None,
                     ) -> tuple[ProviderResult | ProviderError | None, int]:
    """One provider call under its timeout: the result, the classified error, or None when
    the generation was canceled meanwhile; with the call's latency in ms."""
    timeout_s = ASYNC_PROVIDER_TIMEOUT_S if provider.asynchronous else PROVIDER_TIMEOUT_S
    started = runtime.routing.timer()
    outcome: ProviderResult | ProviderError | None
    try:
        outcome = await asyncio.wait_for(
            _call(runtime, generation, provider, request, attempts_log, resume),
            timeout=timeout_s)
        outcome = await media_urls.fetch_outputs(runtime, outcome)
    except _Stopped:
        outcome = None
    except Exception as exc:
        outcome = error_from_exception(exc)
        if outcome.code == "provider_error":
            log.warning("provider raised %s", type(exc).__name__, exc_info=exc,
                        extra={"generation_id": generation.id, "provider": provider.name})
    return outcome, round((runtime.routing.timer() - started) * 1000)


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
