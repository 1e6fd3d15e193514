"""The generation lifecycle end to end, on SQLite and PostgreSQL (in-process queue)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from billing import ledger
from billing.models import Transfer
from gateway.core.storage import sign_media
from gateway.generations import jobs
from gateway.generations.models import Generation
from plugins.errors import ProviderError
from tests.conftest import SECRET_KEY, Gate, Gateway
from tests.gateway.generations.test_queue import Recording

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def media_bytes(gw: Gateway, url: str) -> httpx.Response:
    parts = urlsplit(url)
    return await gw.client.get(f"{parts.path}?{parts.query}")


async def balance(gw: Gateway, auth: dict[str, str]) -> dict[str, int]:
    r = await gw.client.get("/v1/credits/balance", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


async def test_end_to_end_image_from_a_fresh_database(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=50_000)
    before = await balance(gateway, tenant.auth)
    assert before["available"] == 50_000

    # The job waits in a recording queue while the reservation is looked at (the in-process
    # queue would otherwise race the next request and may already have settled it).
    real_queue, gateway.runtime.queue = gateway.runtime.queue, Recording()
    try:
        r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert r.status_code == 202, r.text
        created = r.json()
        assert created["status"] == "queued"
        assert created["id"].startswith("gen_")
        # Reserved, not yet charged.
        held = await balance(gateway, tenant.auth)
        assert held["pending"] == created["cost"]["estimated"] > 0
        assert held["available"] == 50_000 - created["cost"]["estimated"]
    finally:
        gateway.runtime.queue = real_queue
    await jobs.enqueue_run(gateway.runtime, created["id"], "image")
    await gateway.drain()
    r = await gateway.client.get(f"/v1/generations/{created['id']}", headers=tenant.auth)
    done = r.json()
    assert done["status"] == "succeeded", done
    assert done["provider"] == "local-image"
    [output] = done["outputs"]
    assert output["content_type"] == "image/png"
    assert (output["width"], output["height"]) == (256, 128)

    fetched = await media_bytes(gateway, output["url"])
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert len(fetched.content) == output["bytes"]
    assert Image.open(io.BytesIO(fetched.content)).size == (256, 128)

    after = await balance(gateway, tenant.auth)
    charged = done["cost"]["charged"]
    assert charged == done["cost"]["estimated"]
    assert after == {"available": 50_000 - charged, "pending": 0, "posted": 50_000 - charged,
                     "unit": "millicredit", "object": "balance"}


async def test_prefer_wait_returns_the_finished_generation(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", json=IMAGE,
                                  headers={**tenant.auth, "Prefer": "wait=30"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert r.json()["outputs"][0]["bytes"] > 0


async def test_unknown_and_revoked_keys_are_401(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    for bad in ("mh_000000000000_nope", "not-a-key", ""):
        r = await gateway.client.get("/v1/generations",
                                     headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
    r = await gateway.client.get("/v1/generations")
    assert r.status_code == 401

    assert (await gateway.client.get("/v1/generations", headers=tenant.auth)).status_code == 200
    revoke = await gateway.client.delete(f"/admin/v1/tenants/{tenant.id}/keys/{tenant.key_id}",
                                         headers=gateway.admin())
    assert revoke.status_code == 200
    assert revoke.json()["revoked_at"] is not None
    r = await gateway.client.get("/v1/generations", headers=tenant.auth)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "revoked_api_key"


async def test_another_tenants_generation_is_404(gateway: Gateway) -> None:
    owner, other = await gateway.tenant(), await gateway.tenant()
    r = await gateway.client.post("/v1/generations", headers=owner.auth, json=IMAGE)
    gen_id = r.json()["id"]
    await gateway.drain()
    for method, path in (("GET", f"/v1/generations/{gen_id}"),
                         ("POST", f"/v1/generations/{gen_id}/cancel")):
        r = await gateway.client.request(method, path, headers=other.auth)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["type"] == "not_found_error"
    listed = await gateway.client.get("/v1/generations", headers=other.auth)
    assert listed.json()["data"] == []
    mine = await gateway.client.get(f"/v1/generations/{gen_id}", headers=owner.auth)
    assert mine.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"type": "hologram", "prompt": "x"}, 422, "type"),
        ({"type": "image"}, 422, "prompt"),
        ({"type": "image", "prompt": "x", "params": {"size": "big"}}, 422, "params.size"),
        ({"type": "image", "prompt": "x", "surprise": 1}, 422, "surprise"),
        ({"type": "image", "prompt": "x", "provider": "nobody"}, 422, "provider"),
        ({"type": "image", "prompt": 5}, 422, "prompt"),
    ],
)
async def test_bad_bodies_name_the_field_and_reserve_nothing(
    gateway: Gateway, body: dict[str, object], status: int, param: str
) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert (await balance(gateway, tenant.auth))["pending"] == 0


async def test_malformed_json_is_400(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", content=b"{nope",
                                  headers={**tenant.auth, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_too_few_credits_is_402_and_nothing_is_queued(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=50)
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["type"] == "insufficient_credits"
    assert error["shortfall"] == error["required"] - 50 > 0
    async with gateway.runtime.db.session() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Generation).where(Generation.tenant_id == tenant.id))
    assert rows == 0
    assert await balance(gateway, tenant.auth) == {
        "available": 50, "pending": 0, "posted": 50, "unit": "millicredit", "object": "balance"}


async def test_cancel_of_a_finished_generation_is_409(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    await gateway.drain()
    r = await gateway.client.post(f"/v1/generations/{r.json()['id']}/cancel",
                                  headers=tenant.auth)
    assert r.status_code == 409
    assert r.json()["error"]["type"] == "conflict_error"


async def test_cancel_while_running_voids_the_reservation(
    gated: tuple[Gateway, Gate],
) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=100_000)
    r = await gw.client.post("/v1/generations", headers=tenant.auth,
                             json={**IMAGE, "provider": "gate"})
    gen = r.json()
    await gate.entered.wait()
    assert (await balance(gw, tenant.auth))["pending"] == gen["cost"]["estimated"]

    r = await gw.client.post(f"/v1/generations/{gen['id']}/cancel", headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"
    assert await balance(gw, tenant.auth) == {
        "available": 100_000, "pending": 0, "posted": 100_000, "unit": "millicredit",
        "object": "balance"}

    # The provider finishing afterwards must neither charge nor resurrect the generation.
    gate.release.set()
    await gw.drain()
    again = await gw.client.get(f"/v1/generations/{gen['id']}", headers=tenant.auth)
    assert again.json()["status"] == "canceled"
    assert (await balance(gw, tenant.auth))["available"] == 100_000
    r = await gw.client.post(f"/v1/generations/{gen['id']}/cancel", headers=tenant.auth)
    assert r.status_code == 409


async def test_settles_at_the_actual_cost_and_releases_the_rest(
    gated: tuple[Gateway, Gate],
) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=100_000)
    r = await gw.client.post("/v1/generations", headers=tenant.auth,
                             json={**IMAGE, "provider": "gate"})
    gen = r.json()
    gate.release.set()
    await gw.drain()
    done = (await gw.client.get(f"/v1/generations/{gen['id']}", headers=tenant.auth)).json()
    # Estimated at 10000 USD micros, actually cost 4000: charged the lower price.
    assert done["cost"]["charged"] < done["cost"]["estimated"]
    assert await balance(gw, tenant.auth) == {
        "available": 100_000 - done["cost"]["charged"], "pending": 0,
        "posted": 100_000 - done["cost"]["charged"], "unit": "millicredit",
        "object": "balance"}


async def test_provider_failure_fails_the_generation_and_voids(
    gated: tuple[Gateway, Gate],
) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=100_000)
    gate.fail_with = ProviderError("content policy", code="content_policy", retryable=False)
    r = await gw.client.post("/v1/generations", headers=tenant.auth,
                             json={**IMAGE, "provider": "gate"})
    gate.release.set()
    await gw.drain()
    done = (await gw.client.get(f"/v1/generations/{r.json()['id']}",
                                headers=tenant.auth)).json()
    assert done["status"] == "failed"
    assert done["error"] == {"code": "content_policy", "message": "content policy"}
    assert done["cost"]["charged"] is None
    assert (await balance(gw, tenant.auth))["available"] == 100_000


async def test_idempotency_key_returns_the_same_generation_or_409(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    headers = {**tenant.auth, "Idempotency-Key": "order-42"}
    first = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    second = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = await gateway.client.post("/v1/generations", headers=headers,
                                      json={**IMAGE, "prompt": "something else"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    await gateway.drain()
    held = await balance(gateway, tenant.auth)
    assert held["posted"] == 1_000_000 - first.json()["cost"]["estimated"]


async def test_concurrent_submits_with_one_idempotency_key_make_one_generation(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant()
    headers = {**tenant.auth, "Idempotency-Key": "race"}
    answers = await asyncio.gather(*(
        gateway.client.post("/v1/generations", headers=headers, json=IMAGE) for _ in range(8)))
    ids = {a.json()["id"] for a in answers if a.status_code == 202}
    assert len(ids) == 1, [a.text for a in answers]
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    await gateway.drain()
    async with gateway.runtime.db.session() as session:
        count = await session.scalar(select(func.count()).select_from(Transfer).where(
            Transfer.tenant_id == tenant.id, Transfer.kind == "generation",
            Transfer.phase == "pending"))
    assert count == 1


async def test_list_pages_newest_first_with_a_cursor(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    made = []
    for i in range(5):
        r = await gateway.client.post("/v1/generations", headers=tenant.auth,
                                      json={**IMAGE, "prompt": f"picture {i}"})
        made.append(r.json()["id"])
    await gateway.drain()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await gateway.client.get("/v1/generations", headers=tenant.auth,
                                         params=params)).json()
        assert len(page["data"]) <= 2
        seen += [g["id"] for g in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    filtered = await gateway.client.get("/v1/generations", headers=tenant.auth,
                                        params={"status": "queued"})
    assert filtered.json()["data"] == []
    bad = await gateway.client.get("/v1/generations", headers=tenant.auth,
                                   params={"cursor": "!!"})
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "cursor"


async def test_estimate_reserves_nothing(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth, json=IMAGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"] == "millicredit"
    assert body["provider"] == "local-image"
    assert body["amount"] == body["breakdown"]["wholesale"] > 0
    assert (await balance(gateway, tenant.auth))["pending"] == 0
    submitted = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    assert submitted.json()["cost"]["estimated"] == body["amount"]


async def test_providers_are_listed(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/providers", headers=tenant.auth, params={"type": "image"})
    [local] = [p for p in r.json()["data"] if p["name"] == "local-image"]
    assert local["types"] == ["image"]
    assert local["operations"] == ["image_edit", "image_variation", "text_to_image"]
    assert local["local"] is True
    assert local["status"] == "available"
    meshes = await gateway.client.get("/v1/providers", headers=tenant.auth,
                                      params={"type": "model_3d"})
    assert [p["name"] for p in meshes.json()["data"] if p["local"]] == ["local-3d"]


async def test_missing_scope_is_403(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["read"])
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "permission_error"


async def test_signed_media_links_expire(gateway: Gateway, tmp_path: Path) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                                  json=IMAGE)
    url = r.json()["outputs"][0]["url"]
    key = urlsplit(url).path.removeprefix("/media/")
    past = int(time.time()) - 1
    expired = f"/media/{key}?expires={past}&signature={sign_media(SECRET_KEY, key, past)}"
    assert (await gateway.client.get(expired)).status_code == 403
    future = int(time.time()) + 60
    forged = f"/media/{key}?expires={future}&signature={sign_media(b'x' * 40, key, future)}"
    assert (await gateway.client.get(forged)).status_code == 403
    good = f"/media/{key}?expires={future}&signature={sign_media(SECRET_KEY, key, future)}"
    assert (await gateway.client.get(good)).status_code == 200


async def test_ledger_sums_to_zero_after_traffic(gated: tuple[Gateway, Gate]) -> None:
    gw, gate = gated
    tenant = await gw.tenant(credits_mc=200_000)
    gate.release.set()
    answers = await asyncio.gather(*(
        gw.client.post("/v1/generations", headers=tenant.auth,
                       json={**IMAGE, "provider": "gate", "prompt": f"p{i}"})
        for i in range(20)))
    assert {a.status_code for a in answers} <= {202, 402}
    await gw.drain()
    async with gw.runtime.db.session() as session:
        books = await ledger.balances(session, tenant.id)
    assert sum(t.posted_balance for t in books.values()) == 0
    assert all(t.debits_pending == 0 and t.credits_pending == 0 for t in books.values())


async def test_a_tenants_new_pricing_applies_to_the_next_request(gateway: Gateway) -> None:
    """Submits read the tenant from a short-lived cache; an operator's change evicts it."""
    tenant = await gateway.tenant(credits_mc=1_000_000, billing_mode="mediahub")
    key = await gateway.client.post(
        f"/admin/v1/tenants/{tenant.id}/keys", headers=gateway.admin(),
        json={"name": "c", "customer_id": "c1", "scopes": ["generate", "read"]})
    customer = {"Authorization": f"Bearer {key.json()['key']}"}

    async def retail() -> int:
        r = await gateway.client.post("/v1/generations/estimate", headers=customer, json=IMAGE)
        assert r.status_code == 200, r.text
        amount: int = r.json()["amount"]
        return amount

    before = await retail()
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"pricing": {"markup_bps": {"default": 10_000}}})
    assert r.status_code == 200, r.text
    after = await retail()
    assert after > before  # the cached tenant was dropped by the change
    assert await retail() == after
