"""Stability AI: Stable Image generate (Core, Ultra, SD 3.5) and Stable Fast 3D (image → GLB).

Wire format (see plugins/README.md, "Stability AI", for what was verified and where):

- `POST {base}/v2beta/stable-image/generate/{core|ultra|sd3}`, multipart/form-data
  (`prompt`, `negative_prompt`, `aspect_ratio`, `seed`, `output_format`, `style_preset` for
  Core, `model` for SD3), `Authorization: Bearer <key>`, `Accept: image/*`. The answer is the
  image's bytes; the seed and the finish reason come as the `seed` and `finish-reason`
  response headers. `finish-reason: CONTENT_FILTERED` on a 200 is a moderated (blurred) image.
- `POST {base}/v2beta/3d/stable-fast-3d`, multipart/form-data (`image` file,
  `texture_resolution`, `foreground_ratio`, `remesh`, `vertex_count`) → a binary glTF (GLB).
- Errors: `{"id": ..., "name": ..., "errors": [...]}` with 400, 401, 402, 403
  (`name: content_moderation`), 413, 422, 429, 500.
- `GET {base}/v1/user/balance` → `{"credits": <float>}`: the health check.

Both calls are synchronous at Stability (one request, one answer), so this provider is too.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec
from PIL import Image, UnidentifiedImageError

from plugins import media
from plugins.errors import InvalidParams, ProviderError, error_for_status, error_from_exception
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Health,
    ModelSpec,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, common, declare

BASE_URL: Final = "https://api.stability.ai"
ENGINES: Final = ("core", "ultra", "sd3")
SD3_MODELS: Final = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium")
ASPECT_RATIOS: Final = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
OUTPUT_FORMATS: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
STYLE_PRESETS: Final = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture")
MAX_PROMPT: Final = 10_000
MAX_SEED: Final = 4_294_967_294
TEXTURE_RESOLUTIONS: Final = (512, 1024, 2048)
REMESH: Final = ("none", "triangle", "quad")
MAX_VERTEX_COUNT: Final = 20_000
# Stable Fast 3D's input: each side at least 64 px, 4,096 to 4,194,304 pixels in all.
MIN_3D_SIDE: Final = 64
MAX_3D_PIXELS: Final = 4_194_304
# Stability bans a key for 60 s after a 429 (its rate limit: 150 requests in 10 s) and does
# not always say so in a Retry-After header.
RATE_LIMIT_PENALTY_S: Final = 60.0
CREDIT_USD_MICROS: Final = 10_000  # 1 credit = $0.01
GLB_MAGIC: Final = b"glTF"


#: One multipart part: a plain field `(name, (None, value))` or a file
#: `(name, (filename, bytes, content_type))`.
Part = tuple[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]]


_TEXT_TO_IMAGE: Final = frozenset({"text_to_image"})
_IMAGE_TO_3D: Final = frozenset({"image_to_3d"})

class StabilityError(msgspec.Struct, kw_only=True):
    """Stability's error body."""

    id: str | None = None
    name: str | None = None
    errors: list[str] = msgspec.field(default_factory=list)
    message: str | None = None


class Balance(msgspec.Struct, kw_only=True):
    credits: float


class ImageOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A checked text-to-image request: the endpoint and the form fields to send."""

    engine: str
    price: str
    fields: dict[str, str]
    content_type: str


class ModelOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A checked image-to-3D request: the input image and the form fields to send."""

    image: media.MediaInput
    fields: dict[str, str]


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...],
            default: str) -> str:
    value = params.get(key, default)
    if value not in allowed:
        raise InvalidParams(f"{key} must be one of {', '.join(allowed)}", param=f"params.{key}")
    return str(value)


