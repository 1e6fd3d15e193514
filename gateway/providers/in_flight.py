"""Calls in flight per provider, counted where every process sees them, for the load score
of routing (plugins/routing/rank.py).

The worker counts a call from `ProviderStates.acquire` to `finish`; planning, in the API
process, reads the counts. With workers in separate processes an in-memory count would
always read 0 there, so with Valkey configured the count is a key per provider
(`<queue prefix>:in_flight:<provider>`, INCR/DECR) shared by every process; embedded (one
process) it is a dict.

Expiry safety: a worker that dies mid-call never decrements. Each INCR renews the key's
expiry (`IN_FLIGHT_TTL_S`, longer than any call may last), so a count left behind by a dead
process disappears once the provider has had no new call for that long, instead of making the
provider look busy forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import valkey.asyncio as valkey_client

#: Longer than the longest provider call (the worker's `ASYNC_PROVIDER_TIMEOUT_S`, 600 s).
IN_FLIGHT_TTL_S = 900

# Never below zero: a DECR that follows an expiry (the count was dropped meanwhile) must not
# make the provider look emptier than idle.
_DECREMENT = """
local value = redis.call('DECR', KEYS[1])
if value <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return value
"""


class InFlight(Protocol):
    async def started(self, provider: str) -> None:
        """A call to `provider` began (called by `ProviderStates.acquire`'s caller)."""

    async def ended(self, provider: str) -> None:
        """That call is over, whatever happened."""

    async def counts(self, providers: Sequence[str]) -> dict[str, int]:
        """The calls in flight now to each of `providers`, across every process sharing
        this store."""

    async def close(self) -> None: ...


class LocalInFlight:
    """One process's counts (embedded mode: the API and the worker are the same process)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def started(self, provider: str) -> None:
        self._counts[provider] = self._counts.get(provider, 0) + 1

    async def ended(self, provider: str) -> None:
        left = self._counts.get(provider, 0) - 1
        if left > 0:
            self._counts[provider] = left
        else:
            self._counts.pop(provider, None)

    async def counts(self, providers: Sequence[str]) -> dict[str, int]:
        return {name: self._counts.get(name, 0) for name in providers}

    async def close(self) -> None:
        self._counts.clear()


class ValkeyInFlight:
    """The counts in Valkey, shared by every API process and worker."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = valkey_client.from_url(url, decode_responses=True)  # type: ignore[no-untyped-call]
        self.prefix = prefix
        self._decrement = self.client.register_script(_DECREMENT)

    def _key(self, provider: str) -> str:
        return f"{self.prefix}:in_flight:{provider}"

    async def started(self, provider: str) -> None:
        key = self._key(provider)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, IN_FLIGHT_TTL_S)
            await pipe.execute()

    async def ended(self, provider: str) -> None:
        await self._decrement(keys=[self._key(provider)])

    async def counts(self, providers: Sequence[str]) -> dict[str, int]:
        if not providers:
            return {}
        values = await self.client.mget([self._key(name) for name in providers])
        return {name: max(int(value), 0) if value is not None else 0
                for name, value in zip(providers, values, strict=True)}

    async def close(self) -> None:
        await self.client.aclose()


def make_in_flight(valkey_url: str | None, prefix: str) -> InFlight:
    """Valkey when configured, else this process's dict; built with the process's
    `Services`."""
    return ValkeyInFlight(valkey_url, prefix) if valkey_url else LocalInFlight()
