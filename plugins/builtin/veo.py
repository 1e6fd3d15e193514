"""Google Veo through the Gemini API (generativelanguage.googleapis.com): text-to-video and
image-to-video as long-running operations.

The wire format, as verified (plugins/README.md, "Google Veo"):

- `POST /v1beta/models/{model}:predictLongRunning` with `x-goog-api-key`, body
  `{"instances": [{"prompt", "image"?: {"bytesBase64Encoded", "mimeType"}}], "parameters":
  {"aspectRatio", "durationSeconds", "resolution", "negativePrompt", "personGeneration",
  "sampleCount", "seed"}}` → an operation `{"name": "models/<model>/operations/<id>"}`.
- `GET /v1beta/{name}` → `{"name", "done": false}` while it runs; once done either
  `{"done": true, "response": {"generateVideoResponse": {"generatedSamples": [{"video":
  {"uri"}}], "raiMediaFilteredCount"?, "raiMediaFilteredReasons"?}}}` or `{"done": true,
  "error": {"code", "message", "status"}}`. A prompt refused by Google's safety filters ends
  done with no samples and `raiMediaFilteredCount` > 0 (Google does not charge for it).
- The video `uri` is a Files API download that needs the API key; it redirects to the file.
- Errors: `{"error": {"code", "message", "status", "details"}}`; a bad key is a *400*
  `INVALID_ARGUMENT` whose details carry reason `API_KEY_INVALID`.
- The Gemini API has no cancel for `models.operations` (only get and list), so `cancel` does
  nothing: the operation runs to its end at Google and is simply never collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

from plugins import media
from plugins import provider as contract
from plugins.errors import (
    AUTH,
    CONTENT_POLICY,
    InvalidParams,
    ProviderError,
    error_for_status,
    error_from_exception,
)
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
    run_to_completion,
)
from plugins.vocabulary import ParamLimits, ParamSpec, common, declare

BASE_URL: Final = "https://generativelanguage.googleapis.com"
API_VERSION: Final = "v1beta"
DEFAULT_MODEL: Final = "veo-3.0-generate-001"
ASPECT_RATIOS: Final = ("16:9", "9:16")
PERSON_GENERATION: Final = ("allow_all", "allow_adult", "dont_allow")
MAX_SEED: Final = 4_294_967_295
#: Videos are downloaded into memory before the gateway stores them: an 8 s 1080p Veo clip
#: is a few MB, so this only stops a runaway body.
MAX_VIDEO_BYTES: Final = 200 * 1024 * 1024
#: Per call (submit, one poll, one download); the pipeline bounds the whole task.
TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
DOWNLOAD_TIMEOUT: Final = httpx.Timeout(120.0, connect=10.0)
#: Google's own examples poll every 10 s; a video takes from ~30 s to a few minutes.
DEFAULT_POLL_AFTER_S: Final = 10.0
MAX_REDIRECTS: Final = 5
#: The task id carries what the cost depends on (`poll` sees only the task): the operation
#: name, the requested seconds and the number of videos, as `<name>;<seconds>s;<count>`.
_TASK_ID: Final = re.compile(r"(models/([^/;]+)/operations/[^;]+);(\d+)s;(\d+)")


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one Veo model accepts on the Gemini API."""

    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    max_samples: int


MODELS: Final[Mapping[str, ModelSpec]] = {
    "veo-3.0-generate-001": ModelSpec(durations=(4, 6, 8), resolutions=("720p", "1080p"),
                                      max_samples=1),
    "veo-3.0-fast-generate-001": ModelSpec(durations=(4, 6, 8),
                                           resolutions=("720p", "1080p"), max_samples=1),
    "veo-3.1-generate-preview": ModelSpec(durations=(4, 6, 8), resolutions=("720p", "1080p"),
                                          max_samples=1),
    "veo-2.0-generate-001": ModelSpec(durations=(5, 6, 8), resolutions=("720p",),
                                      max_samples=2),
}

#: Published prices, USD micros per second of generated video (Veo 3 models: video with
#: audio, which is what the Gemini API returns for them). Dates in plugins/README.md.
PRICES: Final[Mapping[str, int]] = {
    "veo-3.0-generate-001": 400_000,
    "veo-3.0-fast-generate-001": 150_000,
    "veo-3.1-generate-preview": 400_000,
    "veo-2.0-generate-001": 350_000,
}


class Options(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    duration_s: int
    sample_count: int
    body: dict[str, Any]


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...],
            default: str | None) -> str | None:
    value = params.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise InvalidParams(f"{key} must be one of {', '.join(allowed)}", param=f"params.{key}")
    return value


