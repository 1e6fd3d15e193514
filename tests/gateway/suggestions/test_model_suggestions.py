"""Model suggestions: a text generation through the normal pipeline to the openai_chat
provider (pointed at the fake OpenAI API), charged exactly tokens x price to the caller, and
the fallback to rule-based suggestions on a provider error, a timeout or a short wallet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from billing.pricing import price
from gateway.core.settings import Settings
from plugins.builtin.openai_chat import PRICES, token_cost
from tenants.schemas import TenantPricing
from tests.conftest import Gateway, Tenant, running_gateway
from tests.fakes import FakeServer, serve
from tests.fakes import openai as fake
from tests.gateway.suggestions.helpers import as_customer

MODEL = "openai_chat:gpt-4o"


@pytest.fixture
def state() -> fake.FakeOpenAI:
    return fake.FakeOpenAI(chat_reply="1. A harbour at dawn, watercolour\n- A fox in snow\n\n",
                           prompt_tokens=200, completion_tokens=250)


@pytest.fixture
async def upstream(state: fake.FakeOpenAI) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
async def gw(settings: Settings, upstream: FakeServer,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("MEDIAHUB_OPENAI_CHAT_API_KEY", fake.API_KEY)
    monkeypatch.setenv("MEDIAHUB_OPENAI_CHAT_BASE_URL", f"{upstream.url}/v1")
    async with running_gateway(settings) as gateway:
        yield gateway


async def with_model(gw: Gateway, *, wait_ms: int = 20_000, **fields: Any) -> Tenant:
    tenant = await gw.tenant(**fields)
    r = await gw.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gw.admin(),
                              json={"suggestions": {"model": MODEL, "wait_ms": wait_ms}})
    assert r.status_code == 200, r.text
    assert r.json()["suggestions"] == {"model": MODEL, "wait_ms": wait_ms}
    return tenant


async def text_generations(gw: Gateway, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = await gw.client.get("/v1/generations", headers=auth, params={"type": "text"})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["data"]
    return found


async def test_model_suggestions_are_a_charged_text_generation(
        gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw)
    before = await gw.balance(tenant.auth)
    r = await gw.client.get("/v1/suggestions", headers=tenant.auth,
                            params={"type": "image", "context": "harbour", "lang": "en"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("model_error") is None
    assert [(s["text"], s["source"], s["score"]) for s in body["data"][:2]] == [
        ("A harbour at dawn, watercolour", "model", 1.0), ("A fox in snow", "model", 1.0)]
    assert body["data"][2]["source"] == "template"
    (sent,) = state.chats
    assert sent["model"] == "gpt-4o"
    assert sent["messages"][0]["role"] == "system"
    assert "harbour" in sent["messages"][1]["content"]

    (generation,) = await text_generations(gw, tenant.auth)
    assert (generation["type"], generation["operation"], generation["status"]) == (
        "text", "complete", "succeeded")
    cost_usd_micros = token_cost(PRICES, "gpt-4o", 200, 250)
    assert cost_usd_micros == 200 * 2_500_000 // 1_000_000 + 250 * 10_000_000 // 1_000_000
    expected = price(cost_usd_micros, media_type="text", tenant_pricing=TenantPricing(),
                     platform_markup_bps=gw.runtime.settings.platform_markup_bps).retail_mc
    assert generation["cost"]["charged"] == expected
    after = await gw.balance(tenant.auth)
    assert before["available"] - after["available"] == expected


async def test_improve_adds_model_variants(gw: Gateway) -> None:
    tenant = await with_model(gw)
    r = await gw.client.post("/v1/suggestions/improve", headers=tenant.auth,
                             json={"type": "image", "prompt": "a cat", "lang": "en"})
    body = r.json()
    assert [v["source"] for v in body["variants"]] == ["rules"] * 3 + ["model"] * 2
    assert body["variants"][3]["text"] == "A harbour at dawn, watercolour"


async def test_a_provider_error_falls_back_with_its_code(
        gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw)
    state.errors.append(fake.Scripted(401, fake.INVALID_API_KEY))
    body = (await gw.client.get("/v1/suggestions", headers=tenant.auth,
                                params={"type": "image"})).json()
    assert body["model_error"] == "auth"
    assert body["data"]
    assert {s["source"] for s in body["data"]} == {"template"}


async def test_a_slow_model_times_out_and_rules_answer(
        gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw, wait_ms=300)
    state.chat_hold = asyncio.Event()
    try:
        r = await gw.client.post("/v1/suggestions/improve", headers=tenant.auth,
                                 json={"type": "audio", "prompt": "Hello there"})
        body = r.json()
        assert body["model_error"] == "timeout"
        assert [m["aspect"] for m in body["missing"]] == ["end_punctuation"]
        assert [v["source"] for v in body["variants"]] == ["rules"]
    finally:
        state.chat_hold.set()
        await gw.drain()


async def test_a_short_wallet_is_a_402_fallback(gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw, credits_mc=0)
    body = (await gw.client.get("/v1/suggestions", headers=tenant.auth,
                                params={"type": "video", "context": "waves"})).json()
    assert body["model_error"] == "insufficient_credits"
    assert body["data"][0]["source"] == "template"
    assert state.chats == []
    assert await text_generations(gw, tenant.auth) == []


async def test_a_read_only_key_never_spends_on_the_model(
        gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw)
    reader = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                                  json={"name": "reader", "scopes": ["read"]})
    auth = {"Authorization": f"Bearer {reader.json()['key']}"}
    body = (await gw.client.get("/v1/suggestions", headers=auth,
                                params={"type": "image"})).json()
    assert body["model_error"] == "missing_scope"
    assert state.chats == []


async def test_a_customers_suggestion_is_charged_to_the_customer(
        gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw)
    alice = as_customer(tenant, "alice")
    body = (await gw.client.get("/v1/suggestions", headers=alice,
                                params={"type": "image"})).json()
    assert body["data"][0]["source"] == "model"
    assert len(await text_generations(gw, alice)) == 1
    assert await text_generations(gw, as_customer(tenant, "bob")) == []


async def test_the_tenant_may_only_choose_an_installed_text_model(gw: Gateway) -> None:
    tenant = await gw.tenant(scopes=["generate", "read", "tenant_admin"])
    for model in ("openai:dall-e-3", "nobody:gpt-4o", "openai_chat:gpt-2"):
        r = await gw.client.patch("/v1/tenant", headers=tenant.auth,
                                  json={"suggestions": {"model": model}})
        assert r.status_code == 422, (model, r.text)
        assert r.json()["error"]["code"] == "unknown_model"
    r = await gw.client.patch("/v1/tenant", headers=tenant.auth,
                              json={"suggestions": {"model": "openai_chat:gpt-4o-mini"}})
    assert r.status_code == 200, r.text
    assert r.json()["suggestions"] == {"model": "openai_chat:gpt-4o-mini"}


async def test_model_false_never_asks_the_model(gw: Gateway, state: fake.FakeOpenAI) -> None:
    tenant = await with_model(gw)
    before = await gw.balance(tenant.auth)
    body = (await gw.client.get("/v1/suggestions", headers=tenant.auth,
                                params={"type": "image", "model": "false"})).json()
    assert body.get("model_error") is None
    assert {s["source"] for s in body["data"]} == {"template"}
    assert state.chats == []
    assert await gw.balance(tenant.auth) == before
