"""The job queue seam: SAQ on Valkey in production, an in-process dispatcher when embedded,
and the one registry of tasks that both run.

A job carries only ids and simple values. The database row a job is about is the source of
truth, so a job is a nudge to advance it: running one twice, or after its object ended, must
be harmless (the generations' jobs claim their row with a conditional UPDATE first).

**Tasks** are registered by name in the process's `TaskRegistry` (`Runtime.tasks`) by its
entry point (`gateway.generations.jobs.register`), never at import time; SAQ workers and the
in-process queue look them up there, so a task has one name and one function everywhere.
**Periodic tasks** (sweepers, reconcilers, health checks) are declared in the same registry
with their interval and run by `run_periodic` in every API and worker process.

**Queues** are named by media type (`image`, `audio`, ...), so workers scale per type.

SAQ settings, chosen deliberately (DESIGN.md "Reliability notes"): a job has a heartbeat of
the lease (`MEDIAHUB_JOB_LEASE_S`) that the worker renews every third of it, so SAQ's sweep
finds a SIGKILLed worker's job within a lease and retries it (a few retries, then ABORTED); a
timeout above the pipeline's own provider timeouts; and SAQ's sweep runs every
`MEDIAHUB_SWEEP_INTERVAL_S`. Whatever SAQ does with a lost job, the generations' reconciler
nudges every generation that stopped moving, so nothing depends on it.
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

from gateway.core import tracing
from plugins.vocabulary import MEDIA_TYPES

log = logging.getLogger(__name__)

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


#: A task: called with the job's keyword arguments.
Task = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    """A task run every `interval_s` seconds in every API and worker process."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[Any]]
    #: When it first runs after the process starts (default: one interval).
    first_after_s: float | None = None


class TaskRegistry:
    """The tasks a process runs, by name, and its periodic tasks; filled in by the process's
    entry point before its queue runs anything."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self.periodic: list[Periodic] = []

    def register(self, name: str, task: Task) -> None:
        """Add a task; raises `ValueError` when the name is taken (two domains' `run` must
        not collide)."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already registered")
        self._tasks[name] = task

    def every(self, name: str, interval_s: float, run: Callable[[], Awaitable[Any]], *,
              first_after_s: float | None = None) -> None:
        """Declare a periodic task (see `run_periodic`)."""
        self.periodic.append(Periodic(name=name, interval_s=interval_s, run=run,
                                      first_after_s=first_after_s))

    def get(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise LookupError(f"no task named {name!r} is registered in this process") from None

    @property
    def names(self) -> list[str]:
        return list(self._tasks)


async def run_periodic(registry: TaskRegistry) -> None:
    """Run every periodic task at its interval until cancelled; a task that raises is
    logged and runs again at its next turn."""
    loop = asyncio.get_running_loop()
    due = {p.name: loop.time() + (p.interval_s if p.first_after_s is None else p.first_after_s)
           for p in registry.periodic}
    while True:
        if not registry.periodic:
            await asyncio.Event().wait()
        now = loop.time()
        for periodic in registry.periodic:
            if due[periodic.name] > now:
                continue
            try:
                await periodic.run()
            except Exception:
                log.exception("periodic task %s failed", periodic.name)
            due[periodic.name] = loop.time() + periodic.interval_s
        await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))


