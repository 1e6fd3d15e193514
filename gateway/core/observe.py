"""The outermost layer of every HTTP request: its id, its log context, its trace span and
its metrics (docs/operations.md, "Metrics", "Tracing", "Logs").

It wraps the application's whole ASGI handler (`wrap`), outside routing and the exception
handlers, so an unrouted `404` and an error answer get an `X-Request-Id` and are counted like
any other response. The id is the caller's `X-Request-Id` when it is sane (1 to 128 characters
of letters, digits and `._:-`), else a fresh one; it is in every log line of the request and
in its response headers.
"""

from __future__ import annotations

import re
import time
import uuid

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core import logs, tracing
from gateway.core.metrics import instruments

_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
REQUEST_ID_HEADER = b"x-request-id"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id when it is sane, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            given = value.decode("latin-1")
            if _SANE_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def _traceparent(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    for name, value in headers:
        if name == b"traceparent":
            return {tracing.TRACEPARENT_KEY: value.decode("latin-1")}
    return {}


def wrap(app: ASGIApp) -> ASGIApp:
    """The middleware around `app` (the Litestar app's `asgi_handler`)."""

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
        request_id = request_id_from(headers)
        logs.begin_request(request_id)
        method = str(scope.get("method", "GET"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        # A caller's own trace continues through the gateway.
        parent = tracing.context_from(_traceparent(headers)) if tracing.enabled() else None
        with tracing.span(f"{method} request", kind=tracing.SpanKind.SERVER,
                          parent=parent) as current:
            try:
                await app(scope, receive, send_with_id)
            finally:
                # Litestar notes the matched route's template while routing: a bounded label.
                route = scope.get("path_template") or "unmatched"
                instruments().request(method, route, status, time.perf_counter() - started)
                if current is not None:
                    current.update_name(f"{method} {route}")
                    current.set_attribute("http.request.method", method)
                    current.set_attribute("http.route", route)
                    current.set_attribute("http.response.status_code", status)
                    current.set_attribute("mediahub.request_id", request_id)

    return observed
