"""The gallery, the viewer and the share page, in a real browser against the real pipeline
(the offline engines make the media): what a customer made is listed, filtered, searched,
favourited, zipped, deleted, looked at closely and shared with someone without an account."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.portal.conftest import Portal, axe_violations

FOX = {"type": "image", "prompt": "a red fox at sunset"}
WHALE = {"type": "image", "prompt": "a blue whale in the ocean"}
FOREST = {"type": "image", "prompt": "a green forest path"}
SPEECH = {"type": "audio", "text": "Hello from the gallery."}


async def make(page: Page, body: dict[str, Any]) -> dict[str, Any]:
    """One finished generation, made in the page as the signed-in customer (its session
    cookie and CSRF token), the way the studio makes them. (In the page, not through
    Playwright's request API: only Chromium resolves the tenant's test domain.)"""
    answer = await page.evaluate("""async (body) => {
      const me = await (await fetch("/v1/users/me")).json();
      const r = await fetch("/v1/generations", {method: "POST", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf_token,
                  "Prefer": "wait=60"}});
      return {status: r.status, body: await r.json()};
    }""", body)
    assert answer["status"] == 200, answer
    generation: dict[str, Any] = answer["body"]
    assert generation["status"] == "succeeded", generation
    return generation


async def status_of(page: Page, path: str) -> int:
    status: int = await page.evaluate("async (path) => (await fetch(path)).status", path)
    return status


def tile(page: Page, generation: dict[str, Any]) -> Any:
    return page.locator(f'.tile[data-id="{generation["id"]}"]')


async def test_the_gallery_lists_filters_searches_favourites_zips_and_deletes(
        portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/gallery")
    # Nothing made yet: the way to the studio.
    await expect(page.get_by_role("link", name="Open the studio")).to_be_visible()
    await portal.shot(page, "gallery-empty-en-desktop")

    fox, whale, forest = [await make(page, body) for body in (FOX, WHALE, FOREST)]
    speech = await make(page, SPEECH)
    await page.reload()
    tiles = page.locator(".grid .tile")
    await expect(tiles).to_have_count(4)
    # Newest first, images shown as pictures, the audio as a tile of its own.
    await expect(tiles.first).to_have_attribute("data-id", speech["id"])
    await expect(tile(page, fox).locator("img")).to_be_visible()
    await expect(tile(page, fox)).to_contain_text("a red fox at sunset")
    await portal.shot(page, "gallery-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # A type filter narrows the grid, is kept in the URL and survives a reload.
    await page.get_by_label("Type").select_option("image")
    await expect(page).to_have_url(re.compile(r"[?&]type=image"))
    await expect(tiles).to_have_count(3)
    await page.reload()
    await expect(tiles).to_have_count(3)
    await expect(page.get_by_label("Type")).to_have_value("image")

    # Full-text search over prompts (debounced), kept in the URL as well.
    await page.get_by_label("Search prompts").fill("whale")
    await expect(page).to_have_url(re.compile(r"[?&]q=whale"))
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_have_attribute("data-id", whale["id"])
    await page.reload()
    await expect(tiles).to_have_count(1)
    await expect(page.get_by_label("Search prompts")).to_have_value("whale")
    # Back and Forward move between filter states (typing replaces, not piles up, entries).
    await page.go_back()
    await expect(tiles).to_have_count(4)
    await expect(page.get_by_label("Type")).to_have_value("")
    await page.go_forward()
    await expect(tiles).to_have_count(1)
    await expect(page.get_by_label("Search prompts")).to_have_value("whale")
    await page.get_by_role("button", name="Clear filters").first.click()
    await expect(tiles).to_have_count(4)

    # Favourite one tile: the star says so, the server keeps it, the filter finds it.
    star = tile(page, fox).get_by_role("button", name=re.compile("Favourite"))
    await star.click()
    await expect(star).to_have_attribute("aria-pressed", "true")
    # (The box follows the URL, which the router updates in a transition: click, then wait.)
    await page.get_by_label("Favourites only").click()
    await expect(page.get_by_label("Favourites only")).to_be_checked()
    await expect(tiles).to_have_count(1)
    await page.reload()
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_have_attribute("data-id", fox["id"])
    await page.get_by_role("button", name="Clear filters").first.click()
    await expect(tiles).to_have_count(4)

    # Select two and download them as a zip: each output and generations.json inside.
    for chosen in (whale, forest):
        await tile(page, chosen).get_by_role("checkbox").check()
    await expect(page.get_by_text("2 selected")).to_be_visible()
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download zip").click()
    download = await info.value
    assert download.suggested_filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO((await download.path()).read_bytes()))
    names = set(archive.namelist())
    assert "generations.json" in names
    for chosen in (whale, forest):
        assert any(n.startswith(f"{chosen['id']}-") for n in names), names
    listed = json.loads(archive.read("generations.json"))
    listed = listed["data"] if isinstance(listed, dict) else listed
    assert {g["id"] for g in listed} == {whale["id"], forest["id"]}
    assert {g["prompt"] for g in listed} == {WHALE["prompt"], FOREST["prompt"]}

    # Bulk delete, behind a confirmation: gone from the grid and from the API.
    await page.get_by_role("toolbar").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await portal.shot(page, "gallery-confirm-en-desktop")
    await dialog.get_by_role("button", name="Delete").click()
    await expect(tiles).to_have_count(2)
    await expect(page.get_by_role("status").filter(has_text="Deleted: 2.")).to_be_visible()
    for gone in (whale, forest):
        assert await status_of(page, f"/v1/generations/{gone['id']}") == 404

    # A search that matches nothing offers to clear the filters.
    await page.goto(f"{portal.origin}/gallery?q=zebra")
    await expect(page.get_by_text("Nothing matches these filters.")).to_be_visible()
    # A filter the API refuses (a hand-made URL) is an error that offers the way out.
    await page.goto(f"{portal.origin}/gallery?status=nonsense")
    await expect(page.get_by_role("alert")).to_contain_text("These filters cannot be used.")
    await page.get_by_role("alert").get_by_role("button", name="Clear filters").click()
    await expect(tiles).to_have_count(2)
    await expect(page).to_have_url(f"{portal.origin}/gallery")

    # The same grid on a phone and in Arabic: two columns, mirrored.
    for phone, locale in ((True, "en"), (False, "ar"), (True, "ar")):
        other = await portal.page(phone=phone, locale=locale)
        await portal.sign_in(other, address, then="/gallery")
        await expect(other.locator(".grid .tile")).to_have_count(2)
        await expect(other.locator(".grid .tile img").first).to_be_visible()
        name = f"gallery-{locale}-{'phone' if phone else 'desktop'}"
        await portal.shot(other, name)
        assert axe_violations(await Axe().run(other)) == [], name
        if phone:
            columns = await other.evaluate(
                "getComputedStyle(document.querySelector('.grid')).gridTemplateColumns"
                ".split(' ').length")
            assert columns == 2
            await other.locator(".grid .tile").first.get_by_role("checkbox").check()
            await expect(other.get_by_role("toolbar").get_by_role("button")).to_have_count(5)
            await portal.shot(other, f"gallery-selected-{locale}-phone")
        if locale == "ar":
            assert await other.locator("html").get_attribute("dir") == "rtl"
            await expect(other.get_by_role("heading", level=1)).to_have_text("المعرض")


async def test_the_viewer_zooms_plays_and_shares_a_link_anyone_can_open(
        portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/gallery")
    fox = await make(page, FOX)
    speech = await make(page, SPEECH)

    # From the grid to the image's viewer.
    await page.reload()
    await tile(page, fox).get_by_role("link").click()
    await page.wait_for_url(f"{portal.origin}/gallery/{fox['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(FOX["prompt"])
    frame = page.locator(".zoom-frame")
    await expect(frame.locator("img")).to_be_visible()
    await expect(frame).to_have_attribute("data-scale", "1")
    await page.get_by_role("button", name="Zoom in").click()
    await expect(frame).not_to_have_attribute("data-scale", "1")
    # The keyboard: 0 resets, + zooms in; the wheel zooms too.
    await frame.focus()
    await page.keyboard.press("0")
    await expect(frame).to_have_attribute("data-scale", "1")
    await page.keyboard.press("+")
    await expect(frame).not_to_have_attribute("data-scale", "1")
    await page.get_by_role("button", name="Reset").click()
    await frame.hover()
    await page.mouse.wheel(0, -200)
    await expect(frame).not_to_have_attribute("data-scale", "1")
    # Dragging pans the zoomed picture.
    before = await frame.locator("img").get_attribute("style")
    box = await frame.bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 30)
    await page.mouse.up()
    assert await frame.locator("img").get_attribute("style") != before
    await expect(page.get_by_text(FOX["prompt"]).last).to_be_visible()
    await expect(page.get_by_role("link", name="Download")).to_have_attribute(
        "href", re.compile(".+"))
    await portal.shot(page, "viewer-image-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # Share: a link with its expiry, copied; opened without cookies it shows the image.
    await page.get_by_role("button", name="Share a link").click()
    link = page.get_by_label("Link anyone can open")
    await expect(link).to_have_value(re.compile(r"/shared/"))
    await expect(page.get_by_text(re.compile("It works until"))).to_be_visible()
    url = await link.input_value()
    await expect(page.get_by_text("Copied.")).to_be_visible()
    stranger = await portal.page(phone=True)
    assert await stranger.context.cookies() == []
    await stranger.goto(url)
    await expect(stranger.get_by_role("heading", level=1)).to_have_text(FOX["prompt"])
    await expect(stranger.locator(".zoom-frame img")).to_be_visible()
    await portal.shot(stranger, "shared-en-phone")
    assert axe_violations(await Axe().run(stranger)) == []
    arabic = await portal.page(locale="ar")
    await arabic.goto(url)
    await expect(arabic.get_by_role("link", name="تنزيل")).to_be_visible()
    await expect(arabic.locator(".zoom-frame img")).to_be_visible()
    await portal.shot(arabic, "shared-ar-desktop")
    assert axe_violations(await Axe().run(arabic)) == []
    # A link that is not one says so plainly.
    await stranger.goto(f"{portal.origin}/shared/not-a-token")
    await expect(stranger.get_by_role("heading", level=1)).to_have_text(
        "This link no longer works")
    await portal.shot(stranger, "shared-gone-en-phone")

    # Previous (in the gallery's order, newest first) is the audio: its viewer draws the
    # waveform and plays.
    await page.get_by_role("link", name="Previous").click()
    await page.wait_for_url(f"{portal.origin}/gallery/{speech['id']}")
    wave = page.locator(".waveform canvas").first
    await expect(wave).to_be_attached()
    size = await wave.evaluate("c => [c.width, c.height]")
    assert size[0] > 0
    assert size[1] > 0
    play = page.get_by_role("button", name="Play")
    await expect(play).to_be_enabled()
    await play.click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    await page.get_by_role("button", name="Pause").click()
    await portal.shot(page, "viewer-audio-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # Arabic, phone and desktop: mirrored, translated, still accessible.
    for phone in (True, False):
        other = await portal.page(phone=phone, locale="ar")
        await portal.sign_in(other, address, then=f"/gallery/{fox['id']}")
        await expect(other.locator(".zoom-frame img")).to_be_visible()
        await expect(other.get_by_role("button", name="تكبير")).to_be_visible()
        await portal.shot(other, f"viewer-image-ar-{'phone' if phone else 'desktop'}")
        assert axe_violations(await Axe().run(other)) == []
    phone_en = await portal.page(phone=True)
    await portal.sign_in(phone_en, address, then=f"/gallery/{speech['id']}")
    await expect(phone_en.locator(".waveform canvas").first).to_be_attached()
    await portal.shot(phone_en, "viewer-audio-en-phone")


async def test_the_viewer_shows_video_with_its_poster_turns_a_3d_model_and_deletes(
        portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/gallery")
    clip = await make(page, {"type": "video", "prompt": "waves on a beach"})
    model = await make(page, {"type": "model_3d", "prompt": "a small teapot"})

    # The video plays in the page's player with the worker's poster frame.
    await page.goto(f"{portal.origin}/gallery/{clip['id']}")
    video = page.locator(".video-player video")
    await expect(video).to_have_attribute("src", re.compile(".+"))
    poster = clip["outputs"][0].get("thumbnail_url")
    assert poster, clip["outputs"][0]
    # (Output URLs are signed afresh on each read: compare the file, not the signature.)
    poster_file = re.compile(re.escape(poster.split("?")[0]) + r"\?")
    await expect(video).to_have_attribute("poster", poster_file)
    await portal.shot(page, "viewer-video-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # The GLB loads into the three.js viewer: a canvas that has drawn the model.
    await page.goto(f"{portal.origin}/gallery/{model['id']}")
    await expect(page.locator(".model-canvas")).to_have_attribute("data-state", "ready")
    canvas = page.locator(".model-canvas canvas")
    size = await canvas.evaluate("c => [c.width, c.height]")
    assert size[0] > 0
    assert size[1] > 0
    await portal.shot(page, "viewer-3d-en-desktop")
    assert axe_violations(await Axe().run(page)) == []
    # In the grid the model is a cube tile and the video shows its poster.
    await page.goto(f"{portal.origin}/gallery")
    await expect(tile(page, model).locator("svg")).to_be_visible()
    await expect(tile(page, clip).locator("img")).to_have_attribute("src", poster_file)

    # From the viewer: favourite (kept by the server), then delete behind a confirmation.
    await tile(page, model).get_by_role("link").click()
    await page.wait_for_url(f"{portal.origin}/gallery/{model['id']}")
    await page.get_by_role("button", name="Add to favourites").click()
    await expect(page.get_by_role("button", name="Favourite")).to_have_attribute(
        "aria-pressed", "true")
    await page.reload()
    await expect(page.get_by_role("button", name="Favourite")).to_have_attribute(
        "aria-pressed", "true")
    await page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Keep it").click()
    await expect(dialog).to_have_count(0)
    await page.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await page.wait_for_url(f"{portal.origin}/gallery")
    await expect(page.locator(".grid .tile")).to_have_count(1)
    assert await status_of(page, f"/v1/generations/{model['id']}") == 404
    await page.goto(f"{portal.origin}/gallery/{model['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "This creation does not exist or was deleted.")


async def test_the_grid_loads_more_as_it_scrolls_and_by_button(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/gallery")
    # More than a page (24) of generations: the next page comes from the cursor.
    made = [await make(page, {"type": "audio", "text": f"Clip number {n}."}) for n in range(26)]
    await page.reload()
    tiles = page.locator(".grid .tile")
    await expect(tiles).to_have_count(24)
    more = page.get_by_role("button", name="Load more")
    await expect(more).to_be_visible()
    # The button, for keyboards: it loads the rest, then goes away.
    await more.focus()
    await page.keyboard.press("Enter")
    await expect(tiles).to_have_count(26)
    await expect(more).to_have_count(0)
    await expect(tiles.last).to_have_attribute("data-id", made[0]["id"])
    # Scrolling to the end of the grid loads the next page by itself.
    await page.goto(f"{portal.origin}/gallery?type=audio")
    await expect(tiles).to_have_count(24)
    await page.locator(".load-more").scroll_into_view_if_needed()
    await expect(tiles).to_have_count(26)
    # "Select all" takes every loaded tile.
    await page.get_by_role("button", name="Select all shown").click()
    await expect(page.get_by_text("26 selected")).to_be_visible()
