"""A local design engine: fills a template's text, colour and image slots and renders it with
Pillow to PNG or PDF, with no key and no network.

It is a fixed-layout template filler, not a generative design model.

With a brand kit (`params.brand`, inputs `brand_font` and `brand_logo`, docs/brand-kits.md)
the colour slots the request leaves out come from the kit's colours (`accent`: the colour
named Primary or Accent, else the first; `background`: the one named Background, else the
template's; `text`: the one named Text, else black or white, whichever reads on the
background), the text is drawn in the kit's font (a TTF or OTF FreeType opens) and the logo
sits in the picture's top-left corner, at most `LOGO_BOX` pixels.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec
from PIL import Image, ImageDraw, ImageFont, ImageOps

from plugins import media
from plugins.builtin.local import _media
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.media import MediaInput
from plugins.provider import (
    Credentials,
    DesignTemplate,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    TemplateField,
    mapped_param,
)
from plugins.vocabulary import ParamSpec, common, declare

Box = tuple[int, int, int, int]


class Template(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int
    image_box: Box  # where the image slot (or, without an image, a decoration) goes
    text_box: Box  # headline, body and call to action, top to bottom
    headline_px: int
    body_px: int
    cta_px: int


TEMPLATES: dict[str, Template] = {
    "poster": Template(width=1080, height=1350, image_box=(0, 0, 1080, 680),
                       text_box=(80, 740, 1000, 1270), headline_px=96, body_px=40, cta_px=40),
    "social_square": Template(width=1080, height=1080, image_box=(0, 0, 1080, 520),
                              text_box=(72, 572, 1008, 1008), headline_px=80, body_px=36,
                              cta_px=36),
    "banner": Template(width=1500, height=500, image_box=(1000, 0, 1500, 500),
                       text_box=(60, 50, 940, 450), headline_px=72, body_px=32, cta_px=30),
}
DEFAULT_TEMPLATE = "poster"
#: How `GET /v1/design/templates` names each template for people.
TEMPLATE_NAMES = {"poster": "Poster", "social_square": "Social post (square)",
                  "banner": "Banner"}
#: The slots every template fills: its text slots (`params.fields.<name>`) and its picture
#: (`params.image`).
TEMPLATE_FIELDS = (TemplateField(name="headline", kind="text", label="Headline"),
                   TemplateField(name="body", kind="text", label="Body text"),
                   TemplateField(name="cta", kind="text", label="Call to action"),
                   TemplateField(name="image", kind="image", label="Picture"))
FORMATS = {"png": "image/png", "pdf": "application/pdf"}
FIELD_LIMITS = {"headline": 200, "body": 1000, "cta": 40}
DEFAULT_COLORS = {"background": "#101828", "accent": "#f97316", "text": "#ffffff"}
# The compute price of this local engine (not a vendor's bill): USD micros per rendered design.
PRICES: Final[Mapping[str, int]] = {"usd_micros_per_design": 3000}

RGB = tuple[int, int, int]


#: The largest a brand kit's logo is drawn (width, height), and its margin, pixels.
LOGO_BOX = (240, 120)
LOGO_MARGIN = 32


class Options(msgspec.Struct, frozen=True, kw_only=True):
    seed: int
    template: str
    fields: dict[str, str]
    colors: dict[str, RGB]
    image: MediaInput | None
    format: str
    #: A brand kit's font (TTF/OTF bytes) and logo.
    font: bytes | None = None
    logo: MediaInput | None = None


def _fields(request: ProviderRequest) -> dict[str, str]:
    given = request.params.get("fields", {})
    if not isinstance(given, dict):
        raise InvalidParams("fields must be an object with headline, body and cta",
                            param="params.fields")
    fields = {"headline": request.prompt.strip()[:FIELD_LIMITS["headline"]], "body": "",
              "cta": ""}
    for key, value in given.items():
        param = f"params.fields.{key}"
        if key not in FIELD_LIMITS:
            raise InvalidParams(f"unknown text slot {key!r}; slots: "
                                f"{', '.join(FIELD_LIMITS)}", param=param)
        if not isinstance(value, str):
            raise InvalidParams(f"{key} must be a string", param=param)
        if len(value) > FIELD_LIMITS[key]:
            raise InvalidParams(f"{key} must be at most {FIELD_LIMITS[key]} characters",
                                param=param)
        fields[key] = value
    return fields


def _brand_colors(request: ProviderRequest) -> dict[str, RGB]:
    """The colour slots a brand kit fills (`params.brand.colors`, module docstring)."""
    brand = request.params.get("brand")
    if brand is None:
        return {}
    given = brand.get("colors") if isinstance(brand, dict) else None
    if not isinstance(given, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in given):
        raise InvalidParams("brand.colors must be a list of {name, hex}",
                            param="params.brand.colors")
    named = {c["name"].strip().lower(): _media.parse_hex_color(
        c.get("hex"), f"params.brand.colors[{i}].hex") for i, c in enumerate(given)}
    if not named:
        return {}
    slots = {"accent": named.get("primary", named.get("accent", next(iter(named.values()))))}
    if "background" in named:
        slots["background"] = named["background"]
    if "text" in named:
        slots["text"] = named["text"]
    return slots


def _colors(request: ProviderRequest) -> dict[str, RGB]:
    given = request.params.get("colors", {})
    if not isinstance(given, dict):
        raise InvalidParams("colors must be an object with background, accent and text",
                            param="params.colors")
    for key in given:
        if key not in DEFAULT_COLORS:
            raise InvalidParams(f"unknown colour slot {key!r}; slots: "
                                f"{', '.join(DEFAULT_COLORS)}", param=f"params.colors.{key}")
    colors = {key: _media.parse_hex_color(given.get(key, default), f"params.colors.{key}")
              for key, default in DEFAULT_COLORS.items()}
    brand = {k: v for k, v in _brand_colors(request).items() if k not in given}
    colors.update(brand)
    if "background" in brand and "text" not in brand and "text" not in given:
        colors["text"] = _on(colors["background"])
    return colors


def _font(request: ProviderRequest) -> bytes | None:
    """The brand kit's font when FreeType can open it (a WOFF2 it cannot is drawn without:
    the kit's other parts still apply); raises `InvalidParams` for bytes that are no font."""
    given = request.inputs.get("brand_font")
    if given is None:
        return None
    try:
        ImageFont.truetype(io.BytesIO(given.data), 12)
    except OSError as exc:
        if given.content_type == "font/woff2":
            return None
        raise InvalidParams("params.brand_font is not a font FreeType can open",
                            param="params.brand_font") from exc
    return given.data


