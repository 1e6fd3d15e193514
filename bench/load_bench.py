"""Submit throughput of `POST /v1/generations` on the full stack, beside a by-hand floor.

    uv run python bench/load_bench.py [--seconds 15] [--connections 32]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
        [--valkey-url redis://127.0.0.1:6379/0]

One run, loopback only, about a minute and a half:

1. A fresh `mediahub_load_<random>` database migrated to head, a Valkey key prefix of its own,
   and `tests/example_plugin` (an offline provider that answers in microseconds) installed
   into a temporary directory, as a third-party plugin would be.
2. The full stack as an operator runs it: `mediahub serve` (one uvicorn process) and one
   `mediahub worker --queues audio`, on PostgreSQL and Valkey. A tenant with a key and
   credits is made through the admin API.
3. The floor (`bench/load_floor.py`): one Litestar endpoint under the same uvicorn settings
   doing the submit's I/O by hand: one GCRA script call, one transaction with a conditional
   debit and two inserts, one queue push.
4. The load: `wrk` (a second process, C, on loopback) with CONNECTIONS connections for
   SECONDS each: the floor; the gateway with a new prompt on every request (each a submit:
   rate limit, cache miss, price, reserve, insert, enqueue); then, once the worker has
   finished that backlog (its time is printed), the gateway with one prompt it has already
   answered (each a cache hit: a new generation with `cached: true`).
   Throughput, p50 and p99 as wrk measures them; every answer must be 202/200 or the run
   fails.

Prints the figures and the ratios the issue sets: submit / floor (target >= 0.8, p99 under
50 ms at 32 connections) and cache hits / submit (target >= 5). Needs `wrk` (Debian: `apt-get
install wrk`). The databases and keys made here are removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import valkey.asyncio as valkey_client
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(8)
SECRET_KEY = secrets.token_urlsafe(48)
PROVIDER = "example-echo"
SUBMIT_TARGET, P99_TARGET_MS, CACHE_TARGET = 0.8, 50.0, 5.0

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
%(extra)s
local counter = 0
local fixed = %(fixed)s
-- Each thread has its own Lua state (and the same unseeded math.random): number them, so
-- no two requests of a submit run share a prompt (they would coalesce).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local prompt = "bench words"
  if not fixed then prompt = "bench %(run)s " .. tid .. " " .. counter end
  return wrk.format(nil, nil, nil,
    '{"type": "audio", "prompt": "' .. prompt .. '", "provider": "%(provider)s"}')
end
local bad = 0
function response(status, headers, body)
  if status ~= 202 and status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
end
"""