def _image(request: ProviderRequest) -> dict[str, str] | None:
    """The input image as Veo's `{"bytesBase64Encoded", "mimeType"}`, checked to be a real
    PNG/JPEG/WebP."""
    value = request.inputs.get("image")
    if request.operation != "image_to_video":
        if value is not None:
            raise InvalidParams("params.image is only used by image_to_video",
                                param="params.image")
        return None
    if value is None:
        raise InvalidParams("image_to_video needs params.image (or params.image_url)",
                            param="params.image")
    media.image_size(value, "params.image")
    return {"bytesBase64Encoded": value.as_base64(), "mimeType": value.content_type}


def options(request: ProviderRequest) -> Options:
    """The request's checked options and the Gemini API body; raises `InvalidParams` naming
    the bad parameter."""
    params = request.params
    model = params.get("model", DEFAULT_MODEL)
    if model not in MODELS:
        raise InvalidParams(f"model must be one of {', '.join(MODELS)}", param="params.model")
    spec = MODELS[model]
    duration = params.get("duration_s", spec.durations[-1])
    if isinstance(duration, bool) or duration not in spec.durations:
        raise InvalidParams(f"duration_s must be one of {', '.join(map(str, spec.durations))} "
                            f"for {model}", param="params.duration_s")
    samples = params.get("sample_count", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) \
            or not 1 <= samples <= spec.max_samples:
        raise InvalidParams(f"sample_count must be an integer from 1 to {spec.max_samples} "
                            f"for {model}", param="params.sample_count")
    parameters: dict[str, Any] = {
        "aspectRatio": _choice(params, "aspect_ratio", ASPECT_RATIOS, "16:9"),
        "resolution": _choice(params, "resolution", spec.resolutions, "720p"),
        "durationSeconds": int(duration),
        "sampleCount": samples,
    }
    person = _choice(params, "person_generation", PERSON_GENERATION, None)
    if person is not None:
        parameters["personGeneration"] = person
    negative = params.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str) or not negative.strip():
            raise InvalidParams("negative_prompt must be a non-empty string",
                                param="params.negative_prompt")
        parameters["negativePrompt"] = negative
    seed = params.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidParams(f"seed must be an integer from 0 to {MAX_SEED}",
                                param="params.seed")
        parameters["seed"] = seed
    instance: dict[str, Any] = {"prompt": request.prompt}
    image = _image(request)
    if image is not None:
        instance["image"] = image
    return Options(model=model, duration_s=int(duration), sample_count=samples,
                   body={"instances": [instance], "parameters": parameters})


# --- Responses ----------------------------------------------------------------------------

class _Video(msgspec.Struct):
    uri: str | None = None


class _Sample(msgspec.Struct):
    video: _Video | None = None


class _VideoResponse(msgspec.Struct, rename="camel"):
    generated_samples: list[_Sample] = msgspec.field(default_factory=list)
    rai_media_filtered_count: int = 0
    rai_media_filtered_reasons: list[str] = msgspec.field(default_factory=list)


class _Response(msgspec.Struct, rename="camel"):
    generate_video_response: _VideoResponse | None = None


