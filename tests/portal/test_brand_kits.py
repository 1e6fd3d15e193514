"""Brand kits in a real browser (issue #15): staff make a kit in the console with real
uploads from tests/data/ (a font shown in its own face, a logo), and watch its version grow
with each change; a customer picks the kit in the studio for a design made by the local
engine, and the viewer's brand check passes it (logo found, boxed over the picture); an
off-palette image's check fails and says why. axe and screenshots at desktop and phone sizes,
in English and Arabic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.portal.conftest import Portal, axe_violations
from tests.portal.test_console import owner_page

DATA = Path(__file__).parents[1] / "data"
FONT = DATA / "aileron-regular.ttf"
LOGO = DATA / "brand-logo.png"
#: A picture in the kit's own colours for the design's picture slot: without one the local
#: engine fills the slot with a tint halfway between two kit colours, which no kit colour is.
PICTURE = DATA / "brand-picture.png"
LOADING = re.compile("Loading|جارٍ التحميل")


async def settled(page: Page) -> None:
    await expect(page.locator(".c-page h1")).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text=LOADING)).to_have_count(0)


async def api_kit(portal: Portal) -> dict[str, Any]:
    """The tenant's kit "Acme" (teal and cream) with the font and logo, made over the API."""
    r = await portal.api.post("/v1/brand_kits", headers=portal.tenant_auth, json={
        "name": "Acme", "colors": [{"name": "Primary", "hex": "#0A7C66"},
                                   {"name": "Background", "hex": "#FFF8E7"}],
        "tone_words": ["friendly"]})
    assert r.status_code == 201, r.text
    kit: dict[str, Any] = r.json()
    for kind, path, content_type in (("fonts", FONT, "font/ttf"), ("logos", LOGO, "image/png")):
        u = await portal.api.post(f"/v1/brand_kits/{kit['id']}/{kind}",
                                  params={"filename": path.name}, content=path.read_bytes(),
                                  headers={**portal.tenant_auth, "Content-Type": content_type})
        assert u.status_code == 201, u.text
        kit = u.json()
    return kit


async def test_staff_make_a_kit_with_colours_a_font_and_a_logo(portal: Portal) -> None:
    page = await owner_page(portal, then="/console/brand-kits")
    await settled(page)
    await expect(page.get_by_text("No brand kits yet.")).to_be_visible()
    await page.get_by_role("link", name="New brand kit").click()
    await page.get_by_label("Name", exact=True).fill("Acme")
    await page.locator("input[name=color-name-0]").fill("Primary")
    await page.locator("input[name=color-hex-0]").fill("#0A7C66")
    await page.get_by_role("button", name="Add a colour").click()
    await page.locator("input[name=color-name-1]").fill("Background")
    # The picker and the hex field are one value.
    await page.get_by_label("Pick colour Background").fill("#fff8e7")
    await expect(page.locator("input[name=color-hex-1]")).to_have_value("#FFF8E7")
    await page.get_by_role("textbox", name="Tone", exact=True).fill("friendly")
    await page.get_by_role("textbox", name="Tone", exact=True).press("Enter")
    await expect(page.get_by_role("button", name="Remove “friendly”")).to_be_visible()
    await page.get_by_role("button", name="Create brand kit").click()

    await page.wait_for_url(re.compile(r"/console/brand-kits/bk_\w+$"))
    kit_id = page.url.rsplit("/", 1)[1]
    version = page.get_by_test_id("kit-version")
    await expect(version).to_have_text("Version 1")

    # A file of the wrong kind is refused with the API's reason (415).
    await page.locator("input[name=upload-logos]").set_input_files(str(FONT))
    refused = page.get_by_role("alert").filter(has_text="Use a PNG, JPEG or WebP logo")
    await expect(refused).to_be_visible()
    await expect(version).to_have_text("Version 1")

    await page.locator("input[name=upload-fonts]").set_input_files(str(FONT))
    await expect(version).to_have_text("Version 2")
    font = page.get_by_test_id("kit-fonts")
    await expect(font).to_contain_text("Aileron")
    # The sample is drawn in the uploaded face itself (FontFace from the asset URL).
    await expect(font.get_by_test_id("font-sample")).to_have_attribute("data-state", "ready")
    assert "brandkit-" in await font.get_by_test_id("font-sample").evaluate(
        "el => getComputedStyle(el).fontFamily")
    await page.locator("input[name=upload-logos]").set_input_files(str(LOGO))
    await expect(version).to_have_text("Version 3")
    logo = page.get_by_role("img", name="Logo brand-logo.png")
    await expect(logo).to_be_visible()
    assert await logo.evaluate("img => img.naturalWidth") == 160

    # An edit is a new version; the history lists every one and shows a snapshot.
    await page.get_by_role("textbox", name="Style", exact=True).fill("flat illustration")
    await page.get_by_role("textbox", name="Style", exact=True).press("Enter")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Saved as version 4.")).to_be_visible()
    await expect(version).to_have_text("Version 4")
    history = page.get_by_test_id("kit-versions")
    await expect(history.locator("summary")).to_have_count(4)
    first = history.locator("details").filter(has_text="Version 1")
    await first.locator("summary").click()
    await expect(first).to_contain_text("friendly")
    await expect(first.locator("dd").filter(has_text="brand-logo.png")).to_have_count(0)

    r = await portal.api.get(f"/v1/brand_kits/{kit_id}", headers=portal.tenant_auth)
    body = r.json()
    assert (body["version"], [c["hex"] for c in body["colors"]], body["tone_words"],
            body["style_words"], [f["family"] for f in body["fonts"]]) == (
        4, ["#0A7C66", "#FFF8E7"], ["friendly"], ["flat illustration"], ["Aileron"])

    for phone in (False, True):
        for locale in ("en", "ar"):
            look = await owner_page(portal, phone=phone, locale=locale, then="/console/brand-kits")
            size = "phone" if phone else "desktop"
            for name, path in (("list", "/console/brand-kits"),
                               ("editor", f"/console/brand-kits/{kit_id}"),
                               ("new", "/console/brand-kits/new")):
                await look.goto(f"{portal.origin}{path}")
                await settled(look)
                if name == "editor":
                    await expect(look.get_by_test_id("font-sample")).to_have_attribute(
                        "data-state", "ready")
                    await look.get_by_test_id("kit-versions").locator("summary").first.click()
                await portal.shot(look, f"brand-kits-{name}-{locale}-{size}")
                assert axe_violations(await Axe().run(look)) == [], (name, locale, size)


