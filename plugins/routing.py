"""Routing: per-provider statistics, a circuit breaker per provider, and the ranking of the
providers that can serve a request.

Everything here is pure and deterministic given its inputs: time is always a parameter
(`now`, in seconds on one clock; the gateway uses epoch seconds so that state written by one
process means the same in another), nothing reads settings, the database or the environment.
The gateway keeps one `ProviderStats` per provider per process (gateway/providers.py), mirrors
it to the `providers` table, and calls `rank` when it plans a generation.

Scores (DESIGN "Providers"), each normalised to 0..1 with 1 the best:

- cost efficiency: `(cheapest + 1) / (cost + 1)` over the candidates' estimates (USD micros);
- speed: `fastest / latency`, latency being the decayed EWMA of observed call latency
  (a provider never observed counts as the mean of the observed ones);
- load: `1 - in_flight / capacity` (0 at or over capacity);
- availability: `1 - error_rate` (decayed EWMA of failures), halved while half-open.

Strategies: `cheapest` (cost, then load), `fastest` (latency, then load), `balanced`
(the weighted sum of the four scores) and `pinned` (a tenant's ordered list of names first, in
that order; then, when `include_others`, every other candidate ranked as `balanced`; or none).

Before strategy, candidates fall into tiers, best first: healthy-or-unchecked before a failed
health check; remote before local engines (placeholders that make real files offline, so a
configured real provider is preferred); with headroom before at capacity. The names of a
`pinned` order keep their order whatever their tier. Providers whose breaker is open (or that
told us to back off with a `Retry-After` that has not passed) are left out; a half-open breaker
is kept so that one trial call can go through. Ties break by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

Strategy = Literal["cheapest", "fastest", "balanced", "pinned"]
STRATEGIES: tuple[Strategy, ...] = ("cheapest", "fastest", "balanced", "pinned")

BreakerState = Literal["closed", "open", "half_open"]
CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"

#: Defaults; the gateway may pass its own `RoutingConfig`.
FAILURE_THRESHOLD = 5
COOLDOWN_S = 30.0
#: A half-open trial whose outcome never arrived (its process died) frees up after this.
TRIAL_TIMEOUT_S = 300.0
#: Weight of a new sample in the EWMAs.
EWMA_ALPHA = 0.3
#: After this long without a sample, an observation counts half (it decays towards neutral:
#: the candidates' mean latency, an error rate of 0), so a provider that was slow or failing
#: long ago gets another chance.
DECAY_HALF_LIFE_S = 600.0


class Routable(Protocol):
    """What ranking needs of a provider (`plugins.provider.Provider` has it all)."""

    @property
    def name(self) -> str: ...

    @property
    def local(self) -> bool: ...


P = TypeVar("P", bound=Routable)


@dataclass(frozen=True, slots=True)
class Weights:
    """Relative weights of the balanced score (any non-negative numbers; normalised)."""

    cost: float = 35
    speed: float = 25
    load: float = 20
    availability: float = 20


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    failure_threshold: int = FAILURE_THRESHOLD
    cooldown_s: float = COOLDOWN_S
    trial_timeout_s: float = TRIAL_TIMEOUT_S
    ewma_alpha: float = EWMA_ALPHA
    half_life_s: float = DECAY_HALF_LIFE_S


@dataclass(slots=True)
class CircuitBreaker:
    """closed → open after `failure_threshold` consecutive failures → half-open once
    `cooldown_s` has passed → closed on the trial's success, open again (a new cool-down) on
    its failure. State is derived from `now`, so a test moves time by passing a later `now`.
    """

    failure_threshold: int = FAILURE_THRESHOLD
    cooldown_s: float = COOLDOWN_S
    trial_timeout_s: float = TRIAL_TIMEOUT_S
    consecutive_failures: int = 0
    opened_at: float | None = None
    #: When the half-open trial call started; None when no trial is in flight.
    trial_started_at: float | None = None

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return CLOSED
        if now - self.opened_at >= self.cooldown_s:
            return HALF_OPEN
        return OPEN

    def allows(self, now: float) -> bool:
        """Whether a call may go through now (half-open: only while no trial is in flight)."""
        state = self.state(now)
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        return (self.trial_started_at is None
                or now - self.trial_started_at >= self.trial_timeout_s)

    def try_acquire(self, now: float) -> bool:
        """Claim the right to call now; in half-open this takes the single trial slot."""
        if not self.allows(now):
            return False
        if self.state(now) == HALF_OPEN:
            self.trial_started_at = now
        return True

    def record_success(self, now: float) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.trial_started_at = None

    def record_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        state = self.state(now)
        if state == HALF_OPEN or (state == CLOSED
                                  and self.consecutive_failures >= self.failure_threshold):
            self.opened_at = now
        # Already open (a call that started before it opened): the cool-down stands.
        self.trial_started_at = None

    def release(self, now: float) -> None:
        """A trial ended without telling anything about the provider: free the slot."""
        self.trial_started_at = None

    def reset(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.trial_started_at = None


def _decay(age_s: float, half_life_s: float) -> float:
    if half_life_s <= 0:
        return 1.0
    return float(0.5 ** (max(age_s, 0.0) / half_life_s))


@dataclass(slots=True)
class ProviderStats:
    """What one process knows about one provider."""

    capacity: int = 1
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    #: EWMA of observed call latency (ms) and when the last sample came.
    latency_ewma_ms: float | None = None
    latency_at: float | None = None
    #: EWMA of outcomes (1 failure, 0 success) and when the last one came.
    error_ewma: float = 0.0
    error_at: float | None = None
    in_flight: int = 0
    #: Last health check: True/False, or None before the first.
    healthy: bool | None = None
    health_detail: str = ""
    checked_at: float | None = None
    #: A 429's Retry-After: not routed to before this.
    backoff_until: float | None = None
    calls: int = 0
    failures: int = 0
    #: When anything above last changed (to merge with other processes' views).
    updated_at: float | None = None
    #: Calls observed since the row was last written (a success is written at most every
    #: `ProviderStates.persist_interval_s`), and when that was.
    unsaved_calls: int = 0
    saved_at: float | None = None

    # --- observations ---------------------------------------------------------------------

    def _sample_latency(self, now: float, latency_ms: float, alpha: float) -> None:
        if self.latency_ewma_ms is None:
            self.latency_ewma_ms = float(latency_ms)
        else:
            self.latency_ewma_ms += alpha * (latency_ms - self.latency_ewma_ms)
        self.latency_at = now

    def _sample_error(self, now: float, failed: bool, config: RoutingConfig) -> None:
        current = self.error_rate(now, config.half_life_s)
        self.error_ewma = current + config.ewma_alpha * (float(failed) - current)
        self.error_at = now

    def record_success(self, now: float, latency_ms: float | None,
                       config: RoutingConfig = RoutingConfig()) -> None:
        """A call that answered (for the breaker, a content refusal counts as answered too:
        pass `latency_ms=None` to leave the latency alone)."""
        self.calls += 1
        if latency_ms is not None:
            self._sample_latency(now, latency_ms, config.ewma_alpha)
        self._sample_error(now, False, config)
        self.breaker.record_success(now)
        self.backoff_until = None
        self.updated_at = now

    def record_failure(self, now: float, *, latency_ms: float | None = None,
                       retry_after_s: float | None = None,
                       config: RoutingConfig = RoutingConfig()) -> None:
        """A call that failed for the provider's sake (timeout, 5xx, 429, auth).

        `latency_ms` (given for timeouts) also counts as a latency sample: a provider that
        times out is slow. `retry_after_s` keeps routing away until it has passed.
        """
        self.calls += 1
        self.failures += 1
        if latency_ms is not None:
            self._sample_latency(now, latency_ms, config.ewma_alpha)
        self._sample_error(now, True, config)
        self.breaker.record_failure(now)
        if retry_after_s is not None and retry_after_s > 0:
            until = now + retry_after_s
            self.backoff_until = max(until, self.backoff_until or until)
        self.updated_at = now

    def record_health(self, now: float, ok: bool, detail: str = "") -> None:
        self.healthy = ok
        self.health_detail = detail
        self.checked_at = now
        self.updated_at = now

    # --- derived --------------------------------------------------------------------------

    def latency(self, now: float, half_life_s: float, neutral_ms: float | None) -> float | None:
        """The latency EWMA decayed towards `neutral_ms` by the age of its last sample."""
        if self.latency_ewma_ms is None or self.latency_at is None:
            return neutral_ms
        if neutral_ms is None:
            return self.latency_ewma_ms
        weight = _decay(now - self.latency_at, half_life_s)
        return neutral_ms + (self.latency_ewma_ms - neutral_ms) * weight

    def error_rate(self, now: float, half_life_s: float = DECAY_HALF_LIFE_S) -> float:
        """The failure EWMA decayed towards 0 by the age of its last sample."""
        if self.error_at is None:
            return self.error_ewma
        return self.error_ewma * _decay(now - self.error_at, half_life_s)

    def load(self) -> float:
        """In-flight calls against capacity: 0 idle, 1 at (or over) capacity."""
        return min(1.0, self.in_flight / max(self.capacity, 1))

    def backing_off(self, now: float) -> bool:
        return self.backoff_until is not None and now < self.backoff_until

    def available(self, now: float) -> bool:
        """Routable now: the breaker lets a call through and no Retry-After is pending."""
        return self.breaker.allows(now) and not self.backing_off(now)


def _neutral_latency(stats: Sequence[ProviderStats], now: float,
                     half_life_s: float) -> float | None:
    known = [s.latency(now, half_life_s, None) for s in stats]
    values = [v for v in known if v is not None]
    return sum(values) / len(values) if values else None


def scores(candidates: Sequence[P], estimates: Mapping[str, int],
           stats: Mapping[str, ProviderStats], now: float,
           config: RoutingConfig = RoutingConfig()) -> dict[str, dict[str, float]]:
    """Each candidate's four normalised scores (1 best): cost, speed, load, availability."""
    table = {p.name: stats.get(p.name) or ProviderStats() for p in candidates}
    neutral = _neutral_latency(list(table.values()), now, config.half_life_s)
    costs = {p.name: max(estimates.get(p.name, 0), 0) for p in candidates}
    cheapest = min(costs.values(), default=0)
    latencies = {name: s.latency(now, config.half_life_s, neutral) for name, s in table.items()}
    known = [v for v in latencies.values() if v is not None]
    fastest = max(min(known), 1.0) if known else None
    out: dict[str, dict[str, float]] = {}
    for p in candidates:
        s = table[p.name]
        latency = latencies[p.name]
        speed = 1.0 if latency is None or fastest is None else fastest / max(latency, 1.0)
        availability = 1.0 - min(max(s.error_rate(now, config.half_life_s), 0.0), 1.0)
        if s.breaker.state(now) == HALF_OPEN:
            availability *= 0.5
        out[p.name] = {
            "cost": (cheapest + 1) / (costs[p.name] + 1),
            "speed": speed,
            "load": 1.0 - s.load(),
            "availability": availability,
        }
    return out