class _Status(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""


class _Operation(msgspec.Struct):
    name: str = ""
    done: bool = False
    response: _Response | None = None
    error: _Status | None = None


class _ErrorDetail(msgspec.Struct):
    reason: str = ""
    retry_delay: str = msgspec.field(default="", name="retryDelay")


class _ErrorBody(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[_ErrorDetail] = msgspec.field(default_factory=list)


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


#: google.rpc.Code of a finished operation's `error` → how it is classified.
_RPC_CODES: Final[Mapping[int, tuple[str, bool]]] = {
    1: ("canceled", False),            # CANCELLED
    3: ("invalid_input", False),       # INVALID_ARGUMENT
    4: ("timeout", True),              # DEADLINE_EXCEEDED
    7: (AUTH, False),                  # PERMISSION_DENIED
    8: ("rate_limited", True),         # RESOURCE_EXHAUSTED
    9: ("invalid_input", False),       # FAILED_PRECONDITION
    13: ("server_error", True),        # INTERNAL
    14: ("server_error", True),        # UNAVAILABLE
    16: (AUTH, False),                 # UNAUTHENTICATED
}


def _retry_delay(value: str) -> float | None:
    """A `google.rpc.RetryInfo.retryDelay` duration ("37s", "1.5s") as seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", value.strip())
    return float(match[1]) if match else None


def error_from_google(response: httpx.Response) -> ProviderError:
    """Classify a Gemini API error answer by its status and Google's error body."""
    try:
        body = msgspec.json.decode(response.content, type=_ErrorEnvelope).error
    except msgspec.DecodeError:
        body = None
    message = f"Veo answered HTTP {response.status_code}"
    if body is not None and body.message:
        message = f"Veo: {body.message} ({body.status or response.status_code})"
    reasons = {d.reason for d in body.details} if body is not None else set()
    if "API_KEY_INVALID" in reasons:
        return ProviderError.auth(message)  # Google answers a bad key with a 400
    error = error_for_status(response.status_code, message,
                             retry_after=response.headers.get("retry-after"))
    if error.retry_after_s is None and body is not None:
        delays = [_retry_delay(d.retry_delay) for d in body.details if d.retry_delay]
        error.retry_after_s = next((d for d in delays if d is not None), None)
    return error


def _operation_error(status: _Status) -> ProviderError:
    code, retryable = _RPC_CODES.get(status.code, ("server_error", True))
    return ProviderError(f"Veo's operation failed: {status.message or status.status} "
                         f"({status.status or status.code})", code=code, retryable=retryable)


def _task_id(name: str, opts: Options) -> str:
    return f"{name};{opts.duration_s}s;{opts.sample_count}"


def _parse_task(task_id: str) -> tuple[str, str, int, int]:
    """(operation name, model, seconds, count) from a task id made by `_task_id`."""
    match = _TASK_ID.fullmatch(task_id)
    if match is None:
        raise ProviderError(f"not a Veo task id: {task_id!r}", code="invalid_task",
                            retryable=False)
    return match[1], match[2], int(match[3]), int(match[4])


class Veo(Provider):
    name = "veo"
    description = ("Google Veo (Gemini API): text-to-video and image-to-video, 4-8 s clips "
                   "at 720p/1080p, native audio on Veo 3.")
    media_types = frozenset({"video"})
    operations = frozenset({"text_to_video", "image_to_video"})
    models: ClassVar[Mapping[str, contract.ModelSpec]] = {
        model: contract.ModelSpec(operations=frozenset({"text_to_video", "image_to_video"}),
                                  params={"model": model}, limits={
                                      "duration_s": ParamLimits(choices=spec.durations),
                                      "resolution": ParamLimits(choices=spec.resolutions),
                                      "sample_count": ParamLimits(minimum=1,
                                                                  maximum=spec.max_samples)})
        for model, spec in MODELS.items()}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("negative_prompt", "image"),
        "model": declare("model", choices=tuple(MODELS), default=DEFAULT_MODEL,
                         description="The Veo model (fast: cheaper; 2.0: silent, 720p)"),
        "duration_s": declare("duration_s", choices=(4, 5, 6, 8), default=8,
                              description="Seconds of video: 4, 6 or 8 (Veo 2: 5, 6 or 8)"),
        "aspect_ratio": declare("aspect_ratio", choices=ASPECT_RATIOS, default="16:9",
                                description="Landscape or portrait"),
        "resolution": declare("resolution", choices=("720p", "1080p"), default="720p",
                              description="1080p: Veo 3 models only"),
        "seed": declare("seed", minimum=0, maximum=MAX_SEED,
                        description="Makes a result more repeatable"),
        "sample_count": ParamSpec(kind="integer", minimum=1, maximum=2, default=1,
                                  description="How many videos (Veo 3 models make one)"),
        "person_generation": ParamSpec(kind="string", max_length=32,
                                       choices=PERSON_GENERATION,
                                       description="Whether people may appear"),
    }
    asynchronous = True
    capacity = 4
    # 8 s is every model's longest (and default) duration.
    param_defaults = {"model": DEFAULT_MODEL, "aspect_ratio": "16:9", "resolution": "720p",
                      "duration_s": 8, "sample_count": 1}
    prices: Mapping[str, int] = PRICES

    def __init__(self, *, poll_after_s: float = DEFAULT_POLL_AFTER_S) -> None:
        self.poll_after_s = poll_after_s

    # -- pricing ----------------------------------------------------------------------------

    def _cost(self, model: str, seconds: int, videos: int) -> int:
        return self.prices[model] * seconds * videos

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the model's price per second, times seconds,
        times videos. Raises `InvalidParams` for a request Veo cannot take."""
        opts = options(request)
        return self._cost(opts.model, opts.duration_s, opts.sample_count)

    def pricing(self) -> dict[str, Any]:
        """The per-second table for `GET /v1/providers`."""
        return {"usd_micros_per_second": dict(self.prices),
                "unit": "second of generated video, per video"}

    # -- calls ------------------------------------------------------------------------------

    @staticmethod
    def _base(credentials: Credentials) -> str:
        return (credentials.base_url or BASE_URL).rstrip("/")

    @staticmethod
    def _headers(credentials: Credentials) -> dict[str, str]:
        if not credentials.api_key:
            raise ProviderError.auth("no Gemini API key is configured for veo")
        return {"x-goog-api-key": credentials.api_key}

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Called once per generation: starts the long-running operation and returns its
        task (operation name, seconds and count); raises a classified `ProviderError`."""
        opts = options(request)
        url = f"{self._base(credentials)}/{API_VERSION}/models/{opts.model}:predictLongRunning"
        try:
            response = await client.post(url, json=opts.body, headers=self._headers(credentials),
                                         timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_from_google(response)
        try:
            name = msgspec.json.decode(response.content, type=_Operation).name
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("Veo answered the submit with no operation") \
                from exc
        if not name.startswith(f"models/{opts.model}/operations/"):
            raise ProviderError.server_error(f"Veo answered an unexpected operation {name!r}")
        return ProviderTask(task_id=_task_id(name, opts), poll_after_s=self.poll_after_s)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        """Called by the pipeline's poll jobs: None while the operation runs; once done the
        downloaded videos and their cost. Raises `ProviderError` when the operation failed
        (`content_policy` when Google's filters removed every video)."""
        name, model, seconds, _ = _parse_task(task.task_id)
        try:
            response = await client.get(f"{self._base(credentials)}/{API_VERSION}/{name}",
                                        headers=self._headers(credentials), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_from_google(response)
        try:
            operation = msgspec.json.decode(response.content, type=_Operation)
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("Veo answered the poll with no operation") \
                from exc
        if not operation.done:
            return None
        if operation.error is not None:
            raise _operation_error(operation.error)
        videos = (operation.response.generate_video_response
                  if operation.response is not None else None) or _VideoResponse()
        uris = [s.video.uri for s in videos.generated_samples if s.video and s.video.uri]
        if not uris:
            if videos.rai_media_filtered_count:
                reasons = "; ".join(videos.rai_media_filtered_reasons) or "no reason given"
                raise ProviderError(f"Veo's safety filters removed the video: {reasons}",
                                    code=CONTENT_POLICY, retryable=False)
            raise ProviderError.server_error("Veo finished without a video")
        outputs = [ProviderOutput(data=await self._download(uri, credentials, client),
                                  content_type="video/mp4", duration_s=float(seconds))
                   for uri in uris]
        # Google charges only for the videos it returns (filtered ones are free).
        return ProviderResult(outputs=outputs, cost_usd_micros=self._cost(model, seconds,
                                                                          len(outputs)))

    async def _download(self, uri: str, credentials: Credentials,
                        client: httpx.AsyncClient) -> bytes:
        """Fetch a generated video within `MAX_VIDEO_BYTES`. Redirects are followed by hand
        so the API key goes only to the API's own host, never to a redirect's target (the
        file's signed storage URL) or to any other host a response might name."""
        api_host = urlsplit(self._base(credentials)).netloc
        url = urljoin(self._base(credentials) + "/", uri)
        for _ in range(MAX_REDIRECTS + 1):
            headers = self._headers(credentials) if urlsplit(url).netloc == api_host else {}
            try:
                async with client.stream("GET", url, headers=headers,
                                         timeout=DOWNLOAD_TIMEOUT,
                                         follow_redirects=False) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        await response.aread()
                        raise error_from_google(response)
                    return await _read_capped(response)
            except httpx.HTTPError as exc:
                raise error_from_exception(exc) from exc
        raise ProviderError.server_error("Veo's video download redirected too often")

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        """Called when a generation is canceled: nothing to call. The Gemini API offers only
        get and list on `models.operations` (no cancel), so the operation finishes at Google
        and is never collected."""

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Submit and poll until done (used outside the pipeline's poll jobs)."""
        return await run_to_completion(self, request, credentials, client)

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: an authenticated GET of the default model's metadata."""
        try:
            response = await client.get(
                f"{self._base(credentials)}/{API_VERSION}/models/{DEFAULT_MODEL}",
                headers=self._headers(credentials), timeout=TIMEOUT)
        except (httpx.HTTPError, ProviderError) as exc:
            return Health(ok=False, detail=error_from_exception(exc).message)
        if response.status_code != 200:
            return Health(ok=False, detail=error_from_google(response).message)
        return Health(ok=True)


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_VIDEO_BYTES:
        raise ProviderError(f"Veo's video is larger than {MAX_VIDEO_BYTES} bytes",
                            code="output_too_large", retryable=False)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_VIDEO_BYTES:
            raise ProviderError(f"Veo's video is larger than {MAX_VIDEO_BYTES} bytes",
                                code="output_too_large", retryable=False)
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ProviderError.server_error("Veo's video download was empty")
    return data


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Veo())
