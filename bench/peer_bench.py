"""mediahub's wait path against LiteLLM's proxy on the same work, same run, same fake provider.

    uv run python bench/peer_bench.py [--seconds 10] [--rounds 2] [--connections 8,32]
        [--write-docs] [--profile DIR] [--logs DIR]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
        [--valkey-url redis://127.0.0.1:6379/0]

One script starts everything, loopback only:

1. A zero-latency fake of OpenAI's `POST /v1/images/generations` (a raw ASGI app under
   uvicorn with uvloop and httptools, in its own process) answering one small valid PNG as
   `b64_json`; it counts the calls and its own handling time (`GET /stats`).
2. LiteLLM's proxy (1 worker, no database, a master key) in its own virtual environment,
   made once under `~/.cache/mediahub-bench/litellm` (`litellm[proxy]` and
   `opentelemetry-sdk`, which removes a failing import LiteLLM makes on every request), with
   one image model routed to the fake.
3. mediahub as `bench/load_bench.py` runs it (a fresh database migrated to head, a Valkey
   prefix of its own, its tenant with a key and credits): `mediahub serve` (one process)
   and one `mediahub worker`, the platform's `openai` key and base URL pointing at the fake
   (`MEDIAHUB_EGRESS_ALLOW_LOOPBACK=true`, as the tests allow their fakes).
4. `wrk` with a new prompt on every request against LiteLLM's `POST /v1/images/generations`
   (L), mediahub's `POST /v1/generations` with `Prefer: wait=30` (N, native) and mediahub's
   `POST /v1/images/generations` (O, OpenAI-compatible), alternating L, N, O at each
   connection count, ROUNDS times. An answer that is not a 200 (and, native, a succeeded
   generation) counts as an error and the run is reported as failed, not as a figure.
5. CPU per provider call (each request makes one): user+system time from /proc over every
   process of the system: LiteLLM's process tree; mediahub's API and worker trees, the
   PostgreSQL backends connected to the bench database and the Valkey server (which other
   work on the machine shares). mediahub's CPU is read once its worker has finished what the
   run left queued.

Prints a table and the ratios issue #17 sets (mediahub req/s at least 2x LiteLLM's at each
connection count; added time, latency minus the fake's own, p50 <= 15 ms and p99 <= 60 ms at
8 connections; <= 10 ms of CPU per generation). `--write-docs` puts them in the section
"## Against LiteLLM on the same work" of docs/benchmarks.md. `--profile DIR` then records the
API and the worker with py-spy under one more native run and prints their top self-time
frames. Everything made here (database, keys, processes) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import io
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any, TypeVar

import asyncpg
import httpx
from sqlalchemy.engine import make_url

# bench/ is not a package: its scripts import each other from their own directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_bench

ROOT = load_bench.ROOT
LITELLM_ENV = Path.home() / ".cache" / "mediahub-bench" / "litellm"
SIZE = "256x256"
RATIO_TARGET, ADDED_P50_MS, ADDED_P99_MS, CPU_TARGET_MS = 2.0, 15.0, 60.0, 10.0
#: LiteLLM refuses to start without one; both systems check a bearer key on every request.
LITELLM_KEY = "sk-" + secrets.token_hex(32)
SECTION = "## Against LiteLLM on the same work"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# --- the fake provider (runs in its own process: `peer_bench.py --fake-port N`) -----------

class FakeImages:
    """OpenAI's `POST /v1/images/generations` answered at once with one PNG in `b64_json`;
    `GET /v1/models` for health checks; `GET /stats?since=N`: calls so far, and the median
    handling time of the calls after the Nth."""

    def __init__(self) -> None:
        from PIL import Image  # only the fake's process needs it

        png = io.BytesIO()
        Image.new("RGB", (256, 256), (200, 90, 40)).save(png, format="PNG")
        b64 = base64.b64encode(png.getvalue()).decode()
        self.tail = (',"data":[{"b64_json":"' + b64 + '","revised_prompt":null}]}').encode()
        self.handled_ns: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        began = time.perf_counter_ns()
        while (await receive()).get("more_body"):
            pass
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/v1/images/generations":
            await self._answer(send, 200, b'{"created":%d' % int(time.time()) + self.tail)
            self.handled_ns.append(time.perf_counter_ns() - began)
        elif path == "/v1/models":
            await self._answer(send, 200, b'{"object":"list","data":[{"id":"dall-e-2",'
                                          b'"object":"model","owned_by":"system"}]}')
        elif path == "/stats":
            since = int(scope["query_string"].decode().partition("since=")[2] or 0)
            window = sorted(self.handled_ns[since:])
            median_ms = window[len(window) // 2] / 1e6 if window else 0.0
            await self._answer(send, 200, json.dumps(
                {"calls": len(self.handled_ns), "p50_ms": median_ms}).encode())
        else:
            await self._answer(send, 404, b'{"error":{"message":"not found"}}')

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve_fake(port: int) -> None:
    import uvicorn

    uvicorn.run(FakeImages(), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="on")


def fake_stats(base: str, since: int = 0) -> tuple[int, float]:
    """(calls so far, median handling ms of the calls after `since`)."""
    with urllib.request.urlopen(f"{base}/stats?since={since}", timeout=10) as answer:
        stats = json.loads(answer.read())
    return int(stats["calls"]), float(stats["p50_ms"])


# --- processes and their CPU --------------------------------------------------------------

def start(args: list[str], env: dict[str, str], log: Path,
          cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """A process in a session of its own, so `stop` ends its whole group."""
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def cpu_s(pid: int) -> float:
    """User+system seconds of a process and of its children it has reaped; 0 once gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def tree(root: int) -> set[int]:
    """`root` and every process under it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children[int(fields[1])].append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children[todo.pop()]:
            found.add(child)
            todo.append(child)
    return found


def pids_named(*names: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    found.add(int(entry.name))
    return found


async def backends(admin_url: str, database: str) -> set[int]:
    """The PostgreSQL backends connected to `database` (this query's own is not one)."""
    parsed = make_url(admin_url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres", timeout=10)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1",
                                database)
    finally:
        await conn.close()
    return {int(row["pid"]) for row in rows}


def patiently(make: Callable[[], Coroutine[Any, Any, T]], tries: int = 360) -> T:
    """`asyncio.run(make())`, retried while PostgreSQL has no free connection (other work on
    this shared server may hold most of them for a while)."""
    for _ in range(tries - 1):
        try:
            return asyncio.run(make())
        except asyncpg.TooManyConnectionsError:
            time.sleep(0.5)  # another program's connections: nothing to wait on
    return asyncio.run(make())


@dataclass
class System:
    """One system under load: its process roots and where else its CPU goes."""

    name: str
    roots: list[subprocess.Popen[bytes]]
    database: str | None = None

    def pids(self, admin_url: str) -> set[int]:
        pids = set().union(*(tree(p.pid) for p in self.roots))
        if self.database is not None:
            pids |= patiently(lambda: backends(admin_url, self.database or ""))
            pids |= pids_named("valkey-server", "redis-server")
        return pids

    def snapshot(self, admin_url: str) -> dict[int, float]:
        return {pid: cpu_s(pid) for pid in self.pids(admin_url)}


def cpu_delta_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots by the processes of either (new ones from zero)."""
    return sum(after.get(pid, 0.0) - before.get(pid, 0.0)
               for pid in after if after.get(pid, 0.0) >= before.get(pid, 0.0))


# --- the load -----------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
counter = 0
bad = 0
first_bad = ""
function request()
  counter = counter + 1
  local prompt = "a lighthouse %(run)s " .. tid .. " " .. counter
  return wrk.format(nil, nil, nil, '%(before)s' .. prompt .. '%(after)s')
end
function response(status, headers, body)
  if status ~= 200 or (%(native)s and not string.find(body, '"succeeded"', 1, true)) then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    if t:get("first_bad") ~= "" then io.write("FIRST BAD " .. t:get("first_bad") .. "\\n") end
  end
  io.write("BAD " .. total .. "\\n")
end
"""


@dataclass
class Kind:
    """How one system is asked for the image."""

    label: str
    system: str
    path: str
    before: str
    after: str
    native: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def kinds(key: str) -> list[Kind]:
    openai_tail = f'", "n": 1, "size": "{SIZE}", "response_format": "b64_json"}}'
    auth = {"Authorization": f"Bearer {key}"}
    return [
        Kind("LiteLLM", "litellm", "/v1/images/generations",
             '{"model": "dall-e-2", "prompt": "', openai_tail,
             headers={"Authorization": f"Bearer {LITELLM_KEY}"}),
        Kind("mediahub native", "mediahub", "/v1/generations",
             '{"type": "image", "provider": "openai", "prompt": "',
             f'", "params": {{"model": "dall-e-2", "size": "{SIZE}"}}}}', native=True,
             headers={**auth, "Prefer": "wait=30"}),
        Kind("mediahub OpenAI", "mediahub", "/v1/images/generations",
             '{"model": "openai/dall-e-2", "prompt": "', openai_tail, headers=auth),
    ]


@dataclass
class Run:
    label: str
    connections: int
    round: int
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: int = 0
    socket_errors: str = ""
    calls: int = 0
    cpu_ms: float = 0.0
    provider_p50_ms: float = 0.0
    #: The first answer that was not a success (status and the start of its body).
    first_bad: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.socket_errors or not self.requests)

    @property
    def cpu_per_call_ms(self) -> float:
        return self.cpu_ms / self.calls if self.calls else float("nan")


