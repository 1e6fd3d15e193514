"""Routing, failover, circuit breakers and provider state.

The pure parts (plugins/routing/, the error classification of plugins/errors.py) are tested
directly with controlled inputs; the rest end to end through the gateway on SQLite and
PostgreSQL, with scripted providers from conftest and an injected clock (no sleeps).

The `providers` table is shared by every test of a PostgreSQL session, so each test names its
providers uniquely.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select

from gateway.core.jobs import TaskRegistry, run_periodic
from gateway.core.settings import Settings
from gateway.generations import worker as pipeline
from gateway.generations.models import Generation
from gateway.providers.models import ProviderState
from gateway.providers.states import HEALTH_INTERVAL_S, ProviderStates, health_check_all
from plugins.errors import (
    ProviderError,
    error_for_status,
    error_from_exception,
    parse_retry_after,
)
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
)
from plugins.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from plugins.routing.policy import Weights
from plugins.routing.rank import rank, scores
from plugins.routing.stats import ProviderStats, RoutingConfig
from tenants.schemas import TenantRouting
from tests.conftest import Gateway, ProvidersPlugin, Tenant, running_gateway, scripted

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk"}
T0 = 1_800_000_000.0


# --- pure: the circuit breaker --------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30)
    assert breaker.state(T0) == CLOSED
    breaker.record_failure(T0)
    breaker.record_failure(T0 + 1)
    breaker.record_success(T0 + 2)  # a success resets the count
    breaker.record_failure(T0 + 3)
    breaker.record_failure(T0 + 4)
    assert breaker.state(T0 + 4) == CLOSED
    breaker.record_failure(T0 + 5)
    assert breaker.state(T0 + 5) == OPEN
    assert not breaker.allows(T0 + 34.9)
    assert breaker.state(T0 + 35) == HALF_OPEN

    # Half-open lets exactly one trial through.
    assert breaker.try_acquire(T0 + 35)
    assert not breaker.allows(T0 + 36)
    assert not breaker.try_acquire(T0 + 36)
    breaker.record_success(T0 + 37)
    assert breaker.state(T0 + 37) == CLOSED
    assert breaker.allows(T0 + 37)


def test_a_failed_trial_opens_the_breaker_again_for_a_new_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    breaker.record_failure(T0)
    assert breaker.state(T0 + 10) == HALF_OPEN
    assert breaker.try_acquire(T0 + 10)
    breaker.record_failure(T0 + 12)
    assert breaker.state(T0 + 12) == OPEN
    assert breaker.state(T0 + 21) == OPEN
    assert breaker.state(T0 + 22) == HALF_OPEN


def test_a_lost_trial_frees_its_slot_after_the_trial_timeout() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10, trial_timeout_s=60)
    breaker.record_failure(T0)
    assert breaker.try_acquire(T0 + 10)
    assert not breaker.allows(T0 + 69)
    assert breaker.allows(T0 + 70)


# --- pure: ranking --------------------------------------------------------------------------


@dataclass(frozen=True)
class P:
    name: str
    local: bool = False


def stats(*, latency_ms: float | None = None, error: float = 0.0, in_flight: int = 0,
          capacity: int = 4, at: float = T0, healthy: bool | None = None) -> ProviderStats:
    s = ProviderStats(capacity=capacity, in_flight=in_flight, error_ewma=error,
                      error_at=at if error else None, healthy=healthy)
    if latency_ms is not None:
        s.latency_ewma_ms, s.latency_at = latency_ms, at
    return s


def names(providers: list[P]) -> list[str]:
    return [p.name for p in providers]


A, B, C = P("a"), P("b"), P("c")
COSTS = {"a": 30_000, "b": 10_000, "c": 20_000}


def test_cheapest_ranks_by_estimate() -> None:
    assert names(rank([A, B, C], "cheapest", COSTS, {}, T0)) == ["b", "c", "a"]


def test_fastest_ranks_by_observed_latency_and_unknown_counts_as_the_mean() -> None:
    table = {"a": stats(latency_ms=100), "b": stats(latency_ms=900)}
    # c was never observed: it counts as the mean (500), between a and b.
    assert names(rank([A, B, C], "fastest", COSTS, table, T0)) == ["a", "c", "b"]


def test_latency_decays_towards_neutral_with_age() -> None:
    s = stats(latency_ms=1000, at=T0)
    assert s.latency(T0, 600, 200) == 1000
    assert s.latency(T0 + 600, 600, 200) == pytest.approx(600)  # half way back
    assert s.latency(T0 + 60_000, 600, 200) == pytest.approx(200)
    failing = stats(error=0.8, at=T0)
    assert failing.error_rate(T0 + 600, 600) == pytest.approx(0.4)


def test_a_tenants_routing_policy_holds_the_routing_weights_themselves() -> None:
    # One definition: what a tenant stores is what `rank` reads, with no copy in between.
    policy = msgspec.convert({"strategy": "balanced", "weights": {"speed": 3}}, TenantRouting)
    assert isinstance(policy.weights, Weights)
    assert policy.weights == Weights(speed=3)
    with pytest.raises(ValueError, match="at least one weight"):
        Weights(cost=0, speed=0, load=0, availability=0)


def test_balanced_weighs_cost_speed_load_and_availability() -> None:
    # b is cheapest; with nothing else known, balanced picks it.
    assert names(rank([A, B, C], "balanced", COSTS, {}, T0))[0] == "b"
    # b busy at capacity and failing: it drops below the others.
    table = {"b": stats(in_flight=4, capacity=4, error=0.9)}
    assert names(rank([A, B, C], "balanced", COSTS, table, T0)) == ["c", "a", "b"]
    # With weights all on speed, the fast one wins whatever it costs.
    table = {"a": stats(latency_ms=50), "b": stats(latency_ms=2000),
             "c": stats(latency_ms=800)}
    speed_only = Weights(cost=0, speed=1, load=0, availability=0)
    assert names(rank([A, B, C], "balanced", COSTS, table, T0,
                      weights=speed_only)) == ["a", "c", "b"]
    got = scores([A, B, C], COSTS, table, T0)
    assert got["b"]["cost"] == 1.0
    assert got["a"]["speed"] == 1.0
    assert 0 < got["a"]["cost"] < got["c"]["cost"] < 1


def test_pinned_order_first_then_the_others_or_none() -> None:
    assert names(rank([A, B, C], "pinned", COSTS, {}, T0, order=["a", "x"])) == ["a", "b", "c"]
    assert names(rank([A, B, C], "pinned", COSTS, {}, T0, order=["c", "a"],
                      include_others=False)) == ["c", "a"]


def test_open_breakers_and_backoffs_are_skipped_half_open_is_kept() -> None:
    broken = stats()
    broken.breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30)
    broken.record_failure(T0)
    backing_off = stats()
    backing_off.record_failure(T0, retry_after_s=60)
    table = {"b": broken, "c": backing_off}
    assert names(rank([A, B, C], "cheapest", COSTS, table, T0 + 1)) == ["a"]
    # A pinned order cannot bring an open breaker back.
    assert names(rank([A, B, C], "pinned", COSTS, table, T0 + 1, order=["b"])) == ["a"]
    # Cool-down over: b half-open (kept, for its one trial); c's Retry-After passed too.
    assert names(rank([A, B, C], "cheapest", COSTS, table, T0 + 60)) == ["b", "c", "a"]
    assert rank([B], "cheapest", COSTS, table, T0 + 1) == []


def test_tiers_local_last_unhealthy_last_full_after_headroom() -> None:
    local = P("l", local=True)
    costs = {**COSTS, "l": 1}
    assert names(rank([A, local, C], "cheapest", costs, {}, T0)) == ["c", "a", "l"]
    table = {"c": stats(healthy=False)}
    assert names(rank([A, local, C], "cheapest", costs, table, T0)) == ["a", "l", "c"]
    table = {"c": stats(in_flight=4, capacity=4)}
    assert names(rank([A, C], "cheapest", costs, table, T0)) == ["a", "c"]
    # A tenant's pinned order keeps its order whatever the tier.
    assert names(rank([A, local, C], "pinned", costs, {}, T0, order=["l"])) == ["l", "c", "a"]


def test_rank_is_deterministic_and_rejects_unknown_strategies() -> None:
    same = {"a": 1, "b": 1, "c": 1}
    assert names(rank([C, B, A], "cheapest", same, {}, T0)) == ["a", "b", "c"]
    assert names(rank([C, B, A], "balanced", same, {}, T0)) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unknown routing strategy"):
        rank([A], "random", COSTS, {}, T0)


# --- pure: error classification -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, "rate_limited", True), (500, "server_error", True), (502, "server_error", True),
     (503, "server_error", True), (504, "timeout", True), (408, "timeout", True),
     (401, "auth", False), (403, "auth", False), (400, "invalid_input", False),
     (422, "invalid_input", False), (451, "content_policy", False)],
)
def test_http_statuses_are_classified(status: int, code: str, retryable: bool) -> None:
    error = error_for_status(status)
    assert (error.code, error.retryable) == (code, retryable)


def test_retry_after_as_seconds_or_http_date() -> None:
    response = httpx.Response(429, headers={"Retry-After": "17"})
    assert error_from_exception(
        httpx.HTTPStatusError("x", request=httpx.Request("GET", "http://p"),
                              response=response)).retry_after_s == 17
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=now) == 60
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0
    for bad in (None, "", "soon", "-5", "nan"):
        assert parse_retry_after(bad) is None
    assert error_for_status(400, code="content_policy").retryable is False


def test_exceptions_are_classified() -> None:
    assert error_from_exception(TimeoutError()).code == "timeout"
    assert error_from_exception(httpx.ReadTimeout("slow")).code == "timeout"
    assert error_from_exception(httpx.ConnectError("refused")).code == "network_error"
    crash = error_from_exception(KeyError("oops"))
    assert (crash.code, crash.retryable) == ("provider_error", True)
    assert not ProviderError.content_policy().provider_fault
    assert ProviderError.auth().provider_fault
    assert ProviderError.rate_limited(retry_after_s=3).provider_fault


# --- end to end -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@dataclass
class Routed:
    gw: Gateway
    clock: Clock
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

    async def providers(self, tenant: Tenant) -> dict[str, dict[str, Any]]:
        r = await self.gw.client.get("/v1/providers", headers=tenant.auth)
        assert r.status_code == 200, r.text
        return {p["name"]: p for p in r.json()["data"]}

    async def estimate(self, tenant: Tenant) -> str:
        r = await self.gw.client.post("/v1/generations/estimate", headers=tenant.auth,
                                      json=IMAGE)
        assert r.status_code == 200, r.text
        provider: str = r.json()["provider"]
        return provider


@contextlib.asynccontextmanager
async def routed(settings: Settings, *providers: Provider, keep_local: bool = False,
                 config: RoutingConfig | None = None) -> AsyncIterator[Routed]:
    blocked = [] if keep_local else ["plugins.builtin.local.image"]
    async with running_gateway(settings, extra=[ProvidersPlugin(*providers)],
                               blocked=blocked) as gw:
        clock = Clock()
        states = ProviderStates(clock=clock, config=config or RoutingConfig(
            failure_threshold=2, cooldown_s=30))
        gw.services.providers = states
        yield Routed(gw=gw, clock=clock, states=states)


def attempts(generation: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["provider"], a["outcome"], a["error_code"]) for a in generation["attempts"]]


async def balance(gw: Gateway, tenant: Tenant) -> dict[str, int]:
    r = await gw.client.get("/v1/credits/balance", headers=tenant.auth)
    body: dict[str, int] = r.json()
    return body


@pytest.mark.parametrize("failure", ["hang", "read_timeout", "503", "502"])
async def test_fails_over_on_timeouts_and_5xx(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, failure: str,
) -> None:
    monkeypatch.setattr(pipeline, "PROVIDER_TIMEOUT_S", 0.05)
    first, second = scripted(uniq("first"), cost_usd_micros=10_000), scripted(
        uniq("second"), cost_usd_micros=20_000)
    step: BaseException | str = {
        "hang": "hang", "read_timeout": httpx.ReadTimeout("slow"),
        "503": error_for_status(503, "overloaded"), "502": error_for_status(502)}[failure]
    first.script = [step]
    expected = "server_error" if failure in ("503", "502") else "timeout"
    async with routed(settings, first, second) as r:
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert done["status"] == "succeeded", done
        assert done["provider"] == second.name
        assert attempts(done) == [(first.name, "failed", expected),
                                  (second.name, "succeeded", None)]
        assert all(a["latency_ms"] >= 0 for a in done["attempts"])
        assert (first.calls, second.calls) == (1, 1)
        assert (await balance(r.gw, tenant))["pending"] == 0


async def test_fails_over_on_429_and_keeps_away_until_retry_after(settings: Settings) -> None:
    first, second = scripted(uniq("first"), cost_usd_micros=10_000), scripted(
        uniq("second"), cost_usd_micros=20_000)
    first.script = [error_for_status(429, "slow down", retry_after="120")]
    async with routed(settings, first, second) as r:
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert done["provider"] == second.name
        assert done["attempts"][0] == {"provider": first.name, "outcome": "failed",
                                       "error_code": "rate_limited",
                                       "latency_ms": done["attempts"][0]["latency_ms"],
                                       "retry_after_s": 120.0}
        listed = await r.providers(tenant)
        assert listed[first.name]["status"] == "rate_limited"
        assert listed[second.name]["status"] == "available"

        # While the Retry-After runs, the first provider is not even a candidate.
        assert await r.estimate(tenant) == second.name
        again = await r.submit(tenant)
        assert attempts(again) == [(second.name, "succeeded", None)]
        assert first.calls == 1

        r.clock.advance(121)
        assert (await r.providers(tenant))[first.name]["status"] == "available"
        back = await r.submit(tenant)
        assert attempts(back) == [(first.name, "succeeded", None)]


@pytest.mark.parametrize(
    ("error", "code"),
    [(ProviderError.content_policy("refused: violence"), "content_policy"),
     (error_for_status(400, "size not supported"), "invalid_input"),
     (error_for_status(401, "bad key"), "auth")],
)
async def test_final_errors_do_not_fail_over(settings: Settings, error: ProviderError,
                                             code: str) -> None:
    first, second = scripted(uniq("first"), cost_usd_micros=10_000), scripted(
        uniq("second"), cost_usd_micros=20_000)
    first.script = [error]
    async with routed(settings, first, second) as r:
        tenant = await r.gw.tenant(credits_mc=100_000, routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert done["status"] == "failed"
        assert done["error"] == {"code": code, "message": error.message}
        assert done["provider"] == first.name
        assert attempts(done) == [(first.name, "failed", code)]
        assert second.calls == 0
        assert done["cost"]["charged"] is None
        assert (await balance(r.gw, tenant))["available"] == 100_000
        # A content or input refusal is not the provider's fault; a bad key is.
        held = r.states.stats(first.name).breaker.consecutive_failures
        assert held == (1 if code == "auth" else 0)


async def test_every_candidate_failing_fails_the_generation_and_voids(
    settings: Settings,
) -> None:
    first, second = scripted(uniq("first"), cost_usd_micros=10_000), scripted(
        uniq("second"), cost_usd_micros=20_000)
    first.script = [error_for_status(500)]
    second.script = [error_for_status(503, "down for maintenance")]
    async with routed(settings, first, second) as r:
        tenant = await r.gw.tenant(credits_mc=100_000, routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert done["status"] == "failed"
        assert done["error"] == {"code": "server_error", "message": "down for maintenance"}
        assert done["provider"] == second.name
        assert attempts(done) == [(first.name, "failed", "server_error"),
                                  (second.name, "failed", "server_error")]
        assert (await balance(r.gw, tenant))["available"] == 100_000


async def test_a_pinned_request_never_fails_over(settings: Settings) -> None:
    first, second = scripted(uniq("first")), scripted(uniq("second"))
    second.script = [error_for_status(503)]
    async with routed(settings, first, second) as r:
        tenant = await r.gw.tenant(credits_mc=100_000)
        done = await r.submit(tenant, provider=second.name)
        assert done["status"] == "failed"
        assert attempts(done) == [(second.name, "failed", "server_error")]
        assert first.calls == 0
        async with r.gw.runtime.db.session() as session:
            row = await session.get(Generation, done["id"])
        assert row is not None
        assert row.candidates == [second.name]


async def test_failover_to_a_dearer_provider_charges_at_most_the_reservation(
    settings: Settings,
) -> None:
    cheap = scripted(uniq("cheap"), cost_usd_micros=10_000)
    dear = scripted(uniq("dear"), cost_usd_micros=100_000, actual_usd_micros=100_000)
    cheap.script = [error_for_status(500)]
    async with routed(settings, cheap, dear) as r:
        tenant = await r.gw.tenant(credits_mc=1_000_000, routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert done["provider"] == dear.name
        assert done["cost"]["charged"] == done["cost"]["estimated"]
        assert await balance(r.gw, tenant) == {
            "available": 1_000_000 - done["cost"]["estimated"], "pending": 0,
            "posted": 1_000_000 - done["cost"]["estimated"], "unit": "millicredit",
            "object": "balance"}
        async with r.gw.runtime.db.session() as session:
            row = await session.get(Generation, done["id"])
        assert row is not None
        assert row.cost_usd_micros == 100_000  # what the provider really cost


async def test_breaker_opens_skips_the_provider_and_recovers_after_cooldown(
    settings: Settings,
) -> None:
    flaky = scripted(uniq("flaky"), cost_usd_micros=10_000)
    steady = scripted(uniq("steady"), cost_usd_micros=20_000)
    flaky.script = [error_for_status(503), error_for_status(503)]
    async with routed(settings, flaky, steady) as r:  # threshold 2, cool-down 30 s
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        for _ in range(2):
            done = await r.submit(tenant)
            assert attempts(done) == [(flaky.name, "failed", "server_error"),
                                      (steady.name, "succeeded", None)]
        listed = await r.providers(tenant)
        assert listed[flaky.name]["status"] == "circuit_open"
        assert listed[flaky.name]["error_rate"] > 0

        # Open: skipped at routing, so it is not called and the price is the next one's.
        skipped = await r.submit(tenant)
        assert attempts(skipped) == [(steady.name, "succeeded", None)]
        assert flaky.calls == 2
        admin = await r.gw.client.get("/admin/v1/providers", headers=r.gw.admin())
        state = {p["name"]: p for p in admin.json()["data"]}[flaky.name]
        assert (state["breaker"], state["consecutive_failures"]) == ("open", 2)
        assert (state["calls"], state["failures"]) == (2, 2)

        # Cool-down over: half-open, one trial goes through, succeeds and closes it.
        r.clock.advance(30)
        assert (await r.providers(tenant))[flaky.name]["status"] == "available"
        trial = await r.submit(tenant)
        assert attempts(trial) == [(flaky.name, "succeeded", None)]
        assert r.states.stats(flaky.name).breaker.state(r.clock()) == "closed"
        admin = await r.gw.client.get("/admin/v1/providers", headers=r.gw.admin())
        state = {p["name"]: p for p in admin.json()["data"]}[flaky.name]
        assert (state["breaker"], state["status"]) == ("closed", "available")


async def test_successes_are_written_at_most_every_interval_and_flushed_at_the_end(
        settings: Settings) -> None:
    steady = scripted(uniq("steady"))
    async with routed(settings, steady) as r:
        tenant = await r.gw.tenant()

        async def written_calls() -> int:
            async with r.gw.runtime.db.session() as session:
                row = await session.get(ProviderState, steady.name)
            return 0 if row is None else row.calls

        for _ in range(3):
            await r.submit(tenant)
        # The first success is written; the next two (same second, no breaker change) wait.
        assert await written_calls() == 1
        r.clock.advance(r.states.persist_interval_s)
        await r.submit(tenant)
        assert await written_calls() == 4
        await r.submit(tenant)
        assert await written_calls() == 4
        await r.states.flush(r.gw.runtime)
        assert await written_calls() == 5
        assert steady.calls == 5


async def test_a_breaker_opened_in_one_process_is_seen_by_another(settings: Settings) -> None:
    flaky, steady = scripted(uniq("flaky"), cost_usd_micros=1), scripted(uniq("steady"))
    flaky.script = [error_for_status(500), error_for_status(500)]
    async with routed(settings, flaky, steady) as r:
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        await r.submit(tenant)
        await r.submit(tenant)
        other = ProviderStates(clock=r.clock)  # another process's view: empty until refresh
        assert other.stats(flaky.name).breaker.state(r.clock()) == CLOSED
        await other.refresh(r.gw.runtime)
        assert other.stats(flaky.name).breaker.state(r.clock()) == OPEN
        assert other.stats(flaky.name).error_rate(r.clock()) > 0

        reset = await r.gw.client.post(f"/admin/v1/providers/{flaky.name}/reset",
                                       headers=r.gw.admin())
        assert reset.status_code == 200, reset.text
        assert (await r.providers(tenant))[flaky.name]["status"] == "available"
        r.clock.advance(1)
        await other.refresh(r.gw.runtime, force=True)
        assert other.stats(flaky.name).breaker.state(r.clock()) == CLOSED
        missing = await r.gw.client.post("/admin/v1/providers/nobody/reset",
                                         headers=r.gw.admin())
        assert missing.status_code == 404


async def test_tenant_strategy_set_through_the_admin_api_changes_the_choice(
    settings: Settings,
) -> None:
    cheap = scripted(uniq("cheap"), cost_usd_micros=10_000)
    fast = scripted(uniq("fast"), cost_usd_micros=30_000)
    async with routed(settings, cheap, fast) as r:
        tenant = await r.gw.tenant()
        read = await r.gw.client.get(f"/admin/v1/tenants/{tenant.id}", headers=r.gw.admin())
        assert read.json()["routing"]["strategy"] == "balanced"
        assert await r.estimate(tenant) == cheap.name  # balanced, nothing observed yet

        # Observed latencies: `fast` answers in 100 ms, `cheap` in 3 s.
        for provider, latency in ((fast, 100.0), (cheap, 3000.0)):
            s = r.states.stats(provider)
            s.latency_ewma_ms, s.latency_at = latency, r.clock()

        async def set_routing(routing: dict[str, Any]) -> httpx.Response:
            return await r.gw.client.patch(f"/admin/v1/tenants/{tenant.id}",
                                           headers=r.gw.admin(), json={"routing": routing})

        changed = await set_routing({"strategy": "fastest"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["routing"]["strategy"] == "fastest"
        assert await r.estimate(tenant) == fast.name
        assert (await set_routing({"strategy": "cheapest"})).status_code == 200
        assert await r.estimate(tenant) == cheap.name
        assert (await set_routing({"strategy": "balanced", "weights": {
            "cost": 0, "speed": 1, "load": 0, "availability": 0}})).status_code == 200
        assert await r.estimate(tenant) == fast.name

        pinned = await set_routing({"strategy": "pinned", "order": [fast.name],
                                    "include_others": False})
        assert pinned.json()["routing"] == {"strategy": "pinned", "order": [fast.name],
                                            "include_others": False, "weights": None,
                                            "allowed_providers": None}
        done = await r.submit(tenant)
        assert done["provider"] == fast.name
        async with r.gw.runtime.db.session() as session:
            row = await session.get(Generation, done["id"])
        assert row is not None
        assert row.candidates == [fast.name]

        # Pinned order only, and its one provider failing: nothing else is tried.
        fast.script = [error_for_status(503)]
        failed = await r.submit(tenant)
        assert attempts(failed) == [(fast.name, "failed", "server_error")]
        assert cheap.calls == 0

        # With the others allowed they follow the order.
        await set_routing({"strategy": "pinned", "order": [fast.name]})
        fast.script = [error_for_status(503)]
        served = await r.submit(tenant)
        assert attempts(served) == [(fast.name, "failed", "server_error"),
                                    (cheap.name, "succeeded", None)]


@pytest.mark.parametrize(
    "routing",
    [{"strategy": "random"}, {"strategy": "pinned"}, {"strategy": "pinned", "order": []},
     {"strategy": "cheapest", "order": ["a"]}, {"strategy": "pinned", "order": ["a", "a"]},
     {"strategy": "pinned", "order": ["Not A Name"]}, {"strategy": "balanced", "x": 1},
     {"strategy": "balanced", "weights": {"cost": 0, "speed": 0, "load": 0,
                                          "availability": 0}}],
)
async def test_invalid_tenant_routing_is_422(gateway: Gateway, routing: dict[str, Any]) -> None:
    r = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                  json={"name": "T", "slug": uniq("t"), "routing": routing})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"].startswith("routing")


async def test_all_candidates_open_is_503_with_nothing_reserved(settings: Settings) -> None:
    only = scripted(uniq("only"))
    only.script = [error_for_status(500), error_for_status(500)]
    async with routed(settings, only) as r:
        tenant = await r.gw.tenant(credits_mc=100_000)
        for _ in range(2):
            assert (await r.submit(tenant))["status"] == "failed"
        refused = await r.gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "providers_unavailable"
        pinned = await r.gw.client.post("/v1/generations", headers=tenant.auth,
                                        json={**IMAGE, "provider": only.name})
        assert pinned.status_code == 503
        assert (await balance(r.gw, tenant))["pending"] == 0


async def test_local_engines_rank_after_remote_providers(settings: Settings) -> None:
    remote = scripted(uniq("remote"), cost_usd_micros=500_000)
    remote.script = [error_for_status(503)]
    async with routed(settings, remote, keep_local=True) as r:
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        done = await r.submit(tenant)
        assert attempts(done) == [(remote.name, "failed", "server_error"),
                                  ("local-image", "succeeded", None)]
        assert done["status"] == "succeeded"


async def test_health_check_all_writes_the_table_and_the_listing_shows_it(
    settings: Settings,
) -> None:
    good = scripted(uniq("good"), cost_usd_micros=20_000)
    sick = scripted(uniq("sick"), cost_usd_micros=10_000)
    sick.health_result = Health(ok=False, detail="scheduled maintenance")
    keyless = scripted(uniq("keyless"), needs_api_key=True)
    async with routed(settings, good, sick, keyless) as r:
        tenant = await r.gw.tenant(routing={"strategy": "cheapest"})
        assert await r.estimate(tenant) == sick.name  # cheapest, not yet known to be sick

        results = await health_check_all(r.gw.runtime, r.gw.services.providers)
        assert {name: results[name] for name in (good.name, sick.name, keyless.name)} == {
            good.name: "healthy", sick.name: "unhealthy", keyless.name: "unconfigured"}
        assert keyless.health_calls == 0
        async with r.gw.runtime.db.session() as session:
            rows = {row.name: row for row in await session.scalars(
                select(ProviderState).where(ProviderState.name.in_(
                    [good.name, sick.name, keyless.name])))}
        assert rows[good.name].health == "healthy"
        assert rows[sick.name].health == "unhealthy"
        assert rows[sick.name].detail == "scheduled maintenance"
        assert rows[keyless.name].health == "unconfigured"
        assert rows[good.name].last_checked_at == datetime.fromtimestamp(T0, UTC)
        assert rows[good.name].check_latency_ms is not None

        listed = await r.providers(tenant)
        assert listed[good.name]["status"] == "available"
        assert listed[sick.name]["status"] == "unhealthy"
        assert listed[keyless.name]["status"] == "unconfigured"
        assert {"latency_ms", "error_rate"} <= set(listed[good.name])
        # An unhealthy provider ranks after the healthy ones; an unconfigured one is out.
        assert await r.estimate(tenant) == good.name

        admin = await r.gw.client.get("/admin/v1/providers", headers=r.gw.admin())
        assert admin.status_code == 200
        state = {p["name"]: p for p in admin.json()["data"]}
        assert state[sick.name]["health"] == "unhealthy"
        assert state[sick.name]["detail"] == "scheduled maintenance"
        assert state[sick.name]["last_checked_at"] is not None
        assert state[keyless.name]["configured"] is False
        nobody = await r.gw.client.get("/admin/v1/providers", headers=tenant.auth)
        assert nobody.status_code == 401

        # Checked recently (by any process): the schedule leaves it alone.
        await health_check_all(r.gw.runtime, r.gw.services.providers, min_age_s=60)
        assert good.health_calls == 1
        r.clock.advance(61)
        sick.health_result = Health(ok=True)
        checked = await r.gw.client.post("/admin/v1/providers/check", headers=r.gw.admin())
        assert checked.status_code == 200
        assert good.health_calls == 2
        assert (await r.providers(tenant))[sick.name]["status"] == "available"


async def test_a_health_check_that_raises_or_hangs_is_unhealthy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gateway.providers.states

    monkeypatch.setattr(gateway.providers.states, "HEALTH_TIMEOUT_S", 0.05)
    broken, slow = scripted(uniq("broken")), scripted(uniq("slow"))

    async def boom(credentials: Credentials, client: httpx.AsyncClient) -> Health:
        raise httpx.ConnectError("connection refused")

    async def hang(credentials: Credentials, client: httpx.AsyncClient) -> Health:
        await asyncio.Event().wait()
        return Health(ok=True)

    monkeypatch.setattr(broken, "health", boom)
    monkeypatch.setattr(slow, "health", hang)
    async with routed(settings, broken, slow) as r:
        results = await health_check_all(r.gw.runtime, r.gw.services.providers,
                                         only=[broken.name, slow.name])
        assert results == {broken.name: "unhealthy", slow.name: "unhealthy"}
        assert r.states.stats(broken.name).health_detail == "ConnectError: connection refused"
        assert "did not answer" in r.states.stats(slow.name).health_detail


async def test_the_sweeper_loop_runs_the_health_checks(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gateway.generations.tasks

    finished = asyncio.Event()
    seen: dict[str, float] = {}

    async def watched(runtime: Any, states: Any, *, min_age_s: float = 0.0) -> dict[str, str]:
        seen["min_age_s"] = min_age_s
        try:
            return await health_check_all(runtime, states, min_age_s=min_age_s)
        finally:
            finished.set()

    monkeypatch.setattr(gateway.generations.tasks, "health_check_all", watched)
    only = scripted(uniq("watched"))
    async with routed(settings, only) as r:
        # The process's own periodic health task, due at once (as after its first interval).
        [declared] = [p for p in r.gw.runtime.tasks.periodic if p.name == "providers.health"]
        registry = TaskRegistry()
        registry.every(declared.name, declared.interval_s, declared.run, first_after_s=0)
        loop = asyncio.create_task(run_periodic(registry))
        try:
            await asyncio.wait_for(finished.wait(), timeout=10)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        assert seen == {"min_age_s": HEALTH_INTERVAL_S / 2}
        assert only.health_calls == 1
        async with r.gw.runtime.db.session() as session:
            row = await session.get(ProviderState, only.name)
        assert row is not None
        assert row.health == "healthy"


class Remote(Provider):
    """An asynchronous provider: a task that is done on the second poll."""

    name = "remote-async"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    asynchronous = True

    def __init__(self) -> None:
        self.polls = 0
        self.canceled: list[str] = []

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        raise AssertionError("the gateway submits and polls an asynchronous provider")

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        return ProviderTask(task_id="task-42", poll_after_s=0)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        assert task.task_id == "task-42"
        self.polls += 1
        if self.polls < 2:
            return None
        return ProviderResult(outputs=[ProviderOutput(data=b"v", content_type="image/png")],
                              cost_usd_micros=5_000)

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        self.canceled.append(task.task_id)


async def test_an_asynchronous_provider_is_submitted_and_polled(settings: Settings) -> None:
    remote = Remote()
    async with routed(settings, remote) as r:
        tenant = await r.gw.tenant()
        done = await r.submit(tenant)
        assert done["status"] == "succeeded", done
        assert attempts(done) == [("remote-async", "succeeded", None)]
        assert remote.polls == 2
        async with r.gw.runtime.db.session() as session:
            row = await session.get(Generation, done["id"])
        assert row is not None
        assert row.attempts_log[0].task_id == "task-42"
        assert remote.canceled == []


async def test_attempts_are_listed_and_empty_before_work(settings: Settings) -> None:
    only = scripted(uniq("only"))
    async with routed(settings, only) as r:
        tenant = await r.gw.tenant()
        created = await r.gw.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert created.json()["attempts"] == []
        await r.gw.drain()
        listed = await r.gw.client.get("/v1/generations", headers=tenant.auth)
        [item] = listed.json()["data"]
        assert attempts(item) == [(only.name, "succeeded", None)]
        assert "retry_after_s" not in item["attempts"][0]


def test_decay_makes_an_old_failure_matter_less() -> None:
    s = ProviderStats()
    config = RoutingConfig(half_life_s=60)
    s.record_failure(T0, config=config)
    fresh = s.error_rate(T0, 60)
    assert fresh == pytest.approx(0.3)
    assert s.error_rate(T0 + 60, 60) == pytest.approx(0.15)
    s.record_success(T0 + 60, 100.0, config)
    assert s.error_rate(T0 + 60, 60) == pytest.approx(0.15 * 0.7)
    assert s.latency(T0 + 60, 60, None) == 100.0
