"""Kling AI's API (api-singapore.klingai.com): text-to-video and image-to-video tasks.

Wire format per Kling's API documentation (as mirrored in public integrations):

- Auth: `Authorization: Bearer <JWT>`, an HS256 JWT whose `iss` is the access key, signed
  with the secret key, valid from now - 5 s (`nbf`) to now + 30 min (`exp`). It is built here
  with hmac/hashlib (no JWT library).
- `POST /v1/videos/text2video` {model_name, prompt, negative_prompt?, cfg_scale?, mode,
  aspect_ratio, duration: "5"|"10", external_task_id?} and `POST /v1/videos/image2video`
  {model_name, image (base64 without a `data:` prefix), image_tail?, prompt?, ...} answer
  `{code: 0, message, request_id, data: {task_id, task_status: "submitted"}}`;
- `GET /v1/videos/{text2video|image2video}/{task_id}` answers `data: {task_id, task_status:
  submitted|processing|succeed|failed, task_status_msg, task_result: {videos: [{id, url,
  duration}]}}`; the video URL is public (kept 30 days), so the gateway downloads it.
- Errors carry Kling's own `code` (1000-1004 auth, 1100-1102 account/balance, 1103 access,
  1200-1203 parameters, 1300-1301 content policy, 1302-1304 rate/concurrency/IP limits,
  5000-5002 server) with an HTTP status.

Kling has no cancel call. The task id encodes the endpoint to poll and the submit's price.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins.errors import InvalidParams, ProviderError, error_for_status, error_from_exception
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
from plugins.vocabulary import ParamSpec, common, declare

BASE_URL: Final = "https://api-singapore.klingai.com"
TOKEN_LIFETIME_S: Final = 1800
TOKEN_LEEWAY_S: Final = 5
TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
DEFAULT_POLL_AFTER_S: Final = 10.0
MAX_PROMPT: Final = 2500
#: Kling takes JPEG or PNG inputs up to 10 MB.
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
#: The input types Kling takes (`image/jpg` is how some clients label JPEG).
IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/jpg"})
ENDPOINTS: Final = {"text_to_video": "text2video", "image_to_video": "image2video"}
MODES: Final = ("std", "pro")
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
DURATIONS: Final = ("5", "10")


class Model(msgspec.Struct, frozen=True, kw_only=True):
    #: False for the "master" models, priced the same in either mode.
    priced_by_mode: bool
    #: `cfg_scale` is not supported by the v2 models.
    cfg_scale: bool


MODELS: Final[Mapping[str, Model]] = {
    "kling-v1": Model(priced_by_mode=True, cfg_scale=True),
    "kling-v1-6": Model(priced_by_mode=True, cfg_scale=True),
    "kling-v2-master": Model(priced_by_mode=False, cfg_scale=False),
    "kling-v2-1-master": Model(priced_by_mode=False, cfg_scale=False),
}
DEFAULT_MODEL: Final = "kling-v1-6"

#: One unit of a video generation resource pack: $0.14.
UNIT_USD_MICROS: Final = 140_000
#: USD micros per 5 seconds of video (a 10 s video costs twice): units x $0.14.
PRICES: Final[Mapping[str, int]] = {
    "kling-v1_std": UNIT_USD_MICROS,  # 1 unit
    "kling-v1_pro": 7 * UNIT_USD_MICROS // 2,  # 3.5 units
    "kling-v1-6_std": UNIT_USD_MICROS,
    "kling-v1-6_pro": 7 * UNIT_USD_MICROS // 2,
    "kling-v2-master": 10 * UNIT_USD_MICROS,
    "kling-v2-1-master": 10 * UNIT_USD_MICROS,
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_token(access_key: str, secret_key: str, *, now: float | None = None) -> str:
    """The HS256 JWT Kling's API takes as a bearer token: `iss` = access key, valid from
    now - 5 s to now + 30 min, signed with the secret key."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": access_key, "exp": issued + TOKEN_LIFETIME_S,
               "nbf": issued - TOKEN_LEEWAY_S}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, payload))
    signature = hmac.new(secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


class Options(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: str
    price_key: str
    duration: int
    body: dict[str, Any]


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...],
            default: str) -> str:
    value = params.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and key == "duration":
        value = str(value)  # 5 and "5" alike: Kling wants the string
    if not isinstance(value, str) or value not in allowed:
        raise InvalidParams(f"{key} must be one of {', '.join(allowed)}", param=f"params.{key}")
    return value


