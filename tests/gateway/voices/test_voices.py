"""`GET /v1/voices` and `DELETE /v1/voices/{id}` against the fake ElevenLabs server (issue 12,
"Voice clones are made in the platform's ElevenLabs account"): every tenant's clones sit in
one account, and each caller sees the premade voices and its own clones only. On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, Tenant, make_settings, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes.elevenlabs import API_KEY, MP3, ElevenLabsState, app

PREMADE = ["JBFqnCBsd6RMkjVDRZzb", "21m00Tcm4TlvDq8ikWAM"]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeServer, ElevenLabsState]]:
    state = ElevenLabsState(files={"one.mp3": MP3})
    async with serve(app(state)) as server:
        yield server, state


@pytest.fixture
async def gw(fake: tuple[FakeServer, ElevenLabsState], database_url: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    server, _ = fake
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_API_KEY", API_KEY)
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gateway:
        yield gateway


async def clone(gw: Gateway, server: FakeServer, auth: dict[str, str], name: str) -> str:
    """Clone a voice through the gateway; returns its ElevenLabs id."""
    done = await gw.finish(auth, {
        "type": "audio", "operation": "voice_clone", "provider": "elevenlabs", "text": name,
        "params": {"sample_urls": [f"{server.url}/files/one.mp3"]}})
    assert done["status"] == "succeeded", done
    voice_id: str = (await gw.media(done["outputs"][0]["url"])).json()["voice_id"]
    return voice_id


async def voices(gw: Gateway, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = await gw.client.get("/v1/voices", params={"provider": "elevenlabs"}, headers=auth)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def customer_key(gw: Gateway, tenant: Tenant, customer: str) -> dict[str, str]:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                             json={"name": customer, "customer_id": customer,
                                   "scopes": ["generate", "read"]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def test_each_tenant_sees_premade_voices_and_its_own_clones_only(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, state = fake
    a, b = await gw.tenant(), await gw.tenant()
    a_voice = await clone(gw, server, a.auth, "Narrator A")
    b_voice = await clone(gw, server, b.auth, "Narrator B")
    # Both clones are in the one (platform) account...
    assert {a_voice, b_voice} <= {v["voice_id"] for v in state.voices}
    # ...and each tenant sees its own only.
    seen_a = await voices(gw, a.auth)
    assert [v["id"] for v in seen_a] == [*PREMADE, a_voice]
    assert [v["owned"] for v in seen_a] == [False, False, True]
    assert seen_a[-1]["category"] == "cloned"
    assert seen_a[-1]["name"] == "Narrator A"
    assert [v["id"] for v in await voices(gw, b.auth)] == [*PREMADE, b_voice]


async def test_listing_voices_is_free_and_no_generation(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    tenant = await gw.tenant()
    before = await gw.balance(tenant.auth)
    assert [v["id"] for v in await voices(gw, tenant.auth)] == PREMADE
    assert await gw.balance(tenant.auth) == before
    listed = await gw.client.get("/v1/generations", headers=tenant.auth)
    assert listed.json()["data"] == []
    # It is no longer an operation of a generation at all.
    r = await gw.client.post("/v1/generations", headers=tenant.auth, json={
        "type": "audio", "operation": "list_voices", "provider": "elevenlabs"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "operation"


async def test_a_customer_sees_its_own_clones_not_its_neighbours(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, _ = fake
    tenant = await gw.tenant()
    alice, bob = await customer_key(gw, tenant, "alice"), await customer_key(gw, tenant, "bob")
    alices = await clone(gw, server, alice, "Alice's voice")
    assert [v["id"] for v in await voices(gw, alice)] == [*PREMADE, alices]
    assert [v["id"] for v in await voices(gw, bob)] == PREMADE
    # The tenant-wide key sees every clone its tenant (and its customers) made.
    assert [v["id"] for v in await voices(gw, tenant.auth)] == [*PREMADE, alices]
    # Bob cannot delete it: to him it does not exist.
    r = await gw.client.delete(f"/v1/voices/{alices}", headers=bob)
    assert r.status_code == 404, r.text


async def test_deleting_a_clone_deletes_it_at_the_provider(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, state = fake
    a, b = await gw.tenant(), await gw.tenant()
    a_voice = await clone(gw, server, a.auth, "Narrator A")
    # Another tenant's clone and a premade voice are not the caller's to delete.
    for auth, voice in [(b.auth, a_voice), (a.auth, PREMADE[0])]:
        r = await gw.client.delete(f"/v1/voices/{voice}", headers=auth)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["type"] == "not_found_error"
    assert state.deleted == []
    r = await gw.client.delete(f"/v1/voices/{a_voice}", headers=a.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": a_voice, "provider": "elevenlabs", "deleted": True,
                        "object": "voice"}
    assert state.deleted == [a_voice]
    assert [v["id"] for v in await voices(gw, a.auth)] == PREMADE
    r = await gw.client.delete(f"/v1/voices/{a_voice}", headers=a.auth)
    assert r.status_code == 404, r.text


async def test_a_provider_refusing_the_delete_keeps_the_record(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    server, state = fake
    tenant = await gw.tenant()
    voice = await clone(gw, server, tenant.auth, "Narrator")
    state.fail_next(500, "internal", "try later")
    r = await gw.client.delete(f"/v1/voices/{voice}", headers=tenant.auth)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["type"] == "provider_error"
    assert voice in [v["id"] for v in await voices(gw, tenant.auth)]


@pytest.mark.parametrize(("query", "status", "code"), [
    ({"provider": "nobody"}, 422, "unknown_provider"),
    ({"provider": "openai"}, 422, "no_voices"),
    ({}, 400, None),
])
async def test_bad_voice_listings_are_clear_4xx(
        gw: Gateway, query: dict[str, str], status: int, code: str | None) -> None:
    tenant = await gw.tenant()
    r = await gw.client.get("/v1/voices", params=query, headers=tenant.auth)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
        assert error["param"] == "provider"


async def test_identical_clones_are_never_served_from_the_cache(
        fake: tuple[FakeServer, ElevenLabsState], database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # With the result cache on, the second customer's identical request used to get the
    # first one's voice id (a copy), a voice it would neither see nor own.
    server, state = fake
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_API_KEY", API_KEY)
    monkeypatch.setenv("MEDIAHUB_ELEVENLABS_BASE_URL", server.url)
    settings = make_settings(database_url, tmp_path, egress_allow_networks=("127.0.0.0/8",),
                             cache_ttl_s=3600)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant()
        alice = await customer_key(gw, tenant, "alice")
        bob = await customer_key(gw, tenant, "bob")
        alices = await clone(gw, server, alice, "Narrator")
        bobs = await clone(gw, server, bob, "Narrator")
        assert alices != bobs
        assert len(state.clones) == 2
        assert [v["id"] for v in await voices(gw, bob)] == [*PREMADE, bobs]


async def test_another_callers_clone_cannot_be_spoken_with(
        gw: Gateway, fake: tuple[FakeServer, ElevenLabsState]) -> None:
    # The clones share one account at ElevenLabs, which would speak with any of them.
    server, _ = fake
    a, b = await gw.tenant(), await gw.tenant()
    alice = await customer_key(gw, a, "alice")
    bob = await customer_key(gw, a, "bob")
    alices = await clone(gw, server, alice, "Alice's voice")
    speak = {"type": "audio", "provider": "elevenlabs", "text": "Hello.",
             "params": {"voice": alices}}
    calls = len(server.to(f"/v1/text-to-speech/{alices}"))
    # (The tenant's wallet pays for its customers: it bills them itself.)
    for auth, wallet in [(b.auth, b.auth), (bob, a.auth)]:
        before = await gw.balance(wallet)
        r = await gw.client.post("/v1/generations", headers=auth, json=speak)
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
            "voice_not_found", "params.voice")
        assert await gw.balance(wallet) == before
    assert len(server.to(f"/v1/text-to-speech/{alices}")) == calls
    # Its owner (and the owner's tenant-wide key) may.
    for auth in (alice, a.auth):
        done = await gw.finish(auth, speak)
        assert done["status"] == "succeeded", done


async def test_the_local_speech_engine_lists_espeaks_voices(gw: Gateway) -> None:
    # Offline voices are listed the same way (espeak-ng is installed wherever the tests run).
    tenant = await gw.tenant()
    r = await gw.client.get("/v1/voices", params={"provider": "local-speech"},
                            headers=tenant.auth)
    assert r.status_code == 200, r.text
    listed = {v["id"]: v for v in r.json()["data"]}
    assert {"en", "fr"} <= set(listed)
    assert listed["en"]["category"] == "premade"
    assert listed["en"]["owned"] is False
    assert listed["en"]["labels"]["alias_of"].startswith("en")
