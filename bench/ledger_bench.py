"""Ledger throughput: reserve+settle pairs per second on PostgreSQL, beside pgbench's TPC-B.

    uv run python bench/ledger_bench.py [--seconds 15] [--clients 16] [--processes 2]
                                        [--database-url postgresql+asyncpg://postgres@127.0.0.1/postgres]

One run, one server, loopback only:

1. `pgbench -i -s 16` into a fresh database, then `pgbench -c CLIENTS -j 2 -T SECONDS` (the
   default TPC-B-like script); its "tps = ..." line is the yardstick.
2. A fresh `mediahub_bench_<random>` database, migrated to head; tenants, accounts and credits
   made by the product's own code (`tenants.service.create_tenant`,
   `ledger.open_tenant_accounts`, `ledger.grant`).
3. Two scenarios of SECONDS each, CLIENTS concurrent clients spread over PROCESSES processes,
   each client looping: one transaction `ledger.reserve` (a pending transfer on a wallet), then
   one transaction `ledger.post` at a random amount <= the reservation (1 in 10: `ledger.void`).
   "spread": one tenant (so one wallet) per client; "hot": every client on one wallet.
   A pair counts when its settle committed before the deadline.
4. After each scenario the money is checked through `ledger.balances`: every tenant's posted
   balances sum to zero, nothing is left pending, and each wallet holds exactly its grant minus
   what the clients settled. Exit status 1 if any check fails or any pair raised.

Both sides run with the server's settings as they are (printed); nothing is tuned for either.
The databases this script creates are dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import multiprocessing as mp
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
GRANT_MC = 10**15  # plenty: a pair spends at most 50 credits
VOID_EVERY = 10  # about one settle in ten is a void (failed generation)
LOW_THRESHOLD_MC = 1_000  # passed like the product does; never crossed with this much credit
TARGET = 0.4


# --------------------------------------------------------------------------- clients


@dataclass
class WorkerResult:
    pairs: int = 0
    voids: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    spent: dict[str, int] = field(default_factory=dict)  # tenant -> millicredits settled
    errors: list[str] = field(default_factory=list)


async def _pair(db: Any, ledger: Any, rng: random.Random, tenant_id: str, wallet: str,
                timeout: timedelta, utcnow: Any) -> tuple[int, bool]:
    """One reserve transaction then one settle transaction, as the product runs them."""
    from tenants.db import new_id

    amount = rng.randint(1_000, 50_000)
    async with db.transaction() as session:
        pending = await ledger.reserve(
            session, tenant_id=tenant_id, from_account=wallet, amount_mc=amount,
            idempotency_key=f"bench:{new_id('gen')}:wholesale", timeout_at=utcnow() + timeout,
            generation_id=None, low_threshold_mc=LOW_THRESHOLD_MC)
    if rng.randrange(VOID_EVERY) == 0:
        async with db.transaction() as session:
            await ledger.void(session, tenant_id=tenant_id, pending_id=pending.id)
        return 0, True
    settled = rng.randint(0, amount)
    async with db.transaction() as session:
        await ledger.post(session, tenant_id=tenant_id, pending_id=pending.id,
                          amount_mc=settled)
    return settled, False


async def _run_clients(url: str, assignments: list[tuple[str, str]], seconds: float,
                       conn: Any, seed: int) -> WorkerResult:
    from billing import ledger
    from tenants.db import Database, utcnow

    db = Database(url)  # the product's engine settings, as the gateway and workers use them
    result = WorkerResult()
    spent: dict[str, int] = defaultdict(int)
    timeout = timedelta(hours=1)
    try:
        # Warm-up, not counted: connections opened, account ids cached, statements prepared.
        async def warm(i: int, tenant_id: str, wallet: str) -> None:
            rng = random.Random(seed * 1000 + i)
            async with db.session() as session:
                await ledger.account_id(session, tenant_id, ledger.TENANT_WALLET)
            for _ in range(3):
                settled, _void = await _pair(db, ledger, rng, tenant_id, wallet, timeout, utcnow)
                spent[tenant_id] += settled

        await asyncio.gather(*(warm(i, t, w) for i, (t, w) in enumerate(assignments)))
        conn.send("ready")
        start_at = conn.recv()
        deadline = start_at + seconds
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def client(i: int, tenant_id: str, wallet: str) -> None:
            rng = random.Random(seed * 1000 + 500 + i)
            while True:
                began = time.perf_counter()
                try:
                    settled, voided = await _pair(db, ledger, rng, tenant_id, wallet, timeout,
                                                  utcnow)
                except Exception as exc:  # a benchmark must not hide a failing pair
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    return
                spent[tenant_id] += settled
                now = time.time()
                if now <= deadline:
                    result.pairs += 1
                    result.voids += voided
                    result.latencies_ms.append((time.perf_counter() - began) * 1000)
                if now >= deadline:
                    return

        await asyncio.gather(*(client(i, t, w) for i, (t, w) in enumerate(assignments)))
    finally:
        await db.dispose()
    result.spent = dict(spent)
    return result


def _worker(url: str, assignments: list[tuple[str, str]], seconds: float, conn: Any,
            seed: int) -> None:
    try:
        result = asyncio.run(_run_clients(url, assignments, seconds, conn, seed))
    except BaseException as exc:
        result = WorkerResult(errors=[f"worker: {type(exc).__name__}: {exc}"[:300]])
        try:
            conn.send("ready")
        except Exception:
            pass
    conn.send(result)
    conn.close()


def run_scenario(url: str, assignments: list[tuple[str, str]], seconds: float,
                 processes: int) -> tuple[WorkerResult, float]:
    """Run the clients in `processes` processes, started together; returns merged results."""
    ctx = mp.get_context("spawn")
    shares = [assignments[i::processes] for i in range(processes)]
    pipes, procs = [], []
    for n, share in enumerate(shares):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(url, share, seconds, child, n + 1), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for parent in pipes:
        if not parent.poll(120):
            raise RuntimeError("a client process did not get ready in 120 s")
        parent.recv()
    start_at = time.time() + 0.3
    for parent in pipes:
        parent.send(start_at)
    merged = WorkerResult()
    spent: dict[str, int] = defaultdict(int)
    for parent in pipes:
        if not parent.poll(seconds + 120):
            raise RuntimeError("a client process did not finish in time")
        part: WorkerResult = parent.recv()
        merged.pairs += part.pairs
        merged.voids += part.voids
        merged.latencies_ms += part.latencies_ms
        merged.errors += part.errors
        for tenant, mc in part.spent.items():
            spent[tenant] += mc
    for proc in procs:
        proc.join(30)
    merged.spent = dict(spent)
    return merged, seconds


# --------------------------------------------------------------------------- setup and checks


async def make_tenants(url: str, count: int, label: str) -> list[tuple[str, str]]:
    """`count` tenants made by the product's code, each with its wallet granted GRANT_MC."""
    from billing import ledger
    from tenants import service
    from tenants.db import Database
    from tenants.schemas import TenantCreate

    db = Database(url)
    made = []
    try:
        for i in range(count):
            async with db.transaction() as session:
                slug = f"bench-{label}-{i}-{secrets.token_hex(3)}"
                tenant = await service.create_tenant(
                    session, TenantCreate(name=f"Bench {label} {i}", slug=slug,
                                          low_balance_threshold_mc=LOW_THRESHOLD_MC))
                ids = await ledger.open_tenant_accounts(session, tenant.id)
                wallet = ids[ledger.TENANT_WALLET]
                await ledger.grant(session, tenant_id=tenant.id, to_account=wallet,
                                   amount_mc=GRANT_MC, idempotency_key=f"grant:{tenant.id}:bench",
                                   reason="benchmark")
            made.append((tenant.id, wallet))
    finally:
        await db.dispose()
    return made