def _base64_image(inputs: Mapping[str, MediaInput], key: str) -> str:
    """An input image as the bare base64 Kling takes (no `data:` prefix)."""
    image = inputs[key]
    if image.content_type not in IMAGE_TYPES:
        raise InvalidParams(f"params.{key} must be a PNG or JPEG image (Kling takes no "
                            "other types)", param=f"params.{key}")
    if not image.data:
        raise InvalidParams(f"params.{key} is empty", param=f"params.{key}")
    if len(image.data) > MAX_IMAGE_BYTES:
        raise InvalidParams(f"params.{key} is larger than Kling's 10 MB",
                            param=f"params.{key}")
    return image.as_base64()


def options(request: ProviderRequest) -> Options:
    """The request checked against what Kling accepts; raises `InvalidParams` naming the
    bad parameter."""
    if request.operation not in ENDPOINTS:
        raise InvalidParams(f"Kling does not serve {request.operation}", param="operation")
    # The shared `duration_s` is Kling's `duration` (sent as "5" or "10").
    params = mapped_param(request.params, "duration_s", "duration")
    model = _choice(params, "model", tuple(MODELS), DEFAULT_MODEL)
    spec = MODELS[model]
    mode = _choice(params, "mode", MODES, "std")
    duration = _choice(params, "duration", DURATIONS, "5")
    prompt = request.prompt.strip()
    if len(prompt) > MAX_PROMPT:
        raise InvalidParams(f"the prompt must be at most {MAX_PROMPT} characters for Kling",
                            param="prompt")
    body: dict[str, Any] = {"model_name": model, "mode": mode, "duration": duration}
    if prompt:
        body["prompt"] = prompt
    negative = params.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str) or len(negative) > MAX_PROMPT:
            raise InvalidParams(f"negative_prompt must be text of at most {MAX_PROMPT} "
                                "characters", param="params.negative_prompt")
        body["negative_prompt"] = negative
    if "cfg_scale" in params:
        cfg = params["cfg_scale"]
        if not spec.cfg_scale:
            raise InvalidParams(f"{model} takes no cfg_scale", param="params.cfg_scale")
        if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
            raise InvalidParams("cfg_scale must be a number from 0 to 1",
                                param="params.cfg_scale")
        body["cfg_scale"] = cfg
    if request.operation == "text_to_video":
        if not prompt:
            raise InvalidParams("text_to_video needs a prompt", param="prompt")
        for key in ("image", "image_tail"):
            if key in request.inputs:
                raise InvalidParams(f"params.{key} is only used by image_to_video",
                                    param=f"params.{key}")
        body["aspect_ratio"] = _choice(params, "aspect_ratio", ASPECT_RATIOS, "16:9")
    else:
        if "image" not in request.inputs:
            raise InvalidParams("image_to_video needs params.image (or params.image_url)",
                                param="params.image")
        if "aspect_ratio" in params:
            raise InvalidParams("image_to_video follows the image's aspect ratio",
                                param="params.aspect_ratio")
        body["image"] = _base64_image(request.inputs, "image")
        if "image_tail" in request.inputs:
            body["image_tail"] = _base64_image(request.inputs, "image_tail")
    price_key = f"{model}_{mode}" if spec.priced_by_mode else model
    return Options(endpoint=ENDPOINTS[request.operation], price_key=price_key,
                   duration=int(duration), body=body)


_RETRY_CODES: Final = frozenset({1302, 1303})
_CONTENT_CODES: Final = frozenset({1300, 1301})
_AUTH_CODES: Final = frozenset({1000, 1001, 1002, 1003, 1004, 1103, 1304})
_ACCOUNT_CODES: Final = frozenset({1100, 1101, 1102})
_INVALID_CODES: Final = frozenset({1200, 1201, 1202, 1203})


