"""HTTP plumbing shared by every route: the one error shape, and who is calling.

Every failure, from validation to an unknown route to an unexpected exception, leaves as
`{"error": {"type", "code", "message", "param"}}` (API.md, "Errors").
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from gateway.core.ratelimit import enforce as enforce_rate_limit
from gateway.core.runtime import Runtime
from tenants import service as tenants
from tenants.kernel.errors import AuthenticationFailed, DomainError, PermissionDenied, RateLimited
from tenants.service import KeyIdentity

log = logging.getLogger(__name__)

_HTTP_TYPES = {
    400: ("invalid_request_error", "malformed_request"),
    401: ("authentication_error", "unauthenticated"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("conflict_error", "conflict"),
    413: ("invalid_request_error", "body_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limited"),
}


def error_body(type_: str, code: str, message: str, param: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type_, "code": code, "message": message, "param": param, **extra}}


_FIELD = re.compile(r"field `([^`]+)`")


def _validation_param(exc: ValidationException) -> tuple[str | None, str]:
    """The dotted path of the field a validation error is about, and its message.

    Litestar reports msgspec's path as `key` ("prompt", "metadata[...]") and `data` for the
    body itself, where the message names the field ("Object contains unknown field `x`").
    """
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message") or exc.detail)
        key = str(item.get("key") or "").replace("[...]", "")
        field = _FIELD.search(message)
        if key in ("", "data"):
            key = field.group(1) if field else ""
        elif field:
            key = f"{key}.{field.group(1)}"
        return (key or None), message
    return None, str(exc.detail)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The single exception handler; turns any exception into API.md's error shape."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        body = error_body(exc.type, exc.code, exc.message, exc.param, **exc.extra)
        status = exc.status
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
    elif isinstance(exc, ValidationException):
        param, message = _validation_param(exc)
        status = 422 if param else 400
        body = error_body("invalid_request_error", "invalid_body" if param else "malformed_body",
                          message, param)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        type_, code = _HTTP_TYPES.get(status, ("api_error", "http_error"))
        message = exc.detail
        if status == 404:
            message = f"no route for {request.method} {request.url.path}"
        body = error_body(type_, code, str(message))
        headers.update(exc.headers or {})
    else:
        log.exception("unhandled error", extra={"path": request.url.path})
        status = HTTP_500_INTERNAL_SERVER_ERROR
        body = error_body("api_error", "internal_error", "an unexpected error occurred")
    return Response(body, status_code=status, headers=headers)


def bearer(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("send your API key as 'Authorization: Bearer <key>'",
                                   code="missing_api_key")
    return token.strip()


class KeyCache:
    """Resolved keys kept for a few seconds, so auth costs no query on most requests.

    A revoke in this process evicts at once; other replicas notice within `ttl_s`.
    """

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
        for raw, (_, identity) in list(self._entries.items()):
            if identity.key_id == key_id:
                self._entries.pop(raw, None)


key_cache = KeyCache()


async def identify(request: Request[Any, Any, Any], runtime: Runtime) -> KeyIdentity:
    """The caller's identity from its bearer key; raises 401 for a missing or bad key."""
    raw = bearer(request)
    identity = key_cache.get(raw)
    if identity is None:
        async with runtime.db.session() as session:
            identity = await tenants.authenticate(session, raw)
        key_cache.put(raw, identity)
    await enforce_rate_limit(request, runtime, identity)
    return identity


def require_scope(identity: KeyIdentity, scope: str) -> None:
    if scope not in identity.scopes:
        raise PermissionDenied(f"this key lacks the {scope!r} scope", param=scope)


async def acting_customer(request: Request[Any, Any, Any], runtime: Runtime,
                          identity: KeyIdentity) -> str | None:
    """The customer a request acts for: the key's own, or `X-Customer-Id` on a tenant key."""
    external = request.headers.get("x-customer-id")
    if identity.customer_id is not None:
        if external is not None:
            raise PermissionDenied("a customer key cannot act for another customer",
                                   code="customer_key", param="X-Customer-Id")
        return identity.customer_id
    if not external:
        return None
    if len(external) > 200:
        raise AuthenticationFailed("X-Customer-Id is too long", code="invalid_customer")
    async with runtime.db.transaction() as session:
        customer = await tenants.customer_for(session, identity.tenant_id, external,
                                              create=True)
    assert customer is not None
    return customer.id


def check_admin(request: ASGIConnection[Any, Any, Any, Any], runtime: Runtime) -> None:
    """Operator auth: the bearer must equal MEDIAHUB_ADMIN_TOKEN (compared in constant time)."""
    expected = runtime.settings.admin_token
    if expected is None:
        raise AuthenticationFailed("the admin API is disabled: MEDIAHUB_ADMIN_TOKEN is not set",
                                   code="admin_disabled")
    if not hmac.compare_digest(bearer(request).encode(), expected.encode()):
        raise AuthenticationFailed("the admin token is not valid", code="invalid_admin_token")
