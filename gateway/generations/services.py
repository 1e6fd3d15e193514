"""The domain services one process runs over its `Runtime`, built by its entry point.

`gateway.app` (the API), `gateway.worker` and `gateway.cli` each call `Services.start`, then
`gateway.generations.jobs.register` to bind the generation tasks and periodic sweeps to the
process's queue. Everything that needs more than infrastructure receives a `Services`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.fanout import Fanout
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.generations.events import GenerationEvents
from gateway.generations.models import Generation
from gateway.generations.views import render
from gateway.providers.in_flight import make_in_flight
from gateway.providers.states import ProviderStates
from gateway.webhooks.service import Webhooks
from plugins.host import PluginHost

log = logging.getLogger(__name__)


class Completions:
    """Wakes `Prefer: wait` requests when a generation ends, in whichever process it ends.

    `finished` (called by `lifecycle.end` after its commit) wakes this process's waiters of
    the generation and, with Valkey, publishes its id on the tenant's channel
    (`<prefix>:ended:<tenant id>`). A process that waits listens to every tenant's channel
    on one pattern subscription, opened by its first wait and kept, and wakes its waiters of
    the id it hears. Nothing polls: when a lost subscription comes back every waiter re-reads
    its row, and a message missed otherwise only makes a waiter read it at its deadline.
    """

    def __init__(self, valkey_url: str | None = None, prefix: str = "mediahub") -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._fanout = (None if valkey_url is None else
                        Fanout(valkey_url, prefix, "ended",
                               lambda data: self._wake(data.decode()),
                               on_resubscribed=self._wake_all))

    def waiting(self, generation_id: str | None = None) -> int:
        """How many requests of this process wait for `generation_id` (None: for any); for
        tests and operators."""
        if generation_id is None:
            return sum(len(waiters) for waiters in self._waiters.values())
        return len(self._waiters.get(generation_id, ()))

    @contextlib.asynccontextmanager
    async def watching(self, generation_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when `generation_id` ends, from the moment this is entered (the
        subscription is confirmed first, so an end published after it is heard); called by
        `service.wait_until_final`, which reads the row only after entering."""
        event = asyncio.Event()
        self._waiters.setdefault(generation_id, set()).add(event)
        try:
            if self._fanout is not None:
                await self._fanout.listening()
            yield event
        finally:
            waiters = self._waiters.get(generation_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[generation_id]

    async def finished(self, tenant_id: str, generation_id: str) -> None:
        """Wake every request waiting for `generation_id`, here and (with Valkey) in the other
        processes. Called once the generation's end is committed; never raises (a lost
        message delays waiters to their deadline, it does not lose the result)."""
        self._wake(generation_id)
        if self._fanout is not None:
            await self._fanout.publish(tenant_id, generation_id)

    def _wake(self, generation_id: str) -> None:
        for event in self._waiters.get(generation_id, ()):
            event.set()

    def _wake_all(self) -> None:
        # The subscription was lost and is back: an end published meanwhile went unheard,
        # so every waiter re-reads its row (and waits on if it has not ended).
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def close(self) -> None:
        """Stop listening and close the connections; called when the process stops."""
        if self._fanout is not None:
            await self._fanout.close()

@dataclass
class Services:
    runtime: Runtime
    #: Routing statistics, breakers and health of every provider, as this process sees them.
    providers: ProviderStates
    #: The outgoing webhook sender.
    webhooks: Webhooks
    #: Wakes `Prefer: wait` requests when a generation ends (Valkey pub/sub across processes).
    completions: Completions
    #: Status and progress changes, to the open event streams (Valkey pub/sub across processes).
    events: GenerationEvents
    #: Web push notifications in flight (sent after a generation ends, off the job's path).
    background: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None], *, timeout_s: float) -> None:
        """Run `work` in the background under `timeout_s`, kept until it ends (so it is not
        garbage collected) and cancelled by `close`; its failure is logged, never raised."""

        async def run() -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    await work
            except Exception:
                log.warning("a background task failed", exc_info=True)

        task = asyncio.create_task(run())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @classmethod
    async def start(cls, settings: Settings, *, plugins: PluginHost | None = None,
                    with_queue: bool = True) -> Services:
        """Start a runtime and the services over it (register the tasks next)."""
        return cls.over(await Runtime.start(settings, plugins=plugins, with_queue=with_queue))

    @classmethod
    def over(cls, runtime: Runtime) -> Services:
        async def generation_payload(session: AsyncSession, tenant_id: str,
                                     generation_id: str) -> tuple[Any, str | None] | None:
            generation = await session.scalar(select(Generation).where(
                Generation.id == generation_id, Generation.tenant_id == tenant_id))
            if generation is None:
                return None
            return (msgspec.to_builtins(await render(runtime, generation)),
                    generation.webhook_url)

        # Calls in flight in Valkey when configured, so every process's ranking sees them.
        in_flight = make_in_flight(runtime.settings.valkey_url, runtime.settings.queue_prefix)
        return cls(runtime=runtime, providers=ProviderStates(in_flight=in_flight),
                   webhooks=Webhooks(runtime, generation_payload),
                   completions=Completions(runtime.settings.valkey_url,
                                           runtime.settings.queue_prefix),
                   events=GenerationEvents(
                       runtime.settings.valkey_url, runtime.settings.queue_prefix,
                       max_streams_per_tenant=runtime.settings.events_max_streams_per_tenant))

    async def close(self) -> None:
        try:
            await self.providers.flush(self.runtime)
        except Exception:
            log.warning("could not write the providers' last call counts", exc_info=True)
        await self.providers.close()
        await self.webhooks.close()
        await self.completions.close()
        await self.events.close()
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        await self.runtime.close()


#: The process's services, injected by name into every route that declares them.
ServicesDep = NamedDependency[Services]
