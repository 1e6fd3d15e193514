"""Provider state: the routing statistics and health of every provider, kept in memory by each
process (plugins/routing/) and mirrored to the `providers` table.

State belongs to the credential that earned it: each provider has one `ProviderStats` per
credential scope (`gateway.providers.credentials.credential_scope`): `platform` for the
platform's key, shared by every tenant without a key of its own, and one per tenant that set
its own key (mirrored to `tenant_provider_states`). A tenant's bad or exhausted key opens its
own breaker only; the operator's view shows the platform scope.

- The pipeline calls `acquire` before a provider call (it refuses while the breaker is open or a
  429's Retry-After runs), `record` with the outcome, and `finish` when the call is over.
- `health_check_all` (a periodic task declared in `gateway.generations.tasks`, and on
  demand by the operator API) calls each configured provider's `health` with its credentials.
- Every outcome and health check is written to the `providers` row (best effort: a failed
  write is logged, never fails a generation). `refresh` merges rows newer than this process's
  own view, so an API process that only plans generations sees what the workers observed; the
  merge is last-writer-wins per provider and scope. Calls in flight are counted per provider
  in `in_flight` (Valkey when configured, so the API process's ranking sees the workers'
  calls; see gateway/providers/in_flight.py) and read again at every `refresh`.

Time comes from `clock` (epoch seconds; tests inject their own), call latency from `timer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import select

from gateway.core.runtime import Runtime
from gateway.providers.credentials import PLATFORM, credential_scope, platform_credentials
from gateway.providers.in_flight import InFlight, LocalInFlight
from gateway.providers.models import ProviderEvent, ProviderState, TenantProviderState
from plugins.errors import ProviderError
from plugins.provider import Provider
from plugins.routing.breaker import HALF_OPEN, OPEN, CircuitBreaker
from plugins.routing.policy import Weights
from plugins.routing.rank import rank
from plugins.routing.stats import ProviderStats, RoutingConfig
from tenants.kernel.db import new_id
from tenants.models import Tenant
from tenants.schemas import shows_provider_names

log = logging.getLogger(__name__)

#: How often the periodic task runs the health checks, and how long one check may take.
HEALTH_INTERVAL_S = 60.0
HEALTH_TIMEOUT_S = 10.0
#: How stale this process's view may be before planning re-reads the table.
REFRESH_INTERVAL_S = 5.0
#: How often at most a provider's row is written for successful calls alone.
PERSIST_INTERVAL_S = 1.0

Status = Literal["available", "unconfigured", "unhealthy", "circuit_open", "rate_limited"]


def configured(runtime: Runtime, provider: Provider, *,
               own: Collection[str] = ()) -> bool:
    """Whether the platform holds what the provider needs: an API key unless it needs none,
    and an endpoint for a self-hosted one. `own`: the providers the tenant asking has set
    its own key for (they count as configured for it)."""
    if provider.name in own:
        return True
    credentials = platform_credentials(provider.name)
    return ((not provider.needs_api_key or credentials.api_key is not None)
            and (not provider.needs_base_url or credentials.base_url is not None))


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class ProviderStates:
    """One process's view of every provider; built by the process entry point and held by
    its `Services` as `services.providers`."""

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter,
                 config: RoutingConfig | None = None,
                 refresh_interval_s: float = REFRESH_INTERVAL_S,
                 persist_interval_s: float = PERSIST_INTERVAL_S,
                 in_flight: InFlight | None = None) -> None:
        self.clock = clock
        self.timer = timer
        self.config = config or RoutingConfig()
        self.refresh_interval_s = refresh_interval_s
        self.persist_interval_s = persist_interval_s
        self.in_flight = in_flight or LocalInFlight()
        #: (provider name, credential scope) → stats.
        self._stats: dict[tuple[str, str], ProviderStats] = {}
        #: Calls in flight per provider across processes, as read at the last `refresh`.
        self._loads: dict[str, int] = {}
        self._refreshed_at: float | None = None

    def now(self) -> float:
        return self.clock()

    def stats(self, provider: Provider | str, scope: str = PLATFORM) -> ProviderStats:
        """The stats of a provider called with the credentials of `scope` (`PLATFORM`, or a
        tenant id for that tenant's own key), created fresh on first use."""
        name = provider if isinstance(provider, str) else provider.name
        found = self._stats.get((name, scope))
        if found is None:
            capacity = 1 if isinstance(provider, str) else max(provider.capacity, 1)
            found = ProviderStats(capacity=capacity, breaker=CircuitBreaker(
                failure_threshold=self.config.failure_threshold,
                cooldown_s=self.config.cooldown_s,
                trial_timeout_s=self.config.trial_timeout_s))
            self._stats[(name, scope)] = found
        elif not isinstance(provider, str):
            found.capacity = max(provider.capacity, 1)
        # The load is the provider's, whoever's key the calls use.
        found.in_flight = self._loads.get(name, 0)
        return found

    # --- routing --------------------------------------------------------------------------

    def rank(self, candidates: Sequence[Provider], strategy: str, estimates: dict[str, int], *,
             order: Sequence[str] = (), include_others: bool = True,
             weights: Weights | None = None,
             scopes: Mapping[str, str] | None = None) -> list[Provider]:
        """`plugins.routing.rank.rank` over this process's stats, now. `scopes`: provider
        name → the credential scope the request's tenant would call it with (default
        `PLATFORM`), so a tenant's own open breaker keeps only that tenant away."""
        scopes = scopes or {}
        table = {p.name: self.stats(p, scopes.get(p.name, PLATFORM)) for p in candidates}
        return rank(candidates, strategy, estimates, table, self.now(), order=order,
                            include_others=include_others, weights=weights,
                            config=self.config)

    async def acquire(self, provider: Provider,
                      scope: str = PLATFORM) -> tuple[str | None, bool]:
        """Before a call with the credentials of `scope`: `(None, is_trial)` when it may go
        ahead (now counted in flight), or `(reason, False)`: `circuit_open` or
        `rate_limited`."""
        stats = self.stats(provider, scope)
        now = self.now()
        if stats.backing_off(now):
            return "rate_limited", False
        trial = stats.breaker.state(now) == HALF_OPEN
        if not stats.breaker.try_acquire(now):
            return "circuit_open", False
        try:
            await self.in_flight.started(provider.name)
        except Exception:
            # The load score is advice: a Valkey hiccup must not fail the generation.
            log.warning("could not count a call in flight", exc_info=True,
                        extra={"provider": provider.name})
        return None, trial

    async def finish(self, provider: Provider, *, trial: bool, scope: str = PLATFORM) -> None:
        """After a call, whatever happened (also when it was cancelled)."""
        if trial:
            self.stats(provider, scope).breaker.release(self.now())
        try:
            await self.in_flight.ended(provider.name)
        except Exception:
            log.warning("could not count a call's end", exc_info=True,
                        extra={"provider": provider.name})

    async def record(self, runtime: Runtime, provider: Provider, *, latency_ms: float,
                     error: ProviderError | None, scope: str = PLATFORM) -> None:
        """The outcome of one call made with the credentials of `scope`, in memory and in
        the table.

        Errors that are the provider's fault (`ProviderError.provider_fault`) count against
        it; a content or input refusal shows that it answered, so it counts as a success for
        the breaker, without a latency sample. With a tenant's own key (`scope` a tenant id)
        everything, `auth` included, counts against that key only, never the platform's.
        """
        stats = self.stats(provider, scope)
        now = self.now()
        breaker_before = (stats.breaker.state(now), stats.breaker.consecutive_failures)
        if error is None:
            stats.record_success(now, latency_ms, self.config)
        elif error.provider_fault:
            stats.record_failure(
                now, latency_ms=latency_ms if error.code == "timeout" else None,
                retry_after_s=error.retry_after_s, config=self.config)
        else:
            stats.record_success(now, None, self.config)
        failed = error is not None and error.provider_fault
        stats.unsaved_calls += 1
        if (not failed and error is None
                and breaker_before == (stats.breaker.state(now),
                                       stats.breaker.consecutive_failures)
                and stats.saved_at is not None
                and now - stats.saved_at < self.persist_interval_s):
            # A success that changes no breaker: the row (shared by every worker, so a hot
            # one) is written at most every `persist_interval_s`; failures at once, so other
            # processes see a failing provider without delay.
            return
        await self._save_calls(runtime, provider.name, scope, stats, failures=int(failed),
                               last_error=error.code if error is not None else None)

    async def flush(self, runtime: Runtime) -> None:
        """Write the calls counted but not yet written (called when the process stops)."""
        for (name, scope), stats in self._stats.items():
            if stats.unsaved_calls:
                await self._save_calls(runtime, name, scope, stats)

    async def close(self) -> None:
        """Let go of the in-flight store (called when the process stops)."""
        await self.in_flight.close()

    async def _save_calls(self, runtime: Runtime, name: str, scope: str, stats: ProviderStats,
                          *, failures: int = 0, last_error: str | None = None) -> None:
        calls, stats.unsaved_calls = stats.unsaved_calls, 0
        stats.saved_at = self.now()
        try:
            await self._persist(runtime, name, stats, scope=scope, calls=calls,
                                failures=failures, last_error=last_error)
        except BaseException:
            stats.unsaved_calls += calls  # counted again with the next write
            raise

    async def reset(self, runtime: Runtime, provider: Provider) -> None:
        """Close the breaker and forget the backoff (operator action)."""
        stats = self.stats(provider)
        stats.breaker.reset()
        stats.backoff_until = None
        stats.updated_at = self.now()
        await self._persist(runtime, provider.name, stats, why="reset by the operator")

    def status(self, provider: Provider, *, is_configured: bool,
               scope: str = PLATFORM) -> Status:
        if not is_configured:
            return "unconfigured"
        stats = self.stats(provider, scope)
        now = self.now()
        if stats.breaker.state(now) == OPEN:
            return "circuit_open"
        if stats.backing_off(now):
            return "rate_limited"
        # The health checks use the platform's key; a tenant's own key is judged by its calls.
        if scope == PLATFORM and stats.healthy is False:
            return "unhealthy"
        return "available"

    # --- the table ------------------------------------------------------------------------

    async def refresh(self, runtime: Runtime, *, force: bool = False) -> None:
        """Read the calls in flight now, and merge rows newer than this process's view (at
        most every `refresh_interval_s`). Called before planning and before a worker's
        calls."""
        await self._read_loads(runtime)
        now = self.now()
        if (not force and self._refreshed_at is not None
                and now - self._refreshed_at < self.refresh_interval_s):
            return
        self._refreshed_at = now
        async with runtime.db.session() as session:
            rows = list(await session.scalars(select(ProviderState)))
            own = list(await session.scalars(select(TenantProviderState)))
        for row in rows:
            self._merge(row, row.name, PLATFORM)
        for tenant_row in own:
            self._merge(tenant_row, tenant_row.provider, tenant_row.tenant_id)

    async def _read_loads(self, runtime: Runtime) -> None:
        names = [p.name for p in runtime.plugins.all()]
        try:
            self._loads = await self.in_flight.counts(names)
        except Exception:
            # Keep the last counts: ranking without fresh loads beats refusing the request.
            log.warning("could not read the calls in flight", exc_info=True)

    def _merge(self, row: ProviderState | TenantProviderState, name: str, scope: str) -> None:
        stats = self.stats(name, scope)
        written = row.updated_at.timestamp()
        # Equal times: the row is the last write (ours or a concurrent one); take it.
        if stats.updated_at is not None and written < stats.updated_at:
            return
        stats.latency_ewma_ms = float(row.latency_ms) if row.latency_ms is not None else None
        stats.latency_at = _epoch(row.latency_at)
        stats.error_ewma = row.error_rate
        stats.error_at = _epoch(row.error_at)
        stats.breaker.consecutive_failures = row.consecutive_failures
        stats.breaker.opened_at = _epoch(row.breaker_opened_at)
        stats.backoff_until = _epoch(row.backoff_until)
        if isinstance(row, ProviderState):
            stats.healthy = {"healthy": True, "unhealthy": False}.get(row.health)
            stats.health_detail = row.detail
            stats.checked_at = _epoch(row.last_checked_at)
        stats.updated_at = written

    async def _persist(self, runtime: Runtime, name: str, stats: ProviderStats, *,
                       scope: str = PLATFORM, calls: int = 0, failures: int = 0,
                       last_error: str | None = None,
                       health: dict[str, Any] | None = None,
                       why: str | None = None) -> None:
        """Upsert the row of the provider's `scope` from `stats` (counters are added, not
        overwritten): `providers` for the platform's key, `tenant_provider_states` for a
        tenant's own.

        When the write moves the platform row's breaker between closed and open (its
        `breaker_opened_at` between null and set), a `provider_events` row says so, in the
        same transaction and under the row's lock (PostgreSQL `FOR UPDATE`; SQLite's
        `BEGIN IMMEDIATE` serialises writers): several processes that each saw the
        provider fail write one `breaker_opened`, the first; the others find it open. A
        failed half-open trial re-opens an open breaker: no new event. `why` is the
        event's detail when the caller knows better (an operator's reset)."""
        now = self.now()
        stats.updated_at = stats.updated_at or now
        values: dict[str, Any] = {
            "latency_ms": (round(stats.latency_ewma_ms)
                           if stats.latency_ewma_ms is not None else None),
            "latency_at": _dt(stats.latency_at),
            "error_rate": stats.error_ewma,
            "error_at": _dt(stats.error_at),
            "consecutive_failures": stats.breaker.consecutive_failures,
            "breaker": stats.breaker.state(now),
            "breaker_opened_at": _dt(stats.breaker.opened_at),
            "backoff_until": _dt(stats.backoff_until),
            "updated_at": _dt(stats.updated_at),
        }
        if last_error is not None:
            values["last_error"] = last_error
        if health is not None:
            values.update(health)
        if runtime.db.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert: Any = sqlite_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert = pg_insert
        if scope == PLATFORM:
            table = ProviderState.__table__
            keys: dict[str, str] = {"name": name}
        else:
            table = TenantProviderState.__table__
            keys = {"tenant_id": scope, "provider": name}
        statement = insert(table).values(**keys, calls=calls, failures=failures, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[column] for column in keys],
            set_={**values, "calls": table.c.calls + calls,
                  "failures": table.c.failures + failures})
        try:
            async with runtime.db.transaction() as session:
                was_open = (await self._lock_breaker(session, insert, name)
                            if scope == PLATFORM else None)
                await session.execute(statement)
                if was_open is not None and was_open != (stats.breaker.opened_at is not None):
                    session.add(self._breaker_event(name, stats, last_error, why))
        except Exception:
            log.exception("could not save provider state",
                          extra={"provider": name, "scope": scope})

    @staticmethod
    async def _lock_breaker(session: Any, insert: Any, name: str) -> bool:
        """Whether the platform row's breaker is open, read under the row's lock (created
        first when missing, so two first writers also queue on one row)."""
        await session.execute(insert(ProviderState.__table__).values(name=name)
                              .on_conflict_do_nothing(index_elements=["name"]))
        opened_at = await session.scalar(select(ProviderState.breaker_opened_at)
                                         .where(ProviderState.name == name).with_for_update())
        return opened_at is not None

    def _breaker_event(self, name: str, stats: ProviderStats, last_error: str | None,
                       why: str | None) -> ProviderEvent:
        now = _dt(self.now())
        assert now is not None
        if stats.breaker.opened_at is not None:
            detail = why or (f"{stats.breaker.consecutive_failures} consecutive failures"
                             + (f", the last {last_error}" if last_error else ""))
            return ProviderEvent(id=new_id("pev"), provider=name, kind="breaker_opened",
                                 at=now, detail=detail)
        return ProviderEvent(id=new_id("pev"), provider=name, kind="breaker_closed", at=now,
                             detail=why or "a call succeeded")

    async def rows(self, runtime: Runtime) -> dict[str, ProviderState]:
        async with runtime.db.session() as session:
            return {row.name: row for row in await session.scalars(select(ProviderState))}