def _int(params: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParams(f"{key} must be an integer from {low} to {high}",
                            param=f"params.{key}")
    return value


def image_options(request: ProviderRequest) -> ImageOptions:
    """The request's checked text-to-image options; raises `InvalidParams` naming the bad
    parameter."""
    params = request.params
    if len(request.prompt) > MAX_PROMPT:
        raise InvalidParams(f"prompt must be at most {MAX_PROMPT} characters", param="prompt")
    engine = _choice(params, "engine", ENGINES, "core")
    fields = {"prompt": request.prompt,
              "aspect_ratio": _choice(params, "aspect_ratio", ASPECT_RATIOS, "1:1")}
    output_format = _choice(params, "output_format", tuple(OUTPUT_FORMATS), "png")
    fields["output_format"] = output_format
    negative = params.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str) or len(negative) > MAX_PROMPT:
            raise InvalidParams(f"negative_prompt must be text of at most {MAX_PROMPT} "
                                "characters", param="params.negative_prompt")
        fields["negative_prompt"] = negative
    seed = _int(params, "seed", 0, MAX_SEED)
    if seed is not None:
        fields["seed"] = str(seed)
    if "style_preset" in params:
        if engine != "core":
            raise InvalidParams("style_preset is only accepted by engine core",
                                param="params.style_preset")
        fields["style_preset"] = _choice(params, "style_preset", STYLE_PRESETS, "")
    price = engine
    if engine == "sd3":
        price = fields["model"] = _choice(params, "model", SD3_MODELS, "sd3.5-large")
    elif "model" in params:
        raise InvalidParams("model is only accepted by engine sd3", param="params.model")
    return ImageOptions(engine=engine, price=price, fields=fields,
                        content_type=OUTPUT_FORMATS[output_format])


def model_options(request: ProviderRequest) -> ModelOptions:
    """The request's checked image-to-3D options; raises `InvalidParams` naming the bad
    parameter."""
    params = request.params
    image = request.inputs.get("image")
    if image is None:
        raise InvalidParams("image_to_3d needs an input image: give params.image_url",
                            param="params.image_url")
    width, height = media.image_size(image, "params.image")
    if min(width, height) < MIN_3D_SIDE or width * height > MAX_3D_PIXELS:
        raise InvalidParams(f"the image must have sides of at least {MIN_3D_SIDE} pixels and "
                            f"at most {MAX_3D_PIXELS} pixels in all", param="params.image")
    fields: dict[str, str] = {}
    texture = params.get("texture_resolution")
    if texture is not None:
        if (isinstance(texture, bool) or not isinstance(texture, int)
                or texture not in TEXTURE_RESOLUTIONS):
            raise InvalidParams("texture_resolution must be 512, 1024 or 2048",
                                param="params.texture_resolution")
        fields["texture_resolution"] = str(texture)
    ratio = params.get("foreground_ratio")
    if ratio is not None:
        if (isinstance(ratio, bool) or not isinstance(ratio, int | float)
                or not 0.1 <= ratio <= 1.0):
            raise InvalidParams("foreground_ratio must be a number from 0.1 to 1",
                                param="params.foreground_ratio")
        fields["foreground_ratio"] = str(ratio)
    if "remesh" in params:
        fields["remesh"] = _choice(params, "remesh", REMESH, "none")
    vertices = _int(params, "vertex_count", -1, MAX_VERTEX_COUNT)
    if vertices is not None:
        fields["vertex_count"] = str(vertices)
    return ModelOptions(image=image, fields=fields)


def _error(response: httpx.Response) -> ProviderError:
    """Classify a Stability error answer by its status and its `name`."""
    try:
        body = msgspec.json.decode(response.content, type=StabilityError)
    except msgspec.DecodeError:
        body = StabilityError(message=response.text[:300] or None)
    reasons = "; ".join(body.errors) or body.message or ""
    message = f"Stability answered HTTP {response.status_code}"
    if body.name:
        message += f" ({body.name})"
    if reasons:
        message += f": {reasons}"
    status = response.status_code
    if status == 403 and body.name == "content_moderation":
        return ProviderError.content_policy(message)
    if status == 402:
        # Out of credits: the account's problem, not the request's; another provider may
        # serve it while the operator tops up.
        return ProviderError.quota_exhausted(message)
    retry_after = response.headers.get("retry-after")
    if status == 429 and retry_after is None:
        return ProviderError.rate_limited(message, retry_after_s=RATE_LIMIT_PENALTY_S)
    return error_for_status(status, message, retry_after=retry_after)


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None


