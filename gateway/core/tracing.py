"""OpenTelemetry traces: request → enqueue → job → provider call (docs/operations.md,
"Tracing").

Off unless an OTLP endpoint is configured (`MEDIAHUB_OTEL_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): then every `span`
is a `None` and costs one attribute read, and no job carries a trace context.

The trace context crosses the queue in the job itself: `inject_into` adds the W3C
`traceparent` of the enqueue span to the job's keyword arguments, and the worker's job span
continues from it (`gateway.core.jobs`), so one trace holds the request, the job and the
provider calls even when another process (or machine) runs the job.

This module keeps its own tracer provider instead of the OpenTelemetry global (which can be
set once per process): tests install an in-memory exporter with `install`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

#: The job keyword argument that carries the trace context (popped before the task runs).
TRACEPARENT_KEY: Final = "traceparent"

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None

__all__ = [
    "TRACEPARENT_KEY",
    "SpanKind",
    "context_from",
    "enabled",
    "inject_into",
    "install",
    "setup",
    "shutdown",
    "span",
]


def install(provider: TracerProvider | None) -> None:
    """Trace through `provider` from now on (None: tracing off). Used by `setup` and tests."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("mediahub") if provider is not None else None


def enabled() -> bool:
    return _tracer is not None


def setup(endpoint: str | None, env: Mapping[str, str], *, service: str) -> bool:
    """Export spans over OTLP/HTTP when an endpoint is configured; called once by each
    process's start (`serve`, `worker`, `demo`). `endpoint` (MEDIAHUB_OTEL_ENDPOINT) is the
    collector's base URL, like the standard variable. Returns whether tracing is on."""
    standard = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint and not standard:
        install(None)
        return False
    # Imported only when used: the exporter pulls in protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = (OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces") if endpoint
                else OTLPSpanExporter())  # reads the standard variables itself
    # `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` override the default name.
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    log.info("tracing: exporting spans over OTLP")
    return True


def shutdown() -> None:
    """Flush and stop the exporter (a process's last step)."""
    if _provider is not None:
        _provider.shutdown()
        install(None)


def context_from(carrier: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The trace context a W3C `traceparent` in `carrier` names (request headers, a job's
    arguments); None when tracing is off or there is none."""
    if _tracer is None or not carrier or not carrier.get(TRACEPARENT_KEY):
        return None
    return _propagator.extract({TRACEPARENT_KEY: str(carrier[TRACEPARENT_KEY])})


def inject_into(carrier: MutableMapping[str, Any]) -> None:
    """Add the current span's `traceparent` to `carrier` (a job's arguments); nothing when
    tracing is off."""
    if _tracer is None:
        return
    found: dict[str, str] = {}
    _propagator.inject(found)
    if TRACEPARENT_KEY in found:
        carrier[TRACEPARENT_KEY] = found[TRACEPARENT_KEY]


@contextlib.contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL,
         parent: otel_context.Context | None = None,
         attributes: Mapping[str, str | int | float | bool] | None = None,
         ) -> Iterator[trace.Span | None]:
    """A span around the block, current inside it (child of `parent` when given, else of
    the current span); yields None when tracing is off. An exception is recorded on it."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, context=parent, kind=kind,
                                       attributes=dict(attributes or {})) as current:
        yield current
