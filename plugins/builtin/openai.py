"""OpenAI: images (DALL·E 2/3, gpt-image-1) and speech (tts-1, tts-1-hd, gpt-4o-mini-tts).

Speaks OpenAI's public REST API with the gateway's `httpx` client (no SDK):

- `POST /v1/images/generations` (JSON): `text_to_image` with `dall-e-3`, `gpt-image-1` or
  `dall-e-2`;
- `POST /v1/images/edits` (multipart): `image_edit` with `gpt-image-1` or `dall-e-2`, an
  image and an optional mask;
- `POST /v1/images/variations` (multipart): `image_variation` with `dall-e-2`;
- `POST /v1/audio/speech` (JSON, answers with the audio bytes): `text_to_speech`;
- `GET /v1/models`: `health`.

DALL·E models are asked for `response_format=b64_json`, so every image comes back as bytes in
the response (their `url` form expires after an hour); the GPT image models always answer in
base64. Prices are OpenAI's published ones (see `PRICES` and plugins/README.md). This module
never imports the `openai` package: everything here is plain HTTP.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins import media
from plugins.builtin.local import _media
from plugins.errors import (
    CONTENT_POLICY,
    InvalidParams,
    ProviderError,
    error_from_response,
    parse_retry_after,
)
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
from plugins.vocabulary import ParamLimits, ParamSpec, common, declare

#: The public API root; `MEDIAHUB_OPENAI_BASE_URL` replaces it (with the `/v1`, as the
#: official SDKs' `base_url`).
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"

#: Generating an image takes up to a couple of minutes for gpt-image-1 at high quality.
IMAGE_TIMEOUT: Final = httpx.Timeout(240.0, connect=10.0)
SPEECH_TIMEOUT: Final = httpx.Timeout(120.0, connect=10.0)
HEALTH_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)

#: Error codes in a 400 body that mean a safety refusal: DALL·E's and gpt-image-1's.
CONTENT_POLICY_CODES: Final = frozenset({"content_policy_violation", "moderation_blocked"})
#: A 429 whose body says the account has no credit left: the account's problem, not the
#: request's (`quota_exhausted`, retryable: another provider may serve it).
QUOTA_CODE: Final = "insufficient_quota"

# --- Published prices --------------------------------------------------------------------
# USD micros. Images: per image, by model, quality and size. gpt-image-1 is billed by tokens;
# its per-image figures are OpenAI's own table of what the output tokens of one image cost,
# and the token rates price the prompt (and input images of an edit). Speech: per 1M
# characters of input (tts-1, tts-1-hd); gpt-4o-mini-tts is billed by tokens, so its figure
# is an upper bound (see plugins/README.md).
PRICES: Final[dict[str, int]] = {
    "dall-e-3_standard_1024x1024": 40_000,
    "dall-e-3_standard_1024x1792": 80_000,
    "dall-e-3_standard_1792x1024": 80_000,
    "dall-e-3_hd_1024x1024": 80_000,
    "dall-e-3_hd_1024x1792": 120_000,
    "dall-e-3_hd_1792x1024": 120_000,
    "dall-e-2_256x256": 16_000,
    "dall-e-2_512x512": 18_000,
    "dall-e-2_1024x1024": 20_000,
    "gpt-image-1_low_1024x1024": 11_000,
    "gpt-image-1_low_1024x1536": 16_000,
    "gpt-image-1_low_1536x1024": 16_000,
    "gpt-image-1_medium_1024x1024": 42_000,
    "gpt-image-1_medium_1024x1536": 63_000,
    "gpt-image-1_medium_1536x1024": 63_000,
    "gpt-image-1_high_1024x1024": 167_000,
    "gpt-image-1_high_1024x1536": 250_000,
    "gpt-image-1_high_1536x1024": 250_000,
    "gpt-image-1_text_input_per_1m_tokens": 5_000_000,
    "gpt-image-1_image_input_per_1m_tokens": 10_000_000,
    "gpt-image-1_image_output_per_1m_tokens": 40_000_000,
    "tts-1_per_1m_characters": 15_000_000,
    "tts-1-hd_per_1m_characters": 30_000_000,
    "gpt-4o-mini-tts_per_1m_characters": 30_000_000,
}
#: What one input image (or mask) of a gpt-image-1 edit is allowed in image-input tokens for
#: the estimate: OpenAI does not publish a per-image figure, so this takes the largest
#: token count it publishes for one image (a 1024x1536 high-quality output). The charge is
#: computed from the `usage` OpenAI reports and capped at the estimate.
EDIT_INPUT_IMAGE_TOKENS: Final = 6240

# --- Parameters --------------------------------------------------------------------------
GENERATION_MODELS: Final = ("dall-e-3", "gpt-image-1", "dall-e-2")
EDIT_MODELS: Final = ("gpt-image-1", "dall-e-2")
VARIATION_MODELS: Final = ("dall-e-2",)
DEFAULT_MODELS: Final = {"text_to_image": "dall-e-3", "image_edit": "gpt-image-1",
                         "image_variation": "dall-e-2", "text_to_speech": "tts-1"}
SIZES: Final[dict[str, tuple[str, ...]]] = {
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
QUALITIES: Final[dict[str, tuple[str, ...]]] = {
    "dall-e-3": ("standard", "hd"),
    "dall-e-2": ("standard",),
    "gpt-image-1": ("low", "medium", "high", "auto"),
}
DEFAULT_QUALITY: Final = {"dall-e-3": "standard", "dall-e-2": "standard", "gpt-image-1": "auto"}
DEFAULT_SIZE: Final = "1024x1024"
STYLES: Final = ("vivid", "natural")
OUTPUT_FORMATS: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
BACKGROUNDS: Final = ("transparent", "opaque", "auto")
MODERATIONS: Final = ("low", "auto")
MAX_N: Final = 10
#: Prompt limits in characters (the SDK's documentation of `prompt`).
PROMPT_LIMITS: Final = {"dall-e-3": 4000, "dall-e-2": 1000, "gpt-image-1": 32000}
#: dall-e-2 takes a square PNG under 4 MB (image, mask); gpt-image-1 a PNG, JPEG or WebP.
DALL_E_2_MAX_BYTES: Final = 4 * 1024 * 1024

SPEECH_MODELS: Final = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
#: tts-1 and tts-1-hd speak a smaller set of voices than gpt-4o-mini-tts.
TTS1_VOICES: Final = ("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage",
                      "shimmer")
VOICES: Final[dict[str, tuple[str, ...]]] = {
    "tts-1": TTS1_VOICES,
    "tts-1-hd": TTS1_VOICES,
    "gpt-4o-mini-tts": (*TTS1_VOICES, "ballad", "verse", "marin", "cedar"),
}
DEFAULT_VOICE: Final = "alloy"
SPEECH_FORMATS: Final = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
                         "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}
SPEED_RANGE: Final = (0.25, 4.0)
MAX_SPEECH_CHARACTERS: Final = 4096


_IMAGE_OPERATIONS: Final = frozenset({"text_to_image", "image_edit", "image_variation"})
_SPEECH: Final = frozenset({"text_to_speech"})

class ImageInput(msgspec.Struct, frozen=True):
    """A checked input image (`image` or `mask`): bytes, MIME type, pixel size."""

    data: bytes
    content_type: str
    width: int
    height: int


class ImageOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A checked image request: what is sent, and what the estimate reads."""

    operation: str
    model: str
    n: int
    size: str
    quality: str
    style: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    moderation: str | None = None
    image: ImageInput | None = None
    mask: ImageInput | None = None