def options(request: ProviderRequest) -> Options:
    """The request's checked options; raises `InvalidParams` naming the bad parameter."""
    # The shared `output_format` is this engine's `format`.
    params = mapped_param(request.params, "output_format", "format")
    template = params.get("template", DEFAULT_TEMPLATE)
    if template not in TEMPLATES:
        raise InvalidParams(f"template must be one of {', '.join(TEMPLATES)}",
                            param="params.template")
    output_format = params.get("format", "png")
    if output_format not in FORMATS:
        raise InvalidParams("format must be png or pdf", param="params.format")
    image = request.inputs.get("image")
    if image is not None:
        media.image_size(image, "params.image")
    logo = request.inputs.get("brand_logo")
    if logo is not None:
        media.image_size(logo, "params.brand_logo")
    return Options(seed=_media.seed_of(params, request.prompt), template=template,
                   fields=_fields(request), colors=_colors(request), image=image,
                   format=output_format, font=_font(request), logo=logo)


def _on(colour: RGB) -> RGB:
    """Black or white, whichever reads better on `colour`."""
    r, g, b = colour
    return (17, 17, 17) if (299 * r + 587 * g + 114 * b) // 1000 > 150 else (255, 255, 255)


def _decoration(size: tuple[int, int], colors: dict[str, RGB], seed: int) -> Image.Image:
    """What fills the image slot when no image was given: accent circles on a tinted panel."""
    rng = random.Random(seed)
    width, height = size
    bg, accent = colors["background"], colors["accent"]
    r, g, b = ((x + y) // 2 for x, y in zip(bg, accent, strict=True))
    panel = Image.new("RGB", size, (r, g, b))
    draw = ImageDraw.Draw(panel)
    low = max(8, min(width, height) // 8)
    for _ in range(6):
        radius = rng.randrange(low, max(low + 1, min(width, height) // 2))
        cx, cy = rng.randrange(width), rng.randrange(height)
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                     fill=accent if rng.random() < 0.5 else bg)
    return panel


def _face_of(data: bytes) -> _media.Face:
    """The kit's font at a size, each size opened once."""
    faces: dict[int, ImageFont.FreeTypeFont] = {}

    def face_at(size: int) -> ImageFont.FreeTypeFont:
        if size not in faces:
            faces[size] = ImageFont.truetype(io.BytesIO(data), size)
        return faces[size]
    return face_at


def _paste_logo(canvas: Image.Image, logo: MediaInput, at: tuple[int, int]) -> None:
    """The logo within `LOGO_BOX`, its transparency kept, at `at`."""
    with Image.open(io.BytesIO(logo.data)) as opened:
        picture = opened.convert("RGBA")
    picture.thumbnail(LOGO_BOX)
    canvas.paste(picture, at, picture)


def render(opts: Options) -> bytes:
    """Draw the design and return PNG or PDF bytes (CPU-bound: run it off the event loop)."""
    template = TEMPLATES[opts.template]
    colors = opts.colors
    canvas = Image.new("RGB", (template.width, template.height), colors["background"])
    draw = ImageDraw.Draw(canvas)
    face_at = _media.font if opts.font is None else _face_of(opts.font)

    x0, y0, x1, y1 = template.image_box
    if opts.image is not None:
        picture = media.load_image(opts.image, "params.image")
        canvas.paste(ImageOps.fit(picture, (x1 - x0, y1 - y0)), (x0, y0))
    else:
        canvas.paste(_decoration((x1 - x0, y1 - y0), colors, opts.seed), (x0, y0))
    if opts.logo is not None:
        _paste_logo(canvas, opts.logo, (x0 + LOGO_MARGIN, y0 + LOGO_MARGIN))

    tx0, ty0, tx1, ty1 = template.text_box
    width, height = tx1 - tx0, ty1 - ty0
    draw.rectangle((tx0, ty0, tx0 + 120, ty0 + 10), fill=colors["accent"])
    y = ty0 + 34
    cta_h = template.cta_px * 2 if opts.fields["cta"] else 0
    if opts.fields["headline"]:
        headline = _media.fit_text(opts.fields["headline"], max_width=width,
                                   max_height=int(height * 0.45), start_size=template.headline_px,
                                   line_spacing=1.15, face_at=face_at)
        y = _media.draw_text(draw, headline, x=tx0, y=y, width=width, fill=colors["text"],
                             face_at=face_at)
        y += template.body_px // 2
    if opts.fields["body"]:
        room = ty1 - cta_h - template.cta_px // 2 - y
        if room > template.body_px:
            body = _media.fit_text(opts.fields["body"], max_width=width, max_height=room,
                                   start_size=template.body_px, face_at=face_at)
            _media.draw_text(draw, body, x=tx0, y=y, width=width, fill=colors["text"],
                             face_at=face_at)
    if opts.fields["cta"]:
        face = face_at(template.cta_px)
        label_w = int(face.getlength(opts.fields["cta"]))
        pad = template.cta_px
        box = (tx0, ty1 - cta_h, tx0 + min(width, label_w + 2 * pad), ty1)
        draw.rounded_rectangle(box, radius=cta_h // 2, fill=colors["accent"])
        draw.text((box[0] + pad, box[1] + cta_h // 2), opts.fields["cta"], font=face,
                  fill=_on(colors["accent"]), anchor="lm")

    out = io.BytesIO()
    if opts.format == "pdf":
        # One pixel per PDF point: the page is template.width x template.height pt.
        canvas.save(out, format="PDF", resolution=72.0, quality=92,
                    title=opts.fields["headline"][:80], creator="mediahub local-design")
    else:
        canvas.save(out, format="PNG")
    return out.getvalue()


class LocalDesign(Provider):
    name = "local-design"
    #: Drawn here, billed by no one: a call cut off by a crash is simply made again.
    idempotency_keys = True
    description = ("Local engine (Pillow): fills a fixed design template's text, colour and "
                   "image slots and renders PNG or PDF offline; not a design model.")
    media_types = frozenset({"design"})
    operations = frozenset({"design_autofill"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("seed", "image"),
        "output_format": declare("output_format", choices=tuple(FORMATS), default="png",
                                 description="The same as format"),
        "template": ParamSpec(kind="string", max_length=32, choices=tuple(TEMPLATES),
                              default=DEFAULT_TEMPLATE,
                              description="The layout (GET /v1/design/templates)"),
        "format": ParamSpec(kind="string", max_length=8, choices=tuple(FORMATS),
                            default="png", description="PNG image or PDF page"),
        "fields": ParamSpec(kind="object", max_length=8),
        "colors": ParamSpec(kind="object", max_length=8),
        **common("brand", "brand_font", "brand_logo"),
    }
    local = True
    prices = PRICES
    needs_api_key = False


    async def list_templates(self, credentials: Credentials,
                             client: httpx.AsyncClient) -> list[DesignTemplate]:
        """Called for `GET /v1/design/templates`: the built-in layouts, each with the text
        slots of `params.fields` and the picture of `params.image`."""
        return [DesignTemplate(id=name, name=f"{TEMPLATE_NAMES.get(name, name)} "
                               f"({template.width}\u00d7{template.height})",
                               fields=TEMPLATE_FIELDS, formats=tuple(FORMATS))
                for name, template in TEMPLATES.items()]

    def estimate_cost(self, request: ProviderRequest) -> int:
        options(request)
        return self.prices["usd_micros_per_design"]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        opts = options(request)
        data = await asyncio.to_thread(render, opts)
        template = TEMPLATES[opts.template]
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type=FORMATS[opts.format],
                                    width=template.width, height=template.height)],
            cost_usd_micros=self.prices["usd_micros_per_design"],
        )

    def pricing(self) -> dict[str, Any]:
        return {**self.prices, "local": True,
                "templates": {name: f"{t.width}x{t.height}" for name, t in TEMPLATES.items()}}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(LocalDesign())
