"""Ledger tables, modelled on TigerBeetle's accounts and two-phase transfers.

Transfers are append-only. A pending transfer is resolved by exactly one later transfer that
names it in `pending_id`; the UNIQUE constraint on that column is what makes "each pending
transfer ends exactly once" hold under any retry or race, on both databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, JSONType, Money, UTCDateTime, utcnow

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
    # `tenant_wallet`, `customer:<id>`, and the system side: `funding` (where grants and
    # purchases come from), `platform_revenue`, `tenant_revenue`.
    code: Mapped[str] = mapped_column(String(64))
    no_overdraft: Mapped[bool] = mapped_column(Boolean)
    # A system account's balance is the sum of its transfers; its counters stay zero, so no
    # row is updated by every reservation (the hot-row trap of a shared revenue account).
    system: Mapped[bool] = mapped_column(Boolean, default=False)
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
        # The usage rollups read a tenant's generation transfers of a period (billing/usage).
        Index("ix_transfers_tenant_generation_created", "tenant_id", "created_at",
              postgresql_where=text("generation_id IS NOT NULL"),
              sqlite_where=text("generation_id IS NOT NULL")),
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


class CreditPackage(Base):
    """A tenant's offer: `credits_mc` for `price_cents` in `currency`, bought through Stripe."""

    __tablename__ = "credit_packages"
    __table_args__ = (CheckConstraint("credits_mc > 0 AND price_cents > 0", name="positive"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    name: Mapped[str] = mapped_column(String(200))
    credits_mc: Mapped[int] = mapped_column(Money)
    price_cents: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Purchase(Base):
    """A Stripe Checkout Session for a package, and what became of it."""

    __tablename__ = "purchases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    package_id: Mapped[str] = mapped_column(ForeignKey("credit_packages.id"))
    credits_mc: Mapped[int] = mapped_column(Money)
    price_cents: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    # `open` → `paid` (credits granted) → maybe `refunded` / `partially_refunded`.
    status: Mapped[str] = mapped_column(String(32), default="open")
    session_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    payment_intent: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    checkout_url: Mapped[str | None] = mapped_column(Text, default=None)
    refunded_cents: Mapped[int] = mapped_column(Money, default=0)
    clawed_back_mc: Mapped[int] = mapped_column(Money, default=0)
    # Refunded credits the wallet no longer held: recorded, not invented.
    owed_mc: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StripeEvent(Base):
    """Stripe event ids already handled; the primary key makes a redelivery a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEvent(Base):
    """An outbox of events for tenants (`credits.low`), delivered by the webhook sender."""

    __tablename__ = "ledger_events"
    __table_args__ = (Index("ix_ledger_events_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