class SpeechOptions(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    voice: str
    response_format: str
    speed: float
    instructions: str | None = None


class ApiError(msgspec.Struct, kw_only=True):
    """The `error` object of OpenAI's error body."""

    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class ApiErrorBody(msgspec.Struct):
    error: ApiError


class ImageData(msgspec.Struct, kw_only=True):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class InputTokensDetails(msgspec.Struct, kw_only=True):
    image_tokens: int = 0
    text_tokens: int = 0


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None


class ImagesResponse(msgspec.Struct, kw_only=True):
    created: int = 0
    data: list[ImageData] = msgspec.field(default_factory=list)
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    usage: Usage | None = None


# --- Parameter checks --------------------------------------------------------------------

def _option(params: Mapping[str, Any], key: str,
            allowed: tuple[str, ...] | Mapping[str, Any], what: str = "") -> str | None:
    """`params[key]` when it is one of `allowed`, None when absent; else `InvalidParams`."""
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise InvalidParams(f"{key} must be one of {', '.join(allowed)}{what}",
                            param=f"params.{key}")
    return value


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...] | Mapping[str, Any],
            default: str, what: str = "") -> str:
    """`_option` with a default for an absent value."""
    value = _option(params, key, allowed, what)
    return default if value is None else value


def _refuse(params: Mapping[str, Any], keys: tuple[str, ...], when: bool, why: str) -> None:
    """Refuse `keys` the call would not take (`when` true), saying `why`."""
    for key in keys:
        if when and params.get(key) is not None:
            raise InvalidParams(f"{key} is {why}", param=f"params.{key}")


