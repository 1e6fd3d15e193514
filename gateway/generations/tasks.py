"""What a process runs from its queue and on a schedule: the one place tasks are bound.

Called by every process entry point (the API's lifespan, `mediahub worker`, the tests) right
after it built its `Services`, before its queue runs anything.
"""

from __future__ import annotations

from gateway.generations import gallery, jobs, sweeps, worker
from gateway.generations.services import Services
from gateway.providers.states import HEALTH_INTERVAL_S, health_check_all


def register(services: Services) -> None:
    """Register the generation jobs and the periodic tasks in `services.runtime.tasks`.

    Periodic, every `MEDIAHUB_SWEEP_INTERVAL_S`: the reconciler and the requeue of lost
    purges of deleted generations' media (where the process has a queue), expired
    reservations, the webhook outbox's sweep; provider health checks every
    `HEALTH_INTERVAL_S`, skipping providers another process checked within half of it.
    """
    runtime = services.runtime
    tasks = runtime.tasks

    async def run(generation_id: str) -> None:
        await worker.run_generation(services, generation_id)

    async def poll(generation_id: str, seq: int) -> None:
        await worker.poll_generation(services, generation_id, seq)

    async def purge(generation_id: str) -> None:
        await gallery.purge_media(runtime, generation_id)

    tasks.register(jobs.RUN, run)
    tasks.register(jobs.POLL, poll)
    tasks.register(jobs.PURGE, purge)

    interval = runtime.settings.sweep_interval_s

    async def reconcile() -> None:
        if runtime.queue is not None:
            await sweeps.reconcile(services)

    async def expire() -> None:
        await sweeps.expire_reservations(services)

    async def health() -> None:
        await health_check_all(runtime, services.providers, min_age_s=HEALTH_INTERVAL_S / 2)

    tasks.every("generations.reconcile", interval, reconcile)
    tasks.every("generations.expire_reservations", interval, expire)
    async def purges() -> None:
        if runtime.queue is not None:
            await gallery.requeue_purges(runtime)

    tasks.every("generations.requeue_purges", interval, purges)
    tasks.every("webhooks.sweep", interval, services.webhooks.sweep)
    tasks.every("providers.health", HEALTH_INTERVAL_S, health, first_after_s=interval)
