"""The domain errors every layer above plugins raises; the gateway turns them into API.md's
one error shape in a single exception handler. Codes are stable: clients switch on them."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of the errors a client can see. `type` is API.md's error type."""

    type: ClassVar[str] = "api_error"
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.extra = extra or {}


class InvalidRequest(DomainError):
    type = "invalid_request_error"
    status = 422
    default_code = "invalid_request"


class AuthenticationFailed(DomainError):
    type = "authentication_error"
    status = 401
    default_code = "invalid_api_key"


class PermissionDenied(DomainError):
    type = "permission_error"
    status = 403
    default_code = "missing_scope"


class NotFound(DomainError):
    type = "not_found_error"
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    type = "conflict_error"
    status = 409
    default_code = "conflict"


class InsufficientCredits(DomainError):
    type = "insufficient_credits"
    status = 402
    default_code = "insufficient_credits"


class RateLimited(DomainError):
    type = "rate_limit_error"
    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after_s: int | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, extra=extra)
        #: Sent as `Retry-After` when known (the request-rate limiter sets its own headers).
        self.retry_after_s = retry_after_s


class ProviderFailed(DomainError):
    type = "provider_error"
    status = 502
    default_code = "provider_failed"


class Unavailable(DomainError):
    type = "unavailable_error"
    status = 503
    default_code = "unavailable"


class UnsupportedMediaType(DomainError):
    """A request body of a `Content-Type` the route does not take."""

    type = "invalid_request_error"
    status = 415
    default_code = "unsupported_media_type"


class PayloadTooLarge(DomainError):
    """A request body over a documented size limit."""

    type = "invalid_request_error"
    status = 413
    default_code = "body_too_large"