def check_image(value: media.MediaInput, param: str) -> ImageInput:
    """An input image (`image`, `mask`) with its pixel size; raises `InvalidParams` naming
    `param` when it is not a PNG, JPEG or WebP image."""
    width, height = media.image_size(value, param)
    return ImageInput(data=value.data, content_type=value.content_type, width=width,
                      height=height)


def _check_dall_e_2_input(image: ImageInput, param: str) -> None:
    if image.content_type != "image/png":
        raise InvalidParams(f"dall-e-2 needs a PNG in {param}", param=param)
    if len(image.data) >= DALL_E_2_MAX_BYTES:
        raise InvalidParams(f"dall-e-2 needs {param} under 4 MB", param=param)
    if image.width != image.height:
        raise InvalidParams(f"dall-e-2 needs a square image in {param}", param=param)


def image_options(request: ProviderRequest) -> ImageOptions:
    """Check an image request's params; returns the options, or raises `InvalidParams`."""
    params = request.params
    operation = request.operation
    models = {"text_to_image": GENERATION_MODELS, "image_edit": EDIT_MODELS,
              "image_variation": VARIATION_MODELS}[operation]
    model = _choice(params, "model", models, DEFAULT_MODELS[operation], f" for {operation}")
    if operation != "image_variation":
        if not request.prompt.strip():
            raise InvalidParams("a prompt is required", param="prompt")
        if len(request.prompt) > PROMPT_LIMITS[model]:
            raise InvalidParams(f"{model} takes a prompt of at most {PROMPT_LIMITS[model]} "
                                "characters", param="prompt")
    n = params.get("n", 1)
    top = 1 if model == "dall-e-3" else MAX_N
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
        raise InvalidParams(f"n must be an integer from 1 to {top} with {model}",
                            param="params.n")
    size = _choice(params, "size", SIZES[model], DEFAULT_SIZE, f" with {model}")
    quality = _choice(params, "quality", QUALITIES[model], DEFAULT_QUALITY[model],
                      f" with {model}")
    _refuse(params, ("quality",), operation == "image_variation",
            "not accepted by image_variation")
    _refuse(params, ("style",), model != "dall-e-3", "only accepted with dall-e-3")
    _refuse(params, ("output_format", "output_compression", "background"),
            model != "gpt-image-1", "only accepted with gpt-image-1")
    _refuse(params, ("moderation",), model != "gpt-image-1" or operation != "text_to_image",
            "only accepted by text_to_image with gpt-image-1")
    style = _option(params, "style", STYLES)
    output_format = _option(params, "output_format", OUTPUT_FORMATS)
    background = _option(params, "background", BACKGROUNDS)
    moderation = _option(params, "moderation", MODERATIONS)
    if background == "transparent" and output_format == "jpeg":
        raise InvalidParams("a transparent background needs output_format png or webp",
                            param="params.background")
    compression = params.get("output_compression")
    if compression is not None:
        if isinstance(compression, bool) or not isinstance(compression, int) or not (
                0 <= compression <= 100):
            raise InvalidParams("output_compression must be an integer from 0 to 100",
                                param="params.output_compression")
        if output_format not in ("jpeg", "webp"):
            raise InvalidParams("output_compression needs output_format jpeg or webp",
                                param="params.output_compression")
    image = mask = None
    inputs = request.inputs
    if operation in ("image_edit", "image_variation"):
        if "image" not in inputs:
            raise InvalidParams(f"{operation} needs params.image (or params.image_url)",
                                param="params.image")
        image = check_image(inputs["image"], "params.image")
        if model == "dall-e-2":
            _check_dall_e_2_input(image, "params.image")
    if "mask" in inputs:
        if operation != "image_edit":
            raise InvalidParams("a mask is only accepted by image_edit", param="params.mask")
        mask = check_image(inputs["mask"], "params.mask")
        assert image is not None
        if mask.content_type != "image/png":
            raise InvalidParams("the mask must be a PNG (its transparent pixels mark what "
                                "to edit)", param="params.mask")
        if (mask.width, mask.height) != (image.width, image.height):
            raise InvalidParams("the mask must have the same size as the image",
                                param="params.mask")
        if model == "dall-e-2":
            _check_dall_e_2_input(mask, "params.mask")
    return ImageOptions(operation=operation, model=model, n=n, size=size, quality=quality,
                        style=style, output_format=output_format,
                        output_compression=compression, background=background,
                        moderation=moderation, image=image, mask=mask)


