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

Every write to the row goes through `lifecycle` (claims, progress, hand-backs, the end).

Crash safety: a running generation has a lease (`MEDIAHUB_JOB_LEASE_S`) that its job renews
while it works. A worker killed mid-job stops renewing; `sweeps.reconcile` (every sweep
interval) nudges such generations, and queued ones whose job never reached the queue, and the next
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
import logging
import mimetypes
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

import msgspec

from gateway.core import logs, tracing
from gateway.core.metrics import instruments
from gateway.generations import cache, derivatives, lifecycle
from gateway.generations import inputs as media_urls
from gateway.generations.models import AttemptRecord, Generation, StoredOutput
from gateway.generations.services import Services
from gateway.providers.credentials import credential_scope, credentials_for
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


async def _store(services: Services, generation: Generation,
                 result: ProviderResult) -> list[StoredOutput]:
    stored: list[StoredOutput] = []
    for index, output in enumerate(result.outputs):
        key = f"{generation.tenant_id}/{generation.id}/{index}{_extension(output.content_type)}"
        await services.runtime.storage.put(key, output.data, output.content_type)
        # Previews (thumbnail, poster frame, waveform peaks); none when they fail.
        derived = await derivatives.derive(services.runtime, key, output.content_type,
                                           output.data)
        stored.append(StoredOutput(key=key, content_type=output.content_type,
                                   bytes=len(output.data), width=output.width,
                                   height=output.height, duration_s=output.duration_s,
                                   thumbnail_key=derived.thumbnail_key, peaks=derived.peaks))
    return stored


def _attempt(provider: str, outcome: str, error_code: str | None, latency_ms: int = 0,
             retry_after_s: float | None = None) -> AttemptRecord:
    return AttemptRecord(provider=provider, outcome=outcome, error_code=error_code,
                         latency_ms=latency_ms, at=utcnow().isoformat(),
                         retry_after_s=retry_after_s)


def _settle(attempts_log: list[AttemptRecord], entry: AttemptRecord) -> None:
    """Append a finished attempt, replacing the provider's `running` entry (its task id is
    kept on the finished one)."""
    for index, item in enumerate(attempts_log):
        if item.provider == entry.provider and item.outcome == "running":
            if item.task_id and entry.task_id is None:
                entry.task_id = item.task_id
            del attempts_log[index]
            break
    attempts_log.append(entry)


def _running_entry(attempts_log: list[AttemptRecord], provider: str) -> AttemptRecord | None:
    for item in attempts_log:
        if item.provider == provider and item.outcome == "running":
            return item
    return None


def _begin_call(attempts_log: list[AttemptRecord], provider: str) -> AttemptRecord:
    """The provider's `running` entry, saved before the call: found later without a task
    id, it says a call was in flight when its worker died."""
    entry = _running_entry(attempts_log, provider)
    if entry is None:
        entry = _attempt(provider, "running", None)
        attempts_log.append(entry)
    return entry


def _interrupted(services: Services, attempts_log: list[AttemptRecord]) -> None:
    """Deal with calls a previous holder started and never saw end (no task id recorded).

    A provider that takes our idempotency key (`Provider.idempotency_keys`) is simply called
    again with the same key: it will not charge twice. Any other provider may have done (and
    billed) the work, so it is not called again for this generation: the call counts as
    failed (`interrupted`, retryable) and the generation fails over to its next candidate,
    or fails with its reservation voided. The customer is never charged twice either way.
    """
    for index, item in enumerate(list(attempts_log)):
        if item.outcome != "running" or item.task_id:
            continue
        provider = services.runtime.plugins.get(item.provider)
        if provider is not None and provider.idempotency_keys:
            attempts_log.remove(item)
            continue
        attempts_log[index] = _attempt(item.provider, "failed", "interrupted")


class _Stopped(Exception):
    """The generation stopped running (canceled) while its provider was being called."""


Outcome = ProviderResult | ProviderTask | ProviderError | None


