"""The one error shape and the one exception handler.

Every failure, from validation to an unknown route to an unexpected exception, leaves as
`{"error": {"type", "code", "message", "param"}}` (API.md, "Errors"). Domain code raises the
`tenants.kernel.errors` hierarchy; only this module knows HTTP statuses for them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tenants.kernel.errors import AuthenticationFailed, DomainError, RateLimited

log = logging.getLogger(__name__)

#: `Retry-After` of a request that found every database connection of its process busy: the
#: pool turns over in well under a second when it is merely saturated.
DATABASE_BUSY_RETRY_AFTER_S = 1

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
        # msgspec names a bad mapping key as "key` in `$.path": the mapping is the param.
        key = key.rpartition("` in `$.")[2] if "` in `$." in key else key
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
    elif isinstance(exc, PoolTimeout):
        # Every pooled connection stayed taken for `MEDIAHUB_DATABASE_POOL_TIMEOUT_S`: the
        # process is saturated, not broken, so the client is told to come back (503) rather
        # than shown an internal error.
        log.warning("no database connection within the pool timeout",
                    extra={"path": request.url.path})
        status = 503
        body = error_body("unavailable_error", "database_busy",
                          "the service is busy; retry shortly")
        headers["Retry-After"] = str(DATABASE_BUSY_RETRY_AFTER_S)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        type_, code = _HTTP_TYPES.get(status, ("api_error", "http_error"))
        message = exc.detail
        if status == 404:
            message = f"no route for {request.method} {request.scope['path']}"
        body = error_body(type_, code, str(message))
        headers.update(exc.headers or {})
    else:
        log.exception("unhandled error", extra={"path": request.scope["path"]})
        status = HTTP_500_INTERNAL_SERVER_ERROR
        body = error_body("api_error", "internal_error", "an unexpected error occurred")
    return Response(body, status_code=status, headers=headers)


class ErrorDetail(msgspec.Struct):
    """API.md's error object (some errors add fields, such as a 402's `shortfall`)."""

    type: str
    code: str
    message: str
    param: str | None


class ErrorBody(msgspec.Struct):
    """Every error response's body: `{"error": {...}}`."""

    error: ErrorDetail


_DOCUMENTED = {400: "Malformed request (the body is not JSON)",
               401: "Missing or invalid credentials",
               403: "The credential may not do this",
               404: "No such route or object (for this tenant)",
               422: "Invalid input; `param` names the field",
               429: "Rate limited; see Retry-After"}


def document_errors(app: Litestar) -> None:
    """Called once by `create_app`: every route's OpenAPI entry documents the one error
    shape for the common 4xx statuses (Litestar would otherwise describe its own
    `{status_code, detail, extra}` body for 400, which we never send). A route's own
    `responses` win."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and handler.resolve_include_in_schema():
                ours = {status: ResponseSpec(data_container=ErrorBody, description=text,
                                             generate_examples=False)
                        for status, text in _DOCUMENTED.items()}
                handler.responses = {**ours, **(handler.responses or {})}
