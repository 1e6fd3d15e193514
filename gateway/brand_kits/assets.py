"""A brand kit's files: fonts (TTF, OTF, WOFF2) and logos (PNG, JPEG, WebP), uploaded as the
raw body of `POST /v1/brand_kits/{id}/fonts` and `/logos` (as brand images are, see
gateway/tenancy/assets.py) and served to whoever may read the kit.

A file is believed only after its bytes say what it is: a font by its magic bytes (and, for
TTF and OTF, FreeType opening it, which also gives its family name), a logo by Pillow
decoding it fully. SVG is refused (it can carry script). Limits: fonts `MAX_FONT_BYTES`,
logos `MAX_LOGO_BYTES` and `MAX_LOGO_SIDE_PX` a side. Stored in `runtime.storage` under
`tenants/<tenant>/brand_kits/<kit>/<asset>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Final

from PIL import ImageFont

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.core.storage import MediaNotFound
from plugins.errors import InvalidParams
from plugins.media import MediaInput, load_image
from tenants.brand_kits import service as kits
from tenants.brand_kits.models import FONT, LOGO, BrandKitAsset
from tenants.brand_kits.schemas import BrandKitOut
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_FONT_BYTES: Final = 5 * 1024 * 1024
MAX_LOGO_BYTES: Final = 2 * 1024 * 1024
MAX_LOGO_SIDE_PX: Final = 4096
#: Declared `Content-Type`s a font upload may have (browsers and tools disagree on names).
FONT_TYPES: Final = frozenset({"font/ttf", "font/otf", "font/woff2", "font/sfnt",
                               "application/font-sfnt", "application/x-font-ttf",
                               "application/x-font-otf", "application/font-woff2",
                               "application/octet-stream"})
LOGO_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp"})
#: Magic bytes → the font's real type (what it is stored and served as).
_FONT_MAGIC: Final = ((b"\x00\x01\x00\x00", "font/ttf"), (b"true", "font/ttf"),
                      (b"OTTO", "font/otf"), (b"wOF2", "font/woff2"))
_UNSAFE_NAME: Final = re.compile(r"[\x00-\x1f\x7f/\\\"]")


@dataclass(frozen=True, slots=True)
class Checked:
    kind: str
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None
    family: str | None = None


def caller(principal: Principal) -> kits.Caller:
    """The kit rules' view of a principal."""
    return kits.Caller(tenant_id=principal.tenant, customer_id=principal.customer_id,
                       role=principal.role, scopes=principal.scopes, actor=principal.actor)


def storage_key(tenant_id: str, kit_id: str, asset_id: str) -> str:
    return f"tenants/{tenant_id}/brand_kits/{kit_id}/{asset_id}"


def check_size(kind: str, declared: str | None) -> None:
    """Refuse a declared `Content-Length` over the kind's limit before the body is read."""
    limit = MAX_FONT_BYTES if kind == FONT else MAX_LOGO_BYTES
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a brand kit {kind} may be at most {limit} bytes",
                              code=f"{kind}_too_large")


def _claimed(claimed: str, allowed: frozenset[str], kind: str) -> str:
    content_type = claimed.split(";", 1)[0].strip().lower()
    if content_type not in allowed:
        what = ("TTF, OTF or WOFF2 (font/ttf, font/otf, font/woff2)" if kind == FONT
                else "PNG, JPEG or WebP (image/png, image/jpeg, image/webp; SVG is refused)")
        raise UnsupportedMediaType(f"send the {kind} as the body: {what}",
                                   code=f"unsupported_{kind}_type", param="Content-Type")
    return content_type


def family_name(data: bytes) -> str | None:
    """The font's family name as FreeType reads it; raises `OSError` when it cannot open
    the font (CPU-bound: run it off the event loop)."""
    face = ImageFont.truetype(io.BytesIO(data), 16)
    family = face.getname()[0]
    return family[:200] if family else None


def check_font(claimed: str, data: bytes) -> Checked:
    """A font upload's real type and family; 415 for a type that is no font, 413 over
    `MAX_FONT_BYTES`, 422 `invalid_font` when the bytes are no TTF, OTF or WOFF2."""
    _claimed(claimed, FONT_TYPES, FONT)
    if len(data) > MAX_FONT_BYTES:
        raise PayloadTooLarge(f"a brand kit font may be at most {MAX_FONT_BYTES} bytes",
                              code="font_too_large")
    real = next((kind for magic, kind in _FONT_MAGIC if data.startswith(magic)), None)
    if real is None:
        raise InvalidRequest("the body is not a TTF, OTF or WOFF2 font",
                             code="invalid_font", param="body")
    try:
        family = family_name(data)
    except OSError as exc:
        if real != "font/woff2":
            raise InvalidRequest("the font file is damaged: it could not be opened",
                                 code="invalid_font", param="body") from exc
        # FreeType reads WOFF2 only when built with Brotli: the magic bytes are all we
        # checked, and the family stays unknown.
        family = None
    return Checked(kind=FONT, content_type=real, data=data, family=family)


