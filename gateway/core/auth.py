"""Who is calling: every credential becomes one `Principal`, here and nowhere else.

- `Authorization: Bearer mh_<prefix>_<secret>`: a tenant's API key (hashed at rest, resolved
  through a cache of a few seconds so most requests cost no query; a revoke in this process
  evicts at once, other replicas notice within `KeyCache.ttl_s`). A key not bound to a
  customer may act for one with `X-Customer-Id` (the tenant's own id for it; created on
  first use).
- `Authorization: Bearer <MEDIAHUB_ADMIN_TOKEN>` on operator routes: the operator (compared
  in constant time).
- The `mh_session` cookie of a signed-in user (gateway/core/cookies.py): a `user` principal
  with its role's scopes (`ROLE_SCOPES`); a portal customer acts for its own customer, staff
  tenant-wide (or for `X-Customer-Id`). Good only on a host of its tenant; every write
  (POST/PUT/PATCH/DELETE) needs `X-CSRF-Token` and a same-host `Origin` when one is sent
  (403 `csrf_failed`). A request with both a bearer key and the cookie is the key's.

Routes declare what they need with guards (`requires("generate")`, `operator_only`), which
Litestar runs before it reads or validates the body: a request without a valid credential
gets 401 (and one over its rate limit 429) without its body ever being parsed. The guard
leaves the `Principal` in the request's state; handlers receive it as the `principal`
dependency (`provide_principal`).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import cookies
from gateway.core.ratelimit import DECISION_STATE_KEY, with_key_rate
from gateway.core.runtime import Runtime
from tenants import service as tenants
from tenants.kernel.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from tenants.models import Tenant
from tenants.schemas import ROLE_SCOPES, RateLimitPolicy
from tenants.service import KeyIdentity
from tenants.teams import service as teams
from tenants.users import service as users

#: Where the guard leaves the principal in the ASGI scope's state.
PRINCIPAL_STATE_KEY = "mediahub.principal"
#: The longest `X-Customer-Id` accepted (the customers table's limit).
MAX_CUSTOMER_ID = 200
#: The longest team id accepted (`X-Team-Id`, a body's `team_id`).
MAX_TEAM_ID = 32

KeyScope = Literal["generate", "read", "billing", "tenant_admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, whatever credential it came with."""

    #: `key`: a tenant API key; `user`: a person signed in with a session cookie;
    #: `operator`: the platform's admin token.
    kind: Literal["key", "operator", "user"]
    #: The tenant acted for (None: the operator).
    tenant_id: str | None
    #: The API key used (None: the operator, a user).
    key_id: str | None
    #: The customer acted for: the key's own, `X-Customer-Id` on a tenant-wide key, or the
    #: customer a portal user is linked to.
    customer_id: str | None
    scopes: frozenset[str]
    #: The signed-in person (kind `user`).
    user_id: str | None = None
    #: The user's role in its tenant: a staff role (`owner`, `admin`, `developer`,
    #: `billing`, `viewer`) or `customer` (a portal user). None for keys and the operator.
    role: str | None = None
    #: The session the user came with (so it can sign itself out).
    session_id: str | None = None
    #: The team spent for and shown (`X-Team-Id` or a body's `team_id`), and the caller's
    #: role in it (`owner`, `admin`, `member`, `viewer`).
    team_id: str | None = None
    team_role: str | None = None

    @property
    def actor(self) -> str:
        """Who did it, as the audit log writes it: `user:<id>`, `key:<id>` or `operator`."""
        if self.kind == "operator":
            return "operator"
        if self.kind == "user":
            return f"user:{self.user_id}"
        return f"key:{self.key_id}"

    @property
    def tenant(self) -> str:
        """The tenant id of a tenant principal (a programming error for the operator)."""
        assert self.tenant_id is not None, "an operator principal has no tenant"
        return self.tenant_id


OPERATOR = Principal(kind="operator", tenant_id=None, key_id=None, customer_id=None,
                     scopes=frozenset())


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("send your API key as 'Authorization: Bearer <key>'",
                                   code="missing_api_key")
    return token.strip()


