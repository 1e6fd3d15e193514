"""The provider contract as a test any provider can run, built-in or third-party.

    from plugins.provider import ProviderRequest
    from plugins.testing import check_provider_contract, sample_image

    async def test_my_provider_keeps_the_contract() -> None:
        request = ProviderRequest(type="audio", operation="text_to_speech", prompt="hello")
        await check_provider_contract(MyProvider(), request)

    async def test_my_provider_edits_an_image() -> None:
        request = ProviderRequest(type="image", operation="image_edit", prompt="add a moon",
                                  inputs={"image": sample_image()})
        await check_provider_contract(MyProvider(), request)

`check_provider_contract` raises `AssertionError` listing every broken rule (it does not rely
on `assert` statements, so it also works under `python -O` and outside pytest). Only the
provider's own methods run; pass `credentials` and an `httpx.AsyncClient` (for instance one
with an `httpx.MockTransport`) when the provider needs a key or calls a remote API.
`request_from_params` builds a request from API-style params the way the gateway does
(inline `data:` URL inputs decoded), for tests written against the public API's shapes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec
from PIL import Image

from plugins.errors import InvalidParams
from plugins.media import INPUT_NAMES, SAMPLES, MediaInput, split_inputs
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    _kind_problem,
    check_params,
)
from plugins.vocabulary import COMMON_PARAMS, MEDIA_TYPES, OPERATIONS, ParamSpec, limit_problem

#: The media types and operations a provider may declare (`plugins.vocabulary`).
KNOWN_MEDIA_TYPES: frozenset[str] = frozenset(MEDIA_TYPES)
KNOWN_OPERATIONS: frozenset[str] = frozenset(OPERATIONS)
#: A provider name is what clients pin (`"provider": "..."`, at most 64 characters) and what
#: `MEDIAHUB_<NAME>_API_KEY` is derived from.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: A parameter name: what clients write after `params.`.
PARAM_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.IGNORECASE)


def request_from_params(*, type: str, operation: str, prompt: str = "",
                        params: Mapping[str, Any] | None = None,
                        idempotency_key: str | None = None) -> ProviderRequest:
    """A `ProviderRequest` as the gateway builds it from an API request's fields.

    The input media among `params` (`image`, `mask`, `image_tail` as `data:` URLs, `samples`
    as a list of them) are decoded into `inputs` and `samples`; the rest stays in `params`.
    Returns the request; raises `InvalidParams` naming a malformed input, as the gateway
    answers 422 for it.
    """
    plain, inputs, samples = split_inputs(params or {})
    return ProviderRequest(type=type, operation=operation, prompt=prompt, params=plain,
                           inputs=inputs, samples=samples, idempotency_key=idempotency_key)


def sample_image(width: int = 64, height: int = 64, *,
                 color: tuple[int, int, int] = (200, 120, 40)) -> MediaInput:
    """A small PNG input (`inputs={"image": sample_image()}`) for sample requests of
    operations that take an image."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return MediaInput(data=out.getvalue(), content_type="image/png")


def request_problems(request: ProviderRequest) -> list[str]:
    """What is wrong with a sample request as the gateway would never build it (an empty
    list when nothing is): input media left in `params`, or inputs that are not
    `MediaInput`s under a known name."""
    problems: list[str] = []
    for name in (*INPUT_NAMES, SAMPLES):
        if name in request.params:
            problems.append(f"the sample request carries params.{name}: input media go "
                            f"decoded in ProviderRequest.inputs / .samples (see "
                            f"request_from_params)")
    for name, value in request.inputs.items():
        if name not in INPUT_NAMES:
            problems.append(f"the sample request has an input named {name!r}; known: "
                            f"{', '.join(INPUT_NAMES)}")
        if not isinstance(value, MediaInput):
            problems.append(f"inputs[{name!r}] must be a MediaInput")
    if not all(isinstance(value, MediaInput) for value in request.samples):
        problems.append("samples must be MediaInputs")
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cost_problem(what: str, value: object) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{what} must be an int of USD micros, got {value!r}"
    if value < 0:
        return f"{what} must not be negative, got {value!r}"
    return None


