"""The circuit breaker routing keeps per provider: closed, open after consecutive failures,
half-open (one trial call) once the cool-down has passed. Pure: time is the `now` argument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"

#: Defaults; the gateway may pass its own `RoutingConfig`.
FAILURE_THRESHOLD = 5
COOLDOWN_S = 30.0
#: A half-open trial whose outcome never arrived (its process died) frees up after this.
TRIAL_TIMEOUT_S = 300.0


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

