"""The developer-facing headers of generation responses (gateway/generations/headers.py):
`X-Credits-Charged`, `X-Credits-Remaining` of the wallet that paid, and `Server-Timing` with
the gateway's own time apart from the provider's and from a `Prefer: wait`."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.conftest import Gate, Gateway

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}
GATED = {"type": "image", "prompt": "a harbour", "provider": "gate"}


def timing(response: httpx.Response) -> dict[str, int]:
    """`Server-Timing`'s metrics: {name: dur}; the header must be exactly that shape."""
    header = response.headers["Server-Timing"]
    assert re.fullmatch(r"gateway;dur=\d+(, provider;dur=\d+)?", header), header
    return {m[0]: int(m[1]) for m in re.findall(r"(\w+);dur=(\d+)", header)}


async def test_a_queued_answer_has_timing_only_and_a_finished_one_its_credits(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=1_000_000)
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    assert r.status_code == 202, r.text
    assert "X-Credits-Charged" not in r.headers
    assert "X-Credits-Remaining" not in r.headers  # the hot path reads no balance
    assert set(timing(r)) == {"gateway"}

    await gateway.drain()
    got = await gateway.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["status"] == "succeeded"
    assert got.headers["X-Credits-Charged"] == str(body["cost"]["charged"])
    balance = await gateway.balance(tenant.auth)
    assert balance["available"] == 1_000_000 - body["cost"]["charged"]
    assert got.headers["X-Credits-Remaining"] == str(balance["available"])
    assert timing(got)["provider"] == sum(a["latency_ms"] for a in body["attempts"])


async def test_a_wait_is_not_the_gateways_time(gated: tuple[Gateway, Gate]) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=1_000_000)
    answer = asyncio.create_task(gw.client.post(
        "/v1/generations", json=GATED, headers={**tenant.auth, "Prefer": "wait=30"}))
    await gate.entered.wait()
    # A duration to measure, not a synchronisation: the provider takes at least 400 ms.
    asyncio.get_running_loop().call_later(0.4, gate.release.set)
    r = await answer
    assert r.status_code == 200, r.text
    spent = timing(r)
    assert spent["provider"] >= 400
    assert spent["gateway"] < 400  # without subtracting the wait it would be over 400
    assert r.headers["X-Credits-Charged"] == str(r.json()["cost"]["charged"])
    assert r.headers["X-Credits-Remaining"] == str((await gw.balance(tenant.auth))["available"])


async def test_a_cancel_shows_the_released_balance(gated: tuple[Gateway, Gate]) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=50_000)
    r = await gw.client.post("/v1/generations", json=GATED, headers=tenant.auth)
    assert r.status_code == 202, r.text
    await gate.entered.wait()
    canceled = await gw.client.post(f"/v1/generations/{r.json()['id']}/cancel",
                                    headers=tenant.auth)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cost"]["charged"] is None
    assert "X-Credits-Charged" not in canceled.headers
    assert canceled.headers["X-Credits-Remaining"] == "50000"  # the reservation is voided
    assert set(timing(canceled)) == {"gateway"}  # no provider call ended


async def test_a_customer_sees_its_retail_charge_and_not_the_resellers_balance(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    customer = {**tenant.auth, "X-Customer-Id": "alice"}
    done = await gateway.finish(customer, IMAGE)
    got = await gateway.client.get(f"/v1/generations/{done['id']}", headers=customer)
    assert got.status_code == 200, got.text
    assert got.headers["X-Credits-Charged"] == str(done["cost"]["charged"])
    # The tenant paid wholesale (it bills alice itself): its wallet is none of alice's business.
    assert "X-Credits-Remaining" not in got.headers
    # The tenant reading the same generation sees its own wallet.
    mine = await gateway.client.get(f"/v1/generations/{done['id']}", headers=tenant.auth)
    assert mine.headers["X-Credits-Remaining"] == str(
        (await gateway.balance(tenant.auth))["available"])
    assert mine.headers["X-Credits-Charged"] == str(mine.json()["cost"]["charged"])