def speech_options(request: ProviderRequest) -> SpeechOptions:
    """Check a speech request's params; returns the options, or raises `InvalidParams`."""
    params = request.params
    if not request.prompt.strip():
        raise InvalidParams("the text to speak is empty", param="text")
    if len(request.prompt) > MAX_SPEECH_CHARACTERS:
        raise InvalidParams(f"OpenAI speaks at most {MAX_SPEECH_CHARACTERS} characters "
                            "per request", param="text")
    model = _choice(params, "model", SPEECH_MODELS, DEFAULT_MODELS["text_to_speech"])
    voice = _choice(params, "voice", VOICES[model], DEFAULT_VOICE, f" with {model}")
    response_format = _choice(params, "response_format", SPEECH_FORMATS, "mp3")
    speed = _media.number_param(params, "speed", default=1.0, low=SPEED_RANGE[0],
                                high=SPEED_RANGE[1])
    instructions = params.get("instructions")
    if instructions is not None:
        if model != "gpt-4o-mini-tts":
            raise InvalidParams("instructions only work with gpt-4o-mini-tts",
                                param="params.instructions")
        if not isinstance(instructions, str) or len(instructions) > MAX_SPEECH_CHARACTERS:
            raise InvalidParams(f"instructions must be text of at most "
                                f"{MAX_SPEECH_CHARACTERS} characters",
                                param="params.instructions")
    return SpeechOptions(model=model, voice=voice, response_format=response_format,
                         speed=float(speed), instructions=instructions)


# --- Prices ------------------------------------------------------------------------------

