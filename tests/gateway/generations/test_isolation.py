"""A customer never sees or reaches another's: idempotency keys per (tenant, customer), a key
left free by a refused request, and what a white-label customer is shown (SQLite and
PostgreSQL)."""

from __future__ import annotations

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