class JobQueue(Protocol):
    async def enqueue(self, task: str, queue: str, *, key: str, delay_s: float = 0.0,
                      **kwargs: Any) -> None:
        """Queue a job of `task` on `queue` (a media type), to run `delay_s` from now with
        `kwargs`. `key` dedupes: a second job with a key already waiting or running is not
        queued."""

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs jobs as asyncio tasks in this process, at most `concurrency_for(type)` at a time
    per media type. A poll waits for its time before it takes a slot."""

    def __init__(self, tasks: TaskRegistry, *,
                 concurrency_for: Callable[[str], int]) -> None:
        self._registry = tasks
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
                log.exception("job failed", extra={"job": key})
            finally:
                self._keys.discard(key)

        task = asyncio.create_task(run(), name=f"job:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def enqueue(self, task: str, queue: str, *, key: str, delay_s: float = 0.0,
                      **kwargs: Any) -> None:
        run = self._registry.get(task)  # an unknown task fails here, at the caller
        with tracing.span(f"enqueue {task}", kind=tracing.SpanKind.PRODUCER,
                          attributes={"messaging.destination.name": queue}):
            tracing.inject_into(kwargs)
        self._spawn(key, queue, lambda: traced_job(task, run, kwargs), delay_s)

    async def drain(self) -> None:
        """Wait until every queued job (scheduled polls included) has finished (used at
        shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


def queue_name(prefix: str, media_type: str) -> str:
    return f"{prefix}:{media_type}"


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

    async def enqueue(self, task: str, queue: str, *, key: str, delay_s: float = 0.0,
                      **kwargs: Any) -> None:
        # SAQ schedules in whole epoch seconds; 0 means "now". The job key dedupes: SAQ will
        # not queue a second copy while one is live.
        scheduled = math.ceil(time.time() + delay_s) if delay_s > 0 else 0
        with tracing.span(f"enqueue {task}", kind=tracing.SpanKind.PRODUCER,
                          attributes={"messaging.destination.name": queue}):
            # The trace context travels in the job's own arguments (W3C traceparent), so
            # the worker's job span continues this trace in whichever process runs it.
            tracing.inject_into(kwargs)
            await self.queues[queue].enqueue(task, key=key, scheduled=scheduled,
                                             **self._job_fields(), **kwargs)

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


async def traced_job(name: str, task: Task, kwargs: dict[str, Any]) -> None:
    """Run a job's task inside a job span that continues the trace its `traceparent`
    argument names (taken out of the arguments the task sees)."""
    kwargs = dict(kwargs)
    parent = tracing.context_from({tracing.TRACEPARENT_KEY: kwargs.pop(tracing.TRACEPARENT_KEY,
                                                                        None)})
    with tracing.span(f"job {name}", kind=tracing.SpanKind.CONSUMER, parent=parent):
        await task(**kwargs)


def _saq_function(name: str, task: Task) -> tuple[str, Callable[..., Awaitable[None]]]:
    async def run(ctx: dict[str, Any], **kwargs: Any) -> None:
        _refuse_if_stopping(ctx)
        await _beating(ctx.get("job"), traced_job(name, task, kwargs))

    return name, run


def build_workers(saq_queue: SaqQueue, media_types: list[str], tasks: TaskRegistry, *,
                  concurrency_for: Callable[[str], int],
                  sweep_interval_s: int = 60) -> list[Worker[Any]]:
    """SAQ workers for the given media types, each running every registered task with the
    queue's own concurrency. Stop them with `stop_workers`."""
    functions = [_saq_function(name, tasks.get(name)) for name in tasks.names]

    timers: PartialTimersDict = {"schedule": 1, "worker_info": 10, "abort": 1,
                                 "sweep": sweep_interval_s}
    return [
        _GracefulWorker(saq_queue.queues[t],
                        functions=functions,
                        concurrency=concurrency_for(t), shutdown_grace_period_s=0,
                        # SAQ's own cancel of a job waits as long as ours for its hand-back.
                        cancellation_hard_deadline_s=HAND_BACK_DEADLINE_S,
                        dequeue_timeout=1.0, timers=timers)
        for t in media_types
    ]


async def stop_workers(workers: list[Worker[Any]], *, grace_s: float) -> None:
    """Stop taking jobs, give running ones `grace_s` to finish, then cancel what is left.

    A cancelled generation job hands its generation back (the row returns to `queued` and a
    fresh run job is queued) before the worker stops, so nothing waits for the reconciler;
    a job dequeued while stopping is queued again unrun (`WorkerStopping`).
    """
    for worker in workers:
        if isinstance(worker, _GracefulWorker):
            worker.grace_s = grace_s
    await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)
