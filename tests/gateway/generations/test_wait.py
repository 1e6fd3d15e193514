"""`Prefer: wait` (gateway/generations/service.py `wait_until_final`) and a saturated database
pool: a wait is woken by the end's notification, from any process, and holds no connection
while it waits; it stops when the client hangs up; a request that finds every connection
taken answers 503 `database_busy` with `Retry-After`, not 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import valkey.asyncio as valkey_client
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import start_services
from gateway.core.jobs import SaqQueue, build_workers, stop_workers
from gateway.core.runtime import Runtime
from gateway.generations import lifecycle
from gateway.generations.models import Generation
from gateway.generations.services import Services
from plugins.host import build_plugin_host
from tests.conftest import Gate, GatePlugin, Gateway, make_settings, running_gateway

IMAGE = {"type": "image", "prompt": "a harbour at night", "provider": "gate"}


async def until(condition: Callable[[], bool]) -> None:
    """Until `condition()` holds (checked on each turn of the loop, for 10 s at most)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.contextmanager
def checkouts(engine: AsyncEngine) -> Iterator[list[int]]:
    """Counts the connections taken from `engine`'s pool inside the block (one per read or
    transaction): `[count]`."""
    count = [0]

    def taken(*_: Any) -> None:
        count[0] += 1

    event.listen(engine.sync_engine, "checkout", taken)
    try:
        yield count
    finally:
        event.remove(engine.sync_engine, "checkout", taken)


@contextlib.asynccontextmanager
async def released(gate: Gate) -> AsyncIterator[None]:
    """Opens the gate when the block ends, however it ends, so no job is left hanging."""
    try:
        yield
    finally:
        gate.release.set()


def waiting(services: Services) -> int:
    return services.completions.waiting()


async def cancel_unheard(settings: Any, tenant_id: str) -> None:
    """End the tenant's one generation (canceled) from a process that publishes nothing, as
    if the end's notification were lost."""
    silent = Services.over(await Runtime.start(
        msgspec.structs.replace(settings, valkey_url=None), with_queue=False))
    try:
        async with silent.runtime.db.session() as session:
            row = await session.scalar(select(Generation).where(
                Generation.tenant_id == tenant_id))
        assert row is not None
        assert await lifecycle.end(silent, row, lifecycle.Failed(
            "canceled", "canceled", status="canceled"))
    finally:
        await silent.close()


