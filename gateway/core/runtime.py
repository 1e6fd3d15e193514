"""What a running process holds: settings, database, storage, plugins, HTTP client, queue.

Built once per process by `Runtime.start` (the API's lifespan, the worker, the CLI) and closed
at exit. Services receive it instead of reaching for globals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

import httpx

from gateway.core.egress import Egress, EgressPolicy
from gateway.core.jobs import Handlers, InProcessQueue, JobQueue, SaqQueue
from gateway.core.ratelimit import RateLimiter
from gateway.core.result_store import InProcessStore, ResultStore, make_result_store
from gateway.core.settings import Settings, SettingsError
from gateway.core.storage import Storage, storage_from_url
from gateway.providers.states import ProviderStates
from gateway.webhooks.service import Webhooks
from plugins.host import PluginHost, build_plugin_host
from plugins.provider import Credentials
from tenants.kernel.db import Database
from tenants.models import Tenant

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


#: A tenant row and the calling customer's tier (None: no customer, or no tier).
TenantView = tuple[Tenant, str | None]


class TenantViews:
    """Tenant rows (and customer tiers) as the submit path last read them, for `ttl_s`.

    They change rarely and are read on every submit. Read-only: the cached rows are detached
    and shared. `forget` drops a tenant's at once (an operator's change in this process).
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str | None], tuple[float, TenantView]] = {}

    def get(self, key: tuple[str, str | None]) -> TenantView | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: tuple[str, str | None], value: TenantView) -> None:
        if len(self._entries) > 10_000:  # bounded: drop what has expired
            now = time.monotonic()
            self._entries = {k: e for k, e in self._entries.items() if e[0] >= now}
        self._entries[key] = (time.monotonic() + self.ttl_s, value)

    def forget(self, tenant_id: str) -> None:
        for key in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[key]


def provider_env_name(provider_name: str) -> str:
    """`openai-images` → `OPENAI_IMAGES`: how a provider's settings are named."""
    return provider_name.upper().replace("-", "_")


def apply_price_overrides(plugins: PluginHost, overrides: dict[str, dict[str, int]]) -> None:
    """Apply `MEDIAHUB_<PROVIDER>_PRICES` to the registered providers; called once at start.
    Raises `SettingsError` naming a provider that is not installed or a price it lacks."""
    by_env = {provider_env_name(p.name): p for p in plugins.all()}
    problems: list[str] = []
    for env_name, table in overrides.items():
        provider = by_env.get(env_name)
        if provider is None:
            problems.append(f"MEDIAHUB_{env_name}_PRICES: no installed provider is named "
                            f"{env_name.lower().replace('_', '-')!r}")
            continue
        try:
            provider.set_prices(table)
        except ValueError as exc:
            problems.append(f"MEDIAHUB_{env_name}_PRICES: {exc}")
    if problems:
        raise SettingsError(problems)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    plugins: PluginHost
    http: httpx.AsyncClient
    queue: JobQueue | None = None
    completions: Completions = field(default_factory=Completions)
    #: Routing statistics, breakers and health of every provider (gateway/providers.py).
    routing: ProviderStates = field(default_factory=ProviderStates)
    #: Tenants and customer tiers as the submit path reads them (a few seconds old at most).
    tenant_views: TenantViews = field(default_factory=TenantViews)
    #: The result cache and in-flight markers (gateway/generations/cache.py).
    results: ResultStore = field(default_factory=InProcessStore)
    #: Request rate limits and the job quotas' clock (gateway/ratelimit.py).
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings)
    #: The one client for URLs others supplied (gateway/egress.py) and the webhook sender.
    egress: Egress = field(init=False)
    webhooks: Webhooks = field(init=False)

    @classmethod
    async def start(cls, settings: Settings, *, plugins: PluginHost | None = None,
                    with_queue: bool = True) -> Runtime:
        """Open every connection the process needs; the queue is in-process when embedded."""
        plugins = plugins or build_plugin_host(blocked=settings.disabled_plugins)
        # Before anything is opened: a bad price override stops the start (SettingsError).
        apply_price_overrides(plugins, settings.provider_prices)
        runtime = cls(
            settings=settings,
            db=Database(settings.database_url, pool_pre_ping=settings.database_pre_ping),
            storage=storage_from_url(settings.storage_url, secret_key=settings.secret_key,
                                     s3_endpoint_url=settings.s3_endpoint_url),
            plugins=plugins,
            http=httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)),
        )
        if with_queue:
            runtime.queue = runtime.make_queue()
        runtime.results = make_result_store(settings.valkey_url)
        runtime.egress = Egress(EgressPolicy.from_settings(settings))
        runtime.webhooks = Webhooks(runtime)
        return runtime

    def make_queue(self) -> JobQueue:
        if self.settings.valkey_url:
            return SaqQueue(self.settings.valkey_url, prefix=self.settings.queue_prefix,
                            heartbeat_s=self.settings.job_lease_s)
        return InProcessQueue(self.job_handlers(),
                              concurrency_for=self.settings.concurrency_for)

    def job_handlers(self) -> Handlers:
        """The queue's tasks bound to this runtime (what workers and the in-process queue
        call)."""
        # Imported here: the pipeline needs the runtime, the runtime hands it the jobs.
        from gateway.generations.worker import poll_generation, run_generation

        def run(generation_id: str) -> Awaitable[None]:
            return run_generation(self, generation_id)

        def poll(generation_id: str, seq: int) -> Awaitable[None]:
            return poll_generation(self, generation_id, seq)

        return Handlers(run=run, poll=poll)

    def credentials(self, provider_name: str) -> Credentials:
        """Platform credentials for a provider: `MEDIAHUB_<PROVIDER>_API_KEY`, `_API_SECRET`
        and `_BASE_URL`."""
        env_name = provider_env_name(provider_name)
        return Credentials(api_key=os.environ.get(f"MEDIAHUB_{env_name}_API_KEY") or None,
                           api_secret=os.environ.get(f"MEDIAHUB_{env_name}_API_SECRET") or None,
                           base_url=os.environ.get(f"MEDIAHUB_{env_name}_BASE_URL") or None)

    async def close(self) -> None:
        try:
            await self.routing.flush(self)
        except Exception:
            log.warning("could not write the providers' last call counts", exc_info=True)
        if self.queue is not None:
            await self.queue.close()
        await self.webhooks.close()
        await self.egress.close()
        await self.http.aclose()
        await self.limiter.close()
        await self.results.close()
        await self.storage.close()
        await self.db.dispose()
