"""AUTOMATIC1111 / Forge: a self-hosted Stable Diffusion WebUI started with `--api`.

Wire format (the webui's `modules/api/api.py` and `modules/api/models.py`; see
plugins/README.md, "AUTOMATIC1111 / Forge"):

- `POST {base}/sdapi/v1/txt2img` and `/sdapi/v1/img2img`, JSON bodies whose fields are the
  processing classes' arguments (`prompt`, `negative_prompt`, `steps`, `cfg_scale`,
  `sampler_name`, `scheduler`, `seed`, `width`, `height`, `batch_size`, and for img2img
  `init_images`, `mask`, `denoising_strength`), `override_settings` for the checkpoint.
  The answer: `{"images": [<base64>...], "parameters": {...}, "info": "<JSON string>"}`,
  `info` holding `seed`, `all_seeds`, `width`, `height`, `sd_model_name`, ...
- `GET /sdapi/v1/sd-models` (`[{"title", "model_name", "hash", ...}]`), `/sdapi/v1/samplers`
  (`[{"name", "aliases", "options"}]`), `/sdapi/v1/schedulers` (`[{"name", "label", ...}]`):
  what a requested checkpoint, sampler or scheduler is checked against.
- Errors: FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}` for a body that does not
  validate; everything else through the webui's handler as
  `{"error": <exception class>, "detail", "body", "errors": <str(exception)>}` with the
  exception's status (401 for `--api-auth`, 404/400 for an unknown sampler, 500 otherwise).

Self-hosted, so there is no vendor bill: the price table is the operator's compute price per
step-megapixel (set it with `MEDIAHUB_AUTOMATIC1111_PRICES`).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar

import httpx
import msgspec
from PIL import Image, UnidentifiedImageError

from plugins import media
from plugins.errors import InvalidParams, ProviderError, error_for_status, error_from_exception
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, common, declare

MIN_SIDE, MAX_SIDE = 64, 2048
MAX_STEPS: Final = 150
CFG_SCALE: Final = (1.0, 30.0)
MAX_BATCH: Final = 8
MAX_SEED: Final = 2**32 - 1
DEFAULT_STEPS: Final = 20
DEFAULT_SIDE: Final = 512
PIXELS_PER_MEGAPIXEL: Final = 1_000_000
_FORMATS: Final = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


class Webui422Item(msgspec.Struct, kw_only=True):
    loc: list[str | int] = msgspec.field(default_factory=list)
    msg: str = ""


class WebuiError(msgspec.Struct, kw_only=True):
    """Either body the webui answers errors with (FastAPI's or its own handler's)."""

    detail: str | list[Webui422Item] | None = None
    error: str | None = None
    errors: str | None = None


class ImagesResponse(msgspec.Struct, kw_only=True):
    """txt2img's and img2img's answer (`parameters` and the `info` JSON string are not
    needed: the images carry their own size)."""

    images: list[str] | None = None


class Checkpoint(msgspec.Struct, kw_only=True):
    title: str
    model_name: str
    hash: str | None = None


class Named(msgspec.Struct, kw_only=True):
    """A sampler (`name`, `aliases`) or a scheduler (`name`, `label`, `aliases`)."""

    name: str
    label: str | None = None
    aliases: list[str] | None = None

    def names(self) -> list[str]:
        return [self.name, *([self.label] if self.label else []), *(self.aliases or [])]


_CHECKPOINTS: Final = msgspec.json.Decoder(list[Checkpoint])
_NAMED: Final = msgspec.json.Decoder(list[Named])
T = TypeVar("T")
#: Added to the message when a route is missing, which is how a webui without `--api`
#: (or without a newer route, such as schedulers before 1.9) answers.
NO_ROUTE_HINT: Final = "is the webui started with --api?"


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """A checked request: the endpoint, the JSON body (without the checkpoint and the sampler
    and scheduler, which are checked against the webui first) and the work it is priced by."""

    endpoint: str
    body: dict[str, Any]
    checkpoint: str | None
    sampler: str | None
    scheduler: str | None
    step_megapixels_x1000: int  # steps * pixels * images / 1000 (integer; priced on this)


def _number(params: Mapping[str, Any], key: str, low: float, high: float, default: float,
            *, integer: bool) -> float:
    value = params.get(key, default)
    kind = "an integer" if integer else "a number"
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (integer and not isinstance(value, int)) or not low <= value <= high):
        raise InvalidParams(f"{key} must be {kind} from {low:g} to {high:g}",
                            param=f"params.{key}")
    return value


def _int(params: Mapping[str, Any], key: str, low: int, high: int, default: int) -> int:
    return int(_number(params, key, low, high, default, integer=True))


def _name(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 300:
        raise InvalidParams(f"{key} must be a name from the webui", param=f"params.{key}")
    return value.strip()


def _side(params: Mapping[str, Any], key: str, default: int) -> int:
    value = _int(params, key, MIN_SIDE, MAX_SIDE, default)
    if value % 8:
        raise InvalidParams(f"{key} must be a multiple of 8", param=f"params.{key}")
    return value


def options(request: ProviderRequest) -> Options:
    """The request's checked options; raises `InvalidParams` naming the bad parameter."""
    params = request.params
    edit = request.operation == "image_edit"
    body: dict[str, Any] = {"prompt": request.prompt}
    default_w = default_h = DEFAULT_SIDE
    inputs = request.inputs
    if edit:
        if "image" not in inputs:
            raise InvalidParams("image_edit needs an input image: give params.image_url",
                                param="params.image_url")
        width, height = media.image_size(inputs["image"], "params.image")
        body["init_images"] = [inputs["image"].as_base64()]
        # The webui resizes the input to width * height: keep its size unless asked.
        default_w = min(MAX_SIDE, max(MIN_SIDE, width // 8 * 8))
        default_h = min(MAX_SIDE, max(MIN_SIDE, height // 8 * 8))
        if "mask" in inputs:
            media.image_size(inputs["mask"], "params.mask")
            body["mask"] = inputs["mask"].as_base64()
        body["denoising_strength"] = _number(params, "denoising_strength", 0.0, 1.0, 0.75,
                                             integer=False)
    elif "mask" in inputs or "denoising_strength" in params:
        key = "mask" if "mask" in inputs else "denoising_strength"
        raise InvalidParams(f"{key} is only for image_edit", param=f"params.{key}")
    negative = params.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str):
            raise InvalidParams("negative_prompt must be text", param="params.negative_prompt")
        body["negative_prompt"] = negative
    steps = _int(params, "steps", 1, MAX_STEPS, DEFAULT_STEPS)
    width, height = _side(params, "width", default_w), _side(params, "height", default_h)
    batch = _int(params, "batch_size", 1, MAX_BATCH, 1)
    body.update(steps=steps, width=width, height=height, batch_size=batch, n_iter=1,
                cfg_scale=_number(params, "cfg_scale", *CFG_SCALE, 7.0, integer=False),
                seed=_int(params, "seed", -1, MAX_SEED, -1))
    return Options(endpoint="img2img" if edit else "txt2img", body=body,
                   checkpoint=_name(params, "checkpoint"), sampler=_name(params, "sampler_name"),
                   scheduler=_name(params, "scheduler"),
                   step_megapixels_x1000=steps * width * height * batch // 1000)


def _auth(credentials: Credentials) -> httpx.BasicAuth | None:
    """The webui's `--api-auth user:password`: `api_key` "user:password", or `api_key` the
    user and `api_secret` the password. None when no key is set (an open API)."""
    if not credentials.api_key:
        return None
    if credentials.api_secret is not None:
        return httpx.BasicAuth(credentials.api_key, credentials.api_secret)
    user, colon, password = credentials.api_key.partition(":")
    if not colon:
        raise ProviderError.auth("the AUTOMATIC1111 key must be user:password (--api-auth)")
    return httpx.BasicAuth(user, password)


def _error(response: httpx.Response, what: str) -> ProviderError:
    """Classify an error answer of the webui."""
    try:
        body = msgspec.json.decode(response.content, type=WebuiError)
    except msgspec.DecodeError:
        body = WebuiError(errors=response.text[:300] or None)
    status = response.status_code
    if isinstance(body.detail, list):
        reason = "; ".join(f"{'.'.join(str(p) for p in item.loc)}: {item.msg}"
                           for item in body.detail)
    else:
        reason = body.detail or body.errors or ""
    message = f"the webui answered {what} with HTTP {status}"
    if body.error:
        message += f" ({body.error})"
    if reason:
        message += f": {reason}"
    if status == 404 and reason == "Not Found":
        # No route: the webui runs without --api (or the base URL is wrong). The operator
        # must fix it; meanwhile another provider may serve the request.
        return ProviderError.server_error(f"{message} ({NO_ROUTE_HINT})")
    if status == 500 and body.detail in ("Invalid encoded image", "Invalid image url"):
        return ProviderError.invalid_input(message)
    return error_for_status(status, message, retry_after=response.headers.get("retry-after"))


def _content_type(data: bytes) -> str:
    for magic, content_type in _FORMATS.items():
        if data.startswith(magic):
            return content_type
    raise ProviderError.server_error("the webui answered with an image of an unknown format")


def _decode(encoded: str) -> bytes:
    """An image of the webui's answer: bare base64, or a `data:` URL."""
    try:
        if encoded.startswith("data:"):
            return media.decode_data_url(encoded, "images").data
        return base64.b64decode(encoded, validate=True)
    except (InvalidParams, binascii.Error, ValueError) as exc:
        raise ProviderError.server_error("the webui answered with an image that is not "
                                         "base64") from exc


def _size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None


def _pick(wanted: str, candidates: Sequence[Named]) -> str | None:
    for item in candidates:
        if wanted in item.names():
            return item.name
    return None


class Automatic1111(Provider):
    """A self-hosted AUTOMATIC1111 or Forge webui: txt2img and img2img on its checkpoints."""

    name = "automatic1111"
    description = ("AUTOMATIC1111 / Forge Stable Diffusion WebUI (self-hosted): txt2img and "
                   "img2img with a chosen checkpoint, sampler and scheduler.")
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image", "image_edit"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("negative_prompt", "image", "mask"),
        "seed": declare("seed", minimum=-1, maximum=MAX_SEED, default=-1,
                        description="-1 picks a random seed"),
        "steps": ParamSpec(kind="integer", minimum=1, maximum=MAX_STEPS, default=DEFAULT_STEPS,
                           description="Sampling steps: more is slower and finer"),
        "width": ParamSpec(kind="integer", minimum=MIN_SIDE, maximum=MAX_SIDE,
                           default=DEFAULT_SIDE,
                           description="Pixels, a multiple of 8 (image_edit: the input's)"),
        "height": ParamSpec(kind="integer", minimum=MIN_SIDE, maximum=MAX_SIDE,
                            default=DEFAULT_SIDE,
                            description="Pixels, a multiple of 8 (image_edit: the input's)"),
        "batch_size": ParamSpec(kind="integer", minimum=1, maximum=MAX_BATCH, default=1,
                                description="How many images"),
        "cfg_scale": ParamSpec(kind="number", minimum=CFG_SCALE[0], maximum=CFG_SCALE[1],
                               default=7.0,
                               description="How closely to follow the prompt"),
        "denoising_strength": ParamSpec(kind="number", minimum=0.0, maximum=1.0, default=0.75,
                                        description="image_edit only: how far to move from "
                                                    "the input image"),
        "checkpoint": ParamSpec(kind="string", max_length=256,
                                description="A checkpoint the webui has (its sd-models)"),
        "sampler_name": ParamSpec(kind="string", max_length=128,
                                  description="A sampler the webui has (its samplers), such "
                                              "as Euler a or DPM++ 2M"),
        "scheduler": ParamSpec(kind="string", max_length=128,
                               description="A scheduler the webui has (its schedulers)"),
    }
    needs_api_key = False
    needs_base_url = True
    # The webui runs one generation at a time (its queue lock); more wait in line.
    capacity = 1
    param_defaults = {"steps": DEFAULT_STEPS, "cfg_scale": 7.0, "seed": -1, "batch_size": 1}
    #: The operator's GPU price: USD micros per step-megapixel (one sampling step over one
    #: million pixels), e.g. 50 for a card at about $0.70 an hour doing ~4 MP-steps a second.
    prices: Mapping[str, int] = {"step_megapixel": 50}

    def __init__(self, *, timeout_s: float = 300.0) -> None:
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)

    def _cost(self, work_x1000: int) -> int:
        return -(-work_x1000 * self.prices["step_megapixel"] // 1000)

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Steps * megapixels * images at the operator's price (USD micros), rounded up.

        Called before anything is reserved; raises `InvalidParams` for a bad parameter."""
        return self._cost(options(request).step_megapixels_x1000)

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Check the checkpoint, sampler and scheduler against the webui, then run txt2img
        or img2img; returns the images (one per `batch_size`) and the compute price.

        Raises `ProviderError`: `invalid_input` naming the available ones for an unknown
        checkpoint, sampler or scheduler; otherwise classified by status."""
        opts = options(request)
        base = self._base(credentials)
        auth = _auth(credentials)
        body = dict(opts.body)
        if opts.checkpoint is not None:
            title = await self._checkpoint(client, base, auth, opts.checkpoint)
            body["override_settings"] = {"sd_model_checkpoint": title}
            # Put the operator's default checkpoint back after this job.
            body["override_settings_restore_afterwards"] = True
        if opts.sampler is not None:
            body["sampler_name"] = await self._named(client, base, auth, "samplers",
                                                     "sampler_name", opts.sampler)
        if opts.scheduler is not None:
            body["scheduler"] = await self._named(client, base, auth, "schedulers",
                                                  "scheduler", opts.scheduler)
        response = await self._call(client, "POST", f"{base}/sdapi/v1/{opts.endpoint}", auth,
                                    json=body, timeout=self.timeout)
        try:
            answer = msgspec.json.decode(response.content, type=ImagesResponse)
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("the webui's answer was not understood") from exc
        if not answer.images:
            raise ProviderError.server_error("the webui answered without images")
        outputs = []
        for encoded in answer.images[:opts.body["batch_size"]]:
            data = _decode(encoded)
            width, height = _size(data)
            outputs.append(ProviderOutput(data=data, content_type=_content_type(data),
                                          width=width, height=height))
        return ProviderResult(outputs=outputs,
                              cost_usd_micros=self._cost(opts.step_megapixels_x1000))

    def _base(self, credentials: Credentials) -> str:
        if not credentials.base_url:
            raise ProviderError.auth("no AUTOMATIC1111 base URL is configured "
                                     "(MEDIAHUB_AUTOMATIC1111_BASE_URL)")
        return credentials.base_url.rstrip("/")

    async def _call(self, client: httpx.AsyncClient, method: str, url: str,
                    auth: httpx.BasicAuth | None, **kwargs: Any) -> httpx.Response:
        what = f"{method} {url.rsplit('/sdapi/v1/', 1)[-1]}"
        try:
            response = await client.request(method, url, auth=auth, **kwargs)
        except Exception as exc:  # timeouts and transport errors, classified
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise _error(response, what)
        return response

    async def _list(self, client: httpx.AsyncClient, base: str, auth: httpx.BasicAuth | None,
                    path: str, decoder: msgspec.json.Decoder[list[T]]) -> list[T]:
        response = await self._call(client, "GET", f"{base}/sdapi/v1/{path}", auth,
                                    timeout=httpx.Timeout(30.0))
        try:
            return decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error(f"the webui's {path} list was not "
                                             "understood") from exc

    async def _checkpoint(self, client: httpx.AsyncClient, base: str,
                          auth: httpx.BasicAuth | None, wanted: str) -> str:
        """The title of the checkpoint named `wanted` (its title, model name or short hash)."""
        checkpoints = await self._list(client, base, auth, "sd-models", _CHECKPOINTS)
        for checkpoint in checkpoints:
            if wanted in (checkpoint.title, checkpoint.model_name, checkpoint.hash):
                return checkpoint.title
        available = ", ".join(c.model_name for c in checkpoints) or "none"
        raise ProviderError.invalid_input(
            f"checkpoint {wanted!r} is not on this webui; available: {available}")

    async def _named(self, client: httpx.AsyncClient, base: str, auth: httpx.BasicAuth | None,
                     path: str, param: str, wanted: str) -> str:
        try:
            items = await self._list(client, base, auth, path, _NAMED)
        except ProviderError as exc:
            if path == "schedulers" and NO_ROUTE_HINT in exc.message:
                # Webuis before 1.9 have no schedulers (the route is missing).
                raise ProviderError.invalid_input(
                    "this webui has no scheduler choice; leave params.scheduler out") from exc
            raise
        found = _pick(wanted, items)
        if found is None:
            available = ", ".join(item.name for item in items) or "none"
            raise ProviderError.invalid_input(
                f"{param} {wanted!r} is not on this webui; available: {available}")
        return found

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: `GET /sdapi/v1/sd-models`; healthy when the API answers
        (with our basic auth) and has at least one checkpoint."""
        try:
            base = self._base(credentials)
            checkpoints = await self._list(client, base, _auth(credentials), "sd-models",
                                           _CHECKPOINTS)
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message)
        if not checkpoints:
            return Health(ok=False, detail="the webui has no checkpoints")
        return Health(ok=True, detail=f"{len(checkpoints)} checkpoints")

    def pricing(self) -> dict[str, Any]:
        """The operator's compute price for `GET /v1/providers`."""
        return {"usd_micros": dict(self.prices),
                "units": {"step_megapixel": "per sampling step per million pixels"},
                "self_hosted": True}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Automatic1111())
