"""The routing state of each provider shared by every process (health, breaker, latency):
the platform credentials' in `providers`, a tenant's own key's in `tenant_provider_states`;
and who owns each voice cloned at a provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, UTCDateTime, utcnow


class RoutingStats:
    """The routing statistics every credential's state keeps (a mixin of the two tables
    below): latency, error rate, breaker, back-off and call counters."""

    #: Decayed EWMA of call latency.
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    #: EWMA of failures, 0..1 (not money: a float is fine).
    error_rate: Mapped[float] = mapped_column(Float, default=0.0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    #: `closed`, `open` or `half_open`, as of `updated_at`.
    breaker: Mapped[str] = mapped_column(String(16), default="closed")
    breaker_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: A 429's Retry-After: routing stays away until then.
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    latency_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderState(RoutingStats, Base):
    """What the gateway knows of one provider called with the platform's credentials (seed
    table `media_providers`): the last health check and the routing statistics of
    gateway/providers/states.py. Not tenant data.

    Written by the scheduled `health_check_all` and after every provider call; each process
    keeps its own view in memory and merges newer rows from here (last writer wins), so API
    processes see what workers observed.
    """

    __tablename__ = "providers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The last health check: `healthy`, `unhealthy`, `unconfigured` or `unknown`.
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    detail: Mapped[str] = mapped_column(Text, default="")
    #: The last health check's own latency.
    check_latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class TenantProviderState(RoutingStats, Base):
    """The routing statistics of one provider called with one tenant's own key
    (`PUT /v1/provider_keys/{provider}`): its breaker, back-off and error rate are that
    key's, so a tenant's bad or exhausted key never keeps another tenant from the provider.
    No health columns: the scheduled checks use the platform's credentials only.

    Written after the calls made with the key and merged by every process like `providers`;
    deleted with the tenant.
    """

    __tablename__ = "tenant_provider_states"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)


class ProviderEvent(Base):
    """A change of a provider's breaker as the platform's shared state saw it: the `providers`
    row's breaker went from closed to open (`breaker_opened`) or back (`breaker_closed`).
    Written in the transaction that changed the row, which holds the row's lock, so several
    processes recording the same transition write it once (gateway/providers/states.py).
    Not tenant data: the platform credentials' breakers only.
    """

    __tablename__ = "provider_events"
    __table_args__ = (
        CheckConstraint("kind IN ('breaker_opened', 'breaker_closed')", name="kind"),
        Index("ix_provider_events_at", "at", "provider"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What caused it: the last error code, `trial succeeded`, `reset by the operator`.
    detail: Mapped[str] = mapped_column(Text, default="")


class VoiceClone(Base):
    """A voice a `voice_clone` generation made at a provider, and who owns it.

    Clones are made in the platform's account (or the tenant's own), where every tenant's
    sit side by side; this row is what says a clone is this tenant's (and customer's), so
    `GET /v1/voices` shows each caller premade voices and its own clones only. Written in
    the transaction that ends the generation; deleted with the voice at the provider.
    """

    __tablename__ = "voice_clones"
    __table_args__ = (
        UniqueConstraint("provider", "voice_id"),
        Index("ix_voice_clones_tenant_provider", "tenant_id", "provider"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    #: The customer it was made for (None: the tenant's own, seen by tenant-wide keys only).
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    provider: Mapped[str] = mapped_column(String(64))
    #: The voice's id at the provider.
    voice_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    generation_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