def class_problems(provider: Provider) -> list[str]:
    """What is wrong with the provider's class attributes (an empty list when nothing is)."""
    problems: list[str] = []
    kind = type(provider).__name__
    name = getattr(provider, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        problems.append(f"{kind}.name must be 1-64 of [a-z0-9_-] starting with a letter or "
                        f"digit, got {name!r}")
    for attribute, known in (("media_types", KNOWN_MEDIA_TYPES),
                             ("operations", KNOWN_OPERATIONS)):
        value = getattr(provider, attribute, None)
        if not isinstance(value, frozenset) or not value:
            problems.append(f"{kind}.{attribute} must be a non-empty frozenset, got {value!r}")
            continue
        unknown = sorted(str(v) for v in value - known)
        if unknown:
            problems.append(f"{kind}.{attribute} has unknown values {unknown}; "
                            f"known: {sorted(known)}")
    for attribute in ("local", "needs_api_key", "needs_base_url", "asynchronous",
                      "idempotency_keys"):
        if not isinstance(getattr(provider, attribute, None), bool):
            problems.append(f"{kind}.{attribute} must be a bool")
    capacity = getattr(provider, "capacity", 1)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        problems.append(f"{kind}.capacity must be a positive int, got {capacity!r}")
    if getattr(provider, "asynchronous", False) is True:
        for method in ("submit", "poll"):
            if getattr(type(provider), method, None) is getattr(Provider, method, None):
                problems.append(f"{kind} is asynchronous but does not implement {method}()")
    if not isinstance(getattr(provider, "description", None), str):
        problems.append(f"{kind}.description must be a str")
    pricing: object = provider.pricing()
    try:
        msgspec.json.encode(pricing)
    except (TypeError, msgspec.EncodeError) as exc:
        problems.append(f"{kind}.pricing() must be JSON-encodable ({exc})")
    if not isinstance(pricing, dict):
        problems.append(f"{kind}.pricing() must return a dict, got {type(pricing).__name__}")
    return problems


def params_problems(provider: Provider) -> list[str]:
    """What is wrong with the provider's `params` declaration (an empty list when nothing
    is): undeclared, a bad name or spec, an operation it does not serve, a shared
    vocabulary name with another kind, or an input file not declared as media."""
    kind = type(provider).__name__
    declared: object = getattr(provider, "params", None)
    if declared is None:
        return [f"{kind}.params is not declared: list the parameters the provider reads "
                f"(a mapping of name to plugins.vocabulary.ParamSpec; {{}} for none), so the "
                f"gateway can refuse the ones it would ignore"]
    if not isinstance(declared, Mapping):
        return [f"{kind}.params must be a mapping of name to ParamSpec, got {declared!r}"]
    problems: list[str] = []
    served: object = getattr(provider, "operations", frozenset())
    for name, spec in declared.items():
        where = f"{kind}.params[{name!r}]"
        if not isinstance(name, str) or not PARAM_NAME_PATTERN.fullmatch(name):
            problems.append(f"{where}: a name must be 1-64 of [a-z0-9_] starting with a letter")
        if not isinstance(spec, ParamSpec):
            problems.append(f"{where} must be a ParamSpec, got {type(spec).__name__}")
            continue
        if not _is_int(spec.max_length) or spec.max_length < 1:
            problems.append(f"{where}.max_length must be a positive int")
        if isinstance(served, frozenset) and not spec.operations <= served:
            problems.append(f"{where}.operations names operations the provider does not "
                            f"serve: {sorted(spec.operations - served)}")
        shared = COMMON_PARAMS.get(name)
        if shared is not None and shared.kind != spec.kind:
            problems.append(f"{where} is the shared vocabulary's {name!r} and must be of kind "
                            f"{shared.kind!r} (plugins.vocabulary.COMMON_PARAMS), not "
                            f"{spec.kind!r}; give the provider's own meaning its own name")
        media = name in (*INPUT_NAMES, SAMPLES)
        if media != (spec.kind in ("media", "media_list")):
            problems.append(f"{where}: kinds media and media_list are for the input files "
                            f"{', '.join((*INPUT_NAMES, SAMPLES))} only, and those take them")
        problems += _bounds_problems(where, spec)
    problems += _model_problems(provider, declared)
    return problems


def _bounds_problems(where: str, spec: ParamSpec) -> list[str]:
    """What is wrong with a spec's `choices`/`minimum`/`maximum`/`default`: an empty or
    ill-kinded choice list, a range on a non-number, an inverted range, or a default that
    its own declaration would refuse (the studio preselects it; the gateway must take it)."""
    problems: list[str] = []
    numeric = spec.kind in ("integer", "number", "scalar")
    if spec.choices is not None:
        if not spec.choices:
            problems.append(f"{where}.choices is empty: leave it None for any value")
        for choice in spec.choices:
            if _kind_problem(spec, choice) is not None:
                problems.append(f"{where}.choices has {choice!r}, not of kind {spec.kind!r}")
    if (spec.minimum is not None or spec.maximum is not None) and not numeric:
        problems.append(f"{where}: minimum/maximum are for numbers, not kind {spec.kind!r}")
    if (spec.minimum is not None and spec.maximum is not None
            and spec.minimum > spec.maximum):
        problems.append(f"{where}.minimum is above its maximum")
    if spec.default is not None:
        problem = _kind_problem(spec, spec.default) or limit_problem(
            spec.default, choices=spec.choices, minimum=spec.minimum, maximum=spec.maximum)
        if problem is not None:
            problems.append(f"{where}.default {spec.default!r} {problem}")
    return problems


def _model_problems(provider: Provider, declared: Mapping[str, ParamSpec]) -> list[str]:
    """What is wrong with the models' `limits`: one on an undeclared parameter, or one
    whose choices the parameter's own declaration refuses (the narrower bound must fit
    inside the wider one)."""
    problems: list[str] = []
    models: object = getattr(provider, "models", {})
    if not isinstance(models, Mapping):
        return [f"{type(provider).__name__}.models must be a mapping of name to ModelSpec"]
    for model, spec in models.items():
        for name, limits in spec.limits.items():
            where = f"{type(provider).__name__}.models[{model!r}].limits[{name!r}]"
            param = declared.get(name)
            if param is None:
                problems.append(f"{where} limits a parameter the provider does not declare")
                continue
            for choice in limits.choices or ():
                problem = _kind_problem(param, choice) or limit_problem(
                    choice, choices=param.choices, minimum=param.minimum,
                    maximum=param.maximum)
                if problem is not None:
                    problems.append(f"{where}.choices has {choice!r}, which {problem}")
    return problems


def _output_problems(index: int, output: object) -> list[str]:
    where = f"generate().outputs[{index}]"
    if not isinstance(output, ProviderOutput):
        return [f"{where} must be a ProviderOutput, got {type(output).__name__}"]
    problems: list[str] = []
    # An output may be a URL with no bytes: the gateway downloads it (ProviderOutput).
    by_url = (output.data == b"" and isinstance(output.url, str)
              and output.url.startswith(("http://", "https://")))
    if not by_url and (not isinstance(output.data, bytes) or not output.data):
        problems.append(f"{where}.data must be non-empty bytes (or empty with an http(s) url)")
    if not isinstance(output.content_type, str) or not _MIME.fullmatch(output.content_type):
        problems.append(f"{where}.content_type must be a MIME type like 'image/png', "
                        f"got {output.content_type!r}")
    for side in ("width", "height"):
        value = getattr(output, side)
        if value is not None and (not _is_int(value) or value <= 0):
            problems.append(f"{where}.{side} must be a positive int or None, got {value!r}")
    duration = output.duration_s
    if duration is not None and (not isinstance(duration, int | float)
                                 or isinstance(duration, bool) or duration < 0):
        problems.append(f"{where}.duration_s must be a non-negative number or None, "
                        f"got {duration!r}")
    return problems


def result_problems(result: object, estimate: int | None = None) -> list[str]:
    """What is wrong with what `generate` returned (an empty list when nothing is)."""
    if not isinstance(result, ProviderResult):
        return [f"generate() must return a ProviderResult, got {type(result).__name__}"]
    problems: list[str] = []
    if not isinstance(result.outputs, list) or not result.outputs:
        problems.append("generate() must return at least one output")
    else:
        for index, output in enumerate(result.outputs):
            problems.extend(_output_problems(index, output))
    cost = _cost_problem("generate().cost_usd_micros", result.cost_usd_micros)
    if cost is not None:
        problems.append(cost)
    elif estimate is not None and result.cost_usd_micros > estimate:
        problems.append(f"generate().cost_usd_micros ({result.cost_usd_micros}) must not exceed "
                        f"estimate_cost() ({estimate}): the estimate is an upper bound")
    return problems


async def check_provider_contract(provider: Provider, request: ProviderRequest, *,
                                  credentials: Credentials | None = None,
                                  client: httpx.AsyncClient | None = None) -> ProviderResult:
    """Check `provider` against the contract with one `request` it should serve.

    Checks the class attributes (`params` included: every parameter the sample request uses
    must be declared) and the request's shape, then `validate`, `estimate_cost`,
    `generate` and `health` once each. Raises `AssertionError` listing every problem found;
    returns the `ProviderResult` so the caller can check the media itself. Exceptions the
    provider raises (a refused request, a failed call) propagate unchanged.
    """
    shape = request_problems(request)
    problems = class_problems(provider) + params_problems(provider) + shape
    media_types: Any = getattr(provider, "media_types", None)
    operations: Any = getattr(provider, "operations", None)
    declared = all(isinstance(v, frozenset) and v for v in (media_types, operations))
    if declared and (request.type not in media_types or request.operation not in operations):
        problems.append(f"the sample request ({request.type}/{request.operation}) is not one "
                        f"the provider declares it serves")

    credentials = credentials if credentials is not None else Credentials()
    own_client = client is None
    http = client if client is not None else httpx.AsyncClient()
    try:
        try:
            if not shape:  # a malformed sample request is reported once, as such
                check_params(provider, request)
        except InvalidParams as exc:
            problems.append(f"the sample request's {exc.param} is refused by the provider's "
                            f"params declaration ({exc.message}): declare what it reads")
        provider.validate(request)
        estimate = provider.estimate_cost(request)
        estimate_problem = _cost_problem("estimate_cost()", estimate)
        if estimate_problem is not None:
            problems.append(estimate_problem)
        result = await provider.generate(request, credentials, http)
        problems.extend(result_problems(result, estimate if estimate_problem is None else None))
        health = await provider.health(credentials, http)
        if not isinstance(health, Health) or not isinstance(health.ok, bool):
            problems.append(f"health() must return a Health, got {health!r}")
    finally:
        if own_client:
            await http.aclose()

    if problems:
        name = getattr(provider, "name", type(provider).__name__)
        raise AssertionError(f"provider {name!r} breaks the contract:\n- "
                             + "\n- ".join(problems))
    return result
