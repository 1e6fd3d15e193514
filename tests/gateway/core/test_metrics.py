"""`GET /metrics`: the route API.md promises, in Prometheus text format, on both databases."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_metrics_answers_in_prometheus_text_format(gateway: Gateway) -> None:
    r = await gateway.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE python_info gauge" in r.text
    assert "process_resident_memory_bytes" in r.text
