"""The AUTOMATIC1111 / Forge provider against a fake webui API (tests/fakes/automatic1111.py):
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
from plugins.builtin.automatic1111 import Automatic1111
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import automatic1111 as fake

PROMPT = "a lighthouse at dusk"
SDXL = fake.CHECKPOINTS[1]


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def data_url(width: int = 200, height: int = 120) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height)).decode()


def txt2img(**params: Any) -> ProviderRequest:
    """As the gateway builds it: `image=`/`mask=` data: URLs become decoded inputs."""
    return request_from_params(type="image", operation="text_to_image", prompt=PROMPT,
                               params=params)


def img2img(**params: Any) -> ProviderRequest:
    return request_from_params(type="image", operation="image_edit", prompt=PROMPT,
                               params={"image": data_url(), **params})


def expected_cost(steps: int, width: int, height: int, batch: int = 1, price: int = 50) -> int:
    return -(-(steps * width * height * batch // 1000) * price // 1000)


@pytest.fixture
def state() -> fake.FakeWebui:
    return fake.FakeWebui()


@pytest.fixture
async def server(state: fake.FakeWebui) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def creds(server: FakeServer, key: str | None = None, secret: str | None = None) -> Credentials:
    return Credentials(api_key=key, api_secret=secret, base_url=server.url)


# --- What it sends and returns -----------------------------------------------------------


async def test_txt2img_sends_the_generation_fields_and_returns_each_image(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    request = txt2img(steps=12, cfg_scale=5.5, seed=1234, width=640, height=384,
                      batch_size=2, negative_prompt="fog")
    provider = Automatic1111()
    estimate = provider.estimate_cost(request)
    assert estimate == expected_cost(12, 640, 384, 2)
    result = await provider.generate(request, creds(server), client)

    [seen] = server.to("/sdapi/v1/txt2img")
    assert seen.method == "POST"
    assert "authorization" not in seen.headers  # an open webui: no --api-auth
    assert seen.json() == {"prompt": PROMPT, "negative_prompt": "fog", "steps": 12,
                           "cfg_scale": 5.5, "seed": 1234, "width": 640, "height": 384,
                           "batch_size": 2, "n_iter": 1}
    assert len(result.outputs) == 2
    for output in result.outputs:
        assert output.content_type == "image/png"
        assert (output.width, output.height) == (640, 384)
        with Image.open(io.BytesIO(output.data)) as image:
            assert image.size == (640, 384)
    assert result.outputs[0].data != result.outputs[1].data  # seeds 1234 and 1235
    assert result.cost_usd_micros == estimate
    assert server.to("/sdapi/v1/sd-models") == []  # nothing to check without a checkpoint


async def test_defaults_are_sent_explicitly(server: FakeServer,
                                            client: httpx.AsyncClient) -> None:
    await Automatic1111().generate(txt2img(), creds(server), client)
    assert server.to("/sdapi/v1/txt2img")[0].json() == {
        "prompt": PROMPT, "steps": 20, "cfg_scale": 7.0, "seed": -1, "width": 512,
        "height": 512, "batch_size": 1, "n_iter": 1}


@pytest.mark.parametrize("wanted", [SDXL["title"], SDXL["model_name"], SDXL["hash"]])
async def test_a_checkpoint_is_looked_up_and_sent_as_an_override(
        state: fake.FakeWebui, server: FakeServer, client: httpx.AsyncClient,
        wanted: str) -> None:
    await Automatic1111().generate(txt2img(checkpoint=wanted), creds(server), client)
    assert [r.method for r in server.to("/sdapi/v1/sd-models")] == ["GET"]
    body = server.to("/sdapi/v1/txt2img")[0].json()
    assert body["override_settings"] == {"sd_model_checkpoint": SDXL["title"]}
    assert body["override_settings_restore_afterwards"] is True
    assert state.jobs[-1]["checkpoint"] == SDXL["title"]
    assert state.loaded == fake.CHECKPOINTS[0]["title"]  # put back after the job


async def test_an_unknown_checkpoint_is_refused_naming_the_available_ones(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(checkpoint="dreamshaper_8"), creds(server),
                                       client)
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)
    assert caught.value.message == ("checkpoint 'dreamshaper_8' is not on this webui; "
                                    "available: v1-5-pruned-emaonly, sd_xl_base_1.0")
    assert server.to("/sdapi/v1/txt2img") == []


async def test_sampler_and_scheduler_are_checked_and_sent_by_their_names(
        state: fake.FakeWebui, server: FakeServer, client: httpx.AsyncClient) -> None:
    await Automatic1111().generate(txt2img(sampler_name="k_dpmpp_2m", scheduler="Karras"),
                                   creds(server), client)
    body = server.to("/sdapi/v1/txt2img")[0].json()
    assert (body["sampler_name"], body["scheduler"]) == ("DPM++ 2M", "karras")
    assert (state.jobs[-1]["sampler"], state.jobs[-1]["scheduler"]) == ("DPM++ 2M", "karras")


@pytest.mark.parametrize(("params", "message"), [
    ({"sampler_name": "UniPC"},
     "sampler_name 'UniPC' is not on this webui; available: DPM++ 2M, Euler a, Euler"),
    ({"scheduler": "exponential"},
     "scheduler 'exponential' is not on this webui; available: automatic, karras"),
])
async def test_an_unknown_sampler_or_scheduler_is_refused(
        server: FakeServer, client: httpx.AsyncClient, params: dict[str, str],
        message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(**params), creds(server), client)
    assert (caught.value.code, caught.value.message) == ("invalid_input", message)
    assert server.to("/sdapi/v1/txt2img") == []


async def test_a_webui_without_schedulers_refuses_a_scheduler_clearly(
        state: fake.FakeWebui, server: FakeServer, client: httpx.AsyncClient) -> None:
    state.has_schedulers = False
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(scheduler="karras"), creds(server), client)
    assert caught.value.code == "invalid_input"
    assert "no scheduler choice" in caught.value.message


async def test_img2img_sends_the_image_mask_and_strength(
        state: fake.FakeWebui, server: FakeServer, client: httpx.AsyncClient) -> None:
    mask = "data:image/png;base64," + base64.b64encode(png_bytes(200, 120, (255, 255, 255))
                                                       ).decode()
    request = img2img(mask=mask, denoising_strength=0.4, steps=10)
    result = await Automatic1111().generate(request, creds(server), client)

    body = server.to("/sdapi/v1/img2img")[0].json()
    assert base64.b64decode(body["init_images"][0]) == png_bytes(200, 120)
    assert base64.b64decode(body["mask"]) == png_bytes(200, 120, (255, 255, 255))
    assert body["denoising_strength"] == 0.4
    # The input's size, to a multiple of 8, unless width/height are given.
    assert (body["width"], body["height"]) == (200, 120)
    [output] = result.outputs
    assert (output.width, output.height) == (200, 120)
    assert result.cost_usd_micros == expected_cost(10, 200, 120)
    assert state.jobs[-1]["mode"] == "img2img"


@pytest.mark.parametrize("request_", [txt2img(checkpoint="sd_xl_base_1.0"), img2img()],
                         ids=["text_to_image", "image_edit"])
async def test_it_keeps_the_provider_contract(server: FakeServer, client: httpx.AsyncClient,
                                              request_: ProviderRequest) -> None:
    await check_provider_contract(Automatic1111(), request_, credentials=creds(server),
                                  client=client)


async def test_operator_prices_set_the_estimate_and_the_charge(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    provider = Automatic1111()
    provider.set_prices({"step_megapixel": 400})
    request = txt2img(steps=30, width=1024, height=1024)
    assert provider.estimate_cost(request) == expected_cost(30, 1024, 1024, price=400)
    assert (await provider.generate(request, creds(server), client)).cost_usd_micros == (
        expected_cost(30, 1024, 1024, price=400))
    assert provider.pricing()["usd_micros"] == {"step_megapixel": 400}
    assert Automatic1111.prices == {"step_megapixel": 50}


# --- Basic auth (--api-auth) --------------------------------------------------------------


@pytest.mark.parametrize(("key", "secret"), [("ops:s3cret", None), ("ops", "s3cret")])
async def test_basic_auth_from_the_key(state: fake.FakeWebui, server: FakeServer,
                                       client: httpx.AsyncClient, key: str,
                                       secret: str | None) -> None:
    state.auth = ("ops", "s3cret")
    await Automatic1111().generate(txt2img(checkpoint="sd_xl_base_1.0"),
                                   creds(server, key, secret), client)
    expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert [r.headers["authorization"] for r in server.requests] == [expected, expected]


@pytest.mark.parametrize("key", [None, "ops:wrong"])
async def test_refused_basic_auth_is_an_auth_error(state: fake.FakeWebui, server: FakeServer,
                                                   client: httpx.AsyncClient,
                                                   key: str | None) -> None:
    state.auth = ("ops", "s3cret")
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(), creds(server, key), client)
    assert (caught.value.code, caught.value.retryable) == ("auth", False)
    assert "HTTP 401 (HTTPException)" in caught.value.message


async def test_a_key_without_a_password_is_an_auth_error_without_a_call(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(), creds(server, "just-a-token"), client)
    assert caught.value.code == "auth"
    assert server.requests == []


# --- Parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("request_", "param"), [
    (txt2img(steps=0), "params.steps"),
    (txt2img(steps=151), "params.steps"),
    (txt2img(steps=20.5), "params.steps"),
    (txt2img(cfg_scale=0.5), "params.cfg_scale"),
    (txt2img(cfg_scale="7"), "params.cfg_scale"),
    (txt2img(width=500), "params.width"),
    (txt2img(height=4096), "params.height"),
    (txt2img(width=True), "params.width"),
    (txt2img(batch_size=9), "params.batch_size"),
    (txt2img(seed=-2), "params.seed"),
    (txt2img(seed=2**32), "params.seed"),
    (txt2img(checkpoint=""), "params.checkpoint"),
    (txt2img(sampler_name=3), "params.sampler_name"),
    (txt2img(scheduler=["karras"]), "params.scheduler"),
    (txt2img(negative_prompt=1), "params.negative_prompt"),
    (txt2img(denoising_strength=0.5), "params.denoising_strength"),
    (txt2img(mask=data_url()), "params.mask"),
    (ProviderRequest(type="image", operation="image_edit", prompt="x"), "params.image_url"),
    (img2img(mask="data:image/png;base64,AAAA"), "params.mask"),
    (img2img(denoising_strength=1.5), "params.denoising_strength"),
])
def test_bad_parameters_are_refused_before_pricing(request_: ProviderRequest,
                                                   param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        Automatic1111().validate(request_)
    assert caught.value.param == param


def test_an_image_that_is_not_a_data_url_is_refused_before_pricing() -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        Automatic1111().validate(img2img(image="not a data url"))
    assert caught.value.param == "params.image"


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "code", "retryable", "in_message"), [
    (fake.Scripted(500, {"error": "OutOfMemoryError", "detail": "", "body": "",
                         "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}),
     "server_error", True, "(OutOfMemoryError): CUDA out of memory"),
    (fake.Scripted(500, {"error": "HTTPException", "detail": "Invalid encoded image",
                         "body": "", "errors": "500: Invalid encoded image"}),
     "invalid_input", False, "Invalid encoded image"),
    (fake.Scripted(404, {"error": "HTTPException", "detail": "Sampler not found", "body": "",
                         "errors": "404: Sampler not found"}),
     "invalid_input", False, "Sampler not found"),
    (fake.Scripted(404, {"detail": "Not Found"}), "server_error", True, "started with --api"),
    (fake.Scripted(503, b"upstream connect error", {"content-type": "text/plain"}),
     "server_error", True, "upstream connect error"),
    (fake.Scripted(429, {"detail": "busy"}, {"retry-after": "3"}), "rate_limited", True,
     "busy"),
])
async def test_each_error_answer_is_classified(
        state: fake.FakeWebui, server: FakeServer, client: httpx.AsyncClient,
        answer: fake.Scripted, code: str, retryable: bool, in_message: str) -> None:
    state.script = [answer]
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert in_message in caught.value.message
    assert caught.value.message.startswith(
        f"the webui answered POST txt2img with HTTP {answer.status}")
    if answer.status == 429:
        assert caught.value.retry_after_s == 3.0


async def test_fastapis_validation_error_is_invalid_input(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    # The provider's own checks never send a body the webui's model refuses, so this sends
    # one through the provider's HTTP helper to classify FastAPI's real 422 shape.
    provider = Automatic1111()
    with pytest.raises(ProviderError) as caught:
        await provider._call(client, "POST", f"{server.url}/sdapi/v1/txt2img", None,
                             json={"prompt": "x", "steps": "many"})
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)
    assert "HTTP 422: body.steps: Input should be a valid integer" in caught.value.message


async def test_a_slow_webui_is_a_timeout(state: fake.FakeWebui, server: FakeServer,
                                         client: httpx.AsyncClient) -> None:
    state.delay_s = 0.5
    with pytest.raises(ProviderError) as caught:
        await Automatic1111(timeout_s=0.1).generate(txt2img(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_a_webui_that_is_down_is_a_network_error(client: httpx.AsyncClient) -> None:
    async with serve(fake.app(fake.FakeWebui())) as gone:
        url = gone.url
    with pytest.raises(ProviderError) as caught:
        await Automatic1111().generate(txt2img(), Credentials(base_url=url), client)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


# --- Health -------------------------------------------------------------------------------


async def test_health_lists_the_checkpoints(state: fake.FakeWebui, server: FakeServer,
                                            client: httpx.AsyncClient) -> None:
    health = await Automatic1111().health(creds(server), client)
    assert (health.ok, health.detail) == (True, "2 checkpoints")
    assert [r.path for r in server.requests] == ["/sdapi/v1/sd-models"]

    state.checkpoints = []
    assert (await Automatic1111().health(creds(server), client)).ok is False
    state.checkpoints = list(fake.CHECKPOINTS)
    state.auth = ("ops", "s3cret")
    refused = await Automatic1111().health(creds(server, "ops:nope"), client)
    assert refused.ok is False
    assert "HTTP 401" in refused.detail


# --- Through the gateway ------------------------------------------------------------------


def _input_image_app() -> Litestar:
    @get("/photo.png")
    async def photo() -> Response[bytes]:
        return Response(content=png_bytes(256, 192), media_type="image/png")

    return Litestar([photo])


@pytest.fixture
async def gateway_on_fake(database_url: str, tmp_path: Path, server: FakeServer,
                          monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("MEDIAHUB_AUTOMATIC1111_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gw:
        yield gw






async def test_an_image_edit_through_the_gateway_is_stored_and_charged(
        gateway_on_fake: Gateway, server: FakeServer, state: fake.FakeWebui) -> None:
    gw = gateway_on_fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    async with serve(_input_image_app()) as images:
        done = await gw.finish(tenant.auth, {
            "type": "image", "operation": "image_edit", "prompt": "make it autumn",
            "provider": "automatic1111",
            "params": {"image_url": f"{images.url}/photo.png", "checkpoint": "sd_xl_base_1.0",
                       "steps": 8, "denoising_strength": 0.3}})
    assert done["status"] == "succeeded", done
    body = server.to("/sdapi/v1/img2img")[0].json()
    assert base64.b64decode(body["init_images"][0]) == png_bytes(256, 192)
    assert body["override_settings"] == {"sd_model_checkpoint": SDXL["title"]}
    assert state.jobs[-1]["checkpoint"] == SDXL["title"]

    [output] = done["outputs"]
    assert (output["content_type"], output["width"], output["height"]) == ("image/png", 256, 192)
    fetched = await gw.media(output["url"])
    assert fetched.status_code == 200
    with Image.open(io.BytesIO(fetched.content)) as image:
        assert image.size == (256, 192)

    assert done["cost"]["charged"] == done["cost"]["estimated"] > 0
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, done["id"])
    assert row is not None
    assert row.cost_usd_micros == expected_cost(8, 256, 192)
    after = await gw.balance(tenant.auth)
    assert (after["available"], after["pending"]) == (1_000_000 - done["cost"]["charged"], 0)


async def test_an_unknown_checkpoint_fails_the_generation_and_gives_the_credits_back(
        gateway_on_fake: Gateway, server: FakeServer) -> None:
    gw = gateway_on_fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await gw.finish(tenant.auth, {"type": "image", "prompt": PROMPT,
                                           "params": {"checkpoint": "dreamshaper_8"}})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "invalid_input"
    assert "available: v1-5-pruned-emaonly, sd_xl_base_1.0" in done["error"]["message"]
    assert [(a["provider"], a["error_code"]) for a in done["attempts"]] == [
        ("automatic1111", "invalid_input")]
    assert server.to("/sdapi/v1/txt2img") == []
    assert await gw.balance(tenant.auth) == {
        "available": 1_000_000, "pending": 0, "posted": 1_000_000, "unit": "millicredit",
        "object": "balance"}


async def test_a_webui_crash_fails_over_to_the_next_provider(
        gateway_on_fake: Gateway, state: fake.FakeWebui) -> None:
    gw = gateway_on_fake
    state.script = [fake.Scripted(500, {"error": "RuntimeError", "detail": "", "body": "",
                                        "errors": "CUDA error: device-side assert"})]
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await gw.finish(tenant.auth, {"type": "image", "prompt": PROMPT})
    assert done["status"] == "succeeded", done
    assert [(a["provider"], a["outcome"], a["error_code"]) for a in done["attempts"]] == [
        ("automatic1111", "failed", "server_error"), ("local-image", "succeeded", None)]
    assert state.jobs == []
