"""The `mediahub worker` process: SAQ workers for some media types (each queue with its own
concurrency, `MEDIAHUB_QUEUE_CONCURRENCY`), plus the reconciler and reservation sweeper.

On SIGTERM or SIGINT it stops taking jobs, gives running ones `MEDIAHUB_SHUTDOWN_GRACE_S` to
finish, and hands the rest back (their generations return to `queued` with a fresh run job).
A SIGKILL hands nothing back: the reconciler of any other process (or of the restarted one)
takes those generations over once their lease runs out."""

from __future__ import annotations

import asyncio
import logging
import signal

from gateway.analytics import tasks as analytics_tasks
from gateway.core.jobs import SaqQueue, build_workers, run_periodic, stop_workers
from gateway.core.settings import Settings
from gateway.generations import tasks
from gateway.generations.services import Services
from gateway.webhooks.queues import SaqWebhookQueue
from gateway.webhooks.service import build_webhook_worker

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, media_types: list[str]) -> None:
    """Work the given queues until SIGTERM/SIGINT, then let running jobs finish."""
    assert settings.valkey_url is not None
    services = await Services.start(settings, with_queue=False)
    runtime = services.runtime
    tasks.register(services)
    analytics_tasks.register(runtime)
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix,
                         heartbeat_s=settings.job_lease_s)
    # Jobs queue polls and hand-backs through the runtime.
    runtime.queue = saq_queue
    workers = build_workers(saq_queue, media_types, runtime.tasks,
                            concurrency_for=settings.concurrency_for,
                            sweep_interval_s=settings.sweep_interval_s)
    # Every worker process also delivers outgoing webhooks (short I/O-bound jobs).
    assert isinstance(services.webhooks.queue, SaqWebhookQueue)
    workers.append(build_webhook_worker(services.webhooks.queue, services.webhooks,
                                        concurrency=settings.webhook_concurrency))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for worker in workers:
        # One handler for the process: SAQ's own would leave all but the last worker deaf.
        worker.SIGNALS = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    running = [asyncio.create_task(w.start()) for w in workers]
    sweeper = asyncio.create_task(run_periodic(runtime.tasks))
    log.info("worker started", extra={"queues": media_types})
    print(f"mediahub worker: working {', '.join(media_types)} (concurrency "
          f"{', '.join(f'{t}={settings.concurrency_for(t)}' for t in media_types)})",
          flush=True)
    try:
        await stop.wait()
        print(f"mediahub worker: stopping (running jobs get {settings.shutdown_grace_s} s)",
              flush=True)
    finally:
        sweeper.cancel()
        await stop_workers(workers, grace_s=settings.shutdown_grace_s)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, sweeper, return_exceptions=True)
        await services.close()  # closes the SAQ queue too
        print("mediahub worker: stopped", flush=True)
