"""Past one process: two API processes (`mediahub serve`) and two workers (`mediahub
worker`) as real subprocesses on one PostgreSQL database and one Valkey. Submits are spread
over both APIs concurrently; one worker is killed with SIGKILL mid-load and another started.
Every generation must end (succeeded), the books balance and nothing is charged twice.

Synchronised by polling with deadlines (health, states), never by sleeping a guessed time.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from billing import ledger
from tenants.kernel.db import Database
from tests.conftest import _admin_connect, migrated_database, valkey_url

ADMIN = "admin-token-0123456789"
GENERATIONS = 60
# Big enough that the first half's jobs take the workers a few seconds (64x64 ones were all
# done within one poll of `_started`, so "mid-load" was never seen).
IMAGE = {"type": "image", "prompt": "a quiet street", "params": {"size": "1024x1024"},
         "provider": "local-image"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port



@pytest.fixture
def database() -> Iterator[str]:
    with migrated_database("mediahub_mp") as url:
        yield url


class Processes:
    """The subprocesses this test started; each is ended by its own pid at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], env=self.env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def cluster(database: str, tmp_path: Path) -> AsyncIterator[tuple[Processes, list[str]]]:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {**os.environ,
           "MEDIAHUB_DATABASE_URL": database,
           "MEDIAHUB_VALKEY_URL": valkey_url(),
           "MEDIAHUB_QUEUE_PREFIX": f"mhmp{secrets.token_hex(4)}",
           "MEDIAHUB_SECRET_KEY": "s" * 48,
           "MEDIAHUB_ADMIN_TOKEN": ADMIN,
           "MEDIAHUB_STORAGE_URL": f"file://{tmp_path / 'media'}",
           "MEDIAHUB_PUBLIC_BASE_URL": "http://127.0.0.1:1",
           "MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS": "*",
           "MEDIAHUB_CACHE_TTL_S": "0",
           # A killed worker's generations are nudged after their lease: keep both short.
           "MEDIAHUB_JOB_LEASE_S": "3",
           "MEDIAHUB_SWEEP_INTERVAL_S": "1",
           "MEDIAHUB_DATABASE_POOL_SIZE": "5",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    processes = Processes(env, tmp_path)
    ports = [_free_port(), _free_port()]
    try:
        for i, port in enumerate(ports):
            # The first API runs two processes on its port (`serve --workers`).
            processes.start(f"api{i}", "serve", "--port", str(port),
                            *(["--workers", "2"] if i == 0 else []))
        processes.start("worker0", "worker")
        processes.start("worker1", "worker")
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        async with httpx.AsyncClient() as client:
            for i, base in enumerate(bases):
                name = f"api{i}"
                await until(functools.partial(_live, client, base), 120,
                            functools.partial(processes.log, name))
        yield processes, bases
    finally:
        processes.stop_all()


async def _live(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/health/live", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def until(check: Callable[[], object], seconds: float,
                why: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.2)  # a poll interval, not a synchronisation
    pytest.fail(f"not reached in {seconds}s\n{why()}")


async def test_two_apis_and_workers_survive_a_killed_worker_and_keep_the_books(
    cluster: tuple[Processes, list[str]], database: str,
) -> None:
    processes, bases = cluster
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(timeout=30) as client:
        made = await client.post(f"{bases[0]}/admin/v1/tenants", headers=admin,
                                 json={"name": "Scale", "slug": f"s-{secrets.token_hex(3)}"})
        assert made.status_code == 201, made.text
        tenant_id = made.json()["id"]
        granted = await client.post(f"{bases[1]}/admin/v1/tenants/{tenant_id}/credits",
                                    headers={**admin, "Idempotency-Key": "seed"},
                                    json={"amount": 10_000_000, "reason": "test"})
        assert granted.status_code == 201, granted.text
        key = await client.post(f"{bases[0]}/admin/v1/tenants/{tenant_id}/keys", headers=admin,
                                json={"name": "k", "scopes": ["generate", "read", "billing"]})
        assert key.status_code == 201, key.text
        auth = {"Authorization": f"Bearer {key.json()['key']}"}

        async def submit(i: int) -> str:
            r = await client.post(f"{bases[i % 2]}/v1/generations",
                                  headers={**auth, "Idempotency-Key": f"mp-{i}"},
                                  json={**IMAGE, "prompt": f"a quiet street, take {i}"})
            assert r.status_code == 202, r.text
            generation_id: str = r.json()["id"]
            return generation_id

        # Watched while it is being submitted: the workers start on it at once.
        submitting = asyncio.ensure_future(
            asyncio.gather(*(submit(i) for i in range(GENERATIONS // 2))))

        async def statuses() -> dict[str, int]:
            conn = await _admin_connect(database)
            try:
                rows = await conn.fetch("SELECT status, count(*) FROM generations GROUP BY 1")
            finally:
                await conn.close()
            return {r["status"]: r["count"] for r in rows}

        # Mid-load: the workers have started on the queue, which is not yet empty.
        await until(lambda: _started(statuses), 120, lambda: processes.log("worker0"))
        processes.started[2].send_signal(signal.SIGKILL)  # worker0
        processes.start("worker2", "worker")
        first = await submitting
        rest = await asyncio.gather(*(submit(i) for i in range(GENERATIONS // 2, GENERATIONS)))
        ids = first + rest
        assert len(set(ids)) == GENERATIONS

        async def all_ended() -> bool:
            counts = await statuses()
            return counts.get("succeeded", 0) + counts.get("failed", 0) == GENERATIONS

        await until(all_ended, 240, lambda: f"{processes.log('worker1')}\n"
                                            f"{processes.log('worker2')}")
        conn = await _admin_connect(database)
        try:
            failures = await conn.fetch(
                "SELECT id, error, attempts, attempts_log FROM generations "
                "WHERE status <> 'succeeded'")
        finally:
            await conn.close()
        assert await statuses() == {"succeeded": GENERATIONS}, [dict(f) for f in failures]
        # Both APIs answer for any generation (one database, one queue).
        for i, generation_id in enumerate(ids[:4]):
            got = await client.get(f"{bases[(i + 1) % 2]}/v1/generations/{generation_id}",
                                   headers=auth)
            assert got.json()["status"] == "succeeded"

    conn = await _admin_connect(database)
    try:
        # One settle per generation: each reservation resolved exactly once, by a post.
        resolutions = await conn.fetch(
            "SELECT g.id, g.charged_mc, count(r.id) AS n, sum(r.amount_mc) AS settled, "
            "bool_and(r.phase = 'post_pending') AS posted FROM generations g "
            "LEFT JOIN transfers r ON r.pending_id = g.reservation_id GROUP BY g.id")
        assert len(resolutions) == GENERATIONS
        assert all(r["n"] == 1 and r["posted"] for r in resolutions), resolutions
        assert all(r["settled"] == r["charged_mc"] > 0 for r in resolutions)
        settled = sum(r["settled"] for r in resolutions)
        open_holds = await conn.fetchval(
            "SELECT count(*) FROM transfers p WHERE p.phase = 'pending' AND NOT EXISTS "
            "(SELECT 1 FROM transfers r WHERE r.pending_id = p.id)")
        assert open_holds == 0
    finally:
        await conn.close()
    db = Database(database)
    try:
        async with db.session() as session:
            books = await ledger.balances(session, tenant_id)
    finally:
        await db.dispose()
    # Double entry: every account's posted credits minus debits sum to zero.
    assert sum(t.credits_posted - t.debits_posted for t in books.values()) == 0
    assert all(t.debits_pending == t.credits_pending == 0 for t in books.values())
    wallet = books[ledger.TENANT_WALLET]
    assert wallet.credits_posted - wallet.debits_posted == 10_000_000 - settled


async def _started(statuses: Callable[[], Awaitable[dict[str, int]]]) -> bool:
    counts = await statuses()
    return bool(counts.get("succeeded")) and bool(counts.get("queued") or counts.get("running"))