class Stability(Provider):
    """Stability AI's hosted API: text to image (Core, Ultra, SD 3.5) and image to 3D."""

    name = "stability"
    description = ("Stability AI: Stable Image Core / Ultra / SD 3.5 text to image, and "
                   "Stable Fast 3D image to GLB.")
    media_types = frozenset({"image", "model_3d"})
    operations = frozenset({"text_to_image", "image_to_3d"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        **{engine: ModelSpec(operations=frozenset({"text_to_image"}),
                             params={"engine": engine}) for engine in ENGINES if engine != "sd3"},
        **{model: ModelSpec(operations=frozenset({"text_to_image"}),
                            params={"engine": "sd3", "model": model}) for model in SD3_MODELS},
    }
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "aspect_ratio": declare("aspect_ratio", operations=_TEXT_TO_IMAGE,
                                choices=ASPECT_RATIOS, default="1:1",
                                description="The image's shape, width:height"),
        "output_format": declare("output_format", operations=_TEXT_TO_IMAGE,
                                 choices=tuple(OUTPUT_FORMATS), default="png",
                                 description="The image file type"),
        "negative_prompt": declare("negative_prompt", operations=_TEXT_TO_IMAGE,
                                   description="What the image should not show"),
        "seed": declare("seed", operations=_TEXT_TO_IMAGE, minimum=0, maximum=MAX_SEED,
                        description="The same seed and prompt give the same image"),
        "model": declare("model", operations=_TEXT_TO_IMAGE, choices=SD3_MODELS,
                         description="engine sd3 only: which Stable Diffusion 3.5 model"),
        "engine": ParamSpec(kind="string", max_length=16, operations=_TEXT_TO_IMAGE,
                            choices=ENGINES, default="core",
                            description="Stable Image Core (fast), Ultra (best) or SD 3.5"),
        "style_preset": ParamSpec(kind="string", max_length=32, operations=_TEXT_TO_IMAGE,
                                  choices=STYLE_PRESETS,
                                  description="engine core only: a style to lean towards"),
        **common("image", operations=_IMAGE_TO_3D),
        "texture_resolution": ParamSpec(kind="integer", operations=_IMAGE_TO_3D,
                                        choices=TEXTURE_RESOLUTIONS, default=1024,
                                        description="Texture size in pixels"),
        "foreground_ratio": ParamSpec(kind="number", operations=_IMAGE_TO_3D, minimum=0.1,
                                      maximum=1.0, default=0.85,
                                      description="How much of the frame the object fills"),
        "remesh": ParamSpec(kind="string", max_length=16, operations=_IMAGE_TO_3D,
                            choices=REMESH, default="none",
                            description="The mesh's faces: as made, triangles or quads"),
        "vertex_count": ParamSpec(kind="integer", operations=_IMAGE_TO_3D, minimum=-1,
                                  maximum=MAX_VERTEX_COUNT, default=-1,
                                  description="Target vertices; -1 leaves it to the model"),
    }
    param_defaults = {"engine": "core", "aspect_ratio": "1:1", "output_format": "png"}
    # Credits per successful generation, at $0.01 a credit (platform.stability.ai/pricing).
    prices: Mapping[str, int] = {
        "core": 3 * CREDIT_USD_MICROS,
        "ultra": 8 * CREDIT_USD_MICROS,
        "sd3.5-large": 65 * CREDIT_USD_MICROS // 10,
        "sd3.5-large-turbo": 4 * CREDIT_USD_MICROS,
        "sd3.5-medium": 35 * CREDIT_USD_MICROS // 10,
        "stable-fast-3d": 10 * CREDIT_USD_MICROS,
    }

    def __init__(self, *, timeout_s: float = 120.0) -> None:
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)

    def _price_name(self, request: ProviderRequest) -> str:
        if request.operation == "image_to_3d":
            model_options(request)
            return "stable-fast-3d"
        return image_options(request).price

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Stability's flat price for the engine/model (or Stable Fast 3D), in USD micros.

        Called before anything is reserved; raises `InvalidParams` for a bad parameter."""
        return self.prices[self._price_name(request)]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Call Stability once; returns the image or GLB and the flat price charged.

        Raises `ProviderError`: content moderation (a 403 or a filtered image) is
        `content_policy`, 402 is `quota_exhausted`, and the rest by status."""
        if request.operation == "image_to_3d":
            return await self._image_to_3d(request, credentials, client)
        return await self._text_to_image(request, credentials, client)

    def _base(self, credentials: Credentials) -> str:
        return (credentials.base_url or BASE_URL).rstrip("/")

    def _headers(self, credentials: Credentials) -> dict[str, str]:
        if not credentials.api_key:
            raise ProviderError.auth("no Stability API key is configured")
        return {"Authorization": f"Bearer {credentials.api_key}"}

    async def _post(self, client: httpx.AsyncClient, url: str, headers: dict[str, str],
                    files: list[Part]) -> httpx.Response:
        try:
            response = await client.post(url, headers=headers, files=files,
                                         timeout=self.timeout)
        except Exception as exc:  # timeouts and transport errors, classified
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise _error(response)
        return response

    async def _text_to_image(self, request: ProviderRequest, credentials: Credentials,
                             client: httpx.AsyncClient) -> ProviderResult:
        options = image_options(request)
        headers = {**self._headers(credentials), "Accept": "image/*"}
        # Every field as its own multipart part (no filename): the endpoint takes only
        # multipart/form-data, even when no file is sent.
        parts: list[Part] = [(key, (None, value)) for key, value in options.fields.items()]
        response = await self._post(
            client, f"{self._base(credentials)}/v2beta/stable-image/generate/{options.engine}",
            headers, parts)
        if response.headers.get("finish-reason", "SUCCESS").upper() == "CONTENT_FILTERED":
            raise ProviderError.content_policy(
                "Stability filtered the generated image (finish-reason: CONTENT_FILTERED)")
        data = response.content
        if not data:
            raise ProviderError.server_error("Stability answered 200 with no image")
        content_type = response.headers.get("content-type", options.content_type)
        content_type = content_type.split(";", 1)[0].strip() or options.content_type
        width, height = _image_size(data)
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type=content_type, width=width,
                                    height=height)],
            cost_usd_micros=self.prices[options.price])

    async def _image_to_3d(self, request: ProviderRequest, credentials: Credentials,
                           client: httpx.AsyncClient) -> ProviderResult:
        options = model_options(request)
        image = options.image
        parts: list[Part] = [
            ("image", (f"input.{image.extension}", image.data, image.content_type))]
        parts += [(key, (None, value)) for key, value in options.fields.items()]
        response = await self._post(client, f"{self._base(credentials)}/v2beta/3d/stable-fast-3d",
                                    self._headers(credentials), parts)
        data = response.content
        if not data.startswith(GLB_MAGIC):
            raise ProviderError.server_error("Stability answered 200 without a GLB model")
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type="model/gltf-binary")],
            cost_usd_micros=self.prices["stable-fast-3d"])

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: `GET /v1/user/balance` with our key; healthy when the
        key is accepted and credits remain."""
        try:
            response = await client.get(f"{self._base(credentials)}/v1/user/balance",
                                        headers=self._headers(credentials),
                                        timeout=httpx.Timeout(10.0))
        except Exception as exc:
            return Health(ok=False, detail=error_from_exception(exc).message)
        if response.status_code != 200:
            return Health(ok=False, detail=_error(response).message)
        try:
            balance = msgspec.json.decode(response.content, type=Balance)
        except msgspec.DecodeError:
            return Health(ok=False, detail="Stability's balance answer was not understood")
        if balance.credits <= 0:
            return Health(ok=False, detail="the Stability account has no credits left")
        return Health(ok=True, detail=f"{balance.credits:g} credits left")

    def pricing(self) -> dict[str, Any]:
        """The per-generation prices (USD micros) for `GET /v1/providers`."""
        units = {name: "per model" if name == "stable-fast-3d" else "per image"
                 for name in self.prices}
        return {"usd_micros": dict(self.prices), "units": units,
                "engines": list(ENGINES), "sd3_models": list(SD3_MODELS)}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Stability())
