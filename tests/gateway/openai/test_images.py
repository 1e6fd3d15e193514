"""`POST /v1/images/generations` and `GET /v1/models` driven by the official `openai`
client over HTTP, sync and async."""

from __future__ import annotations

import asyncio
import base64

import httpx
import openai
import pytest

from tests.gateway.openai.conftest import Served

PNG = b"\x89PNG\r\n\x1a\n"


async def test_models_lists_provider_models_and_bare_names(served: Served) -> None:
    tenant = await served.gw.tenant()
    models = await asyncio.to_thread(lambda: served.sync(tenant).models.list())
    ids = {m.id for m in models.data}
    assert {"local/image", "local/speech", "local/video"} <= ids
    # The bare OpenAI names map to the tenant's routing (no OpenAI key on this gateway).
    assert {"dall-e-3", "gpt-image-1", "tts-1", "sora-2"} <= ids
    owners = {m.id: m.owned_by for m in models.data}
    assert owners["dall-e-3"] == "mediahub"
    assert owners["local/image"] == "local-image"
    # OpenAI's own models are not listed: the platform holds no OpenAI key.
    assert "openai/dall-e-3" not in ids


async def test_generate_url_then_b64_sync(served: Served) -> None:
    tenant = await served.gw.tenant()
    client = served.sync(tenant)
    result = await asyncio.to_thread(lambda: client.images.generate(
        model="local/image", prompt="a red fox", size="256x256"))
    assert len(result.data) == 1
    assert result.data[0].url
    fetched = await served.gw.media(result.data[0].url)
    assert fetched.status_code == 200
    assert fetched.content.startswith(PNG)
    b64 = await asyncio.to_thread(lambda: client.images.generate(
        model="dall-e-3", prompt="a red fox", size="256x256", response_format="b64_json"))
    raw = base64.b64decode(b64.data[0].b64_json or "")
    assert raw.startswith(PNG)


async def test_n_makes_n_billed_generations_async(served: Served) -> None:
    tenant = await served.gw.tenant()
    before = await served.gw.balance(tenant.auth)
    async with served.aio(tenant) as client:
        result = await client.images.generate(model="local/image", prompt="two owls", n=2,
                                              size="512x512")
    assert len(result.data) == 2
    listed = (await served.gw.client.get("/v1/generations?type=image",
                                         headers=tenant.auth)).json()["data"]
    assert len(listed) == 2
    assert all(g["status"] == "succeeded" and g["cost"]["charged"] > 0 for g in listed)
    after = await served.gw.balance(tenant.auth)
    charged = sum(g["cost"]["charged"] for g in listed)
    assert before["available"] - after["available"] == charged


async def test_idempotency_key_replays_the_same_generations(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        first, second = [await client.images.generate(
            model="local/image", prompt="a lamp", n=2, size="256x256",
            extra_headers={"Idempotency-Key": "lamp-1"}) for _ in range(2)]
    assert [d.url.split("?")[0] for d in first.data] == [  # type: ignore[union-attr]
        d.url.split("?")[0] for d in second.data]  # type: ignore[union-attr]
    listed = (await served.gw.client.get("/v1/generations", headers=tenant.auth)).json()
    assert len(listed["data"]) == 2


async def test_errors_raise_the_sdk_classes(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.images.generate(model="nobody/nothing", prompt="x")
        assert missing.value.code == "model_not_found"
        assert missing.value.response.headers["x-request-id"].startswith("req_")
        body = missing.value.body
        assert isinstance(body, dict)
        assert set(body) == {"message", "type", "param", "code"}
        with pytest.raises(openai.BadRequestError) as bad:
            await client.images.generate(model="local/image", prompt="x", size="5x5")
        assert bad.value.code == "invalid_value"
        assert bad.value.param == "size"
    async with served.aio("mh_nope_nope") as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()


async def test_empty_wallet_is_openai_quota_error(served: Served) -> None:
    tenant = await served.gw.tenant(credits_mc=0)
    async with served.aio(tenant) as client:
        with pytest.raises(openai.RateLimitError) as quota:
            await client.images.generate(model="local/image", prompt="x", size="256x256")
    assert quota.value.code == "insufficient_quota"
    assert quota.value.type == "insufficient_quota"
    assert quota.value.response.headers["x-should-retry"] == "false"


async def test_rate_limit_is_rate_limit_error_with_retry_after(served: Served) -> None:
    tenant = await served.gw.tenant(rate_limits={"requests_per_minute": 1, "burst": 1})
    async with served.aio(tenant) as client:
        await client.models.list()
        with pytest.raises(openai.RateLimitError) as limited:
            await client.models.list()
    assert limited.value.response.headers["retry-after"]
    assert limited.value.code == "rate_limited"


async def test_success_answers_carry_a_request_id(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with httpx.AsyncClient(base_url=served.url) as http:
        r = await http.get("/v1/models", headers=tenant.auth)
    assert r.status_code == 200
    assert r.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/images/edits",
                                  "/v1/images/variations", "/v1/audio/speech", "/v1/videos"])
async def test_a_bad_key_is_401_before_the_body_is_read(served: Served, path: str) -> None:
    r = await served.gw.client.post(path, headers={"Authorization": "Bearer mh_nope_nope"},
                                    content=b"\x00not a body")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_n_images_are_n_runs_even_with_the_result_cache_on(served: Served) -> None:
    tenant = await served.gw.tenant(cache={"enabled": True, "ttl_s": 3600})
    async with served.aio(tenant) as client:
        await client.images.generate(model="local/image", prompt="cached", size="256x256")
        result = await client.images.generate(model="local/image", prompt="cached", n=3,
                                              size="256x256")
    assert len(result.data) == 3
    listed = (await served.gw.client.get("/v1/generations", headers=tenant.auth)).json()
    newest_three = listed["data"][:3]
    # The first of the three is the earlier request's cached answer; the others ran.
    assert sorted(g["cached"] for g in newest_three) == [False, False, True]
    assert all(g["status"] == "succeeded" for g in newest_three)
