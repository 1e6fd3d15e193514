"""`compose.yaml` scales (`docker compose up --scale worker=3`) within the connection budget.

No Docker Compose on the machines that run the tests: the file is parsed as YAML and its
shape checked, with compose's `${VAR:-default}` interpolation applied to the defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
SCALED_WORKERS = 3


def _interpolate(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+):[-?]([^}]*)\}", lambda m: m.group(2), value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _interpolate(yaml.safe_load(COMPOSE.read_text()))["services"]
    return services


def test_workers_scale_and_the_api_is_one_port_of_several_processes() -> None:
    services = _services()
    worker, api = services["worker"], services["api"]
    # `--scale worker=3` needs a worker with no fixed name and no published port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"][-1] == "worker"
    assert api["ports"] == ["8000:8000"]
    command = api["command"]
    assert command[command.index("--workers") + 1] == "2"
    assert {"postgres", "valkey", "minio"} <= set(services)  # PostgreSQL, Valkey, S3


def test_every_process_of_a_host_shares_one_metrics_directory() -> None:
    services = _services()
    for name in ("api", "worker"):
        environment = services[name]["environment"]
        directory = environment["PROMETHEUS_MULTIPROC_DIR"]
        assert f"metrics:{directory}" in services[name]["volumes"], name


def test_the_scaled_stack_stays_within_the_connection_budget() -> None:
    services = _services()
    environment = services["api"]["environment"]
    per_process = (int(environment["MEDIAHUB_DATABASE_POOL_SIZE"])
                   + int(environment["MEDIAHUB_DATABASE_MAX_OVERFLOW"]))
    command = services["api"]["command"]
    processes = int(command[command.index("--workers") + 1]) + SCALED_WORKERS
    postgres = services["postgres"]["command"]
    max_connections = int(next(a.split("=")[1] for a in postgres
                               if a.startswith("max_connections=")))
    # A margin for migrations, psql and monitoring.
    assert processes * per_process + 10 <= max_connections