async def _call_once(services: Services, generation: Generation, provider: Provider,
                     request: ProviderRequest, attempts_log: list[AttemptRecord],
                     ) -> tuple[Outcome, int]:
    """One call under its timeout: `generate`'s result, or an asynchronous provider's
    accepted task (its id saved before anything else happens); the classified error; or
    None when the generation was canceled meanwhile. With the call's latency in ms."""
    started = services.providers.timer()
    with tracing.span(f"provider {provider.name}", kind=tracing.SpanKind.CLIENT,
                      attributes={"mediahub.provider": provider.name,
                                  "mediahub.generation_id": generation.id,
                                  "mediahub.call": "submit" if provider.asynchronous
                                  else "generate"}) as span:
        outcome = await _call_provider(services, generation, provider, request, attempts_log)
        _mark_span(span, outcome)
    latency_s = services.providers.timer() - started
    _observe_call(provider.name, outcome, latency_s)
    return outcome, round(latency_s * 1000)


async def _call_provider(services: Services, generation: Generation, provider: Provider,
                         request: ProviderRequest, attempts_log: list[AttemptRecord],
                         ) -> Outcome:
    outcome: Outcome
    try:
        credentials = await credentials_for(services.runtime, generation.tenant_id, provider.name)
        if not provider.asynchronous:
            outcome = await media_urls.fetch_outputs(services.runtime, await asyncio.wait_for(
                provider.generate(request, credentials, services.runtime.http),
                PROVIDER_TIMEOUT_S))
        else:
            task = await asyncio.wait_for(
                provider.submit(request, credentials, services.runtime.http),
                PROVIDER_TIMEOUT_S)
            entry = _begin_call(attempts_log, provider.name)
            entry.task_id, entry.poll_after_s = task.task_id, task.poll_after_s
            entry.at = utcnow().isoformat()
            if not await lifecycle.save_progress(services, generation, provider.name,
                                                 attempts_log):
                raise _Stopped
            outcome = task
    except _Stopped:
        await _cancel_task(services, generation, provider, task)
        outcome = None
    except Exception as exc:
        outcome = _classified(exc, generation, provider)
    return outcome


def _outcome_label(outcome: Outcome) -> str:
    if isinstance(outcome, ProviderError):
        return "retryable_error" if outcome.retryable else "error"
    if isinstance(outcome, ProviderTask):
        return "pending"
    return "ok" if outcome is not None else "canceled"


def _observe_call(provider: str, outcome: Outcome, seconds: float) -> None:
    instruments().provider_call(provider, _outcome_label(outcome), seconds)


def _mark_span(span: Any, outcome: Outcome) -> None:
    if span is None:
        return
    span.set_attribute("mediahub.outcome", _outcome_label(outcome))
    if isinstance(outcome, ProviderError):
        span.set_attribute("error.type", outcome.code)


def _classified(exc: Exception, generation: Generation, provider: Provider) -> ProviderError:
    error = error_from_exception(exc)
    if error.code == "provider_error":
        log.warning("provider raised %s", type(exc).__name__, exc_info=exc,
                    extra={"generation_id": generation.id, "provider": provider.name})
    return error


async def _cancel_task(services: Services, generation: Generation, provider: Provider,
                       task: ProviderTask) -> None:
    """Best effort: a failure to cancel must not hide what happened to the generation."""
    try:
        credentials = await credentials_for(services.runtime, generation.tenant_id, provider.name)
        await provider.cancel(task, credentials, services.runtime.http)
    except Exception:
        log.warning("could not cancel task %s at %s", task.task_id, provider.name,
                    exc_info=True)


