"""Between OpenAI's shapes and ours: an OpenAI request becomes `GenerationCreate`s (one per
image asked for), a generation becomes OpenAI's image, video or error. Pure functions over
the catalogue; nothing is written."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

from gateway.core.runtime import Runtime
from gateway.generations.models import QUEUED, RUNNING, SUCCEEDED, Generation
from gateway.generations.schemas import GenerationCreate
from gateway.openai import catalogue
from gateway.openai.schemas import ImageOptions, SpeechRequest, Video, VideoError
from plugins.vocabulary import Operation
from tenants.kernel.errors import InvalidRequest
from tenants.models import Tenant

#: The sizes OpenAI's image models take (`auto`: the provider's default).
IMAGE_SIZES: Final = frozenset({"256x256", "512x512", "1024x1024", "1792x1024", "1024x1792",
                                "1536x1024", "1024x1536", "auto"})
IMAGE_QUALITIES: Final = frozenset({"standard", "hd", "low", "medium", "high", "auto"})
IMAGE_STYLES: Final = frozenset({"vivid", "natural"})
#: OpenAI's preset voices: sent to OpenAI as they are; to another provider, whose voices have
#: other names, they mean "its default voice".
OPENAI_VOICES: Final = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova",
                                  "onyx", "sage", "shimmer", "verse", "marin", "cedar"})
#: OpenAI's video sizes → our aspect ratio and resolution.
VIDEO_SIZES: Final[Mapping[str, tuple[str, str]]] = {
    "720x1280": ("9:16", "720p"), "1280x720": ("16:9", "720p"),
    "1024x1792": ("9:16", "1080p"), "1792x1024": ("16:9", "1080p"),
}
VIDEO_SECONDS: Final = ("4", "8", "12")
DEFAULT_VIDEO_SECONDS: Final = "4"
#: Providers whose `speed` is a multiplier of the normal pace, as OpenAI's; the offline
#: engine's is in words per minute (lowest, highest, normal). A routed request (no model
#: pinning a provider) drops `speed`: its meaning depends on the provider routing picks.
SPEED_MULTIPLIERS: Final = frozenset({"openai", "elevenlabs"})
LOCAL_SPEECH: Final = "local-speech"
LOCAL_WPM: Final = (80, 450, 175)
DEFAULT_VIDEO_SIZE: Final = "720x1280"
OPENAI = "openai"


def _check(value: str | None, allowed: frozenset[str], name: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(sorted(allowed))}",
                             code="invalid_value", param=name)


def _body(target: catalogue.Target, media_type: str, operation: Operation, prompt: str,
          params: dict[str, Any], metadata: dict[str, str] | None = None) -> GenerationCreate:
    return GenerationCreate(type=media_type,  # type: ignore[arg-type]
                            operation=operation, prompt=prompt,
                            params={**target.params, **params}, provider=target.provider,
                            metadata=metadata or {})


def image_bodies(runtime: Runtime, tenant: Tenant, request: ImageOptions, prompt: str, *,
                 operation: Operation = "text_to_image",
                 inputs: Mapping[str, str] | None = None) -> list[GenerationCreate]:
    """The `n` generations an images request asks for; `inputs` are `data:` URLs by input
    name (`image`, `mask`) for edits and variations. Raises `InvalidRequest` for a value
    OpenAI does not define, `NotFound` for an unknown model.

    `size` goes to whichever provider serves it (`auto`: its default); `quality` and
    `style` are OpenAI's words, so they go to OpenAI's models only (another provider has no
    such notion and draws as it does)."""
    _check(request.size, IMAGE_SIZES, "size")
    _check(request.quality, IMAGE_QUALITIES, "quality")
    _check(request.style, IMAGE_STYLES, "style")
    target = catalogue.resolve(runtime, tenant, request.model, operation)
    params: dict[str, Any] = dict(inputs or {})
    if request.size is not None and request.size != "auto":
        params["size"] = request.size
    if target.provider == OPENAI:
        for name in ("quality", "style"):
            value = getattr(request, name)
            if value is not None:
                params[name] = value
    body = _body(target, "image", operation, prompt, params)
    return [body] * request.n


def speech_body(runtime: Runtime, tenant: Tenant, request: SpeechRequest) -> GenerationCreate:
    """The speech generation of `request`. OpenAI's models get the asked `response_format`
    themselves; another provider's audio is converted (`audio.py`)."""
    target = catalogue.resolve(runtime, tenant, request.model, "text_to_speech")
    params: dict[str, Any] = {}
    if target.provider == OPENAI:
        params["voice"] = request.voice
        params["response_format"] = request.response_format
        if request.instructions is not None:
            params["instructions"] = request.instructions
    elif request.voice not in OPENAI_VOICES:
        params["voice"] = request.voice  # the provider's own voice (or a clone) by its id
    if request.speed is not None and target.provider in SPEED_MULTIPLIERS:
        params["speed"] = request.speed
    elif request.speed is not None and target.provider == LOCAL_SPEECH:
        # espeak-ng reads words per minute: OpenAI's 1.0 is its default pace.
        params["speed"] = max(LOCAL_WPM[0], min(LOCAL_WPM[1], round(request.speed * LOCAL_WPM[2])))
    return GenerationCreate(type="audio", operation="text_to_speech", text=request.input,
                            params={**target.params, **params}, provider=target.provider)


