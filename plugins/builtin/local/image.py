"""A local image engine: Pillow draws a PNG from the prompt, with no key and no network.

It is not a diffusion model. It makes a deterministic picture (seeded by `seed`, or by the
prompt) so the whole gateway path works offline and in tests. It edits too (`image_edit`:
the picture drawn where the mask, or else the image itself, is transparent) and varies an
image (`image_variation`: its colours shifted by the seed).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
from PIL import Image, ImageDraw

from plugins import media
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, common, declare

STYLES = ("gradient", "shapes", "noise")
MIN_SIDE, MAX_SIDE = 64, 2048
# What the engine's compute is priced at, so a local image is not free in the ledger:
# 2000 USD micros ($0.002) per started megapixel.
PRICES: Final[Mapping[str, int]] = {"usd_micros_per_megapixel": 2000}


def parse_size(value: Any) -> tuple[int, int]:
    """`"WxH"` → (W, H) within the engine's limits; raises `InvalidParams` otherwise."""
    if not isinstance(value, str) or "x" not in value:
        raise InvalidParams("size must look like '512x512'", param="params.size")
    w_s, _, h_s = value.partition("x")
    if not (w_s.isdigit() and h_s.isdigit()):
        raise InvalidParams("size must look like '512x512'", param="params.size")
    w, h = int(w_s), int(h_s)
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise InvalidParams(f"each side must be between {MIN_SIDE} and {MAX_SIDE} pixels",
                            param="params.size")
    return w, h


def _seed(request: ProviderRequest) -> int:
    seed = request.params.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int.from_bytes(hashlib.sha256(request.prompt.encode()).digest()[:8], "big")


def render(prompt: str, width: int, height: int, seed: int, style: str) -> bytes:
    """Draw the picture and return PNG bytes (CPU-bound: run it off the event loop)."""
    rng = random.Random(seed)
    a = tuple(rng.randrange(256) for _ in range(3))
    b = tuple(rng.randrange(256) for _ in range(3))
    image = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", [image.point(lambda v, i=i: a[i] + (b[i] - a[i]) * v // 255)
                                for i in range(3)])
    draw = ImageDraw.Draw(image)
    if style == "shapes":
        for _ in range(12):
            x0, y0 = rng.randrange(width), rng.randrange(height)
            x1, y1 = x0 + rng.randrange(8, width // 2 + 9), y0 + rng.randrange(8, height // 2 + 9)
            fill = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif style == "noise":
        noise = Image.effect_noise((width, height), 64).convert("RGB")
        image = Image.blend(image, noise, 0.35)
        draw = ImageDraw.Draw(image)
    draw.text((8, 8), prompt[:80], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def edit(source: Image.Image, mask: Image.Image | None, drawn: bytes) -> bytes:
    """`drawn` (PNG of the source's size) where `mask` (else the source itself) is
    transparent, the source elsewhere; returns PNG bytes."""
    picture = Image.open(io.BytesIO(drawn)).convert("RGBA")
    base = source.convert("RGBA")
    alpha = (mask or base).convert("RGBA").resize(base.size).getchannel("A")
    # Opaque mask pixels keep the source; transparent ones take the new picture.
    out = io.BytesIO()
    Image.composite(base, picture, alpha).save(out, format="PNG")
    return out.getvalue()


def vary(source: Image.Image, width: int, height: int, seed: int) -> bytes:
    """The source resized to (width, height) with its colours rotated by the seed; returns
    PNG bytes."""
    rng = random.Random(seed)
    image = source.convert("RGB").resize((width, height))
    shift = rng.randrange(1, 256)
    hue, sat, val = image.convert("HSV").split()
    hue = hue.point(lambda v: (v + shift) % 256)
    out = io.BytesIO()
    Image.merge("HSV", (hue, sat, val)).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def _rgba(given: media.MediaInput, param: str) -> Image.Image:
    """An input image with its transparency (which marks what an edit redraws); raises
    `InvalidParams` naming `param` for one that is not an acceptable image."""
    media.load_image(given, param)  # checks the format, size and that it decodes
    with Image.open(io.BytesIO(given.data)) as image:
        return image.convert("RGBA")


_INPUT_OPERATIONS: Final = frozenset({"image_edit", "image_variation"})


class LocalImage(Provider):
    name = "local-image"
    #: Drawn here, billed by no one: a call cut off by a crash is simply made again.
    idempotency_keys = True
    description = "Local engine (Pillow): draws a deterministic picture offline; not a model."
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image", "image_edit", "image_variation"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "size": declare("size", default="512x512",
                        description=f"WIDTHxHEIGHT, each side {MIN_SIDE} to {MAX_SIDE} pixels "
                                    "(edits: the input's size)"),
        "style": declare("style", choices=STYLES, default="gradient",
                         description="The kind of abstract picture drawn"),
        **common("seed"),
        **common("image", operations=_INPUT_OPERATIONS),
        **common("mask", operations=frozenset({"image_edit"})),
    }
    local = True
    prices = PRICES
    needs_api_key = False
    param_defaults = {"size": "512x512", "style": "gradient"}

    def _options(self, request: ProviderRequest) -> tuple[int, int, str]:
        default = "512x512"
        if request.operation in _INPUT_OPERATIONS:
            image = request.inputs.get("image")
            if image is None:
                raise InvalidParams(f"{request.operation} needs params.image (or "
                                    "params.image_url)", param="params.image")
            width, height = media.image_size(image, "params.image")
            default = f"{width}x{height}"
        width, height = parse_size(request.params.get("size", default))
        style = request.params.get("style", "gradient")
        if style not in STYLES:
            raise InvalidParams(f"style must be one of {', '.join(STYLES)}", param="params.style")
        seed = request.params.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise InvalidParams("seed must be an integer", param="params.seed")
        return width, height, style


    def estimate_cost(self, request: ProviderRequest) -> int:
        width, height, _ = self._options(request)
        megapixels = -(-width * height // (1024 * 1024))
        return megapixels * self.prices["usd_micros_per_megapixel"]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        width, height, style = self._options(request)
        png = await asyncio.to_thread(self._draw, request, width, height, style)
        return ProviderResult(
            outputs=[ProviderOutput(data=png, content_type="image/png", width=width,
                                    height=height)],
            cost_usd_micros=self.estimate_cost(request),
        )

    @staticmethod
    def _draw(request: ProviderRequest, width: int, height: int, style: str) -> bytes:
        """The operation's PNG (CPU-bound: run off the event loop)."""
        seed = _seed(request)
        if request.operation == "text_to_image":
            return render(request.prompt, width, height, seed, style)
        source = _rgba(request.inputs["image"], "params.image").resize((width, height))
        if request.operation == "image_variation":
            return vary(source, width, height, seed)
        mask = request.inputs.get("mask")
        return edit(source, _rgba(mask, "params.mask") if mask is not None else None,
                    render(request.prompt, width, height, seed, style))

    def pricing(self) -> dict[str, Any]:
        return {**self.prices, "local": True}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(LocalImage())
