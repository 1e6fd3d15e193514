"""Tenants, their domains, API keys and customers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.branding import Branding, BrandingJSON
from tenants.kernel.db import Base, JSONType, StructJSON, UTCDateTime, utcnow
from tenants.schemas import (
    RateLimitPolicy,
    TenantAnalytics,
    TenantCache,
    TenantCaps,
    TenantMedia,
    TenantPricing,
    TenantRouting,
    TenantSuggestions,
)


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("billing_mode IN ('self', 'mediahub')", name="billing_mode"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    branding: Mapped[Branding] = mapped_column(BrandingJSON(), default=lambda: Branding())
    pricing: Mapped[TenantPricing] = mapped_column(StructJSON(TenantPricing),
                                                   default=lambda: TenantPricing())
    rate_limits: Mapped[RateLimitPolicy] = mapped_column(StructJSON(RateLimitPolicy),
                                                         default=lambda: RateLimitPolicy())
    # `self`: the tenant bills its customers itself, only its wallet pays (wholesale);
    # `mediahub`: customer wallets pay retail and the tenant wallet pays wholesale.
    billing_mode: Mapped[str] = mapped_column(String(16), default="self")
    # `credits.low` is raised when a wallet's available balance falls below this.
    low_balance_threshold_mc: Mapped[int] = mapped_column(BigInteger, default=0)
    # How generations are routed among providers; stored empty means the default.
    routing: Mapped[TenantRouting] = mapped_column(StructJSON(TenantRouting),
                                                   default=lambda: TenantRouting())
    # The result cache policy; stored empty means the default.
    cache: Mapped[TenantCache] = mapped_column(StructJSON(TenantCache),
                                               default=lambda: TenantCache())
    # The tenant's own provider credentials (bring your own key), sealed with the platform
    # secret and bound to this tenant and provider (`tenants.provider_keys`): provider name →
    # {"api_key", "api_secret"?, "base_url"?, "last4", "updated_at"}. Never shown.
    provider_credentials: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The operator's ceilings on what the tenant sets for itself (`TenantCaps`).
    caps: Mapped[TenantCaps] = mapped_column(StructJSON(TenantCaps),
                                             default=lambda: TenantCaps())
    # IANA name; analytics count days in it (docs/analytics.md).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: The thresholds of its customer segments; stored empty means the defaults.
    analytics: Mapped[TenantAnalytics] = mapped_column(StructJSON(TenantAnalytics),
                                                       default=lambda: TenantAnalytics())
    #: Set by the operator's suspend, cleared by resume: while set, every request with one
    #: of the tenant's keys or sessions is refused (gateway/core/suspension.py).
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    suspension_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # Model-written prompt suggestions (`TenantSuggestions`); stored empty means off.
    suggestions: Mapped[TenantSuggestions] = mapped_column(
        StructJSON(TenantSuggestions), default=lambda: TenantSuggestions())
    # How its media is linked (`TenantMedia`); stored empty means signed, expiring links.
    media: Mapped[TenantMedia] = mapped_column(StructJSON(TenantMedia),
                                               default=lambda: TenantMedia())


class Domain(Base):
    """A hostname that serves one tenant's portal (custom domain or platform subdomain)."""

    __tablename__ = "domains"

    hostname: Mapped[str] = mapped_column(String(253), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the tenant's server must answer at /.well-known/mediahub-verification (public by
    # design: it proves control of the host, it grants nothing).
    verification_token: Mapped[str | None] = mapped_column(String(64), default=None)
    # Only a verified domain resolves its tenant; the operator's domains are verified at once.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


def _search_key(context: Any) -> str:
    return str(context.get_current_parameters()["external_id"]).lower()


class Customer(Base):
    """A tenant's end user; `external_id` is the tenant's own id for them."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),
                      # Prefix search: PostgreSQL's LIKE 'q%' needs the pattern operator
                      # class whatever the database's collation; SQLite uses a range.
                      Index("ix_customers_tenant_search", "tenant_id", "search_key",
                            postgresql_ops={"search_key": "text_pattern_ops"}))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What this customer's generations may reserve per calendar month (UTC), in
    #: millicredits; None: no budget (gateway/generations/budgets.py).
    monthly_budget_mc: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: `external_id` in lower case, for the tenant's case-insensitive prefix search
    #: (`ix_customers_tenant_search`); set from `external_id` on insert.
    search_key: Mapped[str | None] = mapped_column(String(200), default=_search_key)


class ApiKey(Base):
    """A tenant key `mh_<prefix>_<secret>`: looked up by prefix, secret kept as SHA-256 only."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: What this key's generations may reserve per calendar month (UTC), in millicredits;
    #: None: no budget (gateway/generations/budgets.py).
    monthly_budget_mc: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: The key's own request rate (GCRA), instead of the tenant's per-key default; None:
    #: the default. Always within the tenant's own limit.
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, default=None)
    rate_limit_burst: Mapped[int | None] = mapped_column(Integer, default=None)


class TenantDailySpend(Base):
    """What a tenant's wallet reserved on one UTC day, for `daily_spend_cap_mc`.

    Taken by a conditional upsert in the submit's transaction (so the cap is exact under
    concurrency) and given back, in the transaction that ends the generation, by what was
    not spent: all of it on failure, cancel or expiry, the reserved minus the charged on
    success. Rows exist only for tenants with a cap.
    """

    __tablename__ = "tenant_daily_spend"
    __table_args__ = (CheckConstraint("spent_mc >= 0", name="spent_not_negative"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    spent_mc: Mapped[int] = mapped_column(BigInteger, default=0)


class MonthlySpend(Base):
    """What one API key's or customer's generations reserved in one calendar month (UTC),
    for their `monthly_budget_mc`.

    Taken by a conditional upsert in the submit's transaction (exact under concurrency, as
    `TenantDailySpend`) and given back, in the transaction that ends the generation, by what
    was not spent. `month` is the first day of the month. Rows exist only for subjects that
    had a budget when a generation was submitted.
    """

    __tablename__ = "monthly_spend"
    __table_args__ = (
        CheckConstraint("spent_mc >= 0", name="spent_not_negative"),
        CheckConstraint("subject_kind IN ('key', 'customer')", name="subject_kind"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    #: `key` (an API key's id) or `customer` (our customer id).
    subject_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    spent_mc: Mapped[int] = mapped_column(BigInteger, default=0)