def run_wrk(kind: Kind, url: str, run: Run, seconds: int) -> None:
    """wrk with `--latency` into `run`: req/s, p50, p99, answers that were not a success."""
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in kind.headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {
            "headers": headers, "run": secrets.token_hex(4), "before": kind.before,
            "after": kind.after, "native": "true" if kind.native else "false"})
    try:
        done = subprocess.run(
            ["wrk", "-t", str(min(2, run.connections)), "-c", str(run.connections), "-d",
             f"{seconds}s", "--latency", "--timeout", "35s", "-s", script.name,
             url + kind.path], capture_output=True, text=True, check=False,
            timeout=seconds + 90)
    finally:
        os.unlink(script.name)
    out = done.stdout
    if done.returncode:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {p: load_bench._ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"^BAD (\d+)", out, re.M)
    errors = re.search(r"Socket errors: (.*)", out)
    if rps is None or total is None or bad is None or "50" not in lat or "99" not in lat:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    run.rps, run.p50_ms, run.p99_ms = float(rps.group(1)), lat["50"], lat["99"]
    run.requests, run.errors = int(total.group(1)), int(bad.group(1))
    run.socket_errors = errors.group(1) if errors else ""
    first = re.search(r"^FIRST BAD (.*)$", out, re.M)
    run.first_bad = first.group(1) if first else ""


