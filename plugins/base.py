"""The provider contract: what a provider plugin implements and what it exchanges.

Providers are objects; hooks only register them. A provider never reads settings, the database
or tenant configuration: the gateway passes in the request, the resolved credentials and a
shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import abc
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


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str | None = None
    base_url: str | None = None


class ProviderOutput(msgspec.Struct, kw_only=True):
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


class ProviderResult(msgspec.Struct, kw_only=True):
    outputs: list[ProviderOutput]
    cost_usd_micros: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    detail: str = ""


class ProviderError(Exception):
    """A provider call failed. `retryable` errors may fail over to another provider."""

    def __init__(self, message: str, *, code: str, retryable: bool,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.retry_after_s = retry_after_s


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

    def validate(self, request: ProviderRequest) -> None:  # noqa: B027 (optional hook)
        """Called before pricing; raise `InvalidParams` naming the bad parameter."""

    @abc.abstractmethod
    def estimate_cost(self, request: ProviderRequest) -> int:
        """What the provider will charge for `request`, in USD micros (an upper bound)."""

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
