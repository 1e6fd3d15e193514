"""A test plugin for crash tests: providers whose calls block until the test opens a gate.

Loaded by `mediahub worker` subprocesses through an entry point
(tests/gateway/generations/test_crash.py writes its dist-info). Everything it sees and does
is kept in Valkey, so the test can watch calls in flight across processes and count them
after a worker was killed. Valkey's URL comes as the
provider's base URL and the key prefix as its API key (`MEDIAHUB_CRASH_SYNC_BASE_URL`, ...),
the way the gateway hands any provider its credentials.

- `crash-sync` takes idempotency keys: it records every call by key and charges a key once.
- `crash-async` is asynchronous: `submit` records a task per key, `poll` answers once the gate
  is open, `cancel` records the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import redis.asyncio as redis

from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
)

_clients: dict[str, redis.Redis] = {}


def _store(credentials: Credentials) -> tuple[redis.Redis, str]:
    assert credentials.base_url, "set the crash providers' base URL"
    assert credentials.api_key, "set the crash providers' key prefix"
    if credentials.base_url not in _clients:
        _clients[credentials.base_url] = redis.Redis.from_url(credentials.base_url)
    return _clients[credentials.base_url], credentials.api_key


def _result() -> ProviderResult:
    return ProviderResult(outputs=[ProviderOutput(data=b"\x89PNG crash", content_type="image/png")],
                          cost_usd_micros=4_000)


class CrashSync(Provider):
    name = "crash-sync"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    idempotency_keys = True

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        store, prefix = _store(credentials)
        key = request.idempotency_key or "none"
        await store.hincrby(f"{prefix}:sync-calls", key, 1)
        await store.sadd(f"{prefix}:entered", key)
        # A remote service working until the test lets it finish.
        while not await store.exists(f"{prefix}:open"):
            await asyncio.sleep(0.02)
        # Charged once per idempotency key, as a provider that honours keys would.
        await store.sadd(f"{prefix}:charged", key)
        return _result()


class CrashAsync(Provider):
    name = "crash-async"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    asynchronous = True

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        raise AssertionError("the gateway submits and polls an asynchronous provider")

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        store, prefix = _store(credentials)
        key = request.idempotency_key or "none"
        await store.hincrby(f"{prefix}:submits", key, 1)
        return ProviderTask(task_id=f"task-{key}", poll_after_s=0.2)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        store, prefix = _store(credentials)
        await store.hincrby(f"{prefix}:polls", task.task_id, 1)
        return _result() if await store.exists(f"{prefix}:open") else None

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        store, prefix = _store(credentials)
        await store.sadd(f"{prefix}:canceled", task.task_id)


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(CrashSync())
    register(CrashAsync())
