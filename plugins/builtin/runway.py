"""Runway's developer API (api.dev.runwayml.com): image-to-video and text-to-video tasks.

Wire format as Runway's official SDK (runwayml/sdk-python, generated from their OpenAPI spec)
and docs.dev.runwayml.com define it, API version `2024-11-06`:

- `POST /v1/image_to_video` {model, promptImage, promptText?, ratio, duration, seed?, audio?}
  and `POST /v1/text_to_video` {model, promptText, ratio, duration, seed?, audio?} answer
  `{"id": "<uuid>"}`;
- `GET /v1/tasks/{id}` answers {id, status: PENDING|THROTTLED|RUNNING|SUCCEEDED|FAILED|
  CANCELLED, progress?, output?: [url], failure?, failureCode?}; output URLs are presigned
  and expire within 24-48 hours, so the gateway downloads them at once;
- `DELETE /v1/tasks/{id}` cancels a running task (or deletes a finished one);
- `GET /v1/organization` {creditBalance, tier, usage} is the cheap authenticated health call.

Runway bills credits ($0.01 each) per second of video; the task does not report what it
charged, so a task is charged what its submit was priced at (carried in the task id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins import media
from plugins.errors import InvalidParams, ProviderError, error_from_exception, error_from_response
from plugins.hookspecs import hookimpl
from plugins.media import MediaInput
from plugins.provider import (
    Credentials,
    Health,
    ModelSpec,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
    mapped_param,
    run_to_completion,
)
from plugins.vocabulary import ParamLimits, ParamSpec, common, declare

BASE_URL: Final = "https://api.dev.runwayml.com"
API_VERSION: Final = "2024-11-06"
#: One Runway credit in USD micros ($0.01).
CREDIT_USD_MICROS: Final = 10_000
#: Each HTTP call's limits (the gateway bounds the whole call too).
TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
DEFAULT_POLL_AFTER_S: Final = 5.0
#: promptText limit: 1000 UTF-16 code units (SDK docstrings).
MAX_PROMPT_UTF16: Final = 1000
#: A data URI in the JSON body may be at most 5 MB (docs.dev.runwayml.com/assets/inputs).
MAX_DATA_URI_CHARS: Final = 5 * 1024 * 1024
#: The input types Runway takes.
IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp"})
MAX_SEED: Final = 4_294_967_295

_GEN4_RATIOS: Final = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
_VEO_RATIOS: Final = ("1280:720", "720:1280", "1080:1920", "1920:1080")
_TWO_TO_TEN: Final = tuple(range(2, 11))


class Model(msgspec.Struct, frozen=True, kw_only=True):
    """What one Runway model accepts, per the SDK's request types."""

    #: Operation → the ratios that endpoint accepts for this model.
    ratios: Mapping[str, tuple[str, ...]]
    durations: tuple[int, ...]
    default_duration: int
    seed: bool = False
    #: True when the model takes `audio` (and is priced by it).
    audio: bool = False


MODELS: Final[Mapping[str, Model]] = {
    "gen4_turbo": Model(ratios={"image_to_video": _GEN4_RATIOS}, durations=_TWO_TO_TEN,
                        default_duration=5, seed=True),
    "gen4.5": Model(ratios={"image_to_video": _GEN4_RATIOS,
                            "text_to_video": ("1280:720", "720:1280")},
                    durations=_TWO_TO_TEN, default_duration=5, seed=True),
    "veo3.1": Model(ratios={"image_to_video": _VEO_RATIOS, "text_to_video": _VEO_RATIOS},
                    durations=(4, 6, 8), default_duration=8, audio=True),
    "veo3.1_fast": Model(ratios={"image_to_video": _VEO_RATIOS, "text_to_video": _VEO_RATIOS},
                         durations=(4, 6, 8), default_duration=8, audio=True),
    "veo3": Model(ratios={"image_to_video": _VEO_RATIOS, "text_to_video": _VEO_RATIOS},
                  durations=(8,), default_duration=8),
}
DEFAULT_MODEL: Final = {"image_to_video": "gen4_turbo", "text_to_video": "gen4.5"}


def _limits(spec: Model) -> dict[str, ParamLimits]:
    """A model's lengths and frames as `ModelSpec.limits` (the ratios of both its
    endpoints: which one applies depends on the operation, checked by `options`)."""
    durations = ParamLimits(choices=spec.durations)
    return {"duration_s": durations, "duration": durations,
            "ratio": ParamLimits(choices=tuple(dict.fromkeys(
                r for ratios in spec.ratios.values() for r in ratios)))}
