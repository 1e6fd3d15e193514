"""The brand kit tables: the kit (its current content and version), one snapshot per
version, and its uploaded files (fonts and logos; the bytes live in the runtime's storage)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.brand_kits.schemas import KitContent, KitSnapshot
from tenants.kernel.db import Base, StructJSON, UTCDateTime, utcnow

TENANT, TEAM, CUSTOMER = "tenant", "team", "customer"
OWNER_TYPES = (TENANT, TEAM, CUSTOMER)
FONT, LOGO = "font", "logo"


class BrandKit(Base):
    """A brand kit. `owner_id` is the tenant's id, a team's id or a customer's (internal)
    id, as `owner_type` says; `version` starts at 1 and every change adds one."""

    __tablename__ = "brand_kits"
    __table_args__ = (
        Index("ix_brand_kits_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_brand_kits_tenant_owner", "tenant_id", "owner_type", "owner_id"),
        CheckConstraint("owner_type IN ('tenant', 'team', 'customer')", name="owner_type"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: The kit's fields but its files (name, colours, voice, words).
    content: Mapped[KitContent] = mapped_column(StructJSON(KitContent))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BrandKitVersion(Base):
    """What a kit was at one version (its content and the files it had), kept for ever so a
    generation made with version n can be explained later."""

    __tablename__ = "brand_kit_versions"

    kit_id: Mapped[str] = mapped_column(ForeignKey("brand_kits.id", ondelete="CASCADE"),
                                        primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    snapshot: Mapped[KitSnapshot] = mapped_column(StructJSON(KitSnapshot))
    #: Who made this version (`Principal.actor`).
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BrandKitAsset(Base):
    """One uploaded font or logo of a kit; its bytes are at `storage_key`."""

    __tablename__ = "brand_assets"
    __table_args__ = (
        Index("ix_brand_assets_kit_created", "kit_id", "created_at", "id"),
        CheckConstraint("kind IN ('font', 'logo')", name="kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kit_id: Mapped[str] = mapped_column(ForeignKey("brand_kits.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    #: Logos: pixels; fonts: None.
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Fonts: the family name read from the file (None when it could not be read).
    family: Mapped[str | None] = mapped_column(String(200), default=None)
    storage_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
