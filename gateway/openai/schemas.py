"""OpenAI's request and response shapes, as the official SDKs send and read them (images,
audio speech, videos, models)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ImageSize = Annotated[str, msgspec.Meta(max_length=32)]
ResponseFormat = Literal["url", "b64_json"]
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class ImageOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What every images request takes (a variation takes only these)."""

    model: ModelName | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    size: ImageSize | None = None
    quality: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    style: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    response_format: ResponseFormat | None = None
    #: OpenAI's end-user id for abuse monitoring: accepted, not stored.
    user: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class ImageGenerationRequest(ImageOptions, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/images/generations` (JSON), and the fields of an edit (multipart)."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=32_000)]


class Image(msgspec.Struct, omit_defaults=True):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(msgspec.Struct):
    created: int
    data: list[Image]


class SpeechRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/audio/speech` (JSON)."""

    model: ModelName
    input: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    voice: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    response_format: SpeechFormat = "mp3"
    speed: Annotated[float, msgspec.Meta(ge=0.25, le=4.0)] | None = None
    instructions: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    #: Only `audio` (the bytes) is served; OpenAI's `sse` is refused.
    stream_format: Literal["audio"] | None = None


class VideoCreateRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The text fields of `POST /v1/videos` (multipart; `input_reference` is the file)."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    model: ModelName | None = None
    seconds: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    size: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class Model(msgspec.Struct):
    id: str
    owned_by: str
    created: int = 0
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: str = "list"


class VideoError(msgspec.Struct):
    code: str
    message: str


class Video(msgspec.Struct):
    """OpenAI's video object; `id` is the generation's (`gen_…`)."""

    id: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    model: str
    seconds: str
    size: str
    prompt: str | None
    created_at: int
    completed_at: int | None
    expires_at: int | None
    error: VideoError | None
    remixed_from_video_id: str | None = None
    object: str = "video"


class VideoList(msgspec.Struct):
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool
    object: str = "list"


class VideoDeleted(msgspec.Struct):
    id: str
    deleted: bool
    object: str = "video.deleted"
