"""The OpenAI provider against a fake of OpenAI's API (tests/fakes/openai.py): what it sends,
what it returns, what it charges, how each error is classified, and a generation end to end
through the gateway."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from gateway.generations.models import Generation
from plugins.builtin.openai import PRICES, OpenAI
from plugins.errors import InvalidParams, ProviderError
from plugins.media import MediaInput
from plugins.provider import Credentials, ProviderRequest
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import openai as fake

PROMPT = "a lighthouse at dusk"


def data_url(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def png(size: tuple[int, int] = (64, 64), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


def image_request(operation: str = "text_to_image", prompt: str = PROMPT,
                  **params: Any) -> ProviderRequest:
    """As the gateway builds it: `image=`/`mask=` data: URLs become decoded inputs."""
    return request_from_params(type="image", operation=operation, prompt=prompt, params=params)


def speech_request(text: str = "Hello from mediahub.", **params: Any) -> ProviderRequest:
    return request_from_params(type="audio", operation="text_to_speech", prompt=text,
                               params=params)


@pytest.fixture
def state() -> fake.FakeOpenAI:
    return fake.FakeOpenAI()


@pytest.fixture
async def server(state: fake.FakeOpenAI) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
def creds(server: FakeServer) -> Credentials:
    return Credentials(api_key=fake.API_KEY, base_url=f"{server.url}/v1")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


# --- Images: generations -----------------------------------------------------------------

async def test_dall_e_3_generation_sends_the_real_fields_and_returns_bytes(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    request = image_request(model="dall-e-3", size="1792x1024", quality="hd", style="natural")
    assert provider.estimate_cost(request) == 120_000

    result = await provider.generate(request, creds, client)

    [seen] = server.to("/v1/images/generations")
    assert seen.method == "POST"
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"model": "dall-e-3", "prompt": PROMPT, "n": 1, "size": "1792x1024",
                           "quality": "hd", "style": "natural",
                           "response_format": "b64_json"}
    [output] = result.outputs
    assert output.content_type == "image/png"
    assert (output.width, output.height) == (1792, 1024)
    assert Image.open(io.BytesIO(output.data)).format == "PNG"
    assert result.cost_usd_micros == PRICES["dall-e-3_hd_1792x1024"] == 120_000


async def test_defaults_are_dall_e_3_standard_square(server: FakeServer, creds: Credentials,
                                                     client: httpx.AsyncClient) -> None:
    result = await OpenAI().generate(image_request(), creds, client)
    assert server.to("/v1/images/generations")[0].json() == {
        "model": "dall-e-3", "prompt": PROMPT, "n": 1, "size": "1024x1024",
        "quality": "standard", "response_format": "b64_json"}
    assert result.cost_usd_micros == 40_000


async def test_gpt_image_1_sends_its_options_and_is_charged_by_reported_usage(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    request = image_request(model="gpt-image-1", n=3, size="1024x1536", quality="high",
                            output_format="webp", output_compression=80,
                            background="opaque", moderation="low")
    estimate = provider.estimate_cost(request)
    # 3 x $0.25, plus the prompt's tokens (at most one per byte) at $5 per 1M.
    assert estimate == 3 * 250_000 + len(PROMPT) * 5

    result = await provider.generate(request, creds, client)

    body = server.to("/v1/images/generations")[0].json()
    assert body == {"model": "gpt-image-1", "prompt": PROMPT, "n": 3, "size": "1024x1536",
                    "quality": "high", "output_format": "webp", "output_compression": 80,
                    "background": "opaque", "moderation": "low"}
    assert "response_format" not in body  # gpt-image-1 refuses it; it always answers base64
    assert len(result.outputs) == 3
    for output in result.outputs:
        assert output.content_type == "image/webp"
        assert Image.open(io.BytesIO(output.data)).format == "WEBP"
        assert (output.width, output.height) == (1024, 1536)
    # usage: 12 text tokens x $5/1M + 3 x 6240 output tokens x $40/1M
    expected = 12 * 5 + 3 * 6240 * 40
    assert result.cost_usd_micros == expected == 748_860
    assert result.cost_usd_micros <= estimate


async def test_gpt_image_1_auto_is_estimated_at_the_dearest_and_reports_what_it_chose(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    request = image_request(model="gpt-image-1", size="auto")  # quality defaults to auto
    assert provider.estimate_cost(request) == 250_000 + len(PROMPT) * 5
    result = await provider.generate(request, creds, client)
    assert server.to("/v1/images/generations")[0].json()["quality"] == "auto"
    [output] = result.outputs
    # The answer says what auto resolved to (the fake: medium, 1024x1536).
    assert (output.width, output.height) == (1024, 1536)
    assert result.cost_usd_micros == 60 + 1584 * 40


async def test_a_url_answer_is_left_for_the_gateway_to_download(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    state.answer_with_urls = True
    result = await OpenAI().generate(image_request(model="dall-e-2", size="512x512", n=2),
                                     creds, client)
    assert [(o.data, o.url) for o in result.outputs] == [
        (b"", f"{server.url}/files/img-0.png"), (b"", f"{server.url}/files/img-1.png")]
    assert [(o.width, o.height) for o in result.outputs] == [(512, 512)] * 2
    assert result.cost_usd_micros == 2 * 18_000
    served = await client.get(f"{server.url}/files/img-1.png")
    assert Image.open(io.BytesIO(served.content)).format == "PNG"


# --- Images: edits and variations --------------------------------------------------------

async def test_gpt_image_1_edit_sends_image_and_mask_as_multipart(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    picture, mask = png((64, 64), "RGB"), png((64, 64), "RGBA")
    request = image_request("image_edit", prompt="add a red boat", image=data_url(picture),
                            mask=data_url(mask), quality="low", size="1024x1024", n=2)
    estimate = provider.estimate_cost(request)
    # 2 x $0.011 + prompt bytes x $5/1M + 2 input images x 6240 tokens x $10/1M.
    assert estimate == 2 * 11_000 + len("add a red boat") * 5 + 2 * 6240 * 10

    result = await provider.generate(request, creds, client)

    [seen] = server.to("/v1/images/edits")
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    [form] = state.forms
    assert {k: p.value for k, p in form.items() if p.value is not None} == {
        "model": "gpt-image-1", "prompt": "add a red boat", "n": "2", "size": "1024x1024",
        "quality": "low"}
    assert (form["image"].filename, form["image"].content_type) == ("image.png", "image/png")
    assert form["image"].data == picture
    assert (form["mask"].filename, form["mask"].content_type) == ("mask.png", "image/png")
    assert form["mask"].data == mask
    assert len(result.outputs) == 2
    assert result.cost_usd_micros == 60 + 194 * 10 + 2 * 272 * 40


async def test_dall_e_2_edit_asks_for_base64(server: FakeServer, state: fake.FakeOpenAI,
                                             creds: Credentials,
                                             client: httpx.AsyncClient) -> None:
    request = image_request("image_edit", prompt="add a moon", model="dall-e-2",
                            image=data_url(png((32, 32))), size="512x512")
    result = await OpenAI().generate(request, creds, client)
    [form] = state.forms
    assert {k: p.value for k, p in form.items() if p.value is not None} == {
        "model": "dall-e-2", "prompt": "add a moon", "n": "1", "size": "512x512",
        "quality": "standard", "response_format": "b64_json"}
    assert "mask" not in form
    assert result.cost_usd_micros == 18_000
    assert Image.open(io.BytesIO(result.outputs[0].data)).format == "PNG"


async def test_variation_sends_only_the_image_n_and_size(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    picture = png((48, 48))
    request = image_request("image_variation", image=data_url(picture), n=2, size="256x256")
    assert provider.estimate_cost(request) == 2 * 16_000
    result = await provider.generate(request, creds, client)
    [seen] = server.to("/v1/images/variations")
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    [form] = state.forms
    assert {k: p.value for k, p in form.items() if p.value is not None} == {
        "model": "dall-e-2", "n": "2", "size": "256x256", "response_format": "b64_json"}
    assert form["image"].data == picture
    assert len(result.outputs) == 2
    assert result.cost_usd_micros == 32_000


# --- Speech ------------------------------------------------------------------------------

async def test_speech_sends_model_voice_format_speed(server: FakeServer, creds: Credentials,
                                                     client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    text = "Hello from mediahub."
    request = speech_request(text, model="tts-1-hd", voice="nova", response_format="wav",
                             speed=1.5)
    assert provider.estimate_cost(request) == -(-len(text) * 30_000_000 // 10**6) == 600
    result = await provider.generate(request, creds, client)
    [seen] = server.to("/v1/audio/speech")
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert seen.json() == {"model": "tts-1-hd", "input": text, "voice": "nova",
                           "response_format": "wav", "speed": 1.5}
    [output] = result.outputs
    assert output.content_type == "audio/wav"
    assert output.data.startswith(b"RIFF")
    assert result.cost_usd_micros == 600


async def test_speech_defaults_and_instructions(server: FakeServer, creds: Credentials,
                                                client: httpx.AsyncClient) -> None:
    provider = OpenAI()
    result = await provider.generate(speech_request("Hi."), creds, client)
    assert server.to("/v1/audio/speech")[0].json() == {
        "model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "mp3",
        "speed": 1.0}
    assert result.outputs[0].content_type == "audio/mpeg"
    assert result.cost_usd_micros == 45  # 3 characters x $15 / 1M

    request = speech_request("Hi.", model="gpt-4o-mini-tts", voice="verse",
                             instructions="Cheerful.", response_format="pcm")
    assert provider.estimate_cost(request) == (3 + 9) * 30
    result = await provider.generate(request, creds, client)
    assert server.to("/v1/audio/speech")[1].json()["instructions"] == "Cheerful."
    [output] = result.outputs
    assert output.content_type == "audio/pcm"
    assert output.duration_s == pytest.approx(0.1)  # 4800 bytes of 24 kHz 16-bit mono


# --- Parameter validation ---------------------------------------------------------------

@pytest.mark.parametrize(("request_", "param"), [
    (image_request(model="dall-e-3", n=2), "params.n"),
    (image_request(model="gpt-image-1", n=11), "params.n"),
    (image_request(model="dall-e-3", size="1536x1024"), "params.size"),
    (image_request(model="gpt-image-1", size="1792x1024"), "params.size"),
    (image_request(model="dall-e-3", quality="high"), "params.quality"),
    (image_request(model="gpt-image-1", quality="hd"), "params.quality"),
    (image_request(model="gpt-image-1", style="vivid"), "params.style"),
    (image_request(model="dall-e-3", style="moody"), "params.style"),
    (image_request(model="dall-e-3", output_format="png"), "params.output_format"),
    (image_request(model="gpt-image-1", output_format="gif"), "params.output_format"),
    (image_request(model="gpt-image-1", output_format="jpeg", background="transparent"),
     "params.background"),
    (image_request(model="gpt-image-1", output_compression=50), "params.output_compression"),
    (image_request(model="gpt-image-1", moderation="none"), "params.moderation"),
    (image_request(model="dall-e-3", prompt="x" * 4001), "prompt"),
    (image_request(model="sora"), "params.model"),
    (image_request("image_edit"), "params.image"),
    (image_request("image_edit", model="dall-e-3", image=data_url(png())), "params.model"),
    (image_request("image_edit", model="dall-e-2", image=data_url(png((64, 32)))),
     "params.image"),
    (image_request("image_edit", image=data_url(png()), mask=data_url(png((32, 32)))),
     "params.mask"),
    (image_request("image_variation", model="gpt-image-1", image=data_url(png())),
     "params.model"),
    (image_request("image_variation", image=data_url(png()), quality="standard"),
     "params.quality"),
    (image_request("image_variation", image=data_url(png()), mask=data_url(png())),
     "params.mask"),
    (speech_request(voice="ballad"), "params.voice"),  # gpt-4o-mini-tts only
    (speech_request(model="gpt-4o-mini-tts", voice="bob"), "params.voice"),
    (speech_request(model="tts-2"), "params.model"),
    (speech_request(response_format="ogg"), "params.response_format"),
    (speech_request(speed=4.5), "params.speed"),
    (speech_request(speed="fast"), "params.speed"),
    (speech_request(instructions="Whisper."), "params.instructions"),
    (speech_request("x" * 4097), "text"),
])
def test_bad_params_are_refused_naming_the_param(request_: ProviderRequest,
                                                 param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        OpenAI().validate(request_)
    assert caught.value.param == param


def test_an_image_that_is_not_a_data_url_is_refused_naming_the_param() -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        OpenAI().validate(image_request("image_edit", image="https://example.com/a.png"))
    assert caught.value.param == "params.image"


def test_the_edit_reads_the_decoded_inputs_not_params() -> None:
    request = image_request("image_edit", image=data_url(png()), mask=data_url(png()))
    assert set(request.inputs) == {"image", "mask"}
    assert request.params == {}
    assert request.inputs["image"] == MediaInput(data=png(), content_type="image/png")


def test_operator_price_overrides_are_what_the_estimate_reads() -> None:
    provider = OpenAI()
    provider.set_prices({"dall-e-3_standard_1024x1024": 55_000,
                         "tts-1_per_1m_characters": 20_000_000})
    assert provider.estimate_cost(image_request()) == 55_000
    assert provider.estimate_cost(speech_request("x" * 100)) == 2_000
    assert OpenAI().estimate_cost(image_request()) == 40_000  # the class table is untouched


# --- Errors ------------------------------------------------------------------------------

@pytest.mark.parametrize(("scripted", "code", "retryable", "retry_after_s"), [
    (fake.Scripted(429, fake.INSUFFICIENT_QUOTA), "quota_exhausted", True, None),
    (fake.Scripted(429, fake.RATE_LIMITED, {"retry-after": "12"}), "rate_limited", True, 12.0),
    (fake.Scripted(429, fake.RATE_LIMITED, {"retry-after-ms": "1500", "retry-after": "2"}),
     "rate_limited", True, 1.5),
    (fake.Scripted(400, fake.CONTENT_POLICY), "content_policy", False, None),
    (fake.Scripted(400, fake.MODERATION_BLOCKED), "content_policy", False, None),
    (fake.Scripted(400, fake.INVALID_SIZE), "invalid_input", False, None),
    (fake.Scripted(403, {"error": {"message": "Country, region, or territory not supported",
                                   "type": "request_forbidden", "param": None,
                                   "code": "unsupported_country_region_territory"}}),
     "auth", False, None),
    (fake.Scripted(500, fake.SERVER_ERROR), "server_error", True, None),
    (fake.Scripted(503, fake.SERVER_ERROR), "server_error", True, None),
    (fake.Scripted(502, "<html>Bad gateway</html>"), "server_error", True, None),
])
async def test_errors_are_classified(server: FakeServer, state: fake.FakeOpenAI,
                                     creds: Credentials, client: httpx.AsyncClient,
                                     scripted: fake.Scripted, code: str, retryable: bool,
                                     retry_after_s: float | None) -> None:
    state.errors.append(scripted)
    with pytest.raises(ProviderError) as caught:
        await OpenAI().generate(image_request(), creds, client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.retry_after_s == retry_after_s
    if isinstance(scripted.body, dict):
        assert scripted.body["error"]["message"] in caught.value.message


async def test_a_wrong_key_is_an_auth_error_and_unhealthy(server: FakeServer,
                                                          client: httpx.AsyncClient) -> None:
    wrong = Credentials(api_key="sk-wrong", base_url=f"{server.url}/v1")
    with pytest.raises(ProviderError) as caught:
        await OpenAI().generate(speech_request(), wrong, client)
    assert (caught.value.code, caught.value.retryable) == ("auth", False)
    assert "Incorrect API key provided" in caught.value.message
    health = await OpenAI().health(wrong, client)
    assert health.ok is False
    assert health.detail.startswith("auth: ")
    assert server.to("/v1/models")[0].headers["authorization"] == "Bearer sk-wrong"


async def test_no_key_is_an_auth_error_without_a_call(server: FakeServer,
                                                      client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await OpenAI().generate(image_request(),
                                Credentials(base_url=f"{server.url}/v1"), client)
    assert caught.value.code == "auth"
    assert server.requests == []


async def test_a_timeout_is_classified_by_the_gateway_helper(client: httpx.AsyncClient) -> None:
    from plugins.errors import error_from_exception

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as slow:
        with pytest.raises(httpx.TimeoutException) as caught:
            await OpenAI().generate(image_request(), Credentials(api_key="k"), slow)
    assert error_from_exception(caught.value).code == "timeout"


async def test_health_lists_models(server: FakeServer, creds: Credentials,
                                   client: httpx.AsyncClient) -> None:
    health = await OpenAI().health(creds, client)
    assert health.ok is True
    [seen] = server.to("/v1/models")
    assert (seen.method, seen.headers["authorization"]) == ("GET", f"Bearer {fake.API_KEY}")


async def test_default_base_url_is_openais() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as mocked:
        assert (await OpenAI().health(Credentials(api_key="k"), mocked)).ok
    assert str(seen[0].url) == "https://api.openai.com/v1/models"


# --- The contract ------------------------------------------------------------------------

@pytest.mark.parametrize("request_", [
    image_request(),
    image_request(model="gpt-image-1", quality="medium", n=2),
    image_request("image_edit", image=data_url(png()), mask=data_url(png())),
    image_request("image_variation", image=data_url(png())),
    speech_request(),
    speech_request(model="gpt-4o-mini-tts", voice="coral", instructions="Calm."),
])
async def test_openai_keeps_the_contract(server: FakeServer, creds: Credentials,
                                         client: httpx.AsyncClient,
                                         request_: ProviderRequest) -> None:
    result = await check_provider_contract(OpenAI(), request_, credentials=creds,
                                           client=client)
    assert result.outputs[0].data


# --- End to end through the gateway ------------------------------------------------------

async def _row(gw: Gateway, generation_id: str) -> Generation:
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, generation_id)
    assert row is not None
    return row


async def test_a_generation_end_to_end_through_the_gateway(
        database_url: str, tmp_path: Path, server: FakeServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{server.url}/v1")
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(credits_mc=1_000_000)
        listed = (await gw.client.get("/v1/providers", headers=tenant.auth)).json()["data"]
        [entry] = [p for p in listed if p["name"] == "openai"]
        assert (entry["status"], entry["local"]) == ("available", False)
        assert entry["types"] == ["audio", "image"]
        assert entry["pricing"]["usd_micros"] == PRICES
        r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                                 json={"type": "image", "prompt": PROMPT, "provider": "openai",
                                       "params": {"model": "dall-e-3", "quality": "hd"}})
        if r.status_code == 202:
            await gw.drain()
            r = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "succeeded", done
        assert (done["provider"], done["operation"]) == ("openai", "text_to_image")
        [sent] = server.to("/v1/images/generations")
        assert sent.json()["quality"] == "hd"
        assert sent.headers["authorization"] == f"Bearer {fake.API_KEY}"

        [output] = done["outputs"]
        assert output["content_type"] == "image/png"
        fetched = await gw.media(output["url"])
        assert fetched.status_code == 200
        assert Image.open(io.BytesIO(fetched.content)).format == "PNG"
        assert len(fetched.content) == output["bytes"]

        row = await _row(gw, done["id"])
        assert row.cost_usd_micros == 80_000  # dall-e-3 hd 1024x1024
        assert done["cost"]["charged"] == done["cost"]["estimated"] > 0
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (
            1_000_000 - done["cost"]["charged"], 0)


async def test_a_speech_generation_end_to_end(database_url: str, tmp_path: Path,
                                              server: FakeServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{server.url}/v1")
    settings = make_settings(database_url, tmp_path)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                                 json={"type": "audio", "text": "Hello there.",
                                       "provider": "openai",
                                       "params": {"voice": "onyx", "response_format": "wav"}})
        if r.status_code == 202:
            await gw.drain()
            r = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
        done = r.json()
        assert done["status"] == "succeeded", done
        assert server.to("/v1/audio/speech")[0].json()["voice"] == "onyx"
        [output] = done["outputs"]
        assert output["content_type"] == "audio/wav"
        fetched = await gw.media(output["url"])
        assert fetched.content.startswith(b"RIFF")
        assert (await _row(gw, done["id"])).cost_usd_micros == 12 * 15


@pytest.mark.parametrize(("scripted", "code"), [
    (fake.Scripted(400, fake.CONTENT_POLICY), "content_policy"),
    (fake.Scripted(429, fake.INSUFFICIENT_QUOTA), "quota_exhausted"),
])
async def test_a_refusal_fails_the_generation_and_gives_the_credits_back(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch, scripted: fake.Scripted, code: str) -> None:
    monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{server.url}/v1")
    state.errors.append(scripted)
    settings = make_settings(database_url, tmp_path)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(credits_mc=500_000)
        r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                                 json={"type": "image", "prompt": PROMPT, "provider": "openai"})
        if r.status_code == 202:
            await gw.drain()
            r = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
        done = r.json()
        assert done["status"] == "failed", done
        assert done["error"]["code"] == code
        assert [(a["provider"], a["outcome"], a["error_code"]) for a in done["attempts"]] == [
            ("openai", "failed", code)]
        assert len(server.to("/v1/images/generations")) == 1  # final: not retried
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (500_000, 0)


async def test_a_server_error_fails_over_to_the_next_provider(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{server.url}/v1")
    state.errors.append(fake.Scripted(503, fake.SERVER_ERROR))
    settings = make_settings(database_url, tmp_path)
    # OpenAI and the local engine make images here; routing puts a configured remote
    # provider before local engines, so OpenAI is tried first.
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(credits_mc=500_000)
        r = await gw.client.post(
            "/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
            json={"type": "image", "prompt": PROMPT, "params": {"size": "1024x1024"}})
        if r.status_code == 202:
            await gw.drain()
            r = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
        done = r.json()
        assert done["status"] == "succeeded", done
        assert done["provider"] == "local-image"
        assert [(a["provider"], a["outcome"], a["error_code"]) for a in done["attempts"]] == [
            ("openai", "failed", "server_error"), ("local-image", "succeeded", None)]
        assert len(server.to("/v1/images/generations")) == 1
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (
            500_000 - done["cost"]["charged"], 0)


async def test_an_image_answered_as_a_url_is_downloaded_and_stored(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAHUB_OPENAI_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_BASE_URL", f"{server.url}/v1")
    state.answer_with_urls = True
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                                 json={"type": "image", "prompt": PROMPT, "provider": "openai",
                                       "params": {"model": "dall-e-2", "size": "256x256"}})
        if r.status_code == 202:
            await gw.drain()
            r = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "succeeded", done
        assert [s.path for s in server.requests] == ["/v1/images/generations",
                                                      "/files/img-0.png"]
        [output] = done["outputs"]
        fetched = await gw.media(output["url"])
        assert fetched.content == state.files["img-0.png"]
        assert (await _row(gw, done["id"])).cost_usd_micros == 16_000
