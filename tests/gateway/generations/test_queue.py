"""The production stack: SAQ jobs on real Valkey, PostgreSQL, S3 media (moto's server)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from saq import Queue
from saq.job import Status
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from gateway.core.jobs import SaqQueue, TaskRegistry, build_workers, queue_name, stop_workers
from gateway.core.settings import Settings, SettingsError, load_settings
from gateway.generations import jobs
from gateway.generations.jobs import nudge_key
from gateway.generations.models import Generation
from gateway.generations.sweeps import reconcile
from gateway.generations.worker import (
    MAX_POLL_INTERVAL_S,
    MIN_POLL_INTERVAL_S,
    poll_delay_s,
    poll_generation,
    run_generation,
)
from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
)
from tenants.kernel.db import utcnow
from tests.conftest import Gateway, ProvidersPlugin, make_settings, running_gateway, scripted

IMAGE = {"type": "image", "prompt": "a harbour at night", "params": {"size": "128x128"}}


@pytest.fixture
def stack_settings(pg_url: str, valkey: str, moto_endpoint: str, bucket: str,
                   tmp_path: Path) -> Settings:
    return make_settings(pg_url, tmp_path, valkey_url=valkey, storage_url=f"s3://{bucket}",
                         s3_endpoint_url=moto_endpoint)


@contextlib.asynccontextmanager
async def worker_for(gw: Gateway, *, concurrency: int = 2) -> AsyncIterator[None]:
    """A SAQ worker on the image queue, in this process, using the gateway's runtime."""
    settings = gw.runtime.settings
    assert settings.valkey_url is not None
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix,
                         heartbeat_s=settings.job_lease_s)
    [worker] = build_workers(saq_queue, ["image"], gw.runtime.tasks,
                             concurrency_for=lambda _: concurrency, sweep_interval_s=1)
    task = asyncio.create_task(worker.start())
    try:
        yield
    finally:
        await stop_workers([worker], grace_s=30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await saq_queue.close()


async def test_saq_worker_finishes_a_generation_with_s3_media(stack_settings: Settings) -> None:
    async with running_gateway(stack_settings) as gw:
        tenant = await gw.tenant(credits_mc=20_000)
        async with worker_for(gw):
            r = await gw.client.post("/v1/generations", json=IMAGE,
                                     headers={**tenant.auth, "Prefer": "wait=30"})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "succeeded"
        url = done["outputs"][0]["url"]
        # A presigned S3 link straight to the object store, not a gateway /media link.
        assert url.startswith(stack_settings.s3_endpoint_url or "")
        assert "X-Amz-Signature" in url
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(url)
        assert fetched.status_code == 200
        assert Image.open(io.BytesIO(fetched.content)).size == (128, 128)
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["available"] == 20_000 - done["cost"]["charged"]
        assert balance["pending"] == 0


async def test_row_is_written_before_its_job_is_queued(stack_settings: Settings) -> None:
    async with running_gateway(stack_settings) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert r.status_code == 202
        gen_id = r.json()["id"]
        # No worker runs: the row is queued and SAQ holds exactly one job keyed by its id.
        async with gw.runtime.db.session() as session:
            row = await session.get(Generation, gen_id)
        assert row is not None
        assert row.status == "queued"
        assert row.reservation_id is not None
        queue = Queue.from_url(stack_settings.valkey_url or "",
                               name=queue_name(stack_settings.queue_prefix, "image"))
        try:
            job = await queue.job(gen_id)
            assert job is not None
            assert job.kwargs == {"generation_id": gen_id}
            assert job.timeout > 10
            assert job.heartbeat > 0
            assert job.retries > 1
        finally:
            await queue.disconnect()
        # A second nudge for the same generation finds the job already there.
        await jobs.enqueue_run(gw.runtime, gen_id, "image")
        queue = Queue.from_url(stack_settings.valkey_url or "",
                               name=queue_name(stack_settings.queue_prefix, "image"))
        try:
            assert await queue.count("queued") == 1
        finally:
            await queue.disconnect()


async def test_a_job_run_twice_settles_once(stack_settings: Settings) -> None:
    async with running_gateway(stack_settings) as gw:
        tenant = await gw.tenant(credits_mc=20_000)
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        gen_id = r.json()["id"]
        await asyncio.gather(run_generation(gw.services, gen_id),
                             run_generation(gw.services, gen_id))
        await run_generation(gw.services, gen_id)
        done = (await gw.client.get(f"/v1/generations/{gen_id}", headers=tenant.auth)).json()
        assert done["status"] == "succeeded"
        async with gw.runtime.db.session() as session:
            row = await session.get(Generation, gen_id)
        assert row is not None
        assert row.attempts == 1
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["available"] == 20_000 - done["cost"]["charged"]


async def test_queue_down_fails_the_generation_and_releases_credits(
    pg_url: str, tmp_path: Path,
) -> None:
    # Nothing listens on port 1: the enqueue fails after the row and reservation committed.
    settings = make_settings(pg_url, tmp_path, valkey_url="redis://127.0.0.1:1/0")
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(credits_mc=20_000)
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "unavailable_error"
        listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
        assert [g["status"] for g in listed] == ["failed"]
        assert listed[0]["error"]["code"] == "queue_unavailable"
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (20_000, 0)


async def test_worker_command_runs_jobs_and_stops_on_sigterm(
    stack_settings: Settings, tmp_path: Path,
) -> None:
    """`mediahub worker` as its own process: it finishes a queued generation, then exits
    cleanly on SIGTERM."""
    import os
    import signal
    import sys

    env = {**os.environ,
           "MEDIAHUB_DATABASE_URL": stack_settings.database_url,
           "MEDIAHUB_VALKEY_URL": stack_settings.valkey_url or "",
           "MEDIAHUB_STORAGE_URL": stack_settings.storage_url,
           "MEDIAHUB_S3_ENDPOINT_URL": stack_settings.s3_endpoint_url or "",
           "MEDIAHUB_SECRET_KEY": stack_settings.secret_key.decode(),
           "MEDIAHUB_QUEUE_PREFIX": stack_settings.queue_prefix}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker", "--queues", "image",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        # The worker says when it is listening; a line, not a timer, is the signal.
        async with asyncio.timeout(60):
            while b"working image" not in (line := await proc.stdout.readline()):
                assert line, "worker exited before it started"
        async with running_gateway(stack_settings) as gw:
            tenant = await gw.tenant()
            r = await gw.client.post("/v1/generations", json=IMAGE,
                                     headers={**tenant.auth, "Prefer": "wait=30"})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "succeeded"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest = await proc.stdout.read()
            code = await proc.wait()
        assert code == 0, rest.decode()
        assert b"mediahub worker: stopped" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- Asynchronous providers, duplicate jobs and the reconciler (in-process, both databases) -


class Pending(Provider):
    """An asynchronous provider whose task runs until the test marks it done."""

    name = "pending-async"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    asynchronous = True

    def __init__(self, hint_s: float = 2.0) -> None:
        self.hint_s = hint_s
        self.submits: list[str | None] = []
        self.polls = 0
        self.canceled: list[str] = []
        self.submitted = asyncio.Event()
        self.done = False

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        raise AssertionError("the gateway submits and polls an asynchronous provider")

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        self.submits.append(request.idempotency_key)
        self.submitted.set()
        return ProviderTask(task_id=f"task-{len(self.submits)}", poll_after_s=self.hint_s)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        self.polls += 1
        if not self.done:
            return None
        return ProviderResult(outputs=[ProviderOutput(data=b"v", content_type="image/png")],
                              cost_usd_micros=5_000)

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        self.canceled.append(task.task_id)


class Recording:
    """A queue that records jobs and runs none, so the test runs each job itself."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str | None]] = []
        self.polls: list[tuple[str, int, float]] = []

    async def enqueue(self, task: str, queue: str, *, key: str, delay_s: float = 0.0,
                      **kwargs: Any) -> None:
        if task == jobs.POLL:
            self.polls.append((kwargs["generation_id"], kwargs["seq"], delay_s))
        else:
            generation_id = kwargs["generation_id"]
            self.runs.append((generation_id, None if key == generation_id else key))

    async def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def async_gateway(settings: Settings, *providers: Provider) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, extra=[ProvidersPlugin(*providers)],
                               blocked=["plugins.builtin.local.image"]) as gw:
        yield gw


async def row_of(gw: Gateway, gen_id: str) -> Generation:
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, gen_id)
    assert row is not None
    return row


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_poll_delay_backs_off_from_the_hint_and_is_capped() -> None:
    assert [poll_delay_s(2.0, n) for n in range(3)] == [2.0, 3.0, 4.5]
    assert poll_delay_s(1000.0, 0) == MAX_POLL_INTERVAL_S
    assert poll_delay_s(0.0, 0) == MIN_POLL_INTERVAL_S


async def test_a_poll_job_is_scheduled_from_the_hint_and_a_stale_one_does_nothing(
    database_url: str, tmp_path: Path,
) -> None:
    remote = Pending(hint_s=2.0)
    async with async_gateway(make_settings(database_url, tmp_path), remote) as gw:
        tenant = await gw.tenant()
        gw.runtime.queue = recorder = Recording()
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        await run_generation(gw.services, gen_id)
        # Submitted, the task id saved, a poll scheduled at the hint: the job has ended.
        assert remote.submits == [gen_id]  # the generation id is the idempotency key
        assert remote.polls == 0
        [(_, seq, delay)] = recorder.polls
        assert delay == 2.0
        row = await row_of(gw, gen_id)
        assert (row.status, row.attempts_log[0].task_id) == ("running", "task-1")

        await poll_generation(gw.services, gen_id, seq)
        assert remote.polls == 1
        _, next_seq, next_delay = recorder.polls[1]
        assert next_seq > seq
        assert next_delay == 3.0  # backed off: 2 x 1.5

        await poll_generation(gw.services, gen_id, seq)  # delivered twice: stale now
        await run_generation(gw.services, gen_id)  # a duplicate run job: lease still held
        assert remote.polls == 1
        assert remote.submits == [gen_id]

        remote.done = True
        await poll_generation(gw.services, gen_id, next_seq)
        done = (await gw.client.get(f"/v1/generations/{gen_id}", headers=tenant.auth)).json()
        assert done["status"] == "succeeded"
        assert len(remote.submits) == 1
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["pending"] == 0


async def test_a_pending_task_does_not_hold_a_worker_slot(
    database_url: str, tmp_path: Path,
) -> None:
    remote = Pending(hint_s=0.05)
    quick = scripted("quick-sync")
    settings = make_settings(database_url, tmp_path, queue_concurrency={"image": 1})
    async with async_gateway(settings, remote, quick) as gw:
        tenant = await gw.tenant()
        slow = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                     json={**IMAGE, "provider": remote.name})).json()["id"]
        await remote.submitted.wait()
        fast = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                     json={**IMAGE, "provider": quick.name})).json()["id"]

        async def fast_done() -> bool:
            return (await row_of(gw, fast)).status == "succeeded"

        # One slot, and the second job finished while the first's task was still running.
        await eventually(fast_done)
        assert (await row_of(gw, slow)).status == "running"
        remote.done = True
        await gw.drain()
        assert (await row_of(gw, slow)).status == "succeeded"
        assert len(remote.submits) == 1


async def test_cancel_reaches_the_providers_cancel(database_url: str, tmp_path: Path) -> None:
    remote = Pending()
    async with async_gateway(make_settings(database_url, tmp_path), remote) as gw:
        tenant = await gw.tenant(credits_mc=50_000)
        gw.runtime.queue = recorder = Recording()
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        await run_generation(gw.services, gen_id)
        r = await gw.client.post(f"/v1/generations/{gen_id}/cancel", headers=tenant.auth)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "canceled"
        assert remote.canceled == ["task-1"]
        # The scheduled poll finds it canceled: the provider is not asked again.
        await poll_generation(gw.services, gen_id, recorder.polls[0][1])
        assert remote.polls == 0
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (50_000, 0)


async def test_a_rerun_polls_the_recorded_task_instead_of_submitting_again(
    database_url: str, tmp_path: Path,
) -> None:
    remote = Pending()
    async with async_gateway(make_settings(database_url, tmp_path), remote) as gw:
        tenant = await gw.tenant()
        gw.runtime.queue = recorder = Recording()
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        await run_generation(gw.services, gen_id)
        recorder.runs.clear()
        # The poll job is lost (its worker died): the lease runs out, the reconciler nudges.
        await reconcile(gw.services)  # the poll's lease still holds: not nudged yet
        assert gen_id not in {g for g, _ in recorder.runs}
        later = utcnow() + timedelta(seconds=2.0 + gw.runtime.settings.job_lease_s + 1)
        assert await reconcile(gw.services, now=later) >= 1
        assert (gen_id, f"{gen_id}:n1") in recorder.runs
        async with gw.runtime.db.transaction() as session:
            await session.execute(update(Generation).where(Generation.id == gen_id)
                                  .values(lease_until=utcnow() - timedelta(seconds=1)))
        remote.done = True
        await run_generation(gw.services, gen_id)
        assert remote.submits == [gen_id]
        assert remote.polls == 1
        row = await row_of(gw, gen_id)
        assert (row.status, row.attempts) == ("succeeded", 2)


async def test_duplicate_jobs_call_the_provider_once(database_url: str, tmp_path: Path) -> None:
    only = scripted("dup-sync")
    async with async_gateway(make_settings(database_url, tmp_path), only) as gw:
        tenant = await gw.tenant(credits_mc=50_000)
        gw.runtime.queue = Recording()
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        await asyncio.gather(*(run_generation(gw.services, gen_id) for _ in range(3)))
        await run_generation(gw.services, gen_id)  # redelivered after success
        await poll_generation(gw.services, gen_id, 1)  # a stray poll
        assert only.calls == 1
        row = await row_of(gw, gen_id)
        assert (row.status, row.attempts) == ("succeeded", 1)
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["pending"] == 0
        assert balance["available"] == 50_000 - (row.charged_mc or 0)


async def test_the_reconciler_enqueues_a_queued_row_that_never_reached_the_queue(
    database_url: str, tmp_path: Path,
) -> None:
    async with running_gateway(make_settings(database_url, tmp_path)) as gw:
        tenant = await gw.tenant()
        real, gw.runtime.queue = gw.runtime.queue, Recording()  # the enqueue never happens
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        gw.runtime.queue = real
        await reconcile(gw.services)  # within the grace period: left alone
        await gw.drain()
        assert (await row_of(gw, gen_id)).status == "queued"
        later = utcnow() + timedelta(seconds=gw.runtime.settings.job_lease_s + 1)
        assert await reconcile(gw.services, now=later) >= 1
        await gw.drain()
        assert (await row_of(gw, gen_id)).status == "succeeded"
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["pending"] == 0


def test_queue_concurrency_is_read_per_media_type() -> None:
    settings = load_settings({"MEDIAHUB_QUEUE_CONCURRENCY": "image=8, video=2,default=3",
                              "MEDIAHUB_WORKER_CONCURRENCY": "5"})
    assert [settings.concurrency_for(t) for t in ("image", "video", "audio")] == [8, 2, 3]
    assert load_settings({"MEDIAHUB_WORKER_CONCURRENCY": "5"}).concurrency_for("video") == 5
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_QUEUE_CONCURRENCY": "image=0,hologram=2,video"})
    assert len(caught.value.problems) == 3


async def test_a_job_cancelled_as_its_claim_commits_hands_the_generation_back(
    database_url: str, tmp_path: Path,
) -> None:
    # A stopping worker cancels its jobs wherever they are. One cancelled just as its claim
    # commits (the row is running in the database, the job not yet told) must still hand the
    # generation back, not leave it running with no job on it until the lease runs out.
    only = scripted("claim-sync")
    async with async_gateway(make_settings(database_url, tmp_path), only) as gw:
        tenant = await gw.tenant(credits_mc=1_000_000)
        gw.runtime.queue = recorder = Recording()
        gen_id = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=IMAGE)).json()["id"]
        job = asyncio.create_task(run_generation(gw.services, gen_id))

        def cancel_once_claimed(session: Session) -> None:
            claimed = [obj for obj in session.identity_map.values()
                       if isinstance(obj, Generation) and obj.id == gen_id
                       and obj.status == "running"]
            if claimed and not job.done():
                job.cancel()

        event.listen(Session, "after_commit", cancel_once_claimed)
        try:
            await asyncio.gather(job, return_exceptions=True)
        finally:
            event.remove(Session, "after_commit", cancel_once_claimed)
        assert job.cancelled()
        row = await row_of(gw, gen_id)
        assert (row.status, row.attempts, row.lease_until) == ("queued", 1, None)
        assert recorder.runs[-1] == (gen_id, nudge_key(gen_id, 1))
        assert only.calls == 0
        # The fresh run job carries it on.
        await run_generation(gw.services, gen_id)
        assert (await row_of(gw, gen_id)).status == "succeeded"
        assert only.calls == 1


async def test_a_job_dequeued_as_the_worker_stops_is_queued_again_unrun(valkey: str) -> None:
    # A dequeue already waiting when the stop began can still return a job (often the run job
    # a hand-back just queued). The stopping worker must not start it: SAQ queues it again
    # for another worker, and nothing of it ran here.
    saq_queue = SaqQueue(valkey, prefix=f"mhtest{secrets.token_hex(4)}", heartbeat_s=2)
    ran: list[str] = []

    async def run(generation_id: str) -> None:
        ran.append(generation_id)

    async def poll(generation_id: str, seq: int) -> None:
        ran.append(generation_id)

    registry = TaskRegistry()
    registry.register(jobs.RUN, run)
    registry.register(jobs.POLL, poll)
    [worker] = build_workers(saq_queue, ["image"], registry, concurrency_for=lambda _: 1)
    try:
        await saq_queue.enqueue(jobs.RUN, "image", key="gen_stopping",
                                generation_id="gen_stopping")
        worker.event.set()  # the stop began while this worker's dequeue waited
        assert await worker.process()  # it dequeued the job
        assert ran == []
        job = await saq_queue.queues["image"].job("gen_stopping")
        assert job is not None
        assert (job.status, job.attempts) == (Status.QUEUED, 1)
        assert job.error is not None
        assert "WorkerStopping" in job.error  # queued again for another worker, as a retry
    finally:
        await saq_queue.close()
