"""The Runway provider against a fake of Runway's API: what it sends, how it reads tasks
through every state, how each error class is classified, and generations end to end
through the gateway (success, and a content-policy failure that gives the money back)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from plugins.builtin.runway import Runway
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import (
    Credentials,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
    check_params,
)
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, ProvidersPlugin, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import runway as fake

PROMPT = "the lighthouse beam sweeps across the dark sea"


def png_data_url(width: int = 64, height: int = 48) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


IMAGE = png_data_url()


def i2v(**params: Any) -> ProviderRequest:
    """As the gateway builds it: an `image=` data: URL becomes the decoded input."""
    return request_from_params(type="video", operation="image_to_video", prompt=PROMPT,
                               params={"image": IMAGE, **params})


def t2v(prompt: str = PROMPT, **params: Any) -> ProviderRequest:
    return request_from_params(type="video", operation="text_to_video", prompt=prompt,
                               params=params)


@pytest.fixture
def state() -> fake.State:
    return fake.State()


@pytest.fixture
async def server(state: fake.State) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
def creds(server: FakeServer) -> Credentials:
    return Credentials(api_key=fake.API_KEY, base_url=server.url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def poll_until_done(provider: Runway, task: ProviderTask, creds: Credentials,
                          client: httpx.AsyncClient, *, max_polls: int = 10,
                          ) -> tuple[ProviderResult, int]:
    for count in range(1, max_polls + 1):
        result = await provider.poll(task, creds, client)
        if result is not None:
            return result, count
    raise AssertionError("the task never finished")


# --- What the plugin sends, and how it reads a task ----------------------------------------


async def test_image_to_video_is_submitted_polled_and_charged(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    provider = Runway(poll_after_s=0.25)
    request = i2v(duration=10, ratio="720:1280", seed=42)
    task = await provider.submit(request, creds, client)

    [sent] = server.to("/v1/image_to_video")
    assert sent.method == "POST"
    assert sent.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert sent.headers["x-runway-version"] == "2024-11-06"
    assert sent.json() == {"model": "gen4_turbo", "ratio": "720:1280", "duration": 10,
                           "promptText": PROMPT, "promptImage": IMAGE, "seed": 42}
    assert task.poll_after_s == 0.25

    result, polls = await poll_until_done(provider, task, creds, client)
    assert polls == 3  # PENDING, RUNNING, then SUCCEEDED
    runway_id = next(iter(server_state_ids(server)))
    gets = server.to(f"/v1/tasks/{runway_id}")
    assert [g.method for g in gets] == ["GET"] * 3
    assert all(g.headers["authorization"] == f"Bearer {fake.API_KEY}" for g in gets)
    [output] = result.outputs
    assert output.data == b""
    assert output.url == f"{server.url}/outputs/{runway_id}.mp4?_jwt=signed"
    # 10 s of gen4_turbo at 5 credits ($0.05) a second.
    assert result.cost_usd_micros == provider.estimate_cost(request) == 500_000


def server_state_ids(server: FakeServer) -> list[str]:
    """Runway task ids the fake handed out, from the GETs the plugin made."""
    return sorted({r.path.rsplit("/", 1)[1] for r in server.requests
                   if r.path.startswith("/v1/tasks/")})


async def test_text_to_video_sends_the_model_and_prices_audio(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    provider = Runway()
    request = t2v(model="veo3.1", duration=6, ratio="1080:1920", audio=True)
    task = await provider.submit(request, creds, client)
    [sent] = server.to("/v1/text_to_video")
    assert sent.json() == {"model": "veo3.1", "ratio": "1080:1920", "duration": 6,
                           "promptText": PROMPT, "audio": True}
    result, _ = await poll_until_done(provider, task, creds, client)
    assert result.cost_usd_micros == 6 * 400_000  # 40 credits a second with audio
    assert provider.estimate_cost(t2v(model="veo3.1", duration=6)) == 6 * 200_000
    # The default text-to-video model is gen4.5 (12 credits a second), 5 s, 1280:720.
    assert provider.estimate_cost(t2v()) == 5 * 120_000


async def test_a_throttled_task_is_still_running(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient) -> None:
    state.progression = ["THROTTLED", "THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"]
    provider = Runway()
    task = await provider.submit(i2v(), creds, client)
    result, polls = await poll_until_done(provider, task, creds, client)
    assert polls == 5
    assert result.cost_usd_micros == 5 * 50_000


async def test_estimate_reads_the_instance_prices() -> None:
    provider = Runway()
    provider.set_prices({"gen4_turbo": 70_000})
    assert provider.estimate_cost(i2v(duration=4)) == 280_000
    assert Runway().estimate_cost(i2v(duration=4)) == 200_000


@pytest.mark.parametrize(("request_", "param"), [
    (i2v(model="gen3a_turbo"), "params.model"),
    (t2v(model="gen4_turbo"), "params.model"),  # image-to-video only
    (i2v(ratio="1920:1080"), "params.ratio"),  # not a gen4_turbo ratio
    (t2v(ratio="960:960"), "params.ratio"),  # gen4.5 text-to-video: 16:9 or 9:16 only
    (i2v(duration=11), "params.duration"),
    (i2v(duration="5"), "params.duration"),
    (t2v(model="veo3.1", duration=5), "params.duration"),
    (t2v(model="veo3", duration=6), "params.duration"),
    (i2v(seed=-1), "params.seed"),
    (i2v(seed=True), "params.seed"),
    (t2v(model="veo3.1", seed=1), "params.seed"),
    (t2v(model="veo3.1", audio="yes"), "params.audio"),
    (i2v(audio=True), "params.audio"),
    (ProviderRequest(type="video", operation="image_to_video", prompt=PROMPT), "params.image"),
    (i2v(image="data:image/gif;base64,R0lGODlhAQABAAAAACw="), "params.image"),
    (i2v(image="data:image/png;base64,bm90IGFuIGltYWdl"), "params.image"),
    (i2v(image="data:image/png;base64," + "A" * (5 * 1024 * 1024)), "params.image"),
    (t2v(image=IMAGE), "params.image"),
    (t2v(prompt=" "), "prompt"),
    (request_from_params(type="video", operation="image_to_video", prompt="",
                         params={"image": IMAGE, "model": "gen4.5"}), "prompt"),
    (t2v(prompt="x" * 1001), "prompt"),
])
def test_bad_params_are_refused_before_pricing(request_: ProviderRequest, param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        Runway().validate(request_)
    assert caught.value.param == param


def test_an_image_that_is_not_a_data_url_is_refused_before_pricing() -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        Runway().validate(i2v(image="https://example.com/a.png"))
    assert caught.value.param == "params.image"


# --- Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "code", "retryable", "retry_after", "text"), [
    (fake.Reply(400, {"error": "Validation of body failed",
                      "issues": [{"code": "invalid_enum_value", "path": ["ratio"],
                                  "message": "Invalid enum value"}],
                      "docUrl": fake.DOC_URL}),
     "invalid_input", False, None, "ratio: Invalid enum value"),
    (fake.Reply(400, {"error": "You do not have enough credits to run this task."}),
     "quota_exhausted", True, None, "enough credits"),
    (fake.Reply(401, {"error": "Invalid API key"}), "auth", False, None, "Invalid API key"),
    (fake.Reply(429, {"error": "You have exceeded your daily generation limit"},
                {"Retry-After": "7"}), "rate_limited", True, 7.0, "daily generation"),
    (fake.Reply(500, {"error": "Internal server error"}), "server_error", True, None,
     "Internal"),
    (fake.Reply(503, {"error": "Service unavailable"}), "server_error", True, None,
     "unavailable"),
    (fake.Reply(504, {"error": "Gateway timeout"}), "timeout", True, None, "Gateway"),
])
async def test_submit_errors_are_classified(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient, reply: fake.Reply,
        code: str, retryable: bool, retry_after: float | None, text: str) -> None:
    state.errors.append(reply)
    with pytest.raises(ProviderError) as caught:
        await Runway().submit(i2v(), creds, client)
    error = caught.value
    assert (error.code, error.retryable, error.retry_after_s) == (code, retryable,
                                                                   retry_after)
    assert text in error.message


async def test_a_wrong_key_is_an_auth_error_from_the_real_check(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Runway().submit(i2v(), Credentials(api_key="key_wrong", base_url=server.url),
                              client)
    assert caught.value.code == "auth"
    assert server.requests[-1].headers["authorization"] == "Bearer key_wrong"


async def test_no_key_is_an_auth_error_without_a_call(server: FakeServer,
                                                      client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Runway().submit(i2v(), Credentials(base_url=server.url), client)
    assert caught.value.code == "auth"
    assert server.requests == []


@pytest.mark.parametrize(("exc", "code"), [
    (httpx.ReadTimeout("slow"), "timeout"),
    (httpx.ConnectError("refused"), "network_error"),
])
async def test_transport_failures_are_classified(exc: Exception, code: str) -> None:
    seen: list[httpx.Request] = []

    def failing(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise exc

    async with httpx.AsyncClient(transport=httpx.MockTransport(failing)) as http:
        with pytest.raises(ProviderError) as caught:
            await Runway().submit(i2v(), Credentials(api_key="k"), http)
    assert (caught.value.code, caught.value.retryable) == (code, True)
    # The real public base URL when none is configured.
    assert str(seen[0].url) == "https://api.dev.runwayml.com/v1/image_to_video"
    assert seen[0].extensions["timeout"]["read"] == 30.0


@pytest.mark.parametrize(("failure_code", "code", "retryable"), [
    ("SAFETY.INPUT.TEXT", "content_policy", False),
    ("SAFETY.OUTPUT.VIDEO", "content_policy", False),
    ("INTERNAL.BAD_OUTPUT.CODE01", "server_error", True),
    ("INTERNAL", "server_error", True),
    ("ASSET.INVALID", "invalid_input", False),
    ("INPUT_PREPROCESSING.SAFETY.TEXT", "invalid_input", False),
])
async def test_task_failures_are_classified(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient,
        failure_code: str, code: str, retryable: bool) -> None:
    state.progression = ["PENDING", "FAILED"]
    state.failure_code = failure_code
    state.failure = "The generation was rejected."
    provider = Runway()
    task = await provider.submit(i2v(), creds, client)
    assert await provider.poll(task, creds, client) is None
    with pytest.raises(ProviderError) as caught:
        await provider.poll(task, creds, client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert failure_code in caught.value.message


async def test_cancel_deletes_the_task_and_a_cancelled_task_fails(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    provider = Runway()
    task = await provider.submit(i2v(), creds, client)
    assert await provider.poll(task, creds, client) is None  # PENDING
    await provider.cancel(task, creds, client)
    [runway_id] = server_state_ids(server)
    deleted = [r for r in server.to(f"/v1/tasks/{runway_id}") if r.method == "DELETE"]
    assert len(deleted) == 1
    assert deleted[0].headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert deleted[0].headers["x-runway-version"] == "2024-11-06"
    with pytest.raises(ProviderError) as caught:
        await provider.poll(task, creds, client)
    assert (caught.value.code, caught.value.retryable) == ("provider_canceled", False)
    await provider.cancel(task, creds, client)  # finished: deleted
    await provider.cancel(task, creds, client)  # gone (404): nothing to do


async def test_health_reads_the_organization(
        state: fake.State, server: FakeServer, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = Runway()
    health = await provider.health(creds, client)
    assert (health.ok, health.detail) == (True, "5000 credits left")
    assert server.requests[-1].path == "/v1/organization"
    assert server.requests[-1].headers["x-runway-version"] == "2024-11-06"
    state.credit_balance = 0
    assert (await provider.health(creds, client)).ok is False
    bad = await provider.health(Credentials(api_key="key_bad", base_url=server.url), client)
    assert bad.ok is False
    assert "Invalid API key" in bad.detail
    assert (await provider.health(Credentials(base_url=server.url), client)).ok is False


async def test_runway_keeps_the_provider_contract(creds: Credentials,
                                                  client: httpx.AsyncClient) -> None:
    provider = Runway(poll_after_s=0.01)
    result = await check_provider_contract(provider, i2v(), credentials=creds, client=client)
    assert result.outputs[0].url is not None
    result = await check_provider_contract(provider, t2v(), credentials=creds, client=client)
    assert result.cost_usd_micros == 600_000


# --- End to end through the gateway ---------------------------------------------------------


def runway_gateway(database_url: str, tmp_path: Path, server: FakeServer,
                   monkeypatch: pytest.MonkeyPatch) -> AbstractAsyncContextManager[Gateway]:
    monkeypatch.setenv("MEDIAHUB_RUNWAY_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_RUNWAY_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    return running_gateway(settings, blocked=["plugins.builtin.runway"],
                           extra=[ProvidersPlugin(Runway(poll_after_s=0.05))])


async def generation(gw: Gateway, auth: dict[str, str], gen_id: str) -> dict[str, Any]:
    r = await gw.client.get(f"/v1/generations/{gen_id}", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_video_is_generated_end_to_end(
        database_url: str, tmp_path: Path, server: FakeServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with runway_gateway(database_url, tmp_path, server, monkeypatch) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "video", "operation": "image_to_video", "prompt": PROMPT,
            "params": {"image": IMAGE, "duration": 4}, "provider": "runway"})
        assert r.status_code in (200, 202), r.text
        gen_id = r.json()["id"]
        await gw.drain()
        done = await generation(gw, tenant.auth, gen_id)
        assert done["status"] == "succeeded", done
        assert done["provider"] == "runway"
        assert done["cost"]["charged"] == done["cost"]["estimated"] > 0
        [output] = done["outputs"]
        assert output["content_type"] == "video/mp4"
        fetched = await gw.media(output["url"])
        assert fetched.status_code == 200
        assert fetched.content == fake.VIDEO

        [sent] = server.to("/v1/image_to_video")
        assert sent.json()["duration"] == 4
        assert sent.json()["promptImage"] == IMAGE
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["available"] == 1_000_000 - done["cost"]["charged"]
        assert balance["pending"] == 0


async def test_a_refused_video_fails_with_content_policy_and_costs_nothing(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    state.progression = ["RUNNING", "FAILED"]
    state.failure_code = "SAFETY.INPUT.TEXT"
    state.failure = "The prompt was flagged by content moderation."
    async with runway_gateway(database_url, tmp_path, server, monkeypatch) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "video", "operation": "text_to_video", "prompt": PROMPT,
            "provider": "runway"})
        assert r.status_code in (200, 202), r.text
        gen_id = r.json()["id"]
        await gw.drain()
        done = await generation(gw, tenant.auth, gen_id)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "content_policy"
        assert done["outputs"] == []
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (1_000_000, 0)
        assert len(server.to("/v1/text_to_video")) == 1  # final: not retried elsewhere


# --- The shared vocabulary (issue 12) -------------------------------------------------------


async def test_duration_s_is_runways_duration(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    # Before, `duration_s` was ignored: Runway made (and the gateway billed) its 5 s default.
    provider = Runway(poll_after_s=0.25)
    request = i2v(duration_s=10, ratio="720:1280")
    assert provider.estimate_cost(request) == 2 * provider.estimate_cost(i2v(ratio="720:1280"))
    await provider.submit(request, creds, client)
    [sent] = server.to("/v1/image_to_video")
    assert sent.json()["duration"] == 10


def test_duration_s_and_duration_together_are_refused() -> None:
    with pytest.raises(InvalidParams) as caught:
        Runway().estimate_cost(i2v(duration_s=10, duration=5))
    assert caught.value.param == "params.duration"


def test_runway_declares_what_it_reads() -> None:
    # A name Runway does not read is refused before pricing (the gateway's 422
    # unknown_param); `params.image` (the decoded input) and the shared names pass.
    check_params(Runway(), i2v(duration_s=4, seed=1))
    with pytest.raises(InvalidParams) as caught:
        check_params(Runway(), i2v(aspect_ratio="16:9"))
    assert (caught.value.param, caught.value.code) == ("params.aspect_ratio", "unknown_param")
