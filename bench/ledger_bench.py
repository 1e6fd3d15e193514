"""Ledger throughput: reserve+settle pairs per second on PostgreSQL, beside pgbench's TPC-B.

    uv run python bench/ledger_bench.py [--seconds 15] [--clients 16] [--processes 2]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

One run, one server, loopback only, bounded (about 4 x SECONDS plus a minute of setup):

1. `pgbench -i -s 16` into a fresh database, then `pgbench -c CLIENTS -j 2 -T SECONDS` (the
   default TPC-B-like script); its "tps = ..." line is the yardstick.
2. A fresh `mediahub_bench_<random>` database, migrated to head; tenants, accounts and credits
   made by the product's own code (`tenants.service.create_tenant`,
   `ledger.open_tenant_accounts`, `ledger.grant`).
3. Scenarios of SECONDS each, CLIENTS concurrent asyncio clients in PROCESSES processes, each
   looping: one unit `ledger.reserve` (a pending transfer on a wallet), then one unit
   `ledger.post` at a random amount <= the reservation (1 in 10: `ledger.void`), through the
   product's `Database.grouped()` (group commit: concurrent units share transactions). A pair
   counts when its settle committed before the deadline. "spread": one tenant, so one wallet,
   per client; "hot": every client on one wallet; "empty": the reference, two plain
   transactions of `SELECT 1` per pair (one each, no group commit), no ledger.
4. After each ledger scenario the money is checked through `ledger.balances`: every tenant's
   posted balances sum to zero, nothing is left pending, and each wallet holds exactly its
   grant minus what the clients settled. Exit status 1 if a check fails or a client raised.

Both sides run with the server's settings as they are (printed); nothing is tuned for either.
The ledger database gets a VACUUM ANALYZE after setup, as `pgbench -i` gives its tables.
`--pre-ping` is a diagnostic (the clients' engine with pool_pre_ping, which the product
leaves off unless MEDIAHUB_DATABASE_PRE_PING is set);
its figures are not the product's. The databases made here are dropped at the end, whatever
happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    cpu_s: float = 0.0  # CPU time the client process(es) used while measured


async def _ledger_pair(db: Any, rng: random.Random, tenant_id: str,
                       wallet: str) -> tuple[int, bool]:
    """One reserve unit then one settle unit, each through `db.grouped` as the product runs
    them (its submit and settle transactions share commits with concurrent ones)."""
    from billing import ledger
    from tenants.kernel.db import new_id, utcnow

    amount = rng.randint(1_000, 50_000)
    pending = await db.grouped(lambda session: ledger.reserve(
        session, tenant_id=tenant_id, from_account=wallet, amount_mc=amount,
        idempotency_key=f"bench:{new_id('gen')}:wholesale",
        timeout_at=utcnow() + timedelta(hours=1), generation_id=None,
        low_threshold_mc=LOW_THRESHOLD_MC))
    if rng.randrange(VOID_EVERY) == 0:
        await db.grouped(lambda session: ledger.void(
            session, tenant_id=tenant_id, pending_id=pending.id))
        return 0, True
    settled = rng.randint(0, amount)
    await db.grouped(lambda session: ledger.post(
        session, tenant_id=tenant_id, pending_id=pending.id, amount_mc=settled))
    return settled, False


async def _empty_pair(db: Any, rng: random.Random, tenant_id: str,
                      wallet: str) -> tuple[int, bool]:
    """The reference: two product transactions that only `SELECT 1` (no ledger at all)."""
    from sqlalchemy import text

    for _ in range(2):
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))
    return 0, False


async def _run_clients(url: str, assignments: list[tuple[str, str]], seconds: float,
                       conn: Any, seed: int, empty: bool,
                       engine_options: dict[str, Any]) -> WorkerResult:
    from billing import ledger
    from tenants.kernel.db import Database

    pair = _empty_pair if empty else _ledger_pair
    # The product's engine settings, as the gateway and its workers use them (unless a
    # diagnostic option says otherwise, which the printout then says too).
    db = Database(url, **engine_options)
    result = WorkerResult()
    spent: dict[str, int] = defaultdict(int)
    try:
        # Warm-up, not counted: connections opened, account ids cached, statements prepared.
        async def warm(i: int, tenant_id: str, wallet: str) -> None:
            rng = random.Random(seed * 1000 + i)
            async with db.session() as session:
                await ledger.account_id(session, tenant_id, ledger.TENANT_WALLET)
            for _ in range(3):
                settled, _void = await pair(db, rng, tenant_id, wallet)
                spent[tenant_id] += settled

        await asyncio.gather(*(warm(i, t, w) for i, (t, w) in enumerate(assignments)))
        conn.send("ready")
        start_at = conn.recv()
        deadline = start_at + seconds
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu_before = time.process_time()

        async def client(i: int, tenant_id: str, wallet: str) -> None:
            rng = random.Random(seed * 1000 + 500 + i)
            while True:
                began = time.perf_counter()
                try:
                    settled, voided = await pair(db, rng, tenant_id, wallet)
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
        result.cpu_s = time.process_time() - cpu_before
    finally:
        await db.dispose()
    result.spent = dict(spent)
    return result


def _worker(url: str, assignments: list[tuple[str, str]], seconds: float, conn: Any,
            seed: int, empty: bool, engine_options: dict[str, Any]) -> None:
    try:
        result = asyncio.run(_run_clients(url, assignments, seconds, conn, seed, empty,
                                          engine_options))
    except BaseException as exc:
        result = WorkerResult(errors=[f"worker: {type(exc).__name__}: {exc}"[:300]])
    conn.send(result)
    conn.close()


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (0, 0 where there is none)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else float("nan")


def run_scenario(url: str, assignments: list[tuple[str, str]], seconds: float,
                 processes: int, empty: bool = False,
                 engine_options: dict[str, Any] | None = None) -> tuple[WorkerResult, float]:
    """Run the clients in `processes` processes, started together; returns merged results
    and the machine's CPU busy share during the measured window."""
    ctx = mp.get_context("spawn")
    shares = [assignments[i::processes] for i in range(processes)]
    pipes, procs = [], []
    for n, share in enumerate(shares):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, daemon=True,
                           args=(url, share, seconds, child, n + 1, empty,
                                 engine_options or {}))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    merged = WorkerResult()
    ready = []
    for parent in pipes:
        if not parent.poll(120):
            raise RuntimeError("a client process did not get ready in 120 s")
        message = parent.recv()
        if isinstance(message, WorkerResult):  # it failed while warming up
            merged.errors += message.errors
        else:
            ready.append(parent)
    start_at = time.time() + 0.3
    for parent in ready:
        parent.send(start_at)
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = cpu_ticks()
    spent: dict[str, int] = defaultdict(int)
    for parent in ready:
        if not parent.poll(seconds + 120):
            raise RuntimeError("a client process did not finish in time")
        part: WorkerResult = parent.recv()
        merged.pairs += part.pairs
        merged.voids += part.voids
        merged.latencies_ms += part.latencies_ms
        merged.errors += part.errors
        merged.cpu_s += part.cpu_s
        for tenant, mc in part.spent.items():
            spent[tenant] += mc
    busy = busy_share(cpu_before, cpu_ticks())
    for proc in procs:
        proc.join(30)
    merged.spent = dict(spent)
    return merged, busy