async def _poll_once(services: Services, generation: Generation, provider: Provider,
                     task: ProviderTask, entry: AttemptRecord) -> tuple[Outcome, int]:
    """Ask the provider once about a task: its result, the task again while it runs, or
    the classified error; a task past `ASYNC_PROVIDER_TIMEOUT_S` since its submission is
    canceled at the provider and counts as a (retryable) timeout. Latency: since submit."""
    submitted = datetime.fromisoformat(entry.at)
    outcome: Outcome
    if utcnow() - submitted > timedelta(seconds=ASYNC_PROVIDER_TIMEOUT_S):
        await _cancel_task(services, generation, provider, task)
        outcome = ProviderError.timeout("the provider's task did not finish in time")
    else:
        started = services.providers.timer()
        with tracing.span(f"provider {provider.name}", kind=tracing.SpanKind.CLIENT,
                          attributes={"mediahub.provider": provider.name,
                                      "mediahub.generation_id": generation.id,
                                      "mediahub.call": "poll"}) as span:
            try:
                credentials = await credentials_for(services.runtime, generation.tenant_id,
                                                    provider.name)
                result = await asyncio.wait_for(
                    provider.poll(task, credentials, services.runtime.http),
                    PROVIDER_TIMEOUT_S)
                if result is None:
                    outcome = task
                elif isinstance(result, ProviderTask):
                    # The task's next stage: recorded with the attempt by the poll scheduled
                    # next.
                    entry.task_id, entry.poll_after_s = result.task_id, result.poll_after_s
                    entry.polls = 0
                    outcome = result
                else:
                    outcome = await media_urls.fetch_outputs(services.runtime, result)
            except Exception as exc:
                outcome = _classified(exc, generation, provider)
            _mark_span(span, outcome)
        _observe_call(provider.name, outcome, services.providers.timer() - started)
    return outcome, round((utcnow() - submitted).total_seconds() * 1000)


def poll_delay_s(hint_s: float, polls: int) -> float:
    """When to ask again: the provider's own hint, growing by `POLL_BACKOFF` with each poll
    that found the task still running, capped at `MAX_POLL_INTERVAL_S`."""
    hint = max(hint_s, MIN_POLL_INTERVAL_S)
    return float(min(hint * POLL_BACKOFF ** min(polls, 64), MAX_POLL_INTERVAL_S))


async def _schedule_poll(services: Services, generation: Generation, provider: str,
                         attempts_log: list[AttemptRecord]) -> None:
    """Hand the generation to a poll job `poll_delay_s` from now and end this job, freeing
    its slot (`lifecycle.await_poll`)."""
    entry = _running_entry(attempts_log, provider)
    assert entry is not None
    delay_s = poll_delay_s(lifecycle.poll_hint_s(entry), entry.polls)
    entry.polls += 1
    await lifecycle.await_poll(services, generation, provider, attempts_log, delay_s)


async def run_generation(services: Services, generation_id: str) -> None:
    """The `generation.run` job: claim the generation and advance it; called by queue
    workers. A no-op when the generation is held by another job or has ended, or is a
    follower whose leader still works (the leader queues it when it ends)."""
    logs.bind(generation_id=generation_id, provider=None)
    generation = await _seen_through(services, _claim_run(services, generation_id))
    if generation is None:
        return
    logs.bind(tenant_id=generation.tenant_id, customer_id=generation.customer_id)
    if generation.attempts > MAX_CLAIMS:
        await _give_up(services, generation)
        return
    await _advance(services, generation)


async def _claim_run(services: Services, generation_id: str) -> Generation | None:
    """The run job's claim. Most generations follow no leader: one conditional UPDATE takes
    them. A follower is claimed only once its leader ended (`cache.may_start`)."""
    claimed = await lifecycle.claim(services, generation_id, unless_follower=True)
    if claimed is not None or not await cache.may_start(services.runtime, generation_id):
        return claimed
    return await lifecycle.claim(services, generation_id)


async def poll_generation(services: Services, generation_id: str, seq: int) -> None:
    """The `generation.poll` job: ask the provider once about the generation's task, then
    settle, fail over, or schedule the next poll. A no-op for a stale poll."""
    logs.bind(generation_id=generation_id, provider=None)
    generation = await _seen_through(services, lifecycle.claim_poll(services, generation_id, seq))
    if generation is None:
        return
    logs.bind(tenant_id=generation.tenant_id, customer_id=generation.customer_id)
    await _advance(services, generation)


