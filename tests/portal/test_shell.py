"""The portal's frame: served on the tenant's domain in its brand, in English and Arabic."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect

from tests.portal.conftest import Portal, axe_violations


async def test_the_sign_in_page_is_the_tenants_in_english_and_arabic(portal: Portal) -> None:
    for locale in ("en", "ar"):
        for phone in (False, True):
            page = await portal.page(phone=phone, locale=locale)
            await page.goto(f"{portal.origin}/studio/image")
            # Not signed in: sent to sign-in, with the way back kept.
            await page.wait_for_url(f"{portal.origin}/signin?next=*")
            assert await page.title() == "Acme Studio"
            assert await page.locator(".brand-name").inner_text() == "Acme Studio"
            html = page.locator("html")
            assert await html.get_attribute("dir") == ("rtl" if locale == "ar" else "ltr")
            assert await html.get_attribute("lang") == locale
            heading = "تسجيل الدخول" if locale == "ar" else "Sign in"
            assert await page.get_by_role("heading", level=1).inner_text() == heading
            # The tenant's colour reaches the page as a CSS variable.
            primary = await page.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--color-primary')")
            assert primary.strip() == "#0f766e"
            assert "mediahub" not in (await page.content()).lower()
            await portal.shot(page, f"signin-{locale}-{'phone' if phone else 'desktop'}")
            assert axe_violations(await Axe().run(page)) == []


async def test_signing_in_opens_the_studio_and_the_language_switch_is_remembered(
        portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address)
    assert await page.locator("html").get_attribute("dir") == "ltr"
    await page.get_by_role("button", name="Change language").click()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.get_by_role("link", name="المعرض")).to_be_visible()
