"""The bare OpenAI names when the tenant may use OpenAI (the provider pointed at a fake of
OpenAI's API), customers' view of the models, scopes, and concurrent replays of one
Idempotency-Key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import openai
import pytest

from gateway.core.settings import Settings
from tests.conftest import running_gateway
from tests.fakes import openai as fake
from tests.fakes import serve
from tests.gateway.openai.conftest import Served


@pytest.fixture
async def with_openai(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                      ) -> AsyncIterator[tuple[Served, fake.FakeOpenAI]]:
    state = fake.FakeOpenAI()
    async with serve(fake.app(state)) as upstream:
        monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
        monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{upstream.url}/v1")
        async with running_gateway(settings) as gw, serve(gw.app) as server:
            yield Served(gw=gw, url=server.url), state


async def test_bare_names_go_to_openai_when_the_tenant_may_use_it(
        with_openai: tuple[Served, fake.FakeOpenAI]) -> None:
    served, _ = with_openai
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        models = {m.id: m.owned_by for m in (await client.models.list()).data}
        assert models["openai/dall-e-3"] == "openai"
        assert models["openai/tts-1"] == "openai"
        assert models["dall-e-3"] == "openai"
        assert models["sora-2"] == "mediahub"  # OpenAI's provider here makes no video
        result = await client.images.generate(model="dall-e-3", prompt="a fox",
                                              quality="hd", style="natural",
                                              size="1792x1024", response_format="b64_json")
    assert result.data[0].b64_json
    (generation,) = (await served.gw.client.get("/v1/generations",
                                                headers=tenant.auth)).json()["data"]
    assert generation["provider"] == "openai"


async def test_openai_speech_formats_pass_through(
        with_openai: tuple[Served, fake.FakeOpenAI]) -> None:
    served, _ = with_openai
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        response = await client.audio.speech.create(model="tts-1", voice="coral",
                                                    input="Hi", response_format="opus")
        assert response.response.headers["content-type"] == "audio/ogg"
        assert response.read() == fake.SPEECH_BYTES["opus"]


async def test_a_white_label_customer_sees_only_bare_names(served: Served) -> None:
    tenant = await served.gw.tenant()
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=tenant.key,
                                max_retries=0, default_headers={"X-Customer-Id": "cust-1"})
    async with client:
        ids = {m.id for m in (await client.models.list()).data}
    assert "dall-e-3" in ids
    assert not any("/" in i for i in ids)


async def test_a_key_without_generate_is_permission_denied(served: Served) -> None:
    tenant = await served.gw.tenant(scopes=["read"])
    async with served.aio(tenant) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.images.generate(model="local/image", prompt="x", size="256x256")
        assert (await client.models.list()).data


async def test_concurrent_replays_of_one_key_make_one_set(served: Served) -> None:
    tenant = await served.gw.tenant()
    before = await served.gw.balance(tenant.auth)
    async with served.aio(tenant) as client:
        answers = await asyncio.gather(*[client.images.generate(
            model="local/image", prompt="same", n=2, size="256x256",
            extra_headers={"Idempotency-Key": "same-key"}) for _ in range(6)])
    keys = {tuple(d.url.split("?")[0] for d in a.data if d.url) for a in answers}
    assert len(keys) == 1
    listed = (await served.gw.client.get("/v1/generations", headers=tenant.auth)).json()
    assert len(listed["data"]) == 2
    after = await served.gw.balance(tenant.auth)
    assert before["available"] - after["available"] == sum(
        g["cost"]["charged"] for g in listed["data"])