class KeyCache:
    """Resolved keys kept for a few seconds, so auth costs no query on most requests."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, KeyIdentity]] = {}

    def get(self, raw: str) -> KeyIdentity | None:
        entry = self._entries.get(raw)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(raw, None)
            return None
        return entry[1]

    def put(self, raw: str, identity: KeyIdentity) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[raw] = (time.monotonic() + self.ttl_s, identity)

    def evict_key_id(self, key_id: str) -> None:
        """Forget a key at once (it was revoked in this process)."""
        for raw, (_, identity) in list(self._entries.items()):
            if identity.key_id == key_id:
                self._entries.pop(raw, None)


key_cache = KeyCache()


def _runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


async def _acting_customer(connection: ASGIConnection[Any, Any, Any, Any], runtime: Runtime,
                           identity: KeyIdentity) -> str | None:
    external = connection.headers.get("x-customer-id")
    if identity.customer_id is not None:
        if external is not None:
            raise PermissionDenied("a customer key cannot act for another customer",
                                   code="customer_key", param="X-Customer-Id")
        return identity.customer_id
    if not external:
        return None
    if len(external) > MAX_CUSTOMER_ID:
        # The key is valid; the header is what is wrong (422, not 401: retrying with
        # another key would not help).
        raise InvalidRequest(f"X-Customer-Id is longer than {MAX_CUSTOMER_ID} characters",
                             code="invalid_customer", param="X-Customer-Id")
    async with runtime.db.transaction() as session:
        customer = await tenants.customer_for(session, identity.tenant_id, external,
                                              create=True)
    assert customer is not None
    return customer.id


async def _enforce_rate_limit(connection: ASGIConnection[Any, Any, Any, Any],
                              runtime: Runtime, identity: KeyIdentity) -> None:
    """Count an authenticated request against its tenant's and key's limits; leaves the
    decision in the scope for `rate_limit_headers` and raises `RateLimited` when refused."""
    async def load(tenant_id: str) -> RateLimitPolicy:
        async with runtime.db.session() as session:
            tenant = await session.get(Tenant, tenant_id)
        return tenant.rate_limits if tenant is not None else RateLimitPolicy()

    limiter = runtime.limiter
    limits = with_key_rate(await limiter.limits(identity.tenant_id, load), identity.rate_limit)
    decision = await limiter.check(identity.tenant_id, identity.key_id, limits)
    connection.scope.setdefault("state", {})[DECISION_STATE_KEY] = decision
    if not decision.allowed:
        raise RateLimited("too many requests; retry after the time in Retry-After",
                          code="rate_limited")


async def authenticate_key(connection: ASGIConnection[Any, Any, Any, Any], *,
                           tenant_wide: bool = False) -> Principal:
    """The principal of a request with a tenant API key, rate limited; raises 401 for a
    missing or bad key, 429 over the limits. Idempotent within a request.

    `tenant_wide`: the route acts on the tenant itself (its settings, keys, webhooks): a key
    bound to a customer is refused (403 `customer_key`) and `X-Customer-Id` is not read."""
    state = connection.scope.setdefault("state", {})
    known = state.get(PRINCIPAL_STATE_KEY)
    if isinstance(known, Principal):
        return known
    runtime = _runtime(connection)
    raw = bearer(connection)
    identity = key_cache.get(raw)
    if identity is None:
        async with runtime.db.session() as session:
            identity = await tenants.authenticate(session, raw)
        key_cache.put(raw, identity)
    await _enforce_rate_limit(connection, runtime, identity)
    if tenant_wide:
        if identity.customer_id is not None:
            raise PermissionDenied("a customer key cannot change its tenant's setup",
                                   code="customer_key")
        customer_id = None
    else:
        customer_id = await _acting_customer(connection, runtime, identity)
    principal = Principal(kind="key", tenant_id=identity.tenant_id, key_id=identity.key_id,
                          customer_id=customer_id, scopes=identity.scopes)
    if not tenant_wide:
        principal = await with_team(runtime, principal, connection.headers.get("x-team-id"),
                                    param="X-Team-Id")
    state[PRINCIPAL_STATE_KEY] = principal
    return principal


async def authenticate_session(connection: ASGIConnection[Any, Any, Any, Any], *,
                               tenant_wide: bool = False) -> Principal:
    """The principal of a request signed in with the session cookie (module docstring):
    401 `invalid_session` for an unknown, expired, revoked or foreign-host session, 403
    `csrf_failed` for a write without the CSRF token or from another origin, 429 over the
    tenant's limits (the user counts as one key). `tenant_wide` as in `authenticate_key`."""
    state = connection.scope.setdefault("state", {})
    known = state.get(PRINCIPAL_STATE_KEY)
    if isinstance(known, Principal):
        return known
    runtime = _runtime(connection)
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
    if users.needs_touch(row):
        async with runtime.db.transaction() as session:
            await users.touch_session(session, row.tenant_id, row.id)
    if connection.scope.get("method", "GET") in cookies.WRITE_METHODS and not (
            cookies.csrf_ok(settings, raw, connection.headers.get(cookies.CSRF_HEADER))
            and cookies.origin_ok(connection)):
        raise PermissionDenied("a signed-in write needs the X-CSRF-Token header from sign-in "
                               "and a same-site Origin", code="csrf_failed")
    await _enforce_rate_limit(connection, runtime, KeyIdentity(
        key_id=f"user:{user.id}", tenant_id=user.tenant_id, scopes=frozenset(),
        customer_id=user.customer_id))
    if user.role == "customer":
        if tenant_wide:
            raise PermissionDenied("a customer cannot change its tenant's setup",
                                   code="customer_user")
        customer_id = user.customer_id
    elif tenant_wide:
        customer_id = None
    else:
        customer_id = await _acting_customer(connection, runtime, KeyIdentity(
            key_id="", tenant_id=user.tenant_id, scopes=frozenset(), customer_id=None))
    principal = Principal(kind="user", tenant_id=user.tenant_id, key_id=None,
                          customer_id=customer_id,
                          scopes=frozenset(ROLE_SCOPES.get(user.role, frozenset())),
                          user_id=user.id, role=user.role, session_id=row.id)
    if not tenant_wide:
        principal = await with_team(runtime, principal, connection.headers.get("x-team-id"),
                                    param="X-Team-Id")
    state[PRINCIPAL_STATE_KEY] = principal
    return principal


