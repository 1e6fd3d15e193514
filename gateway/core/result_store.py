"""The key-value seam behind the result cache and in-flight coalescing (DESIGN.md, "Embedded
default and scale-out"): Valkey in production, a TTL dict in one embedded process.

Values are short strings (generation ids); every key expires. Used only by
`gateway/generations/cache.py`, which builds the keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import valkey.asyncio as valkey_client

# Delete a key only while it still holds the caller's value, so a leader that ends late never
# clears the marker of the next leader.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ResultStore(Protocol):
    async def get(self, key: str) -> str | None:
        """The live value under `key`, or None (missing or expired)."""

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Store `value` under `key` for `ttl_s` seconds, replacing what was there."""

    async def add(self, key: str, value: str, ttl_s: int) -> bool:
        """Store `value` only if `key` holds nothing live; True when this call stored it."""

    async def delete_if(self, key: str, value: str) -> None:
        """Delete `key` if it still holds `value`."""

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires (None: missing); for tests and operators."""

    async def close(self) -> None: ...


class InProcessStore:
    """A dict of `key → (value, expires_at)` on an injectable monotonic clock (embedded mode:
    one process, so no other process needs to see it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._items: dict[str, tuple[str, float]] = {}

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self.clock():
            del self._items[key]
            return None
        return item[0]

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        self._items[key] = (value, self.clock() + ttl_s)
        if len(self._items) > 10_000:
            self._purge()

    async def add(self, key: str, value: str, ttl_s: int) -> bool:
        # No await between the check and the write: atomic within the event loop.
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl_s)
        return True

    async def delete_if(self, key: str, value: str) -> None:
        if self._live(key) == value:
            del self._items[key]

    async def ttl(self, key: str) -> float | None:
        if self._live(key) is None:
            return None
        return self._items[key][1] - self.clock()

    def _purge(self) -> None:
        now = self.clock()
        for key in [k for k, (_, at) in self._items.items() if at <= now]:
            del self._items[key]

    async def close(self) -> None:
        self._items.clear()


class ValkeyStore:
    """The same on Valkey/Redis, shared by every API process and worker."""

    def __init__(self, url: str) -> None:
        self.client = valkey_client.from_url(url, decode_responses=True)  # type: ignore[no-untyped-call]
        self._delete_if_equal = self.client.register_script(_DELETE_IF_EQUAL)

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        await self.client.set(key, value, ex=ttl_s)

    async def add(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(await self.client.set(key, value, ex=ttl_s, nx=True))

    async def delete_if(self, key: str, value: str) -> None:
        await self._delete_if_equal(keys=[key], args=[value])

    async def ttl(self, key: str) -> float | None:
        ms = await self.client.pttl(key)
        return None if ms < 0 else ms / 1000

    async def close(self) -> None:
        await self.client.aclose()


def make_result_store(valkey_url: str | None) -> ResultStore:
    """Valkey when configured, else the in-process store."""
    return ValkeyStore(valkey_url) if valkey_url else InProcessStore()
