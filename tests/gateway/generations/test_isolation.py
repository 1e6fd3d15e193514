"""A customer never sees or reaches another's: idempotency keys per (tenant, customer), a key
left free by a refused request, and what a white-label customer is shown (SQLite and
PostgreSQL)."""

from __future__ import annotations

from gateway.core.jobs import SaqQueue
from tests.conftest import Gateway

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def test_idempotency_keys_are_per_customer(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = {**tenant.auth, "X-Customer-Id": "alice", "Idempotency-Key": "order-1"}
    bob = {**tenant.auth, "X-Customer-Id": "bob", "Idempotency-Key": "order-1"}
    own = {**tenant.auth, "Idempotency-Key": "order-1"}
    first = await gateway.client.post("/v1/generations", headers=alice, json=IMAGE)
    assert first.status_code == 202, first.text
    await gateway.drain()
    # Bob replays Alice's key and body: his own generation, not hers (nor her outputs).
    theirs = await gateway.client.post("/v1/generations", headers=bob, json=IMAGE)
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    # The tenant's own key (no customer) is a third, distinct key.
    tenants = await gateway.client.post("/v1/generations", headers=own, json=IMAGE)
    assert tenants.status_code == 202, tenants.text
    assert tenants.json()["id"] not in {first.json()["id"], theirs.json()["id"]}
    # Each caller's replay still answers its own first generation.
    for headers, answer in ((alice, first), (bob, theirs), (own, tenants)):
        again = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == answer.json()["id"]
    await gateway.drain()


async def test_a_request_refused_by_a_down_queue_leaves_its_key_free(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=20_000)
    headers = {**tenant.auth, "Idempotency-Key": "retry-me"}
    working = gateway.runtime.queue
    # The queue is down: a real SAQ queue whose Valkey does not listen (port 1).
    gateway.runtime.queue = SaqQueue("redis://127.0.0.1:1/0", prefix="mhtestdown")
    try:
        refused = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "queue_unavailable"
    finally:
        down = gateway.runtime.queue
        gateway.runtime.queue = working
        await down.close()
    # The queue is back: the retry with the same key runs, as a new generation.
    retry = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "queued"
    await gateway.drain()
    done = (await gateway.client.get(f"/v1/generations/{retry.json()['id']}",
                                     headers=tenant.auth)).json()
    assert done["status"] == "succeeded"
    # And the key now belongs to it.
    again = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert again.json()["id"] == retry.json()["id"]