def check_logo(claimed: str, data: bytes) -> Checked:
    """A logo upload checked by decoding it; 415 for another type (SVG too), 413 over
    `MAX_LOGO_BYTES`, 422 `invalid_image` / `image_too_large`."""
    content_type = _claimed(claimed, LOGO_TYPES, LOGO)
    if len(data) > MAX_LOGO_BYTES:
        raise PayloadTooLarge(f"a brand kit logo may be at most {MAX_LOGO_BYTES} bytes",
                              code="logo_too_large")
    try:
        image = load_image(MediaInput(data=data, content_type=content_type), "body")
    except InvalidParams as exc:
        raise InvalidRequest(f"the body is not a valid {content_type} image",
                             code="invalid_image", param="body") from exc
    width, height = image.size
    if max(width, height) > MAX_LOGO_SIDE_PX:
        raise InvalidRequest(f"a logo may be at most {MAX_LOGO_SIDE_PX} pixels wide and high",
                             code="image_too_large", param="body")
    return Checked(kind=LOGO, content_type=content_type, data=data, width=width,
                   height=height)


def _filename(given: str | None, checked: Checked) -> str:
    default = {"font/ttf": "font.ttf", "font/otf": "font.otf", "font/woff2": "font.woff2",
               "image/png": "logo.png", "image/jpeg": "logo.jpg", "image/webp": "logo.webp"}
    name = _UNSAFE_NAME.sub("", (given or "").strip())[:255]
    return name or default[checked.content_type]


async def upload(runtime: Runtime, principal: Principal, kit_id: str, kind: str,
                 claimed_type: str, data: bytes, filename: str | None) -> BrandKitOut:
    """`POST /v1/brand_kits/{id}/fonts|logos`: check the caller may change the kit, check
    the file, store it and add it to the kit (a new version). Returns the kit."""
    who = caller(principal)
    async with runtime.db.session() as session:
        await kits.get_kit(session, who, kit_id, write=True)
    check = check_font if kind == FONT else check_logo
    checked = await asyncio.to_thread(check, claimed_type, data)
    asset_id = new_id("bka")
    key = storage_key(principal.tenant, kit_id, asset_id)
    await runtime.storage.put(key, checked.data, checked.content_type)
    asset = BrandKitAsset(id=asset_id, tenant_id=principal.tenant, kit_id=kit_id,
                          kind=checked.kind, filename=_filename(filename, checked),
                          content_type=checked.content_type, bytes=len(checked.data),
                          sha256=hashlib.sha256(checked.data).hexdigest(),
                          width=checked.width, height=checked.height, family=checked.family,
                          storage_key=key, created_at=utcnow())
    try:
        async with runtime.db.transaction() as session:
            kit = await kits.add_asset(session, who, kit_id, asset)
            out = kits.render(kit, await kits.assets_of(session, kit.tenant_id, kit.id))
    except BaseException:
        await runtime.storage.delete(key)
        raise
    return out


async def remove(runtime: Runtime, principal: Principal, kit_id: str, asset_id: str) -> None:
    """`DELETE /v1/brand_kits/{id}/assets/{asset_id}`: the file leaves the kit (a new
    version) and storage."""
    async with runtime.db.transaction() as session:
        key = await kits.remove_asset(session, caller(principal), kit_id, asset_id)
    await runtime.storage.delete(key)


async def read(runtime: Runtime, principal: Principal, kit_id: str,
               asset_id: str) -> tuple[bytes, str, str]:
    """`GET /v1/brand_kits/{id}/assets/{asset_id}`: the file's bytes, type and name, for
    whoever may read the kit; 404 otherwise."""
    async with runtime.db.session() as session:
        kit = await kits.get_kit(session, caller(principal), kit_id)
        asset = await kits.get_asset(session, principal.tenant, kit.id, asset_id)
    try:
        data, _ = await runtime.storage.get(asset.storage_key)
    except MediaNotFound as exc:
        raise NotFound("no such file in this brand kit", code="brand_asset_not_found",
                       param="asset_id") from exc
    return data, asset.content_type, asset.filename


async def load(runtime: Runtime, storage_key_: str, content_type: str) -> MediaInput | None:
    """A kit file's bytes as a generation input (None when storage lost it)."""
    try:
        data, _ = await runtime.storage.get(storage_key_)
    except MediaNotFound:
        return None
    return MediaInput(data=data, content_type=content_type)
