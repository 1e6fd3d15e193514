"""Users, their sessions and one-time tokens (tables `users`, `user_sessions`,
`one_time_tokens`). Every row carries its tenant's id; secrets are stored as SHA-256 (tokens,
256-bit random) or argon2id (passwords) only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, UTCDateTime, utcnow


class User(Base):
    """A person of one tenant: staff (`owner` … `viewer`) or a portal `customer`.

    `email` is lower-cased and unique per tenant (the same address under two tenants is two
    users). It is NULL only for a customer signed in through a portal session its tenant's
    backend minted (`POST /v1/portal_sessions`): that person never gave us an address."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        CheckConstraint(
            "role IN ('owner', 'admin', 'developer', 'billing', 'viewer', 'customer')",
            name="role"),
        CheckConstraint("(role = 'customer') = (customer_id IS NOT NULL)", name="customer_link"),
        CheckConstraint("locale IN ('en', 'ar')", name="locale"),
        Index("ix_users_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    #: argon2id (PHC string); NULL: invited and not yet set, or magic-link / portal only.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The language the user chose for the portal and its mails (`en`, `ar`); NULL: never
    #: chosen (the browser's language, then the tenant's default, decide).
    locale: Mapped[str | None] = mapped_column(String(8), default=None)


class UserSession(Base):
    """A signed-in browser: the cookie holds a 256-bit random token, this row its SHA-256.

    Valid while not revoked, `expires_at` (the absolute lifetime) is ahead and the last use
    (`last_seen_at`, written at most once a minute) is within the idle lifetime."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_created", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: For the owner's list of sessions: the browser's User-Agent (cut) and client address.
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    #: How it was opened: `password`, `magic`, `portal`, `reset`.
    method: Mapped[str] = mapped_column(String(16), default="password")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class OneTimeToken(Base):
    """A mailed (or minted) link's secret, stored as SHA-256, used at most once: redeeming
    is one `UPDATE … SET used_at = now WHERE used_at IS NULL AND expires_at > now`."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify', 'reset', 'magic', 'portal', 'invite')",
                        name="purpose"),
        Index("ix_one_time_tokens_user", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                default=None)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    #: Where a portal link sends its browser once signed in (checked when minted).
    redirect_to: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