DEFAULT_RATIO: Final = "1280:720"
ENDPOINTS: Final = {"image_to_video": "/v1/image_to_video", "text_to_video": "/v1/text_to_video"}

#: USD micros per second of video (credits per second x $0.01), by model; veo3.1 and
#: veo3.1_fast cost more with audio (`<model>_audio`).
PRICES: Final[Mapping[str, int]] = {
    "gen4_turbo": 5 * CREDIT_USD_MICROS,
    "gen4.5": 12 * CREDIT_USD_MICROS,
    "veo3": 40 * CREDIT_USD_MICROS,
    "veo3.1": 20 * CREDIT_USD_MICROS,
    "veo3.1_audio": 40 * CREDIT_USD_MICROS,
    "veo3.1_fast": 10 * CREDIT_USD_MICROS,
    "veo3.1_fast_audio": 15 * CREDIT_USD_MICROS,
}

RUNNING_STATES: Final = frozenset({"PENDING", "THROTTLED", "RUNNING"})


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """A request's checked options, and the body Runway is sent."""

    operation: str
    model: str
    ratio: str
    duration: int
    price_key: str
    body: dict[str, Any]


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[Any, ...], default: Any,
            what: str) -> Any:
    value = params.get(key, default)
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise InvalidParams(f"{key} must be one of {shown} {what}", param=f"params.{key}")
    return value


def _image(inputs: Mapping[str, MediaInput]) -> str:
    """The input image as the `data:` URI Runway takes in `promptImage`."""
    image = inputs.get("image")
    if image is None:
        raise InvalidParams("image_to_video needs params.image (or params.image_url)",
                            param="params.image")
    if image.content_type not in IMAGE_TYPES:
        raise InvalidParams("params.image must be a PNG, JPEG or WebP image (Runway takes no "
                            "other types)", param="params.image")
    uri = image.as_data_url()
    if len(uri) > MAX_DATA_URI_CHARS:
        raise InvalidParams("params.image is too large: Runway takes inline images up to 5 MB "
                            "encoded", param="params.image")
    media.image_size(image, "params.image")
    return uri


def options(request: ProviderRequest) -> Options:
    """The request's options checked against what Runway accepts; raises `InvalidParams`
    naming the bad parameter."""
    operation = request.operation
    if operation not in ENDPOINTS:
        raise InvalidParams(f"Runway does not serve {operation}", param="operation")
    # The shared `duration_s` is Runway's `duration` (it used to be ignored: the default
    # 5 s was made and billed whatever the client asked for).
    params = mapped_param(request.params, "duration_s", "duration")
    models = tuple(m for m, spec in MODELS.items() if operation in spec.ratios)
    model = _choice(params, "model", models, DEFAULT_MODEL[operation], f"for {operation}")
    spec = MODELS[model]
    ratio = _choice(params, "ratio", spec.ratios[operation], DEFAULT_RATIO, f"for {model}")
    duration = _choice(params, "duration", spec.durations, spec.default_duration,
                       f"(seconds) for {model}")
    prompt = request.prompt.strip()
    if len(prompt.encode("utf-16-le")) // 2 > MAX_PROMPT_UTF16:
        raise InvalidParams(f"the prompt must be at most {MAX_PROMPT_UTF16} characters for "
                            "Runway", param="prompt")
    body: dict[str, Any] = {"model": model, "ratio": ratio, "duration": duration}
    if (operation == "text_to_video" or model == "gen4.5") and not prompt:
        raise InvalidParams(f"{model} needs a prompt", param="prompt")
    if prompt:
        body["promptText"] = prompt
    if operation == "image_to_video":
        body["promptImage"] = _image(request.inputs)
    elif "image" in request.inputs:
        raise InvalidParams("params.image is only used by image_to_video", param="params.image")
    if "seed" in params:
        if not spec.seed:
            raise InvalidParams(f"{model} takes no seed", param="params.seed")
        seed = params["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidParams(f"seed must be an integer from 0 to {MAX_SEED}",
                                param="params.seed")
        body["seed"] = seed
    price_key = model
    if spec.audio:
        audio = params.get("audio", False)
        if not isinstance(audio, bool):
            raise InvalidParams("audio must be true or false", param="params.audio")
        # Sent explicitly, so the price does not depend on Runway's default.
        body["audio"] = audio
        price_key = f"{model}_audio" if audio else model
    elif "audio" in params:
        raise InvalidParams(f"{model} takes no audio setting", param="params.audio")
    return Options(operation=operation, model=model, ratio=ratio, duration=duration,
                   price_key=price_key, body=body)


