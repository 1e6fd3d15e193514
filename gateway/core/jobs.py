"""The job queue seam: SAQ on Valkey in production, an in-process dispatcher when embedded.

A job carries only a generation id (and a poll job its lease sequence). The generation row is
the source of truth, so a job is a nudge to advance it: running one twice, or after the
generation was canceled, is harmless (gateway/generations/pipeline.py claims the row with a
conditional UPDATE before it calls anybody).

Two tasks, registered under explicit names:
- `generation.run`: claim the generation and call its providers; an asynchronous provider is
  only submitted, and the job ends, freeing its slot;
- `generation.poll`: scheduled `delay` seconds later, asks the provider once about its task,
  then settles or schedules the next poll.

SAQ settings, chosen deliberately (DESIGN.md "Reliability notes"): a job has a heartbeat of
the lease (`MEDIAHUB_JOB_LEASE_S`) that the task renews every third of it, so SAQ's sweep finds
a SIGKILLed worker's job within a lease and retries it (a few retries, then ABORTED); a
timeout above the pipeline's own provider timeouts; and SAQ's sweep runs every
`MEDIAHUB_SWEEP_INTERVAL_S`. Whatever SAQ does with a lost job, the reconciler
(`pipeline.reconcile`) nudges every generation that stopped moving, so nothing depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError
from saq import Queue, Worker
from saq.job import Job
from saq.types import PartialTimersDict

from plugins.vocabulary import MEDIA_TYPES

log = logging.getLogger(__name__)

RUN_GENERATION = "generation.run"
POLL_GENERATION = "generation.poll"

# Above the pipeline's own limits (a synchronous provider call gets 300 s), so SAQ never cuts
# a call the pipeline would still wait for.
JOB_TIMEOUT_S = 600
JOB_RETRIES = 3
JOB_RETRY_DELAY_S = 1.0
# How long a stopping worker waits for cancelled jobs to hand their generations back.
HAND_BACK_DEADLINE_S = 30.0


class WorkerStopping(Exception):
    """Raised by a job dequeued after its worker began to stop: SAQ queues it again (a retry)
    for another worker, instead of this one claiming a generation it would hand back."""


@dataclass(frozen=True, slots=True)
class Handlers:
    """What the jobs call: `run(generation_id)` and `poll(generation_id, seq)`."""

    run: Callable[[str], Awaitable[None]]
    poll: Callable[[str, int], Awaitable[None]]


class JobQueue(Protocol):
    async def enqueue(self, generation_id: str, media_type: str, *,
                      key: str | None = None) -> None:
        """Queue a run job on the queue of the media type. `key` (default: the generation id)
        dedupes: a second job with a key already waiting or running is not queued."""

    async def enqueue_poll(self, generation_id: str, media_type: str, *, seq: int,
                           delay_s: float) -> None:
        """Queue a poll job to run `delay_s` from now, valid for lease sequence `seq`."""

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs jobs as asyncio tasks in this process, at most `concurrency_for(type)` at a time
    per media type. A poll waits for its time before it takes a slot."""

    def __init__(self, handlers: Handlers, *,
                 concurrency_for: Callable[[str], int]) -> None:
        self._handlers = handlers
        self._concurrency_for = concurrency_for
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: set[str] = set()

    def _slot(self, media_type: str) -> asyncio.Semaphore:
        if media_type not in self._slots:
            self._slots[media_type] = asyncio.Semaphore(self._concurrency_for(media_type))
        return self._slots[media_type]

    def _spawn(self, key: str, media_type: str, job: Callable[[], Awaitable[None]],
               delay_s: float = 0.0) -> None:
        if key in self._keys:
            return  # the same job is already waiting or running, as SAQ would refuse it
        self._keys.add(key)

        async def run() -> None:
            try:
                if delay_s > 0:
                    await asyncio.sleep(delay_s)  # a timer, holding no slot
                async with self._slot(media_type):
                    await job()
            except Exception:
                log.exception("generation job failed", extra={"job": key})
            finally:
                self._keys.discard(key)

        task = asyncio.create_task(run(), name=f"job:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def enqueue(self, generation_id: str, media_type: str, *,
                      key: str | None = None) -> None:
        self._spawn(key or generation_id, media_type,
                    lambda: self._handlers.run(generation_id))

    async def enqueue_poll(self, generation_id: str, media_type: str, *, seq: int,
                           delay_s: float) -> None:
        self._spawn(poll_key(generation_id, seq), media_type,
                    lambda: self._handlers.poll(generation_id, seq), delay_s)

    async def drain(self) -> None:
        """Wait until every queued job (scheduled polls included) has finished (used at
        shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


def queue_name(prefix: str, media_type: str) -> str:
    return f"{prefix}:{media_type}"


def poll_key(generation_id: str, seq: int) -> str:
    # Not the generation id: the run job that schedules the first poll still holds that key.
    return f"{generation_id}:poll:{seq}"


class SaqQueue:
    """One SAQ queue per media type on Valkey, so workers scale per type."""

    def __init__(self, url: str, *, prefix: str, heartbeat_s: int = 60) -> None:
        self.heartbeat_s = heartbeat_s
        self.queues: dict[str, Queue] = {
            t: Queue.from_url(url, name=queue_name(prefix, t)) for t in MEDIA_TYPES
        }

    def _job_fields(self) -> dict[str, Any]:
        return {"timeout": JOB_TIMEOUT_S, "heartbeat": self.heartbeat_s,
                "retries": JOB_RETRIES, "retry_delay": JOB_RETRY_DELAY_S,
                "retry_backoff": True}

    async def enqueue(self, generation_id: str, media_type: str, *,
                      key: str | None = None) -> None:
        # The job key dedupes: SAQ will not queue a second copy while one is live.
        await self.queues[media_type].enqueue(
            RUN_GENERATION, key=key or generation_id, generation_id=generation_id,
            **self._job_fields())

    async def enqueue_poll(self, generation_id: str, media_type: str, *, seq: int,
                           delay_s: float) -> None:
        # SAQ schedules in whole epoch seconds; 0 means "now".
        scheduled = math.ceil(time.time() + delay_s) if delay_s > 0 else 0
        await self.queues[media_type].enqueue(
            POLL_GENERATION, key=poll_key(generation_id, seq), generation_id=generation_id,
            seq=seq, scheduled=scheduled, **self._job_fields())

    async def close(self) -> None:
        for queue in self.queues.values():
            # A queue whose server was never reachable has nothing to hand back.
            with contextlib.suppress(ConnectionError, OSError, RedisError):
                await queue.disconnect()


async def _beating(job: Job | None, work: Awaitable[None]) -> None:
    """Run `work`, touching the SAQ job every third of its heartbeat, so SAQ's sweep sees a
    live job as live and a dead worker's job as stuck."""
    if job is None or not job.heartbeat:
        await work
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(job.heartbeat / 3)
            try:
                await job.update()
            except (ConnectionError, OSError, RedisError):
                log.warning("could not renew the heartbeat of job %s", job.id)

    beater = asyncio.create_task(beat())
    try:
        await work
    finally:
        beater.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beater


