"""Shared pieces of the brand kit tests: a real small font and logo, and a kit made over the
API."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import Gateway

#: Aileron Regular (CC0, dotcolon.net; the subset Pillow bundles), 12 KB.
FONT = (Path(__file__).parents[2] / "data" / "aileron-regular.ttf").read_bytes()
PRIMARY = "#0A7C66"
PRIMARY_RGB = (0x0A, 0x7C, 0x66)
KIT: dict[str, Any] = {
    "name": "Acme", "colors": [{"name": "Primary", "hex": PRIMARY},
                               {"name": "Background", "hex": "#FFF8E7"}],
    "style_words": ["flat illustration", "pastel"], "tone_words": ["friendly"],
    "do_words": ["smile"], "dont_words": ["blurry", "dark"],
}


def logo(size: tuple[int, int] = (64, 32), fmt: str = "PNG",
         color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


async def make_kit(gw: Gateway, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await gw.client.post("/v1/brand_kits", headers=auth, json={**KIT, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def upload(gw: Gateway, auth: dict[str, str], kit_id: str, kind: str, data: bytes,
                 content_type: str, filename: str | None = None) -> Any:
    params = {"filename": filename} if filename else {}
    return await gw.client.post(f"/v1/brand_kits/{kit_id}/{kind}", params=params,
                                headers={**auth, "Content-Type": content_type}, content=data)