def _error_text(response: httpx.Response) -> str:
    """Runway's error body as one line: `error`, then each of `issues` (path: message)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return str(body)[:300]
    text = str(body.get("error") or body.get("message") or f"HTTP {response.status_code}")
    issues = body.get("issues")
    if isinstance(issues, list):
        parts = []
        for issue in issues:
            if isinstance(issue, dict):
                path = ".".join(str(p) for p in issue.get("path") or [])
                parts.append(f"{path}: {issue.get('message')}" if path
                             else str(issue.get("message")))
        if parts:
            text += " (" + "; ".join(parts) + ")"
    return text


def error_for(response: httpx.Response) -> ProviderError:
    """Classify a Runway error response.

    400 is a validation failure (final), except "You do not have enough credits", which is
    our account's problem, not the request's: `quota_exhausted`, retryable so another
    provider serves it. 401 auth, 429 rate limited (daily generation quota) with its
    Retry-After, 5xx server errors.
    """
    text = f"Runway: {_error_text(response)}"
    if response.status_code in (400, 402) and "enough credits" in text.lower():
        return ProviderError.quota_exhausted(text)
    return error_from_response(response, text)


def failure_error(failure_code: str | None, failure: str | None) -> ProviderError:
    """A FAILED task's `failureCode` as a classified error (docs.dev.runwayml.com/errors/
    task-failures): SAFETY.* content policy (final); INTERNAL.* (BAD_OUTPUT included,
    which Runway says to retry) server error (retryable); ASSET.* and INPUT_PREPROCESSING.*
    an input the model could not use (final); anything else a retryable server error."""
    code = failure_code or ""
    text = f"Runway task failed ({code or 'no failure code'}): {failure or 'no reason given'}"
    head = code.split(".", 1)[0]
    if head == "SAFETY":
        return ProviderError.content_policy(text)
    if head in ("ASSET", "INPUT_PREPROCESSING"):
        return ProviderError.invalid_input(text)
    return ProviderError.server_error(text)


def _task_id(runway_id: str, cost_usd_micros: int) -> str:
    # The pipeline keeps only the task id between polls (and across restarts): it carries
    # what the submit was priced at, so the poll that finds the video charges that.
    return f"{runway_id}:{cost_usd_micros}"


def _split_task_id(task_id: str) -> tuple[str, int]:
    runway_id, _, cost = task_id.rpartition(":")
    if not runway_id or not cost.isdigit():
        raise ProviderError(f"not a Runway task id of this provider: {task_id!r}",
                            code="provider_error", retryable=False)
    return runway_id, int(cost)


class Runway(Provider):
    name = "runway"
    description = ("Runway (api.dev.runwayml.com): image-to-video with gen4_turbo, gen4.5 and "
                   "Veo 3/3.1; text-to-video with gen4.5 and Veo 3/3.1.")
    media_types = frozenset({"video"})
    operations = frozenset({"image_to_video", "text_to_video"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        model: ModelSpec(operations=frozenset(spec.ratios), params={"model": model},
                         limits=_limits(spec))
        for model, spec in MODELS.items()}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("image"),
        "model": declare("model", choices=tuple(MODELS),
                         description="image_to_video: gen4_turbo (default); text_to_video: "
                                     "gen4.5 (default); veo3, veo3.1, veo3.1_fast for both"),
        "duration_s": declare("duration_s", minimum=2, maximum=10,
                              description="Seconds of video; each model takes its own "
                                          "lengths (gen4: 2 to 10; veo3.1: 4, 6 or 8)"),
        "seed": declare("seed", minimum=0, maximum=MAX_SEED,
                        description="gen4 models only: the same seed repeats a result"),
        "ratio": ParamSpec(kind="string", max_length=16,
                           choices=tuple(dict.fromkeys(r for m in MODELS.values()
                                                       for rs in m.ratios.values()
                                                       for r in rs)),
                           default=DEFAULT_RATIO,
                           description="The frame in pixels, width:height"),
        #: Runway's own word for `duration_s` (integer seconds), still accepted.
        "duration": ParamSpec(kind="integer", minimum=2, maximum=10,
                              description="The same as duration_s"),
        "audio": ParamSpec(kind="boolean", default=False,
                           description="veo3.1 models only: with a soundtrack (costs more)"),
    }
    asynchronous = True
    capacity = 4
    param_defaults = {"ratio": DEFAULT_RATIO}
    prices: Mapping[str, int] = PRICES

    def __init__(self, *, poll_after_s: float = DEFAULT_POLL_AFTER_S) -> None:
        #: The hint returned with each task (Runway asks for no more than one poll per 5 s).
        self.poll_after_s = poll_after_s

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the price of the request's seconds of video
        at its model's rate, in USD micros; raises `InvalidParams`."""
        opts = options(request)
        return opts.duration * self.prices[opts.price_key]

    @staticmethod
    def _headers(credentials: Credentials) -> dict[str, str]:
        if not credentials.api_key:
            raise ProviderError.auth("no Runway API key is configured")
        return {"Authorization": f"Bearer {credentials.api_key}",
                "X-Runway-Version": API_VERSION}

    @staticmethod
    def _url(credentials: Credentials, path: str) -> str:
        return (credentials.base_url or BASE_URL).rstrip("/") + path

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Called by the pipeline to start the task; returns it with the poll hint. Raises
        `ProviderError` classified from Runway's answer (or the transport failure)."""
        opts = options(request)
        cost = opts.duration * self.prices[opts.price_key]
        try:
            response = await client.post(self._url(credentials, ENDPOINTS[opts.operation]),
                                         headers=self._headers(credentials), json=opts.body,
                                         timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_for(response)
        runway_id = _json(response).get("id")
        if not isinstance(runway_id, str) or not runway_id:
            raise ProviderError.server_error("Runway accepted the task but sent no id")
        return ProviderTask(task_id=_task_id(runway_id, cost), poll_after_s=self.poll_after_s)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        """Called by the pipeline's poll jobs: None while Runway runs the task, the video
        (its presigned URL, which the gateway downloads) once it succeeded; raises
        `ProviderError` when it failed or was cancelled at Runway."""
        runway_id, cost = _split_task_id(task.task_id)
        try:
            response = await client.get(self._url(credentials, f"/v1/tasks/{runway_id}"),
                                        headers=self._headers(credentials), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_for(response)
        body = _json(response)
        status = body.get("status")
        if status in RUNNING_STATES:
            return None
        if status == "SUCCEEDED":
            urls = [u for u in body.get("output") or [] if isinstance(u, str) and u]
            if not urls:
                raise ProviderError.server_error("Runway's task succeeded without an output")
            return ProviderResult(outputs=[ProviderOutput(url=u, content_type="video/mp4")
                                           for u in urls], cost_usd_micros=cost)
        if status == "FAILED":
            raise failure_error(_str_or_none(body.get("failureCode")),
                                _str_or_none(body.get("failure")))
        if status == "CANCELLED":
            raise ProviderError("the task was cancelled at Runway", code="provider_canceled",
                                retryable=False)
        raise ProviderError.server_error(f"Runway answered an unknown task status {status!r}")

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        """Called when the generation is cancelled or timed out: `DELETE /v1/tasks/{id}`
        (Runway cancels a running task). A task Runway no longer knows is fine."""
        runway_id, _ = _split_task_id(task.task_id)
        try:
            response = await client.delete(self._url(credentials, f"/v1/tasks/{runway_id}"),
                                           headers=self._headers(credentials), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code not in (200, 204, 404):
            raise error_for(response)

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Submit and poll until done (the gateway itself submits and polls instead)."""
        return await run_to_completion(self, request, credentials, client)

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: `GET /v1/organization`; healthy while the key works and
        the organization has credits left."""
        try:
            response = await client.get(self._url(credentials, "/v1/organization"),
                                        headers=self._headers(credentials), timeout=TIMEOUT)
        except (httpx.HTTPError, ProviderError) as exc:
            return Health(ok=False, detail=error_from_exception(exc).message)
        if response.status_code != 200:
            return Health(ok=False, detail=error_for(response).message)
        balance = _json(response).get("creditBalance")
        if not isinstance(balance, int) or isinstance(balance, bool):
            return Health(ok=False, detail="Runway sent no credit balance")
        if balance <= 0:
            return Health(ok=False, detail="the Runway organization has no credits left")
        return Health(ok=True, detail=f"{balance} credits left")

    def pricing(self) -> dict[str, Any]:
        """The per-second prices the estimate uses, for `GET /v1/providers`."""
        return {"usd_micros_per_second": dict(self.prices), "credit_usd_micros":
                CREDIT_USD_MICROS,
                "models": {name: {"operations": sorted(spec.ratios),
                                  "durations_s": list(spec.durations)}
                           for name, spec in MODELS.items()}}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError.server_error("Runway answered with a body that is not JSON") \
            from exc
    if not isinstance(body, dict):
        raise ProviderError.server_error("Runway answered with an unexpected body")
    return body


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Runway())
