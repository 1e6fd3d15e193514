"""The provider contract: what a provider plugin implements and what it exchanges.

Providers are objects; hooks only register them. A provider never reads settings, the database
or tenant configuration: the gateway passes in the request, the resolved credentials and a
shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import httpx
import msgspec

MediaType = Literal["image", "audio", "video", "design", "model_3d"]

DEFAULT_OPERATIONS: dict[str, str] = {
    "image": "text_to_image",
    "audio": "text_to_speech",
    "video": "text_to_video",
    "design": "design_autofill",
    "model_3d": "text_to_3d",
}


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One generation as a provider sees it."""

    type: str
    operation: str
    prompt: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Stable for one generation across retries (the gateway passes the generation id): a
    #: provider whose API takes an idempotency key sends it, so a repeated call after a
    #: crash is not charged twice (see `Provider.idempotency_keys`).
    idempotency_key: str | None = None


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway resolved for one call: the platform's (`MEDIAHUB_<PROVIDER>_API_KEY`,
    `_API_SECRET`, `_BASE_URL`) or the calling tenant's own. `api_secret` is for providers
    that sign with a key pair (Kling's access key + secret key)."""

    api_key: str | None = None
    api_secret: str | None = None
    base_url: str | None = None


class ProviderOutput(msgspec.Struct, kw_only=True):
    """One output: its bytes, or (`data` empty) a `url` the gateway downloads through its
    egress guard and types by the bytes (`content_type` is then replaced)."""

    data: bytes = b""
    content_type: str = "application/octet-stream"
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    url: str | None = None


class ProviderResult(msgspec.Struct, kw_only=True):
    outputs: list[ProviderOutput]
    cost_usd_micros: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    detail: str = ""


class ProviderTask(msgspec.Struct, frozen=True, kw_only=True):
    """A job an asynchronous provider accepted: its id at the provider, and when to ask again."""

    task_id: str
    poll_after_s: float = 5.0


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

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class Provider(abc.ABC):
    """Base class of every provider. Capabilities are class attributes."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    media_types: ClassVar[frozenset[str]]
    operations: ClassVar[frozenset[str]]
    #: True for engines that run on this machine with no key and no network.
    local: ClassVar[bool] = False
    #: True when the provider needs an API key to work.
    needs_api_key: ClassVar[bool] = True
    #: True when the provider has no public endpoint to default to (self-hosted engines such
    #: as AUTOMATIC1111): it is unconfigured until `MEDIAHUB_<PROVIDER>_BASE_URL` is set.
    needs_base_url: ClassVar[bool] = False
    #: How many calls one gateway process runs at once before routing counts the provider
    #: as fully loaded (its `load` score falls to 0 and it ranks after ones with headroom).
    capacity: ClassVar[int] = 8
    #: True for providers whose jobs run remotely for a while (video, 3D): they implement
    #: `submit`, `poll` and `cancel`; the gateway records the task id before waiting on it.
    #: `generate` is still required (it may simply be `run_to_completion`).
    asynchronous: ClassVar[bool] = False
    #: The parameters the provider assumes when a request leaves them out. The gateway's
    #: result cache fills them in, so a request that spells out a default is recognised as
    #: identical to one that omits it.
    param_defaults: ClassVar[Mapping[str, Any]] = {}
    #: True when the provider sends `ProviderRequest.idempotency_key` to its API, so calling
    #: it again for the same generation is never charged twice. A call cut off by a crash is
    #: then simply repeated; for other providers the gateway does not repeat it (it fails
    #: over to the next candidate instead).
    idempotency_keys: ClassVar[bool] = False
    #: The provider's published prices that `estimate_cost` reads: price name → USD micros
    #: per the unit the provider's docs state. The class holds the published table; an
    #: operator overrides entries per process (`MEDIAHUB_<PROVIDER>_PRICES`, JSON), which
    #: `set_prices` applies to the instance.
    prices: Mapping[str, int] = {}

    def set_prices(self, overrides: Mapping[str, int]) -> None:
        """Replace some published prices on this instance; called by the gateway at start.

        Raises `ValueError` for a price name the table does not have or a value that is not
        a non-negative int (USD micros).
        """
        unknown = sorted(set(overrides) - set(self.prices))
        if unknown:
            raise ValueError(f"{self.name} has no prices named {unknown}; it has "
                             f"{sorted(self.prices)}")
        for key, value in overrides.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{self.name} price {key!r} must be a non-negative whole "
                                 f"number of USD micros, got {value!r}")
        self.prices = {**self.prices, **overrides}

    def validate(self, request: ProviderRequest) -> None:
        """Called before pricing; raises `InvalidParams` naming the bad parameter.

        By default the estimate is the check (providers parse their parameters there);
        override only when `estimate_cost` does not read them.
        """
        self.estimate_cost(request)

    @abc.abstractmethod
    def estimate_cost(self, request: ProviderRequest) -> int:
        """What the provider will charge for `request`, in USD micros (an upper bound).

        Called before anything is reserved; raises `InvalidParams` for a request the
        provider cannot accept.
        """

    @abc.abstractmethod
    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Run the request; returns the outputs and what it actually cost in USD micros."""

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks; returns whether the provider can serve now."""
        return Health(ok=True)

    def pricing(self) -> dict[str, Any]:
        """The published prices the estimate uses, for `GET /v1/providers`."""
        return {}

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Asynchronous providers: start the job and return its task (do not wait for it)."""
        raise NotImplementedError(f"{self.name} is not an asynchronous provider")

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | ProviderTask | None:
        """Asynchronous providers: None while the task runs, its result once done.

        A provider whose work has stages (Canva: autofill, then export) returns the next
        stage's `ProviderTask` when one stage ends: the gateway records it and polls that
        one from then on. Raises `ProviderError` when the task failed at the provider.
        """
        raise NotImplementedError(f"{self.name} is not an asynchronous provider")

    async def cancel(self, task: ProviderTask,  # noqa: B027 (optional hook)
                     credentials: Credentials, client: httpx.AsyncClient) -> None:
        """Asynchronous providers: stop a task (best effort; the default does nothing)."""


async def run_to_completion(provider: Provider, request: ProviderRequest,
                            credentials: Credentials, client: httpx.AsyncClient) -> ProviderResult:
    """`submit`, then `poll` every `poll_after_s` until a result: a ready-made `generate` for
    asynchronous providers. Cancelled (by a timeout, say), it cancels the task too."""
    task = await provider.submit(request, credentials, client)
    try:
        while True:
            result = await provider.poll(task, credentials, client)
            if isinstance(result, ProviderResult):
                return result
            if result is not None:
                task = result  # the next stage
            await asyncio.sleep(task.poll_after_s)
    except asyncio.CancelledError:
        await asyncio.shield(provider.cancel(task, credentials, client))
        raise
