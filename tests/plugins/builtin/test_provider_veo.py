"""Google Veo (Gemini API) against its fake: what the plugin sends, how it reads every answer,
its error classes, and a generation end to end through the gateway."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from gateway.core.settings import Settings
from plugins.builtin.veo import PRICES, Veo
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest, ProviderResult, ProviderTask
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import ProvidersPlugin, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import veo as fake_veo
from tests.fakes.veo import MP4, VeoState, google_error

KEY = "test-gemini-key"
PROMPT = "a lighthouse at dusk, waves crashing"


def png_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 120, 40)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def text_request(**params: Any) -> ProviderRequest:
    return request_from_params(type="video", operation="text_to_video", prompt=PROMPT,
                               params=params)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeServer, VeoState]]:
    state = VeoState(api_key=KEY)
    async with serve(fake_veo.app(state)) as server:
        yield server, state


def creds(server: FakeServer, key: str = KEY) -> Credentials:
    return Credentials(api_key=key, base_url=server.url)


async def test_text_to_video_submits_polls_and_downloads(
        fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    veo = Veo(poll_after_s=0.01)
    request = text_request(model="veo-3.0-fast-generate-001", duration_s=6,
                           aspect_ratio="9:16", resolution="1080p",
                           negative_prompt="people, text", person_generation="allow_all",
                           seed=42)
    async with httpx.AsyncClient() as client:
        task = await veo.submit(request, creds(server), client)
        [sent] = server.to("/v1beta/models/veo-3.0-fast-generate-001:predictLongRunning")
        assert sent.method == "POST"
        assert sent.headers["x-goog-api-key"] == KEY
        assert "authorization" not in sent.headers
        assert sent.json() == {
            "instances": [{"prompt": PROMPT}],
            "parameters": {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 6,
                           "sampleCount": 1, "personGeneration": "allow_all",
                           "negativePrompt": "people, text", "seed": 42}}
        assert task == ProviderTask(
            task_id="models/veo-3.0-fast-generate-001/operations/op1;6s;1", poll_after_s=0.01)

        assert await veo.poll(task, creds(server), client) is None  # still running
        result = await veo.poll(task, creds(server), client)

    assert isinstance(result, ProviderResult)
    [output] = result.outputs
    assert (output.data, output.content_type, output.duration_s) == (MP4, "video/mp4", 6.0)
    assert result.cost_usd_micros == PRICES["veo-3.0-fast-generate-001"] * 6 == 900_000
    polls = server.to("/v1beta/models/veo-3.0-fast-generate-001/operations/op1")
    assert [p.headers["x-goog-api-key"] for p in polls] == [KEY, KEY]
    [download] = server.to("/v1beta/files/op1-0:download")
    assert download.headers["x-goog-api-key"] == KEY
    assert download.query == {"alt": ["media"]}
    [media] = server.to("/media/op1-0.mp4")
    assert media.query == {"sig": ["signed"]}


async def test_the_key_does_not_follow_the_download_redirect_to_another_host(
        fake: tuple[FakeServer, VeoState]) -> None:
    server, state = fake
    state.redirect_host = "localhost"  # the same fake, under a host name the API is not on
    state.progression = ["done"]
    veo = Veo()
    async with httpx.AsyncClient() as client:
        task = await veo.submit(text_request(), creds(server), client)
        result = await veo.poll(task, creds(server), client)
    assert isinstance(result, ProviderResult)
    assert result.outputs[0].data == MP4
    [media] = server.to("/media/op1-0.mp4")
    assert media.headers["host"].startswith("localhost:")
    assert "x-goog-api-key" not in media.headers


async def test_image_to_video_sends_the_image_inline(fake: tuple[FakeServer, VeoState]) -> None:
    server, state = fake
    image = png_data_url()
    request = request_from_params(type="video", operation="image_to_video", prompt=PROMPT,
                                  params={"image": image, "model": "veo-2.0-generate-001",
                                          "duration_s": 5, "sample_count": 2})
    veo = Veo()
    async with httpx.AsyncClient() as client:
        task = await veo.submit(request, creds(server), client)
        state.operations[task.task_id.split(";")[0]].progression = ["done"]
        result = await veo.poll(task, creds(server), client)
    [sent] = server.to("/v1beta/models/veo-2.0-generate-001:predictLongRunning")
    instance = sent.json()["instances"][0]
    assert instance == {"prompt": PROMPT, "image": {
        "bytesBase64Encoded": image.split(",", 1)[1], "mimeType": "image/png"}}
    assert sent.json()["parameters"]["sampleCount"] == 2
    assert isinstance(result, ProviderResult)
    assert len(result.outputs) == 2
    assert result.cost_usd_micros == 350_000 * 5 * 2


@pytest.mark.parametrize(("params", "operation", "param"), [
    ({"model": "veo-9"}, "text_to_video", "params.model"),
    ({"duration_s": 5}, "text_to_video", "params.duration_s"),
    ({"model": "veo-2.0-generate-001", "duration_s": 4}, "text_to_video", "params.duration_s"),
    ({"duration_s": True}, "text_to_video", "params.duration_s"),
    ({"model": "veo-2.0-generate-001", "resolution": "1080p"}, "text_to_video",
     "params.resolution"),
    ({"aspect_ratio": "1:1"}, "text_to_video", "params.aspect_ratio"),
    ({"sample_count": 2}, "text_to_video", "params.sample_count"),
    ({"model": "veo-2.0-generate-001", "sample_count": 3}, "text_to_video",
     "params.sample_count"),
    ({"person_generation": "everyone"}, "text_to_video", "params.person_generation"),
    ({"negative_prompt": "  "}, "text_to_video", "params.negative_prompt"),
    ({"seed": -1}, "text_to_video", "params.seed"),
    ({"seed": 2**32}, "text_to_video", "params.seed"),
    ({"image": "data:image/png;base64,AAAA"}, "text_to_video", "params.image"),
    ({}, "image_to_video", "params.image"),
    ({"image": "data:image/png;base64,bm90IGFuIGltYWdl"}, "image_to_video", "params.image"),
])
def test_bad_params_are_refused_before_pricing(params: dict[str, Any], operation: str,
                                               param: str) -> None:
    def validate() -> None:
        # As the gateway builds it (a malformed data: URL is refused there), then validated.
        Veo().validate(request_from_params(type="video", operation=operation, prompt=PROMPT,
                                           params=params))

    with pytest.raises(InvalidParams) as caught:
        validate()
    assert caught.value.param == param


def test_the_estimate_reads_the_instance_prices() -> None:
    veo = Veo()
    assert veo.estimate_cost(text_request()) == 400_000 * 8  # default model, 8 s
    assert veo.estimate_cost(text_request(model="veo-2.0-generate-001", duration_s=6,
                                          sample_count=2)) == 350_000 * 6 * 2
    veo.set_prices({"veo-3.0-generate-001": 100_000})
    assert veo.estimate_cost(text_request(duration_s=4)) == 400_000
    assert veo.pricing()["usd_micros_per_second"]["veo-3.0-generate-001"] == 100_000


RETRY_INFO = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]


@pytest.mark.parametrize(("status", "body", "headers", "code", "retryable", "retry_after"), [
    (400, google_error(400, "INVALID_ARGUMENT", "durationSeconds is out of range"), {},
     "invalid_input", False, None),
    (403, google_error(403, "PERMISSION_DENIED", "The caller does not have permission"), {},
     "auth", False, None),
    (429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", RETRY_INFO), {},
     "rate_limited", True, 37.0),
    (429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), {"retry-after": "5"},
     "rate_limited", True, 5.0),
    (500, google_error(500, "INTERNAL", "An internal error has occurred."), {},
     "server_error", True, None),
    (503, google_error(503, "UNAVAILABLE", "The model is overloaded."), {},
     "server_error", True, None),
    (504, google_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded"), {},
     "timeout", True, None),
])
async def test_submit_errors_are_classified(
        fake: tuple[FakeServer, VeoState], status: int, body: dict[str, Any],
        headers: dict[str, str], code: str, retryable: bool, retry_after: float | None) -> None:
    server, state = fake
    state.next_errors.append((status, body, headers))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await Veo().submit(text_request(), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.retry_after_s == retry_after
    assert body["error"]["message"] in caught.value.message


async def test_a_bad_key_is_an_auth_error_although_google_answers_400(
        fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    veo = Veo()
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await veo.submit(text_request(), creds(server, key="wrong"), client)
        health = await veo.health(creds(server, key="wrong"), client)
        good = await veo.health(creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("auth", False)
    assert not health.ok
    assert "API key not valid" in health.detail
    assert good.ok
    [check, _] = server.to("/v1beta/models/veo-3.0-generate-001")
    assert check.method == "GET"


async def test_a_missing_key_fails_before_any_call(fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await Veo().submit(text_request(), Credentials(base_url=server.url), client)
    assert caught.value.code == "auth"
    assert server.requests == []


@pytest.mark.parametrize(("step", "code", "retryable"), [
    (("error", 13, "INTERNAL", "Video generation failed."), "server_error", True),
    (("error", 3, "INVALID_ARGUMENT", "Unsupported image."), "invalid_input", False),
    (("error", 8, "RESOURCE_EXHAUSTED", "Quota exceeded."), "rate_limited", True),
    (("error", 1, "CANCELLED", "The operation was cancelled."), "canceled", False),
    ("filtered", "content_policy", False),
])
async def test_a_failed_operation_is_classified(fake: tuple[FakeServer, VeoState], step: Any,
                                                code: str, retryable: bool) -> None:
    server, state = fake
    state.progression = ["running", step]
    veo = Veo()
    async with httpx.AsyncClient() as client:
        task = await veo.submit(text_request(), creds(server), client)
        assert await veo.poll(task, creds(server), client) is None
        with pytest.raises(ProviderError) as caught:
            await veo.poll(task, creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    if step == "filtered":
        assert "Veo could not generate 1 videos" in caught.value.message
    assert server.to("/v1beta/files/op1-0:download") == []


async def test_poll_errors_and_timeouts_are_classified(
        fake: tuple[FakeServer, VeoState]) -> None:
    server, state = fake
    veo = Veo()
    async with httpx.AsyncClient() as client:
        task = await veo.submit(text_request(), creds(server), client)
        state.next_errors.append((503, google_error(503, "UNAVAILABLE", "overloaded"), {}))
        with pytest.raises(ProviderError) as caught:
            await veo.poll(task, creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("server_error", True)

    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(timing_out)) as client:
        with pytest.raises(ProviderError) as caught:
            await veo.poll(task, creds(server), client)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_cancel_calls_nothing_since_the_api_has_no_cancel(
        fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    veo = Veo()
    async with httpx.AsyncClient() as client:
        task = await veo.submit(text_request(), creds(server), client)
        before = len(server.requests)
        await veo.cancel(task, creds(server), client)
    assert len(server.requests) == before


async def test_veo_keeps_the_provider_contract(fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    async with httpx.AsyncClient() as client:
        result = await check_provider_contract(Veo(poll_after_s=0.01),
                                               text_request(duration_s=4),
                                               credentials=creds(server), client=client)
    assert result.outputs[0].data == MP4


# --- Through the gateway -----------------------------------------------------------------

async def _gateway_run(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                       server: FakeServer, body: dict[str, Any]) -> tuple[Any, ...]:
    monkeypatch.setenv("MEDIAHUB_VEO_API_KEY", KEY)
    monkeypatch.setenv("MEDIAHUB_VEO_BASE_URL", server.url)
    async with running_gateway(settings, blocked=["plugins.builtin.veo"],
                               extra=[ProvidersPlugin(Veo(poll_after_s=0.05))]) as gw:
        tenant = await gw.tenant(credits_mc=1_000_000)
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
        assert r.status_code in (200, 201, 202), r.text
        await gw.drain()
        done = (await gw.client.get(f"/v1/generations/{r.json()['id']}",
                                    headers=tenant.auth)).json()
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        fetched = None
        if done["outputs"]:
            fetched = await gw.media(done["outputs"][0]["url"])
        return done, balance, fetched


async def test_a_generation_end_to_end_through_the_gateway(
        settings: Settings, monkeypatch: pytest.MonkeyPatch,
        fake: tuple[FakeServer, VeoState]) -> None:
    server, _ = fake
    done, balance, fetched = await _gateway_run(settings, monkeypatch, server, {
        "type": "video", "prompt": PROMPT, "provider": "veo",
        "params": {"model": "veo-3.0-fast-generate-001", "duration_s": 4}})
    assert done["status"] == "succeeded", done
    assert (done["provider"], done["operation"]) == ("veo", "text_to_video")
    # $0.60 of video: 60,000 millicredits at cost, plus the platform's 30 % markup.
    assert done["cost"]["charged"] == done["cost"]["estimated"] == 78_000
    [output] = done["outputs"]
    assert (output["content_type"], output["bytes"], output["duration_s"]) == (
        "video/mp4", len(MP4), 4.0)
    assert fetched.status_code == 200
    assert fetched.content == MP4
    assert balance["available"] == 1_000_000 - 78_000
    assert balance["pending"] == 0
    [sent] = server.to("/v1beta/models/veo-3.0-fast-generate-001:predictLongRunning")
    assert sent.json()["parameters"]["durationSeconds"] == 4


async def test_a_filtered_video_fails_the_generation_and_releases_the_credits(
        settings: Settings, monkeypatch: pytest.MonkeyPatch,
        fake: tuple[FakeServer, VeoState]) -> None:
    server, state = fake
    state.progression = ["running", "filtered"]
    done, balance, _ = await _gateway_run(settings, monkeypatch, server, {
        "type": "video", "prompt": PROMPT, "provider": "veo"})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "content_policy"
    assert "safety filters" in done["error"]["message"]
    assert done["outputs"] == []
    assert (balance["available"], balance["pending"]) == (1_000_000, 0)
