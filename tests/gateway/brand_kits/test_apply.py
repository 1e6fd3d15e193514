"""A brand kit applied to generations (gateway/brand_kits/apply.py), on SQLite and
PostgreSQL: the kit and version recorded, the cache never answering a new version with an
old output, the design drawn in the kit's colours and logo, image prompts carrying its words,
speech its default voice; a kit the caller may not read is a 404."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from PIL import Image

from plugins.provider import Credentials, ProviderRequest, ProviderResult
from plugins.vocabulary import ParamSpec, common
from tests.conftest import (
    Gateway,
    ProvidersPlugin,
    Scripted,
    make_settings,
    running_gateway,
)
from tests.fakes import FakeServer, serve
from tests.fakes.elevenlabs import API_KEY, ElevenLabsState
from tests.fakes.elevenlabs import app as elevenlabs_app
from tests.gateway.brand_kits.helpers import FONT, PRIMARY_RGB, logo, make_kit, upload
from tests.gateway.teams.helpers import customer

RACHEL = "21m00Tcm4TlvDq8ikWAM"


class Recording(Scripted):
    """An image provider that keeps every request it is given; it reads a negative prompt."""

    name = "recording"
    params: ClassVar[Mapping[str, ParamSpec] | None] = {**common("negative_prompt")}

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ProviderRequest] = []

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.requests.append(request)
        return await super().generate(request, credentials, client)


class Plain(Recording):
    """One that declares no parameters at all: a kit's additions must not get it refused."""

    name = "plain"
    params: ClassVar[Mapping[str, ParamSpec] | None] = {}


@pytest.fixture
async def recorded(database_url: str, tmp_path: Path
                   ) -> AsyncIterator[tuple[Gateway, Recording, Plain]]:
    recording, plain = Recording(), Plain()
    settings = make_settings(database_url, tmp_path, cache_ttl_s=3600)
    async with running_gateway(settings, extra=[ProvidersPlugin(recording, plain)]) as gw:
        yield gw, recording, plain


async def test_image_prompts_carry_the_kits_words_and_a_new_version_misses_the_cache(
        recorded: tuple[Gateway, Recording, Plain]) -> None:
    gw, recording, plain = recorded
    tenant = await gw.tenant()
    kit = await make_kit(gw, tenant.auth)
    body = {"type": "image", "prompt": "a lighthouse", "provider": "recording",
            "brand_kit_id": kit["id"]}

    first = await gw.finish(tenant.auth, body)
    assert first["status"] == "succeeded", first
    assert (first["brand_kit_id"], first["brand_kit_version"], first["cached"]) == (
        kit["id"], 1, False)
    [sent] = recording.requests
    assert sent.prompt == "a lighthouse\n\nStyle: flat illustration, pastel. Tone: friendly."
    assert sent.params["negative_prompt"] == "blurry, dark"

    # The same request at the same version: the cache answers, the provider is not called.
    again = await gw.finish(tenant.auth, body)
    assert (again["cached"], again["brand_kit_version"]) == (True, 1)
    assert len(recording.requests) == 1

    # A new version (even one that changes nothing the prompt shows) is never served the
    # output of the old one.
    r = await gw.client.patch(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth,
                              json={"do_words": ["smile", "wave"]})
    assert r.json()["version"] == 2
    fresh = await gw.finish(tenant.auth, body)
    assert (fresh["cached"], fresh["brand_kit_version"]) == (False, 2)
    assert len(recording.requests) == 2

    # The caller's own negative prompt comes first; a provider that reads no negative
    # prompt is not refused for the kit's (it just never sees it).
    done = await gw.finish(tenant.auth, {**body, "params": {"negative_prompt": "text"}})
    assert recording.requests[-1].params["negative_prompt"] == "text, blurry, dark"
    assert done["params"] == {"negative_prompt": "text, blurry, dark"}
    done = await gw.finish(tenant.auth, {**body, "provider": "plain"})
    assert done["status"] == "succeeded", done
    assert plain.requests[-1].prompt.endswith("Tone: friendly.")

    # Without a kit nothing is added.
    await gw.finish(tenant.auth, {**body, "brand_kit_id": None, "prompt": "plain"})
    assert recording.requests[-1].prompt == "plain"
    assert "negative_prompt" not in recording.requests[-1].params