def warm_up(kind: Kind, url: str) -> None:
    """One request answered as the load's must be, or an error saying what came back."""
    body = kind.before + "a warm-up lighthouse" + kind.after
    answer = httpx.post(url + kind.path, content=body, timeout=60,
                        headers={**kind.headers, "Content-Type": "application/json"})
    if answer.status_code != 200 or (kind.native and '"succeeded"' not in answer.text):
        raise RuntimeError(f"{kind.label} answered {answer.status_code}: {answer.text[:500]}")


# --- the systems --------------------------------------------------------------------------

def litellm_python() -> Path:
    """LiteLLM's own virtual environment, made on first use and reused after."""
    python = LITELLM_ENV / "bin" / "python"
    if not (LITELLM_ENV / "bin" / "litellm").exists():
        print(f"installing LiteLLM into {LITELLM_ENV} ...", flush=True)
        LITELLM_ENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["uv", "venv", "--quiet", str(LITELLM_ENV)], check=True, timeout=300)
        subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(python),
                        "litellm[proxy]", "opentelemetry-sdk"], check=True, timeout=1200)
    return python


def litellm_version() -> str:
    out = subprocess.run(["uv", "pip", "show", "--python", str(LITELLM_ENV / "bin" / "python"),
                          "litellm"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"^Version: (\S+)", out, re.M)
    return found.group(1) if found else "?"


def litellm_config(work: Path, fake: str) -> Path:
    config = work / "litellm.yaml"
    config.write_text(f"""\
model_list:
  - model_name: dall-e-2
    litellm_params:
      model: openai/dall-e-2
      api_base: {fake}/v1
      api_key: sk-fake
general_settings:
  master_key: {LITELLM_KEY}
litellm_settings:
  set_verbose: false
  suppress_debug_info: true
  telemetry: false
""")
    return config


def litellm_env() -> dict[str, str]:
    # Nothing of mediahub's (or a DATABASE_URL) leaks in; the price table is the packaged one
    # (this machine has no way out).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEDIAHUB_", "VIRTUAL_ENV", "DATABASE_URL"))}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                "LITELLM_TELEMETRY": "False"})
    return env


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            model = found.group(1).strip()
    return f"{os.cpu_count()} vCPU ({model}), Python {platform.python_version()}"


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True, check=False).stdout.strip() or "?"


