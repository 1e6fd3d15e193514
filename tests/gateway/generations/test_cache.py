"""The result cache and request coalescing (gateway/generations/cache.py), on the embedded
stack (SQLite, in-process queue and store) and on the production one (PostgreSQL, Valkey,
a real SAQ worker)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import valkey.asyncio as valkey_client

from gateway.core.result_store import InProcessStore, ValkeyStore
from gateway.core.settings import Settings, load_settings
from gateway.generations.cache import cache_key, fingerprint, inflight_key, wants_fresh
from gateway.generations.models import Generation, StoredOutput
from plugins.builtin.local.image import LocalImage
from plugins.errors import ProviderError
from plugins.media import MediaInput
from plugins.provider import ProviderRequest
from tenants.models import Tenant as TenantRow
from tests.conftest import (
    Gate,
    GatePlugin,
    Gateway,
    ProvidersPlugin,
    Tenant,
    make_settings,
    running_gateway,
    scripted,
)
from tests.gateway.generations.test_queue import worker_for

# Priced by `scripted`: estimate 10_000 USD micros → 1300 mc reserved, actual 4_000 → 520 mc.
CHARGED_MC = 520
RESERVED_MC = 1300
#: conftest turns the cache off for other tests; these run with the product's default.
CACHE_TTL_S = Settings().cache_ttl_s


def image(prompt: str = "a lighthouse", provider: str = "echo", **params: Any) -> dict[str, Any]:
    return {"type": "image", "prompt": prompt, "params": params, "provider": provider}



def entry_id(value: str | None) -> str:
    """The generation a cache entry answers with (entries are snapshots of it)."""
    assert value is not None
    return str(msgspec.json.decode(value)["id"])

@pytest.fixture(params=["embedded", "valkey"])
def stack_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Embedded: a SQLite file and in-process everything. Valkey: PostgreSQL + Valkey."""
    if request.param == "embedded":
        path = tmp_path / "mediahub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return make_settings(f"sqlite+aiosqlite:///{path}", tmp_path, cache_ttl_s=CACHE_TTL_S)
    return make_settings(request.getfixturevalue("pg_url"), tmp_path,
                         valkey_url=request.getfixturevalue("valkey"), cache_ttl_s=CACHE_TTL_S)


@contextlib.asynccontextmanager
async def serving(settings: Settings, *plugins: Any) -> AsyncIterator[Gateway]:
    """The gateway, with a SAQ worker on the image queue when Valkey is configured; the
    test's Valkey keys are deleted afterwards."""
    async with running_gateway(settings, extra=list(plugins)) as gw:
        if settings.valkey_url is None:
            yield gw
            return
        try:
            async with worker_for(gw):
                yield gw
        finally:
            client = valkey_client.from_url(settings.valkey_url)
            try:
                async for key in client.scan_iter(match=f"{settings.queue_prefix}:*"):
                    await client.delete(key)
            finally:
                await client.aclose()


async def until(condition: Callable[[], Any], *, timeout_s: float = 30) -> None:
    """Poll an async condition until it holds, failing after `timeout_s` (a deadline, not a
    guess at how long something takes)."""
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.02)


async def final(gw: Gateway, tenant: Tenant, generation_id: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    async def done() -> bool:
        r = await gw.client.get(f"/v1/generations/{generation_id}", headers=tenant.auth)
        result.update(r.json())
        return r.json()["status"] in ("succeeded", "failed", "canceled")

    await until(done)
    return result


async def submit(gw: Gateway, tenant: Tenant, body: dict[str, Any],
                 **headers: str) -> httpx.Response:
    return await gw.client.post("/v1/generations", json=body,
                                headers={**tenant.auth, "Prefer": "wait=30", **headers})


async def balance(gw: Gateway, tenant: Tenant) -> dict[str, int]:
    got: dict[str, int] = (await gw.client.get("/v1/credits/balance",
                                               headers=tenant.auth)).json()
    return got


async def stored_outputs(gw: Gateway, generation_id: str) -> list[StoredOutput]:
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, generation_id)
    assert row is not None
    return row.outputs


