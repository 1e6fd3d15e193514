"""What the studio's controls are drawn from (issue 14, contract C3), through the public API
on SQLite and PostgreSQL: providers' parameter declarations and models in `GET
/v1/providers`, and the gateway refusing values outside them before pricing; voice filters
over normalised labels (ElevenLabs' real `GET /v1/voices` shape, espeak-ng's voices); design
templates (the local engine's and Canva's brand templates, from the fake Connect API); and a
user's language preference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gateway.core.settings import Settings
from plugins.builtin.local import speech
from plugins.provider import ModelSpec
from plugins.vocabulary import ParamLimits, ParamSpec, declare
from tests.conftest import (
    Gateway,
    Inbox,
    ProvidersPlugin,
    Scripted,
    make_settings,
    running_gateway,
    scripted,
)
from tests.fakes import serve
from tests.fakes.canva import CanvaState
from tests.fakes.canva import app as canva_app
from tests.fakes.elevenlabs import API_KEY, ElevenLabsState
from tests.fakes.elevenlabs import app as elevenlabs_app
from tests.gateway.people.support import browser, email, open_tenant, signed_up


def bounded() -> Scripted:
    """A provider that checks nothing itself: what it declares is all that bounds a request."""
    provider = scripted("bounded", cost_usd_micros=1_000)
    cls = type(provider)
    cls.params = {
        "mode": ParamSpec(kind="string", choices=("fast", "fine"), default="fast",
                          description="How to draw"),
        "strength": ParamSpec(kind="number", minimum=0.0, maximum=1.0, default=0.5),
        "model": declare("model", choices=("small", "big")),
        "n": declare("n", minimum=1, maximum=8, default=1),
    }
    models: ClassVar[dict[str, ModelSpec]] = {
        "small": ModelSpec(operations=frozenset({"text_to_image"}), params={"model": "small"},
                           limits={"n": ParamLimits(minimum=1, maximum=2)}),
        "big": ModelSpec(operations=frozenset({"text_to_image"}), params={"model": "big"})}
    cls.models = models
    cls.param_defaults = {"model": "small"}
    return provider


@pytest.fixture
async def declared(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, extra=[ProvidersPlugin(bounded())],
                               blocked=["plugins.builtin.local.image"]) as gw:
        yield gw


async def submit(gw: Gateway, auth: dict[str, str], params: dict[str, Any]) -> Any:
    r = await gw.client.post("/v1/generations", headers=auth, json={
        "type": "image", "prompt": "a fox", "params": params})
    return r.status_code, r.json()


async def test_providers_list_their_params_and_models_with_choices_and_ranges(
        declared: Gateway) -> None:
    tenant = await declared.tenant()
    r = await declared.client.get("/v1/providers", params={"type": "image"},
                                  headers=tenant.auth)
    assert r.status_code == 200, r.text
    info = next(p for p in r.json()["data"] if p["name"] == "bounded")
    params = {p["name"]: p for p in info["params"]}
    assert params["mode"] == {"name": "mode", "kind": "string", "operations": ["text_to_image"],
                              "choices": ["fast", "fine"], "minimum": None, "maximum": None,
                              "default": "fast", "description": "How to draw"}
    assert (params["strength"]["minimum"], params["strength"]["maximum"]) == (0.0, 1.0)
    assert info["models"] == [
        {"name": "small", "operations": ["text_to_image"], "limits": {"n": {"minimum": 1,
                                                                         "maximum": 2}}},
        {"name": "big", "operations": ["text_to_image"], "limits": {}}]


async def test_a_white_label_customer_sees_params_but_no_prices_or_vendor(
        declared: Gateway) -> None:
    tenant = await declared.tenant()
    r = await declared.client.post(f"/admin/v1/tenants/{tenant.id}/keys",
                                   headers=declared.admin(),
                                   json={"name": "alice", "customer_id": "alice",
                                         "scopes": ["generate", "read"]})
    assert r.status_code == 201, r.text
    customer = {"Authorization": f"Bearer {r.json()['key']}"}
    r = await declared.client.get("/v1/providers", params={"type": "image"},
                                  headers=customer)
    assert r.status_code == 200, r.text
    (info,) = [p for p in r.json()["data"] if any(q["name"] == "mode" for q in p["params"])]
    assert info["name"].startswith("engine_")
    assert (info["pricing"], info["description"]) == ({}, "")
    assert [m["name"] for m in info["models"]] == ["small", "big"]


@pytest.mark.parametrize(("params", "param", "words"), [
    ({"mode": "sketchy"}, "params.mode", "one of fast, fine"),
    ({"strength": 1.5}, "params.strength", "at most 1"),
    ({"strength": -0.1}, "params.strength", "at least 0"),
    ({"n": 3}, "params.n", "with model small"),  # the default model's own limit
    ({"model": "small", "n": 3}, "params.n", "with model small"),
    ({"model": "huge"}, "params.model", "one of small, big"),
])
async def test_values_outside_the_declaration_are_refused_before_pricing(
        declared: Gateway, params: dict[str, Any], param: str, words: str) -> None:
    tenant = await declared.tenant()
    status, body = await submit(declared, tenant.auth, params)
    assert status == 422, body
    assert (body["error"]["code"], body["error"]["param"]) == ("invalid_parameter", param)
    assert words in body["error"]["message"]
    assert (await declared.balance(tenant.auth))["pending"] == 0


async def test_values_inside_the_declaration_are_served(declared: Gateway) -> None:
    tenant = await declared.tenant()
    for params in ({"mode": "fine", "strength": 1, "n": 2},
                   {"model": "big", "n": 8, "strength": 0}):
        done = await declared.finish(tenant.auth, {"type": "image", "prompt": "a fox",
                                                   "params": params})
        assert done["status"] == "succeeded", (params, done)


async def test_local_engines_declare_what_their_code_accepts(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/providers", headers=tenant.auth)
    infos = {p["name"]: {q["name"]: q for q in p["params"]} for p in r.json()["data"]}
    video = infos["local-video"]
    assert (video["duration_s"]["minimum"], video["duration_s"]["maximum"],
            video["duration_s"]["default"]) == (1, 20, 5)
    assert video["resolution"]["choices"] == ["480p", "720p"]
    assert infos["local-design"]["template"]["choices"] == ["poster", "social_square",
                                                            "banner"]
    # The edges the declaration shows are the edges the engine takes.
    ok = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth, json={
        "type": "video", "prompt": "waves", "params": {"duration_s": 20}})
    assert ok.status_code == 200, ok.text
    over = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth, json={
        "type": "video", "prompt": "waves", "params": {"duration_s": 21}})
    assert over.status_code == 422, over.text
    assert over.json()["error"]["param"] == "params.duration_s"


# -- voices -----------------------------------------------------------------------------------

@pytest.fixture
async def eleven(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[tuple[Gateway, ElevenLabsState]]:
    state = ElevenLabsState()
    # A voice whose labels carry the language themselves, capitalised as users type them.
    state.voices.append({
        "voice_id": "ar00Tcm4TlvDq8ikWAMx", "name": "Layla", "category": "premade",
        "labels": {"accent": "Egyptian", "gender": "Female", "language": "ar"},
        "description": None, "preview_url": None, "verified_languages": [
            {"language": "ar", "model_id": "eleven_multilingual_v2", "accent": "egyptian",
             "locale": "ar-EG", "preview_url": None}]})
    async with serve(elevenlabs_app(state)) as server:
        monkeypatch.setenv("MEDIAHUB_ELEVENLABS_API_KEY", API_KEY)
        monkeypatch.setenv("MEDIAHUB_ELEVENLABS_BASE_URL", server.url)
        settings = make_settings(database_url, tmp_path)
        async with running_gateway(settings) as gw:
            yield gw, state


async def voice_ids(gw: Gateway, auth: dict[str, str], **query: str) -> list[str]:
    r = await gw.client.get("/v1/voices", params={"provider": "elevenlabs", **query},
                            headers=auth)
    assert r.status_code == 200, r.text
    return [v["id"] for v in r.json()["data"]]


async def test_elevenlabs_labels_are_normalised_and_filtered(
        eleven: tuple[Gateway, ElevenLabsState]) -> None:
    gw, _ = eleven
    tenant = await gw.tenant()
    r = await gw.client.get("/v1/voices", params={"provider": "elevenlabs"},
                            headers=tenant.auth)
    labels = {v["name"]: v["labels"] for v in r.json()["data"]}
    # George: language from fine_tuning; Rachel: from verified_languages; Layla: her labels.
    assert labels["George"] == {"accent": "british", "gender": "male", "age": "middle_aged",
                                "language": "en"}
    assert labels["Rachel"]["language"] == "en"
    assert labels["Layla"] == {"accent": "egyptian", "gender": "female", "language": "ar"}
    george, rachel, layla = "JBFqnCBsd6RMkjVDRZzb", "21m00Tcm4TlvDq8ikWAM", "ar00Tcm4TlvDq8ikWAMx"
    assert await voice_ids(gw, tenant.auth, language="ar") == [layla]
    assert await voice_ids(gw, tenant.auth, language="EN") == [george, rachel]
    assert await voice_ids(gw, tenant.auth, gender="female") == [rachel, layla]
    assert await voice_ids(gw, tenant.auth, language="en", accent="american") == [rachel]
    assert await voice_ids(gw, tenant.auth, accent="scottish") == []


def test_espeak_voices_carry_language_accent_and_gender() -> None:
    voice = speech.Voice(id="en-gb-x-rp", name="English (Received Pronunciation)",
                         gender="male", languages=("en",))
    assert speech.voice_labels(voice) == {"language": "en", "accent": "gb-x-rp",
                                          "gender": "male", "languages": "en"}
    assert speech.voice_labels(speech.Voice(id="ar", name="Arabic", gender="male")) == {
        "language": "ar", "gender": "male", "languages": ""}


async def test_local_speech_voices_filter_by_language(gateway: Gateway) -> None:
    if not speech.voices():
        pytest.skip("espeak-ng is not installed")
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/voices", params={"provider": "local-speech",
                                                       "language": "ar"},
                                 headers=tenant.auth)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data
    assert all(v["labels"]["language"] == "ar" for v in data)


# -- design templates -------------------------------------------------------------------------

async def test_the_local_engines_templates_with_their_fields(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/design/templates", params={"provider": "local-design"},
                                 headers=tenant.auth)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [t["id"] for t in data] == ["poster", "social_square", "banner"]
    poster = data[0]
    assert poster["provider"] == "local-design"
    assert poster["formats"] == ["png", "pdf"]
    assert poster["brand"] is False
    assert [(f["name"], f["kind"]) for f in poster["fields"]] == [
        ("headline", "text"), ("body", "text"), ("cta", "text"), ("image", "image")]
    # Each listed id is one design_autofill takes.
    done = await gateway.finish(tenant.auth, {"type": "design", "prompt": "Sale",
                                              "params": {"template": "banner"}})
    assert done["status"] == "succeeded", done


async def test_a_provider_without_templates_is_refused(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    for name, code in (("local-image", "no_templates"), ("nobody", "unknown_provider")):
        r = await gateway.client.get("/v1/design/templates", params={"provider": name},
                                     headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (code, "provider")


@pytest.fixture
async def canva(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[tuple[Gateway, CanvaState]]:
    state = CanvaState(brand_templates={
        "DAE1aBcDeFg": ("Summer sale", {"headline": "text", "hero_photo": "image"}),
        "DAE2aBcDeFg": ("No fields", {}),
        "DAE3aBcDeFg": ("Quarterly report", {"title": "text", "revenue_chart": "chart"}),
        "DAE4aBcDeFg": ("Event", {"event_name": "text"}),
    })
    async with serve(canva_app(state)) as server:
        monkeypatch.setenv("MEDIAHUB_CANVA_API_KEY", state.token)
        monkeypatch.setenv("MEDIAHUB_CANVA_BASE_URL", server.url)
        settings = make_settings(database_url, tmp_path)
        async with running_gateway(settings) as gw:
            yield gw, state


async def test_canva_brand_templates_with_their_datasets(
        canva: tuple[Gateway, CanvaState]) -> None:
    gw, state = canva
    tenant = await gw.tenant()
    r = await gw.client.get("/v1/design/templates", params={"provider": "canva"},
                            headers=tenant.auth)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # Every page (two a page here), templates without autofill fields left out.
    assert [(t["id"], t["name"]) for t in data] == [
        ("DAE1aBcDeFg", "Summer sale"), ("DAE3aBcDeFg", "Quarterly report"),
        ("DAE4aBcDeFg", "Event")]
    assert all(t["brand"] and t["formats"] == ["png", "pdf", "jpg", "mp4"] for t in data)
    assert [(f["name"], f["kind"], f["label"]) for f in data[1]["fields"]] == [
        ("title", "text", "Title"), ("revenue_chart", "chart", "Revenue chart")]
    # Unnamed: every configured design provider's, Canva's and the local engine's.
    r = await gw.client.get("/v1/design/templates", headers=tenant.auth)
    assert {t["provider"] for t in r.json()["data"]} >= {"canva", "local-design"}
    # Canva refusing the token: a 502 naming it, not a 500.
    state.token = "revoked"
    r = await gw.client.get("/v1/design/templates", params={"provider": "canva"},
                            headers=tenant.auth)
    assert r.status_code == 502, r.text
    # Unnamed, a failing provider is left out and the others still show.
    r = await gw.client.get("/v1/design/templates", headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert {t["provider"] for t in r.json()["data"]} == {"local-design"}


# -- locale -----------------------------------------------------------------------------------

async def test_a_user_sets_and_clears_their_language(gateway: Gateway,
                                                     smtp_server: Inbox) -> None:
    _, slug, key = await open_tenant(gateway)
    web = browser(gateway)
    signed = await signed_up(web, smtp_server, slug, email())
    assert signed["user"]["locale"] is None
    csrf = {"X-CSRF-Token": signed["csrf_token"]}
    # Without the CSRF token, as every signed-in write.
    r = await web.patch("/v1/users/me", json={"locale": "ar"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "csrf_failed")
    r = await web.patch("/v1/users/me", json={"locale": "ar"}, headers=csrf)
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == "ar"
    assert (await web.get("/v1/users/me")).json()["user"]["locale"] == "ar"
    for bad in ({"locale": "fr"}, {"locale": "ar", "theme": "dark"}, {}):
        r = await web.patch("/v1/users/me", json=bad, headers=csrf)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["error"]["code"] != "internal_error"
    r = await web.patch("/v1/users/me", json={"locale": None}, headers=csrf)
    assert r.json()["locale"] is None
    # A key has no user to set it on.
    r = await gateway.client.patch("/v1/users/me", json={"locale": "en"},
                                   headers={"Authorization": f"Bearer {key}"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "session_required")


async def test_mails_to_a_user_speak_their_language(gateway: Gateway,
                                                    smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    web = browser(gateway)
    address = email()
    signed = await signed_up(web, smtp_server, slug, address)
    r = await web.patch("/v1/users/me", json={"locale": "ar"},
                        headers={"X-CSRF-Token": signed["csrf_token"]})
    assert r.status_code == 200, r.text
    for path, subject in (("/v1/auth/magic", "تسجيل الدخول إلى"),
                          ("/v1/auth/reset", "إعادة تعيين كلمة مرور")):
        r = await gateway.client.post(path, json={"email": address, "tenant": slug})
        assert r.status_code == 202, r.text
        message = await smtp_server.next(address)
        assert str(message["Subject"]).startswith(subject), message["Subject"]
        assert Inbox.link(message)  # the link still comes first

