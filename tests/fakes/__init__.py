"""Fake provider APIs for the provider tests: ASGI apps served over real loopback HTTP.

`serve(app)` runs an ASGI app (each fake is a small Litestar app in this package) under
uvicorn on a free 127.0.0.1 port and records every request it receives, so a test asserts
what the plugin sent (method, path, query, headers, body) as well as what it returned:

    async with serve(fake_openai.app()) as server:
        ...  # point the provider at server.url
        seen = server.requests[-1]
        assert seen.headers["authorization"] == "Bearer sk-test"

The socket is bound and listening before the server task starts, so a client may connect at
once: no waiting for start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import msgspec
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class FakeServer:
    host: str
    port: int
    requests: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to(self, path: str) -> list[Seen]:
        """The requests made to `path` (exact, without the query)."""
        return [r for r in self.requests if r.path == path]


def _recording(app: ASGIApp, server: FakeServer) -> ASGIApp:
    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        server.requests.append(Seen(
            method=scope["method"], path=scope["path"],
            query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
            headers={k.decode("latin-1").lower(): v.decode("latin-1")
                     for k, v in scope["headers"]},
            body=body))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return recorded


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[FakeServer]:
    """Serve `app` on 127.0.0.1 (a free port) for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = FakeServer(host="127.0.0.1", port=sock.getsockname()[1])
    config = uvicorn.Config(_recording(app, server), log_level="warning", lifespan="off",
                            access_log=False)
    uv_server = uvicorn.Server(config)
    task = asyncio.create_task(uv_server.serve(sockets=[sock]))
    try:
        yield server
    finally:
        uv_server.should_exit = True
        await task
        sock.close()
