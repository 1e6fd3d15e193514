"""Nothing is lost when a process stops mid-way: expired reservations are swept, and an
embedded restart requeues what its in-process queue lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from gateway.generations import jobs
from gateway.generations.models import Generation
from gateway.generations.sweeps import expire_reservations, recover_embedded
from tenants.kernel.db import utcnow
from tests.conftest import Gateway

IMAGE = {"type": "image", "prompt": "a quiet street", "params": {"size": "64x64"}}


class NoQueue:
    """A queue that drops every job, as a process killed right after the commit would."""

    def __init__(self) -> None:
        self.dropped: list[str] = []

    async def enqueue(self, task: str, queue: str, *, key: str, delay_s: float = 0.0,
                      **kwargs: Any) -> None:
        self.dropped.append(kwargs["generation_id"])

    async def close(self) -> None:
        pass


async def test_the_sweeper_voids_expired_reservations_and_fails_their_generations(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant(credits_mc=10_000)
    real_queue, gateway.runtime.queue = gateway.runtime.queue, NoQueue()
    try:
        r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
    finally:
        gateway.runtime.queue = real_queue
    gen_id = r.json()["id"]
    held = (await gateway.client.get("/v1/credits/balance", headers=tenant.auth)).json()
    assert held["pending"] > 0

    # Not yet expired: the sweep leaves it alone (other tests' leftovers on a shared
    # database may be swept, hence no count here).
    await expire_reservations(gateway.services)
    waiting = (await gateway.client.get(f"/v1/generations/{gen_id}", headers=tenant.auth)).json()
    assert waiting["status"] == "queued"
    assert (await gateway.client.get("/v1/credits/balance",
                                     headers=tenant.auth)).json()["pending"] > 0
    later = utcnow() + timedelta(seconds=gateway.runtime.settings.reservation_timeout_s + 1)
    assert await expire_reservations(gateway.services, now=later) >= 1
    done = (await gateway.client.get(f"/v1/generations/{gen_id}", headers=tenant.auth)).json()
    assert done["status"] == "failed"
    assert done["error"]["code"] == "reservation_expired"
    balance = (await gateway.client.get("/v1/credits/balance", headers=tenant.auth)).json()
    assert (balance["available"], balance["pending"]) == (10_000, 0)
    # A late job for it changes nothing.
    await jobs.enqueue_run(gateway.runtime, gen_id, "image")
    await gateway.drain()
    again = (await gateway.client.get(f"/v1/generations/{gen_id}", headers=tenant.auth)).json()
    assert again["status"] == "failed"
    assert await expire_reservations(gateway.services, now=later) == 0


async def test_an_embedded_restart_requeues_lost_and_interrupted_jobs(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant(credits_mc=10_000)
    real_queue, gateway.runtime.queue = gateway.runtime.queue, NoQueue()
    try:
        lost = (await gateway.client.post("/v1/generations", headers=tenant.auth,
                                          json=IMAGE)).json()["id"]
        interrupted = (await gateway.client.post("/v1/generations", headers=tenant.auth,
                                                 json={**IMAGE, "prompt": "b"})).json()["id"]
    finally:
        gateway.runtime.queue = real_queue
    # The second was mid-provider-call when the process died.
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(Generation).where(Generation.id == interrupted)
                              .values(status="running", started_at=utcnow()))

    assert await recover_embedded(gateway.services) >= 2
    await gateway.drain()
    for gen_id in (lost, interrupted):
        done = (await gateway.client.get(f"/v1/generations/{gen_id}",
                                         headers=tenant.auth)).json()
        assert done["status"] == "succeeded", done
    balance = (await gateway.client.get("/v1/credits/balance", headers=tenant.auth)).json()
    assert balance["pending"] == 0
    assert balance["available"] < 10_000
