"""The audit log: who (a user, an API key or the operator) changed what, when, with before and
after.

Written by the use cases that change a tenant's setup (settings, domains, keys, grants,
customers, roles, members, teams), in the same transaction as the change, so a change and its
record commit or roll back together. Read by the tenant's owners and admins
(`GET /v1/audit_log`) and by the operator (`GET /admin/v1/audit_log`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tenants.kernel.db import Base, JSONType, UTCDateTime, new_id, utcnow
from tenants.kernel.pagination import keyset, page

#: Fields never written to the log, whatever object they appear in (hashes, sealed secrets).
_REDACTED = frozenset({"secret_hash", "password_hash", "token_hash", "key", "secret",
                       "api_key", "api_secret", "provider_credentials", "password"})


class AuditEvent(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_audit_log_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: No foreign key: the record of a tenant outlives what it records.
    tenant_id: Mapped[str | None] = mapped_column(String(32))
    #: `user:<id>`, `key:<id>` or `operator` (`Principal.actor`).
    actor: Mapped[str] = mapped_column(String(64))
    #: `<object>.<verb>`: `tenant.updated`, `key.created`, `member.role_changed`, …
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(255))
    before: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEventOut(msgspec.Struct):
    id: str
    tenant_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    before: Any
    after: Any
    created_at: datetime
    object: str = "audit_event"


class AuditLog(msgspec.Struct):
    data: list[AuditEventOut]
    next_cursor: str | None
    object: str = "list"


def snapshot(value: Any) -> Any:
    """`value` (a msgspec Struct, dict, list or scalar) as JSON-ready builtins with secrets
    removed: what `record` stores as before and after."""
    plain = msgspec.to_builtins(value, builtin_types=(datetime,))
    return _redact(plain)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if k not in _REDACTED}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def record(session: AsyncSession, *, tenant_id: str | None, actor: str, action: str,
                 target_type: str, target_id: str, before: Any = None,
                 after: Any = None) -> AuditEvent:
    """Add one event to the log in the caller's transaction; `before`/`after` go through
    `snapshot` (secrets never stored). Returns the event."""
    event = AuditEvent(id=new_id("aud"), tenant_id=tenant_id, actor=actor, action=action,
                       target_type=target_type, target_id=target_id,
                       before=None if before is None else snapshot(before),
                       after=None if after is None else snapshot(after))
    session.add(event)
    await session.flush()
    return event


def event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(id=event.id, tenant_id=event.tenant_id, actor=event.actor,
                         action=event.action, target_type=event.target_type,
                         target_id=event.target_id, before=event.before, after=event.after,
                         created_at=event.created_at)


async def list_events(session: AsyncSession, *, tenant_id: str | None, limit: int,
                      cursor: str | None, action: str | None = None) -> AuditLog:
    """Newest first: one tenant's events, or (`tenant_id` None, the operator) everyone's."""
    query = select(AuditEvent)
    if tenant_id is not None:
        query = query.where(AuditEvent.tenant_id == tenant_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    rows = list(await session.scalars(keyset(query, AuditEvent.created_at, AuditEvent.id,
                                             cursor, limit)))
    kept, next_cursor = page(rows, limit)
    return AuditLog(data=[event_out(e) for e in kept], next_cursor=next_cursor)
