"""Routing state per credential, pinned providers nobody holds a key for, and calls in flight
seen across processes.

End to end through the gateway on SQLite and PostgreSQL (Valkey where a test says so), with
providers that judge the key they are called with, and an injected clock (no sleeps).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.core.runtime import provider_env_name
from gateway.core.settings import Settings
from gateway.generations.services import Services
from gateway.providers.states import ProviderStates
from plugins.errors import ProviderError
from plugins.host import build_plugin_host
from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.routing.breaker import CLOSED, OPEN
from plugins.routing.stats import RoutingConfig
from tests.conftest import (
    Gateway,
    ProvidersPlugin,
    Tenant,
    make_settings,
    running_gateway,
    scripted,
)

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk"}
T0 = 1_800_000_000.0
PLATFORM_KEY = "platform-key"
#: Offline engines would take over when the provider under test is refused: keep them out.
NO_LOCAL = ["plugins.builtin.local.image"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


class Keyed(Provider):
    """A remote provider that needs a key: it accepts `PLATFORM_KEY` and any key in `good`,
    refuses other keys with `auth`, and fails with a 5xx while `down`."""

    name = "keyed"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = True

    def __init__(self) -> None:
        self.good: set[str] = {PLATFORM_KEY}
        self.down = False
        #: Keys whose account is out of quota (a 429 with `Retry-After: 60`).
        self.exhausted: set[str] = set()
        self.seen: list[str | None] = []

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.seen.append(credentials.api_key)
        if credentials.api_key not in self.good:
            raise ProviderError.auth()
        if credentials.api_key in self.exhausted:
            raise ProviderError.rate_limited(retry_after_s=60)
        if self.down:
            raise ProviderError.server_error()
        return ProviderResult(outputs=[ProviderOutput(data=b"\x89PNG\r\n\x1a\n",
                                                      content_type="image/png")],
                              cost_usd_micros=4_000)


def keyed() -> Keyed:
    provider: Keyed = type("Keyed_", (Keyed,), {"name": uniq("keyed")})()
    return provider


@dataclass
class Scoped:
    gw: Gateway
    clock: Clock
    states: ProviderStates
    provider: Keyed

    async def submit(self, tenant: Tenant) -> httpx.Response:
        r = await self.gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        await self.gw.drain()
        return r

    async def generated(self, tenant: Tenant) -> dict[str, Any]:
        r = await self.submit(tenant)
        assert r.status_code == 202, r.text
        done = await self.gw.client.get(f"/v1/generations/{r.json()['id']}",
                                        headers=tenant.auth)
        body: dict[str, Any] = done.json()
        return body

    async def status(self, tenant: Tenant) -> str:
        r = await self.gw.client.get("/v1/providers", headers=tenant.auth)
        assert r.status_code == 200, r.text
        return str(next(p["status"] for p in r.json()["data"]
                        if p["name"] == self.provider.name))

    async def operator(self) -> dict[str, Any]:
        r = await self.gw.client.get("/admin/v1/providers", headers=self.gw.admin())
        found: dict[str, Any] = next(p for p in r.json()["data"]
                                     if p["name"] == self.provider.name)
        return found


@contextlib.asynccontextmanager
async def scoped(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Scoped]:
    provider = keyed()
    monkeypatch.setenv(f"MEDIAHUB_{provider_env_name(provider.name)}_API_KEY", PLATFORM_KEY)
    async with running_gateway(settings, extra=[ProvidersPlugin(provider)],
                               blocked=NO_LOCAL) as gw:
        clock = Clock()
        states = ProviderStates(clock=clock, config=RoutingConfig(failure_threshold=2,
                                                                  cooldown_s=30))
        gw.services.providers = states
        yield Scoped(gw=gw, clock=clock, states=states, provider=provider)


async def own_key(gw: Gateway, provider: str, key: str) -> Tenant:
    tenant = await gw.tenant(scopes=["generate", "read", "billing", "tenant_admin"])
    r = await gw.client.put(f"/v1/provider_keys/{provider}", headers=tenant.auth,
                            json={"api_key": key})
    assert r.status_code == 200, r.text
    return tenant


# --- one tenant's key never hurts another ----------------------------------------------------


async def test_a_tenants_own_bad_key_opens_its_own_breaker_not_the_platforms(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with scoped(settings, monkeypatch) as s:  # threshold 2
        bad = await own_key(s.gw, s.provider.name, "revoked-key-0001")
        other = await s.gw.tenant()
        for _ in range(2):
            failed = await s.generated(bad)
            assert (failed["status"], failed["error"]["code"]) == ("failed", "auth")
        # The bad key's breaker is open: that tenant is refused at once, nothing reserved...
        assert await s.status(bad) == "circuit_open"
        refused = await s.submit(bad)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "providers_unavailable"
        # ...while every other tenant still routes to the provider with the platform's key.
        assert await s.status(other) == "available"
        served = await s.generated(other)
        assert (served["status"], served["provider"]) == ("succeeded", s.provider.name)
        assert s.provider.seen == ["revoked-key-0001", "revoked-key-0001", PLATFORM_KEY]
        state = await s.operator()
        assert (state["status"], state["breaker"], state["consecutive_failures"]) == (
            "available", "closed", 0)

        # Another process sees both: the tenant's open breaker, the platform's closed one.
        another = ProviderStates(clock=s.clock)
        await another.refresh(s.gw.runtime)
        assert another.stats(s.provider.name, bad.id).breaker.state(s.clock()) == OPEN
        assert another.stats(s.provider.name).breaker.state(s.clock()) == CLOSED

        # The tenant fixes its key: after the cool-down its trial call closes its breaker.
        s.provider.good.add("revoked-key-0001")
        s.clock.now += 30
        assert (await s.generated(bad))["status"] == "succeeded"
        assert await s.status(bad) == "available"


async def test_a_tenants_own_exhausted_key_backs_off_that_tenant_only(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with scoped(settings, monkeypatch) as s:
        own = await own_key(s.gw, s.provider.name, "own-empty-key")
        s.provider.good.add("own-empty-key")
        s.provider.exhausted.add("own-empty-key")
        other = await s.gw.tenant()
        failed = await s.generated(own)
        assert failed["attempts"][0]["retry_after_s"] == 60
        # Its Retry-After keeps that tenant away, not the others.
        assert await s.status(own) == "rate_limited"
        refused = await s.submit(own)
        assert refused.status_code == 503, refused.text
        assert await s.status(other) == "available"
        assert (await s.generated(other))["status"] == "succeeded"
        assert (await s.operator())["backoff_until"] is None
        s.clock.now += 60
        assert await s.status(own) == "available"


async def test_platform_key_failures_still_open_the_shared_breaker(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with scoped(settings, monkeypatch) as s:
        first, second = await s.gw.tenant(), await s.gw.tenant()
        own = await own_key(s.gw, s.provider.name, "own-good-key")
        s.provider.good.add("own-good-key")
        s.provider.down = True
        for _ in range(2):
            assert (await s.generated(first))["status"] == "failed"
        refused = await s.submit(second)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "providers_unavailable"
        state = await s.operator()
        assert (state["status"], state["consecutive_failures"]) == ("circuit_open", 2)
        # The platform's breaker is not the tenant's own key's: that one is still tried.
        assert await s.status(own) == "available"
        s.provider.down = False
        assert (await s.generated(own))["status"] == "succeeded"


# --- pinning a provider nobody holds a key for -----------------------------------------------


async def test_pinning_an_unconfigured_provider_is_422_with_nothing_reserved(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = keyed()
    env = f"MEDIAHUB_{provider_env_name(provider.name)}_API_KEY"
    monkeypatch.delenv(env, raising=False)
    async with running_gateway(settings, extra=[ProvidersPlugin(provider)]) as gw:
        tenant = await gw.tenant()
        body = {**IMAGE, "provider": provider.name}
        for path in ("/v1/generations", "/v1/generations/estimate"):
            r = await gw.client.post(path, headers=tenant.auth, json=body)
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert (error["type"], error["code"], error["param"]) == (
                "invalid_request_error", "provider_unconfigured", "provider")
            assert provider.name in error["message"]
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert balance["pending"] == 0
        listed = await gw.client.get("/v1/generations", headers=tenant.auth)
        assert listed.json()["data"] == []
        assert provider.seen == []

        # A key of the tenant's own, or the platform's, makes the same request acceptable.
        owner = await own_key(gw, provider.name, PLATFORM_KEY)
        accepted = await gw.client.post("/v1/generations", headers=owner.auth, json=body)
        assert accepted.status_code == 202, accepted.text
        monkeypatch.setenv(env, PLATFORM_KEY)
        accepted = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
        assert accepted.status_code == 202, accepted.text


# --- calls in flight are seen by every process -----------------------------------------------


async def test_calls_in_flight_in_one_process_are_seen_by_anothers_ranking(
        database_url: str, tmp_path: Path, valkey: str) -> None:
    busy = scripted(uniq("a-busy"), capacity=2)
    idle = scripted(uniq("b-idle"), capacity=2)
    settings = make_settings(database_url, tmp_path, valkey_url=valkey)
    async with running_gateway(settings, extra=[ProvidersPlugin(busy, idle)],
                               blocked=NO_LOCAL) as gw:
        # The worker: another process's services over the same database and Valkey.
        worker = await Services.start(settings, with_queue=False, plugins=build_plugin_host(
            load_entry_points=False, extra=[ProvidersPlugin(busy, idle)], blocked=NO_LOCAL))
        try:
            api = gw.services.providers
            estimates = {busy.name: 10_000, idle.name: 10_000}

            async def ranked() -> list[str]:
                await api.refresh(gw.runtime)
                return [p.name for p in api.rank([busy, idle], "cheapest", estimates)]

            assert await ranked() == [busy.name, idle.name]  # equal: by name
            for _ in range(2):
                assert await worker.providers.acquire(busy) == (None, False)
            # At capacity in the worker: the API process ranks it last.
            assert await ranked() == [idle.name, busy.name]
            assert api.stats(busy).in_flight == 2
            await worker.providers.finish(busy, trial=False)
            assert api.stats(busy).in_flight == 2  # as of the last read
            await api.refresh(gw.runtime)
            assert api.stats(busy).in_flight == 1
            await worker.providers.finish(busy, trial=False)
            assert await ranked() == [busy.name, idle.name]
            assert api.stats(busy).in_flight == 0
        finally:
            await worker.close()
