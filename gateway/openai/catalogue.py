"""Model names on the OpenAI-compatible surface: `provider/model` for every model a tenant
may use, and OpenAI's bare names (`dall-e-3`, `tts-1`, `sora-2`, ...) mapped to the tenant's
choice.

A provider's models are what it declares (`Provider.models`); a provider that declares none
is one model, named after it (the offline engines `local-image`, `local-speech`, ... are the
vendor `local`: `local/image`, `local/speech`). A bare OpenAI name goes to `openai/<name>` when
the tenant may use that, else to the tenant's routing choice for the media type (its
allowed providers, by its strategy): a tenant without OpenAI still serves `dall-e-3`
requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.core.runtime import Runtime
from gateway.providers.allowed import allowed
from gateway.providers.states import configured
from plugins.provider import Provider
from plugins.vocabulary import DEFAULT_OPERATIONS, TYPE_OPERATIONS, MediaType
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.models import Tenant

#: OpenAI's own model names, by the media type they make.
BARE_NAMES: Final[Mapping[str, MediaType]] = {
    "dall-e-2": "image", "dall-e-3": "image", "gpt-image-1": "image",
    "gpt-image-1-mini": "image",
    "tts-1": "audio", "tts-1-hd": "audio", "gpt-4o-mini-tts": "audio",
    "sora-2": "video", "sora-2-pro": "video",
}
#: Who owns a bare name that is routed, in `GET /v1/models`.
ROUTED_OWNER: Final = "mediahub"


@dataclass(frozen=True, slots=True)
class Entry:
    """One model a tenant may name: its id, the provider serving it, the operations it does
    and the params that select it."""

    id: str
    provider: str
    operations: frozenset[str]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request naming a model goes: a pinned provider with the params selecting its
    model, or (provider None) the tenant's routing."""

    model: str
    provider: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def _ids(provider: Provider) -> list[tuple[str, frozenset[str], Mapping[str, Any]]]:
    if provider.models:
        return [(f"{provider.name}/{name}", spec.operations, spec.params)
                for name, spec in provider.models.items()]
    name = provider.name
    if provider.local and name.startswith("local-"):
        name = "local/" + name.removeprefix("local-")
    return [(name, provider.operations, {})]


def entries(runtime: Runtime, tenant: Tenant) -> list[Entry]:
    """Every `provider/model` the tenant may use: providers configured (the platform's key
    or the tenant's own) that its routing allows; called for `GET /v1/models` and to
    resolve a name."""
    found: list[Entry] = []
    for provider in runtime.plugins.all():
        if not (configured(runtime, provider, own=tenant.provider_credentials)
                and allowed(runtime, tenant, provider)):
            continue
        found.extend(Entry(id=model_id, provider=provider.name, operations=operations,
                           params=params)
                     for model_id, operations, params in _ids(provider))
    return found


def _routable(runtime: Runtime, tenant: Tenant, media_type: MediaType) -> bool:
    operation = DEFAULT_OPERATIONS[media_type]
    return any(operation in e.operations for e in entries(runtime, tenant))


def bare_names(runtime: Runtime, tenant: Tenant) -> dict[str, str]:
    """The bare OpenAI names the tenant can be served, each with who serves it (a
    `provider/model` id, or `mediahub` for the tenant's routing); for `GET /v1/models`."""
    ids = {e.id for e in entries(runtime, tenant)}
    named: dict[str, str] = {}
    for name, media_type in BARE_NAMES.items():
        if f"openai/{name}" in ids:
            named[name] = f"openai/{name}"
        elif _routable(runtime, tenant, media_type):
            named[name] = ROUTED_OWNER
    return named


def resolve(runtime: Runtime, tenant: Tenant, model: str | None, operation: str) -> Target:
    """Where a request for `operation` naming `model` goes; called by the translation of
    every OpenAI-shaped request before it is submitted.

    None (the client named no model) is the tenant's routing. Raises `NotFound`
    (`model_not_found`) for a name the tenant cannot use, `InvalidRequest`
    (`model_not_supported`) for a model that does not do `operation`.
    """
    if model is None:
        return Target(model="")
    known = {e.id: e for e in entries(runtime, tenant)}
    entry = known.get(model)
    if entry is None and model in BARE_NAMES:
        if operation not in TYPE_OPERATIONS[BARE_NAMES[model]]:
            raise InvalidRequest(f"the model {model!r} cannot do {operation}",
                                 code="model_not_supported", param="model")
        entry = known.get(f"openai/{model}")
        if entry is None or operation not in entry.operations:
            return Target(model=model)  # the tenant's routing choice for the media type
    if entry is None:
        raise NotFound(f"The model `{model}` does not exist or you do not have access to it "
                       "(GET /v1/models lists yours)", code="model_not_found", param="model")
    if operation not in entry.operations:
        raise InvalidRequest(f"the model {model!r} cannot do {operation}",
                             code="model_not_supported", param="model")
    return Target(model=model, provider=entry.provider, params=entry.params)


def model_of(runtime: Runtime, provider_name: str, params: Mapping[str, Any]) -> str:
    """The `provider/model` id a generation ran with (for OpenAI's `model` fields): the
    provider's model whose selecting params the generation's params hold."""
    provider = runtime.plugins.get(provider_name)
    if provider is None:
        return provider_name
    ids = _ids(provider)
    for model_id, _, selecting in ids:
        if selecting and all(params.get(k) == v for k, v in selecting.items()):
            return model_id
    return ids[0][0] if len(ids) == 1 else provider_name