async def test_miss_then_hit_answers_from_the_cache_for_free(stack_settings: Settings) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant(credits_mc=100_000)
        first = await submit(gw, tenant, image())
        assert first.status_code == 200, first.text
        assert first.json()["cached"] is False
        assert first.json()["cost"]["charged"] == CHARGED_MC
        after_first = await balance(gw, tenant)
        transactions = (await gw.client.get("/v1/credits/transactions",
                                            headers=tenant.auth)).json()["data"]

        # metadata and webhook_url are not part of the fingerprint; no wait needed.
        r = await gw.client.post("/v1/generations", headers=tenant.auth,
                                 json={**image(), "metadata": {"order": "7"}})
        assert r.status_code == 202, r.text
        hit = r.json()
        assert hit["cached"] is True
        assert hit["status"] == "succeeded"
        assert hit["id"] != first.json()["id"]
        assert hit["provider"] == "echo"
        assert hit["cost"] == {"estimated": 0, "charged": 0, "unit": "millicredit"}
        assert hit["metadata"] == {"order": "7"}
        assert hit["attempts"] == []
        assert echo.calls == 1
        # The same stored objects, each link signed for this read.
        assert await stored_outputs(gw, hit["id"]) == await stored_outputs(
            gw, first.json()["id"])
        assert [o["bytes"] for o in hit["outputs"]] == [1]
        fetched = await gw.client.get(hit["outputs"][0]["url"])
        assert fetched.status_code == 200
        assert fetched.content == b"x"
        # Free by default: the wallet is untouched and no transfer was made.
        assert await balance(gw, tenant) == after_first
        assert (await gw.client.get("/v1/credits/transactions",
                                    headers=tenant.auth)).json()["data"] == transactions
        listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
        assert [g["cached"] for g in listed] == [True, False]


async def test_cache_entry_expires_with_the_tenants_ttl(stack_settings: Settings) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant(cache={"ttl_s": 60})
        first = (await submit(gw, tenant, image())).json()
        store = gw.runtime.results
        key = cache_key(stack_settings.queue_prefix, tenant.id, (await _row(gw, first["id"])
                                                                 ).fingerprint or "")
        if isinstance(store, InProcessStore):
            now = [1000.0]
            store.clock = lambda: now[0]
            # Re-stored under the fake clock: the entry written at `now` lives 60 s.
            await store.set(key, first["id"], 60)
            now[0] += 59
            assert (await submit(gw, tenant, image())).json()["cached"] is True
            now[0] += 2
        else:
            assert isinstance(store, ValkeyStore)
            ttl = await store.ttl(key)
            assert ttl is not None
            assert 55 < ttl <= 60
            assert entry_id(await store.get(key)) == first["id"]
            assert (await submit(gw, tenant, image())).json()["cached"] is True
            await store.client.delete(key)  # what Valkey does when the TTL runs out
        after = await submit(gw, tenant, image())
        assert after.json()["cached"] is False
        assert echo.calls == 2


async def _row(gw: Gateway, generation_id: str) -> Generation:
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, generation_id)
    assert row is not None
    return row


async def test_no_cache_header_bypasses_the_lookup_but_stores_the_result(
    stack_settings: Settings,
) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant()
        first = (await submit(gw, tenant, image())).json()
        fresh = (await submit(gw, tenant, image(), **{"Cache-Control": "no-cache"})).json()
        assert fresh["cached"] is False
        assert fresh["status"] == "succeeded"
        assert echo.calls == 2
        # The fresh result replaced the entry: the next identical request gets its outputs.
        hit = (await submit(gw, tenant, image())).json()
        assert hit["cached"] is True
        assert await stored_outputs(gw, hit["id"]) == await stored_outputs(gw, fresh["id"])
        assert await stored_outputs(gw, hit["id"]) != await stored_outputs(gw, first["id"])
        assert echo.calls == 2


