"""Which providers a tenant's generations may go to: offline engines only for tenants or
requests that chose them, and the allow list (the tenant's, else the operator's default).

End to end through the gateway on SQLite and PostgreSQL with scripted remote providers, the
real offline image engine (`local-image`), and the operator's default left at the product's
(`default_allowed_providers=()`: every remote provider), unlike the other tests' fixtures.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.core.settings import SettingsError, load_settings
from gateway.providers.states import ProviderStates, health_check_all
from plugins.errors import error_for_status
from plugins.provider import Health, Provider
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


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@dataclass
class Allowing:
    gw: Gateway
    states: ProviderStates

    async def submit(self, tenant: Tenant, **fields: Any) -> dict[str, Any]:
        r = await self.gw.client.post("/v1/generations", headers=tenant.auth,
                                      json={**IMAGE, **fields})
        assert r.status_code == 202, r.text
        await self.gw.drain()
        done = await self.gw.client.get(f"/v1/generations/{r.json()['id']}",
                                        headers=tenant.auth)
        body: dict[str, Any] = done.json()
        return body

    async def estimate(self, tenant: Tenant) -> str:
        r = await self.gw.client.post("/v1/generations/estimate", headers=tenant.auth,
                                      json=IMAGE)
        assert r.status_code == 200, r.text
        return str(r.json()["provider"])


@contextlib.asynccontextmanager
async def allowing(database_url: str, tmp_path: Path, *providers: Provider,
                   default: tuple[str, ...] = ()) -> AsyncIterator[Allowing]:
    settings = make_settings(database_url, tmp_path, default_allowed_providers=default)
    async with running_gateway(settings, extra=[ProvidersPlugin(*providers)]) as gw:
        states = ProviderStates(clock=Clock(), config=RoutingConfig(failure_threshold=2,
                                                                    cooldown_s=30))
        gw.services.providers = states
        yield Allowing(gw=gw, states=states)


def attempts(generation: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["provider"], a["outcome"], a["error_code"]) for a in generation["attempts"]]


async def test_a_failing_remote_provider_never_hands_a_tenant_to_a_local_engine(
        database_url: str, tmp_path: Path) -> None:
    remote = scripted(uniq("remote"))
    remote.health_result = Health(ok=False, detail="maintenance")
    async with allowing(database_url, tmp_path, remote) as a:
        tenant = await a.gw.tenant(credits_mc=100_000)
        await health_check_all(a.gw.runtime, a.states)
        # Unhealthy, yet the only provider this tenant allows: tried, never local-image.
        remote.script = [error_for_status(503), error_for_status(503)]
        for _ in range(2):
            failed = await a.submit(tenant)
            assert failed["status"] == "failed"
            assert attempts(failed) == [(remote.name, "failed", "server_error")]
        # Its breaker open: 503 with nothing reserved, rather than a Pillow drawing.
        refused = await a.gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "providers_unavailable"
        balance = (await a.gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert (balance["available"], balance["pending"]) == (100_000, 0)


async def test_local_engines_serve_only_tenants_and_requests_that_chose_them(
        database_url: str, tmp_path: Path) -> None:
    async with allowing(database_url, tmp_path) as a:  # no remote provider at all
        plain = await a.gw.tenant()
        r = await a.gw.client.post("/v1/generations", headers=plain.auth, json=IMAGE)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "no_provider"
        # A request that pins the engine chose it.
        pinned = await a.submit(plain, provider="local-image")
        assert (pinned["status"], pinned["provider"]) == ("succeeded", "local-image")
        # So does a tenant that names it in its allow list, `*`, or its routing order.
        for routing in ({"allowed_providers": ["local-image"]}, {"allowed_providers": ["*"]},
                        {"strategy": "pinned", "order": ["local-image"]}):
            chose = await a.gw.tenant(routing=routing)
            done = await a.submit(chose)
            assert (done["status"], done["provider"]) == ("succeeded", "local-image")


async def test_routing_and_failover_stay_within_the_tenants_allow_list(
        database_url: str, tmp_path: Path) -> None:
    cheap = scripted(uniq("cheap"), cost_usd_micros=1_000)
    dear = scripted(uniq("dear"), cost_usd_micros=90_000)
    async with allowing(database_url, tmp_path, cheap, dear) as a:
        everyone = await a.gw.tenant(routing={"strategy": "cheapest"})
        assert await a.estimate(everyone) == cheap.name
        only_dear = await a.gw.tenant(routing={"strategy": "cheapest",
                                               "allowed_providers": [dear.name]})
        assert await a.estimate(only_dear) == dear.name
        dear.script = [error_for_status(503)]
        failed = await a.submit(only_dear)
        # No failover to the cheap one (not allowed) nor to local-image.
        assert attempts(failed) == [(dear.name, "failed", "server_error")]
        assert cheap.calls == 0
        # The allow list also includes offline engines when named: failover reaches them.
        with_local = await a.gw.tenant(routing={
            "strategy": "cheapest", "allowed_providers": [dear.name, "local-image"]})
        dear.script = [error_for_status(503)]
        served = await a.submit(with_local)
        assert attempts(served) == [(dear.name, "failed", "server_error"),
                                    ("local-image", "succeeded", None)]


async def test_the_operators_default_applies_to_tenants_without_a_list(
        database_url: str, tmp_path: Path) -> None:
    cheap = scripted(uniq("cheap"), cost_usd_micros=1_000)
    dear = scripted(uniq("dear"), cost_usd_micros=90_000)
    async with allowing(database_url, tmp_path, cheap, dear, default=(dear.name,)) as a:
        plain = await a.gw.tenant(routing={"strategy": "cheapest"})
        assert await a.estimate(plain) == dear.name
        own = await a.gw.tenant(routing={"strategy": "cheapest",
                                         "allowed_providers": [cheap.name, dear.name]})
        assert await a.estimate(own) == cheap.name


async def test_an_allow_list_naming_a_provider_not_installed_is_422(gateway: Gateway) -> None:
    created = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(), json={
        "name": "T", "slug": uniq("t"), "routing": {"allowed_providers": ["*", "nobody"]}})
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "unknown_provider"
    assert created.json()["error"]["param"] == "routing.allowed_providers[1]"
    tenant = await gateway.tenant()
    patched = await gateway.client.patch(
        f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
        json={"routing": {"allowed_providers": ["local-image", "nobody"]}})
    assert patched.status_code == 422, patched.text
    assert patched.json()["error"]["param"] == "routing.allowed_providers[1]"
    for bad in (["local-image", "local-image"], ["Not A Name"]):
        r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}",
                                       headers=gateway.admin(),
                                       json={"routing": {"allowed_providers": bad}})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["param"].startswith("routing")
    ok = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                    json={"routing": {"allowed_providers": ["local-image"]}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["routing"]["allowed_providers"] == ["local-image"]


def test_the_default_allow_list_setting() -> None:
    assert load_settings({}).default_allowed_providers == ()
    assert load_settings({"MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS": "openai, local-image,*"}
                         ).default_allowed_providers == ("openai", "local-image", "*")
    with pytest.raises(SettingsError, match="MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS"):
        load_settings({"MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS": "Open AI"})
