"""The installable, offline side of the portal in a real browser: the service worker takes
control, keeps the app shell and the media the user viewed, so that after going offline
(`context.set_offline`) a reload still shows the signed-in shell, an offline notice and a
viewed image; a generation submitted offline is queued by the worker and sent once the
connection returns."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.portal.conftest import Portal, axe_violations

SUBMIT = """async (body) => {
  const me = await (await fetch('/v1/users/me')).json();
  const r = await fetch('/v1/generations', {method: 'POST', body: JSON.stringify(body),
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token,
              'Prefer': 'wait=30'}});
  return {status: r.status, body: await r.json()};
}"""

SHOW_IMAGE = """async (src) => {
  const img = document.createElement('img');
  img.alt = 'viewed';
  img.className = 'test-viewed';
  document.querySelector('main').append(img);
  img.src = src;
  try { await img.decode(); } catch (e) { return 0; }
  return img.naturalWidth;
}"""

COUNT = """async () => {
  const r = await fetch('/v1/generations?limit=50', {cache: 'no-store'});
  return r.ok ? (await r.json()).data.length : -1;
}"""

BODY = {"type": "image", "prompt": "a lighthouse at dusk", "provider": "local-image",
        "params": {"size": "64x64"}}


async def controlled(page: Page) -> None:
    """Wait until the service worker controls the page (it claims clients on activation)."""
    await page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller"
                                 " !== null")


async def test_offline_the_shell_and_a_viewed_image_stay_and_a_submission_is_sent_later(
        portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page()
    await portal.sign_in(page, address, then="/gallery")
    await controlled(page)
    made: dict[str, Any] = await page.evaluate(SUBMIT, BODY)
    assert made["status"] == 200, made
    url = made["body"]["outputs"][0]["url"]
    assert url.startswith(f"{portal.origin}/media/")
    # The gallery is visited online and the image viewed.
    await page.goto(f"{portal.origin}/gallery")
    assert await page.evaluate(COUNT) == 1
    assert await page.evaluate(SHOW_IMAGE, url) > 0

    context = page.context
    await context.set_offline(True)
    await page.reload()
    # The shell opens from the worker's precache, still signed in, and says it is offline.
    await expect(page).to_have_title("Acme Studio")
    await expect(page.get_by_role("link", name="Gallery")).to_be_visible()
    await expect(page.get_by_text("You are offline.")).to_be_visible()
    # The gallery page itself (its code is precached) renders.
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    # The viewed image comes from the media cache, even under a freshly signed link.
    assert await page.evaluate(SHOW_IMAGE, url) > 0
    fresh = url.split("?")[0] + "?expires=1&signature=new"
    assert await page.evaluate(SHOW_IMAGE, fresh) > 0
    # The listing seen online is there too.
    assert await page.evaluate(COUNT) == 1
    await portal.shot(page, "offline-gallery-en-desktop")
    assert axe_violations(await Axe().run(page)) == []

    # Submitted offline: the worker queues it and answers in the API's error shape.
    queued: dict[str, Any] = await page.evaluate(SUBMIT, {**BODY, "prompt": "sent later"})
    assert queued["status"] == 503, queued
    assert queued["body"]["error"]["code"] == "queued_offline"

    # Back online: the queue is replayed (the page's `online` event asks the worker; Chromium's
    # Background Sync would too) and the generation exists.
    await context.set_offline(False)
    await page.wait_for_function(f"({COUNT})().then(n => n === 2)", polling=500, timeout=30_000)
    await expect(page.get_by_text("You are offline.")).to_have_count(0)


async def test_the_offline_page_and_banner_in_arabic_on_a_phone(portal: Portal) -> None:
    address = await portal.customer(credits_mc=0)
    page = await portal.page(phone=True, locale="ar")
    await portal.sign_in(page, address, then="/gallery")
    await controlled(page)
    await page.context.set_offline(True)
    await page.goto(f"{portal.origin}/offline")
    await expect(page.get_by_role("heading", level=1)).to_have_text("أنت غير متصل")
    await expect(page.get_by_text("أنت غير متصل. ما شاهدته")).to_be_visible()
    await portal.shot(page, "offline-ar-phone")
    assert axe_violations(await Axe().run(page)) == []
    await page.context.set_offline(False)
    await expect(page.get_by_role("status").filter(has_text="عاد الاتصال")).to_be_visible()


async def test_the_worker_is_served_at_the_root_with_the_manifest(portal: Portal) -> None:
    r = await portal.api.get("/sw.js", headers={"Host": portal.host})
    assert r.status_code == 200
    assert r.headers["service-worker-allowed"] == "/"
    # The runtime routes are in the built worker: media cache, offline queue, push.
    for marker in ("portal-media", "portal-generations", "notificationclick", "queued_offline"):
        assert marker in r.text, marker
    m = await portal.api.get("/manifest.webmanifest", headers={"Host": portal.host})
    assert m.json()["display"] == "standalone"