# --- the profile --------------------------------------------------------------------------

def py_spy() -> list[str]:
    found = shutil.which("py-spy")
    return [found] if found else ["uvx", "py-spy"]


def frame_name(frame: str) -> str:
    """A function as py-spy names it, without its line (`f (path/file.py:12)` -> `f
    (path/file.py)`), and an unnamed native address as its library (`0x7f… (libc.so.6)`
    -> `[libc.so.6]`), so a function's samples add up across its lines."""
    name, _, where = frame.partition(" (")
    where = re.sub(r":\d+\)$", ")", where)
    if name.startswith("0x"):
        return f"[{where.rstrip(')')}]"
    return f"{name} ({where}" if where else name


def top_self(raw: Path, count: int = 10) -> list[tuple[str, float]]:
    """The functions with the most samples at the top of the stack in py-spy's raw
    (collapsed) output, as (function, share of the samples)."""
    own: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            own[frame_name(stack.rsplit(";", 1)[-1])] += int(samples)
    total = sum(own.values()) or 1
    return [(frame, n / total) for frame, n in own.most_common(count)]


#: The project's own packages, as py-spy writes their paths.
OWN_CODE = ("(gateway/", "(tenants/", "(billing/", "(plugins/")
#: The commands' entry points: on every stack, so they say nothing.
ENTRY_POINTS = ("(gateway/cli.py", "(gateway/__main__.py")


def top_own(raw: Path, count: int = 10) -> list[tuple[str, float]]:
    """The project's functions by inclusive time: the share of samples with the function
    anywhere on the stack (where to look, as the self-time list says what it costs)."""
    seen: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not (stack and samples.isdigit()):
            continue
        total += int(samples)
        where = [f for f in stack.split(";") if f.partition(" ")[2].startswith(OWN_CODE)
                 and not f.partition(" ")[2].startswith(ENTRY_POINTS)]
        for name in {frame_name(f) for f in where}:
            seen[name] += int(samples)
    return [(frame, n / (total or 1)) for frame, n in seen.most_common(count)]


# --- the report ---------------------------------------------------------------------------