async def _seen_through(services: Services,
                        claiming: Coroutine[Any, Any, Generation | None]) -> Generation | None:
    """The claim's result. A job cancelled while its claim commits (the worker stops) lets
    the claim finish and hands the generation back, instead of leaving it running with no
    job on it until the lease runs out."""
    claim = asyncio.ensure_future(claiming)
    try:
        return await asyncio.shield(claim)
    except asyncio.CancelledError:
        await asyncio.shield(_hand_back_claimed(services, claim))
        raise


async def _hand_back_claimed(services: Services,
                             claim: asyncio.Future[Generation | None]) -> None:
    try:
        generation = await claim
    except Exception:
        log.warning("a cancelled job's claim failed; nothing was taken", exc_info=True)
        return
    if generation is not None:
        await lifecycle.hand_back(services, generation)


async def _give_up(services: Services, generation: Generation) -> None:
    """Claimed too often (every worker that took it died or stopped): fail and void."""
    for name, task in lifecycle.pending_tasks(generation.attempts_log or []).items():
        provider = services.runtime.plugins.get(name)
        if provider is not None:
            await _cancel_task(services, generation, provider, task)
    await lifecycle.end(services, generation, lifecycle.Failed(
        "interrupted", "the generation was interrupted too many times"), held=True)


async def _advance(services: Services, generation: Generation) -> None:
    try:
        follow = await cache.leader_outcome(services.runtime, generation)
        if follow is None:
            async with lifecycle.renewing(services, generation):
                await _run(services, generation)
        else:
            await _follow(services, generation, follow)
    except asyncio.CancelledError:
        # The worker stops (SIGTERM past its grace period): hand the generation back.
        await asyncio.shield(lifecycle.hand_back(services, generation))
        raise
    except Exception:
        log.exception("generation crashed", extra={"generation_id": generation.id})
        await lifecycle.end(services, generation, lifecycle.Failed(
            "internal_error", "the generation failed unexpectedly"))


async def _follow(services: Services, generation: Generation,
                  leader: cache.LeaderOutcome) -> None:
    """End a follower as its leader ended: its outputs, settled at this generation's own
    price (the leader's provider cost, priced for this caller; no provider cost of its own),
    or the leader's error with the reservation voided."""
    if not leader.succeeded:
        await lifecycle.end(services, generation, lifecycle.Failed(
            leader.error_code or "provider_error",
            leader.error_message or "the provider failed"), held=True)
        return
    await lifecycle.end(services, generation, lifecycle.Succeeded(
        outputs=list(leader.outputs), provider=leader.provider,
        cost_usd_micros=leader.cost_usd_micros, recorded_cost_usd_micros=0),
        held=True, attempts_log=[])


async def _with_inputs(services: Services, request: ProviderRequest) -> ProviderRequest:
    """The request with its stored inputs loaded (once per job: polls need none)."""
    if not media_urls.holds_inputs(request.params):
        return request
    params, inputs = await media_urls.load_inputs(services.runtime, request.params)
    return msgspec.structs.replace(request, params=params, inputs=inputs.media,
                                   samples=inputs.samples)


def _nothing_to_save(generation: Generation, provider: Provider,
                     attempts_log: list[AttemptRecord]) -> bool:
    """Whether the progress save before a call can be left out: the job's first call, to
    the provider the row already names, and one that takes our idempotency key. Its
    `running` entry would protect nothing (a re-run calls such a provider again with the
    same key, `_interrupted`), and the claim just renewed the lease. The end's conditional
    UPDATE still finds a cancel that came meanwhile."""
    return (provider.idempotency_keys and provider.name == generation.provider
            and not generation.attempts_log
            and [a.provider for a in attempts_log] == [provider.name])


