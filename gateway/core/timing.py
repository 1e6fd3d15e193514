"""When each HTTP request arrived, for the `Server-Timing` header of the routes that report
the gateway's own time (docs/usage.md): a middleware stamps the ASGI scope before routing,
so authentication and body parsing count as the gateway's time."""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

#: The scope's state key of the arrival time (`time.perf_counter()`).
STARTED_KEY = "mh.started"


def stamp_arrival(app: ASGIApp) -> ASGIApp:
    """The middleware: notes the arrival time of every HTTP request in its scope's state."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope.setdefault("state", {})[STARTED_KEY] = time.perf_counter()
        await app(scope, receive, send)

    return middleware


def elapsed_ms(scope: Any, *, minus_s: float = 0.0) -> int:
    """Milliseconds since the request arrived, less `minus_s` (time spent waiting on work
    that is not the gateway's own, such as a `Prefer: wait`); 0 without a stamp."""
    started = scope.get("state", {}).get(STARTED_KEY)
    if not isinstance(started, float):
        return 0
    return max(0, round((time.perf_counter() - started - minus_s) * 1000))
