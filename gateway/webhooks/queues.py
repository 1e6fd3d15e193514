"""Where webhook delivery attempts wait for their turn, shared fairly between tenants.

One tenant with many slow receivers must not delay another tenant's deliveries, so no tenant
holds more than `MEDIAHUB_WEBHOOK_MAX_IN_FLIGHT` attempts at once, and an attempt that would
pass that cap waits *without* holding one of the `MEDIAHUB_WEBHOOK_CONCURRENCY` slots:

- **Embedded** (`InProcessWebhookQueue`): due attempts wait in one queue per tenant; a free
  slot goes to the tenant under its cap with the fewest attempts running, and among those to
  the one served longest ago (a tenant that just arrived goes first).
- **SAQ** (`SaqWebhookQueue`, worked by every `mediahub worker`): the cap is counted in Valkey
  across all processes (`ValkeySlots`, a lease per attempt so a killed worker's slots come
  back); a job whose tenant is at its cap is queued again `DEFER_S` later (doubling) under a
  new key and ends at once, so the worker's slot goes to the next job (another tenant's)
  right away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from saq import Queue

log = logging.getLogger(__name__)

DELIVER_WEBHOOK = "webhook.deliver"
#: How long a job whose tenant is at its in-flight cap waits before it asks again, seconds
#: (SAQ schedules in whole seconds); it doubles with each refusal up to `DEFER_MAX_S`, so a
#: tenant with a large backlog behind slow receivers does not spin its jobs every second.
DEFER_S = 1.0
DEFER_MAX_S = 16.0


class WebhookQueue(Protocol):
    async def schedule(self, tenant_id: str, delivery_id: str, attempt: int,
                       delay_s: float) -> None:
        """Run `deliver(delivery_id)` for attempt `attempt` after `delay_s` seconds, counted
        against `tenant_id`'s in-flight cap."""

    async def close(self) -> None: ...


class InProcessWebhookQueue:
    """Embedded mode: at most `concurrency` attempts run at once, at most `per_tenant` of
    one tenant; a free slot goes to the tenants with due attempts in turn (fewest running
    first, then the one served longest ago).

    A back-off is waited out by a timer task (scheduling, not synchronisation); the database
    remembers what a stop interrupts.
    """

    def __init__(self, handler: Callable[[str], Awaitable[None]], *, concurrency: int,
                 per_tenant: int) -> None:
        self._handler = handler
        self._concurrency = concurrency
        self._per_tenant = per_tenant
        #: Due attempts per tenant, oldest first.
        self._ready: dict[str, deque[str]] = {}
        self._running: dict[str, int] = {}
        #: When each tenant with work was last given a slot (a counter, not a clock).
        self._served: dict[str, int] = {}
        self._ticket = 0
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def in_flight(self, tenant_id: str) -> int:
        """Attempts of `tenant_id` running now (for tests and metrics)."""
        return self._running.get(tenant_id, 0)

    def waiting(self, tenant_id: str) -> int:
        """Due attempts of `tenant_id` waiting for a slot (for tests and metrics)."""
        return len(self._ready.get(tenant_id, ()))

    async def schedule(self, tenant_id: str, delivery_id: str, attempt: int,
                       delay_s: float) -> None:
        if delay_s > 0:
            self._track(asyncio.create_task(self._later(tenant_id, delivery_id, delay_s),
                                            name=f"webhook:{delivery_id}:{attempt}:wait"))
        else:
            self._enqueue(tenant_id, delivery_id)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, tenant_id: str, delivery_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._enqueue(tenant_id, delivery_id)

    def _enqueue(self, tenant_id: str, delivery_id: str) -> None:
        self._ready.setdefault(tenant_id, deque()).append(delivery_id)
        self._pump()

    def _pump(self) -> None:
        """Start attempts while a slot is free and some tenant under its cap has one due."""
        while self._active < self._concurrency:
            tenant_id = self._next_tenant()
            if tenant_id is None:
                return
            waiting = self._ready[tenant_id]
            delivery_id = waiting.popleft()
            if not waiting:
                del self._ready[tenant_id]
            self._active += 1
            self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
            self._ticket += 1
            self._served[tenant_id] = self._ticket
            task = asyncio.create_task(self._run(tenant_id, delivery_id),
                                       name=f"webhook:{delivery_id}")
            self._track(task)

    def _next_tenant(self) -> str | None:
        """The tenant under its cap with the fewest attempts running, then the one served
        longest ago; None when no tenant under its cap has an attempt due."""
        best: str | None = None
        best_key = (0, 0)
        for tenant_id in self._ready:
            running = self._running.get(tenant_id, 0)
            if running >= self._per_tenant:
                continue
            key = (running, self._served.get(tenant_id, 0))
            if best is None or key < best_key:
                best, best_key = tenant_id, key
        return best

    async def _run(self, tenant_id: str, delivery_id: str) -> None:
        try:
            await self._handler(delivery_id)
        except Exception:
            log.exception("webhook delivery crashed", extra={"delivery_id": delivery_id})
        finally:
            self._active -= 1
            left = self._running[tenant_id] - 1
            if left:
                self._running[tenant_id] = left
            else:
                del self._running[tenant_id]
                if tenant_id not in self._ready:
                    self._served.pop(tenant_id, None)  # nothing left: forget it
            self._pump()

    async def drain(self) -> None:
        """Wait until every scheduled attempt (retries included) has run."""
        # Nothing waits in `_ready` without a running attempt to pump it when it ends.
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        self._ready.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


