"""The job queue seam: SAQ on Valkey in production, an in-process dispatcher when embedded.

A job carries only a generation id. The generation row is the source of truth, so a job is a
nudge to advance it: running one twice, or after the generation was canceled, is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError
from saq import Queue, Worker

from gateway.settings import MEDIA_TYPES

log = logging.getLogger(__name__)

RUN_GENERATION = "generation.run"
Handler = Callable[[str], Awaitable[None]]

# A generation job may wait on a slow provider; SAQ's 10 s default would abort it mid-call.
JOB_TIMEOUT_S = 600
JOB_HEARTBEAT_S = 30
JOB_RETRIES = 3


class JobQueue(Protocol):
    async def enqueue(self, generation_id: str, media_type: str) -> None:
        """Queue the generation's job on the queue of its media type."""

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs jobs as asyncio tasks in this process, at most `concurrency` at a time."""

    def __init__(self, handler: Handler, *, concurrency: int) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, generation_id: str, media_type: str) -> None:
        task = asyncio.create_task(self._run(generation_id), name=f"generation:{generation_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, generation_id: str) -> None:
        async with self._slots:
            try:
                await self._handler(generation_id)
            except Exception:
                log.exception("generation job failed", extra={"generation_id": generation_id})

    async def drain(self) -> None:
        """Wait until every queued job has finished (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


def queue_name(prefix: str, media_type: str) -> str:
    return f"{prefix}:{media_type}"


class SaqQueue:
    """One SAQ queue per media type on Valkey, so workers scale per type."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.queues: dict[str, Queue] = {
            t: Queue.from_url(url, name=queue_name(prefix, t)) for t in MEDIA_TYPES
        }

    async def enqueue(self, generation_id: str, media_type: str) -> None:
        # The job key is the generation id: SAQ will not queue a second copy while one is live.
        await self.queues[media_type].enqueue(
            RUN_GENERATION, key=generation_id, generation_id=generation_id,
            timeout=JOB_TIMEOUT_S, heartbeat=JOB_HEARTBEAT_S, retries=JOB_RETRIES,
        )

    async def close(self) -> None:
        for queue in self.queues.values():
            # A queue whose server was never reachable has nothing to hand back.
            with contextlib.suppress(ConnectionError, OSError, RedisError):
                await queue.disconnect()


def build_workers(saq_queue: SaqQueue, media_types: list[str], handler: Handler, *,
                  concurrency: int) -> list[Worker[Any]]:
    """SAQ workers for the given media types, each running `handler(generation_id)`.

    Stop them with `stop_workers`, not `Worker.stop`.
    """

    async def run_generation(ctx: dict[str, Any], *, generation_id: str) -> None:
        await handler(generation_id)

    return [
        Worker(saq_queue.queues[t], functions=[(RUN_GENERATION, run_generation)],
               concurrency=concurrency, shutdown_grace_period_s=0)
        for t in media_types
    ]


async def stop_workers(workers: list[Worker[Any]], *, grace_s: float) -> None:
    """Stop taking jobs, give running ones `grace_s` to finish, then cancel what is left.

    SAQ's own grace period also waits on its upkeep loops, which sleep up to a minute, so the
    wait for running jobs is done here and SAQ's is zero. A job cut off is not lost: its
    generation stays `running` in the database for the reconciler.
    """
    for worker in workers:
        worker.event.set()
    running = [ctx["task"] for worker in workers for ctx in worker.job_task_contexts.values()]
    if running:
        await asyncio.wait(running, timeout=grace_s)
    await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)
