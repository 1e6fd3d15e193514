"""The `mediahub worker` process: SAQ workers for some media types, plus the reservation
sweeper, stopped together on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from gateway.generations.pipeline import run_generation, sweep_expired_reservations
from gateway.providers import HEALTH_INTERVAL_S, health_check_all
from gateway.queue import SaqQueue, build_workers, stop_workers
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.webhooks.service import SaqWebhookQueue, build_webhook_worker

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 30.0
SHUTDOWN_GRACE_S = 60.0


async def sweep_forever(runtime: Runtime, interval_s: float = SWEEP_INTERVAL_S,
                        health_interval_s: float = HEALTH_INTERVAL_S) -> None:
    """Void expired reservations every `interval_s`, and check the providers' health every
    `health_interval_s` (skipping ones another process checked within half of it); runs
    until cancelled."""
    loop = asyncio.get_running_loop()
    last_health: float | None = None
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_expired_reservations(runtime)
        except Exception:
            log.exception("reservation sweep failed")
        try:
            await runtime.webhooks.sweep()
        except Exception:
            log.exception("webhook sweep failed")
        if last_health is None or loop.time() - last_health >= health_interval_s:
            last_health = loop.time()
            try:
                await health_check_all(runtime, min_age_s=health_interval_s / 2)
            except Exception:
                log.exception("provider health checks failed")


async def run_worker(settings: Settings, media_types: list[str]) -> None:
    """Work the given queues until SIGTERM/SIGINT, then let running jobs finish."""
    assert settings.valkey_url is not None
    runtime = await Runtime.start(settings, with_queue=False)
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix)

    async def handler(generation_id: str) -> None:
        await run_generation(runtime, generation_id)

    workers = build_workers(saq_queue, media_types, handler,
                            concurrency=settings.worker_concurrency)
    # Every worker process also delivers outgoing webhooks (short I/O-bound jobs).
    assert isinstance(runtime.webhooks.queue, SaqWebhookQueue)
    workers.append(build_webhook_worker(runtime.webhooks.queue, runtime,
                                        concurrency=settings.worker_concurrency))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for worker in workers:
        # One handler for the process: SAQ's own would leave all but the last worker deaf.
        worker.SIGNALS = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(w.start()) for w in workers]
    sweeper = asyncio.create_task(sweep_forever(runtime))
    log.info("worker started", extra={"queues": media_types})
    print(f"mediahub worker: working {', '.join(media_types)}", flush=True)
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        await stop_workers(workers, grace_s=SHUTDOWN_GRACE_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, sweeper, return_exceptions=True)
        with contextlib.suppress(Exception):
            await saq_queue.close()
        await runtime.close()
        print("mediahub worker: stopped", flush=True)