async def test_other_params_seed_prompt_or_tenant_miss(stack_settings: Settings) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant()
        other = await gw.tenant()
        bodies = [image(), image(seed=1), image(seed=2), image(style="noise"),
                  image("a lighthouse at dusk")]
        for body in bodies:
            assert (await submit(gw, tenant, body)).json()["cached"] is False
        assert echo.calls == len(bodies)
        # Never across tenants: the other tenant's identical request runs the provider.
        theirs = await submit(gw, other, image(seed=1))
        assert theirs.json()["cached"] is False
        assert echo.calls == len(bodies) + 1
        # Each tenant now hits its own entry, pointing at its own generation.
        for who in (tenant, other):
            hit = (await submit(gw, who, image(seed=1))).json()
            assert hit["cached"] is True
            async with gw.runtime.db.session() as session:
                row = await session.get(Generation, hit["id"])
            assert row is not None
            assert row.tenant_id == who.id
            assert all(o.key.startswith(f"{who.id}/") for o in row.outputs)
        assert echo.calls == len(bodies) + 1


async def test_charge_policies_bill_a_hit(stack_settings: Settings) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        full = await gw.tenant(credits_mc=10_000, cache={"charge": "full"})
        await submit(gw, full, image())
        hit = (await submit(gw, full, image())).json()
        assert hit["cached"] is True
        assert hit["cost"] == {"estimated": CHARGED_MC, "charged": CHARGED_MC,
                               "unit": "millicredit"}
        assert (await balance(gw, full))["available"] == 10_000 - 2 * CHARGED_MC
        assert (await balance(gw, full))["pending"] == 0
        lines = [(t["status"], abs(t["amount"])) for t in (
            await gw.client.get("/v1/credits/transactions", headers=full.auth)
        ).json()["data"] if t.get("generation_id") == hit["id"]]
        assert lines == [("posted", CHARGED_MC)]

        half = await gw.tenant(credits_mc=10_000, cache={"charge": {"percent": 50}})
        await submit(gw, half, image())
        hit = (await submit(gw, half, image())).json()
        assert hit["cost"]["charged"] == CHARGED_MC // 2
        assert (await balance(gw, half))["available"] == 10_000 - CHARGED_MC - CHARGED_MC // 2

        assert echo.calls == 2


async def test_a_result_whose_outputs_are_gone_is_not_reused(tmp_path: Path,
                                                             sqlite_template: Path) -> None:
    path = tmp_path / "mediahub.db"
    shutil.copy(sqlite_template, path)
    echo = scripted("echo")
    async with serving(make_settings(f"sqlite+aiosqlite:///{path}", tmp_path,
                                     cache_ttl_s=CACHE_TTL_S),
                       ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant()
        first = (await submit(gw, tenant, image())).json()
        [output] = await stored_outputs(gw, first["id"])
        (tmp_path / "media" / output.key).unlink()
        again = (await submit(gw, tenant, image())).json()
        assert again["cached"] is False
        assert echo.calls == 2


async def test_a_tenant_can_turn_the_cache_off(stack_settings: Settings) -> None:
    echo = scripted("echo")
    async with serving(stack_settings, ProvidersPlugin(echo)) as gw:
        tenant = await gw.tenant(cache={"enabled": False})
        for _ in range(2):
            assert (await submit(gw, tenant, image())).json()["cached"] is False
        assert echo.calls == 2
        bad = await gw.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gw.admin(),
                                    json={"cache": {"charge": {"percent": 150}}})
        assert bad.status_code in (400, 422), bad.text
        ok = await gw.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gw.admin(),
                                   json={"cache": {"ttl_s": 30, "charge": "full"}})
        assert ok.status_code == 200, ok.text
        assert ok.json()["cache"] == {"ttl_s": 30, "charge": "full"}