#: Take one of a tenant's in-flight slots: drop the expired leases, refuse at the cap, else
#: add a lease. Valkey's own clock, so workers' clocks need not agree.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


class ValkeySlots:
    """Each tenant's in-flight webhook attempts across every process: a sorted set of leases
    (`<prefix>:webhooks:in_flight:<tenant>`) that expire `lease_s` after they were taken, so
    a worker killed mid-attempt gives its slots back."""

    def __init__(self, redis: Any, *, prefix: str, per_tenant: int, lease_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._per_tenant = per_tenant
        self._lease_ms = math.ceil(lease_s * 1000)
        self._acquire = redis.register_script(_ACQUIRE)

    def _key(self, tenant_id: str) -> str:
        return f"{self._prefix}:webhooks:in_flight:{tenant_id}"

    async def acquire(self, tenant_id: str) -> str | None:
        """A lease token when the tenant is under its cap; None when it is at it."""
        token = secrets.token_hex(8)
        taken = await self._acquire(keys=[self._key(tenant_id)],
                                    args=[self._per_tenant, self._lease_ms, token])
        return token if taken else None

    async def release(self, tenant_id: str, token: str) -> None:
        """Give the slot back (called when the attempt ends, however it ends)."""
        await self._redis.zrem(self._key(tenant_id), token)

    async def in_flight(self, tenant_id: str) -> int:
        """Leases held now (expired ones included until the next acquire drops them)."""
        return int(await self._redis.zcard(self._key(tenant_id)))


class SaqWebhookQueue:
    """The `<prefix>:webhooks` SAQ queue; one job per attempt (key `<delivery>:<attempt>`),
    carrying the tenant so a worker can check its cap before touching the database."""

    def __init__(self, url: str, *, prefix: str, timeout_s: int, per_tenant: int) -> None:
        self.queue = Queue.from_url(url, name=f"{prefix}:webhooks")
        self._timeout_s = timeout_s
        # The slot is held for the attempt's whole job, which SAQ cuts at timeout + 30 s.
        self.slots = ValkeySlots(self.queue.redis, prefix=prefix,  # type: ignore[attr-defined]
                                 per_tenant=per_tenant, lease_s=timeout_s + 30)

    async def schedule(self, tenant_id: str, delivery_id: str, attempt: int,
                       delay_s: float) -> None:
        await self._enqueue(tenant_id, delivery_id, f"{delivery_id}:{attempt}", delay_s)

    async def defer(self, tenant_id: str, delivery_id: str, refused: int) -> None:
        """Ask again later (`DEFER_S`, doubled for each of the `refused` times before);
        called by a job whose tenant is at its cap.

        The key alternates between `<delivery>:wait0` and `:wait1`: not the running job's
        own (SAQ refuses a key still in use), and the same for every copy of the delivery's
        job, so a duplicate (the sweeper's requeue of a delivery that waited long) finds the
        key taken and ends instead of waiting beside the original forever.
        """
        delay = min(DEFER_S * 2 ** min(refused, 16), DEFER_MAX_S)
        await self._enqueue(tenant_id, delivery_id, f"{delivery_id}:wait{(refused + 1) % 2}",
                            delay, refused=refused + 1)

    async def _enqueue(self, tenant_id: str, delivery_id: str, key: str, delay_s: float,
                       *, refused: int = 0) -> None:
        # SAQ schedules in whole seconds: round up so the job never runs before it is due.
        scheduled = math.ceil(time.time() + delay_s) if delay_s > 0 else 0
        await self.queue.enqueue(DELIVER_WEBHOOK, key=key, delivery_id=delivery_id,
                                 tenant_id=tenant_id, refused=refused, scheduled=scheduled,
                                 timeout=self._timeout_s + 30, retries=1)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.queue.disconnect()
