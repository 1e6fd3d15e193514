"""OpenTelemetry: a generation submitted over HTTP and run by a SAQ worker is one trace,
request → enqueue → job → provider call, the context crossing Valkey inside the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.core import tracing
from tests.conftest import Gateway, make_settings, running_gateway
from tests.gateway.generations.test_queue import worker_for

IMAGE = {"type": "image", "prompt": "a harbour at night", "params": {"size": "64x64"}}


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)


def one(spans: list[ReadableSpan], kind: SpanKind, prefix: str) -> ReadableSpan:
    found = [s for s in spans if s.kind == kind and s.name.startswith(prefix)]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


async def test_request_job_and_provider_call_are_one_trace(
        pg_url: str, valkey: str, tmp_path: Path, exported: InMemorySpanExporter) -> None:
    settings = make_settings(pg_url, tmp_path, valkey_url=valkey)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant()
        exported.clear()
        async with worker_for(gw, concurrency=1):
            r = await gw.client.post("/v1/generations", json=IMAGE,
                                     headers={**tenant.auth, "Prefer": "wait=30"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
    spans = list(exported.get_finished_spans())
    request = one(spans, SpanKind.SERVER, "POST /v1/generations")
    enqueue = one(spans, SpanKind.PRODUCER, "enqueue generation.run")
    job = one(spans, SpanKind.CONSUMER, "job generation.run")
    call = one(spans, SpanKind.CLIENT, "provider local-image")
    for child, parent in ((enqueue, request), (job, enqueue), (call, job)):
        assert child.parent is not None
        assert parent.context is not None
        assert child.parent.span_id == parent.context.span_id, (child.name, parent.name)
        assert child.context is not None
        assert child.context.trace_id == request.context.trace_id  # type: ignore[union-attr]
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/generations"
    assert request.attributes["http.response.status_code"] == 200
    assert call.attributes is not None
    assert call.attributes["mediahub.outcome"] == "ok"


async def test_a_callers_traceparent_is_continued(gateway: Gateway,
                                                  exported: InMemorySpanExporter) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = await gateway.client.get("/health/live", headers={
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert r.status_code == 200
    [server] = [s for s in exported.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.context is not None
    assert f"{server.context.trace_id:032x}" == trace_id


def test_off_means_no_spans_and_no_trace_context_in_jobs() -> None:
    tracing.install(None)
    kwargs: dict[str, object] = {"generation_id": "gen_x"}
    with tracing.span("anything") as span:
        tracing.inject_into(kwargs)
    assert span is None
    assert kwargs == {"generation_id": "gen_x"}
    assert tracing.setup(None, {}, service="mediahub-test") is False
    assert not tracing.enabled()