async def _on_tenant_host(session: AsyncSession, runtime: Runtime,
                          connection: ASGIConnection[Any, Any, Any, Any], tenant_id: str) -> bool:
    host = cookies.request_host(connection)
    if host == cookies.platform_host(runtime.settings):
        return True
    tenant = await tenants.tenant_for_host(session, host)
    return tenant is not None and tenant.id == tenant_id


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], *,
                       tenant_wide: bool = False) -> Principal:
    """The principal of a tenant request: its bearer key when it sends one, else its session
    cookie when it sends one, else 401 (asking for a key)."""
    if "authorization" not in connection.headers and connection.cookies.get(
            cookies.SESSION_COOKIE):
        return await authenticate_session(connection, tenant_wide=tenant_wide)
    return await authenticate_key(connection, tenant_wide=tenant_wide)
async def with_team(runtime: Runtime, principal: Principal, team_id: str | None, *,
                    param: str = "team_id") -> Principal:
    """The principal acting for `team_id` (`X-Team-Id`, or a generation body's `team_id`):
    with `team_id` and the caller's `team_role` once its membership is checked. The one place
    a team is resolved. A team the customer is no member of (or another tenant's) is 404
    `team_not_found`; a caller without a customer 422 `customer_required`; a principal already
    acting for another team 422 `team_mismatch`. None: the principal unchanged."""
    if not team_id:
        return principal
    if principal.team_id is not None:
        if principal.team_id != team_id:
            raise InvalidRequest("X-Team-Id and the body's team_id name different teams",
                                 code="team_mismatch", param=param)
        return principal
    if len(team_id) > MAX_TEAM_ID:
        raise InvalidRequest(f"{param} is longer than {MAX_TEAM_ID} characters",
                             code="invalid_team", param=param)
    if principal.customer_id is None:
        raise InvalidRequest("a team is spent for and shown to its members: act for a "
                             "customer (a customer key or X-Customer-Id)",
                             code="customer_required", param=param)
    async with runtime.db.session() as session:
        try:
            role = await teams.role_in(session, principal.tenant, team_id,
                                       principal.customer_id)
        except NotFound as exc:
            raise NotFound(exc.message, code=exc.code, param=param) from exc
    return replace(principal, team_id=team_id, team_role=role)


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


def operator_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the bearer must equal `MEDIAHUB_ADMIN_TOKEN` (compared in constant time)."""
    expected = _runtime(connection).settings.admin_token
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