async def _run(services: Services, generation: Generation) -> None:
    """Try the candidates in order until one serves the request, a final error, or an
    asynchronous task to poll later."""
    states = services.providers
    await states.refresh(services.runtime)
    # Whose key each call uses decides whose breaker it may open (a tenant's own or the
    # platform's).
    tenant = await services.runtime.tenant_views.tenant(generation.tenant_id)
    request = ProviderRequest(type=generation.type, operation=generation.operation,
                              prompt=generation.prompt, params=generation.params,
                              idempotency_key=generation.id)
    # Copies: the loaded row's records stay as they were read.
    attempts_log = [msgspec.structs.replace(a) for a in generation.attempts_log or []]
    _interrupted(services, attempts_log)
    pending = lifecycle.pending_tasks(attempts_log)
    done = {a.provider for a in attempts_log if a.outcome in ("succeeded", "failed")}
    last_error: ProviderError | None = None
    for name in generation.candidates or [generation.provider]:
        if name in done:
            continue
        provider = services.runtime.plugins.get(name)
        if provider is None:
            attempts_log.append(_attempt(name, "skipped", "provider_not_installed"))
            continue
        logs.bind(provider=name)
        task = pending.get(name)
        if task is not None:
            # A task already at the provider: ask about it, never submit it again.
            entry = _running_entry(attempts_log, name)
            assert entry is not None
            outcome, latency_ms = await _poll_once(services, generation, provider, task, entry)
        else:
            refused, trial = await states.acquire(provider, credential_scope(tenant, name))
            if refused is not None:
                attempts_log.append(_attempt(name, "skipped", refused))
                continue
            try:
                _begin_call(attempts_log, name)
                if not _nothing_to_save(generation, provider, attempts_log) and \
                        not await lifecycle.save_progress(services, generation, name,
                                                          attempts_log):
                    return  # canceled (or expired) before this call: call nobody
                try:
                    request = await _with_inputs(services, request)
                except ProviderError as exc:
                    outcome, latency_ms = exc, 0
                else:
                    outcome, latency_ms = await _call_once(services, generation, provider,
                                                           request, attempts_log)
            finally:
                await states.finish(provider, trial=trial,
                                    scope=credential_scope(tenant, name))
        if outcome is None:
            return  # canceled while the provider worked
        if isinstance(outcome, ProviderTask):
            await _schedule_poll(services, generation, name, attempts_log)
            return
        if isinstance(outcome, ProviderResult):
            await states.record(services.runtime, provider, latency_ms=latency_ms, error=None,
                                scope=credential_scope(tenant, name))
            _settle(attempts_log, _attempt(name, "succeeded", None, latency_ms))
            outputs = await _store(services, generation, outcome)
            await lifecycle.end(services, generation, lifecycle.Succeeded(
                outputs=outputs, provider=name, cost_usd_micros=outcome.cost_usd_micros,
                voice_id=outcome.voice_id),
                held=True, attempts_log=attempts_log)
            return
        await states.record(services.runtime, provider, latency_ms=latency_ms, error=outcome,
                            scope=credential_scope(tenant, name))
        _settle(attempts_log, _attempt(name, "failed", outcome.code, latency_ms,
                                       retry_after_s=outcome.retry_after_s))
        if not outcome.retryable:
            await lifecycle.end(services, generation,
                                lifecycle.Failed(outcome.code, outcome.message),
                                held=True, attempts_log=attempts_log)
            return
        last_error = outcome
    if last_error is None:
        # Failed over past every candidate: the last failure (maybe an earlier job's).
        failures = [a for a in attempts_log if a.outcome == "failed"]
        if failures:
            code = failures[-1].error_code
            last_error = ProviderError(_FAILED_MESSAGES.get(code or "", "the provider failed"),
                                       code=code or "provider_error",
                                       retryable=True)
    failed = (lifecycle.Failed(last_error.code, last_error.message) if last_error is not None
              else lifecycle.Failed("providers_unavailable",
                                    "no provider could be called (circuit open, rate limited "
                                    "or not installed)"))
    await lifecycle.end(services, generation, failed, held=True, attempts_log=attempts_log)


_FAILED_MESSAGES = {
    "interrupted": "the worker running the provider call stopped; the provider cannot be "
                   "called again safely for this generation",
}