def table(runs: list[Run]) -> list[str]:
    lines = ["| system | conns | round | req/s | p50 ms | p99 ms | added p50 ms | CPU ms/req "
             "| provider calls | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in runs:
        errors = f"{r.errors} of {r.requests}" + (f"; {r.socket_errors}"
                                                  if r.socket_errors else "")
        if r.failed:
            lines.append(f"| {r.label} | {r.connections} | {r.round} | failed | | | | "
                         f"| {r.calls} | {errors} |")
            continue
        lines.append(
            f"| {r.label} | {r.connections} | {r.round} | {r.rps:.1f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.p50_ms - r.provider_p50_ms:.1f} "
            f"| {r.cpu_per_call_ms:.1f} | {r.calls} "
            f"| {errors if r.errors or r.socket_errors else 0} |")
    return lines


def verdicts(runs: list[Run], connections: list[int]) -> list[str]:
    """The issue's targets, each with the figure and met / not met."""
    def ok(met: bool) -> str:
        return "met" if met else "NOT met"

    def good(label: str, conns: int | None = None) -> list[Run]:
        return [r for r in runs if r.label == label and not r.failed
                and (conns is None or r.connections == conns)]

    lines = []
    for conns in connections:
        peer = good("LiteLLM", conns)
        for label in ("mediahub native", "mediahub OpenAI"):
            ours = good(label, conns)
            if not peer or not ours:
                lines.append(f"- {label} / LiteLLM at {conns}: no valid run")
                continue
            ratio = fmean(r.rps for r in ours) / fmean(r.rps for r in peer)
            lines.append(f"- {label} / LiteLLM req/s at {conns} connections: {ratio:.2f} "
                         f"(target >= {RATIO_TARGET:.0f}): {ok(ratio >= RATIO_TARGET)}")
    low = min(connections)
    for label in ("mediahub native", "mediahub OpenAI"):
        ours = good(label, low)
        if ours:
            p50 = fmean(r.p50_ms - r.provider_p50_ms for r in ours)
            p99 = fmean(r.p99_ms - r.provider_p50_ms for r in ours)
            lines.append(f"- {label} added time at {low}: p50 {p50:.1f} ms (target <= "
                         f"{ADDED_P50_MS:.0f}), p99 {p99:.1f} ms (target <= {ADDED_P99_MS:.0f})"
                         f": {ok(p50 <= ADDED_P50_MS and p99 <= ADDED_P99_MS)}")
        every = good(label)
        if every:
            cpu = fmean(r.cpu_per_call_ms for r in every)
            lines.append(f"- {label} CPU per generation: {cpu:.1f} ms (target <= "
                         f"{CPU_TARGET_MS:.0f}): {ok(cpu <= CPU_TARGET_MS)}")
    peer_all = good("LiteLLM")
    if peer_all:
        lines.append(f"- LiteLLM CPU per request: "
                     f"{fmean(r.cpu_per_call_ms for r in peer_all):.1f} ms")
    return lines


def write_docs(body: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    section = f"{SECTION}\n\n{body.strip()}\n"
    start_at = text.find(SECTION + "\n")
    if start_at < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        following = text.find("\n## ", start_at + len(SECTION))
        rest = text[following + 1:] if following >= 0 else ""
        text = text[:start_at] + section + ("\n" + rest if rest else "")
    path.write_text(text)


def docs_body(runs: list[Run], lines: list[str], args: argparse.Namespace, version: str,
              profile: list[str]) -> str:
    command = (f"uv run python bench/peer_bench.py --seconds {args.seconds} --rounds "
               f"{args.rounds} --connections {args.connections} --write-docs"
               + (" --profile DIR" if args.profile else ""))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"`bench/peer_bench.py` on {when}, commit `{git_commit()}`, {machine()}; LiteLLM "
        f"{version} (1 worker, no database); one zero-latency fake OpenAI images server for "
        "both; `wrk -t2` on the same cores. The machine is shared with other work (load "
        f"average {os.getloadavg()[1]:.1f} over the last 5 minutes of the run), so this is "
        "one noisy run: compare the rows with each other, not with other machines.",
        "", "```sh", command, "```", "",
        "CPU per request sums user+system time over every process of a system: LiteLLM's "
        "process tree; mediahub's API, worker, the PostgreSQL backends of its database and "
        "the Valkey server (shared with other work). Added time is the latency minus the "
        "fake's own median handling time.", "", *table(runs), "", *lines]
    if profile:
        parts += ["", *profile]
    return "\n".join(parts)


# --- main ---------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", default="8,32")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--profile", metavar="DIR",
                        help="then record the API and the worker with py-spy into DIR")
    parser.add_argument("--database-url", default=os.environ.get(
        "MEDIAHUB_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--valkey-url", default=os.environ.get(
        "MEDIAHUB_BENCH_VALKEY_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--logs", metavar="DIR",
                        help="keep the logs of the fake, LiteLLM, the API and the worker in DIR")
    parser.add_argument("--fake-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_port:
        serve_fake(args.fake_port)
        return 0
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    base = make_url(args.database_url)
    if base.host not in load_bench.LOOPBACK:
        raise SystemExit(f"refusing to load {base.host}: loopback servers only")
    base = base.set(drivername="postgresql+asyncpg")
    admin_url = base.render_as_string(hide_password=False)
    tag = secrets.token_hex(4)
    database = f"mediahub_peer_{tag}"
    url = base.set(database=database).render_as_string(hide_password=False)
    prefix = f"mhpeer{tag}"
    python = litellm_python()
    version = litellm_version()
    # A SIGTERM to this script still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="mediahub-peer-"))
    procs: list[subprocess.Popen[bytes]] = []
    runs: list[Run] = []
    profile: list[str] = []
    try:
        fake_port = load_bench.free_port()
        fake = f"http://127.0.0.1:{fake_port}"
        procs.append(fake_proc := start(
            [sys.executable, str(Path(__file__).resolve()), "--fake-port", str(fake_port)],
            dict(os.environ), work / "fake.log"))
        asyncio.run(load_bench.wait_ready(fake, fake_proc, "/v1/models"))

        litellm_port = load_bench.free_port()
        procs.append(litellm := start(
            [str(python.parent / "litellm"), "--config", str(litellm_config(work, fake)),
             "--host", "127.0.0.1", "--port", str(litellm_port), "--num_workers", "1"],
            litellm_env(), work / "litellm.log", cwd=work))

        asyncio.run(load_bench.admin_sql(admin_url, f'CREATE DATABASE "{database}"'))
        site = work / "site"
        # load_bench's tenant is warmed up through its offline audio plugin.
        load_bench.install_plugin(site)
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
               "MEDIAHUB_DATABASE_URL": url, "MEDIAHUB_VALKEY_URL": args.valkey_url,
               "MEDIAHUB_QUEUE_PREFIX": prefix, "MEDIAHUB_SECRET_KEY": load_bench.SECRET_KEY,
               "MEDIAHUB_ADMIN_TOKEN": load_bench.ADMIN_TOKEN,
               "MEDIAHUB_STORAGE_URL": f"file://{work}/media",
               "MEDIAHUB_OPENAI_API_KEY": "sk-fake", "MEDIAHUB_OPENAI_BASE_URL": f"{fake}/v1",
               "MEDIAHUB_EGRESS_ALLOW_LOOPBACK": "true"}
        subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=180)
        port = load_bench.free_port()
        procs.append(api := start([sys.executable, "-m", "gateway", "serve", "--port",
                                   str(port)], env, work / "serve.log"))
        procs.append(worker := start([sys.executable, "-m", "gateway", "worker", "--queues",
                                      "image,audio"], env, work / "worker.log"))
        gateway = f"http://127.0.0.1:{port}"
        asyncio.run(load_bench.wait_ready(gateway, api, "/health/live"))
        key = asyncio.run(load_bench.make_tenant(gateway))
        peer = f"http://127.0.0.1:{litellm_port}"
        asyncio.run(load_bench.wait_ready(peer, litellm, "/health/liveliness"))

        systems = {"litellm": (System("litellm", [litellm]), peer),
                   "mediahub": (System("mediahub", [api, worker], database), gateway)}
        # One answered request each, so first-call costs (imports, pools) are not measured.
        for kind in kinds(key):
            warm_up(kind, systems[kind.system][1])
        patiently(lambda: load_bench.wait_drained(url))

        for number in range(1, args.rounds + 1):
            for conns in connections:
                for kind in kinds(key):
                    system, target = systems[kind.system]
                    run = Run(kind.label, conns, number)
                    print(f"round {number}: {kind.label}, {conns} connections, "
                          f"{args.seconds} s ...", flush=True)
                    calls_before, _ = fake_stats(fake)
                    try:
                        cpu_before = system.snapshot(admin_url)
                        run_wrk(kind, target, run, args.seconds)
                        if system.database is not None:
                            # The generations still running when wrk stopped are part of
                            # the work.
                            patiently(lambda: load_bench.wait_drained(url))
                        run.cpu_ms = cpu_delta_s(cpu_before, system.snapshot(admin_url)) * 1000
                    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
                        # The shared server ran out of something: this run has no figure,
                        # the next may.
                        run.socket_errors, run.first_bad = "bench failed", repr(exc)[:300]
                    run.calls, run.provider_p50_ms = fake_stats(fake, calls_before)
                    run.calls -= calls_before
                    runs.append(run)

        if args.profile:
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            native = kinds(key)[1]
            print(f"profile: {native.label}, {min(connections)} connections, "
                  f"{args.seconds} s, py-spy on the API and the worker ...", flush=True)
            spies = {name: subprocess.Popen(
                [*py_spy(), "record", "--pid", str(proc.pid), "--format", "raw",
                 # Not `--native`: here it leaves most samples as unnamed libc frames of
                 # idle threads; without it, C time counts to the Python frame calling it.
                 "--duration", str(args.seconds), "--nonblocking", "--output",
                 str(out / f"{name}.txt")], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) for name, proc in (("api", api),
                                                             ("worker", worker))}
            run_wrk(native, gateway, Run(native.label, min(connections), 0), args.seconds)
            for name, spy in spies.items():
                spy.wait(120)
                raw = out / f"{name}.txt"
                if not raw.exists():
                    profile.append(f"py-spy recorded nothing for the {name}")
                    continue
                profile += [f"Top self time, mediahub {name} (py-spy, share of its "
                            "non-idle samples, by function):", ""]
                profile += [f"{i}. {share:6.1%} `{frame}`"
                            for i, (frame, share) in enumerate(top_self(raw), 1)]
                profile += ["", f"mediahub's own functions in the {name} by inclusive time:",
                            ""]
                profile += [f"{i}. {share:6.1%} `{frame}`"
                            for i, (frame, share) in enumerate(top_own(raw), 1)]
                profile.append("")
            patiently(lambda: load_bench.wait_drained(url))
    except BaseException:
        # The logs go with the work directory: show their ends first.
        for log in sorted(work.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        for proc in reversed(procs):
            stop(proc)
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, Path(args.logs) / log.name)
        with contextlib.suppress(Exception):
            asyncio.run(load_bench.drop_keys(args.valkey_url, prefix))
        try:
            asyncio.run(load_bench.admin_sql(
                admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        except Exception as exc:
            print(f"could not drop {database}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    lines = verdicts(runs, connections)
    for r in runs:
        if r.first_bad:
            lines.append(f"- {r.label} at {r.connections}, round {r.round}, first error: "
                         f"`{r.first_bad}`")
    print()
    print("\n".join(table(runs)))
    print()
    print("\n".join(lines))
    if profile:
        print()
        print("\n".join(profile))
    if args.write_docs:
        write_docs(docs_body(runs, lines, args, version, profile))
        print(f"\nwrote the section {SECTION!r} of docs/benchmarks.md")
    return 1 if any(r.failed for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
