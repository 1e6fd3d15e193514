"""Tenant API keys: `Authorization: Bearer mh_<prefix>_<secret>` → `Principal` (cached for a
few seconds), `X-Customer-Id`, and the request rate limits every tenant credential counts
against."""

from __future__ import annotations

import time
from typing import Any

from litestar.connection import ASGIConnection

from gateway.core import logs
from gateway.core.auth.principal import MAX_CUSTOMER_ID, PRINCIPAL_STATE_KEY, Principal
from gateway.core.auth.teams import with_team
from gateway.core.ratelimit import DECISION_STATE_KEY, with_key_rate
from gateway.core.runtime import Runtime
from gateway.core.suspension import check_active
from tenants import service as tenants
from tenants.kernel.errors import (
    AuthenticationFailed,
    InvalidRequest,
    PermissionDenied,
    RateLimited,
)
from tenants.models import Tenant
from tenants.schemas import RateLimitPolicy
from tenants.service import KeyIdentity


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


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    """The process's runtime, as the app keeps it (read by every guard)."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


async def acting_customer(connection: ASGIConnection[Any, Any, Any, Any], runtime: Runtime,
                          tenant_id: str, bound: str | None) -> str | None:
    """The customer a request acts for: `bound` (the customer a key is bound to), or
    `X-Customer-Id` on a tenant-wide credential (created on first use); None for neither.
    Called by the key and session authentication."""
    external = connection.headers.get("x-customer-id")
    if bound is not None:
        if external is not None:
            raise PermissionDenied("a customer key cannot act for another customer",
                                   code="customer_key", param="X-Customer-Id")
        return bound
    if not external:
        return None
    if len(external) > MAX_CUSTOMER_ID:
        # The key is valid; the header is what is wrong (422, not 401: retrying with
        # another key would not help).
        raise InvalidRequest(f"X-Customer-Id is longer than {MAX_CUSTOMER_ID} characters",
                             code="invalid_customer", param="X-Customer-Id")
    async with runtime.db.transaction() as session:
        customer = await tenants.customer_for(session, tenant_id, external, create=True)
    assert customer is not None
    return customer.id


async def enforce_rate_limit(connection: ASGIConnection[Any, Any, Any, Any],
                             runtime: Runtime, tenant_id: str, caller: str,
                             key_rate: tuple[int, int] | None = None) -> None:
    """Count an authenticated request against its tenant's limits and its caller's (a key
    id, or `user:<id>` for a session: each counts as one key), `key_rate` replacing the
    tenant's per-key default; leaves the decision in the scope for `rate_limit_headers` and
    raises `RateLimited` when refused."""
    async def load(tenant_id: str) -> RateLimitPolicy:
        async with runtime.db.session() as session:
            tenant = await session.get(Tenant, tenant_id)
        return tenant.rate_limits if tenant is not None else RateLimitPolicy()

    limiter = runtime.limiter
    limits = with_key_rate(await limiter.limits(tenant_id, load), key_rate)
    decision = await limiter.check(tenant_id, caller, limits)
    connection.scope.setdefault("state", {})[DECISION_STATE_KEY] = decision
    if not decision.allowed:
        raise RateLimited("too many requests; retry after the time in Retry-After",
                          code="rate_limited")


async def authenticate_key(connection: ASGIConnection[Any, Any, Any, Any], *,
                           tenant_wide: bool = False) -> Principal:
    """The principal of a request with a tenant API key, rate limited; raises 401 for a
    missing or bad key, 403 `tenant_suspended` while its tenant is suspended, 429 over the
    limits. Idempotent within a request.

    `tenant_wide`: the route acts on the tenant itself (its settings, keys, webhooks): a key
    bound to a customer is refused (403 `customer_key`) and `X-Customer-Id` is not read."""
    state = connection.scope.setdefault("state", {})
    known = state.get(PRINCIPAL_STATE_KEY)
    if isinstance(known, Principal):
        return known
    runtime = runtime_of(connection)
    raw = bearer(connection)
    identity = key_cache.get(raw)
    if identity is None:
        async with runtime.db.session() as session:
            identity = await tenants.authenticate(session, raw)
        key_cache.put(raw, identity)
    await check_active(runtime, identity.tenant_id)
    await enforce_rate_limit(connection, runtime, identity.tenant_id, identity.key_id,
                             identity.rate_limit)
    if tenant_wide:
        if identity.customer_id is not None:
            raise PermissionDenied("a customer key cannot change its tenant's setup",
                                   code="customer_key")
        customer_id = None
    else:
        customer_id = await acting_customer(connection, runtime, identity.tenant_id,
                                            identity.customer_id)
    principal = Principal(kind="key", tenant_id=identity.tenant_id, key_id=identity.key_id,
                          customer_id=customer_id, scopes=identity.scopes,
                          key_budgeted=identity.budgeted)
    if not tenant_wide:
        principal = await with_team(runtime, principal, connection.headers.get("x-team-id"),
                                    param="X-Team-Id")
    state[PRINCIPAL_STATE_KEY] = principal
    logs.bind(tenant_id=principal.tenant_id, customer_id=principal.customer_id)
    return principal