async def health_check_all(runtime: Runtime, states: ProviderStates, *, min_age_s: float = 0.0,
                           only: Iterable[str] | None = None) -> dict[str, str]:
    """Check every installed provider's health now and record it; returns name → health.

    Unconfigured providers are recorded as such without a call. With `min_age_s`, providers
    checked (by any process) more recently than that are left alone, so several processes
    running the schedule do not multiply the calls.
    """
    await states.refresh(runtime, force=True)
    now = states.now()
    wanted = set(only) if only is not None else None
    providers = [p for p in runtime.plugins.all() if wanted is None or p.name in wanted]

    async def check(provider: Provider) -> tuple[str, str] | None:
        stats = states.stats(provider)
        if (min_age_s > 0 and stats.checked_at is not None
                and now - stats.checked_at < min_age_s):
            return None
        if not configured(runtime, provider):
            stats.healthy = None
            stats.health_detail = "no API key is configured"
            stats.checked_at = now
            stats.updated_at = now
            await states._persist(runtime, provider.name, stats, health={
                "health": "unconfigured", "detail": stats.health_detail,
                "check_latency_ms": None, "last_checked_at": _dt(now)})
            return provider.name, "unconfigured"
        started = states.timer()
        try:
            result = await asyncio.wait_for(
                provider.health(platform_credentials(provider.name), runtime.http),
                timeout=HEALTH_TIMEOUT_S)
            ok, detail = result.ok, result.detail
        except Exception as exc:
            ok, detail = False, _describe(exc)
        latency_ms = round((states.timer() - started) * 1000)
        checked = states.now()
        stats.record_health(checked, ok, detail)
        await states._persist(runtime, provider.name, stats, health={
            "health": "healthy" if ok else "unhealthy", "detail": detail[:1000],
            "check_latency_ms": latency_ms, "last_checked_at": _dt(checked)})
        return provider.name, "healthy" if ok else "unhealthy"

    results = await asyncio.gather(*(check(p) for p in providers))
    return dict(item for item in results if item is not None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"the health check did not answer within {HEALTH_TIMEOUT_S:g} s"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- API views ------------------------------------------------------------------------------


class ProviderStateOut(msgspec.Struct):
    """The operator's view of one provider (`GET /admin/v1/providers`)."""

    name: str
    types: list[str]
    operations: list[str]
    local: bool
    configured: bool
    status: str
    health: str
    detail: str
    latency_ms: int | None
    check_latency_ms: int | None
    error_rate: float
    consecutive_failures: int
    breaker: str
    breaker_opened_at: datetime | None
    backoff_until: datetime | None
    in_flight: int
    capacity: int
    calls: int
    failures: int
    last_error: str | None
    last_checked_at: datetime | None
    updated_at: datetime | None
    object: str = "provider_state"


class ProviderStateList(msgspec.Struct):
    data: list[ProviderStateOut]
    object: str = "list"


def public_metrics(states: ProviderStates, provider: Provider,
                   scope: str = PLATFORM) -> tuple[int | None, float]:
    """Decayed latency (ms) and error rate of a provider called with the credentials of
    `scope`, as `GET /v1/providers` shows them."""
    stats = states.stats(provider, scope)
    now = states.now()
    latency = stats.latency(now, states.config.half_life_s, None)
    return (round(latency) if latency is not None else None,
            round(stats.error_rate(now, states.config.half_life_s), 4))


async def operator_view(runtime: Runtime, states: ProviderStates) -> ProviderStateList:
    """Every installed provider's full state: this process's view plus the table's counters."""
    await states.refresh(runtime, force=True)
    rows = await states.rows(runtime)
    now = states.now()
    data = []
    for provider in runtime.plugins.all():
        stats = states.stats(provider)
        row = rows.get(provider.name)
        is_configured = configured(runtime, provider)
        latency_ms, error_rate = public_metrics(states, provider)
        health = row.health if row is not None else "unknown"
        data.append(ProviderStateOut(
            name=provider.name, types=sorted(provider.media_types),
            operations=sorted(provider.operations), local=provider.local,
            configured=is_configured,
            status=states.status(provider, is_configured=is_configured),
            health=health if is_configured else "unconfigured",
            detail=row.detail if row is not None else "",
            latency_ms=latency_ms,
            check_latency_ms=row.check_latency_ms if row is not None else None,
            error_rate=error_rate,
            consecutive_failures=stats.breaker.consecutive_failures,
            breaker=stats.breaker.state(now),
            breaker_opened_at=_dt(stats.breaker.opened_at),
            backoff_until=_dt(stats.backoff_until) if stats.backing_off(now) else None,
            in_flight=stats.in_flight, capacity=stats.capacity,
            calls=row.calls if row is not None else 0,
            failures=row.failures if row is not None else 0,
            last_error=row.last_error if row is not None else None,
            last_checked_at=row.last_checked_at if row is not None else None,
            updated_at=row.updated_at if row is not None else None,
        ))
    return ProviderStateList(data=data)


class ParamInfo(msgspec.Struct):
    """One parameter a provider reads, as the portal's studio draws its control: a select
    over `choices`, a slider over `minimum`..`maximum`, preset to `default`."""

    name: str
    kind: str
    #: The operations that read it (all the provider serves when it declared none).
    operations: list[str]
    choices: list[str | float] | None
    minimum: float | None
    maximum: float | None
    default: Any
    description: str | None


class LimitsInfo(msgspec.Struct, omit_defaults=True):
    """A model's narrower bounds on one parameter (only the bounds it sets appear)."""

    choices: list[str | float] | None = None
    minimum: float | None = None
    maximum: float | None = None


class ModelInfo(msgspec.Struct):
    """One model a request may select (the params that select it are the provider's
    `model` or `engine` choice), the operations it serves and its own parameter limits."""

    name: str
    operations: list[str]
    limits: dict[str, LimitsInfo]


class ProviderInfo(msgspec.Struct):
    name: str
    types: list[str]
    operations: list[str]
    status: str
    local: bool
    description: str
    pricing: dict[str, Any]
    #: What the provider reads from `params` (input files included, kinds `media` and
    #: `media_list`), with the values it accepts.
    params: list[ParamInfo]
    #: The models a request may select, with their own limits (empty: one model).
    models: list[ModelInfo]
    #: Decayed average latency of its calls (null until observed) and its recent error rate.
    latency_ms: int | None = None
    error_rate: float = 0.0


def params_info(provider: Provider) -> list[ParamInfo]:
    """The provider's parameter declarations as `GET /v1/providers` shows them (sorted by
    name); empty for a provider that declares none."""
    served = sorted(provider.operations)
    return [ParamInfo(name=name, kind=spec.kind,
                      operations=sorted(spec.operations) if spec.operations else served,
                      choices=list(spec.choices) if spec.choices is not None else None,
                      minimum=spec.minimum, maximum=spec.maximum, default=spec.default,
                      description=spec.description)
            for name, spec in sorted((provider.params or {}).items())]


def models_info(provider: Provider) -> list[ModelInfo]:
    """The provider's models with their operations and limits, as `GET /v1/providers`
    shows them."""
    return [ModelInfo(name=name, operations=sorted(spec.operations or provider.operations),
                      limits={param: LimitsInfo(
                          choices=list(limit.choices) if limit.choices is not None else None,
                          minimum=limit.minimum, maximum=limit.maximum)
                          for param, limit in spec.limits.items()})
            for name, spec in provider.models.items()]


class ProviderList(msgspec.Struct):
    data: list[ProviderInfo]
    object: str = "list"


def provider_label(runtime: Runtime, tenant: Tenant, provider: str, *, customer: bool) -> str:
    """The name of `provider` as the caller is shown it; called wherever a provider name
    reaches a client (generations, estimates, the provider list).

    A tenant (no customer) always sees the real name. A white-label tenant's customers
    (`show_provider_names` false, the default) see a neutral name instead: `engine_` and a
    keyed digest of the tenant and provider, stable for the tenant and meaningless elsewhere
    (keyed, so the ten or so vendor names cannot be tried against it).
    """
    if not customer or not provider or shows_provider_names(tenant.branding):
        return provider
    digest = hmac.new(runtime.settings.secret_key, f"provider:{tenant.id}:{provider}".encode(),
                      hashlib.sha256).hexdigest()
    return f"engine_{digest[:12]}"


def resolve_label(runtime: Runtime, tenant: Tenant, name: str, *, customer: bool) -> str:
    """The real name of the provider a caller named `name` (as `provider_label` showed it);
    called before planning a request that pins a provider, so a white-label customer can pin
    one by the neutral name it was shown. Any other name is returned as it is."""
    if customer and name.startswith("engine_"):
        for provider in runtime.plugins.all():
            if provider_label(runtime, tenant, provider.name, customer=True) == name:
                return provider.name
    return name


async def catalogue(runtime: Runtime, states: ProviderStates, tenant: Tenant,
                    media_type: str | None, *, customer: bool = False) -> ProviderList:
    """`GET /v1/providers`: each provider's capabilities, prices and state for `tenant`
    (its own keys count as configured for it, and their state is the tenant's own).

    For a `customer` caller: no USD price tables (the provider's cost is the reseller's
    business; customers are charged retail credits) and, unless the tenant shows provider
    names, neutral names and no vendor descriptions (`provider_label`).
    """
    await states.refresh(runtime)
    named = not customer or shows_provider_names(tenant.branding)
    data = []
    for provider in runtime.plugins.all():
        if media_type is not None and media_type not in provider.media_types:
            continue
        scope = credential_scope(tenant, provider.name)
        latency_ms, error_rate = public_metrics(states, provider, scope)
        data.append(ProviderInfo(
            name=provider_label(runtime, tenant, provider.name, customer=customer),
            types=sorted(provider.media_types),
            operations=sorted(provider.operations),
            status=states.status(provider, is_configured=configured(
                runtime, provider, own=tenant.provider_credentials), scope=scope),
            local=provider.local, description=provider.description if named else "",
            pricing={} if customer else provider.pricing(), latency_ms=latency_ms,
            error_rate=error_rate, params=params_info(provider), models=models_info(provider),
        ))
    return ProviderList(data=data)