# --------------------------------------------------------------------------- setup and checks


async def make_tenants(url: str, count: int, label: str) -> list[tuple[str, str]]:
    """`count` tenants made by the product's code, each with its wallet granted GRANT_MC."""
    from billing import ledger
    from tenants import service
    from tenants.kernel.db import Database
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
    from tenants.kernel.db import Database

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
    """Run one statement on the server of `base` (in its database), outside a transaction."""
    parsed = make_url(base)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres", timeout=10)
    try:
        if not sql.lstrip().upper().startswith("SELECT"):
            await conn.execute(sql)  # simple protocol: VACUUM, CHECKPOINT, CREATE DATABASE
            return []
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@dataclass
class Row:
    name: str
    result: WorkerResult
    seconds: float
    busy: float  # the machine's CPU busy share while measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="per measured phase (15)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--processes", type=int, default=2,
                        help="Python processes the clients are spread over (2: one process "
                             "saturates a core before the server does)")
    parser.add_argument("--database-url", default=os.environ.get("MEDIAHUB_BENCH_DATABASE_URL",
                                                                 DEFAULT_URL),
                        help="a server this may create and drop databases on (loopback only)")
    parser.add_argument("--pgbench", help="path to pgbench (default: PATH, then "
                                          "/usr/lib/postgresql/*/bin)")
    parser.add_argument("--scenarios", default="spread,hot,empty",
                        help="of spread, hot and empty (the no-ledger reference); all three")
    parser.add_argument("--pre-ping", action="store_true",
                        help="diagnostic: clients' engine with pool_pre_ping (the product's "
                             "MEDIAHUB_DATABASE_PRE_PING=1; round trips on every transaction)")
    parser.add_argument("--group-commit", default="",
                        help="MAX_BATCH,MAX_CONCURRENT for Database.grouped (default: the "
                             "product's)")
    args = parser.parse_args()

    base = make_url(args.database_url)
    if base.host not in LOOPBACK:
        raise SystemExit(f"refusing to benchmark {base.host}: loopback servers only")
    if not base.drivername.startswith("postgresql"):
        raise SystemExit("the ledger benchmark needs PostgreSQL")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"spread", "hot", "empty"}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
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
        "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN "
        "('server_version', 'synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', "
        "'max_connections', 'commit_delay', 'full_page_writes') ORDER BY name")))
    idle_probe = cpu_ticks()
    time.sleep(1)
    busy_before = busy_share(idle_probe, cpu_ticks())
    print(f"server {base.host}:{base.port or 5432}; {os.cpu_count()} CPUs, "
          f"{busy_before:.0%} busy before the run (anything else running skews every figure)")
    print("server settings, untouched and the same for both sides:")
    print("  " + ", ".join(f"{r['name']}={r['setting']}" for r in settings))
    engine_options: dict[str, Any] = {"pool_pre_ping": True} if args.pre_ping else {}
    if args.group_commit:
        batch, concurrent = (int(v) for v in args.group_commit.split(","))
        engine_options["group_commit"] = {"max_batch": batch, "max_concurrent": concurrent}
    print(f"pgbench: {pgbench}; ledger: {args.clients} clients in {args.processes} Python "
          "process(es), the product's ledger functions and Database() engine"
          + (" WITH pool_pre_ping (diagnostic)" if args.pre_ping else ""))

    async def checkpoint() -> None:
        # Not a superuser: the phases simply start wherever the checkpointer is.
        with contextlib.suppress(asyncpg.PostgresError):
            await admin(base_url, "CHECKPOINT")

    failed = False
    rows: list[Row] = []
    try:
        asyncio.run(admin(base_url, f'CREATE DATABASE "{pgbench_db}"'))
        asyncio.run(admin(base_url, f'CREATE DATABASE "{ledger_db}"'))
        from gateway.core.migrate import upgrade

        upgrade(url)
        spread = asyncio.run(make_tenants(url, args.clients, "spread"))
        hot = asyncio.run(make_tenants(url, 1, "hot"))
        setups = {"spread": spread,  # client i on tenant i's wallet
                  "hot": hot * args.clients,  # every client on the one wallet
                  "empty": spread}
        # Statistics, as autovacuum gives a live database (and `pgbench -i` gives its own).
        asyncio.run(admin(url, "VACUUM ANALYZE"))

        asyncio.run(checkpoint())
        print(f"pgbench -i -s 16, then pgbench -c {args.clients} -j 2 -T {args.seconds} ...",
              flush=True)
        before = cpu_ticks()
        tps, pgb_latency = run_pgbench(pgbench, conn_args, env, pgbench_db, args.clients,
                                       args.seconds)
        pgb_busy = busy_share(before, cpu_ticks())  # includes the -i load, a few seconds
        print(f"  tps = {tps:.1f}, latency average = {pgb_latency:.2f} ms", flush=True)

        for name in scenarios:
            asyncio.run(checkpoint())
            print(f"ledger scenario {name!r}: {args.seconds} s ...", flush=True)
            result, busy = run_scenario(url, setups[name], args.seconds, args.processes,
                                        empty=name == "empty", engine_options=engine_options)
            rows.append(Row(name, result, args.seconds, busy))
            if result.errors:
                failed = True
                print(f"  {len(result.errors)} client(s) failed, e.g. {result.errors[0]}")
            if name == "empty":
                continue
            tenants = sorted(set(setups[name]))
            broken = asyncio.run(check_invariants(url, tenants, result.spent))
            if broken:
                failed = True
                print("  INVARIANTS BROKEN:\n    " + "\n    ".join(broken[:20]))
            else:
                print(f"  invariants held on {len(tenants)} tenant(s): posted balances sum to "
                      "0, nothing left pending, each wallet = grant - what was settled",
                      flush=True)
    finally:
        for database in (ledger_db, pgbench_db):
            try:
                asyncio.run(admin(base_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            except Exception as exc:
                print(f"could not drop {database}: {exc}", file=sys.stderr)

    print()
    header = (f"{'scenario':<9}{'pairs/s':>9}{'pgbench TPS':>12}{'ratio':>7}{'p50 ms':>8}"
              f"{'p99 ms':>8}{'client CPU':>11}{'CPU busy':>9}")
    print(header)
    print("-" * len(header))
    print(f"{'pgbench':<9}{'':>9}{tps:>12.1f}{'':>7}{pgb_latency:>8.2f}{'':>8}{'':>11}"
          f"{pgb_busy:>9.0%}")
    for row in rows:
        rate = row.result.pairs / row.seconds
        ratio = rate / tps
        per_pair = row.result.cpu_s / row.result.pairs * 1000 if row.result.pairs else 0.0
        mark = ("reference" if row.name == "empty" else
                "meets 0.4" if ratio >= TARGET else f"below {TARGET}")
        print(f"{row.name:<9}{rate:>9.1f}{tps:>12.1f}{ratio:>7.2f}"
              f"{pct(row.result.latencies_ms, 0.5):>8.2f}"
              f"{pct(row.result.latencies_ms, 0.99):>8.2f}"
              f"{per_pair:>8.2f} ms{row.busy:>9.0%}  {mark}")
    print(f"""
pairs/s: reserve+settle pairs committed in {args.seconds} s by {args.clients} clients (1 in
{VOID_EVERY} settles is a void); ratio = pairs/s / pgbench TPS (target >= {TARGET}). p50/p99:
a pair's latency (pgbench: its average transaction latency). client CPU: the clients' Python
CPU time per pair. CPU busy: the whole machine while measured (pgbench: with its -i load).
empty: the same clients doing two product transactions of `SELECT 1`, no ledger: the ceiling
of one transaction per verb through db.transaction() on this machine.""")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
