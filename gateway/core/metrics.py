"""`GET /metrics`: the process's metrics in Prometheus text format (API.md, "Operations").

What it has now is the client library's standard collectors (CPU seconds, resident memory,
open file descriptors, start time, garbage collections, the Python version). Each process
answers for itself: aggregating API and worker processes is the operations issue's work.
"""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import REGISTRY, generate_latest

#: The classic text format `generate_latest` writes (Litestar adds `charset=utf-8`).
CONTENT_TYPE = "text/plain; version=0.0.4"


@get("/metrics", summary="Process metrics (Prometheus text format)", tags=["operations"],
     sync_to_thread=False)
def metrics() -> Response[bytes]:
    """This process's metrics in Prometheus' text exposition format, for a scraper.

    Unauthenticated like the health probes: expose it on the internal network only."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE)
