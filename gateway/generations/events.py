"""Generation events: every status or progress change of a generation, told to the open
`GET /v1/generations/events` streams of whoever may see it (API.md, contract C2).

`lifecycle` (and `submit`, for the first `queued`) call `GenerationEvents.publish` once the
change is committed. Without Valkey the event goes straight to this process's streams (an
embedded gateway is its only process). With Valkey it is published on the tenant's channel
(`<prefix>:events:<tenant id>`), and every API process that has a stream open listens to all
tenants' channels on one pattern subscription (opened by its first stream, kept) and hands
each event to its streams of that tenant; a stream keeps only what its caller may see.

Delivery is best effort, as a notification should be: a lost message (Valkey restarting, a
stream too slow to drain its buffer) is never retried; the client reads the generation for its
state. Publishing never raises and never waits long, so it cannot hold up a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec

from gateway.core.fanout import Fanout
from tenants.kernel.errors import RateLimited

log = logging.getLogger(__name__)

#: Events buffered per stream; a stream that falls further behind loses the newest ones.
STREAM_BUFFER = 256


class GenerationEvent(msgspec.Struct):
    """What a stream's `event: generation` carries (its `data`)."""

    id: str
    status: str
    progress: float | None
    type: str
    team_id: str | None


class _Envelope(msgspec.Struct):
    """An event with what decides who sees it, as it travels between processes."""

    tenant_id: str
    customer_id: str | None
    seq: int
    event: GenerationEvent


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose generations a stream shows, as `GET /v1/generations` lists them: a team's
    (`team_id`), a customer's own, or, with neither, every generation of the tenant (a
    tenant-wide key)."""

    tenant_id: str
    customer_id: str | None = None
    team_id: str | None = None

    def sees(self, envelope: _Envelope) -> bool:
        if envelope.tenant_id != self.tenant_id:
            return False
        if self.team_id is not None:
            return envelope.event.team_id == self.team_id
        if self.customer_id is not None:
            # As the list shows a customer: its own, those made for a team included.
            return envelope.customer_id == self.customer_id
        return True


@dataclass(eq=False)
class Stream:
    """One open stream: its audience and the events waiting to be sent (`id`, event)."""

    audience: Audience
    queue: asyncio.Queue[tuple[str, GenerationEvent]] = field(
        default_factory=lambda: asyncio.Queue(STREAM_BUFFER))

    def offer(self, envelope: _Envelope) -> None:
        if not self.audience.sees(envelope):
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait((f"{envelope.event.id}:{envelope.seq}", envelope.event))


def _seq() -> int:
    # Microseconds since the epoch: increasing for one generation's events in practice
    # (they are written one after another), and needing no shared counter.
    return time.time_ns() // 1000


class GenerationEvents:
    """The process's publisher of generation events and the registry of its open streams."""

    def __init__(self, valkey_url: str | None = None, prefix: str = "mediahub", *,
                 max_streams_per_tenant: int = 100) -> None:
        self._max = max_streams_per_tenant
        self._streams: dict[str, set[Stream]] = {}
        self._fanout = (None if valkey_url is None else
                        Fanout(valkey_url, prefix, "events", self._heard))
        self._decoder = msgspec.json.Decoder(_Envelope)

    def open_streams(self, tenant_id: str | None = None) -> int:
        """Streams open in this process (of `tenant_id`; None: all), for tests and operators."""
        if tenant_id is None:
            return sum(len(s) for s in self._streams.values())
        return len(self._streams.get(tenant_id, ()))

    def check_room(self, tenant_id: str) -> None:
        """Raise `RateLimited` (429 `too_many_streams`) when `tenant_id` holds the most streams
        it may have open in this process; called before a stream's response starts."""
        if len(self._streams.get(tenant_id, ())) >= self._max:
            raise RateLimited(f"at most {self._max} event streams may be open at once",
                              code="too_many_streams", retry_after_s=15)

    @contextlib.asynccontextmanager
    async def stream(self, audience: Audience) -> AsyncIterator[Stream]:
        """A stream of `audience`'s events, from the moment it is entered (with Valkey, once
        the subscription is confirmed, or after `SUBSCRIBE_WAIT_S`). Raises `RateLimited`
        (429 `too_many_streams`) when the tenant already has its maximum open here."""
        self.check_room(audience.tenant_id)
        streams = self._streams.setdefault(audience.tenant_id, set())
        stream = Stream(audience)
        streams.add(stream)
        try:
            if self._fanout is not None:
                await self._fanout.listening()
            yield stream
        finally:
            streams.discard(stream)
            if not streams:
                self._streams.pop(audience.tenant_id, None)

    async def publish(self, tenant_id: str, customer_id: str | None,
                      event: GenerationEvent) -> None:
        """Tell the streams that may see it about `event`; called after the change it
        describes is committed. Never raises."""
        envelope = _Envelope(tenant_id=tenant_id, customer_id=customer_id, seq=_seq(),
                             event=event)
        if self._fanout is None:
            self._deliver(envelope)
        elif not await self._fanout.publish(tenant_id, msgspec.json.encode(envelope)):
            log.warning("a generation event was not published",
                        extra={"generation_id": event.id})

    def _deliver(self, envelope: _Envelope) -> None:
        for stream in self._streams.get(envelope.tenant_id, ()):
            stream.offer(envelope)

    def _heard(self, data: bytes) -> None:
        try:
            self._deliver(self._decoder.decode(data))
        except msgspec.DecodeError:
            log.warning("ignored a malformed generation event")

    async def close(self) -> None:
        """Stop listening and close the connections; called when the process stops."""
        if self._fanout is not None:
            await self._fanout.close()
