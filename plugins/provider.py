"""The provider contract: what a provider plugin implements and what it exchanges.

Providers are objects; hooks only register them. A provider never reads settings, the database
or tenant configuration: the gateway passes in the request, the resolved credentials and a
shared `httpx.AsyncClient`. Failures are `plugins.errors.ProviderError`; the words for media
types and operations are in `plugins.vocabulary`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import msgspec

from plugins.errors import InvalidParams
from plugins.media import INPUT_NAMES, SAMPLES, MediaInput
from plugins.vocabulary import ParamLimits, ParamSpec, limit_problem

__all__ = [
    "Credentials",
    "DesignTemplate",
    "Health",
    "ModelSpec",
    "ParamLimits",
    "ParamSpec",
    "Provider",
    "ProviderOutput",
    "ProviderRequest",
    "ProviderResult",
    "ProviderTask",
    "TemplateField",
    "Voice",
    "check_params",
    "declared_params",
    "mapped_param",
    "run_to_completion",
]


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One generation as a provider sees it; built by the gateway for `validate`,
    `estimate_cost`, `generate` and `submit`.

    `type` and `operation` are words of `plugins.vocabulary` (one the provider declared it
    serves); `prompt` is the text (empty for operations that take none); `params` the
    request's plain parameters (JSON values, as the client sent them); input files arrive
    decoded in `inputs` and `samples`, never as base64 in `params` (see `plugins.media`).
    """

    type: str
    operation: str
    prompt: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Input files by name (`plugins.media.INPUT_NAMES`: `image`, `mask`, `image_tail`),
    #: from the client's `params.<name>` or `params.<name>_url`.
    inputs: dict[str, MediaInput] = msgspec.field(default_factory=dict)
    #: A voice clone's audio samples, in the client's order (`params.samples` or
    #: `params.sample_urls`).
    samples: list[MediaInput] = msgspec.field(default_factory=list)
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
    """What `generate` (or a finished `poll`) returns: at least one output, and what the
    provider actually charged in USD micros (never above `estimate_cost`)."""

    outputs: list[ProviderOutput]
    cost_usd_micros: int
    #: A `voice_clone`: the new voice's id at the provider, so the gateway records which
    #: tenant (and customer) owns it (the platform's account holds every tenant's clones).
    voice_id: str | None = None


class Voice(msgspec.Struct, frozen=True, kw_only=True):
    """One voice of `Provider.list_voices`. `category` is the provider's word; `premade`
    voices are everyone's, any other (a clone) only its owner's."""

    id: str
    name: str
    category: str = "premade"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    description: str | None = None
    preview_url: str | None = None


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """What `Provider.health` returns: whether the provider can serve now, and why not."""

    ok: bool
    detail: str = ""


