"""Whether a tenant is suspended, as every authenticated request asks.

The database row (`tenants.suspended_at`) is the truth; each process reads it through its
`TenantViews` (a few seconds old at most). So that a suspension takes effect at once on every
process, not within `TenantViews.ttl_s`, the operator's suspend also writes a marker to the
shared result store (Valkey when configured, in process when embedded, where there is only one
process) for a little longer than that TTL: a request refuses when the marker says suspended
or its view does. After the marker expires every view has long been re-read.

Resume deletes the marker; a process whose view still holds the suspension lets the tenant in
within `TenantViews.ttl_s`. If Valkey is unreachable at suspend time the suspension still
reaches every process through the views, within that TTL.
"""

from __future__ import annotations

import logging

from gateway.core.runtime import Runtime
from tenants.kernel.errors import PermissionDenied

log = logging.getLogger(__name__)

SUSPENDED = "suspended"
#: How long the marker outlives the suspend: well past the views' TTL (5 s), so no process
#: can still hold a view read before the suspension once it is gone.
MARKER_TTL_S = 60


def marker_key(prefix: str, tenant_id: str) -> str:
    return f"{prefix}:suspended:{tenant_id}"


def refusal(reason: str | None) -> PermissionDenied:
    message = "this account is suspended; contact the platform operator"
    if reason:
        message = f"{message} ({reason})"
    return PermissionDenied(message, code="tenant_suspended")


async def check_active(runtime: Runtime, tenant_id: str) -> None:
    """Raise 403 `tenant_suspended` when the tenant is suspended; called by the key and the
    session authentication for every tenant request (not the operator's, nor the public
    portal config)."""
    try:
        marked = await runtime.results.get(marker_key(runtime.settings.queue_prefix,
                                                      tenant_id))
    except Exception:
        # The views still say it within seconds; refusing every tenant would be worse.
        log.warning("suspension marker unreadable; using the tenant view", exc_info=True)
        marked = None
    tenant = await runtime.tenant_views.tenant(tenant_id)
    if marked == SUSPENDED or tenant.suspended_at is not None:
        raise refusal(tenant.suspension_reason)


async def announce(runtime: Runtime, tenant_id: str, *, suspended: bool) -> None:
    """After the suspend's (or resume's) commit: mark (or unmark) the tenant for every
    process and drop this process's view of it. Never raises: the views carry the change
    within seconds without the marker."""
    runtime.tenant_views.forget(tenant_id)
    key = marker_key(runtime.settings.queue_prefix, tenant_id)
    try:
        if suspended:
            await runtime.results.set(key, SUSPENDED, MARKER_TTL_S)
        else:
            await runtime.results.delete_if(key, SUSPENDED)
    except Exception:
        log.warning("could not write the suspension marker of %s", tenant_id, exc_info=True)
