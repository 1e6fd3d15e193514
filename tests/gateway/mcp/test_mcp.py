"""The MCP server driven by the `mcp` package's own client over real HTTP (uvicorn on a
loopback port): tools and their schemas, each tool, progress, resource links, tool errors,
authentication, cancellation, and the OpenAI function-calling schema of the same tools."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway.core.settings import Settings
from gateway.mcp.server import close_mcp
from tests.conftest import Gate, GatePlugin, Gateway, running_gateway
from tests.fakes import serve

GENERATE = ["generate_image", "generate_audio", "generate_video", "generate_design",
            "generate_3d"]
READS = ["get_generation", "list_generations", "estimate_cost", "get_balance", "list_voices"]


@contextlib.asynccontextmanager
async def mcp_client(url: str, key: str) -> AsyncIterator[ClientSession]:
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                                   timeout=60) as http,
                streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        yield session


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Gateway, str, Gate]]:
    gate = Gate()
    async with (running_gateway(settings, extra=[GatePlugin(gate)]) as gw,
                serve(gw.app) as server):
        try:
            yield gw, server.url, gate
        finally:
            gate.release.set()
            await close_mcp(gw.app)


async def fetch(url: str, link: types.ResourceLink) -> httpx.Response:
    """GET a resource link over real HTTP from the served gateway (the link names the
    configured public base URL; its signed path and query are what count)."""
    parts = urlsplit(str(link.uri))
    async with httpx.AsyncClient() as http:
        return await http.get(f"{url}{parts.path}?{parts.query}")


def _text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def _links(result: types.CallToolResult) -> list[types.ResourceLink]:
    return [c for c in result.content if isinstance(c, types.ResourceLink)]


async def test_tools_are_listed_with_schemas_and_as_openai_functions(
        served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    tenant = await gw.tenant()
    async with mcp_client(url, tenant.key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert sorted(tools) == sorted(GENERATE + READS)
    image = tools["generate_image"].input_schema
    assert image["required"] == ["prompt"]
    assert image["properties"]["style"]["default"] == "realistic"
    assert {"size", "seed", "provider"} <= set(image["properties"])
    assert "image" not in image["properties"]  # input files are not offered
    video = tools["generate_video"].input_schema["properties"]
    assert video["duration_s"] == {"type": "number", "default": 5,
                                   "description": video["duration_s"]["description"]}
    assert tools["generate_audio"].input_schema["properties"]["voice"]["default"] == "default"
    assert tools["generate_audio"].input_schema["required"] == ["text"]

    r = await gw.client.get("/v1/tools/media_generation.json", headers=tenant.auth)
    assert r.status_code == 200, r.text
    functions = r.json()
    assert [f["type"] for f in functions] == ["function"] * len(functions)
    assert {f["function"]["name"]: f["function"]["parameters"] for f in functions} == {
        name: tool.input_schema for name, tool in tools.items()}
    assert (await gw.client.get("/v1/tools/media_generation.json")).status_code == 401


async def test_generate_reports_progress_and_links_the_output(
        served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    tenant = await gw.tenant()
    before = await gw.balance(tenant.auth)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_client(url, tenant.key) as session:
        result = await session.call_tool("generate_image",
                                         {"prompt": "a fox", "size": "256x256",
                                          "provider": "local-image"},
                                         progress_callback=on_progress)
    assert not result.is_error, _text(result)
    assert "succeeded" in _text(result)
    assert "millicredits" in _text(result)
    assert progress
    assert progress[0][0] == 0.0
    assert progress[-1][:2] == (2.0, 2.0)
    assert "succeeded" in (progress[-1][2] or "")
    (link,) = _links(result)
    assert link.mime_type == "image/png"
    assert link.size
    assert link.size > 0
    fetched = await fetch(url, link)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fetched.content) == link.size
    assert result.structured_content is not None
    charged = result.structured_content["cost"]["charged"]
    after = await gw.balance(tenant.auth)
    assert before["available"] - after["available"] == charged > 0


@pytest.mark.parametrize(("tool", "arguments", "mime"), [
    ("generate_audio", {"text": "hello there"}, "audio/"),
    ("generate_video", {"prompt": "waves", "duration_s": 1, "resolution": "480p"},
     "video/"),
    ("generate_design", {"prompt": "a poster"}, "image/"),
    ("generate_3d", {"prompt": "a cube"}, "model/"),
])
async def test_each_generate_tool_makes_its_media(
        served: tuple[Gateway, str, Gate], tool: str, arguments: dict[str, Any],
        mime: str) -> None:
    gw, url, _ = served
    tenant = await gw.tenant()
    async with mcp_client(url, tenant.key) as session:
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, _text(result)
    links = _links(result)
    assert links
    assert all((link.mime_type or "").startswith(mime) for link in links)
    fetched = await fetch(url, links[0])
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith(mime)


async def test_read_tools(served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    tenant = await gw.tenant(credits_mc=500_000)
    async with mcp_client(url, tenant.key) as session:
        made = await session.call_tool("generate_image", {"prompt": "a fox", "size": "64x64",
                                                            "provider": "local-image"})
        assert made.structured_content is not None
        generation_id = made.structured_content["id"]

        got = await session.call_tool("get_generation", {"id": generation_id})
        assert not got.is_error
        assert generation_id in _text(got)
        assert len(_links(got)) == 1

        listed = await session.call_tool("list_generations", {"type": "image", "limit": 5})
        assert not listed.is_error
        assert listed.structured_content is not None
        assert [g["id"] for g in listed.structured_content["data"]] == [generation_id]

        typo = await session.call_tool("list_generations", {"type": "imagez"})
        assert typo.is_error
        assert _text(typo).startswith("invalid_type: ")

        estimate = await session.call_tool("estimate_cost", {
            "type": "image", "prompt": "a fox", "params": {"size": "64x64"},
            "provider": "local-image"})
        assert not estimate.is_error, _text(estimate)
        assert estimate.structured_content is not None
        assert estimate.structured_content["amount"] > 0

        balance = await session.call_tool("get_balance", {})
        assert balance.structured_content is not None
        rest = (await gw.balance(tenant.auth))["available"]
        assert balance.structured_content["available"] == rest < 500_000

        voices = await session.call_tool("list_voices", {"provider": "local-speech"})
        assert not voices.is_error, _text(voices)
        assert voices.structured_content is not None
        assert voices.structured_content["data"]


async def test_errors_are_tool_errors_with_the_code(served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    broke = await gw.tenant(credits_mc=0)
    other = await gw.tenant()
    theirs = await gw.finish(other.auth, {"type": "image", "prompt": "x",
                                          "provider": "local-image",
                                          "params": {"size": "64x64"}})
    async with mcp_client(url, broke.key) as session:
        poor = await session.call_tool("generate_image", {"prompt": "a fox"})
        assert poor.is_error
        text = _text(poor)
        assert text.startswith("insufficient_credits: ")
        assert poor.structured_content is not None
        needed = poor.structured_content["error"]["required"]
        assert f"needs {needed} millicredits and 0 are available" in text

        missing = await session.call_tool("get_generation", {"id": theirs["id"]})
        assert missing.is_error
        assert _text(missing).startswith("generation_not_found: ")

        unknown = await session.call_tool("generate_image", {"prompt": "x", "colour": "red"})
        assert unknown.is_error
        assert _text(unknown).startswith("unknown_param: ")
    assert (await gw.balance(broke.auth))["pending"] == 0

    reader = await gw.tenant(scopes=["read"])
    async with mcp_client(url, reader.key) as session:
        denied = await session.call_tool("generate_image", {"prompt": "a fox"})
        assert denied.is_error
        assert _text(denied).startswith("missing_scope: ")
        assert not (await session.call_tool("get_balance", {})).is_error


async def test_a_bad_key_is_refused_before_any_tool(served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                            headers={"Authorization": "Bearer mh_nope_nope",
                                     "Accept": "application/json, text/event-stream"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "invalid_api_key"
    # The client's connection fails: initialize gets the 401 as an error response.
    with pytest.raises(BaseExceptionGroup) as caught:
        async with mcp_client(url, "mh_nope_nope"):
            pass
    assert caught.group_contains(MCPError)
    assert gw.services.completions.waiting() == 0


async def test_cancelling_the_call_cancels_the_generation(
        served: tuple[Gateway, str, Gate]) -> None:
    gw, url, gate = served
    tenant = await gw.tenant()
    before = await gw.balance(tenant.auth)
    async with mcp_client(url, tenant.key) as session:
        call = asyncio.create_task(session.call_tool(
            "generate_image", {"prompt": "slow", "provider": "gate"}))
        await gate.entered.wait()
        (running,) = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
        async with gw.services.completions.watching(running["id"]) as ended:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            # The server's handler, cancelled by the client's notifications/cancelled,
            # ends the generation: its end wakes this watcher.
            await asyncio.wait_for(ended.wait(), 10)
    listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
    assert [g["status"] for g in listed] == ["canceled"]
    after = await gw.balance(tenant.auth)
    assert after["available"] == before["available"]
    assert after["pending"] == 0


async def test_progress_follows_queued_running_done(served: tuple[Gateway, str, Gate]) -> None:
    gw, url, gate = served
    tenant = await gw.tenant()
    seen: list[tuple[float, str]] = []
    running = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, (message or "").rpartition(" ")[2]))
        if (message or "").endswith(" running"):
            running.set()

    async with mcp_client(url, tenant.key) as session:
        call = asyncio.create_task(session.call_tool(
            "generate_image", {"prompt": "held", "provider": "gate"},
            progress_callback=on_progress))
        await asyncio.wait_for(running.wait(), 10)
        gate.release.set()
        result = await call
    assert not result.is_error, _text(result)
    assert seen[0] == (0.0, "queued")
    assert (1.0, "running") in seen
    assert seen[-1] == (2.0, "succeeded")
    assert [v for v, _ in seen] == sorted(v for v, _ in seen)


async def test_generate_tools_apply_a_brand_kit(served: tuple[Gateway, str, Gate]) -> None:
    gw, url, _ = served
    tenant, other = await gw.tenant(), await gw.tenant()
    r = await gw.client.post("/v1/brand_kits", headers=tenant.auth, json={
        "name": "Acme", "colors": [{"name": "Primary", "hex": "#0A7C66"}],
        "style_words": ["pastel"]})
    assert r.status_code == 201, r.text
    kit_id = r.json()["id"]
    async with mcp_client(url, tenant.key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert "brand_kit_id" in tools["generate_image"].input_schema["properties"]
        made = await session.call_tool("generate_image", {
            "prompt": "a fox", "size": "64x64", "provider": "local-image",
            "brand_kit_id": kit_id})
        assert not made.is_error, _text(made)
        assert made.structured_content is not None
        assert (made.structured_content["brand_kit_id"],
                made.structured_content["brand_kit_version"]) == (kit_id, 1)
        assert made.structured_content["prompt"] == "a fox\n\nStyle: pastel."
    async with mcp_client(url, other.key) as session:
        theirs = await session.call_tool("generate_image", {
            "prompt": "a fox", "provider": "local-image", "brand_kit_id": kit_id})
        assert theirs.is_error
        assert _text(theirs).startswith("brand_kit_not_found: ")