class ProviderTask(msgspec.Struct, frozen=True, kw_only=True):
    """A job an asynchronous provider accepted: its id at the provider, and when to ask again."""

    task_id: str
    poll_after_s: float = 5.0


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One model a provider offers (`Provider.models`): the operations it serves and the
    params that select it (OpenAI's `{"model": "dall-e-3"}`, Stability's `{"engine": "sd3",
    "model": "sd3.5-large"}`). The gateway's OpenAI-compatible surface lists each as
    `<provider>/<model>` and sends these params when a request names it."""

    operations: frozenset[str]
    params: Mapping[str, Any] = msgspec.field(default_factory=dict)
    #: This model's narrower bounds on some parameters, by parameter name (a video model
    #: taking only 5 or 10 seconds); the gateway refuses a value outside them when the
    #: request selects this model (`model_of`).
    limits: Mapping[str, ParamLimits] = msgspec.field(default_factory=dict)


class TemplateField(msgspec.Struct, frozen=True, kw_only=True):
    """One field a design template fills (`DesignTemplate.fields`): its name in
    `params.data`, its kind (`text`, `image` or `chart`, Canva's dataset words) and a label
    for people."""

    name: str
    kind: str
    label: str


class DesignTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """One template of `Provider.list_templates`: its id (what `design_autofill` takes, as
    `params.template` or `params.brand_template_id`), its fields, the formats it exports to,
    and whether it is the account's own brand template (Canva) rather than a built-in one."""

    id: str
    name: str
    fields: tuple[TemplateField, ...] = ()
    formats: tuple[str, ...] = ("png",)
    brand: bool = False


class Provider(abc.ABC):
    """Base class of every provider. Capabilities are class attributes.

    One instance per process, registered by a plugin's `register_providers` hook when the
    plugin host is built; the gateway then calls `validate` and `estimate_cost` when it plans
    a generation (before anything is reserved), `generate` (or `submit`, then `poll`) when a
    worker runs it, and `health` on a schedule. Methods get everything as arguments.
    """

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
    #: The parameters the provider reads from `ProviderRequest.params` (and the input files
    #: it takes: `image`, `mask`, `image_tail`, `samples`, kind `media`/`media_list`), by the
    #: name clients send. Shared ideas use `plugins.vocabulary.COMMON_PARAMS` names (take them
    #: with `vocabulary.common(...)`); the provider maps them to its API's words itself. The
    #: gateway refuses a parameter no candidate provider declares (422 `unknown_param`), so
    #: nothing unread is billed. None (the default) means undeclared: any name passes; the
    #: contract check (`plugins.testing`) flags it.
    params: ClassVar[Mapping[str, ParamSpec] | None] = None
    #: The models a request may name, by the provider's own model name (see `ModelSpec`).
    #: Empty (the default): the provider has one model, itself.
    models: ClassVar[Mapping[str, ModelSpec]] = {}
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
        """Run the request; called by a worker (synchronous providers, and tests for any).

        Returns the outputs and what it actually cost in USD micros (at most the estimate);
        raises `ProviderError` for a failure (its code tells routing whether another provider
        may serve the request).
        """

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks; returns whether the provider can serve now."""
        return Health(ok=True)

    def pricing(self) -> dict[str, Any]:
        """The published prices the estimate uses; called for `GET /v1/providers`, returns
        a JSON-encodable dict."""
        return {}

    async def list_voices(self, credentials: Credentials,
                          client: httpx.AsyncClient) -> list[Voice] | None:
        """The voices the account offers (premade and cloned); called for `GET /v1/voices`,
        which shows premade ones and the caller's own clones only. None (the default): the
        provider has no voice catalogue. Raises `ProviderError` for a failed call."""
        return None

    async def list_templates(self, credentials: Credentials,
                             client: httpx.AsyncClient) -> list[DesignTemplate] | None:
        """The design templates `design_autofill` can fill (a local engine's built-in ones,
        Canva's brand templates of the account); called for `GET /v1/design/templates`.
        None (the default): the provider has no template catalogue. Raises `ProviderError`
        for a failed call."""
        return None

    async def delete_voice(self, voice_id: str, credentials: Credentials,
                           client: httpx.AsyncClient) -> None:
        """Delete a clone at the provider; called for `DELETE /v1/voices/{id}` once the
        gateway checked the caller owns it. Returns nothing; raises `ProviderError` (a voice
        already gone at the provider is not an error)."""
        raise NotImplementedError(f"{self.name} cannot delete voices")

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Asynchronous providers: start the job; called by a worker instead of `generate`.

        Returns the task (do not wait for it); the gateway records it before polling."""
        raise NotImplementedError(f"{self.name} is not an asynchronous provider")

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | ProviderTask | None:
        """Asynchronous providers: called by scheduled poll jobs until the task ends; returns
        None while the task runs, its result once done.

        A provider whose work has stages (Canva: autofill, then export) returns the next
        stage's `ProviderTask` when one stage ends: the gateway records it and polls that
        one from then on. Raises `ProviderError` when the task failed at the provider.
        """
        raise NotImplementedError(f"{self.name} is not an asynchronous provider")

    async def cancel(self, task: ProviderTask,  # noqa: B027 (optional hook)
                     credentials: Credentials, client: httpx.AsyncClient) -> None:
        """Asynchronous providers: stop a task; called when a generation is canceled or its
        task timed out (best effort; returns nothing; the default does nothing)."""


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


#: The API-level forms of the input files that the gateway fetches (`params.image_url` is the
#: `image` input), so a provider declares the input once under its own name.
URL_FORMS: Mapping[str, str] = {**{f"{name}_url": name for name in INPUT_NAMES},
                                "sample_urls": SAMPLES}


def declared_params(provider: Provider, operation: str) -> Mapping[str, ParamSpec] | None:
    """The parameters `provider` reads for `operation` (None when it declares none at all);
    called by the gateway's planning and the contract check."""
    if provider.params is None:
        return None
    return {name: spec for name, spec in provider.params.items()
            if not spec.operations or operation in spec.operations}


def _kind_problem(spec: ParamSpec, value: Any) -> str | None:
    """Why `value` does not fit `spec` (None when it does)."""
    kind = spec.kind
    if kind in ("media", "media_list"):
        return None  # files: plugins.media and the gateway's input fetcher check them
    if value is None:
        return None  # JSON null: "not given", as every provider reads `params.get`
    number = isinstance(value, int | float) and not isinstance(value, bool)
    fits = {"string": isinstance(value, str), "integer": number and isinstance(value, int),
            "number": number, "boolean": isinstance(value, bool),
            "scalar": number or isinstance(value, str | bool),
            "list": isinstance(value, list), "object": isinstance(value, dict)}[kind]
    if not fits:
        article = "an" if kind[0] in "aeiou" else "a"
        return f"must be {article} {kind}"
    if isinstance(value, str | list | dict) and len(value) > spec.max_length:
        unit = {str: "characters", list: "items", dict: "keys"}[type(value)]
        return f"must be at most {spec.max_length} {unit}"
    return None


def check_params(provider: Provider, request: ProviderRequest) -> None:
    """Check the request's parameter names and value kinds against `provider.params`;
    called by the gateway before `validate`. Returns nothing; raises `InvalidParams` with
    code `unknown_param` for a name the provider does not read for the operation, or
    `invalid_parameter` for a value of the wrong kind or length, outside the declared
    `choices` or `minimum`..`maximum`, or outside the limits of the model the request
    selects (`ModelSpec.limits`). A provider that declares nothing (`params = None`)
    passes."""
    declared = declared_params(provider, request.operation)
    if declared is None:
        return
    given = [(key, URL_FORMS.get(key, key), value) for key, value in request.params.items()]
    given += [(name, name, None) for name in request.inputs]
    if request.samples:
        given.append((SAMPLES, SAMPLES, None))
    for key, name, value in given:
        spec = declared.get(name)
        if spec is None:
            raise InvalidParams(f"{key} is not a parameter of {request.operation} with "
                                f"{provider.name}", param=f"params.{key}",
                                code="unknown_param")
        problem = _kind_problem(spec, value) or limit_problem(
            value, choices=spec.choices, minimum=spec.minimum, maximum=spec.maximum)
        if problem is not None:
            raise InvalidParams(f"{key} {problem}", param=f"params.{key}")
    model = model_of(provider, request.params, request.operation)
    if model is None:
        return
    for name, limits in model[1].limits.items():
        value = request.params.get(name)
        problem = limit_problem(value, choices=limits.choices, minimum=limits.minimum,
                                maximum=limits.maximum)
        if problem is not None:
            raise InvalidParams(f"{name} {problem} with model {model[0]}",
                                param=f"params.{name}")


def model_of(provider: Provider, params: Mapping[str, Any],
             operation: str) -> tuple[str, ModelSpec] | None:
    """The model of `provider.models` a request selects (its name and spec), or None: the
    first serving `operation` whose selecting params all equal the request's, a param the
    request leaves out counting as `provider.param_defaults` has it. Called by
    `check_params` to apply the model's `limits`."""
    for name, spec in provider.models.items():
        if spec.operations and operation not in spec.operations:
            continue
        if spec.params and all(params.get(key, provider.param_defaults.get(key)) == value
                               for key, value in spec.params.items()):
            return name, spec
    return None


def mapped_param(params: Mapping[str, Any], common: str, own: str) -> dict[str, Any]:
    """`params` with the shared name `common` (say `duration_s`) under the provider's own
    word `own` (Runway's `duration`); called by providers whose API uses another word, so
    the shared name is honoured rather than ignored. A whole number (5.0) becomes an int.
    Raises `InvalidParams` when both names are given."""
    if common not in params:
        return dict(params)
    if own in params:
        raise InvalidParams(f"give params.{common} or params.{own}, not both",
                            param=f"params.{own}")
    mapped = {k: v for k, v in params.items() if k != common}
    value = params[common]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    mapped[own] = value
    return mapped
