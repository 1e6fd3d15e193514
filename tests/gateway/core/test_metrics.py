"""`GET /metrics`: Prometheus text after real requests and a generation, its protection,
and values merged over several processes (multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.core import metrics as core_metrics
from gateway.core.settings import Settings
from tests.conftest import Gate, GatePlugin, Gateway, running_gateway

IMAGE = {"type": "image", "prompt": "a harbour at night", "params": {"size": "64x64"}}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(gw: Gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await gw.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(r.text)


async def test_metrics_count_requests_generations_and_provider_calls(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    before = await scrape(gateway)
    done = await gateway.finish(tenant.auth, IMAGE)
    assert done["status"] == "succeeded"
    missing = await gateway.client.get("/v1/generations/gen_nope", headers=tenant.auth)
    assert missing.status_code == 404
    after = await scrape(gateway)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Route templates, never the path with its id.
    assert grew("mediahub_http_requests_total", method="POST", route="/v1/generations",
                status="202") == 1
    assert grew("mediahub_http_requests_total", method="GET",
                route="/v1/generations/{generation_id}", status="404") == 1
    assert not any("gen_nope" in dict(labels).get("route", "") for _, labels in after)
    assert grew("mediahub_http_request_duration_seconds_count", method="POST",
                route="/v1/generations") == 1
    assert grew("mediahub_generations_total", type="image", provider="local-image",
                status="succeeded") == 1
    assert grew("mediahub_provider_call_duration_seconds_count", provider="local-image",
                outcome="ok") == 1
    # Read at scrape time (values: test_a_waiting_generation_...); the breaker is closed.
    for name in ("mediahub_queue_depth", "mediahub_queue_oldest_job_age_seconds"):
        assert (name, frozenset({("queue", "image")})) in after
    assert ("mediahub_reservations_pending", frozenset()) in after
    assert value(after, "mediahub_provider_breaker_state", provider="local-image") == 0
    assert ("mediahub_webhook_deliveries_due", frozenset()) in after
    assert ("mediahub_db_pool_connections_in_use", frozenset()) in after
    # No tenant in any label.
    assert not any(tenant.id in str(labels) for _, labels in after)
    # Single-process mode keeps the process's standard collectors.
    text = (await gateway.client.get("/metrics")).text
    assert "process_resident_memory_bytes" in text


async def test_a_waiting_generation_shows_in_depth_and_reservations(settings: Settings) -> None:
    gate = Gate()
    one_at_a_time = msgspec.structs.replace(settings, queue_concurrency={"image": 1})
    async with running_gateway(one_at_a_time, extra=[GatePlugin(gate)]) as gw:
        tenant = await gw.tenant()
        # The PostgreSQL database is the session's: count from what earlier tests left.
        before = await scrape(gw)
        body = {"type": "image", "prompt": "held", "provider": "gate"}
        ids = []
        for _ in range(2):
            r = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        # The first holds the image queue's only slot at the gate: the second waits.
        await gate.entered.wait()
        during = await scrape(gw)
        gate.release.set()
        await gw.drain()
        after = await scrape(gw)

    def held(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
             **labels: str) -> float:
        return value(scraped, name, **labels) - value(before, name, **labels)

    assert held(during, "mediahub_queue_depth", queue="image") == 1
    assert value(during, "mediahub_queue_oldest_job_age_seconds", queue="image") >= 0
    assert held(during, "mediahub_reservations_pending") == 2
    assert held(during, "mediahub_reservations_pending_mc") > 0
    assert held(after, "mediahub_queue_depth", queue="image") == 0
    assert held(after, "mediahub_reservations_pending") == 0
    assert held(after, "mediahub_reservations_pending_mc") == 0


async def test_metrics_answer_loopback_only_without_a_token(gateway: Gateway) -> None:
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app,
                                                             client=("203.0.113.9", 4000)),
                               base_url="http://testserver")
    async with remote:
        r = await remote.get("/metrics")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "not_found_error"


async def test_metrics_token_is_required_when_set(settings: Settings) -> None:
    token = "scrape-token-0123456789"
    async with running_gateway(msgspec.structs.replace(settings, metrics_token=token)) as gw:
        assert (await gw.client.get("/metrics")).status_code == 404
        wrong = await gw.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 404
        ok = await gw.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert "mediahub_queue_depth" in ok.text


WRITER = textwrap.dedent("""
    import sys
    from gateway.core import metrics
    metrics.enable_multiprocess(sys.argv[1])
    m = metrics.instruments()
    for _ in range(int(sys.argv[2])):
        m.request("POST", "/v1/generations", 202, 0.01)
    m.generation_ended("image", "local-image", "succeeded")
    m.db_pool_in_use.inc(int(sys.argv[2]))
    if sys.argv[3] == "exit":
        metrics.process_exited()
""")


def test_several_processes_values_are_merged(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "metrics"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    env.pop(core_metrics.MULTIPROC_ENV, None)
    # Two processes record; the first ends cleanly (its live gauge goes), the second
    # stays counted as live.
    for count, end in ((3, "exit"), (5, "stay")):
        subprocess.run([sys.executable, "-c", WRITER, str(shared), str(count), end],
                       check=True, env=env, timeout=60)
    monkeypatch.setenv(core_metrics.MULTIPROC_ENV, str(shared))
    scraped = samples(core_metrics.exposition().decode())
    assert value(scraped, "mediahub_http_requests_total", method="POST",
                 route="/v1/generations", status="202") == 8
    assert value(scraped, "mediahub_http_request_duration_seconds_count", method="POST",
                 route="/v1/generations") == 8
    assert value(scraped, "mediahub_generations_total", type="image",
                 provider="local-image", status="succeeded") == 2
    assert value(scraped, "mediahub_db_pool_connections_in_use") == 5
