"""The Kling provider against a fake of Kling's API: the JWT it signs (checked by an
independent implementation), what it sends, task states, every error code class, and
generations end to end through the gateway (success, and a content-policy refusal)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from PIL import Image

from plugins.builtin.kling import Kling, jwt_token
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest, ProviderResult, ProviderTask
from plugins.testing import check_provider_contract, request_from_params
from tests.conftest import Gateway, ProvidersPlugin, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import kling as fake

PROMPT = "a paper boat drifting down a rainy street"
NOW = 1_790_000_000.0


def jpeg_data_url() -> tuple[str, str]:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 320), (30, 90, 200)).save(buffer, format="JPEG")
    raw = base64.b64encode(buffer.getvalue()).decode()
    return "data:image/jpeg;base64," + raw, raw


IMAGE, IMAGE_B64 = jpeg_data_url()


def t2v(prompt: str = PROMPT, **params: Any) -> ProviderRequest:
    """As the gateway builds it: `image=`/`image_tail=` data: URLs become decoded inputs."""
    return request_from_params(type="video", operation="text_to_video", prompt=prompt,
                               params=params, idempotency_key="gen_0123")


def i2v(**params: Any) -> ProviderRequest:
    return request_from_params(type="video", operation="image_to_video", prompt=PROMPT,
                               params={"image": IMAGE, **params})


@pytest.fixture
def state() -> fake.State:
    return fake.State(clock=lambda: NOW)


@pytest.fixture
async def server(state: fake.State) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
def creds(server: FakeServer) -> Credentials:
    return Credentials(api_key=fake.ACCESS_KEY, api_secret=fake.SECRET_KEY,
                       base_url=server.url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def kling(**kwargs: Any) -> Kling:
    return Kling(clock=lambda: NOW, **kwargs)


async def until_done(provider: Kling, task: ProviderTask, creds: Credentials,
                     client: httpx.AsyncClient) -> tuple[ProviderResult, int]:
    for count in range(1, 11):
        result = await provider.poll(task, creds, client)
        if result is not None:
            return result, count
    raise AssertionError("the task never finished")


# --- The token -----------------------------------------------------------------------------


def test_the_token_is_an_hs256_jwt_an_independent_implementation_accepts() -> None:
    token = jwt_token(fake.ACCESS_KEY, fake.SECRET_KEY, now=NOW)
    decoded = jwt.decode(token, OctKey.import_key(fake.SECRET_KEY), algorithms=["HS256"])
    assert dict(decoded.header) == {"alg": "HS256", "typ": "JWT"}
    assert decoded.claims == {"iss": fake.ACCESS_KEY, "exp": int(NOW) + 1800,
                              "nbf": int(NOW) - 5}
    jwt.JWTClaimsRegistry(now=int(NOW), leeway=0, iss={"essential": True,
                                                       "value": fake.ACCESS_KEY}
                          ).validate(decoded.claims)
    # Signed with the secret: another key does not verify it.
    with pytest.raises(Exception, match="signature"):
        jwt.decode(token, OctKey.import_key("another-secret-key-of-enough-length"),
                   algorithms=["HS256"])


async def test_an_expired_or_early_token_is_refused_by_the_fake_as_kling_does(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await Kling(clock=lambda: NOW - 1801).submit(t2v(), creds, client)
    assert caught.value.code == "auth"
    assert "1004" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        await Kling(clock=lambda: NOW + 10).submit(t2v(), creds, client)
    assert "1003" in caught.value.message


# --- What the plugin sends, and how it reads a task -----------------------------------------


async def test_text_to_video_is_submitted_polled_and_charged(
        state: fake.State, server: FakeServer, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = kling(poll_after_s=0.5)
    request = t2v(model="kling-v1", mode="pro", duration=10, aspect_ratio="9:16",
                  negative_prompt="blur", cfg_scale=0.7)
    task = await provider.submit(request, creds, client)

    [sent] = server.to("/v1/videos/text2video")
    assert sent.json() == {"model_name": "kling-v1", "mode": "pro", "duration": "10",
                           "prompt": PROMPT, "negative_prompt": "blur", "cfg_scale": 0.7,
                           "aspect_ratio": "9:16", "external_task_id": "gen_0123"}
    assert sent.headers["authorization"] == \
        f"Bearer {jwt_token(fake.ACCESS_KEY, fake.SECRET_KEY, now=NOW)}"
    assert state.claims[-1]["iss"] == fake.ACCESS_KEY
    [kling_id] = state.tasks
    assert task.task_id == f"text2video:{kling_id}:980000"
    assert task.poll_after_s == 0.5

    result, polls = await until_done(provider, task, creds, client)
    assert polls == 3  # submitted, processing, succeed
    gets = server.to(f"/v1/videos/text2video/{kling_id}")
    assert [g.method for g in gets] == ["GET"] * 3
    [output] = result.outputs
    assert (output.url, output.data, output.duration_s) == (
        f"{server.url}/kcdn/{kling_id}.mp4", b"", 10.0)
    # kling-v1 pro: 3.5 units ($0.49) per 5 s, so 10 s is $0.98.
    assert result.cost_usd_micros == provider.estimate_cost(request) == 980_000


async def test_image_to_video_sends_bare_base64_and_polls_its_own_endpoint(
        state: fake.State, server: FakeServer, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    provider = kling()
    task = await provider.submit(i2v(image_tail=IMAGE, model="kling-v2-master"), creds,
                                 client)
    [sent] = server.to("/v1/videos/image2video")
    body = sent.json()
    assert body["image"] == body["image_tail"] == IMAGE_B64  # no data: prefix
    assert (body["model_name"], body["mode"], body["duration"]) == ("kling-v2-master", "std",
                                                                     "5")
    assert "aspect_ratio" not in body
    assert "external_task_id" not in body  # no idempotency key given
    [kling_id] = state.tasks
    result, _ = await until_done(provider, task, creds, client)
    assert server.to(f"/v1/videos/image2video/{kling_id}")
    assert result.cost_usd_micros == 1_400_000  # master: 10 units per 5 s


async def test_estimate_reads_the_instance_prices() -> None:
    provider = kling()
    provider.set_prices({"kling-v1-6_std": 200_000})
    assert provider.estimate_cost(t2v(duration="10")) == 400_000
    assert kling().estimate_cost(t2v(duration="10")) == 280_000


@pytest.mark.parametrize(("request_", "param"), [
    (t2v(model="kling-v9"), "params.model"),
    (t2v(mode="turbo"), "params.mode"),
    (t2v(duration="7"), "params.duration"),
    (t2v(duration=7), "params.duration"),
    (t2v(aspect_ratio="4:3"), "params.aspect_ratio"),
    (t2v(cfg_scale=1.5), "params.cfg_scale"),
    (t2v(model="kling-v2-master", cfg_scale=0.5), "params.cfg_scale"),
    (t2v(negative_prompt=3), "params.negative_prompt"),
    (t2v(prompt=""), "prompt"),
    (t2v(prompt="x" * 2501), "prompt"),
    (t2v(image=IMAGE), "params.image"),
    (ProviderRequest(type="video", operation="image_to_video", prompt=PROMPT), "params.image"),
    (i2v(image="data:image/webp;base64,UklGRg=="), "params.image"),
    (i2v(aspect_ratio="16:9"), "params.aspect_ratio"),
])
def test_bad_params_are_refused_before_pricing(request_: ProviderRequest, param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        kling().validate(request_)
    assert caught.value.param == param


@pytest.mark.parametrize(("params", "param"), [
    ({"image": "data:image/png;base64,@@@"}, "params.image"),
    ({"image_tail": "https://example.com/end.png"}, "params.image_tail"),
])
def test_malformed_inputs_are_refused_before_pricing(params: dict[str, Any],
                                                     param: str) -> None:
    # Refused where the gateway decodes inputs, before any provider sees the request.
    with pytest.raises(InvalidParams) as caught:
        kling().validate(i2v(**params))
    assert caught.value.param == param


# --- Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "code", "retryable", "retry_after"), [
    (fake.Reply(401, 1000, "Authentication failed"), "auth", False, None),
    (fake.Reply(403, 1103, "Unauthorized access to the requested resource"), "auth", False,
     None),
    (fake.Reply(429, 1101, "Account is in arrears"), "quota_exhausted", True, None),
    (fake.Reply(429, 1102, "Resource pack exhausted"), "quota_exhausted", True, None),
    (fake.Reply(400, 1201, "Invalid value for duration"), "invalid_input", False, None),
    (fake.Reply(404, 1203, "model not found"), "invalid_input", False, None),
    (fake.Reply(400, 1301, "Content security policy triggered"), "content_policy", False,
     None),
    (fake.Reply(429, 1302, "Rate limit exceeded", {"Retry-After": "3"}), "rate_limited",
     True, 3.0),
    (fake.Reply(429, 1303, "parallel task over resource pack limit"), "rate_limited", True,
     None),
    (fake.Reply(429, 1304, "IP whitelist policy"), "auth", False, None),
    (fake.Reply(500, 5000, "Server internal error"), "server_error", True, None),
    (fake.Reply(503, 5001, "Server temporarily unavailable"), "server_error", True, None),
    (fake.Reply(504, 5002, "Server timeout"), "timeout", True, None),
])
async def test_error_codes_are_classified(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient, reply: fake.Reply,
        code: str, retryable: bool, retry_after: float | None) -> None:
    state.errors.append(reply)
    with pytest.raises(ProviderError) as caught:
        await kling().submit(t2v(), creds, client)
    error = caught.value
    assert (error.code, error.retryable, error.retry_after_s) == (code, retryable,
                                                                   retry_after)
    assert f"code {reply.code}" in error.message
    assert reply.message in error.message


async def test_missing_credentials_are_an_auth_error_without_a_call(
        server: FakeServer, client: httpx.AsyncClient) -> None:
    for creds in (Credentials(api_key=fake.ACCESS_KEY, base_url=server.url),
                  Credentials(api_secret=fake.SECRET_KEY, base_url=server.url)):
        with pytest.raises(ProviderError) as caught:
            await kling().submit(t2v(), creds, client)
        assert caught.value.code == "auth"
    assert server.requests == []


async def test_a_wrong_secret_is_refused(server: FakeServer,
                                         client: httpx.AsyncClient) -> None:
    creds = Credentials(api_key=fake.ACCESS_KEY, api_secret="not-the-secret-key-at-all",
                        base_url=server.url)
    with pytest.raises(ProviderError) as caught:
        await kling().submit(t2v(), creds, client)
    assert caught.value.code == "auth"
    assert "1002" in caught.value.message


async def test_transport_failures_are_classified_and_the_real_host_is_the_default() -> None:
    seen: list[httpx.Request] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("slow")

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        with pytest.raises(ProviderError) as caught:
            await kling().submit(t2v(), Credentials(api_key="ak", api_secret="sk"), http)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert str(seen[0].url) == "https://api-singapore.klingai.com/v1/videos/text2video"


@pytest.mark.parametrize(("message", "code", "retryable"), [
    ("Failure to pass the risk control system", "content_policy", False),
    ("The content contains sensitive information", "content_policy", False),
    ("Internal error, please retry", "server_error", True),
])
async def test_failed_tasks_are_classified(
        state: fake.State, creds: Credentials, client: httpx.AsyncClient, message: str,
        code: str, retryable: bool) -> None:
    state.progression = ["submitted", "failed"]
    state.failure = message
    provider = kling()
    task = await provider.submit(t2v(), creds, client)
    assert await provider.poll(task, creds, client) is None
    with pytest.raises(ProviderError) as caught:
        await provider.poll(task, creds, client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert message in caught.value.message


async def test_health_lists_a_task_with_a_valid_token(
        server: FakeServer, creds: Credentials, client: httpx.AsyncClient) -> None:
    assert (await kling().health(creds, client)).ok is True
    assert server.requests[-1].path == "/v1/videos/text2video"
    assert server.requests[-1].query == {"pageNum": ["1"], "pageSize": ["1"]}
    wrong = Credentials(api_key="ak-other", api_secret=fake.SECRET_KEY, base_url=server.url)
    health = await kling().health(wrong, client)
    assert health.ok is False
    assert "code 1002" in health.detail


async def test_kling_keeps_the_provider_contract(creds: Credentials,
                                                 client: httpx.AsyncClient) -> None:
    provider = kling(poll_after_s=0.01)
    result = await check_provider_contract(provider, t2v(), credentials=creds, client=client)
    assert result.cost_usd_micros == 140_000
    await check_provider_contract(provider, i2v(), credentials=creds, client=client)


# --- End to end through the gateway ---------------------------------------------------------


def kling_gateway(database_url: str, tmp_path: Path, server: FakeServer,
                  monkeypatch: pytest.MonkeyPatch) -> AbstractAsyncContextManager[Gateway]:
    monkeypatch.setenv("MEDIAHUB_KLING_API_KEY", fake.ACCESS_KEY)
    monkeypatch.setenv("MEDIAHUB_KLING_API_SECRET", fake.SECRET_KEY)
    monkeypatch.setenv("MEDIAHUB_KLING_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    return running_gateway(settings, blocked=["plugins.builtin.kling"],
                           extra=[ProvidersPlugin(kling(poll_after_s=0.05))])


async def generation(gw: Gateway, auth: dict[str, str], gen_id: str) -> dict[str, Any]:
    r = await gw.client.get(f"/v1/generations/{gen_id}", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_video_is_generated_end_to_end(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with kling_gateway(database_url, tmp_path, server, monkeypatch) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "video", "operation": "text_to_video", "prompt": PROMPT,
            "params": {"mode": "pro"}, "provider": "kling"})
        assert r.status_code in (200, 202), r.text
        gen_id = r.json()["id"]
        await gw.drain()
        done = await generation(gw, tenant.auth, gen_id)
        assert done["status"] == "succeeded", done
        assert done["cost"]["charged"] == done["cost"]["estimated"] > 0
        [output] = done["outputs"]
        assert output["content_type"] == "video/mp4"
        fetched = await gw.media(output["url"])
        assert fetched.content == fake.VIDEO

        [sent] = server.to("/v1/videos/text2video")
        assert sent.json()["external_task_id"] == gen_id  # the generation id
        assert sent.json()["mode"] == "pro"
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["available"] == 1_000_000 - done["cost"]["charged"]
        assert balance["pending"] == 0


async def test_a_refused_prompt_fails_with_content_policy_and_costs_nothing(
        database_url: str, tmp_path: Path, server: FakeServer, state: fake.State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    state.errors.append(fake.Reply(400, 1301, "Content security policy triggered"))
    async with kling_gateway(database_url, tmp_path, server, monkeypatch) as gw:
        tenant = await gw.tenant()
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "video", "operation": "text_to_video", "prompt": PROMPT,
            "provider": "kling"})
        gen_id = r.json()["id"]
        await gw.drain()
        done = await generation(gw, tenant.auth, gen_id)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "content_policy"
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (1_000_000, 0)
        assert state.tasks == {}


async def test_duration_s_is_klings_duration(
        state: fake.State, server: FakeServer, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    # Before, `duration_s` was ignored: Kling made (and the gateway billed) its 5 s default.
    provider = kling()
    assert provider.estimate_cost(t2v(duration_s=10)) == 2 * provider.estimate_cost(t2v())
    await provider.submit(t2v(duration_s=10), creds, client)
    [sent] = server.to("/v1/videos/text2video")
    assert sent.json()["duration"] == "10"
