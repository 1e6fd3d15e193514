"""Reading the audit log (`tenants.audit`): the tenant's owners and admins see their tenant's
events, the operator everyone's or one tenant's."""

from __future__ import annotations

from gateway.core.runtime import Runtime
from tenants import audit
from tenants.audit import AuditLog


async def list_audit(runtime: Runtime, *, tenant_id: str | None, limit: int,
                     cursor: str | None, action: str | None) -> AuditLog:
    """One page of the log, newest first; `tenant_id` None (the operator only) is every
    tenant's. Called by `GET /v1/audit_log` (always with the caller's tenant) and
    `GET /admin/v1/audit_log`. A bad cursor is a 422 `invalid_cursor`."""
    async with runtime.db.session() as session:
        return await audit.list_events(session, tenant_id=tenant_id, limit=limit,
                                       cursor=cursor, action=action)