async def check_invariants(url: str, tenants: list[tuple[str, str]],
                           spent: dict[str, int]) -> list[str]:
    """The ledger's books after a scenario; returns the broken invariants (none: all held)."""
    from billing import ledger
    from tenants.db import Database

    db = Database(url)
    broken = []
    try:
        async with db.session() as session:
            for tenant_id, _wallet in tenants:
                totals = await ledger.balances(session, tenant_id)
                posted = sum(t.posted_balance for t in totals.values())
                if posted != 0:
                    broken.append(f"{tenant_id}: posted balances sum to {posted}, not 0")
                for code, t in totals.items():
                    if t.debits_pending or t.credits_pending:
                        broken.append(f"{tenant_id}/{code}: pending left "
                                      f"({t.debits_pending} debit, {t.credits_pending} credit)")
                held = totals[ledger.TENANT_WALLET].posted_balance
                expected = GRANT_MC - spent.get(tenant_id, 0)
                if held != expected:
                    broken.append(f"{tenant_id}: wallet holds {held}, expected {expected}")
    finally:
        await db.dispose()
    return broken


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- pgbench


def find_pgbench(given: str | None) -> str:
    if given:
        return given
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not candidates:
        raise SystemExit("pgbench not found: install postgresql-contrib or pass --pgbench")
    return candidates[-1]


