"""The domain services one process runs over its `Runtime`, built by its entry point.

`gateway.app` (the API), `gateway.worker` and `gateway.cli` each call `Services.start`, then
`gateway.generations.jobs.register` to bind the generation tasks and periodic sweeps to the
process's queue. Everything that needs more than infrastructure receives a `Services`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.generations.models import Generation
from gateway.generations.views import render
from gateway.providers.in_flight import make_in_flight
from gateway.providers.states import ProviderStates
from gateway.webhooks.service import Webhooks
from plugins.host import PluginHost

log = logging.getLogger(__name__)


class Completions:
    """Wakes `Prefer: wait` requests when a generation finishes in this process.

    Another process's finish is seen by re-reading the row; the event only shortens the wait.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, generation_id: str) -> asyncio.Event:
        return self._events.setdefault(generation_id, asyncio.Event())

    def done(self, generation_id: str) -> None:
        event = self._events.pop(generation_id, None)
        if event is not None:
            event.set()

    def forget(self, generation_id: str) -> None:
        self._events.pop(generation_id, None)


@dataclass
class Services:
    runtime: Runtime
    #: Routing statistics, breakers and health of every provider, as this process sees them.
    providers: ProviderStates
    #: The outgoing webhook sender.
    webhooks: Webhooks
    completions: Completions = field(default_factory=Completions)

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
                   webhooks=Webhooks(runtime, generation_payload))

    async def close(self) -> None:
        try:
            await self.providers.flush(self.runtime)
        except Exception:
            log.warning("could not write the providers' last call counts", exc_info=True)
        await self.providers.close()
        await self.webhooks.close()
        await self.runtime.close()


#: The process's services, injected by name into every route that declares them.
ServicesDep = NamedDependency[Services]