def error_for(status: int, code: int | None, message: str,
              retry_after: str | None = None) -> ProviderError:
    """Classify a Kling error by its `code` (then by HTTP status for codes it does not know):
    auth codes and the IP allow-list (the operator must act) `auth`; arrears or an empty
    resource pack `quota_exhausted` (retryable: another provider can serve the request);
    parameter errors `invalid_input`; content policy `content_policy`; rate and concurrency
    limits `rate_limited` (with Retry-After when sent); 5000/5001 `server_error`, 5002
    `timeout`."""
    text = f"Kling: {message or 'error'} (code {code})"
    if code in _AUTH_CODES:
        return ProviderError.auth(text)
    if code in _ACCOUNT_CODES:
        return ProviderError.quota_exhausted(text)
    if code in _INVALID_CODES:
        return ProviderError.invalid_input(text)
    if code in _CONTENT_CODES:
        return ProviderError.content_policy(text)
    if code in _RETRY_CODES:
        return error_for_status(429, text, retry_after=retry_after)
    if code == 5002:
        return ProviderError.timeout(text)
    if code is not None and 5000 <= code < 6000:
        return ProviderError.server_error(text)
    return error_for_status(status if status >= 400 else 502, text, retry_after=retry_after)


def _read(response: httpx.Response) -> dict[str, Any]:
    """Kling's envelope, or the classified error (a non-zero `code` or HTTP error)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise error_for(response.status_code, None, response.text[:200] or "no JSON body",
                        response.headers.get("retry-after"))
    code = body.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if response.status_code != 200 or code != 0:
        raise error_for(response.status_code, code, str(body.get("message") or ""),
                        response.headers.get("retry-after"))
    return body


#: A failed task's `task_status_msg` that names a content refusal (Kling's risk control).
_REFUSAL = re.compile(r"risk|sensitive|policy|violat|inappropriate|prohibit", re.IGNORECASE)


class Kling(Provider):
    name = "kling"
    description = ("Kling AI (api-singapore.klingai.com): text-to-video and image-to-video "
                   "with kling-v1, kling-v1-6 and the v2 master models.")
    media_types = frozenset({"video"})
    operations = frozenset({"text_to_video", "image_to_video"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        model: ModelSpec(operations=frozenset({"text_to_video", "image_to_video"}),
                         params={"model": model})
        for model in MODELS}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("negative_prompt", "image", "image_tail"),
        "model": declare("model", choices=tuple(MODELS), default=DEFAULT_MODEL,
                         description="The Kling model (master models cost more)"),
        "duration_s": declare("duration_s", choices=(5, 10), default=5,
                              description="Seconds of video"),
        "aspect_ratio": declare("aspect_ratio", choices=ASPECT_RATIOS, default="16:9",
                                description="text_to_video only (image_to_video follows "
                                            "the image)"),
        "mode": ParamSpec(kind="string", max_length=8, choices=MODES, default="std",
                          description="std (faster, cheaper) or pro (finer)"),
        #: Kling's own word for `duration_s` (`"5"` or `"10"`), still accepted.
        "duration": ParamSpec(kind="scalar", max_length=4,
                              choices=(*DURATIONS, *(int(d) for d in DURATIONS)),
                              default="5", description="The same as duration_s"),
        "cfg_scale": ParamSpec(kind="number", minimum=0.0, maximum=1.0, default=0.5,
                               description="kling-v1 models only: how closely to follow "
                                           "the prompt"),
    }
    asynchronous = True
    capacity = 4
    param_defaults = {"model": DEFAULT_MODEL, "mode": "std", "duration": "5"}
    prices: Mapping[str, int] = PRICES

    def __init__(self, *, poll_after_s: float = DEFAULT_POLL_AFTER_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.poll_after_s = poll_after_s
        #: Tokens are minted per call from this clock (tests pin it).
        self.clock = clock

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the model's (and mode's) price per 5 s times
        the 5 s blocks of the video, in USD micros; raises `InvalidParams`."""
        opts = options(request)
        return opts.duration // 5 * self.prices[opts.price_key]

    def _headers(self, credentials: Credentials) -> dict[str, str]:
        if not credentials.api_key or not credentials.api_secret:
            raise ProviderError.auth("Kling needs an access key (MEDIAHUB_KLING_API_KEY) and a "
                                     "secret key (MEDIAHUB_KLING_API_SECRET)")
        token = jwt_token(credentials.api_key, credentials.api_secret, now=self.clock())
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def _url(credentials: Credentials, path: str) -> str:
        return (credentials.base_url or BASE_URL).rstrip("/") + path

    async def _call(self, method: str, url: str, credentials: Credentials,
                    client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
        headers = self._headers(credentials)
        try:
            response = await client.request(method, url, headers=headers, timeout=TIMEOUT,
                                            **kwargs)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        return _read(response)

    async def _task_call(self, method: str, url: str, credentials: Credentials,
                         client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
        """A call whose envelope's `data` is a task object."""
        data = (await self._call(method, url, credentials, client, **kwargs)).get("data")
        if not isinstance(data, dict):
            raise ProviderError.server_error("Kling answered without task data")
        return data

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Called by the pipeline to create the task; returns it (as `<endpoint>:<id>:<usd
        micros>`) with the poll hint. `external_task_id` is the generation's idempotency key,
        so the task can be found at Kling by it. Raises a classified `ProviderError`."""
        opts = options(request)
        cost = opts.duration // 5 * self.prices[opts.price_key]
        body = dict(opts.body)
        if request.idempotency_key:
            body["external_task_id"] = request.idempotency_key
        data = await self._task_call("POST", self._url(credentials, f"/v1/videos/{opts.endpoint}"),
                                credentials, client, json=body)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError.server_error("Kling accepted the task but sent no task_id")
        return ProviderTask(task_id=f"{opts.endpoint}:{task_id}:{cost}",
                            poll_after_s=self.poll_after_s)

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | None:
        """Called by the pipeline's poll jobs: None while the task is `submitted` or
        `processing`; its videos (public URLs the gateway downloads) once `succeed`; raises
        `ProviderError` once `failed` (content policy when Kling names a refusal)."""
        endpoint, kling_id, cost = _split_task_id(task.task_id)
        data = await self._task_call(
            "GET", self._url(credentials, f"/v1/videos/{endpoint}/{kling_id}"), credentials,
            client)
        status = data.get("task_status")
        if status in ("submitted", "processing"):
            return None
        message = str(data.get("task_status_msg") or "")
        if status == "failed":
            text = f"Kling task failed: {message or 'no reason given'}"
            if _REFUSAL.search(message):
                raise ProviderError.content_policy(text)
            raise ProviderError.server_error(text)
        if status != "succeed":
            raise ProviderError.server_error(f"Kling answered an unknown status {status!r}")
        result = data.get("task_result")
        videos = result.get("videos") if isinstance(result, dict) else None
        outputs = [ProviderOutput(url=v["url"], content_type="video/mp4",
                                  duration_s=_seconds(v.get("duration")))
                   for v in videos or [] if isinstance(v, dict)
                   and isinstance(v.get("url"), str) and v["url"]]
        if not outputs:
            raise ProviderError.server_error("Kling's task succeeded without a video")
        return ProviderResult(outputs=outputs, cost_usd_micros=cost)

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Submit and poll until done (the gateway itself submits and polls instead)."""
        return await run_to_completion(self, request, credentials, client)

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: lists one text-to-video task (the cheapest authenticated
        call Kling has); healthy when Kling accepts the token."""
        try:
            await self._call("GET", self._url(credentials, "/v1/videos/text2video"),
                             credentials, client, params={"pageNum": 1, "pageSize": 1})
        except (httpx.HTTPError, ProviderError) as exc:
            return Health(ok=False, detail=error_from_exception(exc).message)
        return Health(ok=True)

    def pricing(self) -> dict[str, Any]:
        """The prices the estimate uses, for `GET /v1/providers`."""
        return {"usd_micros_per_5_seconds": dict(self.prices),
                "unit_usd_micros": UNIT_USD_MICROS, "durations_s": [5, 10]}


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _split_task_id(task_id: str) -> tuple[str, str, int]:
    endpoint, _, rest = task_id.partition(":")
    kling_id, _, cost = rest.rpartition(":")
    if endpoint not in ENDPOINTS.values() or not kling_id or not cost.isdigit():
        raise ProviderError(f"not a Kling task id of this provider: {task_id!r}",
                            code="provider_error", retryable=False)
    return endpoint, kling_id, int(cost)


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Kling())
