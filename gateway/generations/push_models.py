"""The web push subscriptions of a tenant's customers (contract C2, docs/usage.md "Web push")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, UTCDateTime, utcnow


class PushSubscription(Base):
    """One browser's push subscription (the Push API's `PushSubscription`) for a customer:
    told when the customer's generations end."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        # One row per browser endpoint and customer: subscribing again refreshes its keys.
        UniqueConstraint("tenant_id", "customer_id", "endpoint"),
        Index("ix_push_subscriptions_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    #: The person signed in who subscribed (None: subscribed with an API key).
    user_id: Mapped[str | None] = mapped_column(String(32), default=None)
    endpoint: Mapped[str] = mapped_column(Text)
    #: The browser's P-256 public key and authentication secret, base64url (RFC 8291).
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