class _GracefulWorker(Worker[Any]):
    """A SAQ worker whose stop waits for running jobs (up to `grace_s`) before SAQ's own stop
    cancels what is left. SAQ's grace period would also wait on its upkeep loops, which sleep
    up to a sweep interval, and idle dequeues; so its own is zero and the wait is done here.
    """

    grace_s: float = 0.0

    async def stop(self) -> None:
        self.event.set()  # no new jobs: idle dequeues end within `dequeue_timeout`
        running = [ctx["task"] for ctx in self.job_task_contexts.values()]
        if running:
            _, late = await asyncio.wait(running, timeout=self.grace_s)
            for task in late:
                task.cancel()
            if late:
                # Their hand-back is a database write and an enqueue: let it complete.
                await asyncio.wait(late, timeout=HAND_BACK_DEADLINE_S)
        await super().stop()


def _refuse_if_stopping(ctx: dict[str, Any]) -> None:
    # A dequeue already waiting when the stop began can still return a job (often the very
    # run job a hand-back just queued); claiming it here would only hand it back again.
    worker = ctx.get("worker")
    if worker is not None and worker.event.is_set():
        raise WorkerStopping("dequeued while the worker stops: queued again for another")


def build_workers(saq_queue: SaqQueue, media_types: list[str], handlers: Handlers, *,
                  concurrency_for: Callable[[str], int],
                  sweep_interval_s: int = 60) -> list[Worker[Any]]:
    """SAQ workers for the given media types, each running both tasks with the queue's own
    concurrency. Stop them with `stop_workers`."""

    async def run_generation(ctx: dict[str, Any], *, generation_id: str) -> None:
        _refuse_if_stopping(ctx)
        await _beating(ctx.get("job"), handlers.run(generation_id))

    async def poll_generation(ctx: dict[str, Any], *, generation_id: str, seq: int) -> None:
        _refuse_if_stopping(ctx)
        await _beating(ctx.get("job"), handlers.poll(generation_id, seq))

    timers: PartialTimersDict = {"schedule": 1, "worker_info": 10, "abort": 1,
                                 "sweep": sweep_interval_s}
    return [
        _GracefulWorker(saq_queue.queues[t],
                        functions=[(RUN_GENERATION, run_generation),
                                   (POLL_GENERATION, poll_generation)],
                        concurrency=concurrency_for(t), shutdown_grace_period_s=0,
                        # SAQ's own cancel of a job waits as long as ours for its hand-back.
                        cancellation_hard_deadline_s=HAND_BACK_DEADLINE_S,
                        dequeue_timeout=1.0, timers=timers)
        for t in media_types
    ]


async def stop_workers(workers: list[Worker[Any]], *, grace_s: float) -> None:
    """Stop taking jobs, give running ones `grace_s` to finish, then cancel what is left.

    A cancelled job hands its generation back (pipeline: the row returns to `queued` and a
    fresh run job is queued) before the worker stops, so nothing waits for the reconciler;
    a job dequeued while stopping is handed back the same way.
    """
    for worker in workers:
        if isinstance(worker, _GracefulWorker):
            worker.grace_s = grace_s
    await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)
