"""The production stack: SAQ jobs on real Valkey, PostgreSQL, S3 media (moto's server)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from saq import Queue

from gateway.generations.models import Generation
from gateway.generations.pipeline import run_generation
from gateway.queue import SaqQueue, build_workers, queue_name, stop_workers
from gateway.settings import Settings
from tests.conftest import Gateway, make_settings, running_gateway

IMAGE = {"type": "image", "prompt": "a harbour at night", "params": {"size": "128x128"}}


@pytest.fixture
def stack_settings(pg_url: str, valkey: str, moto_endpoint: str, bucket: str,
                   tmp_path: Path) -> Settings:
    return make_settings(pg_url, tmp_path, valkey_url=valkey, storage_url=f"s3://{bucket}",
                         s3_endpoint_url=moto_endpoint)


@contextlib.asynccontextmanager
async def worker_for(gw: Gateway) -> AsyncIterator[None]:
    """A SAQ worker on the image queue, in this process, using the gateway's runtime."""
    settings = gw.runtime.settings
    assert settings.valkey_url is not None
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix)

    async def handler(generation_id: str) -> None:
        await run_generation(gw.runtime, generation_id)

    [worker] = build_workers(saq_queue, ["image"], handler, concurrency=2)
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
        await gw.runtime.queue.enqueue(gen_id, "image")  # type: ignore[union-attr]
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
        await asyncio.gather(run_generation(gw.runtime, gen_id),
                             run_generation(gw.runtime, gen_id))
        await run_generation(gw.runtime, gen_id)
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