def per_million(units: int, rate_per_million: int) -> int:
    """`units` x a per-1M-units price in USD micros, rounded up to a whole micro."""
    return -(-units * rate_per_million // 1_000_000)


def _image_price_key(model: str, quality: str, size: str) -> str:
    if model == "dall-e-2":
        return f"dall-e-2_{size}"
    return f"{model}_{quality}_{size}"


def per_image_bound(prices: Mapping[str, int], options: ImageOptions) -> int:
    """The highest per-image price the options allow (`auto` quality or size: the dearest)."""
    model = options.model
    qualities = ([q for q in QUALITIES[model] if q != "auto"] if options.quality == "auto"
                 else [options.quality])
    sizes = ([s for s in SIZES[model] if s != "auto"] if options.size == "auto"
             else [options.size])
    return max(prices[_image_price_key(model, q, s)] for q in qualities for s in sizes)


def estimate_images(prices: Mapping[str, int], options: ImageOptions, prompt: str) -> int:
    """n x the per-image price; gpt-image-1 adds its prompt (at most one token per UTF-8
    byte) and, for an edit, an allowance per input image (see `EDIT_INPUT_IMAGE_TOKENS`)."""
    total = options.n * per_image_bound(prices, options)
    if options.model == "gpt-image-1":
        total += per_million(len(prompt.encode()),
                              prices["gpt-image-1_text_input_per_1m_tokens"])
        inputs = (options.image is not None) + (options.mask is not None)
        total += per_million(inputs * EDIT_INPUT_IMAGE_TOKENS,
                              prices["gpt-image-1_image_input_per_1m_tokens"])
    return total


def charged_images(prices: Mapping[str, int], options: ImageOptions,
                   answer: ImagesResponse, images: int, estimate: int) -> int:
    """What OpenAI bills for the answer, never above `estimate`.

    gpt-image-1 reports `usage` (tokens), priced at the token rates; otherwise the answer's
    `quality`/`size` (what `auto` resolved to) or the request's give the per-image price.
    """
    usage = answer.usage
    if options.model == "gpt-image-1" and usage is not None:
        details = usage.input_tokens_details or InputTokensDetails(
            text_tokens=usage.input_tokens)
        cost = (per_million(details.text_tokens,
                             prices["gpt-image-1_text_input_per_1m_tokens"])
                + per_million(details.image_tokens,
                               prices["gpt-image-1_image_input_per_1m_tokens"])
                + per_million(usage.output_tokens,
                               prices["gpt-image-1_image_output_per_1m_tokens"]))
        return min(cost, estimate)
    quality = answer.quality if answer.quality in QUALITIES[options.model] else options.quality
    size = answer.size if answer.size in SIZES[options.model] else options.size
    resolved = msgspec.structs.replace(options, quality=quality or options.quality,
                                       size=size or options.size)
    return min(images * per_image_bound(prices, resolved), estimate)


def estimate_speech(prices: Mapping[str, int], options: SpeechOptions, text: str) -> int:
    """Characters x the model's per-1M-characters price (gpt-4o-mini-tts counts its
    instructions too: they are billed input)."""
    characters = len(text) + (len(options.instructions or "")
                              if options.model == "gpt-4o-mini-tts" else 0)
    return per_million(characters, prices[f"{options.model}_per_1m_characters"])


# --- Errors ------------------------------------------------------------------------------

def api_error(response: httpx.Response) -> ApiError:
    """The `error` object of an error answer (an empty one when the body is not OpenAI's)."""
    try:
        return msgspec.json.decode(response.content, type=ApiErrorBody).error
    except msgspec.DecodeError:
        return ApiError(message=response.text[:300])


def classify(response: httpx.Response) -> ProviderError:
    """An error answer → `ProviderError`.

    429 `insufficient_quota` is `quota_exhausted` (retryable elsewhere); other 429s are
    `rate_limited` with `Retry-After`; a 400 whose code is a safety refusal is
    `content_policy`; the rest by status (401/403 auth, other 4xx invalid_input, 5xx
    server_error).
    """
    error = api_error(response)
    code = str(error.code) if error.code is not None else None
    message = f"OpenAI: {error.message}" if error.message else None
    if response.status_code == 429 and QUOTA_CODE in (code, error.type):
        return ProviderError.quota_exhausted(message or "OpenAI: the account's quota is used up")
    if response.status_code == 400 and code in CONTENT_POLICY_CODES:
        return error_from_response(response, message, code=CONTENT_POLICY)
    classified = error_from_response(response, message)
    # OpenAI's SDKs read `retry-after-ms` before `retry-after`; so do we.
    retry_after_ms = response.headers.get("retry-after-ms")
    if classified.retryable and retry_after_ms is not None:
        seconds = parse_retry_after(retry_after_ms)
        if seconds is not None:
            classified.retry_after_s = seconds / 1000
    return classified


def base_url(credentials: Credentials) -> str:
    """The API root the call goes to (the tenant's or operator's base URL, else OpenAI's)."""
    return (credentials.base_url or DEFAULT_BASE_URL).rstrip("/")


def auth_headers(credentials: Credentials) -> dict[str, str]:
    """The bearer header of a call; raises `ProviderError.auth` when no key is configured."""
    if not credentials.api_key:
        raise ProviderError.auth("no OpenAI API key is configured")
    return {"Authorization": f"Bearer {credentials.api_key}"}


async def models_health(credentials: Credentials, client: httpx.AsyncClient) -> Health:
    """Whether the account answers `GET /models` (cheap, authenticated, free); called by the
    health checks of every provider speaking to OpenAI's API (images, speech, chat)."""
    try:
        response = await client.get(f"{base_url(credentials)}/models",
                                    headers=auth_headers(credentials), timeout=HEALTH_TIMEOUT)
    except ProviderError as exc:
        return Health(ok=False, detail=exc.message)
    except httpx.HTTPError as exc:
        return Health(ok=False, detail=f"OpenAI could not be reached "
                                       f"({type(exc).__name__})")
    if response.status_code != 200:
        error = classify(response)
        return Health(ok=False, detail=f"{error.code}: {error.message}")
    return Health(ok=True, detail="models listed")


# --- The provider ------------------------------------------------------------------------

def _unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The values of `groups`, each once, in first-seen order (a param's choices across
    models)."""
    return tuple(dict.fromkeys(value for group in groups for value in group))


def _model_limits(model: str) -> dict[str, ParamLimits]:
    """What `model` narrows (`ModelSpec.limits`, shown by `GET /v1/providers`): an image
    model's sizes, qualities and image count, a speech model's voices."""
    if model in VOICES:
        return {"voice": ParamLimits(choices=VOICES[model])}
    return {"size": ParamLimits(choices=SIZES[model]),
            "quality": ParamLimits(choices=QUALITIES[model]),
            "n": ParamLimits(minimum=1, maximum=1 if model == "dall-e-3" else MAX_N)}


class OpenAI(Provider):
    """OpenAI's image and speech endpoints."""

    name = "openai"
    description = ("OpenAI: images with DALL·E 3 / gpt-image-1 (generate, edit with a mask), "
                   "DALL·E 2 variations, and speech (tts-1, tts-1-hd, gpt-4o-mini-tts).")
    media_types = frozenset({"image", "audio"})
    operations = frozenset({"text_to_image", "image_edit", "image_variation",
                            "text_to_speech"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        model: ModelSpec(operations=frozenset(
            op for op, names in (("text_to_image", GENERATION_MODELS),
                                 ("image_edit", EDIT_MODELS),
                                 ("image_variation", VARIATION_MODELS),
                                 ("text_to_speech", SPEECH_MODELS)) if model in names),
            params={"model": model}, limits=_model_limits(model))
        for model in (*GENERATION_MODELS, *SPEECH_MODELS)}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "model": declare("model", choices=(*GENERATION_MODELS, *SPEECH_MODELS),
                         description="text_to_image: dall-e-3 (default), gpt-image-1 or "
                                     "dall-e-2; image_edit: gpt-image-1 (default) or dall-e-2; "
                                     "image_variation: dall-e-2; speech: tts-1 (default), "
                                     "tts-1-hd or gpt-4o-mini-tts"),
        "n": declare("n", operations=_IMAGE_OPERATIONS, minimum=1, maximum=MAX_N, default=1,
                     description="How many images (dall-e-3 makes one)"),
        "size": declare("size", operations=_IMAGE_OPERATIONS,
                        choices=_unique(*SIZES.values()), default=DEFAULT_SIZE,
                        description="Width x height in pixels; the model decides which apply"),
        "quality": declare("quality", operations=_IMAGE_OPERATIONS,
                           choices=_unique(*QUALITIES.values()),
                           description="dall-e-3: standard or hd; gpt-image-1: low, medium, "
                                       "high or auto"),
        "style": declare("style", operations=_IMAGE_OPERATIONS, choices=STYLES,
                         description="dall-e-3 only: vivid (dramatic) or natural"),
        "output_format": declare("output_format", operations=_IMAGE_OPERATIONS,
                                 choices=tuple(OUTPUT_FORMATS),
                                 description="gpt-image-1 only: png, jpeg or webp"),
        "output_compression": ParamSpec(kind="integer", operations=_IMAGE_OPERATIONS,
                                        minimum=0, maximum=100,
                                        description="gpt-image-1 jpeg/webp: compression, "
                                                    "0 to 100 %"),
        "background": ParamSpec(kind="string", max_length=32, operations=_IMAGE_OPERATIONS,
                                choices=BACKGROUNDS,
                                description="gpt-image-1 only: transparent needs png or webp"),
        "moderation": ParamSpec(kind="string", max_length=32, operations=_IMAGE_OPERATIONS,
                                choices=MODERATIONS,
                                description="gpt-image-1 only: content moderation strictness"),
        # The image is refused by name for text_to_image, the mask outside image_edit.
        **common("image", "mask", operations=_IMAGE_OPERATIONS),
        "voice": declare("voice", operations=_SPEECH, choices=VOICES["gpt-4o-mini-tts"],
                         default=DEFAULT_VOICE,
                         description="ballad, verse, marin and cedar need gpt-4o-mini-tts"),
        "speed": declare("speed", operations=_SPEECH, minimum=SPEED_RANGE[0],
                         maximum=SPEED_RANGE[1], default=1.0,
                         description="Speaking speed, 0.25 to 4 times normal"),
        "response_format": ParamSpec(kind="string", max_length=16, operations=_SPEECH,
                                     choices=tuple(SPEECH_FORMATS), default="mp3",
                                     description="The audio file type"),
        "instructions": ParamSpec(kind="string", max_length=MAX_SPEECH_CHARACTERS,
                                  operations=_SPEECH,
                                  description="gpt-4o-mini-tts only: how to speak (tone, "
                                              "accent, pace)"),
    }
    prices: Mapping[str, int] = PRICES

    def validate(self, request: ProviderRequest) -> None:
        """Called before pricing; raises `InvalidParams` naming the bad parameter."""
        self._options(request)

    def _options(self, request: ProviderRequest) -> ImageOptions | SpeechOptions:
        if request.operation == "text_to_speech":
            if request.type != "audio":
                raise InvalidParams("text_to_speech makes audio", param="type")
            return speech_options(request)
        if request.operation in ("text_to_image", "image_edit", "image_variation"):
            if request.type != "image":
                raise InvalidParams(f"{request.operation} makes images", param="type")
            return image_options(request)
        raise InvalidParams(f"OpenAI does not serve {request.operation}", param="operation")

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the most the call can cost, in USD micros."""
        options = self._options(request)
        if isinstance(options, SpeechOptions):
            return estimate_speech(self.prices, options, request.prompt)
        return estimate_images(self.prices, options, request.prompt)

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Calls the endpoint of the request's operation; returns the images or audio as
        bytes and what OpenAI bills for them (at most the estimate)."""
        options = self._options(request)
        if isinstance(options, SpeechOptions):
            return await self._speak(request, options, credentials, client)
        return await self._images(request, options, credentials, client)

    async def _images(self, request: ProviderRequest, options: ImageOptions,
                      credentials: Credentials, client: httpx.AsyncClient) -> ProviderResult:
        headers = auth_headers(credentials)
        fields = image_fields(options, request.prompt)
        base = base_url(credentials)
        if options.operation == "text_to_image":
            response = await client.post(f"{base}/images/generations", headers=headers,
                                         json=fields, timeout=IMAGE_TIMEOUT)
        else:
            path = "edits" if options.operation == "image_edit" else "variations"
            response = await client.post(
                f"{base}/images/{path}", headers=headers, timeout=IMAGE_TIMEOUT,
                data={k: str(v) for k, v in fields.items()}, files=image_files(options))
        if response.status_code != 200:
            raise classify(response)
        try:
            answer = msgspec.json.decode(response.content, type=ImagesResponse)
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("OpenAI answered with a body that is not an "
                                             "images response") from exc
        outputs = image_outputs(options, answer)
        cost = charged_images(self.prices, options, answer, len(outputs),
                              estimate_images(self.prices, options, request.prompt))
        return ProviderResult(outputs=outputs, cost_usd_micros=cost)

    async def _speak(self, request: ProviderRequest, options: SpeechOptions,
                     credentials: Credentials, client: httpx.AsyncClient) -> ProviderResult:
        body: dict[str, Any] = {"model": options.model, "input": request.prompt,
                                "voice": options.voice,
                                "response_format": options.response_format,
                                "speed": options.speed}
        if options.instructions is not None:
            body["instructions"] = options.instructions
        response = await client.post(f"{base_url(credentials)}/audio/speech",
                                     headers=auth_headers(credentials), json=body,
                                     timeout=SPEECH_TIMEOUT)
        if response.status_code != 200:
            raise classify(response)
        if not response.content:
            raise ProviderError.server_error("OpenAI answered with empty audio")
        duration = (round(len(response.content) / (24_000 * 2), 3)
                    if options.response_format == "pcm" else None)
        return ProviderResult(
            outputs=[ProviderOutput(data=response.content,
                                    content_type=SPEECH_FORMATS[options.response_format],
                                    duration_s=duration)],
            cost_usd_micros=estimate_speech(self.prices, options, request.prompt))

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: lists the models (cheap, authenticated, free)."""
        return await models_health(credentials, client)

    def pricing(self) -> dict[str, Any]:
        """The price table (USD micros) and its units, for `GET /v1/providers`."""
        return {"usd_micros": dict(self.prices),
                "units": {"images": "per image (model_quality_size)",
                          "gpt-image-1_*_per_1m_tokens": "per 1M tokens",
                          "speech": "per 1M characters of input"}}


def image_fields(options: ImageOptions, prompt: str) -> dict[str, Any]:
    """The request fields of an images call (JSON body, or multipart form fields)."""
    fields: dict[str, Any] = {"model": options.model, "n": options.n, "size": options.size}
    if options.operation != "image_variation":
        fields["prompt"] = prompt
        fields["quality"] = options.quality
    if options.model.startswith("dall-e"):
        # The URL form expires after an hour; the bytes are stored at once instead.
        fields["response_format"] = "b64_json"
    for key in ("style", "output_format", "output_compression", "background", "moderation"):
        value = getattr(options, key)
        if value is not None:
            fields[key] = value
    return fields


def image_files(options: ImageOptions) -> dict[str, tuple[str, bytes, str]]:
    """The multipart file parts of an edit or variation: `image` and, if given, `mask`."""
    files: dict[str, tuple[str, bytes, str]] = {}
    for part in ("image", "mask"):
        value: ImageInput | None = getattr(options, part)
        if value is not None:
            extension = value.content_type.split("/")[1]
            files[part] = (f"{part}.{extension}", value.data, value.content_type)
    return files


def image_outputs(options: ImageOptions, answer: ImagesResponse) -> list[ProviderOutput]:
    """The images of an answer as outputs with their bytes; raises `server_error` when the
    answer holds none or a broken one."""
    if not answer.data:
        raise ProviderError.server_error("OpenAI answered without images")
    output_format = answer.output_format or options.output_format or "png"
    content_type = OUTPUT_FORMATS.get(output_format, "image/png")
    size = answer.size or options.size
    width = height = None
    if size != "auto" and "x" in size:
        width, height = (int(side) for side in size.split("x"))
    outputs = []
    for item in answer.data:
        if item.b64_json is not None:
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProviderError.server_error("OpenAI answered with broken base64") from exc
            outputs.append(ProviderOutput(data=data, content_type=content_type,
                                          width=width, height=height))
        elif item.url is not None:
            # Not asked for, but a public URL is still fetchable: the gateway downloads it.
            outputs.append(ProviderOutput(url=item.url, width=width, height=height))
        else:
            raise ProviderError.server_error("OpenAI answered with an empty image")
    return outputs


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(OpenAI())

