"""One family of per-tenant Valkey channels (`<prefix>:<name>:<tenant id>`), published to by
any process and heard by every process that listens, on one pattern subscription.

Used by the notifications that must reach every API process: the ends of generations
(`Prefer: wait`, `generations.services.Completions`) and generation events (the SSE streams,
`generations.events`). Delivery is best effort: publishing never raises and never waits long
(an unreachable Valkey must not hold up the job that publishes), a lost subscription is
reopened after a pause, and a message lost meanwhile is not retried — each user of this reads
the database when it must be sure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import valkey.asyncio as valkey_client

log = logging.getLogger(__name__)

#: Longest a publish waits for Valkey.
PUBLISH_TIMEOUT_S = 2.0
#: How long the first listener waits for the subscription to be confirmed before going on.
SUBSCRIBE_WAIT_S = 2.0
#: Pause before the listener reconnects after losing Valkey.
RECONNECT_AFTER_S = 1.0
#: A subscription quiet this long sends a PING, so a dead connection is noticed.
IDLE_PING_S = 15.0


class Fanout:
    """Publish to and listen on `<prefix>:<name>:*`; `on_message` gets each message's bytes
    (in this process's event loop, so it must not block), `on_resubscribed` is called when
    the subscription is back after being lost (what was published meanwhile is not heard)."""

    def __init__(self, valkey_url: str, prefix: str, name: str,
                 on_message: Callable[[bytes], None],
                 on_resubscribed: Callable[[], None] | None = None) -> None:
        self._url = valkey_url
        self._base = f"{prefix}:{name}"
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._publisher: valkey_client.Valkey | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def channel(self, tenant_id: str) -> str:
        return f"{self._base}:{tenant_id}"

    async def publish(self, tenant_id: str, payload: bytes | str) -> bool:
        """Publish `payload` on the tenant's channel; False (logged) when Valkey could not
        take it in time. Never raises."""
        try:
            if self._publisher is None:
                self._publisher = valkey_client.from_url(self._url)  # type: ignore[no-untyped-call]
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._publisher.publish(self.channel(tenant_id), payload)
        except Exception:
            log.warning("could not publish on %s", self._base, exc_info=True)
            return False
        return True

    async def listening(self) -> None:
        """Start the process's listener if it is not running, and wait (briefly) until its
        subscription is confirmed; called before anything that must hear what follows."""
        if self._listener is None or self._listener.done():
            self._subscribed.clear()
            self._listener = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT_S)

    async def _listen(self) -> None:
        lost = False
        while True:
            # No socket timeout: the client's default (5 s) made every quiet subscription
            # "time out", drop and reconnect, deaf for a second each time. Instead an idle
            # wait of IDLE_PING_S ends in a PING, which fails on a dead connection.
            client = valkey_client.from_url(  # type: ignore[no-untyped-call]
                self._url, socket_timeout=None, socket_keepalive=True,
                client_name=self._base)  # named for CLIENT LIST
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(self.channel("*"))
                while True:
                    message = await pubsub.get_message(timeout=IDLE_PING_S)
                    if message is None:
                        await pubsub.ping()
                    elif message["type"] == "psubscribe":
                        self._subscribed.set()
                        if lost and self._on_resubscribed is not None:
                            # Messages published while deaf are gone: whoever relies on
                            # them re-reads what it must.
                            self._on_resubscribed()
                        lost = False
                    elif message["type"] == "pmessage":
                        data = message["data"]
                        self._on_message(data if isinstance(data, bytes) else str(data).encode())
            except asyncio.CancelledError:
                raise
            except Exception:
                lost = True
                log.warning("lost the subscription to %s; reconnecting", self._base,
                            exc_info=True)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RECONNECT_AFTER_S)

    async def close(self) -> None:
        """Stop listening and close the connections; called when the process stops."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._publisher is not None:
            await self._publisher.aclose()
