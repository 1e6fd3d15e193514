"""Input media as providers receive them.

The gateway hands input images to providers as `data:image/...;base64,...` URLs
(`params.image`, `params.mask`); `check_data_url_image` checks one is a real image of an
accepted type. Remote APIs want the file itself (a multipart part) or its bare base64, which
`image_param` gives.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

import msgspec
from PIL import Image, UnidentifiedImageError

from plugins.errors import InvalidParams

_DATA_URL = re.compile(r"data:(?P<type>[a-z0-9.+-]+/[a-z0-9.+-]+);base64,(?P<data>.*)",
                       re.DOTALL | re.IGNORECASE)
#: Image formats accepted in a `data:` URL param (the media type must name one of these).
DATA_URL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
MAX_DATA_URL_BYTES = 8 * 1024 * 1024
MAX_DATA_URL_PIXELS = 40_000_000
_IMAGE_DATA_URL = re.compile(r"data:(?P<type>image/[a-z0-9.+-]+);base64,(?P<data>.*)", re.DOTALL)


def decode(value: object) -> tuple[str, bytes] | None:
    """A `data:<type>;base64,` URL's media type and bytes; None when `value` is not one (or
    its base64 is broken)."""
    found = _DATA_URL.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        return None
    try:
        return found["type"].lower(), base64.b64decode(found["data"], validate=True)
    except (binascii.Error, ValueError):
        return None


class DataUrlImage(msgspec.Struct, frozen=True, kw_only=True):
    """A checked input image: its media type, bare base64 and pixel size."""

    content_type: str
    base64: str
    width: int
    height: int

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.base64)

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg"}.get(self.content_type, self.content_type.split("/")[1])


def image_param(value: Any, param: str) -> DataUrlImage:
    """Check `value` (a `data:` URL image) and split it; raises `InvalidParams` naming `param`.

    Only the image header is decoded (cheap enough for `estimate_cost`)."""
    width, height = check_data_url_image(value, param)
    header, _, data = str(value).strip().partition(",")
    content_type = header.removeprefix("data:").split(";", 1)[0]
    return DataUrlImage(content_type=content_type, base64=data, width=width, height=height)


def check_data_url_image(value: Any, param: str) -> tuple[int, int]:
    """Check that `value` is a `data:image/...;base64,` URL holding a real image.

    Reads only the image header (cheap enough for the request path); returns (width, height).
    Raises `InvalidParams` naming `param` otherwise.
    """
    with _open_data_url(value, param) as image:
        return image.size


def load_data_url_image(value: Any, param: str) -> Image.Image:
    """Decode a `data:` URL image fully to RGB (CPU-bound: run it off the event loop)."""
    with _open_data_url(value, param) as image:
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidParams(f"the image in {param} is damaged ({exc})", param=param) from exc
        return image.convert("RGB")


def _open_data_url(value: Any, param: str) -> Image.Image:
    if not isinstance(value, str):
        raise InvalidParams(f"{param} must be a data:image/png;base64,... URL", param=param)
    found = _IMAGE_DATA_URL.fullmatch(value.strip())
    if found is None:
        raise InvalidParams(f"{param} must be a data:image/png;base64,... URL", param=param)
    expected = DATA_URL_FORMATS.get(found["type"])
    if expected is None:
        raise InvalidParams(f"{param} must be one of {', '.join(DATA_URL_FORMATS)}",
                            param=param)
    if len(found["data"]) > MAX_DATA_URL_BYTES * 4 // 3 + 4:
        raise InvalidParams(f"the image in {param} is larger than "
                            f"{MAX_DATA_URL_BYTES // (1024 * 1024)} MB", param=param)
    try:
        raw = base64.b64decode(found["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParams(f"{param} is not valid base64", param=param) from exc
    try:
        image = Image.open(io.BytesIO(raw), formats=[expected])
    except Image.DecompressionBombError as exc:
        raise InvalidParams(f"the image in {param} must have at most "
                            f"{MAX_DATA_URL_PIXELS} pixels", param=param) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidParams(f"{param} does not hold a {found['type']} image",
                            param=param) from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_DATA_URL_PIXELS:
        image.close()
        raise InvalidParams(f"the image in {param} must have at most "
                            f"{MAX_DATA_URL_PIXELS} pixels", param=param)
    return image
