"""The team tables: teams, their members (role and allocation), invitations and the
allocation spend counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, UTCDateTime, utcnow

OWNER, ADMIN, MEMBER, VIEWER = "owner", "admin", "member", "viewer"
ROLES = (OWNER, ADMIN, MEMBER, VIEWER)
#: Roles that manage the team: members, invitations, allocations, funding.
MANAGERS = frozenset({OWNER, ADMIN})
#: Roles that may spend the team's credits (a viewer only sees the team's gallery).
SPENDERS = frozenset({OWNER, ADMIN, MEMBER})
MONTH, TOTAL = "month", "total"


class Team(Base):
    """A customer's workspace; its wallet is the ledger account `team:<id>`."""

    __tablename__ = "teams"
    __table_args__ = (Index("ix_teams_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    #: The customer who created it (its first owner).
    created_by: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TeamMember(Base):
    """A customer's membership of a team. A removed member keeps its row (`removed_at`),
    so its past generations still name it; an invitation accepted later restores it."""

    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "customer_id"),
        Index("ix_team_members_tenant_customer", "tenant_id", "customer_id"),
        CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name="role"),
        CheckConstraint("allocation_period IN ('month', 'total')", name="allocation_period"),
        CheckConstraint("allocation_mc IS NULL OR allocation_mc >= 0",
                        name="allocation_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    role: Mapped[str] = mapped_column(String(16))
    #: The most this member may spend for the team per `allocation_period`; None: no limit
    #: but the team's wallet.
    allocation_mc: Mapped[int | None] = mapped_column(BigInteger, default=None)
    allocation_period: Mapped[str] = mapped_column(String(8), default=MONTH)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class TeamInvitation(Base):
    """An emailed, one-time invitation link; only the token's SHA-256 is kept."""

    __tablename__ = "team_invitations"
    __table_args__ = (
        Index("ix_team_invitations_team_created", "team_id", "created_at", "id"),
        CheckConstraint("role IN ('admin', 'member', 'viewer')", name="role"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Who invited (`Principal.actor`).
    invited_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    accepted_by: Mapped[str | None] = mapped_column(String(32), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class TeamAllocationSpend(Base):
    """What a member spent for a team under an allocation in one period (`2026-12`, or
    `total`): taken by a conditional upsert in the submit's transaction (`... WHERE spent +
    amount <= limit`, so the row's lock decides races) and given back, in the transaction
    that ends the generation, by what was not spent."""

    __tablename__ = "team_allocation_spend"
    __table_args__ = (CheckConstraint("spent_mc >= 0", name="spent_not_negative"),)

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    spent_mc: Mapped[int] = mapped_column(BigInteger, default=0)
