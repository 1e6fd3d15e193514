"""Submit and wait on an empty database, then on one holding a million ended generations.

    uv run python bench/flat_bench.py [--generations 1000000] [--tenants 1000]
        [--seconds 10] [--rounds 3] [--bench-share 0.1] [--pool-size 8] [--write-docs]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
        [--valkey-url redis://127.0.0.1:6379/0]

Issue 17, "Flat as the work grows": the cost of a request may not grow with history. One
run, loopback only, about 35 minutes at full size on two cores:

1. Two fresh databases migrated to head ("empty" and "loaded"), each with its own Valkey
   prefix, `mediahub serve` and one `mediahub worker --queues audio`, `tests/example_plugin`
   installed (an offline provider), and a bench tenant made through the admin API: all with
   `bench/load_bench.py`'s functions. The usage rollups' first refresh (which reads every
   generation ever made) runs before the processes start, so theirs only read what changed.
2. Empty database: `wrk` on `POST /v1/generations` with a new prompt each request (the submit
   path, 32 connections), then, once the worker has drained that backlog, the same with
   `Prefer: wait=30` (the wait path, 8 connections: submit, the worker runs the example
   provider, the waiter is woken), SECONDS each.
3. The history, bulk-loaded into the other database with COPY in batches: GENERATIONS ended
   generations across TENANTS tenants (BENCH_SHARE of them the bench tenant's own, so its
   indexes are big too), each with its reservation and that reservation's post or void, the
   wallets' counters moved to match and one grant per tenant funding them; created over 90
   days, mostly succeeded, some failed or canceled, six media types, several providers, 20
   customers per tenant. Then `ANALYZE` (both databases), the history's usage rollups
   (`mediahub analytics rollup --since`), and the ledger's invariant on every tenant (posted
   balances sum to zero, nothing pending).
4. The same two runs on the loaded database, then empty and loaded alternately until each
   phase has ROUNDS runs (the machine's drift falls on both); the ratios loaded / empty of
   the medians (target >= 0.90). Beside each run: the shared buffers PostgreSQL touched per
   request, in total and by table (a statement that reads history shows there first).
   `--profile` also logs every statement of both databases and prints those whose time grew
   most on the loaded one, with EXPLAIN ANALYZE there (reads PostgreSQL's server log).

Everything made here is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import load_bench as lb  # a sibling script: Python puts the script's folder on the path
from sqlalchemy.engine import make_url

ROOT = lb.ROOT
T = TypeVar("T")
TARGET = 0.90
WIDTH = 95  # docs/ wraps its paragraphs here
BATCH = 10_000
CUSTOMERS_PER_TENANT = 20
GRANT_MC = 10**15
SUBMIT_CONNECTIONS, WAIT_CONNECTIONS = 32, 8
#: Media types with their weight in the history, and the providers each was made by.
TYPES: dict[str, tuple[int, tuple[str, ...]]] = {
    "image": (50, ("openai", "stability", "replicate", "local-image")),
    "audio": (20, ("elevenlabs", "openai", "local-speech", "example-echo")),
    "video": (15, ("runway", "replicate", "local-video")),
    "text": (10, ("openai", "anthropic")),
    "design": (3, ("local-design",)),
    "model_3d": (2, ("meshy",)),
}
OPERATIONS = {"image": "text_to_image", "audio": "text_to_speech", "video": "text_to_video",
              "design": "design_autofill", "model_3d": "text_to_3d", "text": "complete"}
WORDS = ("quiet", "street", "harbour", "neon", "forest", "portrait", "winter", "market",
         "robot", "river", "poster", "logo", "voice", "morning", "city", "garden")


@dataclass
class Run:
    phase: str
    load: lb.Load
    buffers_per_request: float


@dataclass
class Tenant:
    id: str
    wallet: str
    revenue: str
    funding: str
    customers: list[str]


def _pg_dsn(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {"host": parsed.host, "port": parsed.port or 5432,
            "user": parsed.username or "postgres", "password": parsed.password,
            "database": parsed.database}


async def _connect(url: str) -> asyncpg.Connection:
    # The server is shared: when other work holds every connection slot, wait for one
    # rather than lose the run.
    for _ in range(60):
        try:
            return await asyncpg.connect(**_pg_dsn(url), timeout=10)
        except asyncpg.TooManyConnectionsError:
            await asyncio.sleep(1)
    return await asyncpg.connect(**_pg_dsn(url), timeout=10)


def _retrying(call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(call())`, again while the server has no connection slot free."""
    for _ in range(60):
        try:
            return asyncio.run(call())
        except asyncpg.TooManyConnectionsError:
            time.sleep(1)
    return asyncio.run(call())


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns COPY writes: every one but the generated (the search vector)."""
    return [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position", table)]


async def _template(conn: asyncpg.Connection, table: str, columns: list[str], where: str,
                    *args: Any) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {', '.join(columns)} FROM {table} WHERE {where} LIMIT 1", *args)
    if row is None:
        raise RuntimeError(f"no template row in {table} where {where}")
    return dict(row)


async def _make_tenants(conn: asyncpg.Connection, bench_id: str, count: int,
                        ) -> list[Tenant]:
    """`count - 1` copies of the bench tenant (name, slug and id changed) with its four
    accounts, and 20 customers for every tenant; returns them all, the bench tenant first."""
    columns = await _columns(conn, "tenants")
    overrides = {"id": "'tnflat' || i", "slug": "'flat-' || i", "name": "'Flat ' || i"}
    chosen = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    await conn.execute(
        f"INSERT INTO tenants ({', '.join(columns)}) SELECT {chosen} FROM tenants t, "
        f"generate_series(1, {count - 1}) i WHERE t.id = $1", bench_id)
    await conn.execute(
        "INSERT INTO accounts (id, tenant_id, code, no_overdraft, system, debits_posted, "
        "credits_posted, debits_pending, credits_pending, created_at) "
        "SELECT 'acflat' || i || '_' || a.code, 'tnflat' || i, a.code, a.no_overdraft, "
        "a.system, 0, 0, 0, 0, now() FROM accounts a, generate_series(1, $2) i "
        "WHERE a.tenant_id = $1", bench_id, count - 1)
    ids = [bench_id] + [f"tnflat{i}" for i in range(1, count)]
    customers = [(f"cuflat{n}_{j}", tenant, f"user-{j}", "standard",
                  datetime.now(UTC) - timedelta(days=91), f"user-{j}")
                 for n, tenant in enumerate(ids) for j in range(CUSTOMERS_PER_TENANT)]
    await conn.copy_records_to_table(
        "customers", records=customers,
        columns=["id", "tenant_id", "external_id", "tier", "created_at", "search_key"])
    accounts: dict[tuple[str, str], str] = {
        (r["tenant_id"], r["code"]): r["id"] for r in await conn.fetch(
            "SELECT id, tenant_id, code FROM accounts WHERE tenant_id = ANY($1::text[])", ids)}
    return [Tenant(t, accounts[t, "tenant_wallet"], accounts[t, "platform_revenue"],
                   accounts[t, "funding"],
                   [c[0] for c in customers[n * CUSTOMERS_PER_TENANT:
                                            (n + 1) * CUSTOMERS_PER_TENANT]])
            for n, t in enumerate(ids)]


class History:
    """Builds the rows of one batch of ended generations with their two transfers each."""

    def __init__(self, tenants: list[Tenant], bench_share: float,
                 columns: dict[str, list[str]], templates: dict[str, dict[str, Any]]) -> None:
        self.tenants = tenants
        self.bench_share = bench_share
        self.columns = columns
        self.templates = templates
        self.posted: dict[str, int] = {t.id: 0 for t in tenants}
        self.now = datetime.now(UTC)
        self.types = list(TYPES)
        self.weights = [TYPES[t][0] for t in self.types]

    def _row(self, table: str, values: dict[str, Any]) -> tuple[Any, ...]:
        template = self.templates[table]
        return tuple(values[c] if c in values else template[c] for c in self.columns[table])

    def batch(self, start: int, size: int, rng: random.Random,
              ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        gens, reserves, resolutions = [], [], []
        wholesale = int(self.templates["generations"]["wholesale_mc"]) or 1000
        error = json.dumps({"code": "provider_error", "message": "the provider failed"})
        for n in range(start, start + size):
            tenant = (self.tenants[0] if rng.random() < self.bench_share
                      else self.tenants[1 + rng.randrange(len(self.tenants) - 1)])
            kind = rng.choices(self.types, self.weights)[0]
            provider = rng.choice(TYPES[kind][1])
            roll = rng.random()
            status = "succeeded" if roll < 0.90 else "failed" if roll < 0.97 else "canceled"
            created = self.now - timedelta(seconds=rng.uniform(120, 90 * 86400))
            ended = created + timedelta(milliseconds=rng.randint(50, 60_000))
            gid, reserve_id, resolution_id = f"genflat{n}", f"trflat{n}r", f"trflat{n}p"
            amount = wholesale * rng.randint(1, 20)
            charged = amount if status == "succeeded" else 0
            deleted = ended + timedelta(days=1) if rng.random() < 0.02 else None
            gens.append(self._row("generations", {
                "id": gid, "tenant_id": tenant.id,
                "customer_id": rng.choice(tenant.customers) if rng.random() < 0.7 else None,
                "api_key_id": None, "type": kind, "operation": OPERATIONS[kind],
                "prompt": " ".join(rng.choices(WORDS, k=6)) + f" {n}",
                "provider": provider, "status": status, "cached": rng.random() < 0.05,
                "wholesale_mc": amount, "retail_mc": amount, "estimated_mc": amount,
                "charged_mc": charged, "reservation_id": reserve_id,
                "customer_reservation_id": None, "idempotency_key": None,
                "request_hash": f"{rng.getrandbits(256):064x}",
                "fingerprint": (f"{rng.getrandbits(256):064x}" if status == "succeeded"
                                else None),
                "outputs": (self.templates["generations"]["outputs"]
                            if status == "succeeded" and deleted is None else "[]"),
                "error": error if status == "failed" else None,
                "candidates": json.dumps([provider]), "coalesced_from": None,
                "created_at": created, "updated_at": ended, "started_at": created,
                "completed_at": ended, "deleted_at": deleted, "lease_until": None,
                "spend_day": None, "key_budget_month": None, "customer_budget_month": None,
                "team_id": None, "team_period": None, "brand_kit_id": None,
                "brand_kit_version": None, "favourite": rng.random() < 0.01,
                "webhook_url": None, "metadata": "{}"}))
            reserves.append(self._row("reserve", {
                "id": reserve_id, "tenant_id": tenant.id,
                "idempotency_key": f"gen:{gid}:wholesale", "debit_account_id": tenant.wallet,
                "credit_account_id": tenant.revenue, "amount_mc": amount, "phase": "pending",
                "pending_id": None, "kind": "generation",
                "timeout_at": created + timedelta(hours=1), "generation_id": gid,
                "reason": None, "created_at": created}))
            phase = "post_pending" if status == "succeeded" else "void_pending"
            resolutions.append(self._row("resolution", {
                "id": resolution_id, "tenant_id": tenant.id,
                "idempotency_key": f"{phase}:{reserve_id}", "debit_account_id": tenant.wallet,
                "credit_account_id": tenant.revenue, "amount_mc": charged, "phase": phase,
                "pending_id": reserve_id, "timeout_at": None, "generation_id": gid,
                "reason": None, "created_at": ended}))
            self.posted[tenant.id] += charged
        return gens, reserves, resolutions


async def load_history(url: str, generations: int, tenant_count: int, bench_share: float,
                       ) -> tuple[float, int]:
    """Bulk-load the history (module docstring, step 3) and ANALYZE; returns (seconds,
    rows written)."""
    began = time.monotonic()
    conn = await _connect(url)
    try:
        bench_id = await conn.fetchval("SELECT id FROM tenants ORDER BY created_at LIMIT 1")
        columns = {"generations": await _columns(conn, "generations")}
        columns["reserve"] = columns["resolution"] = await _columns(conn, "transfers")
        done = await _template(conn, "generations", columns["generations"],
                               "tenant_id = $1 AND status = 'succeeded'", bench_id)
        templates = {
            "generations": done,
            "reserve": await _template(conn, "transfers", columns["reserve"], "id = $1",
                                       done["reservation_id"]),
            "resolution": await _template(conn, "transfers", columns["resolution"],
                                          "pending_id = $1", done["reservation_id"])}
        tenants = await _make_tenants(conn, bench_id, tenant_count)
    finally:
        await conn.close()
    history = History(tenants, bench_share, columns, templates)
    batches = [(start, min(BATCH, generations - start))
               for start in range(0, generations, BATCH)]
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    written = 0

    async def copier() -> None:
        # Two copiers: one builds its rows in Python while PostgreSQL indexes the other's.
        nonlocal written
        conn = await _connect(url)
        try:
            while not queue.empty():
                start, size = queue.get_nowait()
                gens, reserves, resolutions = history.batch(start, size, random.Random(start))
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "generations", records=gens, columns=columns["generations"])
                    await conn.copy_records_to_table(
                        "transfers", records=reserves, columns=columns["reserve"])
                    await conn.copy_records_to_table(
                        "transfers", records=resolutions, columns=columns["resolution"])
                written += len(gens) * 3
                if (start // BATCH) % 10 == 9:
                    rate = written / (time.monotonic() - began)
                    print(f"  {start + size:,} generations loaded ({rate:,.0f} rows/s)",
                          flush=True)
        finally:
            await conn.close()

    await asyncio.gather(copier(), copier())
    conn = await _connect(url)
    try:
        async with conn.transaction():
            # Each new tenant's grant (funding -> wallet), and every wallet's counters moved
            # by what its history posted, as the ledger's verbs would have moved them.
            await conn.copy_records_to_table("transfers", records=[
                (f"trflatg{n}", t.id, f"grant:{t.id}:flat", t.funding, t.wallet, GRANT_MC,
                 "single", "grant", datetime.now(UTC) - timedelta(days=91))
                for n, t in enumerate(tenants[1:])], columns=[
                "id", "tenant_id", "idempotency_key", "debit_account_id", "credit_account_id",
                "amount_mc", "phase", "kind", "created_at"])
            await conn.executemany(
                "UPDATE accounts SET credits_posted = credits_posted + $2, "
                "debits_posted = debits_posted + $3 WHERE id = $1",
                [(t.wallet, 0 if n == 0 else GRANT_MC, history.posted[t.id])
                 for n, t in enumerate(tenants)])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.monotonic() - began, written + len(tenants)


async def broken_books(url: str) -> tuple[int, list[str]]:
    """The ledger's invariant on every tenant (as bench/ledger_bench.py checks it): posted
    balances sum to zero and nothing is pending. Returns (tenants checked, what broke)."""
    from billing import ledger
    from tenants.kernel.db import Database

    conn = await _connect(url)
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM tenants")]
    finally:
        await conn.close()
    db = Database(url)
    broken = []
    try:
        async with db.session() as session:
            for tenant_id in ids:
                totals = await ledger.balances(session, tenant_id)
                posted = sum(t.posted_balance for t in totals.values())
                if posted != 0:
                    broken.append(f"{tenant_id}: posted balances sum to {posted}, not 0")
                pending = [code for code, t in totals.items()
                           if t.debits_pending or t.credits_pending]
                if pending:
                    broken.append(f"{tenant_id}: pending left on {pending}")
    finally:
        await db.dispose()
    return len(ids), broken


async def buffers(url: str) -> dict[str, int]:
    """Shared buffers read or hit in this database so far: in total (`""`), and per table
    with its indexes (pg_stat_database, pg_statio_user_tables)."""
    conn = await _connect(url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        counts = {"": int(await conn.fetchval(
            "SELECT blks_hit + blks_read FROM pg_stat_database "
            "WHERE datname = current_database()"))}
        for row in await conn.fetch(
                "SELECT relname, coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0) "
                "+ coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0) AS blocks "
                "FROM pg_statio_user_tables"):
            counts[row["relname"]] = int(row["blocks"])
        return counts
    finally:
        await conn.close()


def measure(phase: str, base: str, key: str, url: str, seconds: int) -> list[Run]:
    """The submit run, the worker's drain, then the wait run; returns both runs."""
    runs = []
    for name, connections, headers in (
            ("submit", SUBMIT_CONNECTIONS, None),
            ("wait", WAIT_CONNECTIONS, {"Prefer": "wait=30"})):
        print(f"{phase} {name}: {connections} connections, {seconds} s ...", flush=True)
        before = _retrying(lambda: buffers(url))
        load = lb.run_wrk(name, base + "/v1/generations", key, fixed=False, seconds=seconds,
                          connections=connections, headers=headers)
        after = _retrying(lambda: buffers(url))
        per_request = {rel: (after[rel] - before.get(rel, 0)) / max(load.requests, 1)
                       for rel in after}
        began = time.monotonic()
        left = _retrying(lambda: lb.wait_drained(url))
        print(f"  {load.rps:.1f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; "
              f"worker drained in {time.monotonic() - began:.1f} s more"
              + (f" ({left} unfinished)" if left else ""), flush=True)
        # Buffers touched during the run (the worker's share included) per answered request,
        # and the tables (with their indexes) that touched most: where a statement reading
        # history would show.
        top = sorted(((v, k) for k, v in per_request.items() if k), reverse=True)[:6]
        print(f"  buffers/request {per_request['']:.0f}: "
              + ", ".join(f"{k} {v:.1f}" for v, k in top), flush=True)
        runs.append(Run(phase, load, per_request[""]))
    return runs


