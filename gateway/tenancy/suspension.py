"""The operator suspends a tenant and resumes it (`POST /admin/v1/tenants/{id}/suspend`,
`/resume`). While suspended every request with one of the tenant's keys or sessions is a 403
`tenant_suspended` (gateway/core/suspension.py says how every process learns it at once); the
operator API still works on the tenant, and its portal config says `"suspended": true`.
Generations already queued run to their end; nothing is deleted.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.core import suspension
from gateway.core.runtime import Runtime
from gateway.tenancy.service import tenant_out
from tenants import audit
from tenants import service as tenants
from tenants.kernel.db import utcnow
from tenants.schemas import TenantOut


class SuspendIn(msgspec.Struct, forbid_unknown_fields=True):
    #: Why, in a sentence: audited, shown to the operator, and in the tenant's 403 message.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


async def suspend(runtime: Runtime, tenant_id: str, body: SuspendIn, *,
                  actor: str = "operator") -> TenantOut:
    """Suspend a tenant (404 `tenant_not_found`); answers it with `suspended_at` set.
    Suspending a suspended tenant keeps its `suspended_at` and replaces the reason. Audited
    as `tenant.suspended`; refused at once on every process after the commit."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        domains = await tenants.tenant_domains(session, tenant_id)
        before = tenant_out(tenant, domains)
        tenant.suspended_at = tenant.suspended_at or utcnow()
        tenant.suspension_reason = body.reason
        tenant.updated_at = utcnow()
        await session.flush()
        out = tenant_out(tenant, domains)
        await audit.record(session, tenant_id=tenant_id, actor=actor,
                           action="tenant.suspended", target_type="tenant",
                           target_id=tenant_id,
                           before={"suspended_at": before.suspended_at,
                                   "suspension_reason": before.suspension_reason},
                           after={"suspended_at": out.suspended_at,
                                  "suspension_reason": out.suspension_reason})
    await suspension.announce(runtime, tenant_id, suspended=True)
    return out


async def resume(runtime: Runtime, tenant_id: str, *, actor: str = "operator") -> TenantOut:
    """Lift a suspension (404 `tenant_not_found`); answers the tenant. Audited as
    `tenant.resumed` when it was suspended; resuming an active tenant changes nothing."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        domains = await tenants.tenant_domains(session, tenant_id)
        was = (tenant.suspended_at, tenant.suspension_reason)
        if was[0] is not None:
            tenant.suspended_at = None
            tenant.suspension_reason = None
            tenant.updated_at = utcnow()
            await session.flush()
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="tenant.resumed", target_type="tenant",
                               target_id=tenant_id,
                               before={"suspended_at": was[0], "suspension_reason": was[1]},
                               after={"suspended_at": None, "suspension_reason": None})
        out = tenant_out(tenant, domains)
    await suspension.announce(runtime, tenant_id, suspended=False)
    return out
