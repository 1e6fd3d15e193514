"""What a running process holds: infrastructure only.

Settings, the database, media storage, the plugin host, the HTTP clients (the shared one for
providers and the SSRF-guarded egress), the job queue and its task registry, the rate limiter,
the result store and the tenant cache. Built once per process by `Runtime.start` (from the
API's lifespan, the worker or the CLI) and closed at exit. Domain services (provider routing
state, webhooks, generation completions) are not here: the process entry points build them
over a runtime (`gateway.generations.services.Services`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from gateway.core.egress import Egress, EgressPolicy
from gateway.core.jobs import InProcessQueue, JobQueue, SaqQueue, TaskRegistry
from gateway.core.mail import Mailer
from gateway.core.metrics import unwatch_pool, watch_pool
from gateway.core.ratelimit import RateLimiter
from gateway.core.result_store import ResultStore, make_result_store
from gateway.core.settings import Settings, SettingsError
from gateway.core.storage import Storage, storage_from_url
from gateway.core.tenant_views import TenantViews
from plugins.host import PluginHost, build_plugin_host
from tenants.kernel.db import Database

log = logging.getLogger(__name__)


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
    #: The client for provider APIs (their base URLs are the operator's configuration).
    http: httpx.AsyncClient
    #: The one client for URLs others supplied (inputs, outputs, webhook targets).
    egress: Egress
    #: Request rate limits and the job quotas' clock.
    limiter: RateLimiter
    #: The result cache and in-flight markers (Valkey, or in process when embedded).
    results: ResultStore
    #: Tenants and customer tiers as the hot paths read them (a few seconds old at most).
    tenant_views: TenantViews
    #: The jobs this process can run, filled in by its entry point before any job runs.
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    #: None in a process that queues nothing (the CLI's admin commands).
    queue: JobQueue | None = None
    #: Outgoing mail (sign-in links, invitations), built from `settings`.
    mailer: Mailer = field(init=False)

    def __post_init__(self) -> None:
        self.mailer = Mailer(self.settings)

    @classmethod
    async def start(cls, settings: Settings, *, plugins: PluginHost | None = None,
                    with_queue: bool = True) -> Runtime:
        """Open every connection the process needs; the queue is in-process when embedded
        (it runs the tasks registered in `tasks`), SAQ on Valkey otherwise."""
        plugins = plugins or build_plugin_host(blocked=settings.disabled_plugins)
        # Before anything is opened: a bad price override stops the start (SettingsError).
        apply_price_overrides(plugins, settings.provider_prices)
        db = Database(settings.database_url, pool_pre_ping=settings.database_pre_ping,
                      pool_size=settings.database_pool_size,
                      max_overflow=settings.database_max_overflow,
                      pool_timeout=settings.database_pool_timeout_s)
        pooled = 0 if settings.is_sqlite else settings.database_pool_size
        watch_pool(db.engine, pooled)
        runtime = cls(
            settings=settings,
            db=db,
            storage=storage_from_url(settings.storage_url, secret_key=settings.secret_key,
                                     s3_endpoint_url=settings.s3_endpoint_url),
            plugins=plugins,
            http=httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)),
            egress=Egress(EgressPolicy.from_settings(settings)),
            limiter=RateLimiter(settings),
            results=make_result_store(settings.valkey_url),
            tenant_views=TenantViews(db),
        )
        if with_queue:
            runtime.queue = runtime.make_queue()
        return runtime

    def make_queue(self) -> JobQueue:
        if self.settings.valkey_url:
            return SaqQueue(self.settings.valkey_url, prefix=self.settings.queue_prefix,
                            heartbeat_s=self.settings.job_lease_s)
        return InProcessQueue(self.tasks, concurrency_for=self.settings.concurrency_for)

    async def close(self) -> None:
        await self.mailer.drain()
        if self.queue is not None:
            await self.queue.close()
        await self.egress.close()
        await self.http.aclose()
        await self.limiter.close()
        await self.results.close()
        await self.storage.close()
        await self.db.dispose()
        unwatch_pool(0 if self.settings.is_sqlite else self.settings.database_pool_size)
