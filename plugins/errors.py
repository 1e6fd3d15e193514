"""Provider failures: the stable error codes routing knows, `ProviderError`, the helpers that
classify an HTTP status or an exception, and `InvalidParams` for a request refused before
anything is reserved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Error codes (ISSUE "Provider errors are classified"). Retryable ones fail over to the next
# provider within one generation; final ones fail the generation at once, because another
# provider would reject the same request too (content, input) or because the operator has to
# act (auth).
TIMEOUT = "timeout"
SERVER_ERROR = "server_error"
RATE_LIMITED = "rate_limited"
NETWORK_ERROR = "network_error"
CONTENT_POLICY = "content_policy"
INVALID_INPUT = "invalid_input"
AUTH = "auth"
#: The platform's account at the provider is out of credits or over its quota (HTTP 402,
#: OpenAI's `insufficient_quota`, Stability's 402, Kling's 1100-1102, ...): the account's
#: problem, not the request's, so another provider may serve it.
QUOTA_EXHAUSTED = "quota_exhausted"
RETRYABLE_CODES: frozenset[str] = frozenset({TIMEOUT, SERVER_ERROR, RATE_LIMITED, NETWORK_ERROR,
                                             QUOTA_EXHAUSTED})
FINAL_CODES: frozenset[str] = frozenset({CONTENT_POLICY, INVALID_INPUT, AUTH})


class ProviderError(Exception):
    """A provider call failed. `retryable` errors may fail over to another provider.

    Prefer the constructors below (or `error_for_status` / `error_from_exception`) so codes
    stay the stable ones routing knows; a provider may still use its own `code` (say
    `engine_failed`) and decide `retryable` itself.
    """

    def __init__(self, message: str, *, code: str, retryable: bool,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.retry_after_s = retry_after_s

    @property
    def provider_fault(self) -> bool:
        """True when the failure says something about the provider's health (counted by its
        circuit breaker): every retryable error, and a rejected credential. A content or
        input error is the request's fault and is not held against the provider."""
        return self.retryable or self.code == AUTH

    @classmethod
    def timeout(cls, message: str = "the provider did not answer in time") -> ProviderError:
        return cls(message, code=TIMEOUT, retryable=True)

    @classmethod
    def server_error(cls, message: str = "the provider failed") -> ProviderError:
        return cls(message, code=SERVER_ERROR, retryable=True)

    @classmethod
    def rate_limited(cls, message: str = "the provider is rate limiting us",
                     retry_after_s: float | None = None) -> ProviderError:
        return cls(message, code=RATE_LIMITED, retryable=True, retry_after_s=retry_after_s)

    @classmethod
    def network_error(cls, message: str = "the provider could not be reached") -> ProviderError:
        return cls(message, code=NETWORK_ERROR, retryable=True)

    @classmethod
    def quota_exhausted(cls, message: str = "our account at the provider is out of credits "
                        "or over its quota") -> ProviderError:
        return cls(message, code=QUOTA_EXHAUSTED, retryable=True)

    @classmethod
    def content_policy(cls, message: str = "the request was refused by the provider's "
                       "content policy") -> ProviderError:
        return cls(message, code=CONTENT_POLICY, retryable=False)

    @classmethod
    def invalid_input(cls, message: str = "the provider refused the request") -> ProviderError:
        return cls(message, code=INVALID_INPUT, retryable=False)

    @classmethod
    def auth(cls, message: str = "the provider refused our credentials") -> ProviderError:
        return cls(message, code=AUTH, retryable=False)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` header (delta seconds or an HTTP date) as seconds from now, or None.

    Negative or unparseable values give None; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


def error_for_status(status_code: int, message: str | None = None, *,
                     retry_after: str | None = None, code: str | None = None,
                     now: datetime | None = None) -> ProviderError:
    """Classify an HTTP error status of a provider's API.

    408 and 504 are `timeout`, 429 is `rate_limited` (with its `Retry-After`), other 5xx are
    `server_error`, 402 is `quota_exhausted`: all retryable. 401/403 are `auth`, 451 is
    `content_policy`, any other 4xx
    is `invalid_input`: all final. A provider that recognises a content-policy refusal in a
    400 body passes `code="content_policy"`; an explicit `code` keeps the status's
    retryability.
    """
    text = message or f"the provider answered HTTP {status_code}"
    if status_code == 429:
        return ProviderError(text, code=code or RATE_LIMITED, retryable=True,
                             retry_after_s=parse_retry_after(retry_after, now=now))
    if status_code in (408, 504):
        return ProviderError(text, code=code or TIMEOUT, retryable=True)
    if status_code >= 500:
        return ProviderError(text, code=code or SERVER_ERROR, retryable=True,
                             retry_after_s=parse_retry_after(retry_after, now=now))
    if status_code == 402:
        return ProviderError(text, code=code or QUOTA_EXHAUSTED, retryable=True)
    if status_code in (401, 403):
        return ProviderError(text, code=code or AUTH, retryable=False)
    if status_code == 451:
        return ProviderError(text, code=code or CONTENT_POLICY, retryable=False)
    return ProviderError(text, code=code or INVALID_INPUT, retryable=False)


def error_from_response(response: httpx.Response, message: str | None = None, *,
                        code: str | None = None) -> ProviderError:
    """`error_for_status` for an `httpx.Response` (reads its status and `Retry-After`)."""
    return error_for_status(response.status_code, message, code=code,
                            retry_after=response.headers.get("retry-after"))


def error_from_exception(exc: BaseException) -> ProviderError:
    """Classify an exception raised while calling a provider.

    A `ProviderError` is returned as is; timeouts (asyncio's or httpx's) are `timeout`,
    transport failures `network_error`, an `httpx.HTTPStatusError` by its status; anything
    else (a bug in the provider) is a retryable `provider_error`, since another provider
    may well serve the request.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return ProviderError.timeout()
    if isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response)
    if isinstance(exc, httpx.TransportError):
        return ProviderError.network_error(f"the provider could not be reached "
                                           f"({type(exc).__name__})")
    return ProviderError(f"the provider failed unexpectedly ({type(exc).__name__})",
                         code="provider_error", retryable=True)


class InvalidParams(ValueError):
    """A request the provider cannot accept; raised before anything is reserved."""

    def __init__(self, message: str, *, param: str, code: str = "invalid_parameter") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        #: The API error code: `invalid_parameter`, or `unknown_param` for a parameter the
        #: provider does not read (`plugins.provider.check_params`).
        self.code = code
