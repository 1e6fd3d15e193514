"""Sign-in abuse limits: attempts per email address (per tenant) and per client address.

Every sign-up, sign-in, reset and magic-link request takes one attempt from both limits (GCRA
through the process's limiter, Valkey or in process): `MEDIAHUB_AUTH_ATTEMPTS_PER_EMAIL_PER_HOUR`
for the address typed, `MEDIAHUB_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE` for the client's IP
address (the connection's peer: `X-Forwarded-For` is not trusted). Over either: 429
`rate_limit_error` with `Retry-After`. An unknown address is counted like a known one, so the
limit tells nothing about who has an account.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.core.ratelimit import Rate
from gateway.core.runtime import Runtime
from tenants.kernel.errors import RateLimited
from tenants.users.service import normalize_email


@dataclass(frozen=True, slots=True)
class HourlyRate(Rate):
    """`per_minute` read as per hour: GCRA with one attempt back every 3600/n seconds."""

    @property
    def interval_us(self) -> int:
        return max(1, 3_600_000_000 // self.per_minute)


def _refuse(retry_us: int) -> RateLimited:
    return RateLimited("too many sign-in attempts; retry after the time in Retry-After",
                       code="too_many_attempts", retry_after_s=max(1, -(-retry_us // 1_000_000)))


async def throttle(runtime: Runtime, *, tenant_id: str, email: str | None, ip: str) -> None:
    """Take one attempt for `ip` and (when given) `email` under `tenant_id`; raises
    `RateLimited` over either limit. Called first by every credential-checking request."""
    settings = runtime.settings
    limiter = runtime.limiter
    base = f"{limiter.prefix}:auth"
    per_ip = settings.auth_attempts_per_address_per_minute
    if per_ip > 0:
        decision = await limiter.take([f"{base}:ip:{ip}"], [Rate(per_ip, per_ip)])
        if not decision.allowed and decision.binding is not None:
            raise _refuse(decision.binding.retry_us)
    per_email = settings.auth_attempts_per_email_per_hour
    if per_email > 0 and email is not None:
        # Hashed: the limiter's keys are no place for addresses.
        digest = hashlib.sha256(f"{tenant_id}:{normalize_email(email)}".encode()).hexdigest()
        decision = await limiter.take([f"{base}:email:{digest[:32]}"],
                                      [HourlyRate(per_email, per_email)])
        if not decision.allowed and decision.binding is not None:
            raise _refuse(decision.binding.retry_us)
