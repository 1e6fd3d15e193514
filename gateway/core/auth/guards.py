"""The guards routes declare (`requires(...)`, `operator_only`) and the `principal`
dependency handlers receive."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from gateway.core import cookies
from gateway.core.auth.keys import authenticate_key, bearer, runtime_of
from gateway.core.auth.principal import OPERATOR, PRINCIPAL_STATE_KEY, KeyScope, Principal
from gateway.core.auth.sessions import authenticate_session
from tenants.kernel.errors import AuthenticationFailed, PermissionDenied


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], *,
                       tenant_wide: bool = False) -> Principal:
    """The principal of a tenant request: its bearer key when it sends one, else its session
    cookie when it sends one, else 401 (asking for a key)."""
    if "authorization" not in connection.headers and connection.cookies.get(
            cookies.SESSION_COOKIE):
        return await authenticate_session(connection, tenant_wide=tenant_wide)
    return await authenticate_key(connection, tenant_wide=tenant_wide)


def requires(*scopes: KeyScope, tenant_wide: bool = False) -> Any:
    """A guard: the request needs a tenant API key, or a signed-in user's session, holding
    every one of `scopes` (none: any valid credential); `tenant_wide` as in
    `authenticate_key`. Raises 401 / 403 / 429 before the body is read."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any],
                    _: BaseRouteHandler) -> None:
        principal = await authenticate(connection, tenant_wide=tenant_wide)
        for scope in scopes:
            if scope not in principal.scopes:
                holder = "this key" if principal.kind == "key" else "your role"
                raise PermissionDenied(f"{holder} lacks the {scope!r} scope", param=scope)

    guard.__name__ = f"requires_{'_'.join(scopes) or 'key'}"
    return guard


def staff_or_key(*, roles: Collection[str], scopes: Collection[str]) -> Any:
    """A guard for tenant-wide reports and tools: a signed-in staff user whose role is one
    of `roles`, or an API key (not bound to a customer) holding at least one of `scopes`.
    Raises 401 / 403 (`role_not_allowed`, `missing_scope`) / 429 before the body is read."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any],
                    _: BaseRouteHandler) -> None:
        principal = await authenticate(connection, tenant_wide=True)
        if principal.kind == "user":
            if principal.role not in roles:
                raise PermissionDenied(f"the {principal.role} role may not do this; "
                                       f"{', '.join(sorted(roles))} may",
                                       code="role_not_allowed")
        elif not principal.scopes & set(scopes):
            wanted = " or ".join(repr(s) for s in sorted(scopes))
            raise PermissionDenied(f"this key needs the {wanted} scope",
                                   param=sorted(scopes)[0])

    guard.__name__ = f"staff_or_key_{'_'.join(sorted(scopes))}"
    return guard


def operator_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the bearer must equal `MEDIAHUB_ADMIN_TOKEN` (compared in constant time)."""
    expected = runtime_of(connection).settings.admin_token
    if expected is None:
        raise AuthenticationFailed("the admin API is disabled: MEDIAHUB_ADMIN_TOKEN is not set",
                                   code="admin_disabled")
    if not hmac.compare_digest(bearer(connection).encode(), expected.encode()):
        raise AuthenticationFailed("the admin token is not valid", code="invalid_admin_token")
    connection.scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = OPERATOR


def provide_principal(scope: Scope, services: Any) -> Principal:
    """The `principal` dependency: what the route's guard resolved.

    It takes the `services` dependency (unused) so that the app's dependencies form one chain,
    runtime → services → principal: Litestar resolves dependencies of the same depth in a task
    group, which cost a measurable share of a request (bench/load_bench.py)."""
    principal = scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    if not isinstance(principal, Principal):
        raise AuthenticationFailed("this route has no credential guard",
                                   code="unauthenticated")
    return principal
