"""`images.edit` (with a mask) and `images.create_variation` with the official `openai`
client: multipart uploads become `image_edit` / `image_variation` generations."""

from __future__ import annotations

import asyncio
import base64
import io

import openai
import pytest
from PIL import Image

from tests.gateway.openai.conftest import Served

# The SDK marks these methods deprecated at OpenAI; this gateway serves them all the same.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


def png(size: tuple[int, int], colour: tuple[int, int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, format="PNG")
    return out.getvalue()


def half_transparent_mask(size: tuple[int, int]) -> bytes:
    """Opaque on the left half (kept), transparent on the right half (redrawn)."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


async def test_edit_with_a_mask_redraws_only_the_transparent_part(served: Served) -> None:
    tenant = await served.gw.tenant()
    image = png((128, 128), (0, 200, 0, 255))
    client = served.sync(tenant)
    result = await asyncio.to_thread(lambda: client.images.edit(
        model="local/image", image=("in.png", image, "image/png"),
        mask=("mask.png", half_transparent_mask((128, 128)), "image/png"),
        prompt="paint the right half", response_format="b64_json"))
    edited = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or ""))).convert(
        "RGB")
    assert edited.size == (128, 128)
    assert edited.getpixel((10, 64)) == (0, 200, 0)  # kept
    assert edited.getpixel((120, 120)) != (0, 200, 0)  # redrawn
    (generation,) = (await served.gw.client.get("/v1/generations",
                                                headers=tenant.auth)).json()["data"]
    assert generation["operation"] == "image_edit"
    assert generation["status"] == "succeeded"


async def test_variations_async(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        result = await client.images.create_variation(
            image=("in.png", png((64, 64), (10, 20, 200, 255)), "image/png"), n=2,
            size="256x256")
    assert len(result.data) == 2
    fetched = await served.gw.media(result.data[0].url or "")
    assert Image.open(io.BytesIO(fetched.content)).size == (256, 256)
    listed = (await served.gw.client.get("/v1/generations", headers=tenant.auth)).json()
    assert [g["operation"] for g in listed["data"]] == ["image_variation"] * 2


async def test_edit_refuses_a_file_that_is_not_an_image(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.images.edit(image=("x.png", b"not an image", "image/png"),
                                     prompt="x", model="local/image")
    assert bad.value.param == "params.image"
    listed = (await served.gw.client.get("/v1/generations", headers=tenant.auth)).json()
    assert listed["data"] == []


async def test_a_form_field_that_is_not_text_is_a_400(served: Served) -> None:
    tenant = await served.gw.tenant()
    # The image sent without a filename: a text field holding PNG bytes.
    body = (b'--xx\r\nContent-Disposition: form-data; name="image"\r\n\r\n'
            + png((8, 8), (0, 0, 0, 255)) + b"\r\n--xx--\r\n")
    r = await served.gw.client.post(
        "/v1/images/edits", content=body,
        headers={**tenant.auth, "content-type": "multipart/form-data; boundary=xx"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_body"
    assert r.headers["x-request-id"].startswith("req_")