async def test_a_kit_the_caller_may_not_read_is_404(
        recorded: tuple[Gateway, Recording, Plain]) -> None:
    gw, recording, _ = recorded
    acme, other = await gw.tenant(), await gw.tenant()
    alice_kit = await make_kit(gw, customer(acme, "alice"))
    body = {"type": "image", "prompt": "x", "provider": "recording"}
    for auth, kit_id in ((other.auth, alice_kit["id"]), (customer(acme, "bob"),
                                                         alice_kit["id"]),
                         (acme.auth, "bk_nope")):
        for path in ("/v1/generations", "/v1/generations/estimate"):
            r = await gw.client.post(path, headers=auth, json={**body, "brand_kit_id": kit_id})
            assert r.status_code == 404, r.text
            assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
                "brand_kit_not_found", "brand_kit_id")
    assert recording.requests == []
    balance = await gw.balance(other.auth)
    assert balance["pending"] == 0


async def test_designs_are_drawn_in_the_kits_colours_font_and_logo(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    assert (await upload(gateway, tenant.auth, kit["id"], "fonts", FONT,
                         "font/ttf")).status_code == 201
    red = (200, 30, 30)
    assert (await upload(gateway, tenant.auth, kit["id"], "logos", logo(color=red),
                         "image/png")).status_code == 201
    done = await gateway.finish(tenant.auth, {
        "type": "design", "prompt": "Spring sale", "provider": "local-design",
        "params": {"fields": {"cta": "Shop now"}}, "brand_kit_id": kit["id"]})
    assert done["status"] == "succeeded", done
    assert done["brand_kit_version"] == 3
    assert done["params"]["brand"] == {
        "name": "Acme", "colors": kit["colors"], "font_family": "Aileron",
        "tone_words": ["friendly"]}
    output = await gateway.media(done["outputs"][0]["url"])
    image = Image.open(io.BytesIO(output.content)).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert PRIMARY_RGB in colours  # the accent: the kit's primary
    assert red in colours  # the logo
    assert image.getpixel((image.width - 5, image.height - 5)) == (0xFF, 0xF8, 0xE7)

    # The colours the request gives itself win over the kit's.
    done = await gateway.finish(tenant.auth, {
        "type": "design", "prompt": "Spring sale", "provider": "local-design",
        "params": {"colors": {"accent": "#123456"}}, "brand_kit_id": kit["id"]})
    output = await gateway.media(done["outputs"][0]["url"])
    image = Image.open(io.BytesIO(output.content)).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert (0x12, 0x34, 0x56) in colours
    assert PRIMARY_RGB not in colours


@pytest.fixture
async def eleven(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[tuple[Gateway, FakeServer]]:
    async with serve(elevenlabs_app(ElevenLabsState())) as server:
        monkeypatch.setenv("MEDIAHUB_ELEVENLABS_API_KEY", API_KEY)
        monkeypatch.setenv("MEDIAHUB_ELEVENLABS_BASE_URL", server.url)
        async with running_gateway(make_settings(database_url, tmp_path)) as gw:
            yield gw, server


async def test_speech_uses_the_kits_default_voice_unless_one_is_named(
        eleven: tuple[Gateway, FakeServer]) -> None:
    gw, server = eleven
    tenant = await gw.tenant()
    kit = await make_kit(gw, tenant.auth, default_voice=RACHEL)
    body: dict[str, Any] = {"type": "audio", "text": "Hello there", "provider": "elevenlabs",
                            "brand_kit_id": kit["id"]}
    done = await gw.finish(tenant.auth, body)
    assert done["status"] == "succeeded", done
    assert [r.path for r in server.requests if "text-to-speech" in r.path] == [
        f"/v1/text-to-speech/{RACHEL}"]
    assert done["prompt"] == "Hello there"  # speech text is not changed by a kit
    george = "JBFqnCBsd6RMkjVDRZzb"
    done = await gw.finish(tenant.auth, {**body, "params": {"voice": george}})
    assert done["status"] == "succeeded", done
    assert server.requests[-1].path == f"/v1/text-to-speech/{george}"