def balanced_score(score: Mapping[str, float], weights: Weights = Weights()) -> float:
    total = weights.cost + weights.speed + weights.load + weights.availability
    if total <= 0:
        return 0.0
    return (weights.cost * score["cost"] + weights.speed * score["speed"]
            + weights.load * score["load"]
            + weights.availability * score["availability"]) / total


def rank(candidates: Sequence[P], strategy: str, estimates: Mapping[str, int],
         stats: Mapping[str, ProviderStats], now: float, *, order: Sequence[str] = (),
         include_others: bool = True, weights: Weights | None = None,
         config: RoutingConfig = RoutingConfig()) -> list[P]:
    """The candidates to try, best first, without those that cannot be called now.

    `estimates` are the candidates' `estimate_cost` (USD micros) for this request; `stats`
    what is known of each (a missing entry counts as a fresh provider). `order` and
    `include_others` only matter for the `pinned` strategy (see the module docstring).
    Raises `ValueError` for an unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {strategy!r}")
    fresh = ProviderStats()
    usable = [p for p in candidates if (stats.get(p.name) or fresh).available(now)]
    if not usable:
        return []
    table = scores(usable, estimates, stats, now, config)
    weights = weights or Weights()

    def tier(p: P) -> tuple[bool, bool, bool]:
        s = stats.get(p.name) or fresh
        return (s.healthy is False, p.local, s.load() >= 1.0)

    def key(p: P) -> tuple[object, ...]:
        score = table[p.name]
        if strategy == "cheapest":
            return (tier(p), -score["cost"], -score["load"], p.name)
        if strategy == "fastest":
            return (tier(p), -score["speed"], -score["load"], p.name)
        return (tier(p), -balanced_score(score, weights), p.name)

    if strategy != "pinned":
        return sorted(usable, key=key)
    by_name = {p.name: p for p in usable}
    listed: list[P] = []
    for name in order:
        found = by_name.pop(name, None)
        if found is not None:
            listed.append(found)
    if not include_others:
        return listed
    return listed + sorted(by_name.values(), key=key)
