"""Rate limits: GCRA per tenant and key (Valkey and in process), concurrent-job limits and
the daily spend cap, each exact under concurrency."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from gateway.core.ratelimit import MemoryLimiter, Rate, RateLimiter, ValkeyLimiter, effective_limits
from gateway.core.settings import Settings
from gateway.generations import quotas
from gateway.generations.models import Generation
from gateway.generations.sweeps import expire_reservations
from plugins.errors import ProviderError
from tenants.kernel.db import new_id
from tenants.kernel.errors import RateLimited
from tenants.models import TenantDailySpend
from tenants.schemas import RateLimitPolicy
from tenants.service import KeyIdentity
from tests.conftest import (
    ADMIN_TOKEN,
    SECRET_KEY,
    Gate,
    GatePlugin,
    Gateway,
    Tenant,
    make_settings,
    running_gateway,
)

GATED = {"type": "image", "prompt": "x", "provider": "gate"}
T0 = int(datetime(2030, 1, 1, 23, 0, tzinfo=UTC).timestamp()) * 1_000_000
SECOND = 1_000_000


class Clock:
    """A clock the test moves by hand (microseconds since the epoch)."""

    def __init__(self, now_us: int = T0) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * SECOND)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connecting to it is refused


# --- the algorithm, on both implementations -----------------------------------------------

@pytest.fixture(params=["memory", "valkey"])
async def limiter(request: pytest.FixtureRequest, valkey: str) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    valkey_limiter = ValkeyLimiter(valkey)
    try:
        yield valkey_limiter
    finally:
        await valkey_limiter.close()


async def check(limiter: Any, keys: list[str], rates: list[Rate], now: int) -> Any:
    result = limiter.check(keys, rates, now)
    return await result if asyncio.iscoroutine(result) else result


async def test_gcra_admits_exactly_the_burst_then_refills_at_the_rate(limiter: Any) -> None:
    key = [f"t{secrets.token_hex(6)}:gcra"]
    rate = [Rate(per_minute=60, burst=5)]  # one request a second, five at once
    answers = [await check(limiter, key, rate, T0) for _ in range(8)]
    assert [a.allowed for a in answers] == [True] * 5 + [False] * 3
    assert [a.binding.remaining for a in answers[:5]] == [4, 3, 2, 1, 0]
    # Full again 1 s after the first request, 5 s after the fifth.
    assert [a.binding.reset_us for a in answers[:5]] == [s * SECOND for s in (1, 2, 3, 4, 5)]
    refused = answers[5].binding
    assert (refused.remaining, refused.retry_us, refused.reset_us) == (0, SECOND, 5 * SECOND)
    assert answers[5].headers()["Retry-After"] == "1"

    # Just before one interval passes: still refused; at the interval: exactly one more.
    assert not (await check(limiter, key, rate, T0 + SECOND - 1)).allowed
    assert (await check(limiter, key, rate, T0 + SECOND)).allowed
    assert not (await check(limiter, key, rate, T0 + SECOND)).allowed
    # 3.5 s later, three more intervals have passed: three admitted, the fourth refused.
    later = T0 + 4 * SECOND + SECOND // 2
    assert [(await check(limiter, key, rate, later)).allowed for _ in range(4)] == [
        True, True, True, False]
    # Idle long enough to fill up: never more than the burst.
    idle = T0 + 3600 * SECOND
    assert [(await check(limiter, key, rate, idle)).allowed for _ in range(6)] == [
        True] * 5 + [False]


async def test_two_limits_take_a_request_from_both_or_neither(limiter: Any) -> None:
    base = f"t{secrets.token_hex(6)}"
    tenant, key_a, key_b = f"{base}:tenant", f"{base}:a", f"{base}:b"
    tenant_rate, key_rate = Rate(60, 3), Rate(60, 2)
    a = [await check(limiter, [tenant, key_a], [tenant_rate, key_rate], T0) for _ in range(3)]
    assert [x.allowed for x in a] == [True, True, False]
    assert a[2].binding.limit == 2  # the key's limit refused it...
    b = [await check(limiter, [tenant, key_b], [tenant_rate, key_rate], T0) for _ in range(2)]
    # ...and took nothing from the tenant's: key B still gets the tenant's last request.
    assert [x.allowed for x in b] == [True, False]
    assert b[1].binding.limit == 3


# --- over HTTP ----------------------------------------------------------------------------

@pytest.fixture(params=["embedded", "valkey"])
def limit_settings(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path,
                   valkey: str) -> Settings:
    """SQLite, with the limits in process (embedded) or in Valkey."""
    shutil.copy(sqlite_template, tmp_path / "limits.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
    if request.param == "embedded":
        return make_settings(url, tmp_path)
    return make_settings(url, tmp_path, valkey_url=valkey)


async def new_key(gw: Gateway, tenant_id: str) -> dict[str, str]:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/keys", headers=gw.admin(),
                             json={"name": "another", "scopes": ["generate", "read"]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def test_headers_on_admitted_and_refused_requests(limit_settings: Settings) -> None:
    clock = Clock()
    async with running_gateway(limit_settings) as gw:
        gw.runtime.limiter.clock = clock
        tenant = await gw.tenant(rate_limits={"requests_per_minute": 30, "burst": 3,
                                              "key_requests_per_minute": 0})
        seen = []
        for _ in range(3):
            r = await gw.client.get("/v1/providers", headers=tenant.auth)
            assert r.status_code == 200, r.text
            assert "Retry-After" not in r.headers
            seen.append((r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"],
                         r.headers["RateLimit-Reset"]))
        # One request every 2 s (30 a minute): full again 2, 4, 6 s after each.
        assert seen == [("3", "2", "2"), ("3", "1", "4"), ("3", "0", "6")]
        r = await gw.client.get("/v1/credits/balance", headers=tenant.auth)
        assert r.status_code == 429
        assert r.json() == {"error": {"type": "rate_limit_error", "code": "rate_limited",
                                      "message": r.json()["error"]["message"], "param": None}}
        assert (r.headers["Retry-After"], r.headers["RateLimit-Limit"],
                r.headers["RateLimit-Remaining"], r.headers["RateLimit-Reset"]) == (
                    "2", "3", "0", "6")
        clock.advance(1.5)  # 0.5 s short: Retry-After rounds up
        r = await gw.client.get("/v1/credits/balance", headers=tenant.auth)
        assert (r.status_code, r.headers["Retry-After"]) == (429, "1")
        clock.advance(0.5)
        r = await gw.client.get("/v1/credits/balance", headers=tenant.auth)
        assert (r.status_code, r.headers["RateLimit-Remaining"]) == (200, "0")
        # The operator API is not a tenant's traffic: never limited, no headers.
        r = await gw.client.get("/admin/v1/tenants", headers=gw.admin())
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers


async def test_per_key_and_per_tenant_limits_and_tenants_apart(
        limit_settings: Settings) -> None:
    async with running_gateway(limit_settings) as gw:
        gw.runtime.limiter.clock = Clock()
        tenant = await gw.tenant(rate_limits={"requests_per_minute": 60, "burst": 5,
                                              "key_requests_per_minute": 60, "key_burst": 2})
        other = await gw.tenant(rate_limits={"requests_per_minute": 60, "burst": 5,
                                             "key_requests_per_minute": 60, "key_burst": 2})
        keys = [tenant.auth] + [await new_key(gw, tenant.id) for _ in range(3)]

        async def codes(headers: dict[str, str], n: int) -> list[int]:
            return [(await gw.client.get("/v1/providers", headers=headers)).status_code
                    for _ in range(n)]

        assert await codes(keys[0], 3) == [200, 200, 429]  # the key's burst
        assert await codes(keys[1], 3) == [200, 200, 429]
        r = await gw.client.get("/v1/providers", headers=keys[2])
        assert (r.status_code, r.headers["RateLimit-Limit"]) == (200, "5")
        # Five requests in all: the tenant's burst, whichever key sends the next.
        r = await gw.client.get("/v1/providers", headers=keys[3])
        assert (r.status_code, r.headers["RateLimit-Limit"]) == (429, "5")
        assert r.json()["error"]["code"] == "rate_limited"
        # Another tenant's limits are its own.
        assert await codes(other.auth, 3) == [200, 200, 429]


async def test_defaults_come_from_settings_and_patch_applies_at_once(tmp_path: Path,
                                                                     sqlite_template: Path
                                                                     ) -> None:
    shutil.copy(sqlite_template, tmp_path / "d.db")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", tmp_path,
                             rate_limit_requests_per_minute=60, rate_limit_burst=2,
                             rate_limit_key_requests_per_minute=0)
    async with running_gateway(settings) as gw:
        gw.runtime.limiter.clock = Clock()
        tenant = await gw.tenant()
        codes = [(await gw.client.get("/v1/providers", headers=tenant.auth)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await gw.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gw.admin(),
                                  json={"rate_limits": {"requests_per_minute": 0}})
        assert r.status_code == 200, r.text
        assert r.json()["rate_limits"] == {"requests_per_minute": 0}  # 0: no limit
        r = await gw.client.get("/v1/providers", headers=tenant.auth)
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers
        bad = await gw.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gw.admin(),
                                    json={"rate_limits": {"rpm": 5}})
        assert bad.status_code == 422
        assert bad.json()["error"]["param"] == "rate_limits.rpm"


async def test_unreachable_valkey_falls_back_to_limits_in_process(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", tmp_path,
                             valkey_url=f"redis://127.0.0.1:{closed_port()}/0")
    limiter = RateLimiter(settings, clock=Clock())
    limits = effective_limits(settings, RateLimitPolicy(
        requests_per_minute=60, burst=4, key_requests_per_minute=0))
    identity = KeyIdentity(key_id="key_x", tenant_id="ten_x", scopes=frozenset(),
                           customer_id=None)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.core.ratelimit"):
            answers = [await limiter.check(identity.tenant_id, identity.key_id, limits)
                       for _ in range(6)]
    finally:
        await limiter.close()
    assert [a.allowed for a in answers] == [True] * 4 + [False] * 2
    alerts = [r for r in caplog.records if "Valkey is unreachable" in r.getMessage()]
    assert len(alerts) == 1  # one alert, not one per request


async def test_unreachable_valkey_still_limits_over_http(tmp_path: Path,
                                                         sqlite_template: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "f.db")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", tmp_path,
                             valkey_url=f"redis://127.0.0.1:{closed_port()}/0")
    async with running_gateway(settings) as gw:
        gw.runtime.limiter.clock = Clock()
        tenant = await gw.tenant(rate_limits={"requests_per_minute": 60, "burst": 3,
                                              "key_requests_per_minute": 0})
        codes = [(await gw.client.get("/v1/providers", headers=tenant.auth)).status_code
                 for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]


# --- two gateway processes share one limit ------------------------------------------------

async def start_gateway(env: dict[str, str], port: int, cwd: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--port", str(port), cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    printed = ""
    async with asyncio.timeout(90):
        while "Application startup complete" not in printed:
            line = await proc.stdout.readline()
            assert line, f"the gateway exited early:\n{printed}"
            printed += line.decode()
    return proc


async def test_two_gateway_processes_share_one_limit(pg_url: str, valkey: str,
                                                     tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAHUB_")}
    env.update(MEDIAHUB_DATABASE_URL=pg_url, MEDIAHUB_VALKEY_URL=valkey,
               MEDIAHUB_SECRET_KEY=SECRET_KEY.decode(), MEDIAHUB_ADMIN_TOKEN=ADMIN_TOKEN,
               MEDIAHUB_STORAGE_URL=f"file://{tmp_path / 'media'}",
               MEDIAHUB_QUEUE_PREFIX=f"mhtest{secrets.token_hex(4)}")
    ports = [closed_port(), closed_port()]
    procs = []
    try:
        for port in ports:
            procs.append(await start_gateway(env, port, tmp_path))
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(timeout=30) as client:
            first = f"http://127.0.0.1:{ports[0]}"
            # One request a minute after a burst of 7: nothing refills during the test.
            r = await client.post(f"{first}/admin/v1/tenants", headers=admin, json={
                "name": "Shared", "slug": f"s-{secrets.token_hex(4)}",
                "rate_limits": {"requests_per_minute": 1, "burst": 7,
                                "key_requests_per_minute": 0}})
            assert r.status_code == 201, r.text
            k = await client.post(f"{first}/admin/v1/tenants/{r.json()['id']}/keys",
                                  headers=admin, json={"name": "k", "scopes": ["read"]})
            auth = {"Authorization": f"Bearer {k.json()['key']}"}
            answers = await asyncio.gather(*(
                client.get(f"http://127.0.0.1:{ports[i % 2]}/v1/providers", headers=auth)
                for i in range(24)))
        codes = [a.status_code for a in answers]
        assert codes.count(200) == 7, codes
        assert codes.count(429) == 17
        # Both processes admitted some and refused some: the limit is the shared one.
        by_port = [[a.status_code for a in answers[i::2]] for i in range(2)]
        assert all(429 in c for c in by_port)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            async with asyncio.timeout(30):
                await proc.wait()


# --- concurrent jobs and the daily spend cap ----------------------------------------------

async def submit_many(gw: Gateway, tenant: Tenant, n: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(
        gw.client.post("/v1/generations", headers=tenant.auth,
                       json={**GATED, "prompt": f"p{i}"}) for i in range(n))))


async def submit(gw: Gateway, tenant: Tenant) -> httpx.Response:
    return await gw.client.post("/v1/generations", headers=tenant.auth, json=GATED)


async def test_concurrent_job_limit_is_exact_under_30_concurrent_submits(
        settings: Settings) -> None:
    gate = Gate()  # closed: nothing finishes
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        tenant = await gw.tenant(rate_limits={"concurrent_jobs": {"image": 5}})
        answers = await submit_many(gw, tenant, 30)
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 5, codes
        refused = [a for a in answers if a.status_code == 429]
        assert len(refused) == 25
        assert {a.json()["error"]["code"] for a in refused} == {"concurrency_limit"}
        assert {a.json()["error"]["type"] for a in refused} == {"rate_limit_error"}
        assert all(a.headers["Retry-After"] == "5" for a in refused)
        # Nothing was reserved for a refused submit: the wallet holds five reservations.
        balance = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        accepted = [a.json() for a in answers if a.status_code == 202]
        assert balance["pending"] == sum(g["cost"]["estimated"] for g in accepted)
        # Another media type and another tenant are not affected.
        other = await gw.tenant(rate_limits={"concurrent_jobs": {"image": 5}})
        assert (await submit(gw, other)).status_code == 202
        gate.release.set()


async def test_a_slot_comes_back_on_cancel_failure_success_and_expiry(
        settings: Settings) -> None:
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        tenant = await gw.tenant(rate_limits={"concurrent_jobs": {"default": 2}})
        first, second = [(await submit(gw, tenant)).json()["id"] for _ in range(2)]
        assert (await submit(gw, tenant)).status_code == 429
        # Cancel frees a slot.
        r = await gw.client.post(f"/v1/generations/{first}/cancel", headers=tenant.auth)
        assert r.json()["status"] == "canceled"
        third = await submit(gw, tenant)
        assert third.status_code == 202
        assert (await submit(gw, tenant)).status_code == 429
        # Failure frees both.
        gate.fail_with = ProviderError("refused", code="content_policy", retryable=False)
        gate.release.set()
        await gw.drain()
        statuses = [(await gw.client.get(f"/v1/generations/{g}", headers=tenant.auth)
                     ).json()["status"] for g in (second, third.json()["id"])]
        assert statuses == ["failed", "failed"]
        # Success frees them too (the gate is open now: these finish at once).
        gate.fail_with = None
        done = [(await submit(gw, tenant)).status_code for _ in range(2)]
        assert done == [202, 202]
        await gw.drain()
        assert [(await submit(gw, tenant)).status_code for _ in range(2)] == [202, 202]
        await gw.drain()
        # Expiry: two held by a closed gate, then their reservations expire.
        gate.release.clear()
        gate.entered.clear()
        held = [(await submit(gw, tenant)).json()["id"] for _ in range(2)]
        assert (await submit(gw, tenant)).status_code == 429
        expired = await expire_reservations(gw.services, now=datetime(2999, 1, 1, tzinfo=UTC))
        assert expired >= 2  # the database is shared: other tests may leave some too
        for g in held:
            body = (await gw.client.get(f"/v1/generations/{g}", headers=tenant.auth)).json()
            assert body["error"]["code"] == "reservation_expired"
        assert (await submit(gw, tenant)).status_code == 202
        gate.release.set()


async def spent(gw: Gateway, tenant_id: str, day: date) -> int | None:
    async with gw.runtime.db.session() as session:
        return await session.scalar(select(TenantDailySpend.spent_mc).where(
            TenantDailySpend.tenant_id == tenant_id, TenantDailySpend.day == day))


async def test_daily_spend_cap_is_exact_and_resets_the_next_utc_day(
        settings: Settings) -> None:
    gate = Gate()
    clock = Clock()  # 2030-01-01 23:00 UTC
    day1, day2 = date(2030, 1, 1), date(2030, 1, 2)
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        gw.runtime.limiter.clock = clock
        probe = await gw.tenant()
        wholesale = (await gw.client.post("/v1/generations/estimate", headers=probe.auth,
                                          json=GATED)).json()["amount"]
        cap = 3 * wholesale + wholesale - 1  # room for exactly three
        tenant = await gw.tenant(rate_limits={"daily_spend_cap_mc": cap})
        answers = await submit_many(gw, tenant, 30)
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 3, codes
        refused = [a for a in answers if a.status_code == 429]
        assert {a.json()["error"]["code"] for a in refused} == {"daily_spend_cap"}
        assert {a.headers["Retry-After"] for a in refused} == {"3600"}  # until 00:00 UTC
        assert await spent(gw, tenant.id, day1) == 3 * wholesale
        accepted = [a.json()["id"] for a in answers if a.status_code == 202]

        # A cancel gives its reservation back to the day that counted it.
        await gw.client.post(f"/v1/generations/{accepted[0]}/cancel", headers=tenant.auth)
        assert await spent(gw, tenant.id, day1) == 2 * wholesale
        assert (await submit(gw, tenant)).status_code == 202
        assert (await submit(gw, tenant)).status_code == 429

        # The next UTC day starts from zero.
        clock.advance(3600)
        assert [(await submit(gw, tenant)).status_code for _ in range(4)] == [
            202, 202, 202, 429]
        assert await spent(gw, tenant.id, day2) == 3 * wholesale

        # Success keeps only what was charged (the gate costs less than its estimate).
        gate.release.set()
        await gw.drain()
        history = (await gw.client.get("/v1/generations?status=succeeded&limit=100",
                                       headers=tenant.auth)).json()["data"]
        assert len(history) == 6
        charged = history[0]["cost"]["charged"]
        assert 0 < charged < wholesale
        assert await spent(gw, tenant.id, day1) == 3 * charged
        assert await spent(gw, tenant.id, day2) == 3 * charged


async def test_concurrency_check_waits_for_a_racing_transaction_on_postgresql(
        pg_url: str, tmp_path: Path) -> None:
    """Two submits racing in separate transactions: the second waits on the first's lock,
    then counts its generation (without the lock it would count 0 and admit both)."""
    async with running_gateway(make_settings(pg_url, tmp_path)) as gw:
        tenant = await gw.tenant(credits_mc=0)
        quota = quotas.quota_for(
            effective_limits(gw.runtime.settings, RateLimitPolicy(concurrent_jobs={"image": 1})),
            tenant.id, "image", T0)

        def row() -> Generation:
            return Generation(id=new_id("gen"), tenant_id=tenant.id, type="image",
                              operation="text_to_image", prompt="x", provider="gate",
                              cost_usd_micros=1, wholesale_mc=1, retail_mc=1, estimated_mc=1,
                              request_hash="h")

        first_in = asyncio.Event()
        commit_first = asyncio.Event()

        async def first() -> None:
            async with gw.runtime.db.transaction() as session:
                generation = row()
                await quotas.admit(session, quota, generation)
                session.add(generation)
                await session.flush()
                first_in.set()
                await commit_first.wait()

        async def second() -> None:
            await first_in.wait()
            async with gw.runtime.db.transaction() as session:
                generation = row()
                await quotas.admit(session, quota, generation)
                session.add(generation)

        one, two = asyncio.create_task(first()), asyncio.create_task(second())
        await first_in.wait()
        async with asyncio.timeout(10):  # the second is seen waiting on the advisory lock
            while True:
                async with gw.runtime.db.session() as session:
                    waiting = await session.scalar(text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted"))
                if waiting or two.done():
                    break
                await asyncio.sleep(0.01)  # polling a condition under a deadline
        assert waiting == 1
        commit_first.set()
        await one
        with pytest.raises(RateLimited) as refused:
            await two
        assert refused.value.code == "concurrency_limit"
