"""Input images as remote providers send them: the raw bytes (or base64) of a `data:` URL.

The gateway hands input images to providers as `data:image/...;base64,...` URLs
(`params.image`, `params.mask`); `_media.check_data_url_image` checks one is a real image of an
accepted type. Remote APIs want the file itself (a multipart part) or its bare base64, which
these functions give.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from plugins import _media

_DATA_URL = re.compile(r"data:(?P<type>[a-z0-9.+-]+/[a-z0-9.+-]+);base64,(?P<data>.*)",
                       re.DOTALL | re.IGNORECASE)


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
    width, height = _media.check_data_url_image(value, param)
    header, _, data = str(value).strip().partition(",")
    content_type = header.removeprefix("data:").split(";", 1)[0]
    return DataUrlImage(content_type=content_type, base64=data, width=width, height=height)