class CountingGate(Gate):
    """The conftest gate, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await super().generate(*args, **kwargs)


GATED = {"type": "image", "prompt": "one render for all", "provider": "gate"}


async def test_twenty_identical_concurrent_requests_make_one_provider_call(
    stack_settings: Settings,
) -> None:
    gate = CountingGate()
    async with serving(stack_settings, GatePlugin(gate)) as gw:
        tenant = await gw.tenant(credits_mc=100_000)
        answers = await asyncio.gather(*(
            gw.client.post("/v1/generations", headers=tenant.auth, json=GATED)
            for _ in range(20)))
        assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
        ids = {r.json()["id"] for r in answers}
        assert len(ids) == 20
        await asyncio.wait_for(gate.entered.wait(), timeout=30)
        # Every caller reserved its own price while the one call is in flight.
        assert (await balance(gw, tenant))["pending"] == 20 * RESERVED_MC
        rows = [await _row(gw, gid) for gid in ids]
        leaders = [r for r in rows if r.coalesced_from is None]
        assert len(leaders) == 1
        assert {r.coalesced_from for r in rows} == {None, leaders[0].id}
        gate.release.set()
        done = [await final(gw, tenant, gid) for gid in ids]
        assert gate.calls == 1
        assert {g["status"] for g in done} == {"succeeded"}
        assert {g["cached"] for g in done} == {False}
        # Each its own bill at its own price, and the same stored media.
        charged = [g["cost"]["charged"] for g in done]
        assert charged == [CHARGED_MC] * 20
        after = await balance(gw, tenant)
        assert (after["available"], after["pending"]) == (100_000 - 20 * CHARGED_MC, 0)
        keys = {tuple(o.key for o in await stored_outputs(gw, gid)) for gid in ids}
        assert len(keys) == 1
        # Only the leader holds the provider's cost; the marker is gone, the cache is set.
        costs = sorted([r.cost_usd_micros for r in [await _row(gw, gid) for gid in ids]])
        assert costs == [0] * 19 + [4_000]
        fp = leaders[0].fingerprint or ""
        store = gw.runtime.results
        assert await store.get(inflight_key(stack_settings.queue_prefix, tenant.id, fp)) is None
        assert entry_id(await store.get(cache_key(stack_settings.queue_prefix, tenant.id,
                                                  fp))) == leaders[0].id


async def test_followers_fail_as_their_leader_failed(stack_settings: Settings) -> None:
    gate = CountingGate()
    gate.fail_with = ProviderError("refused by the content filter", code="content_policy",
                                   retryable=False)
    async with serving(stack_settings, GatePlugin(gate)) as gw:
        tenant = await gw.tenant(credits_mc=100_000)
        answers = await asyncio.gather(*(
            gw.client.post("/v1/generations", headers=tenant.auth, json=GATED)
            for _ in range(5)))
        await asyncio.wait_for(gate.entered.wait(), timeout=30)
        gate.release.set()
        done = [await final(gw, tenant, r.json()["id"]) for r in answers]
        assert gate.calls == 1
        assert {g["status"] for g in done} == {"failed"}
        assert {g["error"]["code"] for g in done} == {"content_policy"}
        assert {g["cost"]["charged"] for g in done} == {None}
        after = await balance(gw, tenant)
        assert (after["available"], after["pending"]) == (100_000, 0)
        # A failure is not cached and leaves no marker: the next request runs again.
        gate.fail_with = None
        retry = await gw.client.post("/v1/generations", json=GATED,
                                     headers={**tenant.auth, "Prefer": "wait=30"})
        assert retry.json()["status"] == "succeeded"
        assert retry.json()["cached"] is False
        assert gate.calls == 2


async def test_followers_of_a_canceled_leader_run_the_provider_themselves(
    stack_settings: Settings,
) -> None:
    gate = CountingGate()
    async with serving(stack_settings, GatePlugin(gate)) as gw:
        tenant = await gw.tenant(credits_mc=100_000)
        leader = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                       json=GATED)).json()
        await asyncio.wait_for(gate.entered.wait(), timeout=30)
        follower = (await gw.client.post("/v1/generations", headers=tenant.auth,
                                         json=GATED)).json()
        assert (await _row(gw, follower["id"])).coalesced_from == leader["id"]
        canceled = await gw.client.post(f"/v1/generations/{leader['id']}/cancel",
                                        headers=tenant.auth)
        assert canceled.json()["status"] == "canceled"
        gate.release.set()
        done = await final(gw, tenant, follower["id"])
        assert done["status"] == "succeeded"
        assert done["cost"]["charged"] == CHARGED_MC
        assert gate.calls == 2


def test_fingerprint_fills_in_provider_defaults_and_never_spans_tenants() -> None:
    a = TenantRow(id="ten_a", branding={})
    b = TenantRow(id="ten_b", branding={})

    def fp(tenant: TenantRow, params: dict[str, Any], pinned: str | None = None,
           prompt: str = "x") -> str:
        request = ProviderRequest(type="image", operation="text_to_image", prompt=prompt,
                                  params=params)
        return fingerprint(tenant, request, provider=LocalImage(), pinned=pinned)

    base = fp(a, {})
    assert fp(a, {"size": "512x512", "style": "gradient"}) == base
    assert fp(a, {"style": "gradient", "seed": None}) == base
    assert fp(a, {"seed": 1}) != base
    assert fp(a, {"size": "256x256"}) != base
    assert fp(a, {}, pinned="local-image") != base
    assert fp(a, {}, prompt="y") != base
    assert fp(b, {}) != base
    branded = TenantRow(id="ten_a", branding={"primary_color": "#123456"})
    assert fp(branded, {}) != base
    assert fp(TenantRow(id="ten_a", branding={"version": 3, "logo": "a"}), {}) == fp(
        TenantRow(id="ten_a", branding={"version": 3, "logo": "b"}), {})


def test_fingerprint_counts_the_input_media() -> None:
    # Inputs reach providers decoded (not in params), so they are hashed in on their own.
    tenant = TenantRow(id="ten_a", branding={})

    def fp(inputs: dict[str, MediaInput], samples: list[MediaInput] = []) -> str:  # noqa: B006
        request = ProviderRequest(type="image", operation="image_edit", prompt="x",
                                  inputs=inputs, samples=samples)
        return fingerprint(tenant, request, provider=LocalImage(), pinned=None)

    red, blue = MediaInput(data=b"red", content_type="image/png"), MediaInput(
        data=b"blue", content_type="image/png")
    assert fp({"image": red}) == fp({"image": MediaInput(data=b"red",
                                                         content_type="image/png")})
    assert fp({"image": red}) != fp({"image": blue})
    assert fp({"image": red}) != fp({})
    assert fp({"image": red}) != fp({"mask": red})
    assert fp({"image": red}) != fp({"image": red, "mask": blue})
    assert fp({}, [red, blue]) != fp({}, [blue, red])


def test_cache_control_and_settings() -> None:
    assert wants_fresh("no-cache")
    assert wants_fresh("max-age=0, No-Cache")
    assert not wants_fresh("no-store")
    assert not wants_fresh(None)
    env = {"MEDIAHUB_SECRET_KEY": "k" * 40}
    assert load_settings(env).cache_ttl_s == 86400
    assert load_settings({**env, "MEDIAHUB_CACHE_TTL_S": "0"}).cache_ttl_s == 0
    with pytest.raises(Exception, match="MEDIAHUB_CACHE_TTL_S"):
        load_settings({**env, "MEDIAHUB_CACHE_TTL_S": "soon"})


async def test_in_process_store_add_is_exclusive_until_expiry() -> None:
    now = [0.0]
    store = InProcessStore(clock=lambda: now[0])
    assert await store.add("k", "a", 10)
    assert not await store.add("k", "b", 10)
    await store.delete_if("k", "b")
    assert await store.get("k") == "a"
    now[0] = 10.0
    assert await store.get("k") is None
    assert await store.add("k", "b", 10)
    await store.delete_if("k", "b")
    assert await store.ttl("k") is None

