"""The studio's starter chips come from `GET /v1/suggestions` (the customer's own history
among them, never another customer's), follow what is typed, and "Improve" lists what the
prompt lacks and fills it with a chosen rewrite — in English and Arabic, desktop and phone."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from gateway.suggestions.service import templates
from tests.portal.conftest import PASSWORD, Portal

HISTORY = "A paper boat sailing down a rainy street"
SECRET = "A stranger's secret harbour painting"


async def _customer_external_id(portal: Portal, address: str) -> str:
    host = {"Host": portal.host}
    login = await portal.api.post("/v1/auth/login", headers=host,
                                  json={"email": address, "password": PASSWORD})
    assert login.status_code == 200, login.text
    customer = await portal.api.get(f"/v1/customers/{login.json()['user']['customer_id']}",
                                    headers=portal.tenant_auth)
    assert customer.status_code == 200, customer.text
    external: str = customer.json()["external_id"]
    return external


async def _stranger(portal: Portal) -> str:
    """Another customer of the tenant, with credits; its external id."""
    r = await portal.api.post("/v1/customers", headers=portal.tenant_auth,
                              json={"external_id": "stranger"})
    assert r.status_code == 201, r.text
    g = await portal.api.post(f"/v1/customers/{r.json()['id']}/credits",
                              headers={**portal.tenant_auth, "Idempotency-Key": "stranger"},
                              json={"amount": 100_000, "reason": "test"})
    assert g.status_code in (200, 201), g.text
    return "stranger"


async def _generate(portal: Portal, external_id: str, prompt: str) -> None:
    r = await portal.api.post(
        "/v1/generations", headers={**portal.tenant_auth, "X-Customer-Id": external_id,
                                    "Prefer": "wait=30"},
        json={"type": "image", "prompt": prompt, "provider": "local-image"})
    assert r.status_code in (200, 201), r.text
    assert r.json()["status"] == "succeeded", r.text


async def _api_suggestions(portal: Portal, external_id: str, **query: Any) -> list[str]:
    r = await portal.api.get("/v1/suggestions", params={"type": "image", "limit": 6, **query},
                             headers={**portal.tenant_auth, "X-Customer-Id": external_id})
    assert r.status_code == 200, r.text
    return [s["text"] for s in r.json()["data"]]


async def _chips(page: Page) -> list[str]:
    chips = page.get_by_test_id("chips").get_by_role("button")
    await expect(chips.first).to_be_visible()
    return [text.strip() for text in await chips.all_inner_texts()]


async def test_chips_come_from_the_api_with_the_customers_history(portal: Portal) -> None:
    address = await portal.customer()
    mine = await _customer_external_id(portal, address)
    await _generate(portal, mine, HISTORY)
    await _generate(portal, await _stranger(portal), SECRET)

    page = await portal.page()
    await portal.sign_in(page, address)
    expected = await _api_suggestions(portal, mine, lang="en")
    await expect(page.get_by_test_id("chips").get_by_role("button")).to_have_count(
        len(expected))
    assert await _chips(page) == expected
    assert HISTORY in expected
    assert SECRET not in expected
    history_chip = page.get_by_role("button", name=HISTORY)
    await expect(history_chip).to_have_attribute("data-source", "history")
    assert set(expected) - {HISTORY} <= set(templates("en")["image"])
    await portal.shot(page, "suggestions-en-desktop")

    # Typing re-ranks the chips by the prompt: the matching history prompt leads.
    prompt = page.get_by_label("Describe what you want")
    await prompt.fill("rainy boat")
    await expect(page.get_by_test_id("chips").get_by_role("button").first).to_have_text(HISTORY)
    await page.get_by_role("button", name=HISTORY).click()
    await expect(prompt).to_have_value(HISTORY)


async def test_improve_lists_what_is_missing_and_fills_the_prompt(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page(phone=True)
    await portal.sign_in(page, address)
    prompt = page.get_by_label("Describe what you want")
    await prompt.fill("a cat")
    # The chips follow the prompt: the template about a cat leads.
    await expect(page.get_by_test_id("chips").get_by_role("button").first).to_contain_text(
        "with a cat asleep")
    await page.get_by_role("button", name="Improve").click()
    panel = page.get_by_test_id("improve")
    await expect(panel.locator("li[data-aspect]")).to_have_count(5)
    await expect(panel.locator("li[data-aspect=lighting]")).to_have_text(
        "Describe the light (golden hour, soft window light, neon, ...).")
    variant = await panel.locator(".variant-text").nth(1).inner_text()
    assert variant.startswith("a cat, ")
    await portal.shot(page, "suggestions-en-phone-improve")
    await panel.get_by_role("button", name="Use this").nth(1).click()
    await expect(prompt).to_have_value(variant)
    await expect(panel).to_have_count(0)


async def test_arabic_chips_and_improve(portal: Portal) -> None:
    address = await portal.customer()
    for phone in (False, True):
        page = await portal.page(locale="ar", phone=phone)
        await portal.sign_in(page, address)
        chips = await _chips(page)
        assert chips
        assert set(chips) <= set(templates("ar")["image"])
        await expect(page.get_by_test_id("chips").get_by_role("button").first).to_have_attribute(
            "lang", "ar")
        await page.get_by_label("صف ما تريده").fill("قطة")
        await page.get_by_role("button", name="تحسين").click()
        panel = page.get_by_test_id("improve")
        await expect(panel.locator("li[data-aspect=lighting]")).to_have_text(
            "صِف الإضاءة (الساعة الذهبية، ضوء نافذة ناعم، نيون...).")
        await portal.shot(page, f"suggestions-ar-{'phone' if phone else 'desktop'}")
        first = await panel.locator(".variant-text").first.inner_text()
        await panel.get_by_role("button", name="استخدم هذا").first.click()
        await expect(page.get_by_label("صف ما تريده")).to_have_value(first)
