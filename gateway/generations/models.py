"""The generation row: the source of truth for a job's state (a queued job only nudges it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, JSONType, Money, StructJSON, UTCDateTime, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "queued", "running", "succeeded", "failed", "canceled")
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELED})


class AttemptRecord(msgspec.Struct, omit_defaults=True):
    """One provider call (or skip) of a generation, in its `attempts_log`.

    `outcome`: `running` (called and not seen to end: with a `task_id`, an asynchronous task
    to poll; without, a call cut off by a dying worker), `succeeded`, `failed` or `skipped`.
    """

    provider: str
    outcome: str
    error_code: str | None = None
    latency_ms: int = 0
    #: When the entry was written (for an asynchronous task: when it was submitted), ISO 8601.
    at: str = ""
    task_id: str | None = None
    poll_after_s: float | None = None
    #: Polls that found the task still running (the back-off's exponent).
    polls: int = 0
    retry_after_s: float | None = None


class StoredOutput(msgspec.Struct, omit_defaults=True):
    """One stored output of a generation: its storage key and what the API shows of it."""

    key: str
    content_type: str
    bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    #: The storage key of a small preview beside the output (images: WebP, long side at most
    #: 512 px; video: a JPEG poster frame); None for other media and older rows.
    thumbnail_key: str | None = None
    #: Audio: 256 peak amplitudes 0..1 (a waveform); None for other media and older rows.
    peaks: list[float] | None = None


class ErrorRecord(msgspec.Struct):
    """Why a generation failed: a stable code and a message for people."""

    code: str
    message: str


#: The purge index's predicate, spelled as `gallery.requeue_purges` asks (PostgreSQL uses a
#: partial index only for a query whose WHERE implies it).
_PURGE_PENDING = "deleted_at IS NOT NULL AND CAST(outputs AS TEXT) <> '[]'"


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        # Idempotency keys are per caller (tenant, customer): one customer replaying
        # another's key must get its own generation, never the other's. NULLs are distinct
        # in a unique constraint, so the tenant's own keys (no customer) need a partial one.
        UniqueConstraint("tenant_id", "customer_id", "idempotency_key"),
        Index("uq_generations_tenant_idempotency_key", "tenant_id", "idempotency_key",
              unique=True, sqlite_where=text("customer_id IS NULL"),
              postgresql_where=text("customer_id IS NULL")),
        # Newest-first cursor pagination per tenant.
        Index("ix_generations_tenant_created", "tenant_id", "created_at", "id"),
        # Customer segments: each customer's first and last generation, spend in windows.
        Index("ix_generations_tenant_customer_created", "tenant_id", "customer_id",
              "created_at"),
        Index("ix_generations_status_updated", "status", "updated_at"),
        # Concurrent-job limits count a tenant's queued and running generations of a type.
        Index("ix_generations_tenant_type_status", "tenant_id", "type", "status"),
        # A leader's followers are found by it when it ends (gateway/generations/cache.py).
        Index("ix_generations_tenant_coalesced", "tenant_id", "coalesced_from"),
        # A team's gallery, newest first (docs/teams.md).
        Index("ix_generations_tenant_team_created", "tenant_id", "team_id", "created_at", "id"),
        # Deleted generations whose media the purge has not removed yet: the purge requeue
        # (gallery.requeue_purges) reads these few, never every deleted row ever.
        Index("ix_generations_purge_pending", "deleted_at",
              sqlite_where=text(_PURGE_PENDING), postgresql_where=text(_PURGE_PENDING)),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    api_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    type: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    # The three prices of DESIGN.md "Money": provider cost, wholesale and retail.
    cost_usd_micros: Mapped[int] = mapped_column(Money)
    wholesale_mc: Mapped[int] = mapped_column(Money)
    retail_mc: Mapped[int] = mapped_column(Money)
    estimated_mc: Mapped[int] = mapped_column(Money)
    charged_mc: Mapped[int | None] = mapped_column(Money, default=None)
    # The tenant wallet's wholesale reservation, and in `mediahub` billing mode the
    # customer wallet's retail one; both end together.
    reservation_id: Mapped[str | None] = mapped_column(String(32), default=None)
    customer_reservation_id: Mapped[str | None] = mapped_column(String(32), default=None)
    outputs: Mapped[list[StoredOutput]] = mapped_column(StructJSON(list[StoredOutput]),
                                                        default=list)
    error: Mapped[ErrorRecord | None] = mapped_column(StructJSON(ErrorRecord), default=None)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSONType, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_hash: Mapped[str] = mapped_column(String(64))
    #: How many times a worker claimed the row (a redelivered job counts again).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The providers routing chose at submit time, best first: the first priced the
    #: reservation, the rest are the failover order (a pinned provider: only itself).
    candidates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: Every provider call, in order: `{provider, outcome, error_code, latency_ms,
    #: retry_after_s?, task_id?, at}` (API: the generation's `attempts`).
    attempts_log: Mapped[list[AttemptRecord]] = mapped_column(StructJSON(list[AttemptRecord]),
                                                              default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The UTC day whose `tenant_daily_spend` counted this generation's reservation (None:
    #: no daily cap when it was submitted); what it does not spend is given back there.
    spend_day: Mapped[date | None] = mapped_column(Date, default=None)
    #: The month (its first day) whose `monthly_spend` row of the API key, and of the
    #: customer, counted this generation (None: no budget when it was submitted); what it
    #: does not spend is given back there (gateway/generations/budgets.py).
    key_budget_month: Mapped[date | None] = mapped_column(Date, default=None)
    customer_budget_month: Mapped[date | None] = mapped_column(Date, default=None)
    #: The request's cache fingerprint (gateway/generations/cache.py); None when the tenant's
    #: cache is off. A succeeded generation with one is what later identical requests reuse.
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    #: A follower of an identical request in flight: the leader's generation id, whose
    #: outputs it takes instead of calling the provider again.
    coalesced_from: Mapped[str | None] = mapped_column(String(32), default=None)
    #: A running generation belongs to the job that claimed it until this time (renewed while
    #: it works; a scheduled poll holds it until its time plus a lease). Past it, the
    #: reconciler lets another job take it over (gateway/generations/pipeline.py).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: Bumped by every claim: a job may only write while the sequence is still the one it
    #: claimed, so a stale or duplicate job (an old poll, a redelivery) changes nothing.
    lease_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: The team this generation was made for (its wallet paid the retail price); its
    #: members see it. None: the caller's own.
    team_id: Mapped[str | None] = mapped_column(String(32), default=None)
    #: The allocation period that counted it (`2026-12`, `total`; None: no allocation), where
    #: what it does not spend is given back (tenants/teams/allocations.py).
    team_period: Mapped[str | None] = mapped_column(String(16), default=None)
    #: Marked by its owner in the gallery (docs/gallery.md).
    favourite: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Deleted by its owner: from then on no surface shows it and a job removes its media;
    #: the row stays (its money was settled, its idempotency key stays taken).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The brand kit applied (`brand_kit_id` in the request) and the version it had then;
    #: no foreign key, so the generation keeps naming it after the kit is deleted.
    brand_kit_id: Mapped[str | None] = mapped_column(String(32), default=None)
    brand_kit_version: Mapped[int | None] = mapped_column(Integer, default=None)


#: What migration 0017_gallery builds for full-text search over prompts and the models do
#: not declare, because each exists on one database only: PostgreSQL's generated
#: `search_vector` column and its GIN index, SQLite's FTS5 table (and the shadow tables
#: FTS5 keeps). Schema comparisons (`alembic check`, tests/migrations) skip them.
SEARCH_TABLES = frozenset({"generations_fts", "generations_fts_data", "generations_fts_idx",
                           "generations_fts_docsize", "generations_fts_config",
                           "generations_fts_content"})
SEARCH_COLUMNS = frozenset({("generations", "search_vector")})
SEARCH_INDEXES = frozenset({"ix_generations_search"})


def compared_in_schema_checks(obj: Any, name: str | None, type_: str, reflected: bool,
                              compare_to: Any) -> bool:
    """Alembic's `include_object`: False for the search objects above (only ever reflected
    from a database, never declared), True for everything else."""
    if not reflected or compare_to is not None:
        return True
    if type_ == "table":
        return name not in SEARCH_TABLES
    if type_ == "column":
        return (getattr(obj.table, "name", None), name) not in SEARCH_COLUMNS
    if type_ == "index":
        return name not in SEARCH_INDEXES
    return True
