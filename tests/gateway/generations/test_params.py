"""Request parameters are checked against what the providers declare (issue 12, "Unknown
`params` are accepted and billed"): a name no candidate reads is a 422 `unknown_param`
naming it, values and the params as a whole are bounded, and a name some candidates read
routes among those. On SQLite and PostgreSQL, through the public API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.core.settings import Settings
from plugins.vocabulary import MAX_PARAMS_BYTES, ParamSpec, common
from tests.conftest import Gateway, ProvidersPlugin, Scripted, Tenant, running_gateway, scripted


async def submit(gw: Gateway, tenant: Tenant, body: dict[str, Any]) -> tuple[int, Any]:
    r = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
    return r.status_code, r.json()


async def pending(gw: Gateway, tenant: Tenant) -> int:
    return int((await gw.balance(tenant.auth))["pending"])


async def test_a_misspelt_param_is_refused_by_name_and_nothing_is_reserved(
        gateway: Gateway) -> None:
    # Before: 202, and the default 512x512 image was made and billed.
    tenant = await gateway.tenant()
    status, body = await submit(gateway, tenant, {
        "type": "image", "prompt": "a fox", "params": {"sise": "1024x1024"}})
    assert status == 422, body
    assert body["error"] == {
        "type": "invalid_request_error", "code": "unknown_param", "param": "params.sise",
        "message": body["error"]["message"]}
    assert "sise" in body["error"]["message"]
    assert "local-image" not in body["error"]["message"]  # not pinned: no provider named
    assert await pending(gateway, tenant) == 0
    # The estimate plans the same way.
    r = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth, json={
        "type": "image", "prompt": "a fox", "params": {"sise": "1024x1024"}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unknown_param"


async def test_a_known_param_still_works(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, {
        "type": "image", "prompt": "a fox", "params": {"size": "256x128", "seed": 7}})
    assert done["status"] == "succeeded", done
    assert (done["outputs"][0]["width"], done["outputs"][0]["height"]) == (256, 128)


@pytest.mark.parametrize(("params", "param"), [
    ({"style": "x" * 1000}, "params.style"),         # a declared string, too long
    ({"seed": "seven"}, "params.seed"),              # a declared integer, as text
    ({"size": ["512x512"]}, "params.size"),          # a declared scalar, as a list
])
async def test_param_values_are_bounded_and_typed(
        gateway: Gateway, params: dict[str, Any], param: str) -> None:
    tenant = await gateway.tenant()
    status, body = await submit(gateway, tenant,
                                {"type": "image", "prompt": "a fox", "params": params})
    assert status == 422, body
    assert body["error"]["param"] == param
    assert body["error"]["code"] == "invalid_parameter"
    assert await pending(gateway, tenant) == 0


async def test_params_as_a_whole_are_capped(gateway: Gateway) -> None:
    # Every key is declared (local-design's `fields`, an object), but its values are huge:
    # before, a multi-megabyte value was stored in the generation row.
    tenant = await gateway.tenant()
    big = {"headline": "x" * MAX_PARAMS_BYTES}
    status, body = await submit(gateway, tenant, {
        "type": "design", "prompt": "a poster", "params": {"fields": big}})
    assert status == 422, body
    assert body["error"]["code"] == "params_too_large"
    assert body["error"]["param"] == "params"
    assert await pending(gateway, tenant) == 0


async def test_video_extend_is_not_an_operation(gateway: Gateway) -> None:
    # Before: accepted, and always 503 (no provider offers it).
    tenant = await gateway.tenant()
    status, body = await submit(gateway, tenant, {
        "type": "video", "operation": "video_extend", "prompt": "more"})
    assert status == 422, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "operation"


def declaring(name: str, cost_usd_micros: int, params: dict[str, ParamSpec]) -> Scripted:
    provider = scripted(name, cost_usd_micros=cost_usd_micros)
    type(provider).params = params
    return provider


@pytest.fixture
async def two(settings: Settings) -> AsyncIterator[Gateway]:
    # `cheap` reads seed; `dear` reads quality. The local engine is left out so these two
    # are the only candidates for an image.
    cheap = declaring("cheap", 1_000, common("seed"))
    dear = declaring("dear", 50_000, common("quality"))
    async with running_gateway(settings, extra=[ProvidersPlugin(cheap, dear)],
                               blocked=["plugins.builtin.local.image"]) as gw:
        yield gw


async def test_a_param_some_candidates_read_routes_among_those(two: Gateway) -> None:
    tenant = await two.tenant()
    done = await two.finish(tenant.auth, {"type": "image", "prompt": "a fox",
                                          "params": {"quality": "hd"}})
    assert done["provider"] == "dear", done
    done = await two.finish(tenant.auth, {"type": "image", "prompt": "a fox",
                                          "params": {"seed": 3}})
    assert done["provider"] == "cheap", done


async def test_a_param_no_candidate_reads_is_refused(two: Gateway) -> None:
    tenant = await two.tenant()
    status, body = await submit(two, tenant, {"type": "image", "prompt": "a fox",
                                              "params": {"seed": 3, "quality": "hd"}})
    # Each reads one of the two, neither both: nobody would honour the request.
    assert status == 422, body
    assert body["error"]["code"] == "unknown_param"
    status, body = await submit(two, tenant, {"type": "image", "prompt": "a fox",
                                              "params": {"sise": "1x1"}})
    assert status == 422, body
    assert body["error"]["param"] == "params.sise"
    # Not pinned: the message names none of them (white-label tenants).
    assert "cheap" not in body["error"]["message"]
    assert "dear" not in body["error"]["message"]
    # Pinned, the provider's own words.
    status, body = await submit(two, tenant, {"type": "image", "prompt": "a fox",
                                              "provider": "cheap",
                                              "params": {"quality": "hd"}})
    assert status == 422, body
    assert body["error"]["code"] == "unknown_param"
    assert body["error"]["param"] == "params.quality"
    assert await pending(two, tenant) == 0


async def test_declared_kinds_and_lengths_hold_for_providers_that_check_nothing(
        two: Gateway) -> None:
    # `cheap` and `dear` read their params without checking them: the declaration is what
    # keeps a text seed or an oversized quality from being billed and stored.
    tenant = await two.tenant()
    for params, param in [({"seed": "seven"}, "params.seed"),
                          ({"quality": "x" * 33}, "params.quality"),
                          ({"quality": {"level": "hd"}}, "params.quality")]:
        status, body = await submit(two, tenant, {"type": "image", "prompt": "a fox",
                                                  "params": params})
        assert status == 422, (params, body)
        assert (body["error"]["code"], body["error"]["param"]) == ("invalid_parameter", param)
    assert await pending(two, tenant) == 0