def run_pgbench(pgbench: str, conn_args: list[str], env: dict[str, str], database: str,
                clients: int, seconds: int) -> tuple[float, float]:
    """`pgbench -i -s 16` then the TPC-B-like run; returns (tps, average latency in ms)."""
    subprocess.run([pgbench, *conn_args, "-i", "-s", "16", "-q", database], env=env,
                   check=True, capture_output=True, text=True, timeout=300)
    out = subprocess.run([pgbench, *conn_args, "-c", str(clients), "-j", "2", "-T",
                          str(seconds), database], env=env, check=True, capture_output=True,
                         text=True, timeout=seconds + 120).stdout
    tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    if tps is None:
        raise RuntimeError(f"no tps line in pgbench's output:\n{out}")
    return float(tps.group(1)), float(latency.group(1)) if latency else float("nan")


# --------------------------------------------------------------------------- main


async def admin(base: str, sql: str) -> list[Any]:
    parsed = make_url(base)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres", timeout=10)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="per measured phase (15)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--processes", type=int, default=2,
                        help="Python processes the ledger clients are spread over (2)")
    parser.add_argument("--database-url", default=os.environ.get("MEDIAHUB_BENCH_DATABASE_URL",
                                                                 DEFAULT_URL),
                        help="a server this may create and drop databases on (loopback only)")
    parser.add_argument("--pgbench", help="path to pgbench (default: PATH, then "
                                          "/usr/lib/postgresql/*/bin)")
    parser.add_argument("--scenarios", default="spread,hot")
    args = parser.parse_args()

    base = make_url(args.database_url)
    if base.host not in LOOPBACK:
        raise SystemExit(f"refusing to benchmark {base.host}: loopback servers only")
    if not base.drivername.startswith("postgresql"):
        raise SystemExit("the ledger benchmark needs PostgreSQL")
    base = base.set(drivername="postgresql+asyncpg")
    base_url = base.render_as_string(hide_password=False)
    pgbench = find_pgbench(args.pgbench)
    tag = secrets.token_hex(4)
    ledger_db, pgbench_db = f"mediahub_bench_{tag}", f"mediahub_bench_{tag}_pgbench"
    url = base.set(database=ledger_db).render_as_string(hide_password=False)
    conn_args = ["-h", base.host or "127.0.0.1", "-p", str(base.port or 5432),
                 "-U", base.username or "postgres"]
    env = {**os.environ, **({"PGPASSWORD": base.password} if base.password else {})}

    settings = asyncio.run(admin(base_url, (
        "SELECT name, setting, unit FROM pg_settings WHERE name IN ('server_version', "
        "'synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections',"
        " 'commit_delay', 'full_page_writes') ORDER BY name")))
    print(f"server {base.host}:{base.port or 5432}, {os.cpu_count()} CPUs; settings (untouched, "
          "the same for both sides):")
    print("  " + ", ".join(f"{r['name']}={r['setting']}{r['unit'] or ''}" for r in settings))
    print(f"pgbench: {pgbench}; ledger clients: {args.clients} in {args.processes} "
          "process(es), the product's Database() engine settings")

    async def checkpoint() -> None:
        try:
            await admin(base_url, "CHECKPOINT")
        except asyncpg.PostgresError:
            pass  # not a superuser: the phases simply start wherever the checkpointer is

    failed = False
    rows: list[tuple[str, WorkerResult, float]] = []
    try:
        asyncio.run(admin(base_url, f'CREATE DATABASE "{pgbench_db}"'))
        asyncio.run(admin(base_url, f'CREATE DATABASE "{ledger_db}"'))
        from gateway.migrate import upgrade

        upgrade(url)
        scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        setups: dict[str, list[tuple[str, str]]] = {}
        for name in scenarios:
            if name == "spread":
                made = asyncio.run(make_tenants(url, args.clients, "spread"))
                setups[name] = made  # client i on tenant i's wallet
            elif name == "hot":
                made = asyncio.run(make_tenants(url, 1, "hot"))
                setups[name] = made * args.clients  # every client on the one wallet
            else:
                raise SystemExit(f"unknown scenario {name!r}")

        asyncio.run(checkpoint())
        print(f"pgbench -i -s 16; pgbench -c {args.clients} -j 2 -T {args.seconds} ...",
              flush=True)
        tps, pgb_latency = run_pgbench(pgbench, conn_args, env, pgbench_db, args.clients,
                                       args.seconds)
        print(f"  tps = {tps:.1f}, latency average = {pgb_latency:.2f} ms", flush=True)

        for name in scenarios:
            asyncio.run(checkpoint())
            print(f"ledger scenario {name!r}: {args.seconds} s ...", flush=True)
            result, elapsed = run_scenario(url, setups[name], args.seconds, args.processes)
            tenants = sorted(set(setups[name]))
            broken = asyncio.run(check_invariants(url, tenants, result.spent))
            if result.errors:
                failed = True
                print(f"  {len(result.errors)} pair(s) raised, e.g. {result.errors[0]}")
            if broken:
                failed = True
                print("  INVARIANTS BROKEN:\n    " + "\n    ".join(broken[:20]))
            else:
                print(f"  invariants held on {len(tenants)} tenant(s): posted balances sum to "
                      "0, nothing pending, each wallet = grant - settled", flush=True)
            rows.append((name, result, elapsed))
    finally:
        for database in (ledger_db, pgbench_db):
            try:
                asyncio.run(admin(base_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            except Exception as exc:
                print(f"could not drop {database}: {exc}", file=sys.stderr)

    print()
    header = (f"{'scenario':<10}{'pairs/s':>10}{'pgbench TPS':>13}{'ratio':>8}"
              f"{'p50 ms':>9}{'p99 ms':>9}{'pairs':>9}{'voids':>7}")
    print(header)
    print("-" * len(header))
    print(f"{'pgbench':<10}{'':>10}{tps:>13.1f}{'':>8}{pgb_latency:>9.2f}{'':>9}"
          f"{'':>9}{'':>7}   (latency average per transaction)")
    for name, result, elapsed in rows:
        rate = result.pairs / elapsed
        ratio = rate / tps
        mark = "ok" if ratio >= TARGET else f"below {TARGET}"
        print(f"{name:<10}{rate:>10.1f}{tps:>13.1f}{ratio:>8.2f}"
              f"{pct(result.latencies_ms, 0.5):>9.2f}{pct(result.latencies_ms, 0.99):>9.2f}"
              f"{result.pairs:>9}{result.voids:>7}   {mark}")
    print(f"\ntarget: pairs/s >= {TARGET} x pgbench TPS; {args.clients} clients, "
          f"{args.seconds} s per phase, same server, same run")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
