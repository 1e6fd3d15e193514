"""Crash safety against real PostgreSQL and Valkey, with real `mediahub worker` processes.

The workers load tests/crash_plugin through an entry point: its providers block until the test
opens a gate, and record every call in Valkey, so calls in flight can be caught and counted
across a SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy import select

from billing import ledger
from billing.models import VOID_PENDING, Transfer
from gateway.core.settings import Settings
from gateway.generations.models import FINAL_STATES, Generation
from tests.conftest import Gateway, make_settings, running_gateway
from tests.crash_plugin import mediahub_crash_provider as crash

PLUGIN_SOURCE = Path(crash.__file__)


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 120,
                     what: str = "condition") -> None:
    """Poll `check` until it is true; fail after `timeout_s` (a deadline, not a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """The crash plugin as an installed distribution (module, metadata, entry point) in a
    directory that worker subprocesses get on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PLUGIN_SOURCE, site / "mediahub_crash_provider.py")
    info = site / "mediahub_crash_provider-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mediahub-crash-provider\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mediahub]\ncrash = mediahub_crash_provider\n")
    return site


@pytest.fixture
def crash_settings(pg_url: str, valkey: str, tmp_path: Path) -> Settings:
    return make_settings(pg_url, tmp_path, valkey_url=valkey, job_lease_s=2,
                         sweep_interval_s=1, queue_concurrency={"image": 4})


@pytest.fixture
async def store(valkey: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Control]:
    """The crash providers' Valkey keys, under a prefix of this test's own."""
    prefix = f"crash{secrets.token_hex(4)}"
    for name in ("CRASH_SYNC", "CRASH_ASYNC"):
        monkeypatch.setenv(f"MEDIAHUB_{name}_BASE_URL", valkey)
        monkeypatch.setenv(f"MEDIAHUB_{name}_API_KEY", prefix)
    client = redis.Redis.from_url(valkey, decode_responses=True)
    try:
        yield Control(client, prefix)
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class Control:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def open(self) -> None:
        await self.client.set(f"{self.prefix}:open", 1)

    async def members(self, name: str) -> set[str]:
        return set(await self.client.smembers(f"{self.prefix}:{name}"))

    async def counts(self, name: str) -> dict[str, int]:
        return {k: int(v) for k, v in (await self.client.hgetall(f"{self.prefix}:{name}")).items()}


class Worker:
    """`mediahub worker --queues image` as its own process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line_with(self, text: bytes) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while text not in (line := await self.proc.stdout.readline()):
                assert line, f"the worker exited before printing {text!r}"

    async def stop(self) -> tuple[int, str]:
        assert self.proc.stdout is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest = await self.proc.stdout.read()
            code = await self.proc.wait()
        return code, rest.decode()


@contextlib.asynccontextmanager
async def worker_process(settings: Settings, site: Path, *,
                         grace_s: int = 60) -> AsyncIterator[Worker]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "MEDIAHUB_DATABASE_URL": settings.database_url,
           "MEDIAHUB_VALKEY_URL": settings.valkey_url or "",
           "MEDIAHUB_STORAGE_URL": settings.storage_url,
           "MEDIAHUB_SECRET_KEY": settings.secret_key.decode(),
           "MEDIAHUB_QUEUE_PREFIX": settings.queue_prefix,
           "MEDIAHUB_QUEUE_CONCURRENCY": "image=4,default=1",
           "MEDIAHUB_JOB_LEASE_S": str(settings.job_lease_s),
           "MEDIAHUB_SWEEP_INTERVAL_S": str(settings.sweep_interval_s),
           "MEDIAHUB_SHUTDOWN_GRACE_S": str(grace_s)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker", "--queues", "image",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    worker = Worker(proc)
    try:
        await worker.line_with(b"working image (concurrency image=4)")
        yield worker
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def statuses(gw: Gateway, ids: list[str]) -> dict[str, Generation]:
    async with gw.runtime.db.session() as session:
        rows = await session.scalars(select(Generation).where(Generation.id.in_(ids)))
        return {row.id: row for row in rows}


async def submit(gw: Gateway, auth: dict[str, str], provider: str, n: int) -> str:
    r = await gw.client.post("/v1/generations", headers=auth,
                             json={"type": "image", "prompt": f"p{n}", "provider": provider})
    assert r.status_code == 202, r.text
    gen_id: str = r.json()["id"]
    return gen_id


async def assert_books_balance(gw: Gateway, tenant_id: str) -> None:
    async with gw.runtime.db.session() as session:
        books = await ledger.balances(session, tenant_id)
    assert sum(t.posted_balance for t in books.values()) == 0
    assert all(t.debits_pending == 0 and t.credits_pending == 0 for t in books.values())


async def test_kill_9_during_50_jobs_loses_nothing(
    crash_settings: Settings, plugin_site: Path, store: Control,
) -> None:
    async with running_gateway(crash_settings, extra=[crash]) as gw:
        tenant = await gw.tenant(credits_mc=10_000_000)
        kinds: dict[str, str] = {}
        async with worker_process(crash_settings, plugin_site) as first:
            for n in range(50):
                provider = "crash-sync" if n % 2 == 0 else "crash-async"
                kinds[await submit(gw, tenant.auth, provider, n)] = provider

            async def four_calls_in_flight() -> bool:
                return (len(await store.members("entered")) >= 4
                        and len(await store.counts("submits")) >= 1)

            await eventually(four_calls_in_flight, what="calls in flight")
            first.proc.kill()  # SIGKILL: no handler, no hand-back
            assert await first.proc.wait() == -signal.SIGKILL
        in_flight = await store.members("entered")
        submitted = set(await store.counts("submits"))
        async with gw.runtime.db.session() as session:
            running = set(await session.scalars(
                select(Generation.id).where(Generation.status == "running")))
        assert in_flight <= running  # the killed worker's calls never returned
        await store.open()

        async with worker_process(crash_settings, plugin_site) as second:
            async def all_final() -> bool:
                rows = await statuses(gw, list(kinds))
                return all(row.status in FINAL_STATES for row in rows.values())

            await eventually(all_final, what="all 50 generations to end")
            code, out = await second.stop()
            assert code == 0, out

        rows = await statuses(gw, list(kinds))
        async with gw.runtime.db.session() as session:
            voided = set(await session.scalars(
                select(Transfer.pending_id).where(Transfer.phase == VOID_PENDING,
                                                  Transfer.generation_id.in_(list(kinds)))))
        for gen_id, row in rows.items():
            assert row.status in ("succeeded", "failed"), (gen_id, row.status)
            if row.status == "failed":
                assert row.reservation_id in voided, (gen_id, row.error)
        # The providers here can always be resumed safely, so everything succeeded.
        assert {row.status for row in rows.values()} == {"succeeded"}
        # Every asynchronous task was submitted once: a re-run polled the recorded task.
        submits = await store.counts("submits")
        assert submits == {g: 1 for g, kind in kinds.items() if kind == "crash-async"}
        assert submitted  # some tasks were pending at the provider when the worker died
        # Synchronous calls cut off by the kill were repeated with the same idempotency
        # key (the generation id); every other one ran once.
        calls = await store.counts("sync-calls")
        assert set(calls) == {g for g, kind in kinds.items() if kind == "crash-sync"}
        assert {g for g, c in calls.items() if c == 2} == in_flight
        assert all(c in (1, 2) for c in calls.values())
        assert await store.members("charged") == set(calls)
        await assert_books_balance(gw, tenant.id)


async def test_sigterm_finishes_running_jobs_within_the_grace_period(
    crash_settings: Settings, plugin_site: Path, store: Control,
) -> None:
    async with running_gateway(crash_settings, extra=[crash]) as gw:
        tenant = await gw.tenant(credits_mc=1_000_000)
        async with worker_process(crash_settings, plugin_site, grace_s=60) as worker:
            gen_id = await submit(gw, tenant.auth, "crash-sync", 0)

            async def entered() -> bool:
                return gen_id in await store.members("entered")

            await eventually(entered, what="the provider call")
            assert worker.proc.stdout is not None
            worker.proc.send_signal(signal.SIGTERM)
            await worker.line_with(b"mediahub worker: stopping")
            await store.open()  # the call ends within the grace period
            code, out = await worker.stop()
            assert code == 0, out
        row = (await statuses(gw, [gen_id]))[gen_id]
        assert row.status == "succeeded"
        assert row.attempts == 1
        await assert_books_balance(gw, tenant.id)


async def test_sigterm_hands_back_jobs_that_outlive_the_grace_period(
    crash_settings: Settings, plugin_site: Path, store: Control,
) -> None:
    async with running_gateway(crash_settings, extra=[crash]) as gw:
        tenant = await gw.tenant(credits_mc=1_000_000)
        async with worker_process(crash_settings, plugin_site, grace_s=0) as worker:
            gen_ids = [await submit(gw, tenant.auth, "crash-sync", n) for n in range(2)]

            async def entered() -> bool:
                return set(gen_ids) <= await store.members("entered")

            await eventually(entered, what="both provider calls")
            code, out = await worker.stop()
            assert code == 0, out
        # Handed back at once: queued again, not left running for the reconciler.
        rows = await statuses(gw, gen_ids)
        assert {row.status for row in rows.values()} == {"queued"}
        assert all(row.lease_until is None for row in rows.values())
        await store.open()
        async with worker_process(crash_settings, plugin_site) as worker:
            async def done() -> bool:
                rows = await statuses(gw, gen_ids)
                return all(row.status == "succeeded" for row in rows.values())

            await eventually(done, what="the handed-back generations")
            await worker.stop()
        rows = await statuses(gw, gen_ids)
        assert all(row.attempts == 2 for row in rows.values())
        # The cut-off calls were repeated under the same key: the provider charged once.
        calls = await store.counts("sync-calls")
        assert calls == dict.fromkeys(gen_ids, 2)
        assert await store.members("charged") == set(gen_ids)
        await assert_books_balance(gw, tenant.id)
