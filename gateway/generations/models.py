"""The generation row: the source of truth for a job's state (a queued job only nudges it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import Base, JSONType, Money, UTCDateTime, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "queued", "running", "succeeded", "failed", "canceled")
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELED})


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # Newest-first cursor pagination per tenant.
        Index("ix_generations_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_generations_status_updated", "status", "updated_at"),
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
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSONType, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
