"""`GET /v1/tools/media_generation.json`: the MCP tools as an OpenAI function-calling schema,
for agent frameworks without MCP (docs/mcp.md)."""

from __future__ import annotations

from typing import Any

from litestar import get

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
from gateway.mcp.tools import definitions, openai_functions


@get("/v1/tools/media_generation.json", summary="The media_generation tools as OpenAI "
     "function-calling tools", tags=["mcp"], guards=[requires()])
async def media_generation_tools(principal: Principal,
                                 runtime: RuntimeDep) -> list[dict[str, Any]]:
    """The same tools as `/mcp` lists, for the caller's tenant, as a list of
    `{"type": "function", "function": {"name", "description", "parameters"}}`: `parameters` is
    the JSON schema of the tool's arguments (generate tools: the parameters the tenant's
    providers declare, with the plan's defaults). Route a call back to the REST API as
    docs/mcp.md shows (each generate tool is `POST /v1/generations`)."""
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    return openai_functions(definitions(runtime, tenant))
