"""Prometheus metrics: the instruments every process records into, multiprocess mode, and
the text a scrape answers (docs/operations.md, "Metrics"; the route is
`gateway.generations.observed.metrics`).

**Several processes.** Counters and histograms are recorded by whichever process does the
work (an API process answers requests, a worker calls providers), so a scrape of one process
would see only its share. With `PROMETHEUS_MULTIPROC_DIR` set (the same directory for every
API and worker process on a host; `mediahub serve` and `demo` make a private one when it is
unset), each process writes its values to memory-mapped files there and a scrape merges all
of them (`MultiProcessCollector`): counters and histograms are summed, and the pool gauge is
summed over live processes (`livesum`). Point-in-time values (queue depth, reservations,
breakers) are not recorded at all: the scraped process reads them when asked.

prometheus-client chooses how values are stored when it is imported, which is before a
process's start knows its settings: `enable_multiprocess` switches the storage afterwards,
which is why every instrument is made on first use (`instruments`), never at import.

**Labels are bounded**: route templates (never paths), media types, installed provider
names, fixed status and outcome vocabularies; never a tenant, key, customer or id.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any, Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: The classic text format `generate_latest` writes (Litestar adds `charset=utf-8`).
CONTENT_TYPE: Final = "text/plain; version=0.0.4"
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
#: The directory `enable_multiprocess` made because none was configured.
_owned_dir: str | None = None

#: Request latencies: a cached answer takes a millisecond, `Prefer: wait` up to minutes.
_HTTP_BUCKETS: Final = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                        30.0, 60.0, 120.0)
#: Provider calls: a local engine in milliseconds, a video render in minutes.
_PROVIDER_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                            300.0, 600.0)
_LAG_BUCKETS: Final = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    """The directory processes share their values through, when multiprocess mode is on."""
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(path: str | None = None) -> str:
    """Record into `path` (default `PROMETHEUS_MULTIPROC_DIR`; a fresh private directory
    when neither is given), shared with child processes through the environment. Called by
    a process's start before it records anything; returns the directory."""
    global _owned_dir
    path = path or multiprocess_dir()
    if path is None:
        path = _owned_dir = tempfile.mkdtemp(prefix="mediahub-metrics-")
    os.makedirs(path, exist_ok=True)
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path


def process_exited() -> None:
    """Drop this process's live gauges from the shared directory (its counters stay, as
    they must); called at a process's end."""
    global _owned_dir
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
    if _owned_dir is not None and path == _owned_dir:
        # A directory this process made for itself (and its children) dies with it.
        shutil.rmtree(_owned_dir, ignore_errors=True)
        _owned_dir = None


class Instruments:
    """Every recorded metric. Made once per process by `instruments()`."""

    def __init__(self) -> None:
        self.http_requests = Counter(
            "mediahub_http_requests", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"])
        self.http_duration = Histogram(
            "mediahub_http_request_duration_seconds",
            "Time to answer an HTTP request (to its last byte), by route template.",
            ["method", "route"], buckets=_HTTP_BUCKETS)
        self.generations = Counter(
            "mediahub_generations", "Generations ended, by media type, provider and final "
            "status (succeeded, failed, canceled, expired).", ["type", "provider", "status"])
        self.provider_calls = Histogram(
            "mediahub_provider_call_duration_seconds",
            "Provider calls (generate, submit, poll) by provider and outcome (ok, pending, "
            "retryable_error, error).", ["provider", "outcome"], buckets=_PROVIDER_BUCKETS)
        self.webhook_attempts = Counter(
            "mediahub_webhook_attempts", "Webhook delivery attempts by outcome (succeeded, "
            "retrying, failed).", ["outcome"])
        self.webhook_lag = Histogram(
            "mediahub_webhook_delivery_lag_seconds",
            "From a webhook event's creation to its successful delivery.",
            buckets=_LAG_BUCKETS)
        self.db_pool_in_use = Gauge(
            "mediahub_db_pool_connections_in_use",
            "Database connections checked out of the pools, over all live processes.",
            multiprocess_mode="livesum")
        self.db_pool_size = Gauge(
            "mediahub_db_pool_size", "Connections the pools keep open, over all live "
            "processes (PostgreSQL; SQLite reports 0).", multiprocess_mode="livesum")

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Called by the request middleware once a response is sent."""
        method = method if method in _METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def generation_ended(self, media_type: str, provider: str | None, status: str) -> None:
        """Called once per generation, by the process that ended it."""
        self.generations.labels(media_type, provider or "none", status).inc()

    def provider_call(self, provider: str, outcome: str, seconds: float) -> None:
        self.provider_calls.labels(provider, outcome).observe(seconds)


@functools.cache
def instruments() -> Instruments:
    """This process's instruments (made on first use, after `enable_multiprocess`)."""
    return Instruments()


def watch_pool(engine: Any, pool_size: int) -> None:
    """Count `engine`'s checked-out connections in `mediahub_db_pool_connections_in_use`;
    called once per database the process opens."""
    from sqlalchemy import event

    metric = instruments()
    metric.db_pool_size.inc(pool_size)

    @event.listens_for(engine.sync_engine, "checkout")
    def _out(*_: Any) -> None:
        metric.db_pool_in_use.inc()

    @event.listens_for(engine.sync_engine, "checkin")
    def _in(*_: Any) -> None:
        metric.db_pool_in_use.dec()


def unwatch_pool(pool_size: int) -> None:
    instruments().db_pool_size.dec(pool_size)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def exposition(read_now: Iterable[Metric] = ()) -> bytes:
    """The scrape's text: every process's recorded values (merged in multiprocess mode;
    this process's, with its standard process and Python collectors, otherwise) and the
    families read at scrape time."""
    if multiprocess_dir():
        recorded = CollectorRegistry()
        multiprocess.MultiProcessCollector(recorded)  # type: ignore[no-untyped-call]
    else:
        recorded = REGISTRY
    snapshot = CollectorRegistry()
    snapshot.register(_Families(read_now))
    return generate_latest(recorded) + generate_latest(snapshot)


def allowed(*, token: str | None, authorization: str | None, client_host: str | None) -> bool:
    """Whether a scrape may read the metrics: with `MEDIAHUB_METRICS_TOKEN` set, a request
    bearing it; otherwise a request from a loopback address only."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  token.encode())
    try:
        return client_host is not None and ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False
