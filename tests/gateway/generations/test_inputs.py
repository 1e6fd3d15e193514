"""Input URLs at submit (gateway/generations/inputs.py): only those the operation uses are
fetched, all at once, under one deadline for the request. The input servers are real loopback
HTTP servers whose answers the tests hold and release with events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, ProvidersPlugin, Scripted, make_settings, running_gateway
from tests.fakes import Message, Receive, Scope, Send, serve

MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(413)


class Cloner(Scripted):
    """A voice-clone provider that keeps the samples it was handed."""

    name = "cloner"
    media_types = frozenset({"audio"})
    operations = frozenset({"voice_clone", "text_to_speech"})


class Held:
    """An input server whose every answer waits until `expected` requests are in (so only
    concurrent fetches get answers) or, with `expected` 0, until `release` is set."""

    def __init__(self, expected: int = 0) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_in = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.arrived += 1
        if self.expected and self.arrived >= self.expected:
            self.all_in.set()
        await (self.all_in.wait() if self.expected else self.release.wait())
        start: Message = {"type": "http.response.start", "status": 200,
                          "headers": [(b"content-type", b"audio/mpeg")]}
        await send(start)
        await send({"type": "http.response.body", "body": MP3})


@pytest.fixture
async def gw(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    # A short deadline for the request, a longer one per fetch: what ends a submit here is
    # the request's deadline, never one fetch's own time limit.
    settings = make_settings(database_url, tmp_path, egress_timeout_s=20,
                             input_fetch_deadline_s=2,
                             egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings, extra=[ProvidersPlugin(Cloner())]) as gateway:
        yield gateway


def clone(urls: list[str], operation: str = "voice_clone") -> dict[str, Any]:
    return {"type": "audio", "operation": operation, "provider": "cloner", "text": "Narrator",
            "params": {"sample_urls": urls}}


async def test_samples_are_fetched_at_once(gw: Gateway) -> None:
    # Each answer waits for all three requests: fetched one after another, none would come.
    held = Held(expected=3)
    tenant = await gw.tenant()
    async with serve(held) as server:
        try:
            r = await gw.client.post("/v1/generations", headers=tenant.auth,
                                     json=clone([f"{server.url}/{i}.mp3" for i in range(3)]))
        finally:
            held.all_in.set()  # lets the server stop
    assert r.status_code == 202, r.text
    assert held.arrived == 3


async def test_the_request_has_one_deadline_for_all_its_inputs(gw: Gateway) -> None:
    held = Held()
    tenant = await gw.tenant()
    before = await gw.balance(tenant.auth)
    async with serve(held) as server:
        try:
            r = await gw.client.post("/v1/generations", headers=tenant.auth,
                                     json=clone([f"{server.url}/a.mp3", f"{server.url}/b.mp3"]))
        finally:
            held.release.set()  # lets the server stop
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "type": "invalid_request_error", "code": "input_fetch_timeout",
        "message": "the input URLs were not all fetched within 2 s "
                   "(params.sample_urls was not)",
        "param": "params.sample_urls"}
    assert await gw.balance(tenant.auth) == before  # nothing was reserved
    listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
    assert listed == []


async def test_inputs_the_operation_does_not_use_are_refused_unfetched(gw: Gateway) -> None:
    held = Held()
    held.release.set()
    tenant = await gw.tenant()
    async with serve(held) as server:
        r = await gw.client.post("/v1/generations", headers=tenant.auth,
                                 json=clone([f"{server.url}/a.mp3"], "text_to_speech"))
        image = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "image", "prompt": "p", "params": {"image_url": f"{server.url}/a.png"}})
    assert r.status_code == 422, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "unused_input", "params.sample_urls")
    assert image.status_code == 422, image.text
    assert (image.json()["error"]["code"], image.json()["error"]["param"]) == (
        "unused_input", "params.image_url")
    assert server.requests == []
