"""`/mcp`: the tools of `tools.py` served as MCP over streamable HTTP (the `mcp` package's
low-level server and session manager), mounted into the Litestar app.

Every HTTP request to `/mcp` is authenticated by `auth.authenticate_key` (the function the
`requires(...)` guards call: 401 with `WWW-Authenticate: Bearer` for a missing or bad key, 429
over the rate limits) before the MCP layer sees it; each tool call acts as the principal of
the request that carries it. Sessions are stateful (kept in this process's memory): a
client's `notifications/cancelled` reaches the call it cancels, which then cancels its
generation. Behind several replicas, route one `Mcp-Session-Id` to one replica (sticky
sessions), as docs/mcp.md says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import mcp_types as types
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway.core.auth import PRINCIPAL_STATE_KEY, Principal, authenticate_key
from gateway.generations.services import Services
from gateway.generations.views import Audience, audience
from gateway.mcp import calls
from gateway.mcp.tools import definitions
from tenants.kernel.errors import AuthenticationFailed, DomainError

log = logging.getLogger(__name__)

#: Where the app keeps its MCP endpoint (created by the first request).
STATE_KEY = "mcp_endpoint"


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[Services, Principal, str | None]:
    """The services, the principal and the `Host` of the HTTP request carrying `ctx`'s
    message (the mount authenticated it)."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    principal = scope.get("state", {}).get(PRINCIPAL_STATE_KEY) if scope is not None else None
    if request is None or scope is None or not isinstance(principal, Principal):
        raise AuthenticationFailed("send your API key as 'Authorization: Bearer <key>'",
                                   code="missing_api_key")
    services: Services = scope["litestar_app"].state.services
    return services, principal, request.headers.get("host")


async def _list_tools(ctx: ServerRequestContext[Any, Any],
                      params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    services, principal, _ = _caller(ctx)
    tenant = await services.runtime.tenant_views.tenant(principal.tenant)
    return types.ListToolsResult(tools=[
        types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
        for t in definitions(services.runtime, tenant)])


def _result(answer: calls.Answer) -> types.CallToolResult:
    """A tool's answer as MCP: the summary, then a resource link per output (the signed
    URL, never the bytes)."""
    content: list[Any] = [types.TextContent(text=answer.text)]
    for view in answer.shown:
        for index, output in enumerate(view.outputs):
            content.append(types.ResourceLink(
                name=f"{view.id}-{index}", uri=output.url, mime_type=output.content_type,
                size=output.bytes, description=f"output {index} of generation {view.id}"))
    data = answer.data if isinstance(answer.data, dict) else {"data": answer.data}
    return types.CallToolResult(content=content, structured_content=data, is_error=False)


def _error(code: str, message: str, extra: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=f"{code}: {message}")],
        structured_content={"error": {"code": code, "message": message, **(extra or {})}},
        is_error=True)


async def _call_tool(ctx: ServerRequestContext[Any, Any],
                     params: types.CallToolRequestParams) -> types.CallToolResult:
    try:
        services, principal, host = _caller(ctx)
        to: Audience = await audience(services.runtime, principal, host)
        tenant = await services.runtime.tenant_views.tenant(principal.tenant)
        answer = await calls.call(services, principal, to,
                                  definitions(services.runtime, tenant), params.name,
                                  dict(params.arguments or {}), ctx.session.report_progress)
    except DomainError as exc:
        return _error(exc.code, exc.message, exc.extra)
    except Exception:
        log.exception("an MCP tool call failed", extra={"tool": params.name})
        return _error("internal_error", "the gateway failed; try again")
    return _result(answer)


class McpEndpoint:
    """One app's MCP server and session manager. The manager's task group runs in a task
    of its own, started by the first request (so it works whether or not the app's lifespan
    runs: tests pass their own services) and stopped by `close` at the app's shutdown."""

    def __init__(self) -> None:
        server: Server[Any] = Server("mediahub", version="1", on_list_tools=_list_tools,
                                     on_call_tool=_call_tool)
        self._manager = StreamableHTTPSessionManager(app=server, stateless=False)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one authenticated HTTP request of the MCP transport."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._ready.wait()
        await self._manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

    async def _run(self) -> None:
        async with self._manager.run():
            self._ready.set()
            await self._stop.wait()

    async def close(self) -> None:
        """Stop the sessions (their running calls are cancelled); called at shutdown."""
        if self._task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def endpoint_of(app: Litestar) -> McpEndpoint:
    """The app's MCP endpoint, created on first use."""
    found = app.state.get(STATE_KEY)
    if not isinstance(found, McpEndpoint):
        found = McpEndpoint()
        app.state[STATE_KEY] = found
    return found


async def close_mcp(app: Litestar) -> None:
    """The app's shutdown hook: stop its MCP sessions, if any were opened."""
    found = app.state.get(STATE_KEY)
    if isinstance(found, McpEndpoint):
        await found.close()


@asgi("/mcp", is_mount=True, copy_scope=False)
async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP endpoint (streamable HTTP); docs/mcp.md."""
    connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive, send)
    await authenticate_key(connection)
    await endpoint_of(connection.app).handle(scope, receive, send)