def _of(runs: list[Run], phase: str, name: str) -> list[Run]:
    return [r for r in runs if r.phase == phase and r.load.name == name]


def ratio(runs: list[Run], name: str) -> float:
    """Loaded / empty of the median req/s of the path `name`."""
    return (median([r.load.rps for r in _of(runs, "loaded", name)])
            / median([r.load.rps for r in _of(runs, "empty", name)]))


def table(runs: list[Run]) -> list[str]:
    """A Markdown table of the medians per path and phase, each run's req/s beside."""
    lines = ["| path | phase | req/s (median) | each run | p50 | p99 | buffers/request |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for name, connections in (("submit", SUBMIT_CONNECTIONS), ("wait", WAIT_CONNECTIONS)):
        for phase in ("empty", "loaded"):
            mine = _of(runs, phase, name)
            lines.append(
                f"| {name} ({connections} conn.) | {phase} | "
                f"{median([r.load.rps for r in mine]):.0f} | "
                f"{', '.join(f'{r.load.rps:.0f}' for r in mine)} | "
                f"{median([r.load.p50_ms for r in mine]):.0f} ms | "
                f"{median([r.load.p99_ms for r in mine]):.0f} ms | "
                f"{median([r.buffers_per_request for r in mine]):.0f} |")
        lines.append(f"| {name} | **loaded / empty** | **{ratio(runs, name):.2f}** | | | | |")
    return lines


def write_docs(runs: list[Run], command: str, generations: int, tenants: int,
               load_s: float, rows: int) -> None:
    """Replace (or add) the section of docs/benchmarks.md these figures belong to."""
    path = ROOT / "docs" / "benchmarks.md"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    title = f"## Flat at {generations:,} generations"
    section = "\n".join([
        title, "",
        "```sh", command, "# needs wrk; PostgreSQL and Valkey on 127.0.0.1", "```", "",
        textwrap.fill(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit}`: the submit path "
        f"(`POST /v1/generations`, a new prompt each request, {SUBMIT_CONNECTIONS} "
        f"connections) and the wait path (the same with `Prefer: wait=30` on the offline "
        f"example provider, {WAIT_CONNECTIONS} connections), first on an empty database, "
        f"then after bulk-loading {generations:,} ended generations across {tenants:,} "
        f"tenants with their reservations and settlements ({rows:,} rows by COPY in "
        f"{load_s:.0f} s, {rows / load_s:,.0f} rows/s, then `ANALYZE`; the ledger's "
        "invariant held on every tenant). Target: loaded / empty ≥ 0.90.", WIDTH), "",
        *table(runs), "",
        textwrap.fill(
        "Buffers/request: PostgreSQL's shared buffers hit or read during the run (worker "
        "included) per answered request; a statement that reads history shows there before "
        "it shows in req/s. The machine is a shared 2-vCPU VM (wrk, the gateway, the worker, "
        "PostgreSQL and Valkey on the same two cores, other sessions possibly busy): runs "
        "differ by several per cent from one to the next, so a ratio near 0.90 is within "
        "noise; repeat before concluding.", WIDTH), ""])
    text = path.read_text()
    pattern = re.compile(r"^## Flat at [\d,]+ generations\n.*?(?=^## |\Z)", re.S | re.M)
    text = (pattern.sub(lambda _: section + "\n", text, count=1) if pattern.search(text)
            else text.rstrip("\n") + "\n\n" + section)
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)}: {title[3:]}")


SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] ")
_DURATION = re.compile(r"@(\S+) LOG:  duration: ([\d.]+) ms  (execute [^:]*|statement): (.*)")
_PARAMETERS = re.compile(r"@(\S+) DETAIL:  parameters: (.*)")


@dataclass
class Statement:
    text: str
    durations: dict[str, list[float]]
    parameters: str = ""


def logged_statements(log: Path, offset: int, databases: dict[str, str],
                      ) -> dict[str, Statement]:
    """The statements each database in `databases` (name -> phase) ran, as PostgreSQL logged
    them from `offset` on (`log_min_duration_statement = 0`), by text; the loaded phase's
    last parameters kept for EXPLAIN."""
    entries: list[str] = []
    with log.open(errors="replace") as handle:
        handle.seek(offset)
        for line in handle:
            if _LOG_ENTRY.match(line) or not entries:
                entries.append(line.rstrip("\n"))
            else:
                entries[-1] += " " + line.strip()
    found: dict[str, Statement] = {}
    last: Statement | None = None
    for entry in entries:
        duration = _DURATION.search(entry)
        if duration and duration.group(1) in databases:
            text = " ".join(duration.group(4).split())
            last = found.setdefault(text, Statement(text, {"empty": [], "loaded": []}))
            last.durations[databases[duration.group(1)]].append(float(duration.group(2)))
            continue
        given = _PARAMETERS.search(entry)
        if given and last is not None and databases.get(given.group(1)) == "loaded":
            last.parameters = given.group(2)
        last = None
    return found


def _with_parameters(text: str, parameters: str) -> str:
    values = dict(re.findall(r"\$(\d+) = ((?:'(?:[^']|'')*')|NULL)", parameters))
    return re.sub(r"\$(\d+)\b", lambda m: values.get(m.group(1), m.group(0)), text)


async def profile(loaded_url: str, statements: dict[str, Statement], top: int = 8) -> None:
    """Print the statements both phases ran, those whose mean time grew most on the loaded
    database first, with EXPLAIN (ANALYZE, BUFFERS) of the top three there (rolled back)."""
    both = [s for s in statements.values() if s.durations["empty"] and s.durations["loaded"]
            and s.text.upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"))]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    both.sort(key=lambda s: (mean(s.durations["loaded"]) - mean(s.durations["empty"]))
              * len(s.durations["loaded"]), reverse=True)
    print(f"\nstatements of both phases, by time grown on the loaded database (of {len(both)}):")
    for s in both[:top]:
        empty, loaded = s.durations["empty"], s.durations["loaded"]
        print(f"  {mean(empty):7.2f} ms x{len(empty):<6} -> {mean(loaded):7.2f} ms "
              f"x{len(loaded):<6} {s.text[:150]}")
    conn = await _connect(loaded_url)
    try:
        for s in both[:3]:
            if not s.parameters and "$1" in s.text:
                continue
            statement = _with_parameters(s.text, s.parameters)
            tr = conn.transaction()
            await tr.start()
            try:
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement)
            except asyncpg.PostgresError as exc:
                print(f"\n  could not EXPLAIN {s.text[:80]}: {exc}")
                continue
            finally:
                await tr.rollback()
            print(f"\n  EXPLAIN ANALYZE on the loaded database: {s.text[:150]}")
            print("\n".join("    " + r[0] for r in plan))
    finally:
        await conn.close()


@dataclass
class Stack:
    """One database with its own Valkey prefix, `mediahub serve` and one worker."""

    phase: str
    database: str
    url: str
    prefix: str
    base: str = ""
    key: str = ""


def stack_env(stack: Stack, env: dict[str, str]) -> dict[str, str]:
    return {**env, "MEDIAHUB_DATABASE_URL": stack.url, "MEDIAHUB_QUEUE_PREFIX": stack.prefix}


def run_rollups(stack: Stack, env: dict[str, str], *options: str) -> float:
    """`mediahub analytics rollup OPTIONS` on the stack's database, to its end; returns its
    seconds."""
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "gateway", "analytics", "rollup", *options],
                   cwd=ROOT, env=stack_env(stack, env), check=True, capture_output=True,
                   timeout=3600)
    return time.monotonic() - began


def start_stack(stack: Stack, env: dict[str, str], work: Path,
                procs: list[subprocess.Popen[bytes]]) -> None:
    """Create and migrate the stack's database, start its processes (appended to `procs`,
    which the caller stops) and make its bench tenant."""
    python = [sys.executable]
    subprocess.run([*python, "-m", "gateway", "db", "upgrade"], cwd=ROOT,
                   env=stack_env(stack, env), check=True, capture_output=True, timeout=120)
    # The rollups' first refresh reads every generation ever made: done here, on an empty
    # database, it sets the watermark, so the processes' periodic refresh (every 300 s) reads
    # only what changed since, as on a platform whose rollups kept up with its history;
    # otherwise it would fall on the loaded runs.
    run_rollups(stack, env)
    env = stack_env(stack, env)
    port = lb.free_port()
    gateway = lb.start([*python, "-m", "gateway", "serve", "--port", str(port)], env,
                       work / f"{stack.phase}-serve.log")
    procs.append(gateway)
    procs.append(lb.start([*python, "-m", "gateway", "worker", "--queues", "audio"], env,
                          work / f"{stack.phase}-worker.log"))
    stack.base = f"http://127.0.0.1:{port}"
    asyncio.run(lb.wait_ready(stack.base, gateway, "/health/live"))
    stack.key = asyncio.run(lb.make_tenant(stack.base))


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="empty and loaded runs, alternated this many times each")
    parser.add_argument("--bench-share", type=float, default=0.1,
                        help="share of the history that is the bench tenant's own")
    parser.add_argument("--pool-size", type=int, default=8,
                        help="each process's PostgreSQL pool (and as many again in overflow)")
    parser.add_argument("--profile", action="store_true",
                        help="log every statement (log_min_duration_statement = 0) and print "
                             "those that grew on the loaded database, with their plans; "
                             f"reads {SERVER_LOG}")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the figures into docs/benchmarks.md")
    parser.add_argument("--database-url", default=os.environ.get(
        "MEDIAHUB_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--valkey-url", default=os.environ.get(
        "MEDIAHUB_BENCH_VALKEY_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    if args.tenants < 2 or args.generations < 1 or args.rounds < 1:
        raise SystemExit("--tenants must be at least 2, --generations and --rounds 1")
    base = make_url(args.database_url)
    if base.host not in lb.LOOPBACK:
        raise SystemExit(f"refusing to load {base.host}: loopback servers only")
    base = base.set(drivername="postgresql+asyncpg")
    base_url = base.render_as_string(hide_password=False)
    tag = secrets.token_hex(4)
    stacks = [Stack(phase, f"mediahub_flat_{phase}_{tag}",
                    base.set(database=f"mediahub_flat_{phase}_{tag}").render_as_string(
                        hide_password=False), f"mhflat{phase}{tag}")
              for phase in ("empty", "loaded")]
    empty, loaded = stacks
    work = Path(tempfile.mkdtemp(prefix="mediahub-flat-"))
    site = work / "site"
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "MEDIAHUB_VALKEY_URL": args.valkey_url, "MEDIAHUB_SECRET_KEY": lb.SECRET_KEY,
           "MEDIAHUB_ADMIN_TOKEN": lb.ADMIN_TOKEN, "MEDIAHUB_STORAGE_URL": f"file://{work}/media",
           # Four processes on a server other work shares (100 connections by default):
           # at most 4 x 16 here, the same in both phases.
           "MEDIAHUB_DATABASE_POOL_SIZE": str(args.pool_size),
           "MEDIAHUB_DATABASE_MAX_OVERFLOW": str(args.pool_size)}
    procs: list[subprocess.Popen[bytes]] = []
    runs: list[Run] = []
    load_s, rows, failed = 0.0, 0, False
    try:
        lb.install_plugin(site)
        log_offset = SERVER_LOG.stat().st_size if args.profile else 0
        for stack in stacks:
            asyncio.run(lb.admin_sql(base_url, f'CREATE DATABASE "{stack.database}"'))
            if args.profile:
                asyncio.run(lb.admin_sql(base_url, f'ALTER DATABASE "{stack.database}" '
                                                   "SET log_min_duration_statement = 0"))
            start_stack(stack, env, work, procs)
        # The empty database's first figures come before the load, as a reference taken
        # while the other database is still small too.
        runs += measure("empty", empty.base, empty.key, empty.url, args.seconds)
        print(f"loading {args.generations:,} generations across {args.tenants:,} tenants "
              f"({args.bench_share:.0%} the bench tenant's) ...", flush=True)
        load_s, rows = asyncio.run(load_history(loaded.url, args.generations, args.tenants,
                                                args.bench_share))
        print(f"  loaded {rows:,} rows in {load_s:.1f} s ({rows / load_s:,.0f} rows/s, "
              "ANALYZE included)", flush=True)
        _retrying(lambda: lb.admin_sql(empty.url, "ANALYZE"))
        # The history's rollups, as a platform would have them (the watermark stays).
        since = (datetime.now(UTC) - timedelta(days=92)).date().isoformat()
        print(f"  usage rollups of every tenant rebuilt in "
              f"{run_rollups(loaded, env, '--since', since):.1f} s", flush=True)
        checked, broken = _retrying(lambda: broken_books(loaded.url))
        if broken:
            failed = True
            print("  LEDGER INVARIANT BROKEN:\n    " + "\n    ".join(broken[:20]))
        else:
            print(f"  ledger invariant held on {checked} tenants: posted balances sum to 0, "
                  "nothing pending", flush=True)
        # Alternate, so the machine's drift (other work on it) falls on both phases.
        order = [loaded] + [s for n in range(1, args.rounds)
                            for s in ((empty, loaded) if n % 2 else (loaded, empty))]
        for stack in order:
            runs += measure(stack.phase, stack.base, stack.key, stack.url, args.seconds)
        if args.profile:
            asyncio.run(profile(loaded.url, logged_statements(
                SERVER_LOG, log_offset, {s.database: s.phase for s in stacks})))
    finally:
        for proc in procs:
            lb.stop(proc)
        for stack in stacks:
            try:
                asyncio.run(lb.drop_keys(args.valkey_url, stack.prefix))
            except Exception as exc:
                print(f"could not drop the keys {stack.prefix}*: {exc}", file=sys.stderr)
            try:
                asyncio.run(lb.admin_sql(
                    base_url, f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)'))
            except Exception as exc:
                print(f"could not drop {stack.database}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("\n".join(table(runs)))
    print()
    for name in ("submit", "wait"):
        print(f"{name}: loaded / empty = {ratio(runs, name):.2f} (medians; "
              f"{'meets' if ratio(runs, name) >= TARGET else 'below'} {TARGET})")
    failed = failed or any(r.load.non_2xx or r.load.errors for r in runs)
    if failed:
        print("some requests failed or the books did not balance: the figures are not valid")
    elif args.write_docs:
        command = ("uv run python bench/flat_bench.py --generations "
                   f"{args.generations} --tenants {args.tenants} --seconds {args.seconds} "
                   f"--rounds {args.rounds} --write-docs")
        write_docs(runs, command, args.generations, args.tenants, load_s, rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
