"""Ledger tables, modelled on TigerBeetle's accounts and two-phase transfers.

Transfers are append-only. A pending transfer is resolved by exactly one later transfer that
names it in `pending_id`; the UNIQUE constraint on that column is what makes "each pending
transfer ends exactly once" hold under any retry or race, on both databases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import Base, Money, UTCDateTime, utcnow

# Transfer phases (TigerBeetle's flags): a one-step transfer, a reservation, and the two ways a
# reservation ends.
SINGLE = "single"
PENDING = "pending"
POST_PENDING = "post_pending"
VOID_PENDING = "void_pending"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 "
            "AND credits_pending >= 0",
            name="non_negative",
        ),
        # A wallet can never be overdrawn, counting what it has reserved.
        CheckConstraint(
            "NOT no_overdraft OR debits_posted + debits_pending <= credits_posted",
            name="no_overdraft",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # `tenant_wallet`, `customer:<id>`, `funding` (where grants come from), `revenue`.
    code: Mapped[str] = mapped_column(String(64))
    no_overdraft: Mapped[bool] = mapped_column(Boolean)
    debits_posted: Mapped[int] = mapped_column(Money, default=0)
    credits_posted: Mapped[int] = mapped_column(Money, default=0)
    debits_pending: Mapped[int] = mapped_column(Money, default=0)
    credits_pending: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount_mc >= 0", name="amount_non_negative"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint(
            "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
            name="pending_id_iff_resolution",
        ),
        Index("ix_transfers_debit_created", "debit_account_id", "created_at", "id"),
        Index("ix_transfers_credit_created", "credit_account_id", "created_at", "id"),
        Index("ix_transfers_pending_timeout", "phase", "timeout_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Namespaced by the caller (`grant:<tenant>:<key>`, `gen:<id>:reserve`); repeats return
    # the first transfer, a repeat with other fields is a conflict.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    debit_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    credit_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    amount_mc: Mapped[int] = mapped_column(Money)
    phase: Mapped[str] = mapped_column(String(16))
    pending_id: Mapped[str | None] = mapped_column(
        ForeignKey("transfers.id"), unique=True, default=None
    )
    # What the movement is for: grant, purchase, generation, refund, expiry.
    kind: Mapped[str] = mapped_column(String(32))
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    generation_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
