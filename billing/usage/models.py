"""The rollup tables: `usage_rollups` (the sums), `usage_zones` (the time zone each tenant's
rollups were built in, and the row a recompute locks) and `usage_watermarks` (how far the
periodic refresh has read)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, JSONType, Money, UTCDateTime


class UsageRollup(Base):
    """One tenant's usage on one local day for one (customer, team, key, type, provider).

    Counts, attempts and cost are of the generations created that day; `charged_mc` and
    `wholesale_mc` of the transfers posted that day (docs/analytics.md). NULL customer, team
    or key: none. Rows are only ever replaced whole (delete + insert) by `rollup`.
    """

    __tablename__ = "usage_rollups"
    # Every read is one tenant's days in a period.
    __table_args__ = (Index("ix_usage_rollups_tenant_day", "tenant_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    customer_id: Mapped[str | None] = mapped_column(String(32), default=None)
    team_id: Mapped[str | None] = mapped_column(String(32), default=None)
    api_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    type: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    canceled: Mapped[int] = mapped_column(Integer, default=0)
    cached: Mapped[int] = mapped_column(Integer, default=0)
    charged_mc: Mapped[int] = mapped_column(Money, default=0)
    wholesale_mc: Mapped[int] = mapped_column(Money, default=0)
    cost_usd_micros: Mapped[int] = mapped_column(Money, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failovers: Mapped[int] = mapped_column(Integer, default=0)
    #: `billing.usage.latency` bucket counts of this row's attempts, trailing zeros dropped.
    latency_buckets: Mapped[list[int]] = mapped_column(JSONType, default=list)


class UsageZone(Base):
    """The time zone a tenant's rollups are in; a tenant whose `time_zone` differs has its
    rollups rebuilt. Its row is locked by every recompute of the tenant's rollups, so two
    processes never interleave their deletes and inserts."""

    __tablename__ = "usage_zones"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))


class UsageWatermark(Base):
    """How far a periodic reader has read: `rollups` is the refresh's."""

    __tablename__ = "usage_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
