"""The Stability AI provider against a fake of Stability's API (tests/fakes/stability.py):
what it sends, what it returns, how each error is classified, and generations through the
gateway."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.response import Response
from PIL import Image

from gateway.generations.models import Generation
from plugins.builtin.stability import Stability
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import stability as fake

PROMPT = "a lighthouse at dusk"


def png_data_url(width: int = 96, height: int = 96, image_format: str = "PNG") -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, format=image_format)
    media_type = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[image_format]
    return f"data:{media_type};base64,{base64.b64encode(out.getvalue()).decode()}"


def image_request(**params: Any) -> ProviderRequest:
    return request_from_params(type="image", operation="text_to_image", prompt=PROMPT,
                               params=params)


def model_request(**params: Any) -> ProviderRequest:
    """As the gateway builds it: an `image=` data: URL becomes the decoded input."""
    return request_from_params(type="model_3d", operation="image_to_3d", prompt="the object",
                               params={"image": png_data_url(), **params})


@pytest.fixture
def state() -> fake.FakeStability:
    return fake.FakeStability()


@pytest.fixture
async def server(state: fake.FakeStability) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def creds(server: FakeServer, key: str = fake.API_KEY) -> Credentials:
    return Credentials(api_key=key, base_url=server.url)


# --- What it sends and returns -----------------------------------------------------------


async def test_core_text_to_image_sends_a_multipart_form_with_bearer_auth(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    result = await Stability().generate(
        image_request(negative_prompt="fog", aspect_ratio="16:9", seed=42,
                      style_preset="cinematic"),
        creds(server), client)

    [seen] = server.to("/v2beta/stable-image/generate/core")
    assert seen.method == "POST"
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert seen.headers["accept"] == "image/*"
    parts = fake.multipart(seen)
    assert {name: part.text for name, part in parts.items()} == {
        "prompt": PROMPT, "negative_prompt": "fog", "aspect_ratio": "16:9", "seed": "42",
        "output_format": "png", "style_preset": "cinematic"}
    assert all(part.filename is None for part in parts.values())

    [output] = result.outputs
    assert output.content_type == "image/png"
    with Image.open(io.BytesIO(output.data)) as image:
        assert image.format == "PNG"
        assert image.size == (output.width, output.height)
        assert image.size[0] * 9 == image.size[1] * 16
    assert result.cost_usd_micros == 30_000


@pytest.mark.parametrize(("params", "path", "model", "price"), [
    ({"engine": "ultra"}, "ultra", None, 80_000),
    ({"engine": "sd3"}, "sd3", "sd3.5-large", 65_000),
    ({"engine": "sd3", "model": "sd3.5-large-turbo"}, "sd3", "sd3.5-large-turbo", 40_000),
    ({"engine": "sd3", "model": "sd3.5-medium"}, "sd3", "sd3.5-medium", 35_000),
])
async def test_each_engine_and_model_has_its_endpoint_and_price(
        server: FakeServer, client: httpx.AsyncClient, params: dict[str, Any], path: str,
        model: str | None, price: int) -> None:
    provider = Stability()
    request = image_request(output_format="jpeg", **params)
    assert provider.estimate_cost(request) == price
    result = await provider.generate(request, creds(server), client)
    [seen] = server.to(f"/v2beta/stable-image/generate/{path}")
    parts = fake.multipart(seen)
    assert parts["output_format"].text == "jpeg"
    assert (parts["model"].text if "model" in parts else None) == model
    assert "engine" not in parts  # our parameter picks the path, it is not a form field
    assert result.outputs[0].content_type == "image/jpeg"
    assert result.outputs[0].data.startswith(b"\xff\xd8")
    assert result.cost_usd_micros == price


async def test_stable_fast_3d_uploads_the_image_and_returns_the_glb(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    request = model_request(texture_resolution=512, foreground_ratio=0.7, remesh="quad",
                            vertex_count=5000)
    provider = Stability()
    assert provider.estimate_cost(request) == 100_000
    result = await provider.generate(request, creds(server), client)

    [seen] = server.to("/v2beta/3d/stable-fast-3d")
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    parts = fake.multipart(seen)
    image = parts.pop("image")
    assert (image.filename, image.content_type) == ("input.png", "image/png")
    with Image.open(io.BytesIO(image.value)) as sent:
        assert sent.size == (96, 96)
    assert {name: part.text for name, part in parts.items()} == {
        "texture_resolution": "512", "foreground_ratio": "0.7", "remesh": "quad",
        "vertex_count": "5000"}

    [output] = result.outputs
    assert output.content_type == "model/gltf-binary"
    assert output.data[:4] == b"glTF"
    assert int.from_bytes(output.data[8:12], "little") == len(output.data)
    assert result.cost_usd_micros == 100_000


async def test_a_jpeg_input_goes_up_as_a_jpeg_file(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    request = request_from_params(type="model_3d", operation="image_to_3d", prompt="x",
                                  params={"image": png_data_url(image_format="JPEG")})
    await Stability().generate(request, creds(server), client)
    image = fake.multipart(server.requests[-1])["image"]
    assert (image.filename, image.content_type) == ("input.jpg", "image/jpeg")
    assert image.value.startswith(b"\xff\xd8")


@pytest.mark.parametrize("request_", [image_request(engine="sd3"), model_request()],
                         ids=["text_to_image", "image_to_3d"])
async def test_it_keeps_the_provider_contract(server: FakeServer, client: httpx.AsyncClient,
                                              request_: ProviderRequest) -> None:
    await check_provider_contract(Stability(), request_, credentials=creds(server),
                                  client=client)


async def test_operator_prices_override_the_estimate_and_the_charge(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    provider = Stability()
    provider.set_prices({"core": 25_000})
    assert provider.estimate_cost(image_request()) == 25_000
    assert (await provider.generate(image_request(), creds(server), client)
            ).cost_usd_micros == 25_000
    assert Stability.prices["core"] == 30_000
    assert provider.pricing()["usd_micros"]["core"] == 25_000
    assert provider.pricing()["units"]["stable-fast-3d"] == "per model"


# --- Parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("request_", "param"), [
    (image_request(engine="xl"), "params.engine"),
    (image_request(aspect_ratio="4:3"), "params.aspect_ratio"),
    (image_request(output_format="gif"), "params.output_format"),
    (image_request(seed=-1), "params.seed"),
    (image_request(seed=4_294_967_295), "params.seed"),
    (image_request(seed=True), "params.seed"),
    (image_request(seed="7"), "params.seed"),
    (image_request(style_preset="watercolour"), "params.style_preset"),
    (image_request(engine="ultra", style_preset="anime"), "params.style_preset"),
    (image_request(model="sd3.5-large"), "params.model"),
    (image_request(engine="sd3", model="sd3-turbo"), "params.model"),
    (image_request(negative_prompt="x" * 10_001), "params.negative_prompt"),
    (image_request(negative_prompt=["fog"]), "params.negative_prompt"),
    (ProviderRequest(type="image", operation="text_to_image", prompt="x" * 10_001), "prompt"),
    (ProviderRequest(type="model_3d", operation="image_to_3d", prompt="x"), "params.image_url"),
    (model_request(image=png_data_url(32, 200)), "params.image"),
    (model_request(image=png_data_url(2100, 2100)), "params.image"),
    (model_request(texture_resolution=4096), "params.texture_resolution"),
    (model_request(texture_resolution="1024"), "params.texture_resolution"),
    (model_request(texture_resolution=512.0), "params.texture_resolution"),
    (model_request(foreground_ratio=0.05), "params.foreground_ratio"),
    (model_request(foreground_ratio="0.5"), "params.foreground_ratio"),
    (model_request(remesh="ngon"), "params.remesh"),
    (model_request(vertex_count=20_001), "params.vertex_count"),
    (model_request(vertex_count=-2), "params.vertex_count"),
])
def test_bad_parameters_are_refused_before_pricing(request_: ProviderRequest,
                                                   param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        Stability().validate(request_)
    assert caught.value.param == param


def test_an_image_that_is_not_a_data_url_is_refused_before_pricing() -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        Stability().validate(model_request(image="https://example.com/a.png"))
    assert caught.value.param == "params.image"


# --- Errors -------------------------------------------------------------------------------


def _body(name: str, *errors: str) -> dict[str, Any]:
    return {"id": "0b9e2c4c7f1a4e3d", "name": name, "errors": list(errors)}


@pytest.mark.parametrize(("answer", "code", "retryable", "retry_after"), [
    (fake.Scripted(400, _body("bad_request", "aspect_ratio: invalid")), "invalid_input",
     False, None),
    (fake.Scripted(402, _body("payment_required", "You lack sufficient credits")),
     "quota_exhausted", True, None),
    (fake.Scripted(403, _body("forbidden", "this key may not use this service")), "auth",
     False, None),
    (fake.Scripted(413, _body("payload_too_large", "body: larger than 10MiB")),
     "invalid_input", False, None),
    (fake.Scripted(422, _body("invalid_language", "English is the only supported language")),
     "invalid_input", False, None),
    (fake.Scripted(429, _body("rate_limit_exceeded", "You have exceeded the rate limit"),
                   {"retry-after": "7"}), "rate_limited", True, 7.0),
    (fake.Scripted(429, _body("rate_limit_exceeded", "You have exceeded the rate limit")),
     "rate_limited", True, 60.0),
    (fake.Scripted(500, _body("internal_error", "An unexpected server error occurred")),
     "server_error", True, None),
    (fake.Scripted(503, b"<html>Service Unavailable</html>", {"content-type": "text/html"}),
     "server_error", True, None),
])
async def test_each_error_answer_is_classified(
        state: fake.FakeStability, server: FakeServer, client: httpx.AsyncClient,
        answer: fake.Scripted, code: str, retryable: bool, retry_after: float | None) -> None:
    state.script = [answer]
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(image_request(), creds(server), client)
    error = caught.value
    assert (error.code, error.retryable, error.retry_after_s) == (code, retryable, retry_after)
    assert error.message.startswith(f"Stability answered HTTP {answer.status}")
    if isinstance(answer.body, dict):
        assert answer.body["errors"][0] in error.message


async def test_a_wrong_key_is_an_auth_error(server: FakeServer,
                                            client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(image_request(), creds(server, "sk-wrong"), client)
    assert (caught.value.code, caught.value.retryable) == ("auth", False)
    assert "unauthorized" in caught.value.message


async def test_a_moderated_prompt_is_a_content_policy_refusal(
        state: fake.FakeStability, server: FakeServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(
            ProviderRequest(type="image", operation="text_to_image",
                            prompt="something forbidden"), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("content_policy", False)
    assert "content_moderation" in caught.value.message
    assert state.credits == 1000.0


async def test_a_filtered_image_is_a_content_policy_refusal(
        state: fake.FakeStability, server: FakeServer, client: httpx.AsyncClient) -> None:
    state.filter_next = True
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(image_request(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("content_policy", False)
    assert "CONTENT_FILTERED" in caught.value.message


async def test_running_out_of_credits_is_quota_exhausted(
        state: fake.FakeStability, server: FakeServer, client: httpx.AsyncClient) -> None:
    state.credits = 5.0
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(model_request(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("quota_exhausted", True)
    assert "payment_required" in caught.value.message


async def test_a_slow_answer_is_a_timeout(state: fake.FakeStability, server: FakeServer,
                                          client: httpx.AsyncClient) -> None:
    state.delay_s = 0.5
    with pytest.raises(ProviderError) as caught:
        await Stability(timeout_s=0.1).generate(image_request(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_an_unreachable_api_is_a_network_error(client: httpx.AsyncClient) -> None:
    async with serve(fake.app(fake.FakeStability())) as gone:
        url = gone.url
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(image_request(), Credentials(api_key="k", base_url=url),
                                   client)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


async def test_no_key_is_an_auth_error_without_a_call(server: FakeServer,
                                                      client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Stability().generate(image_request(), Credentials(base_url=server.url), client)
    assert caught.value.code == "auth"
    assert server.requests == []


# --- Health -------------------------------------------------------------------------------


async def test_health_reads_the_balance(state: fake.FakeStability, server: FakeServer,
                                        client: httpx.AsyncClient) -> None:
    state.credits = 12.5
    health = await Stability().health(creds(server), client)
    assert (health.ok, health.detail) == (True, "12.5 credits left")
    [seen] = server.to("/v1/user/balance")
    assert (seen.method, seen.headers["authorization"]) == ("GET", f"Bearer {fake.API_KEY}")

    state.credits = 0
    assert (await Stability().health(creds(server), client)).ok is False
    bad = await Stability().health(creds(server, "sk-wrong"), client)
    assert bad.ok is False
    assert "401" in bad.detail


# --- Through the gateway ------------------------------------------------------------------


def _input_image_app() -> Litestar:
    @get("/chair.png")
    async def chair() -> Response[bytes]:
        out = io.BytesIO()
        Image.new("RGB", (128, 128), (150, 75, 0)).save(out, format="PNG")
        return Response(content=out.getvalue(), media_type="image/png")

    return Litestar([chair])


@pytest.fixture
async def gateway_on_fake(database_url: str, tmp_path: Path, server: FakeServer,
                          monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("MEDIAHUB_STABILITY_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_STABILITY_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gw:
        yield gw






async def _usd_micros(gw: Gateway, generation_id: str) -> int | None:
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, generation_id)
    assert row is not None
    return row.cost_usd_micros


async def test_a_generation_through_the_gateway_is_stored_and_charged(
        gateway_on_fake: Gateway, server: FakeServer) -> None:
    gw = gateway_on_fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await gw.finish(tenant.auth, {
        "type": "image", "prompt": PROMPT, "provider": "stability",
        "params": {"engine": "ultra", "aspect_ratio": "3:2", "seed": 9}})
    assert done["status"] == "succeeded", done
    assert done["provider"] == "stability"
    assert fake.multipart(server.to("/v2beta/stable-image/generate/ultra")[0])["seed"].text == "9"

    [output] = done["outputs"]
    assert output["content_type"] == "image/png"
    fetched = await gw.media(output["url"])
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(fetched.content)) as image:
        assert image.size == (output["width"], output["height"])
        assert image.size[0] * 2 == image.size[1] * 3

    charged = done["cost"]["charged"]
    assert charged == done["cost"]["estimated"] > 0
    assert await _usd_micros(gw, done["id"]) == 80_000
    after = await gw.balance(tenant.auth)
    assert (after["available"], after["pending"]) == (1_000_000 - charged, 0)


async def test_image_to_3d_through_the_gateway_from_an_image_url(
        gateway_on_fake: Gateway, server: FakeServer) -> None:
    gw = gateway_on_fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    async with serve(_input_image_app()) as images:
        done = await gw.finish(tenant.auth, {
            "type": "model_3d", "operation": "image_to_3d", "prompt": "the chair",
            "provider": "stability",
            "params": {"image_url": f"{images.url}/chair.png", "remesh": "triangle"}})
    assert done["status"] == "succeeded", done
    sent = fake.multipart(server.to("/v2beta/3d/stable-fast-3d")[0])
    with Image.open(io.BytesIO(sent["image"].value)) as image:
        assert image.size == (128, 128)
    assert sent["remesh"].text == "triangle"

    [output] = done["outputs"]
    assert output["content_type"] == "model/gltf-binary"
    fetched = await gw.media(output["url"])
    assert fetched.status_code == 200
    assert fetched.content[:4] == b"glTF"
    assert len(fetched.content) == output["bytes"]
    assert await _usd_micros(gw, done["id"]) == 100_000
    assert done["cost"]["charged"] == done["cost"]["estimated"] > 0


async def test_a_moderated_prompt_fails_the_generation_and_gives_the_credits_back(
        gateway_on_fake: Gateway, server: FakeServer) -> None:
    gw = gateway_on_fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await gw.finish(tenant.auth, {"type": "image", "prompt": "a forbidden thing"})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "content_policy"
    # A content refusal is final: no failover to the local engine.
    assert [(a["provider"], a["error_code"]) for a in done["attempts"]] == [
        ("stability", "content_policy")]
    assert done["cost"]["charged"] is None
    assert await gw.balance(tenant.auth) == {
        "available": 1_000_000, "pending": 0, "posted": 1_000_000, "unit": "millicredit",
        "object": "balance"}


async def test_a_server_error_fails_over_to_the_next_provider(
        gateway_on_fake: Gateway, state: fake.FakeStability) -> None:
    gw = gateway_on_fake
    state.script = [fake.Scripted(500, _body("internal_error", "try again later"))]
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await gw.finish(tenant.auth, {"type": "image", "prompt": PROMPT})
    assert done["status"] == "succeeded", done
    assert [(a["provider"], a["outcome"], a["error_code"]) for a in done["attempts"]] == [
        ("stability", "failed", "server_error"), ("local-image", "succeeded", None)]
    assert done["provider"] == "local-image"
    assert state.generated == 0
