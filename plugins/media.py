"""Input media as providers receive them: decoded, never base64 in `params`.

A client gives an input file by URL (`params.image_url`, `params.mask_url`,
`params.sample_urls`: the gateway fetches them) or inline as a `data:` URL (`params.image`,
`params.mask`, `params.image_tail`, `params.samples`). Either way the gateway hands it to the
provider as a `MediaInput` (bytes and media type) in `ProviderRequest.inputs`, under the name
in `INPUT_NAMES`, or, for a voice clone's audio samples, in `ProviderRequest.samples`;
`ProviderRequest.params` keeps only the plain parameters. When a provider's API wants base64
or a `data:` URL, `MediaInput.as_base64` and `MediaInput.as_data_url` make it.

`decode_data_url` is the one `data:` URL decoder (the gateway's and the test helpers'), and
`image_size` / `load_image` check an input image before a provider trusts it.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from PIL import Image, UnidentifiedImageError

from plugins.errors import InvalidParams

#: The inputs of one file each: a `params.<name>` `data:` URL (or its `_url` form, fetched by
#: the gateway) becomes `ProviderRequest.inputs[<name>]`. `brand_font` (a TTF/OTF font) and
#: `brand_logo` (an image) are usually added by the gateway from a brand kit
#: (docs/brand-kits.md); design engines that draw with them declare them.
INPUT_NAMES: Final = ("image", "mask", "image_tail", "brand_font", "brand_logo")
#: The input that is a list of files: `params.samples` (or `params.sample_urls`) becomes
#: `ProviderRequest.samples`.
SAMPLES: Final = "samples"

#: Image formats an input image may have (its media type must name one of these).
IMAGE_FORMATS: Final = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
MAX_IMAGE_BYTES: Final = 8 * 1024 * 1024
MAX_IMAGE_PIXELS: Final = 40_000_000

_DATA_URL: Final = re.compile(r"data:(?P<type>[a-z0-9.+-]+/[a-z0-9.+-]+);base64,(?P<data>.*)",
                              re.DOTALL | re.IGNORECASE)
_WHITESPACE: Final = re.compile(r"\s+")


class MediaInput(msgspec.Struct, frozen=True, kw_only=True):
    """One input file: its bytes and its media type.

    The type is what the client declared (an inline `data:` URL) or what the gateway found in
    the bytes (a fetched URL): check it (`image_size`) before relying on it.
    """

    data: bytes
    content_type: str

    @property
    def extension(self) -> str:
        """A file name extension for the type (`jpg` for JPEG, else the subtype)."""
        return {"image/jpeg": "jpg"}.get(self.content_type, self.content_type.split("/")[-1])

    def as_base64(self) -> str:
        """The bytes as bare base64, for APIs that take inline files that way."""
        return base64.b64encode(self.data).decode("ascii")

    def as_data_url(self) -> str:
        """The file as a `data:<type>;base64,` URL, for APIs that take one."""
        return f"data:{self.content_type};base64,{self.as_base64()}"


def decode_data_url(value: object, param: str) -> MediaInput:
    """Decode a `data:<type>;base64,<data>` URL; the one place `data:` URLs are parsed.

    Called by the gateway for inline inputs. The type is lower-cased, whitespace in the base64
    is ignored. Raises `InvalidParams` naming `param` when `value` is not such a URL, its
    base64 is broken or it holds no bytes.
    """
    found = _DATA_URL.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise InvalidParams(f"{param} must be a data:<type>;base64,... URL", param=param)
    try:
        data = base64.b64decode(_WHITESPACE.sub("", found["data"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParams(f"{param} is not valid base64", param=param) from exc
    if not data:
        raise InvalidParams(f"{param} is empty", param=param)
    return MediaInput(data=data, content_type=found["type"].lower())


def split_inputs(params: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, MediaInput], list[MediaInput]]:
    """Take the inline input `data:` URLs out of API-style `params` and decode them.

    Returns the plain params, the inputs by name (`INPUT_NAMES`) and the samples (`SAMPLES`,
    a list of `data:` URLs); an input given as null is left out. Raises `InvalidParams`
    naming the first malformed one (`params.image`, `params.samples[2]`, ...).
    """
    plain = {k: v for k, v in params.items() if k not in INPUT_NAMES and k != SAMPLES}
    inputs = {name: decode_data_url(params[name], f"params.{name}")
              for name in INPUT_NAMES if params.get(name) is not None}
    given = params.get(SAMPLES)
    if given is None:
        return plain, inputs, []
    if not isinstance(given, list):
        raise InvalidParams(f"params.{SAMPLES} must be a list of data: URLs (or give "
                            f"params.sample_urls)", param=f"params.{SAMPLES}")
    samples = [decode_data_url(value, f"params.{SAMPLES}[{index}]")
               for index, value in enumerate(given)]
    return plain, inputs, samples


def image_size(media: MediaInput, param: str) -> tuple[int, int]:
    """Check that `media` is a real PNG, JPEG or WebP image of an accepted size.

    Reads only the image header (cheap enough for `estimate_cost`); returns (width, height).
    Raises `InvalidParams` naming `param` otherwise.
    """
    with _open_image(media, param) as image:
        return image.size


def load_image(media: MediaInput, param: str) -> Image.Image:
    """Decode an input image fully to RGB (CPU-bound: run it off the event loop); raises
    `InvalidParams` naming `param` when it is not an acceptable image."""
    with _open_image(media, param) as image:
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidParams(f"the image in {param} is damaged ({exc})", param=param) from exc
        return image.convert("RGB")


def _open_image(media: MediaInput, param: str) -> Image.Image:
    expected = IMAGE_FORMATS.get(media.content_type)
    if expected is None:
        raise InvalidParams(f"{param} must be one of {', '.join(IMAGE_FORMATS)}", param=param)
    if len(media.data) > MAX_IMAGE_BYTES:
        raise InvalidParams(f"the image in {param} is larger than "
                            f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB", param=param)
    try:
        image = Image.open(io.BytesIO(media.data), formats=[expected])
    except Image.DecompressionBombError as exc:
        raise InvalidParams(f"the image in {param} must have at most "
                            f"{MAX_IMAGE_PIXELS} pixels", param=param) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidParams(f"{param} does not hold a {media.content_type} image",
                            param=param) from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise InvalidParams(f"the image in {param} must have at most "
                            f"{MAX_IMAGE_PIXELS} pixels", param=param)
    return image
