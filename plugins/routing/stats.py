"""What one process knows about one provider: latency and error EWMAs that decay with age,
in-flight calls, the last health check, a 429's back-off and its circuit breaker. Pure: time
is the `now` argument."""

from __future__ import annotations

from dataclasses import dataclass, field

from plugins.routing.breaker import COOLDOWN_S, FAILURE_THRESHOLD, TRIAL_TIMEOUT_S, CircuitBreaker

#: Weight of a new sample in the EWMAs.
EWMA_ALPHA = 0.3
#: After this long without a sample, an observation counts half (it decays towards neutral:
#: the candidates' mean latency, an error rate of 0), so a provider that was slow or failing
#: long ago gets another chance.
DECAY_HALF_LIFE_S = 600.0


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """A process's routing settings: the breaker's threshold, cool-down and trial timeout,
    the EWMAs' weight of a new sample and their half-life."""

    failure_threshold: int = FAILURE_THRESHOLD
    cooldown_s: float = COOLDOWN_S
    trial_timeout_s: float = TRIAL_TIMEOUT_S
    ewma_alpha: float = EWMA_ALPHA
    half_life_s: float = DECAY_HALF_LIFE_S


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


