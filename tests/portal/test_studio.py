"""The studio: forms made from what the providers declare, the live estimate beside the
balance, progress and the result, cancel, and an edit with a painted mask — all through the
real pipeline (the local offline engines, the in-process queue) in Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from PIL import Image
from playwright.async_api import Locator, Page, Request, expect

from tests.portal.conftest import Portal, axe_violations

PANELS = ("image", "audio", "video", "design", "model_3d")


def _png(width: int = 256, height: int = 256) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _credits(text: str) -> float:
    # English digits: the page's numbers as shown ("1,234.5").
    return float(text.replace(",", ""))


async def _balance(page: Page) -> float:
    balance = page.get_by_test_id("balance")
    await expect(balance).not_to_have_text("—")
    return _credits(await balance.inner_text())


async def _estimate(page: Page) -> str:
    estimate = page.get_by_test_id("estimate")
    await expect(estimate).to_have_text(re.compile(r"^[\d,.]+$"))
    return await estimate.inner_text()


async def _change_size(field: Locator) -> None:
    """Pick another (bigger) size in the size control, whatever form it was drawn in."""
    if await field.locator("select").count():
        select = field.locator("select")
        values = await select.locator("option").evaluate_all("o => o.map(x => x.value)")
        await select.select_option(values[-1])
    elif await field.locator("input[type=radio]").count():
        await field.locator("input[type=radio]").last.check(force=True)
    else:
        await field.locator("input").fill("2048x2048")


async def test_an_image_with_a_live_estimate_progress_and_the_result(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    estimates: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.url.endswith("/v1/generations/estimate"):
            estimates.append(json.loads(request.post_data or "{}"))
    page.on("request", record)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/v1/generations/events" in r.url
            else None)
    await portal.sign_in(page, address)

    await expect(page.get_by_role("heading", level=1)).to_have_text("Studio")
    submit = page.get_by_role("button", name="Generate")
    # No prompt: no price and no submit, with the reason given.
    await expect(submit).to_be_disabled()
    await expect(page.get_by_test_id("reason")).to_have_text("Write a prompt to see the price.")
    before = await _balance(page)

    await page.get_by_label("Describe what you want").fill("A lighthouse at dusk")
    await expect(page.get_by_text("20 of 4,000 characters")).to_be_visible()
    first = await _estimate(page)
    await expect(submit).to_be_enabled()

    # The size control comes from the provider's declaration; a bigger size costs more.
    size = page.locator("[data-param=size]")
    await expect(size).to_be_visible()
    await _change_size(size)
    await expect(page.get_by_test_id("estimate")).not_to_have_text(first)
    second = await _estimate(page)
    assert _credits(second) > _credits(first)
    assert "size" in estimates[-1]["params"]

    await submit.click()
    status = page.get_by_role("status").filter(has_text=re.compile("Done|queue|Generating"))
    await expect(status.first).to_be_visible()
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    link = result.get_by_role("link", name="Open in the gallery")
    assert re.fullmatch(r"/gallery/\w+", await link.get_attribute("href") or "")
    await expect(page.get_by_role("status").filter(has_text="Done")).to_be_visible()
    # Progress came over the event stream (polling is only the fallback).
    assert streams
    await portal.shot(page, "studio-image-result-en-desktop")
    # Charged: the balance shown beside the button went down.
    await expect(page.get_by_test_id("balance")).not_to_have_text(f"{before:,.0f}")
    assert await _balance(page) < before


async def test_bad_settings_or_too_little_credit_keep_submit_off_with_the_reason(
        portal: Portal) -> None:
    address = await portal.customer(credits_mc=50)
    page = await portal.page()
    await portal.sign_in(page, address)
    submit = page.get_by_role("button", name="Generate")
    await page.get_by_label("Describe what you want").fill("A lighthouse at dusk")
    # A price above the balance (0.05 credits here).
    await _estimate(page)
    await expect(page.get_by_test_id("reason")).to_have_text(
        "This costs more than your balance. Add credits or choose cheaper settings.")
    await expect(submit).to_be_disabled()
    # A value the provider refuses: the API's message, at the field and by the button.
    await page.locator("[data-param=size] input").fill("10x10")
    reason = page.get_by_test_id("reason")
    await expect(reason).to_contain_text("This can't be made as set:")
    await expect(reason).to_contain_text("64")
    await expect(page.locator("[data-param=size] .field-error")).to_be_visible()
    await expect(submit).to_be_disabled()


async def test_progress_falls_back_to_polling_without_the_event_stream(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await page.route("**/v1/generations/events*", lambda route: route.abort())
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url)
            if re.search(r"/v1/generations/\w+$", r.url) and r.method == "GET" else None)
    await portal.sign_in(page, address)
    await page.get_by_label("Describe what you want").fill("A red fox in fresh snow")
    await _estimate(page)
    await page.get_by_role("button", name="Generate").click()
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    assert polls


async def test_an_edit_sends_the_picture_and_the_painted_mask(portal: Portal,
                                                              tmp_path: Path) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address)
    picture = tmp_path / "photo.png"
    picture.write_bytes(_png())

    await page.get_by_role("radio", name="Edit").check()
    await page.get_by_label("Describe what you want").fill("A red door")
    await page.get_by_label("Upload a picture").set_input_files(str(picture))
    canvas = page.get_by_test_id("mask-canvas")
    await expect(canvas).to_be_visible()
    await expect(page.get_by_test_id("reason")).to_have_text(
        "Paint over the part of the picture to change.")
    box = await canvas.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(x - 40, y)
    await page.mouse.down()
    await page.mouse.move(x, y + 10, steps=5)
    await page.mouse.move(x + 40, y, steps=5)
    await page.mouse.up()
    await expect(page.get_by_test_id("reason")).to_have_count(0)

    async with page.expect_request(lambda r: r.url.endswith("/v1/generations")
                                   and r.method == "POST") as sent:
        await page.get_by_role("button", name="Generate").click()
    body = json.loads((await sent.value).post_data or "{}")
    assert body["operation"] == "image_edit"
    assert body["params"]["image"].startswith("data:image/png;base64,")
    mask = Image.open(io.BytesIO(base64.b64decode(
        body["params"]["mask"].split(",", 1)[1]))).convert("RGBA")
    # The mask is the picture's size; painted pixels are transparent, the rest opaque.
    assert mask.size == (256, 256)
    assert mask.getpixel((128, 128))[3] == 0
    assert mask.getpixel((5, 5))[3] == 255
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    await portal.shot(page, "studio-image-edit-en-desktop")


async def test_speech_with_a_voice_picked_from_the_local_engine(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/studio/audio")
    await page.get_by_label("Text to speak").fill("Hello from the studio")
    # The voices come from GET /v1/voices for the (neutrally named) provider; the language
    # filter keeps Arabic ones.
    voices = page.get_by_label("Choose a voice")
    await expect(voices.locator("option")).not_to_have_count(1)
    await page.get_by_role("combobox", name="Language").select_option("ar")
    options = await voices.locator("option").evaluate_all("o => o.map(x => x.value)")
    assert len(options) >= 2
    await voices.select_option(options[1])
    await _estimate(page)
    async with page.expect_request(lambda r: r.url.endswith("/v1/generations")
                                   and r.method == "POST") as sent:
        await page.get_by_role("button", name="Generate").click()
    assert json.loads((await sent.value).post_data or "{}")["params"]["voice"] == options[1]
    result = page.get_by_test_id("result")
    await expect(result.locator("audio")).to_be_visible(timeout=30_000)


async def test_a_video_from_a_picture_picked_in_the_gallery(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address)
    await page.get_by_label("Describe what you want").fill("A lighthouse at dusk")
    await _estimate(page)
    await page.get_by_role("button", name="Generate").click()
    await expect(page.get_by_test_id("result").get_by_role("img")).to_be_visible(timeout=30_000)

    await page.get_by_role("link", name="Video").click()
    await page.get_by_role("radio", name="From an image").check()
    await page.get_by_role("button", name="Pick from my gallery").click()
    await page.get_by_role("button", name="Picture 1").click()
    await expect(page.get_by_role("img", name="The chosen picture")).to_be_visible()
    await page.get_by_label("Describe what you want").fill("A slow zoom")
    await _estimate(page)
    async with page.expect_request(lambda r: r.url.endswith("/v1/generations")
                                   and r.method == "POST") as sent:
        await page.get_by_role("button", name="Generate").click()
    body = json.loads((await sent.value).post_data or "{}")
    assert body["operation"] == "image_to_video"
    assert body["params"]["image"].startswith("data:image/")
    await expect(page.get_by_test_id("result").locator("video")).to_be_visible(timeout=60_000)


async def test_a_design_from_a_template_with_its_fields(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/studio/design")
    # The templates come from GET /v1/design/templates (the local design engine's).
    template = page.get_by_role("combobox", name="Template")
    await expect(template.locator("option")).not_to_have_count(1)
    await template.select_option(index=1)
    await page.get_by_label("Headline").fill("Grand opening")
    await page.get_by_label("Call to action").fill("Visit us")
    await page.get_by_label("Describe what you want").fill("Opening poster, warm colours")
    await _estimate(page)
    async with page.expect_request(lambda r: r.url.endswith("/v1/generations")
                                   and r.method == "POST") as sent:
        await page.get_by_role("button", name="Generate").click()
    params = json.loads((await sent.value).post_data or "{}")["params"]
    assert params["fields"] == {"headline": "Grand opening", "cta": "Visit us"}
    assert params["template"] == await template.input_value()
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    await portal.shot(page, "studio-design-result-en-desktop")


async def test_a_3d_model_is_shown_in_the_viewer(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/studio/model_3d")
    await page.get_by_label("Describe what you want").fill("A glossy red ball")
    await _estimate(page)
    await page.get_by_role("button", name="Generate").click()
    viewer = page.get_by_test_id("result").locator(".model-canvas")
    await expect(viewer).to_have_attribute("data-state", "ready", timeout=30_000)
    await expect(viewer.get_by_role("img", name="Result 1")).to_be_visible()
    await portal.shot(page, "studio-model_3d-result-en-desktop")


async def test_cancel_a_video_while_it_waits_or_runs(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/studio/video")
    await page.get_by_label("Describe what you want").fill("Waves on a beach")
    duration = page.locator("[data-param=duration_s] input[type=number]")
    if await duration.count():
        await duration.fill("20")
    await _estimate(page)
    async with page.expect_response(lambda r: r.url.endswith("/v1/generations")
                                    and r.request.method == "POST") as created:
        await page.get_by_role("button", name="Generate").click()
    generation_id = (await (await created.value).json())["id"]
    async with page.expect_response(lambda r: r.url.endswith(f"/{generation_id}/cancel")) as c:
        await page.get_by_role("button", name="Cancel").click()
    answer = await c.value
    assert answer.status == 200, await answer.text()
    await expect(page.get_by_role("alert")).to_have_text(re.compile("Cancelled"))
    r = await portal.api.get(f"/v1/generations/{generation_id}", headers={
        **portal.tenant_auth})
    assert r.json()["status"] in ("cancelled", "canceled"), r.text


async def test_each_panel_in_english_and_arabic_on_desktop_and_phone(portal: Portal) -> None:
    address = await portal.customer()
    for locale in ("en", "ar"):
        for phone in (False, True):
            page = await portal.page(phone=phone, locale=locale)
            await portal.sign_in(page, address)
            for panel in PANELS:
                await page.goto(f"{portal.origin}/studio/{panel}")
                submit = page.get_by_role(
                    "button", name="إنشاء" if locale == "ar" else "Generate")
                await expect(submit).to_be_visible()
                await expect(page.get_by_test_id("balance")).not_to_have_text("—")
                assert "mediahub" not in (await page.content()).lower()
                await portal.shot(page, f"studio-{panel}-{locale}-"
                                        f"{'phone' if phone else 'desktop'}")
                assert axe_violations(await Axe().run(page)) == [], panel
