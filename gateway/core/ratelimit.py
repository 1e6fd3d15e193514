"""Request rate limits: GCRA per tenant and per API key (DESIGN.md, "One request", step 2).

GCRA (the generic cell rate algorithm) keeps one number per limit, the theoretical arrival
time (TAT) of the next request. A limit of `rpm` requests per minute with a `burst` has the
emission interval T = 60 s / rpm; a request at `now` is admitted when
`max(TAT, now) + T - burst * T <= now`, and then TAT becomes `max(TAT, now) + T`. So a full
bucket admits exactly `burst` requests at once and then one every T. No background refill,
no counters to expire in step: the state is a single timestamp that expires by itself.

With Valkey (`MEDIAHUB_VALKEY_URL`), one Lua script checks the tenant's and the key's limits
together in one round trip (EVALSHA, loading the script on NOSCRIPT), and updates neither
unless both admit the request, so every gateway process shares the same limits. Both keys
carry the tenant id as hash tag, so they sit in one slot on a cluster. The caller passes
`now` (microseconds) to the script, never Valkey's `TIME`, so tests drive a controllable
clock; processes must keep their wall clocks in sync (NTP), as every GCRA over a shared
store assumes.

Embedded mode (no Valkey) uses `MemoryLimiter`, the same arithmetic in process. When Valkey
cannot be reached, requests are limited in process instead (an error is logged, at most every
`ALERT_EVERY_S`) and Valkey is tried again after `RETRY_VALKEY_S`: DESIGN.md's "fail open on
request rates", which in-process limits do per replica rather than not at all.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import valkey.asyncio as valkey_asyncio
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope
from valkey.exceptions import ValkeyError

from gateway.core.settings import Settings
from tenants.schemas import RateLimitPolicy

log = logging.getLogger(__name__)

#: After a failed Valkey call, this long in process before trying Valkey again.
RETRY_VALKEY_S: Final = 5.0
#: At most one "Valkey is down" error log per this many seconds.
ALERT_EVERY_S: Final = 30.0
#: A tenant's limits are read from the database at most this often per process.
POLICY_TTL_S: Final = 5.0
#: Where a request's decision waits in the ASGI scope state for `rate_limit_headers`.
DECISION_STATE_KEY: Final = "mediahub.rate_limit"

Clock = Callable[[], int]


def wall_clock_us() -> int:
    """Microseconds since the epoch: shared by every process, unlike a monotonic clock."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Rate:
    """One GCRA limit: `burst` requests at once, refilling at `per_minute`."""

    per_minute: int
    burst: int

    @property
    def interval_us(self) -> int:
        return max(1, 60_000_000 // self.per_minute)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One limit's answer: requests left now, µs until it is full again, µs to wait."""

    limit: int
    remaining: int
    reset_us: int
    retry_us: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for a request: admitted or not, and the limit that binds it most."""

    allowed: bool
    binding: Verdict | None  # None: no limit applies

    def headers(self) -> dict[str, str]:
        """The `RateLimit-*` headers (and `Retry-After` when refused)."""
        if self.binding is None:
            return {}
        v = self.binding
        headers = {"RateLimit-Limit": str(v.limit),
                   "RateLimit-Remaining": str(v.remaining),
                   "RateLimit-Reset": str(_ceil_s(v.reset_us))}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, _ceil_s(v.retry_us)))
        return headers


def _ceil_s(us: int) -> int:
    return -(-us // 1_000_000)


def _decide(allowed: bool, verdicts: Sequence[Verdict]) -> Decision:
    if not verdicts:
        return Decision(allowed=True, binding=None)
    if allowed:
        binding = min(verdicts, key=lambda v: (v.remaining, -v.reset_us))
    else:
        binding = max((v for v in verdicts if v.retry_us > 0), key=lambda v: v.retry_us)
    return Decision(allowed=allowed, binding=binding)


def gcra(tat: int | None, now: int, rate: Rate) -> tuple[Verdict, int]:
    """One GCRA step: the verdict and the TAT to store if the request is admitted.

    `_SCRIPT` is the same arithmetic in Lua; keep the two in step.
    """
    interval = rate.interval_us
    start = now if tat is None or tat < now else tat
    new_tat = start + interval
    allow_at = new_tat - rate.burst * interval
    if now < allow_at:
        return Verdict(rate.burst, 0, start - now, allow_at - now), start
    return Verdict(rate.burst, (now - allow_at) // interval, new_tat - now, 0), new_tat


class MemoryLimiter:
    """GCRA in this process: embedded mode, and the fallback while Valkey is unreachable."""

    MAX_KEYS: Final = 100_000

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}

    def check(self, keys: Sequence[str], rates: Sequence[Rate], now: int) -> Decision:
        # No await in here: on one event loop the check and the update are atomic.
        steps = [gcra(self._tats.get(key), now, rate) for key, rate in zip(keys, rates,
                                                                            strict=True)]
        allowed = all(v.retry_us == 0 for v, _ in steps)
        if allowed:
            if len(self._tats) > self.MAX_KEYS:
                # A TAT in the past is the same as no entry: drop those.
                self._tats = {k: t for k, t in self._tats.items() if t > now}
            for key, (_, new_tat) in zip(keys, steps, strict=True):
                self._tats[key] = new_tat
        return _decide(allowed, [v for v, _ in steps])


# KEYS: one GCRA state per limit. ARGV[1]: now (µs); then per limit its interval (µs) and
# burst. Returns {admitted (0/1), then per limit: remaining, reset µs, retry µs}. Numbers are
# written with %d: Lua's default formatting would round 16-digit microsecond timestamps.
_SCRIPT: Final = """
local now = tonumber(ARGV[1])
local allowed = 1
local out = {}
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[i * 2])
  local burst = tonumber(ARGV[i * 2 + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    allowed = 0
    out[#out + 1] = 0
    out[#out + 1] = tat - now
    out[#out + 1] = allow_at - now
  else
    out[#out + 1] = math.floor((now - allow_at) / interval)
    out[#out + 1] = new_tat - now
    out[#out + 1] = 0
  end
  tats[i] = new_tat
end
if allowed == 1 then
  for i = 1, #KEYS do
    local ttl_ms = math.ceil((tats[i] - now) / 1000)
    redis.call('SET', KEYS[i], string.format('%d', tats[i]),
               'PX', string.format('%d', ttl_ms))
  end
end
table.insert(out, 1, allowed)
return out
"""


class ValkeyLimiter:
    """GCRA in Valkey: one script call checks (and takes from) every limit of a request."""

    def __init__(self, url: str) -> None:
        # Short timeouts: a slow Valkey must not hold requests; the fallback takes over.
        self._client = valkey_asyncio.from_url(  # type: ignore[no-untyped-call]
            url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._script = self._client.register_script(_SCRIPT)

    async def check(self, keys: Sequence[str], rates: Sequence[Rate], now: int) -> Decision:
        args: list[int] = [now]
        for rate in rates:
            args += [rate.interval_us, rate.burst]
        # register_script's object sends EVALSHA and loads the script on NOSCRIPT.
        reply = await self._script(keys=list(keys), args=args)
        values = [int(x) for x in reply]
        verdicts = [Verdict(rate.burst, *values[1 + 3 * i: 4 + 3 * i])
                    for i, rate in enumerate(rates)]
        return _decide(values[0] == 1, verdicts)

    async def close(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's effective limits: its `rate_limits` over the settings' defaults."""

    tenant: Rate | None
    key: Rate | None
    concurrent_jobs: dict[str, int]
    daily_spend_cap_mc: int

    def concurrency_for(self, media_type: str) -> int:
        """The cap on queued + running generations of a type; 0 = none."""
        return self.concurrent_jobs.get(media_type, self.concurrent_jobs.get("default", 0))


def _rate(per_minute: int, burst: int) -> Rate | None:
    return Rate(per_minute, max(1, burst)) if per_minute > 0 else None


def effective_limits(settings: Settings, policy: RateLimitPolicy) -> TenantLimits:
    """Merge a tenant's policy over the platform defaults (a field left out: the default)."""
    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    return TenantLimits(
        tenant=_rate(pick(policy.requests_per_minute, settings.rate_limit_requests_per_minute),
                     pick(policy.burst, settings.rate_limit_burst)),
        key=_rate(pick(policy.key_requests_per_minute,
                       settings.rate_limit_key_requests_per_minute),
                  pick(policy.key_burst, settings.rate_limit_key_burst)),
        concurrent_jobs={**settings.rate_limit_concurrent_jobs,
                         **{str(k): v for k, v in policy.concurrent_jobs.items()}},
        daily_spend_cap_mc=pick(policy.daily_spend_cap_mc,
                                settings.rate_limit_daily_spend_cap_mc),
    )


def with_key_rate(limits: TenantLimits, rate: tuple[int, int] | None) -> TenantLimits:
    """`limits` with a key's own rate (requests per minute, burst) instead of the tenant's
    per-key default; the tenant's own limit still applies. `rate` None: `limits` as is."""
    if rate is None:
        return limits
    return dataclasses.replace(limits, key=_rate(*rate))


PolicyLoader = Callable[[str], Awaitable[RateLimitPolicy]]


class RateLimiter:
    """The process's request limiter: Valkey when configured, in process otherwise or while
    Valkey is down. `clock` (µs) is replaceable, for tests; the job quotas read it too."""

    def __init__(self, settings: Settings, *, clock: Clock = wall_clock_us) -> None:
        self.settings = settings
        self.clock = clock
        self.prefix = settings.queue_prefix
        self.memory = MemoryLimiter()
        self._valkey = ValkeyLimiter(settings.valkey_url) if settings.valkey_url else None
        self._valkey_retry_at = 0.0
        self._alerted_at = -math.inf
        self._policies: dict[str, tuple[float, TenantLimits]] = {}

    def keys(self, tenant_id: str, key_id: str | None) -> tuple[str, str]:
        """The state keys of a tenant's and a key's limits (one hash slot: the tenant's)."""
        base = f"{self.prefix}:rl:{{{tenant_id}}}"
        return f"{base}:tenant", f"{base}:key:{key_id}"

    async def check(self, tenant_id: str, key_id: str | None,
                    limits: TenantLimits) -> Decision:
        """Take one request from the tenant's and the key's limits (both or neither)."""
        tenant_key, key_key = self.keys(tenant_id, key_id)
        keys: list[str] = []
        rates: list[Rate] = []
        for key, rate in ((tenant_key, limits.tenant), (key_key, limits.key)):
            if rate is not None:
                keys.append(key)
                rates.append(rate)
        return await self.take(keys, rates)

    async def take(self, keys: Sequence[str], rates: Sequence[Rate]) -> Decision:
        """Take one request from each of the limits `keys` (with their `rates`), all or
        none: the tenant and key limits above, and other callers' own limits (sign-in
        attempts per email and per address, gateway/people/throttle.py)."""
        if not rates:
            return Decision(allowed=True, binding=None)
        now = self.clock()
        if self._valkey is not None and time.monotonic() >= self._valkey_retry_at:
            try:
                return await self._valkey.check(keys, rates, now)
            except (ValkeyError, OSError) as exc:
                self._valkey_down(exc)
        return self.memory.check(keys, rates, now)

    def _valkey_down(self, exc: Exception) -> None:
        now = time.monotonic()
        self._valkey_retry_at = now + RETRY_VALKEY_S
        if now - self._alerted_at >= ALERT_EVERY_S:
            self._alerted_at = now
            log.error("rate limits: Valkey is unreachable (%s: %s); limiting in process "
                      "until it answers again", type(exc).__name__, exc)

    async def limits(self, tenant_id: str, load: PolicyLoader) -> TenantLimits:
        """A tenant's effective limits, cached for `POLICY_TTL_S`."""
        cached = self._policies.get(tenant_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        limits = effective_limits(self.settings, await load(tenant_id))
        self._policies[tenant_id] = (time.monotonic() + POLICY_TTL_S, limits)
        return limits

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's cached limits (after an operator changed them)."""
        self._policies.pop(tenant_id, None)

    async def close(self) -> None:
        if self._valkey is not None:
            await self._valkey.close()


async def rate_limit_headers(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: the request's `RateLimit-*` (and, refused,
    `Retry-After`) headers on its response, whatever answered it (route or error)."""
    if message["type"] != "http.response.start":
        return
    decision = scope.get("state", {}).get(DECISION_STATE_KEY)
    if not isinstance(decision, Decision):
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in decision.headers().items():
        headers[name] = value