@contextlib.asynccontextmanager
async def other_process(settings: Any, gate: Gate) -> AsyncIterator[None]:
    """A worker with its own `Services` (its own pool and Valkey connections), as
    `mediahub worker` runs: the generation ends there, not in the API's process."""
    services = await start_services(settings, plugins=build_plugin_host(
        load_entry_points=False, extra=[GatePlugin(gate)]))
    saq_queue = SaqQueue(settings.valkey_url, prefix=settings.queue_prefix,
                         heartbeat_s=settings.job_lease_s)
    [worker] = build_workers(saq_queue, ["image"], services.runtime.tasks,
                             concurrency_for=lambda _: 2, sweep_interval_s=60)
    task = asyncio.create_task(worker.start())
    try:
        yield
    finally:
        await stop_workers([worker], grace_s=30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await saq_queue.close()
        await services.close()


async def test_a_wait_is_woken_by_an_end_in_another_process_without_polling(
        database_url: str, valkey: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, valkey_url=valkey)
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as api, \
            other_process(settings, gate), released(gate):
        tenant = await api.tenant()
        with checkouts(api.runtime.db.engine) as reads:
            answer = asyncio.create_task(api.client.post(
                "/v1/generations", json=IMAGE, headers={**tenant.auth, "Prefer": "wait=30"}))
            await gate.entered.wait()
            await until(lambda: waiting(api.services) == 1)
            parked = reads[0]
            # An observation window, not a synchronisation: polling every 250 ms would read
            # the row three times or more in it.
            await asyncio.sleep(1)
            assert reads[0] - parked <= 1  # at most the read that starts the wait
            gate.release.set()
            async with asyncio.timeout(5):  # answered promptly, not at the 30 s deadline
                r = await answer
            # The API's pool served the wait's reads only: the start and after the wake-up.
            assert reads[0] - parked <= 2
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
        assert waiting(api.services) == 0


async def test_waiters_hold_no_connection_and_a_saturated_pool_answers_503(
        pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(pg_url, tmp_path, database_pool_size=2,
                             database_max_overflow=0, database_pool_timeout_s=1)
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw, released(gate):
        engine = gw.runtime.db.engine
        tenant = await gw.tenant()
        waiters = []
        # More waiting requests than the pool has connections, each job inside the provider.
        for count in range(1, 4):
            waiters.append(asyncio.create_task(gw.client.post(
                "/v1/generations", json=IMAGE, headers={**tenant.auth, "Prefer": "wait=30"})))
            await gate.entered.wait()
            gate.entered.clear()
            await until(lambda n=count: waiting(gw.services) == n)  # type: ignore[misc]
        await until(lambda: engine.pool.checkedout() == 0)  # type: ignore[attr-defined]
        async with engine.connect() as one, engine.connect() as two:
            await one.exec_driver_sql("SELECT 1")
            await two.exec_driver_sql("SELECT 1")
            # Every connection is taken: a read waits the pool timeout, then answers 503.
            # Twice, one after the other, so the pool stays exhausted for longer than a pool
            # timeout: a waiter that needed a connection meanwhile would fail.
            for _ in range(2):
                busy = await gw.client.get("/v1/credits/balance", headers=tenant.auth)
                assert busy.status_code == 503, busy.text
                assert busy.headers["Retry-After"] == "1"
                assert busy.json() == {"error": {
                    "type": "unavailable_error", "code": "database_busy",
                    "message": "the service is busy; retry shortly", "param": None}}
        # While the pool was exhausted the waiters needed nothing of it.
        gate.release.set()
        answers = await asyncio.gather(*waiters)
        assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
        assert {a.json()["status"] for a in answers} == {"succeeded"}
        assert (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).status_code \
            == 200


async def test_a_client_that_hangs_up_stops_its_wait(
        gated: tuple[Gateway, Gate]) -> None:
    gw, _gate = gated
    tenant = await gw.tenant()
    body = json.dumps(IMAGE).encode()
    hung_up = asyncio.Event()
    sent = False

    # The ASGI server's side of one request, as uvicorn plays it: the body, then nothing
    # until the client goes away.
    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/generations", "raw_path": b"/v1/generations",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80), "state": {},
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"authorization", f"Bearer {tenant.key}".encode()),
                    (b"prefer", b"wait=60")]}
    call = asyncio.create_task(gw.app(scope, receive, send))  # type: ignore[arg-type]
    await until(lambda: waiting(gw.services) == 1)
    hung_up.set()
    # The request (and with it its waiter: nothing of it is left to read the row) ends with
    # the connection, not at its 60 s deadline.
    async with asyncio.timeout(5):
        await call
    assert waiting(gw.services) == 0


async def test_a_missed_notification_costs_time_not_the_result(
        database_url: str, valkey: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, valkey_url=valkey)
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as api, released(gate):
        tenant = await api.tenant()
        # The generation waits in the queue (no worker runs) while the caller waits for it.
        answer = asyncio.create_task(api.client.post(
            "/v1/generations", json=IMAGE, headers={**tenant.auth, "Prefer": "wait=2"}))
        await until(lambda: waiting(api.services) == 1)
        # It ends in a process that publishes nothing (as if the message were lost).
        await cancel_unheard(settings, tenant.id)
        # The read at the deadline finds it ended.
        r = await answer
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "canceled"


async def test_a_lost_subscription_makes_waiters_read_again_when_it_is_back(
        database_url: str, valkey: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, valkey_url=valkey)
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as api, released(gate):
        tenant = await api.tenant()
        answer = asyncio.create_task(api.client.post(
            "/v1/generations", json=IMAGE, headers={**tenant.auth, "Prefer": "wait=30"}))
        await until(lambda: waiting(api.services) == 1)
        # It ends, unheard (published by no one), while this process's subscription is cut.
        await cancel_unheard(settings, tenant.id)
        admin = valkey_client.from_url(valkey)  # type: ignore[no-untyped-call]
        try:
            # This process's listener names its connection after its channels.
            listed = (await admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub")).decode()
            [listener] = [line.split()[0].removeprefix("id=") for line in listed.splitlines()
                          if f" name={settings.queue_prefix}:ended " in f" {line} "]
            await admin.execute_command("CLIENT", "KILL", "ID", listener)
        finally:
            await admin.aclose()
        # Back subscribed, the waiter reads its row again: answered long before 30 s.
        async with asyncio.timeout(10):
            r = await answer
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "canceled"
        assert waiting(api.services) == 0
