"""What one generation on the wait path costs, in counts: statements, transactions, Valkey
commands, fsyncs, thread hops, and Python CPU.

    uv run python bench/wait_cost.py [--generations 200] [--database-url URL]
        [--valkey-url URL] [--profile out.txt]

In one process, the API (the app over ASGI, as tests/conftest.py builds it) and a worker with
its own `Services` (its own pool and Valkey connections, as `mediahub worker` runs: SAQ run
workers and the webhook worker) run N sequential generations: `POST /v1/generations` with
`Prefer: wait=30` for a 64x64 `local-image` picture, each with its own prompt (so the result
cache misses, as new work does). The whole path runs: submit, queue, claim, provider,
storage, settle, the webhook outbox check, the wait's wake-up. Periodic tasks (sweeper,
reconciler) do not run: they cost per interval, not per generation.

With PostgreSQL (the default, `127.0.0.1:5432`; a fresh migrated `mediahub_bench_<random>`
database, dropped at the end) it also reads the CPU time of this database's server backends
and of the Valkey server (`INFO`'s `used_cpu_*`; shared with anything else using it) from
/proc. With `--database-url sqlite+aiosqlite:///...` and `--valkey-url ''` it runs the
embedded mode (in-process queue).

Counts are exact and stable from run to run; CPU figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import os
import pstats
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio
import redis.asyncio.client
import valkey.asyncio
import valkey.asyncio.client
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app, start_services
from gateway.core.jobs import SaqQueue, build_workers, stop_workers
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.generations.services import Services
from gateway.webhooks.queues import SaqWebhookQueue
from gateway.webhooks.service import build_webhook_worker

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_VALKEY = "redis://127.0.0.1:6379/0"
ADMIN_TOKEN = "bench-admin-token-0123456789"
WARM_UP = 10

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+"?([a-z_][a-z0-9_]*)"?', re.IGNORECASE)


def describe(statement: str) -> str:
    """`VERB table` for a SQL statement: its first word and the first table it names."""
    words = statement.lstrip().split(None, 1)
    verb = words[0].upper() if words else "?"
    if verb == "WITH":  # a CTE: name the statement by what follows it
        match = re.search(r"\)\s*(SELECT|INSERT|UPDATE|DELETE)\b", statement, re.IGNORECASE)
        verb = f"WITH…{match[1].upper()}" if match else verb
    table = _TABLE.search(statement)
    return f"{verb} {table[1] if table else ''}".strip()


@dataclass
class Counts:
    """What one side (API or worker) did, and the Valkey commands of the whole process."""

    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0

    def total(self) -> int:
        return sum(self.statements.values())


@dataclass
class Tally:
    sides: dict[str, Counts] = field(default_factory=dict)
    valkey: collections.Counter[str] = field(default_factory=collections.Counter)
    round_trips: int = 0
    fsyncs: int = 0
    thread_hops: int = 0
    on: bool = False
    #: With `--trace`: every statement of the last generation, in order, by side.
    trace: list[str] | None = None

    def reset(self) -> None:
        self.sides = {name: Counts() for name in self.sides}
        self.valkey.clear()
        self.round_trips = self.fsyncs = self.thread_hops = 0


def watch_engine(tally: Tally, name: str, engine: AsyncEngine) -> None:
    """Count `engine`'s statements, transactions and pool checkouts under `name`."""
    tally.sides[name] = Counts()
    sync = engine.sync_engine

    def side() -> Counts | None:
        return tally.sides[name] if tally.on else None

    @event.listens_for(sync, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if (counts := side()) is not None:
            counts.statements[describe(statement)] += 1
            if tally.trace is not None:
                tally.trace.append(f"{name:>6}  {' '.join(statement.split())[:150]}")

    @event.listens_for(sync, "begin")
    def _begin(conn: Any) -> None:
        if (counts := side()) is not None:
            counts.begins += 1

    @event.listens_for(sync, "commit")
    def _commit(conn: Any) -> None:
        if (counts := side()) is not None:
            counts.commits += 1

    @event.listens_for(sync, "rollback")
    def _rollback(conn: Any) -> None:
        if (counts := side()) is not None:
            counts.rollbacks += 1

    @event.listens_for(sync, "checkout")
    def _checkout(*_: Any) -> None:
        if (counts := side()) is not None:
            counts.checkouts += 1


def watch_process(tally: Tally) -> None:
    """Count Valkey commands (both client libraries: valkey-py for the product's own stores,
    redis-py under SAQ), fsyncs and executor hops of this process."""
    for module, client in ((valkey.asyncio, valkey.asyncio.client),
                           (redis.asyncio, redis.asyncio.client)):
        single = module.Redis.execute_command

        async def execute_command(self: Any, *args: Any, _single: Any = single,
                                  **options: Any) -> Any:
            if tally.on:
                tally.valkey[str(args[0]).upper()] += 1
                tally.round_trips += 1
                if tally.trace is not None:
                    tally.trace.append(f"valkey  {' '.join(map(str, args[:2]))[:100]}")
            return await _single(self, *args, **options)

        module.Redis.execute_command = execute_command

        batch = client.Pipeline.execute

        async def execute(self: Any, *args: Any, _batch: Any = batch, **options: Any) -> Any:
            if tally.on:
                for command, _ in self.command_stack:
                    tally.valkey[str(command[0]).upper()] += 1
                    if tally.trace is not None:
                        tally.trace.append(f"valkey  (pipelined) "
                                           f"{' '.join(map(str, command[:2]))[:100]}")
                tally.round_trips += 1
            return await _batch(self, *args, **options)

        client.Pipeline.execute = execute

        pubsub = client.PubSub.execute_command

        async def pubsub_command(self: Any, *args: Any, _pubsub: Any = pubsub) -> Any:
            if tally.on:
                tally.valkey[str(args[0]).upper()] += 1
                tally.round_trips += 1
            return await _pubsub(self, *args)

        client.PubSub.execute_command = pubsub_command

    fsync = os.fsync

    def counted_fsync(fd: Any) -> None:
        if tally.on:
            tally.fsyncs += 1
        fsync(fd)

    os.fsync = counted_fsync
    loop = asyncio.get_running_loop()
    run_in_executor = loop.run_in_executor

    def counted_executor(executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        if tally.on:
            tally.thread_hops += 1
        return run_in_executor(executor, func, *args)

    loop.run_in_executor = counted_executor


def cpu_s(pid: int) -> float:
    """User+system CPU seconds of process `pid` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def admin_sql(url: str, sql: str) -> list[Any]:
    parsed = make_url(url)
    socket_dir = parsed.query.get("host")  # a Unix socket directory (`?host=`)
    conn = await asyncpg.connect(host=socket_dir if isinstance(socket_dir, str)
                                 else parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres", timeout=10)
    try:
        if sql.lstrip().upper().startswith("SELECT"):
            return list(await conn.fetch(sql))
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


async def server_cpu(database_url: str, valkey_url: str | None) -> tuple[float, float]:
    """CPU seconds so far of this database's PostgreSQL backends, and of the Valkey server
    (NaN where it cannot be read)."""
    pg = float("nan")
    if database_url.startswith("postgresql"):
        url = make_url(database_url)
        name = url.database
        rows = await admin_sql(url.set(database="postgres").render_as_string(False),
                               f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'")
        pg = sum(cpu_s(row["pid"]) for row in rows)
    vk = float("nan")
    if valkey_url:
        client = valkey.asyncio.from_url(valkey_url)  # type: ignore[no-untyped-call]
        try:
            info = await client.info("cpu")
            vk = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            await client.aclose()
    return pg, vk


def bench_settings(database_url: str, valkey_url: str | None, media: Path) -> Settings:
    return Settings(database_url=database_url, valkey_url=valkey_url,
                    storage_url=f"file://{media}", admin_token=ADMIN_TOKEN,
                    secret_key=secrets.token_bytes(32), public_base_url="http://bench",
                    queue_prefix=f"mhbench{secrets.token_hex(4)}",
                    default_allowed_providers=("*",))


@contextlib.asynccontextmanager
async def worker_process(settings: Settings) -> AsyncIterator[Services]:
    """A worker as `mediahub worker` runs one, in this process with its own services."""
    assert settings.valkey_url is not None
    services = await start_services(settings)
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix,
                         heartbeat_s=settings.job_lease_s)
    services.runtime.queue = saq_queue
    workers = build_workers(saq_queue, ["image"], services.runtime.tasks,
                            concurrency_for=settings.concurrency_for, sweep_interval_s=3600)
    assert isinstance(services.webhooks.queue, SaqWebhookQueue)
    workers.append(build_webhook_worker(services.webhooks.queue, services.webhooks,
                                        concurrency=settings.webhook_concurrency))
    running = [asyncio.create_task(w.start()) for w in workers]
    try:
        yield services
    finally:
        await stop_workers(workers, grace_s=10)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await services.close()


async def make_tenant(client: httpx.AsyncClient) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = await client.post("/admin/v1/tenants", headers=admin,
                          json={"name": "Bench", "slug": f"bench-{secrets.token_hex(4)}"})
    r.raise_for_status()
    tenant_id = r.json()["id"]
    r = await client.post(f"/admin/v1/tenants/{tenant_id}/credits",
                          headers={**admin, "Idempotency-Key": "seed"},
                          json={"amount": 10**12, "reason": "bench"})
    r.raise_for_status()
    r = await client.post(f"/admin/v1/tenants/{tenant_id}/keys", headers=admin,
                          json={"name": "bench", "scopes": ["generate", "read"]})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['key']}", "Prefer": "wait=30"}


async def generate(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> None:
    r = await client.post("/v1/generations", headers=headers, json={
        "type": "image", "provider": "local-image", "prompt": f"a lighthouse, take {n}",
        "params": {"size": "64x64"}})
    if r.status_code != 200 or r.json()["status"] != "succeeded":
        raise SystemExit(f"generation {n} did not succeed: {r.status_code} {r.text[:300]}")


@dataclass
class Result:
    n: int
    tally: Tally
    cpu_s: float
    wall_s: float
    pg_s: float
    valkey_s: float
    profile: str | None


async def run(database_url: str, valkey_url: str | None, n: int, profile: str | None,
              media: Path, trace: bool) -> Result:
    settings = bench_settings(database_url, valkey_url, media)
    tally = Tally()
    watch_process(tally)
    api = await start_services(settings)
    app = create_app(settings, services=api)
    watch_engine(tally, "api", api.runtime.db.engine)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(api.close)
        if valkey_url:
            worker = await stack.enter_async_context(worker_process(settings))
            watch_engine(tally, "worker", worker.runtime.db.engine)
        client = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://bench"))
        headers = await make_tenant(client)
        for i in range(WARM_UP):
            await generate(client, headers, -i - 1)
        pg_before, vk_before = await server_cpu(database_url, valkey_url)
        profiler = cProfile.Profile(time.process_time) if profile else None
        tally.on = True
        started_cpu, started = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for i in range(n):
            if trace and i == n - 1:
                tally.trace = []
            await generate(client, headers, i)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        tally.on = False
        pg_after, vk_after = await server_cpu(database_url, valkey_url)
        text = None
        if profiler is not None:
            profiler.dump_stats(f"{profile}.prof")  # for pstats or snakeviz
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            text = out.getvalue()
    return Result(n, tally, cpu, wall, pg_after - pg_before, vk_after - vk_before, text)


def report(result: Result, label: str) -> None:
    n, tally = result.n, result.tally
    print(f"\n{label}: {n} sequential generations (after {WARM_UP} warm-up), per generation:")
    print(f"{'':<44}" + "".join(f"{side:>10}" for side in tally.sides))
    names = sorted({k for c in tally.sides.values() for k in c.statements},
                   key=lambda k: -sum(c.statements[k] for c in tally.sides.values()))
    for name in names:
        print(f"  {name:<42}" + "".join(f"{c.statements[name] / n:>10.2f}"
                                        for c in tally.sides.values()))
    for title, get in (("statements", Counts.total),
                       ("transactions (BEGIN)", lambda c: c.begins),
                       ("commits", lambda c: c.commits),
                       ("rollbacks (read sessions end so)", lambda c: c.rollbacks),
                       ("pool checkouts", lambda c: c.checkouts)):
        print(f"{title:<44}" + "".join(f"{get(c) / n:>10.2f}" for c in tally.sides.values()))
    total_statements = sum(c.total() for c in tally.sides.values())
    total_begins = sum(c.begins for c in tally.sides.values())
    print(f"all statements {total_statements / n:.2f}, transactions {total_begins / n:.2f}")
    print(f"Valkey commands {sum(tally.valkey.values()) / n:.2f} in "
          f"{tally.round_trips / n:.2f} round trips: " + ", ".join(
              f"{k} {v / n:.2f}" for k, v in tally.valkey.most_common()))
    print(f"fsyncs {tally.fsyncs / n:.2f}, executor (thread) hops {tally.thread_hops / n:.2f}")
    print(f"Python CPU {result.cpu_s / n * 1000:.2f} ms, PostgreSQL backends "
          f"{result.pg_s / n * 1000:.2f} ms, Valkey server {result.valkey_s / n * 1000:.2f} ms "
          f"(shared server), wall {result.wall_s / n * 1000:.2f} ms "
          "(CPU and wall: noisy on a shared machine)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get(
        "MEDIAHUB_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL server this may create a database on, or a sqlite+aiosqlite URL")
    parser.add_argument("--valkey-url", default=DEFAULT_VALKEY,
                        help="'' for the embedded in-process queue (SQLite only)")
    parser.add_argument("--trace", action="store_true",
                        help="also print the last generation's statements and Valkey "
                             "commands in order")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a CPU-time cProfile summary (cumulative top 40, own "
                             "time top 25) to FILE and the raw profile to FILE.prof")
    args = parser.parse_args()
    valkey_url = args.valkey_url or None
    base = make_url(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="wait_cost_"))
    drop: str | None = None
    try:
        if base.drivername.startswith("postgresql"):
            base = base.set(drivername="postgresql+asyncpg")
            name = f"mediahub_bench_{secrets.token_hex(4)}"
            admin = base.render_as_string(hide_password=False)
            asyncio.run(admin_sql(admin, f'CREATE DATABASE "{name}"'))
            drop = name
            url = base.set(database=name).render_as_string(hide_password=False)
            label = "PostgreSQL + Valkey (API and a worker)"
        else:
            url = args.database_url
            label = "SQLite" + (" + Valkey (API and a worker)" if valkey_url
                                else " embedded (in-process queue)")
        upgrade(url)
        if not valkey_url and not url.startswith("sqlite"):
            raise SystemExit("PostgreSQL needs --valkey-url (the embedded queue is SQLite's)")
        result = asyncio.run(run(url, valkey_url, args.generations, args.profile,
                                 workdir / "media", args.trace))
        report(result, label)
        for line in result.tally.trace or []:
            print(line)
        if args.profile and result.profile is not None:
            Path(args.profile).write_text(result.profile)
            print(f"profile written to {args.profile}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if drop is not None:
            asyncio.run(admin_sql(admin, f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
