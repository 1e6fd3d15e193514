"""Canva Connect against its fake: the two stages (autofill, then export) and what the plugin
sends in each, every error class, and designs end to end through the gateway."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from plugins.builtin.canva import Canva
from plugins.errors import InvalidParams, ProviderError
from plugins.media import MediaInput
from plugins.provider import Credentials, ProviderRequest, ProviderResult, ProviderTask
from plugins.testing import check_provider_contract
from tests.conftest import ProvidersPlugin, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import canva as fake_canva
from tests.fakes.canva import PDF, CanvaState, canva_error

TOKEN = "test-canva-token"
PROMPT = "Spring sale: 20% off everything"
TEMPLATE = "DAFVztcvd9z"


def design_request(**params: Any) -> ProviderRequest:
    return ProviderRequest(type="design", operation="design_autofill", prompt=PROMPT,
                           params={"brand_template_id": TEMPLATE, **params})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeServer, CanvaState]]:
    state = CanvaState(token=TOKEN)
    async with serve(fake_canva.app(state)) as server:
        yield server, state


def creds(server: FakeServer, token: str = TOKEN) -> Credentials:
    return Credentials(api_key=token, base_url=server.url)


async def test_autofill_then_export_through_every_stage(
        fake: tuple[FakeServer, CanvaState]) -> None:
    server, state = fake
    state.pages = 2
    canva = Canva(poll_after_s=0.01)
    request = design_request(data={"headline": "Spring sale",
                                   "hero": {"type": "image", "asset_id": "Msd59349ff"}})
    async with httpx.AsyncClient() as client:
        task = await canva.submit(request, creds(server), client)
        assert task == ProviderTask(task_id="autofill:af-1:png", poll_after_s=0.01)
        [sent] = server.to("/v1/autofills")
        assert sent.method == "POST"
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"
        assert sent.json() == {
            "brand_template_id": TEMPLATE, "title": PROMPT,
            "data": {"headline": {"type": "text", "text": "Spring sale"},
                     "hero": {"type": "image", "asset_id": "Msd59349ff"}}}

        assert await canva.poll(task, creds(server), client) is None  # autofill running
        assert server.to("/v1/exports") == []
        export_task = await canva.poll(task, creds(server), client)  # autofill done
        assert export_task == ProviderTask(task_id="export:ex-2:png", poll_after_s=0.01)
        [export] = server.to("/v1/exports")
        assert export.headers["authorization"] == f"Bearer {TOKEN}"
        assert export.json() == {"design_id": "DAFaf1", "format": {"type": "png"}}

        assert await canva.poll(export_task, creds(server), client) is None  # export running
        result = await canva.poll(export_task, creds(server), client)

    assert isinstance(result, ProviderResult)
    assert [(o.url, o.data, o.content_type) for o in result.outputs] == [
        (f"{server.url}/exports/ex-2/{page}.png?X-Amz-Signature=abc", b"", "image/png")
        for page in (1, 2)]
    assert result.cost_usd_micros == 20_000
    assert [r.path for r in server.requests] == [
        "/v1/autofills", "/v1/autofills/af-1", "/v1/autofills/af-1", "/v1/exports",
        "/v1/exports/ex-2", "/v1/exports/ex-2"]


async def test_the_prompt_fills_the_named_field(fake: tuple[FakeServer, CanvaState]) -> None:
    server, _ = fake
    async with httpx.AsyncClient() as client:
        await Canva().submit(design_request(prompt_field="headline",
                                            data={"subline": "Today only"}),
                             creds(server), client)
    [sent] = server.to("/v1/autofills")
    assert sent.json() == {"brand_template_id": TEMPLATE, "data": {
        "subline": {"type": "text", "text": "Today only"},
        "headline": {"type": "text", "text": PROMPT}}}  # no title: the template's is kept


@pytest.mark.parametrize(("params", "task_format", "sent_format"), [
    ({"format": "pdf"}, "pdf", {"type": "pdf"}),
    ({"format": "jpg"}, "jpg-90", {"type": "jpg", "quality": 90}),
    ({"format": "jpg", "quality": 70}, "jpg-70", {"type": "jpg", "quality": 70}),
    ({"format": "mp4"}, "mp4-horizontal_1080p", {"type": "mp4", "quality": "horizontal_1080p"}),
    ({"format": "mp4", "quality": "vertical_720p"}, "mp4-vertical_720p",
     {"type": "mp4", "quality": "vertical_720p"}),
    # The shared name (it used to be ignored, and a PNG made).
    ({"output_format": "pdf"}, "pdf", {"type": "pdf"}),
])
async def test_the_export_format_reaches_the_export_request(
        fake: tuple[FakeServer, CanvaState], params: dict[str, Any], task_format: str,
        sent_format: dict[str, Any]) -> None:
    server, state = fake
    state.autofill_steps = ["success"]
    canva = Canva()
    async with httpx.AsyncClient() as client:
        task = await canva.submit(design_request(data={"headline": "x"}, **params),
                                  creds(server), client)
        assert task.task_id == f"autofill:af-1:{task_format}"
        export_task = await canva.poll(task, creds(server), client)
    assert isinstance(export_task, ProviderTask)
    assert export_task.task_id == f"export:ex-2:{task_format}"
    [export] = server.to("/v1/exports")
    assert export.json()["format"] == sent_format


@pytest.mark.parametrize(("params", "param"), [
    ({"brand_template_id": None}, "params.brand_template_id"),
    ({"brand_template_id": "has spaces"}, "params.brand_template_id"),
    ({"data": "headline"}, "params.data"),
    ({"data": {}}, "params.data"),
    ({"data": {"headline": 3}}, "params.data.headline"),
    ({"data": {"hero": {"type": "image"}}}, "params.data.hero"),
    ({"data": {"hero": {"type": "video", "asset_id": "Msd59349ff"}}}, "params.data.hero"),
    ({"data": {"chart": {"type": "chart", "chart_data": {}}}}, "params.data.chart"),
    ({"data": {"headline": "x"}, "prompt_field": "headline"}, "params.prompt_field"),
    ({"data": {"headline": "x"}, "prompt_field": ""}, "params.prompt_field"),
    ({"data": {"headline": "x"}, "format": "gif"}, "params.format"),
    ({"data": {"headline": "x"}, "format": "jpg", "quality": 0}, "params.quality"),
    ({"data": {"headline": "x"}, "format": "mp4", "quality": "square_1080p"},
     "params.quality"),
    ({"data": {"headline": "x"}, "format": "png", "quality": 80}, "params.quality"),
    ({"data": {"headline": "x"}, "title": ""}, "params.title"),
    ({"data": {"headline": "x"}, "title": "t" * 256}, "params.title"),
])
def test_bad_params_are_refused_before_pricing(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        Canva().validate(design_request(**params))
    assert caught.value.param == param


def test_the_fee_is_the_operators_and_overridable() -> None:
    canva = Canva()
    request = design_request(data={"headline": "x"})
    assert canva.estimate_cost(request) == 20_000
    canva.set_prices({"autofill_export": 5_000})
    assert canva.estimate_cost(request) == 5_000
    assert canva.pricing()["usd_micros_per_design"] == 5_000


@pytest.mark.parametrize(("status", "body", "headers", "code", "retryable", "retry_after"), [
    (401, canva_error("invalid_access_token", "Access token is invalid"), {}, "auth", False,
     None),
    (401, canva_error("revoked_access_token", "Access token has been revoked"), {}, "auth",
     False, None),
    (403, canva_error("permission_denied", "Brand templates need Canva Enterprise"), {},
     "auth", False, None),
    (403, canva_error("missing_scope", "Missing scope design:content:write"), {}, "auth",
     False, None),
    (404, canva_error("not_found", "Brand template DAFVztcvd9z not found"), {},
     "invalid_input", False, None),
    (400, canva_error("invalid_field", "Field 'headline' is not in the dataset"), {},
     "invalid_input", False, None),
    (429, canva_error("too_many_requests", "Rate limit exceeded"), {"retry-after": "3"},
     "rate_limited", True, 3.0),
    (403, canva_error("quota_exceeded", "Autofill quota exceeded"), {}, "quota_exhausted",
     True, None),
    (500, canva_error("internal_error", "Something went wrong"), {}, "server_error", True,
     None),
])
async def test_api_errors_are_classified(
        fake: tuple[FakeServer, CanvaState], status: int, body: dict[str, str],
        headers: dict[str, str], code: str, retryable: bool, retry_after: float | None) -> None:
    server, state = fake
    state.next_errors.append((status, body, headers))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await Canva().submit(design_request(data={"headline": "x"}), creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.retry_after_s == retry_after
    assert body["message"] in caught.value.message


@pytest.mark.parametrize(("failure", "code", "retryable"), [
    (("failed", "internal_failure", "The service encountered an error exporting."),
     "server_error", True),
    (("failed", "license_required", "The design contains premium elements."),
     "invalid_input", False),
])
async def test_a_failed_export_fails_after_every_earlier_stage(
        fake: tuple[FakeServer, CanvaState], failure: tuple[str, str, str], code: str,
        retryable: bool) -> None:
    server, state = fake
    state.export_steps = ["in_progress", failure]
    canva = Canva()
    async with httpx.AsyncClient() as client:
        task = await canva.submit(design_request(data={"headline": "x"}), creds(server),
                                  client)
        assert await canva.poll(task, creds(server), client) is None
        export_task = await canva.poll(task, creds(server), client)
        assert isinstance(export_task, ProviderTask)
        assert await canva.poll(export_task, creds(server), client) is None
        with pytest.raises(ProviderError) as caught:
            await canva.poll(export_task, creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert failure[2] in caught.value.message


@pytest.mark.parametrize(("failure", "code", "retryable"), [
    (("failed", "autofill_error", "Error autofilling design from brand template"),
     "invalid_input", False),
    (("failed", "create_design_error", "Error creating the design"), "server_error", True),
])
async def test_a_failed_autofill_never_exports(fake: tuple[FakeServer, CanvaState],
                                               failure: tuple[str, str, str], code: str,
                                               retryable: bool) -> None:
    server, state = fake
    state.autofill_steps = [failure]
    canva = Canva()
    async with httpx.AsyncClient() as client:
        task = await canva.submit(design_request(data={"headline": "x"}), creds(server),
                                  client)
        with pytest.raises(ProviderError) as caught:
            await canva.poll(task, creds(server), client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert server.to("/v1/exports") == []


async def test_a_timeout_is_classified() -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(timing_out)) as client:
        with pytest.raises(ProviderError) as caught:
            await Canva().poll(ProviderTask(task_id="export:ex-1:png"),
                               Credentials(api_key=TOKEN), client)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_health_reads_the_current_user_and_cancel_calls_nothing(
        fake: tuple[FakeServer, CanvaState]) -> None:
    server, _ = fake
    canva = Canva()
    async with httpx.AsyncClient() as client:
        good = await canva.health(creds(server), client)
        bad = await canva.health(creds(server, token="expired"), client)
        await canva.cancel(ProviderTask(task_id="autofill:af-9:png"), creds(server), client)
    assert good.ok
    assert not bad.ok
    assert "Access token is invalid" in bad.detail
    assert [(r.method, r.path, r.headers["authorization"]) for r in server.requests] == [
        ("GET", "/v1/users/me", f"Bearer {TOKEN}"), ("GET", "/v1/users/me", "Bearer expired")]


async def test_canva_keeps_the_provider_contract(fake: tuple[FakeServer, CanvaState]) -> None:
    server, _ = fake
    async with httpx.AsyncClient() as client:
        result = await check_provider_contract(
            Canva(poll_after_s=0.01), design_request(data={"headline": "x"}, format="pdf"),
            credentials=creds(server), client=client)
    assert [(o.data, o.content_type) for o in result.outputs] == [(PDF, "application/pdf")]
    download = server.to("/exports/ex-2/1.pdf")[0]
    assert "authorization" not in download.headers  # presigned: the token is not sent


# --- Through the gateway -----------------------------------------------------------------

async def _gateway_run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       server: FakeServer, params: dict[str, Any]) -> tuple[Any, ...]:
    monkeypatch.setenv("MEDIAHUB_CANVA_API_KEY", TOKEN)
    monkeypatch.setenv("MEDIAHUB_CANVA_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings, blocked=["plugins.builtin.canva"],
                               extra=[ProvidersPlugin(Canva(poll_after_s=0.05))]) as gw:
        tenant = await gw.tenant(credits_mc=100_000)
        r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
            "type": "design", "prompt": PROMPT, "provider": "canva",
            "params": {"brand_template_id": TEMPLATE, **params}})
        assert r.status_code in (200, 201, 202), r.text
        await gw.drain()
        done = (await gw.client.get(f"/v1/generations/{r.json()['id']}",
                                    headers=tenant.auth)).json()
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        fetched = []
        for output in done["outputs"]:
            fetched.append(await gw.media(output["url"]))
        return done, balance, fetched


async def test_a_design_end_to_end_through_the_gateway(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake: tuple[FakeServer, CanvaState]) -> None:
    server, state = fake
    state.pages = 2
    done, balance, fetched = await _gateway_run(database_url, tmp_path, monkeypatch, server,
                                                {"prompt_field": "headline"})
    assert done["status"] == "succeeded", done
    assert (done["provider"], done["operation"]) == ("canva", "design_autofill")
    # $0.02: 2,000 millicredits at cost, plus the platform's 30 % markup.
    assert done["cost"]["charged"] == done["cost"]["estimated"] == 2_600
    assert [o["content_type"] for o in done["outputs"]] == ["image/png", "image/png"]
    for page, response in enumerate(fetched, start=1):
        assert response.status_code == 200
        with Image.open(io.BytesIO(response.content)) as image:
            assert (image.format, image.size) == ("PNG", (48, 32))
            assert image.getpixel((0, 0)) == (page * 40, 80, 120)
    assert (balance["available"], balance["pending"]) == (100_000 - 2_600, 0)
    # Both stages ran: the export was asked for the design the autofill made.
    [autofill] = server.to("/v1/autofills")
    assert autofill.json()["data"] == {"headline": {"type": "text", "text": PROMPT}}
    [export] = server.to("/v1/exports")
    assert export.json() == {"design_id": "DAFaf1", "format": {"type": "png"}}


async def test_a_failed_export_fails_the_generation_and_releases_the_credits(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake: tuple[FakeServer, CanvaState]) -> None:
    server, state = fake
    state.export_steps = ["in_progress", ("failed", "license_required",
                                          "The design contains premium elements.")]
    done, balance, _ = await _gateway_run(database_url, tmp_path, monkeypatch, server,
                                          {"data": {"headline": "x"}})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "invalid_input"
    assert "premium elements" in done["error"]["message"]
    assert (balance["available"], balance["pending"]) == (100_000, 0)
    assert len(server.to("/v1/exports/ex-2")) == 2  # polled through to the failure


async def test_a_tenant_brings_its_own_canva_token(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake: tuple[FakeServer, CanvaState]) -> None:
    # No platform token: Canva serves only the tenant that connected its own account.
    server, state = fake
    state.token = "tenant-oauth-token-7f3a"
    monkeypatch.delenv("MEDIAHUB_CANVA_API_KEY", raising=False)
    monkeypatch.setenv("MEDIAHUB_CANVA_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings, blocked=["plugins.builtin.canva"],
                               extra=[ProvidersPlugin(Canva(poll_after_s=0.05))]) as gw:
        owner = await gw.tenant(scopes=["generate", "read", "tenant_admin"])
        other = await gw.tenant()
        r = await gw.client.put("/v1/provider_keys/canva", headers=owner.auth,
                                json={"api_key": state.token})
        assert r.status_code == 200, r.text
        body = {"type": "design", "prompt": PROMPT,
                "params": {"brand_template_id": TEMPLATE, "prompt_field": "headline"}}
        mine = await gw.client.post("/v1/generations", headers=owner.auth,
                                    json={**body, "provider": "canva"})
        assert mine.status_code == 202, mine.text
        await gw.drain()
        done = (await gw.client.get(f"/v1/generations/{mine.json()['id']}",
                                    headers=owner.auth)).json()
        assert done["status"] == "succeeded", done
        assert {seen.headers["authorization"] for seen in server.requests
                if seen.path.startswith("/v1/")} == {f"Bearer {state.token}"}

        # The other tenant has no Canva: listed unconfigured, and a pinned call is refused
        # before anything is reserved or sent (never with the owner's token).
        providers = (await gw.client.get("/v1/providers?type=design",
                                         headers=other.auth)).json()["data"]
        assert {p["name"]: p["status"] for p in providers}["canva"] == "unconfigured"
        calls_before = len(server.requests)
        theirs = await gw.client.post("/v1/generations", headers=other.auth,
                                      json={**body, "provider": "canva"})
        assert theirs.status_code == 422, theirs.text
        assert theirs.json()["error"]["code"] == "provider_unconfigured"
        await gw.drain()
        assert all(seen.headers.get("authorization") != f"Bearer {state.token}"
                   for seen in server.requests[calls_before:])


async def test_a_brand_kit_fills_the_templates_brand_fields(
        fake: tuple[FakeServer, CanvaState]) -> None:
    """The kit's values go only into `brand_*` fields the template has and `data` leaves
    empty; the logo is uploaded as an asset first and its id fills the image field."""
    server, state = fake
    state.brand_templates[TEMPLATE] = ("Brand", {
        "headline": "text", "brand_name": "text", "brand_color_primary": "text",
        "brand_color_2": "text", "brand_tone": "text", "brand_logo": "image"})
    png = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(png, format="PNG")
    brand = {"name": "Acme", "colors": [{"name": "Primary", "hex": "#0A7C66"},
                                        {"name": "Sand", "hex": "#FFF8E7"}],
             "font_family": "Aileron", "tone_words": ["friendly", "bold"]}
    request = ProviderRequest(
        type="design", operation="design_autofill", prompt=PROMPT,
        params={"brand_template_id": TEMPLATE, "brand": brand,
                "data": {"headline": "Hi", "brand_tone": "given wins"}},
        inputs={"brand_logo": MediaInput(data=png.getvalue(), content_type="image/png")})
    Canva().validate(request)
    async with httpx.AsyncClient() as client:
        await Canva(poll_after_s=0.01).submit(request, creds(server), client)
    [uploaded] = server.to("/v1/asset-uploads")
    assert uploaded.headers["content-type"] == "application/octet-stream"
    assert uploaded.headers["asset-upload-metadata"] == '{"name_base64": "YnJhbmQtbG9nbw=="}'
    assert uploaded.body == png.getvalue()
    [job] = state.uploads
    [sent] = server.to("/v1/autofills")
    assert sent.json()["data"] == {
        "headline": {"type": "text", "text": "Hi"},
        "brand_tone": {"type": "text", "text": "given wins"},
        "brand_name": {"type": "text", "text": "Acme"},
        "brand_color_primary": {"type": "text", "text": "#0A7C66"},
        "brand_color_2": {"type": "text", "text": "#FFF8E7"},
        "brand_logo": {"type": "image", "asset_id": f"MA{job.replace('-', '')}"}}
    # Without a kit no dataset is read and nothing is uploaded.
    server.requests.clear()
    async with httpx.AsyncClient() as client:
        await Canva(poll_after_s=0.01).submit(design_request(data={"headline": "Hi"}),
                                              creds(server), client)
    assert [r.path for r in server.requests] == ["/v1/autofills"]
