"""A signed-in user's session cookie → `Principal` (the package's docstring says the rules)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import cookies, logs
from gateway.core.auth.keys import acting_customer, enforce_rate_limit, runtime_of
from gateway.core.auth.principal import PRINCIPAL_STATE_KEY, Principal
from gateway.core.auth.teams import with_team
from gateway.core.runtime import Runtime
from gateway.core.suspension import check_active
from tenants import service as tenants
from tenants.kernel.errors import AuthenticationFailed, PermissionDenied
from tenants.schemas import ROLE_SCOPES
from tenants.users import service as users


async def authenticate_session(connection: ASGIConnection[Any, Any, Any, Any], *,
                               tenant_wide: bool = False) -> Principal:
    """The principal of a request signed in with the session cookie (module docstring):
    401 `invalid_session` for an unknown, expired, revoked or foreign-host session, 403
    `csrf_failed` for a write without the CSRF token or from another origin, 403
    `tenant_suspended` while the tenant is suspended, 429 over the
    tenant's limits (the user counts as one key). `tenant_wide` as in `authenticate_key`."""
    state = connection.scope.setdefault("state", {})
    known = state.get(PRINCIPAL_STATE_KEY)
    if isinstance(known, Principal):
        return known
    runtime = runtime_of(connection)
    settings = runtime.settings
    raw = connection.cookies.get(cookies.SESSION_COOKIE, "")
    async with runtime.db.session() as session:
        found = await users.resolve_session(session, raw, idle_s=settings.session_idle_s)
        on_host = found is not None and await _on_tenant_host(
            session, runtime, connection, found[0].tenant_id)
    if found is None or not on_host:
        raise AuthenticationFailed("the session expired or was signed out; sign in again",
                                   code="invalid_session")
    row, user = found
    await check_active(runtime, user.tenant_id)
    if users.needs_touch(row):
        async with runtime.db.transaction() as session:
            await users.touch_session(session, row.tenant_id, row.id)
    if connection.scope.get("method", "GET") in cookies.WRITE_METHODS and not (
            cookies.csrf_ok(settings, raw, connection.headers.get(cookies.CSRF_HEADER))
            and cookies.origin_ok(connection)):
        raise PermissionDenied("a signed-in write needs the X-CSRF-Token header from sign-in "
                               "and a same-site Origin", code="csrf_failed")
    await enforce_rate_limit(connection, runtime, user.tenant_id, f"user:{user.id}")
    if user.role == "customer":
        if tenant_wide:
            raise PermissionDenied("a customer cannot change its tenant's setup",
                                   code="customer_user")
        customer_id = user.customer_id
    elif tenant_wide:
        customer_id = None
    else:
        customer_id = await acting_customer(connection, runtime, user.tenant_id, None)
    principal = Principal(kind="user", tenant_id=user.tenant_id, key_id=None,
                          customer_id=customer_id,
                          scopes=frozenset(ROLE_SCOPES.get(user.role, frozenset())),
                          user_id=user.id, role=user.role, session_id=row.id)
    if not tenant_wide:
        principal = await with_team(runtime, principal, connection.headers.get("x-team-id"),
                                    param="X-Team-Id")
    state[PRINCIPAL_STATE_KEY] = principal
    logs.bind(tenant_id=principal.tenant_id, customer_id=principal.customer_id)
    return principal


async def _on_tenant_host(session: AsyncSession, runtime: Runtime,
                          connection: ASGIConnection[Any, Any, Any, Any], tenant_id: str) -> bool:
    host = cookies.request_host(connection)
    if host == cookies.platform_host(runtime.settings):
        return True
    tenant = await tenants.tenant_for_host(session, host)
    return tenant is not None and tenant.id == tenant_id