@dataclass
class Load:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(name: str, url: str, key: str, *, fixed: bool, seconds: int,
            connections: int, headers: dict[str, str] | None = None) -> Load:
    """wrk with `--latency` (and `headers` on every request, e.g. `Prefer: wait=30`);
    parses requests/s, p50, p99, and non-2xx answers."""
    extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"key": key, "fixed": "true" if fixed else "false",
                                   "provider": PROVIDER, "run": secrets.token_hex(4),
                                   "extra": extra})
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
             "--timeout", "10s", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {p: _ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if rps is None or total is None or "50" not in lat or "99" not in lat:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return Load(name, float(rps.group(1)), lat["50"], lat["99"], int(total.group(1)),
                int(non_2xx.group(1)) if non_2xx else 0,
                errors.group(1) if errors else "")


async def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(url + path)
                if r.status_code < 500:
                    return
            await asyncio.sleep(0.2)  # waiting for a server to listen: nothing to wait on
    raise RuntimeError(f"{url} did not answer in 90 s")


async def make_tenant(base: str) -> str:
    """A tenant with a key and plenty of credits, through the admin API; returns the key."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/admin/v1/tenants", headers=admin, json={
            "name": "Load", "slug": f"load-{secrets.token_hex(3)}",
            "rate_limits": {"requests_per_minute": 10_000_000, "burst": 1_000_000,
                            "key_requests_per_minute": 10_000_000, "key_burst": 1_000_000}})
        r.raise_for_status()
        tenant = r.json()["id"]
        r = await client.post(f"/admin/v1/tenants/{tenant}/keys", headers=admin,
                              json={"name": "load", "scopes": ["generate", "read"]})
        r.raise_for_status()
        key: str = r.json()["key"]
        r = await client.post(f"/admin/v1/tenants/{tenant}/credits",
                              headers={**admin, "Idempotency-Key": f"load-{tenant}"},
                              json={"amount": 10**12, "reason": "load benchmark"})
        r.raise_for_status()
        # One answered request, so the fixed prompt of the cache run is a hit from the start.
        r = await client.post("/v1/generations", headers={
            "Authorization": f"Bearer {key}", "Prefer": "wait=30"},
            json={"type": "audio", "prompt": "bench words", "provider": PROVIDER})
        if r.status_code != 200 or r.json()["status"] != "succeeded":
            raise RuntimeError(f"the warm-up generation did not succeed: {r.text}")
    return key


async def wait_drained(url: str, timeout_s: float = 300) -> int:
    """Wait until no generation is queued or running; returns how many still are."""
    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            left = int(await conn.fetchval(
                "SELECT count(*) FROM generations WHERE status IN ('queued', 'running')"))
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)  # polling another process's progress
    finally:
        await conn.close()


async def admin_sql(base_url: str, sql: str) -> None:
    parsed = make_url(base_url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_keys(valkey_url: str, prefix: str) -> None:
    client = valkey_client.from_url(valkey_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


def install_plugin(target: Path) -> None:
    subprocess.run(["uv", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(ROOT / "tests" / "example_plugin")], check=True, cwd=ROOT,
                   timeout=300)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=os.environ.get(
        "MEDIAHUB_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--valkey-url", default=os.environ.get(
        "MEDIAHUB_BENCH_VALKEY_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--py-spy", metavar="DIR",
                        help="diagnostic: record the gateway with py-spy into DIR")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    base = make_url(args.database_url)
    if base.host not in LOOPBACK:
        raise SystemExit(f"refusing to load {base.host}: loopback servers only")
    base = base.set(drivername="postgresql+asyncpg")
    base_url = base.render_as_string(hide_password=False)
    tag = secrets.token_hex(4)
    database = f"mediahub_load_{tag}"
    url = base.set(database=database).render_as_string(hide_password=False)
    floor_url = base.set(drivername="postgresql", database=database).render_as_string(
        hide_password=False)
    prefix = f"mhload{tag}"
    work = Path(tempfile.mkdtemp(prefix="mediahub-load-"))
    site = work / "site"
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "MEDIAHUB_DATABASE_URL": url, "MEDIAHUB_VALKEY_URL": args.valkey_url,
           "MEDIAHUB_QUEUE_PREFIX": prefix, "MEDIAHUB_SECRET_KEY": SECRET_KEY,
           "MEDIAHUB_ADMIN_TOKEN": ADMIN_TOKEN, "MEDIAHUB_STORAGE_URL": f"file://{work}/media"}
    python = [sys.executable]
    procs: list[subprocess.Popen[bytes]] = []
    loads: list[Load] = []
    try:
        asyncio.run(admin_sql(base_url, f'CREATE DATABASE "{database}"'))
        install_plugin(site)
        subprocess.run([*python, "-m", "gateway", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)

        floor_port = free_port()
        floor = start([*python, "bench/load_floor.py", "--port", str(floor_port),
                       "--database-url", floor_url, "--valkey-url", args.valkey_url,
                       "--prefix", prefix], env, work / "floor.log")
        procs.append(floor)
        floor_base = f"http://127.0.0.1:{floor_port}"
        asyncio.run(wait_ready(floor_base, floor, "/"))
        print(f"floor: {args.connections} connections, {args.seconds} s ...", flush=True)
        loads.append(run_wrk("floor", floor_base + "/v1/generations", "-", fixed=False,
                             seconds=args.seconds, connections=args.connections))
        stop(floor)

        port = free_port()
        gateway = start([*python, "-m", "gateway", "serve", "--port", str(port)], env,
                        work / "serve.log")
        worker = start([*python, "-m", "gateway", "worker", "--queues", "audio"], env,
                       work / "worker.log")
        procs += [gateway, worker]
        gateway_base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(gateway_base, gateway, "/health/live"))
        key = asyncio.run(make_tenant(gateway_base))
        for name, fixed in (("submit", False), ("cache hit", True)):
            print(f"gateway {name}: {args.connections} connections, {args.seconds} s ...",
                  flush=True)
            spy = None
            if args.py_spy:
                # Diagnostic: where the gateway process spends its time under this load.
                py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                spy = subprocess.Popen(
                    [py_spy, "record", "--pid", str(gateway.pid), "--format", "raw",
                     "--duration", str(args.seconds), "--nonblocking", "--output",
                     str(Path(args.py_spy) / f"{name.replace(' ', '_')}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            loads.append(run_wrk(name, gateway_base + "/v1/generations", key, fixed=fixed,
                                 seconds=args.seconds, connections=args.connections))
            if spy is not None:
                spy.wait(60)
            if name == "submit":
                # The worker's backlog would otherwise share the CPU with the next run.
                began = time.monotonic()
                left = asyncio.run(wait_drained(url))
                drained_s = time.monotonic() - began
                print(f"  worker drained the backlog in {drained_s:.1f} s more"
                      + (f" ({left} still unfinished)" if left else ""), flush=True)
    finally:
        for proc in procs:
            stop(proc)
        with contextlib.suppress(Exception):
            asyncio.run(drop_keys(args.valkey_url, prefix))
        try:
            asyncio.run(admin_sql(base_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        except Exception as exc:
            print(f"could not drop {database}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    by = {load.name: load for load in loads}
    print()
    header = f"{'run':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'non-2xx':>9}"
    print(header)
    print("-" * len(header))
    for load in loads:
        print(f"{load.name:<11}{load.rps:>9.1f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}"
              f"{load.requests:>10}{load.non_2xx:>9}  {load.errors}")
    submit_ratio = by["submit"].rps / by["floor"].rps
    cache_ratio = by["cache hit"].rps / by["submit"].rps
    print(f"\nsubmit / floor     = {submit_ratio:.2f}  (target >= {SUBMIT_TARGET}; p99 "
          f"{by['submit'].p99_ms:.1f} ms, target < {P99_TARGET_MS:.0f} ms)")
    print(f"cache hit / submit = {cache_ratio:.2f}  (target >= {CACHE_TARGET})")
    failed = any(load.non_2xx or load.errors for load in loads)
    if failed:
        print("some requests failed (non-2xx or socket errors): the figures are not valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