async def test_a_branded_design_passes_and_an_off_palette_image_fails(portal: Portal) -> None:
    kit = await api_kit(portal)
    address = await portal.customer(credits_mc=2_000_000)
    page = await portal.page()
    await portal.sign_in(page, address, then="/studio/design")

    template = page.get_by_role("combobox", name="Template")
    await expect(template.locator("option")).not_to_have_count(1)
    await template.select_option("poster")
    await page.get_by_label("Headline").fill("Spring sale")
    await page.locator("input[type=file]").set_input_files(str(PICTURE))
    picker = page.get_by_role("combobox", name="Brand kit")
    await picker.select_option(label="Acme")
    swatches = page.get_by_role("list", name="Colours of Acme")
    await expect(swatches.locator("li")).to_have_count(2)
    await expect(swatches).to_contain_text("#0A7C66")
    await page.get_by_label("Describe what you want").fill("Spring sale poster")
    await expect(page.get_by_test_id("estimate")).to_have_text(re.compile(r"^[\d,.]+$"))
    async with page.expect_request(lambda r: r.url.endswith("/v1/generations")
                                   and r.method == "POST") as sent:
        await page.get_by_role("button", name="Generate").click()
    assert '"brand_kit_id":"' + kit["id"] + '"' in ((await sent.value).post_data or "")
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    await portal.shot(page, "brand-studio-design-en-desktop")
    await result.get_by_role("link", name="Open in the gallery").click()
    design_url = page.url

    check = page.get_by_role("region", name="Brand check")
    # The kit the generation used is chosen already.
    await expect(check.get_by_role("combobox", name="Brand kit")).to_have_value(kit["id"])
    await check.get_by_role("button", name="Check against the kit").click()
    verdict = check.get_by_test_id("brand-verdict")
    await expect(verdict).to_have_attribute("data-verdict", "pass")
    await expect(verdict).to_contain_text("Pass: on brand")
    await expect(check.get_by_test_id("brand-logo")).to_contain_text("Found")
    await expect(check.get_by_test_id("logo-box")).to_be_visible()
    await expect(check.locator("table tbody tr").first).to_be_visible()

    # An image made off the palette: the check fails and says why.
    await page.goto(f"{portal.origin}/studio/image")
    await page.get_by_label("Describe what you want").fill("a red and violet sunset")
    await expect(page.get_by_test_id("estimate")).to_have_text(re.compile(r"^[\d,.]+$"))
    await page.get_by_role("button", name="Generate").click()
    result = page.get_by_test_id("result")
    await expect(result.get_by_role("img", name="Result 1")).to_be_visible(timeout=30_000)
    await result.get_by_role("link", name="Open in the gallery").click()
    image_url = page.url
    check = page.get_by_role("region", name="Brand check")
    await expect(check.get_by_role("combobox", name="Brand kit")).to_have_value(kit["id"])
    await check.get_by_role("button", name="Check against the kit").click()
    verdict = check.get_by_test_id("brand-verdict")
    await expect(verdict).to_have_attribute("data-verdict", "fail")
    reasons = check.get_by_test_id("brand-reasons")
    await expect(reasons.locator("[data-code=off_palette]").first).to_contain_text(
        re.compile(r"#[0-9A-F]{6} covers \d+% of the picture and is ΔE [\d.]+ from the nearest "
                   r"brand colour"))
    await expect(reasons.locator("[data-code=low_palette_share]")).to_be_visible()

    for phone in (False, True):
        for locale in ("en", "ar"):
            look = await portal.page(phone=phone, locale=locale)
            await portal.sign_in(look, address, then="/studio/design")
            size = "phone" if phone else "desktop"
            await look.get_by_role("combobox").filter(has_text="Acme").select_option(label="Acme")
            await portal.shot(look, f"brand-studio-{locale}-{size}")
            for name, url in (("pass", design_url), ("fail", image_url)):
                await look.goto(url)
                region = look.locator("section.brand-check")
                await region.locator("button").click()
                await expect(region.get_by_test_id("brand-verdict")).to_have_attribute(
                    "data-verdict", name)
                await region.scroll_into_view_if_needed()
                await portal.shot(look, f"brand-check-{name}-{locale}-{size}")
                assert axe_violations(await Axe().run(look)) == [], (name, locale, size)
