"""OpenAI's multipart requests (image edits and variations, videos): the forms as Litestar
parses them, and their fields checked as strictly as a JSON body's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import UploadFile

from gateway.openai.translate import data_url
from tenants.kernel.errors import InvalidRequest

#: The largest uploaded file (an image, a mask, a video's reference image).
MAX_FILE_BYTES = 8 * 1024 * 1024

S = TypeVar("S", bound=msgspec.Struct)


@dataclass
class ImageEditForm:
    """`POST /v1/images/edits` (multipart/form-data)."""

    image: UploadFile
    prompt: str
    mask: UploadFile | None = None
    model: str | None = None
    n: str | None = None
    size: str | None = None
    quality: str | None = None
    response_format: str | None = None
    user: str | None = None


@dataclass
class ImageVariationForm:
    """`POST /v1/images/variations` (multipart/form-data)."""

    image: UploadFile
    model: str | None = None
    n: str | None = None
    size: str | None = None
    response_format: str | None = None
    user: str | None = None


@dataclass
class VideoForm:
    """`POST /v1/videos` (multipart/form-data, as the SDKs send it)."""

    prompt: str
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    input_reference: UploadFile | None = None


def fields(form: object, into: type[S], *, skip: tuple[str, ...] = ()) -> S:
    """The form's text fields as `into` (numbers given as text accepted, anything else as
    strictly as JSON). Raises `InvalidRequest` naming the field."""
    values: dict[str, Any] = {}
    for name, value in vars(form).items():
        if name in skip or value is None or isinstance(value, UploadFile):
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"{name} must be text", code="invalid_value", param=name)
        if "\x00" in value:
            raise InvalidRequest(f"{name} contains a NUL character", code="nul_character",
                                 param=name)
        values[name] = value
    try:
        return msgspec.convert(values, into, strict=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        param = where.rstrip("`").removeprefix("$").removeprefix(".") or None
        raise InvalidRequest(message, code="invalid_value", param=param) from None


async def file_url(upload: UploadFile | None, name: str) -> str | None:
    """An uploaded file as a `data:` URL (None when absent). Raises `InvalidRequest` for an
    empty or oversized file."""
    if upload is None:
        return None
    data = await upload.read(MAX_FILE_BYTES + 1)
    if not data:
        raise InvalidRequest(f"{name} is empty", code="invalid_file", param=name)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRequest(f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
                             code="file_too_large", param=name)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        content_type = _sniff(data) or content_type
    return data_url(data, content_type or "application/octet-stream")


def _sniff(data: bytes) -> str | None:
    """The image type of bytes uploaded without one (the SDKs send a file's own type, or
    none for raw bytes)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
