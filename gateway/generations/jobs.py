"""The generations' jobs on the queue: their names and how they are queued.

- `generation.run` (key: the generation id, or a nudge key): claim the generation and call
  its providers; an asynchronous provider is only submitted, and the job ends;
- `generation.poll` (key: id + lease sequence), `delay_s` later: ask the provider once about
  its task, then settle or schedule the next poll;
- `generation.purge` (key: id + `:purge`): remove a deleted generation's stored media.

A job carries only the generation id (and a poll its lease sequence). What they run is
bound to a process in `gateway.generations.tasks`.
"""

from __future__ import annotations

from gateway.core.jobs import JobQueue
from gateway.core.runtime import Runtime

RUN = "generation.run"
POLL = "generation.poll"
#: Remove a deleted generation's media (gateway/generations/gallery.py).
PURGE = "generation.purge"


def nudge_key(generation_id: str, attempts: int) -> str:
    """The job key of a re-run after `attempts` claims: one such job per claim count, so
    repeated nudges for one stalled generation queue one job."""
    return f"{generation_id}:n{attempts}"


def poll_key(generation_id: str, seq: int) -> str:
    # Not the generation id: the run job that schedules the first poll still holds that key.
    return f"{generation_id}:poll:{seq}"


def _queue(runtime: Runtime) -> JobQueue:
    # A worker process has no queue of its own until it needs one (a leader queueing its
    # followers, a hand-back, a poll); then it queues on the process's configured backend.
    if runtime.queue is None:
        runtime.queue = runtime.make_queue()
    return runtime.queue


async def enqueue_run(runtime: Runtime, generation_id: str, media_type: str, *,
                      key: str | None = None) -> None:
    """Queue a run job on the media type's queue; `key` (default: the generation id)
    dedupes."""
    await _queue(runtime).enqueue(RUN, media_type, key=key or generation_id,
                                generation_id=generation_id)


async def enqueue_poll(runtime: Runtime, generation_id: str, media_type: str, *, seq: int,
                       delay_s: float) -> None:
    """Queue a poll job `delay_s` from now, valid for lease sequence `seq`."""
    await _queue(runtime).enqueue(POLL, media_type, key=poll_key(generation_id, seq),
                                delay_s=delay_s, generation_id=generation_id, seq=seq)


async def enqueue_purge(runtime: Runtime, generation_id: str, media_type: str) -> None:
    """Queue the job that removes a deleted generation's stored media."""
    await _queue(runtime).enqueue(PURGE, media_type, key=f"{generation_id}:purge",
                                generation_id=generation_id)
