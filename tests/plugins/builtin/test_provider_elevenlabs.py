"""The ElevenLabs provider against a fake ElevenLabs API (tests/fakes/elevenlabs.py): what it
sends, what it returns, how it classifies ElevenLabs' errors, and generations end to end
through the gateway (speech, a voice clone from sample URLs, a refusal)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.generations import inputs as media_urls
from plugins.builtin.elevenlabs import DEFAULT_VOICE, ElevenLabs, audio_output
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest, Voice
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes.elevenlabs import API_KEY, MP3, ElevenLabsState, app, wav_bytes

RACHEL = "21m00Tcm4TlvDq8ikWAM"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeServer, ElevenLabsState]]:
    state = ElevenLabsState()
    async with serve(app(state)) as server:
        yield server, state


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def creds(server: FakeServer, key: str = API_KEY) -> Credentials:
    return Credentials(api_key=key, base_url=server.url)


def tts(text: str = "Hello there.", **params: Any) -> ProviderRequest:
    return ProviderRequest(type="audio", operation="text_to_speech", prompt=text, params=params)


def data_url(kind: str, data: bytes) -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def clone(text: str = "Narrator", **params: Any) -> ProviderRequest:
    """As the gateway builds it: `samples=` data: URLs become the decoded samples."""
    params.setdefault("samples", [data_url("audio/mpeg", MP3)])
    return request_from_params(type="audio", operation="voice_clone", prompt=text,
                               params=params)


# --- What the plugin sends and returns ------------------------------------------------------

async def test_speech_sends_the_documented_request(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, _ = fake
    text = "Guten Tag, wie geht es Ihnen?"
    request = tts(text, voice=RACHEL, model="eleven_flash_v2_5", language_code="de",
                  stability=0.3, similarity_boost=0.8, style=0.1, use_speaker_boost=True,
                  speed=1.1, seed=7, output_format="mp3_44100_192")
    result = await ElevenLabs().generate(request, creds(server), client)

    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", f"/v1/text-to-speech/{RACHEL}")
    assert seen.query == {"output_format": ["mp3_44100_192"]}
    assert seen.headers["xi-api-key"] == API_KEY
    assert seen.json() == {
        "text": text, "model_id": "eleven_flash_v2_5", "language_code": "de", "seed": 7,
        "voice_settings": {"stability": 0.3, "similarity_boost": 0.8, "style": 0.1,
                           "speed": 1.1, "use_speaker_boost": True}}
    [output] = result.outputs
    assert (output.data, output.content_type) == (MP3, "audio/mpeg")
    assert result.cost_usd_micros == len(text) * 50  # Flash: USD 0.05 per 1000 characters


async def test_speech_defaults_leave_the_voice_settings_alone(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, _ = fake
    await ElevenLabs().generate(tts("Hi."), creds(server), client)
    [seen] = server.requests
    assert seen.path == f"/v1/text-to-speech/{DEFAULT_VOICE}"
    assert seen.query == {"output_format": ["mp3_44100_128"]}
    assert seen.json() == {"text": "Hi.", "model_id": "eleven_multilingual_v2"}


async def test_cost_follows_the_counted_characters_never_above_the_estimate(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    provider = ElevenLabs()
    request = tts("x" * 40)
    assert provider.estimate_cost(request) == 40 * 100
    state.counted = 30
    assert (await provider.generate(request, creds(server), client)).cost_usd_micros == 3000
    state.counted = 99
    assert (await provider.generate(request, creds(server), client)).cost_usd_micros == 4000


@pytest.mark.parametrize(("output_format", "tag", "rate", "width"),
                         [("pcm_16000", 1, 16000, 2), ("pcm_44100", 1, 44100, 2),
                          ("alaw_8000", 6, 8000, 1), ("ulaw_8000", 7, 8000, 1)])
async def test_headerless_audio_is_stored_as_wav(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient,
        output_format: str, tag: int, rate: int, width: int) -> None:
    server, _ = fake
    result = await ElevenLabs().generate(tts("a" * 500, output_format=output_format),
                                         creds(server), client)
    [output] = result.outputs
    assert output.content_type == "audio/wav"
    riff, size, wave_id, fmt, fmt_size, fmt_tag, channels, sample_rate, byte_rate, block, \
        bits, data_id, data_size = struct.unpack("<4sI4s4sIHHIIHH4sI", output.data[:44])
    assert (riff, wave_id, fmt, fmt_size, data_id) == (b"RIFF", b"WAVE", b"fmt ", 16, b"data")
    assert (fmt_tag, channels, sample_rate, bits, block, byte_rate) == (
        tag, 1, rate, width * 8, width, rate * width)
    assert (size, data_size) == (len(output.data) - 8, len(output.data) - 44)
    assert output.duration_s == round(data_size / width / rate, 3)
    if output_format.startswith("pcm"):
        with wave.open(io.BytesIO(output.data)) as reader:
            assert (reader.getframerate(), reader.getsampwidth()) == (rate, 2)


def test_wav_and_opus_are_typed_by_format_and_bytes() -> None:
    out = audio_output(wav_bytes(24000, frames=2400), "wav_24000")
    assert (out.content_type, out.duration_s) == ("audio/wav", 0.1)
    assert audio_output(b"OggS" + bytes(10), "opus_48000_64").content_type == "audio/ogg"


async def test_list_voices_reads_the_accounts_voices(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, _ = fake
    voices = await ElevenLabs().list_voices(creds(server), client)
    [seen] = server.requests
    assert (seen.method, seen.path, seen.headers["xi-api-key"]) == (
        "GET", "/v1/voices", API_KEY)
    # The language comes from `fine_tuning.language` (George) or the first of
    # `verified_languages` (Rachel), beside the account's own labels.
    assert voices == [
        Voice(id="JBFqnCBsd6RMkjVDRZzb", name="George", category="premade",
              labels={"accent": "british", "gender": "male", "age": "middle_aged",
                      "language": "en"},
              description="Warm resonance", preview_url="https://example.test/george.mp3"),
        Voice(id=RACHEL, name="Rachel", category="premade",
              labels={"accent": "american", "gender": "female", "language": "en"})]


async def test_delete_voice_deletes_it_at_elevenlabs(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    await ElevenLabs().delete_voice(RACHEL, creds(server), client)
    [seen] = server.requests
    assert (seen.method, seen.path, seen.headers["xi-api-key"]) == (
        "DELETE", f"/v1/voices/{RACHEL}", API_KEY)
    assert state.deleted == [RACHEL]
    # Gone already (deleted in the ElevenLabs dashboard, say): nothing left to do.
    await ElevenLabs().delete_voice(RACHEL, creds(server), client)
    state.fail_next(500, "internal", "boom")
    with pytest.raises(ProviderError):
        await ElevenLabs().delete_voice("JBFqnCBsd6RMkjVDRZzb", creds(server), client)


async def test_voice_clone_posts_the_samples_as_multipart(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    wav_sample = wav_bytes()
    request = clone("Narrator", samples=[data_url("audio/mpeg", MP3),
                                         data_url("audio/wav", wav_sample)],
                    description="calm", labels={"accent": "irish"},
                    remove_background_noise=True)
    result = await ElevenLabs().generate(request, creds(server), client)

    [seen] = server.requests
    assert (seen.method, seen.path, seen.headers["xi-api-key"]) == (
        "POST", "/v1/voices/add", API_KEY)
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    [added] = state.clones
    assert added.form == {"name": "Narrator", "description": "calm",
                          "labels": '{"accent":"irish"}', "remove_background_noise": "true"}
    assert added.files == [("sample1.mp3", "audio/mpeg", MP3),
                           ("sample2.wav", "audio/wav", wav_sample)]
    [output] = result.outputs
    assert output.content_type == "application/json"
    assert json.loads(output.data) == {"voice_id": added.voice_id, "name": "Narrator",
                                       "requires_verification": False}
    assert result.cost_usd_micros == 0


async def test_voice_clone_name_comes_from_the_params_or_the_text(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    await ElevenLabs().generate(clone("  Grandpa  "), creds(server), client)
    await ElevenLabs().generate(clone("ignored", name="Named"), creds(server), client)
    assert [c.form for c in state.clones] == [{"name": "Grandpa"}, {"name": "Named"}]


# --- Errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "detail", "message", "retry_after", "code", "retryable",
                          "wait"), [
    (401, "invalid_api_key", "Invalid API key", None, "auth", False, None),
    (401, "quota_exceeded", "This request exceeds your quota of 10000. You have 0 credits "
     "remaining, while 91 credits are required for this request.", None, "quota_exhausted",
     True, None),
    (402, "payment_required", "Upgrade your plan.", None, "quota_exhausted", True, None),
    (400, "voice_not_found", "A voice with the voice_id was not found.", None,
     "invalid_input", False, None),
    (400, "max_character_limit_exceeded", "This request's text has 627 characters and "
     "exceeds the character limit of 333 characters for non signed in accounts.", None,
     "invalid_input", False, None),
    (400, "bad_prompt", "Your prompt appears to have violated our Terms of Service. Please "
     "try again with a different prompt.", None, "content_policy", False, None),
    (429, "too_many_concurrent_requests", "Too many concurrent requests.", "3",
     "rate_limited", True, 3.0),
    (429, "system_busy", "We are experiencing high traffic.", None, "rate_limited", True,
     None),
    (500, "internal_error", "Something went wrong.", None, "server_error", True, None),
    (503, None, "", "10", "server_error", True, 10.0),
])
async def test_elevenlabs_errors_are_classified(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient, status: int,
        detail: str | None, message: str, retry_after: str | None, code: str,
        retryable: bool, wait: float | None) -> None:
    server, state = fake
    state.fail_next(status, detail, message, retry_after=retry_after)
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().generate(tts(), creds(server), client)
    error = caught.value
    assert (error.code, error.retryable, error.retry_after_s) == (code, retryable, wait)
    assert error.message.startswith(f"ElevenLabs answered HTTP {status}")
    if detail:
        assert f"{detail}: {message}" in error.message


async def test_a_wrong_key_and_an_unknown_voice_from_the_fake_itself(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, _ = fake
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().generate(tts(), creds(server, key="wrong"), client)
    assert (caught.value.code, caught.value.message) == (
        "auth", "ElevenLabs answered HTTP 401 invalid_api_key: Invalid API key")
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().generate(tts(voice="A" * 20), creds(server), client)
    assert caught.value.code == "invalid_input"
    assert "voice_not_found" in caught.value.message


async def test_a_validation_error_body_is_invalid_input(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    state.fail_next(422, body={"detail": [{"loc": ["body", "model_id"], "msg": "bad model",
                                           "type": "value_error"}]})
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().generate(tts(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)
    assert caught.value.message == ("ElevenLabs answered HTTP 422 validation_error: "
                                    "body.model_id: bad model")


async def test_an_unreadable_success_body_is_a_server_error(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    state.voices = [{"name": "no id"}]
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().list_voices(creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("server_error", True)


async def test_timeouts_and_unreachable_hosts_are_retryable() -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as http:
        with pytest.raises(ProviderError) as caught:
            await ElevenLabs().generate(tts(), Credentials(api_key="k"), http)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)

    # A port nothing listens on: bind one, then close it.
    async with serve(app(ElevenLabsState())) as server:
        closed = server.url
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderError) as caught:
            await ElevenLabs().generate(tts(), Credentials(api_key="k", base_url=closed), http)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


async def test_no_key_is_an_auth_error_without_a_call(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, _ = fake
    with pytest.raises(ProviderError) as caught:
        await ElevenLabs().generate(tts(), Credentials(base_url=server.url), client)
    assert caught.value.code == "auth"
    assert server.requests == []


# --- Parameters and prices ------------------------------------------------------------------

@pytest.mark.parametrize(("request_", "param"), [
    (tts(voice="en"), "params.voice"),
    (tts(voice=12), "params.voice"),
    (tts(model="eleven_monolingual_v9"), "params.model"),
    (tts(output_format="mp3_44100_320"), "params.output_format"),
    (tts(language_code="German", model="eleven_flash_v2_5"), "params.language_code"),
    (tts(language_code="de"), "params.language_code"),  # multilingual_v2 takes none
    (tts(stability=1.5), "params.stability"),
    (tts(similarity_boost="high"), "params.similarity_boost"),
    (tts(style=-0.1), "params.style"),
    (tts(speed=2.0), "params.speed"),
    (tts(use_speaker_boost="yes"), "params.use_speaker_boost"),
    (tts(seed=-1), "params.seed"),
    (tts(seed=True), "params.seed"),
    (clone(samples=[]), "params.samples"),
    (clone(samples=[data_url("audio/mpeg", MP3)] * 26), "params.samples"),
    (clone(samples=[data_url("audio/mpeg", MP3), data_url("image/png", PNG)]),
     "params.samples[1]"),
    (clone(labels={"accent": 3}), "params.labels"),
    (clone(labels=["a"]), "params.labels"),
    (clone(name="n" * 101), "params.name"),
    (clone(description=""), "params.description"),
    (clone(remove_background_noise="no"), "params.remove_background_noise"),
    (ProviderRequest(type="audio", operation="text_to_video", prompt="x"), "operation"),
])
def test_bad_params_are_refused_naming_the_param(request_: ProviderRequest,
                                                 param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        ElevenLabs().validate(request_)
    assert caught.value.param == param


@pytest.mark.parametrize(("samples", "param"), [
    ("data:audio/mpeg;base64,AAAA", "params.samples"),
    (["data:audio/mpeg;base64,not base64!"], "params.samples[0]"),
])
def test_malformed_samples_are_refused_naming_the_param(samples: Any, param: str) -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        ElevenLabs().validate(clone(samples=samples))
    assert caught.value.param == param


def test_estimates_read_the_instance_prices() -> None:
    provider = ElevenLabs()
    assert provider.estimate_cost(tts("a" * 1000)) == 100_000  # USD 0.10 per 1000
    assert provider.estimate_cost(tts("a" * 1000, model="eleven_turbo_v2_5")) == 50_000
    assert provider.estimate_cost(tts("a" * 1000, model="eleven_v3")) == 100_000
    assert provider.estimate_cost(clone()) == 0
    provider.set_prices({"eleven_multilingual_v2": 120, "voice_clone": 5_000})
    assert provider.estimate_cost(tts("a" * 1000)) == 120_000
    assert provider.estimate_cost(clone()) == 5_000
    assert ElevenLabs().estimate_cost(tts("a" * 1000)) == 100_000  # other instances unchanged
    assert provider.pricing()["usd_micros"]["eleven_multilingual_v2"] == 120
    assert provider.pricing()["units"]["eleven_flash_v2_5"] == "per character"


# --- Contract and health --------------------------------------------------------------------

@pytest.mark.parametrize("request_", [
    tts("Contract check."), tts("Contract check.", output_format="pcm_22050"),
    clone(),
])
async def test_the_provider_keeps_the_contract(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient,
        request_: ProviderRequest) -> None:
    server, _ = fake
    await check_provider_contract(ElevenLabs(), request_, credentials=creds(server),
                                  client=client)
    assert server.requests[-1].path == "/v1/user/subscription"


async def test_health_reads_the_subscription(
        fake: tuple[FakeServer, ElevenLabsState], client: httpx.AsyncClient) -> None:
    server, state = fake
    health = await ElevenLabs().health(creds(server), client)
    assert (health.ok, health.detail) == (True, "creator: 1200/100000 characters used")
    assert server.requests[-1].headers["xi-api-key"] == API_KEY
    state.character_count = state.character_limit
    health = await ElevenLabs().health(creds(server), client)
    assert (health.ok, health.detail) == (
        False, "character quota used up (creator: 100000/100000 characters used)")
    health = await ElevenLabs().health(creds(server, key="wrong"), client)
    assert (health.ok, health.detail) == (
        False, "ElevenLabs answered HTTP 401 invalid_api_key: Invalid API key")


# --- End to end through the gateway ---------------------------------------------------------

@pytest.fixture
async def gw(fake: tuple[FakeServer, ElevenLabsState], database_url: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    server, _ = fake
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_API_KEY", API_KEY)
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gateway:
        yield gateway


async def _finish(gw: Gateway, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    return await gw.finish(auth, {"type": "audio", "provider": "elevenlabs", **body})






async def test_speech_end_to_end_through_the_gateway(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, _ = fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    text = "Welcome to the gateway."
    done = await _finish(gw, tenant.auth, {"text": text, "params": {"voice": RACHEL}})

    assert done["status"] == "succeeded", done
    assert (done["provider"], done["operation"]) == ("elevenlabs", "text_to_speech")
    [seen] = server.to(f"/v1/text-to-speech/{RACHEL}")
    assert seen.json()["text"] == text
    assert seen.headers["xi-api-key"] == API_KEY
    [output] = done["outputs"]
    assert (output["content_type"], output["bytes"]) == ("audio/mpeg", len(MP3))
    fetched = await gw.media(output["url"])
    assert (fetched.status_code, fetched.content) == (200, MP3)
    assert fetched.headers["content-type"] == "audio/mpeg"
    charged = done["cost"]["charged"]
    assert charged == done["cost"]["estimated"] > 0
    assert await gw.balance(tenant.auth) == {
        "available": 1_000_000 - charged, "pending": 0, "posted": 1_000_000 - charged,
        "unit": "millicredit", "object": "balance"}


async def test_voice_clone_from_sample_urls_through_the_gateway(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, state = fake
    wav_sample = wav_bytes()
    state.files = {"one.mp3": MP3, "two.wav": wav_sample, "picture.png": PNG}
    tenant = await gw.tenant(credits_mc=1_000_000)
    done = await _finish(gw, tenant.auth, {
        "operation": "voice_clone", "text": "Narrator",
        "params": {"sample_urls": [f"{server.url}/files/one.mp3",
                                   f"{server.url}/files/two.wav"],
                   "labels": {"accent": "irish"}}})

    assert done["status"] == "succeeded", done
    [added] = state.clones
    assert added.form == {"name": "Narrator", "labels": '{"accent":"irish"}'}
    assert added.files == [("sample1.mp3", "audio/mpeg", MP3),
                           ("sample2.wav", "audio/wav", wav_sample)]
    for data, ext, kind in [(MP3, "mp3", "audio/mpeg"), (wav_sample, "wav", "audio/wav")]:
        stored = await gw.runtime.storage.get(
            f"{tenant.id}/inputs/{hashlib.sha256(data).hexdigest()}.{ext}")
        assert stored == (data, kind)
    [output] = done["outputs"]
    assert output["content_type"] == "application/json"
    document = (await gw.media(output["url"])).json()
    assert document == {"voice_id": added.voice_id, "name": "Narrator",
                        "requires_verification": False}
    assert done["cost"]["charged"] == done["cost"]["estimated"]  # the gateway's minimum

    # Bad sample URLs are 422s naming the one at fault; nothing is reserved or called.
    before = await gw.balance(tenant.auth)
    calls = len(server.to("/v1/voices/add"))
    for urls, param, code in [
        ([f"{server.url}/files/one.mp3", f"{server.url}/files/picture.png"],
         "params.sample_urls[1]", "unsupported_media_type"),
        (["http://10.1.2.3/a.mp3"], "params.sample_urls[0]", "url_not_allowed"),
        ([f"{server.url}/files/missing.mp3"], "params.sample_urls[0]", "fetch_failed"),
        ([f"{server.url}/files/one.mp3", 7], "params.sample_urls[1]", "invalid_parameter"),
        ([], "params.sample_urls", "invalid_parameter"),
        (f"{server.url}/files/one.mp3", "params.sample_urls", "invalid_parameter"),
    ]:
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "audio", "operation": "voice_clone", "provider": "elevenlabs",
            "text": "Narrator", "params": {"sample_urls": urls}})
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)
    assert await gw.balance(tenant.auth) == before
    assert len(server.to("/v1/voices/add")) == calls


async def test_a_refusal_fails_the_generation_and_gives_the_credits_back(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    _, state = fake
    tenant = await gw.tenant(credits_mc=1_000_000)
    state.fail_next(400, "bad_prompt", "Your prompt appears to have violated our Terms of "
                    "Service. Please try again with a different prompt.")
    done = await _finish(gw, tenant.auth, {"text": "something refused"})
    assert done["status"] == "failed"
    assert done["error"]["code"] == "content_policy"
    assert "bad_prompt" in done["error"]["message"]
    assert done["cost"]["charged"] is None
    assert await gw.balance(tenant.auth) == {
        "available": 1_000_000, "pending": 0, "posted": 1_000_000, "unit": "millicredit",
        "object": "balance"}


async def test_samples_share_one_size_cap_and_exclude_inline_samples(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, state = fake
    state.files = {"one.mp3": MP3}
    monkeypatch.setattr(media_urls, "MAX_INPUT_BYTES", len(MP3) * 3 // 2)
    tenant = await gw.tenant()
    one = f"{server.url}/files/one.mp3"
    for params, param, code in [
        ({"sample_urls": [one, one]}, "params.sample_urls[1]", "fetch_too_large"),
        ({"sample_urls": [one], "samples": [data_url("audio/mpeg", MP3)]},
         "params.sample_urls", "invalid_parameter"),
    ]:
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "audio", "operation": "voice_clone", "provider": "elevenlabs",
            "text": "Narrator", "params": params})
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)
    assert state.clones == []