def video_body(runtime: Runtime, tenant: Tenant, *, prompt: str, model: str | None,
               seconds: str | None, size: str | None,
               input_reference: str | None) -> GenerationCreate:
    """The video generation of `POST /v1/videos`: `seconds` → `duration_s`, `size` → an
    aspect ratio and resolution, `input_reference` (a `data:` URL) → `image`, making it an
    image-to-video."""
    seconds = seconds or DEFAULT_VIDEO_SECONDS
    size = size or DEFAULT_VIDEO_SIZE
    _check(seconds, frozenset(VIDEO_SECONDS), "seconds")
    _check(size, frozenset(VIDEO_SIZES), "size")
    operation: Operation = "image_to_video" if input_reference else "text_to_video"
    target = catalogue.resolve(runtime, tenant, model, operation)
    aspect, resolution = VIDEO_SIZES[size]
    params: dict[str, Any] = {"duration_s": int(seconds), "aspect_ratio": aspect,
                              "resolution": resolution}
    if input_reference:
        params["image"] = input_reference
    return _body(target, "video", operation, prompt, params)


def data_url(data: bytes, content_type: str) -> str:
    """An uploaded file as the `data:` URL our params take."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _epoch(value: Any) -> int | None:
    return None if value is None else int(value.timestamp())


_VIDEO_STATUS: Final = {QUEUED: "queued", RUNNING: "in_progress", SUCCEEDED: "completed"}


def video(runtime: Runtime, generation: Generation) -> Video:
    """OpenAI's video object of a video generation."""
    status = _VIDEO_STATUS.get(generation.status, "failed")
    params = generation.params or {}
    output = generation.outputs[0] if generation.outputs else None
    if output is not None and output.width and output.height:
        size = f"{output.width}x{output.height}"
    else:
        wanted = (params.get("aspect_ratio"), params.get("resolution"))
        size = next((s for s, v in VIDEO_SIZES.items() if v == wanted), DEFAULT_VIDEO_SIZE)
    seconds = params.get("duration_s")
    if output is not None and output.duration_s:
        seconds = round(output.duration_s)
    error = generation.error
    error_out: VideoError | None = None
    if error is not None:
        error_out = VideoError(code=error.code, message=error.message)
    elif status == "failed":
        error_out = VideoError(code=generation.status,
                               message=f"the video was {generation.status}")
    return Video(
        id=generation.id, status=status,  # type: ignore[arg-type]
        progress={"queued": 0, "in_progress": 50}.get(status, 100),
        model=catalogue.model_of(runtime, generation.provider, params),
        seconds=str(seconds or DEFAULT_VIDEO_SECONDS), size=size,
        prompt=generation.prompt or None, created_at=_epoch(generation.created_at) or 0,
        completed_at=_epoch(generation.completed_at), expires_at=None, error=error_out)

