"""`GET /v1/generations/{id}/brand_compliance` (gateway/generations/compliance.py) on SQLite
and PostgreSQL, with the local engines' real outputs: a design drawn with a kit passes and its
logo is found, an off-palette picture fails naming its colours, a video is judged on a frame,
another tenant's generation or kit is a 404 and an unfinished generation a 409."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageDraw

from tests.conftest import Gateway
from tests.gateway.brand_kits.helpers import FONT, make_kit, upload
from tests.gateway.teams.helpers import customer


def striped_logo() -> bytes:
    """A logo with shapes in it (a plain rectangle has nothing for the search to match)."""
    picture = Image.new("RGB", (160, 80), (0x0A, 0x7C, 0x66))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((10, 10, 70, 70), fill=(255, 255, 255))
    draw.rectangle((90, 15, 150, 35), fill=(20, 20, 20))
    draw.rectangle((90, 45, 130, 65), fill=(255, 255, 255))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def on_brand_picture() -> str:
    """The design's picture in the kit's own colours: without one the engine fills the slot
    with a tint halfway between accent and background, which no kit colour is."""
    picture = Image.new("RGB", (540, 340), (0xFF, 0xF8, 0xE7))
    ImageDraw.Draw(picture).ellipse((120, 20, 420, 320), fill=(0x0A, 0x7C, 0x66))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def check(gw: Gateway, auth: dict[str, str], generation_id: str,
                **params: Any) -> Any:
    return await gw.client.get(f"/v1/generations/{generation_id}/brand_compliance",
                               headers=auth, params=params)


async def branded_design(gw: Gateway, auth: dict[str, str]) -> tuple[dict[str, Any],
                                                                    dict[str, Any]]:
    kit = await make_kit(gw, auth)
    assert (await upload(gw, auth, kit["id"], "fonts", FONT, "font/ttf")).status_code == 201
    assert (await upload(gw, auth, kit["id"], "logos", striped_logo(),
                         "image/png")).status_code == 201
    done = await gw.finish(auth, {"type": "design", "prompt": "Spring sale",
                                  "provider": "local-design", "brand_kit_id": kit["id"],
                                  "params": {"image": on_brand_picture()}})
    assert done["status"] == "succeeded", done
    return kit, done


async def test_a_design_made_with_the_kit_passes_and_its_logo_is_found(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit, done = await branded_design(gateway, tenant.auth)

    r = await check(gateway, tenant.auth, done["id"])  # the kit it used, by default

    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["generation_id"], report["brand_kit_id"], report["brand_kit_version"],
            report["output_index"]) == (done["id"], kit["id"], 3, 0)
    assert report["verdict"] == "pass", report["reasons"]
    assert report["within_tolerance_share"] >= 0.7
    assert report["tolerance"] == 10
    assert report["logo"]["expected"]
    assert report["logo"]["found"], report["logo"]
    x, y, w, _ = report["logo"]["box"]
    assert (x < 120, y < 120, w > 40) == (True, True, True)  # drawn in the top-left corner
    assert report["dominant_colours"][0]["delta_e"] is not None

    # A later version without colours is still checked at the version asked for.
    patched = await gateway.client.patch(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth,
                                         json={"colors": [{"name": "Pink", "hex": "#FF00FF"}]})
    assert patched.status_code == 200, patched.text
    again = (await check(gateway, tenant.auth, done["id"])).json()
    assert (again["brand_kit_version"], again["verdict"]) == (3, "pass")
    latest = (await check(gateway, tenant.auth, done["id"], version=4)).json()
    assert latest["verdict"] == "fail"
    assert {reason["code"] for reason in latest["reasons"]} >= {"off_palette",
                                                              "low_palette_share"}


async def test_an_off_palette_image_fails_naming_its_colours(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    done = await gateway.finish(tenant.auth, {"type": "image", "prompt": "a red sunset",
                                              "provider": "local-image",
                                              "params": {"style": "gradient", "seed": 7}})
    assert done["status"] == "succeeded", done

    r = await check(gateway, tenant.auth, done["id"], brand_kit_id=kit["id"], tolerance=5)

    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verdict"] == "fail"
    assert (report["brand_kit_version"], report["tolerance"]) == (1, 5)
    off = [reason for reason in report["reasons"] if reason["code"] == "off_palette"]
    assert off, report["reasons"]
    assert any(colour["hex"] in off[0]["message"] for colour in report["dominant_colours"])
    assert report["logo"] == {"expected": False, "found": False, "score": None, "box": None}

    # Without a kit named, and none used, there is nothing to judge against.
    r = await check(gateway, tenant.auth, done["id"])
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "brand_kit_required"
    r = await check(gateway, tenant.auth, done["id"], brand_kit_id=kit["id"], tolerance=101)
    assert (r.status_code, r.json()["error"]["param"]) == (422, "tolerance")


async def test_a_video_is_judged_on_a_frame(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    done = await gateway.finish(tenant.auth, {"type": "video", "prompt": "waves",
                                              "provider": "local-video",
                                              "params": {"duration_s": 1}})
    assert done["status"] == "succeeded", done
    assert done["outputs"][0]["content_type"].startswith("video/")

    r = await check(gateway, tenant.auth, done["id"], brand_kit_id=kit["id"])

    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verdict"] in ("pass", "warn", "fail")
    assert report["dominant_colours"]
    assert abs(sum(colour["share"] for colour in report["dominant_colours"]) - 1) < 1e-6


async def test_another_tenants_generation_or_kit_is_404_and_unfinished_is_409(
        gateway: Gateway) -> None:
    acme, other = await gateway.tenant(), await gateway.tenant()
    kit, done = await branded_design(gateway, acme.auth)
    other_kit = await make_kit(gateway, other.auth)
    alice_kit = await make_kit(gateway, customer(acme, "alice"))

    r = await check(gateway, other.auth, done["id"], brand_kit_id=other_kit["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (404, "generation_not_found")
    for kit_id in (other_kit["id"], alice_kit["id"], "bk_nope"):
        r = await check(gateway, acme.auth, done["id"], brand_kit_id=kit_id)
        assert r.status_code == 404, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
            "brand_kit_not_found", "brand_kit_id")
    # A customer does not see the tenant's own generation.
    r = await check(gateway, customer(acme, "bob"), done["id"])
    assert r.status_code == 404

    queued = await gateway.client.post("/v1/generations", headers=acme.auth, json={
        "type": "image", "prompt": "later", "provider": "local-image"})
    assert queued.status_code == 202, queued.text
    r = await check(gateway, acme.auth, queued.json()["id"], brand_kit_id=kit["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "not_assessable")
    await gateway.drain()
