"""The portal's ways in, in a real browser: sign-up with its mailed verification link,
password reset, staff invitation, magic link (the mailed GET and the /magic page), a minted
portal session link, a team invitation and the workspace switch, and the account page
(language, sessions). Every link is taken from a real mail (SMTP fixture)."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.conftest import Inbox
from tests.gateway.people.support import PASSWORD
from tests.portal.conftest import Portal, axe_violations

NEW_PASSWORD = "a-much-longer-new-secret-42"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def session_of(portal: Portal, address: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers of an API session of `address` on the tenant's host (cookie + CSRF token)."""
    r = await portal.api.post("/v1/auth/login", headers={"Host": portal.host},
                              json={"email": address, "password": password})
    assert r.status_code == 200, r.text
    cookie = "; ".join(f"{k}={v}" for k, v in r.cookies.items())
    portal.api.cookies.clear()
    return {"Host": portal.host, "Cookie": cookie, "X-CSRF-Token": r.json()["csrf_token"]}


async def check(portal: Portal, page: Page, name: str) -> None:
    await portal.shot(page, name)
    assert axe_violations(await Axe().run(page)) == [], name
    assert "mediahub" not in (await page.content()).lower()


async def test_sign_up_mails_a_link_that_confirms_the_address_and_says_so(
        portal: Portal) -> None:
    address = f"new-{secrets.token_hex(4)}@example.com"
    page = await portal.page()
    await page.goto(f"{portal.origin}/signin")
    await page.get_by_role("link", name="No account yet? Sign up").click()
    # The next page's code loads lazily (the old page stays until then): wait for it.
    await expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    await page.get_by_label("Email").fill(address)
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
    await expect(page.get_by_text(address)).to_be_visible()
    # The mailed link verifies (GET /v1/auth/verify) and lands on /?verified=1: a notice.
    link = Inbox.link(await portal.smtp.next(address))
    assert link.startswith(portal.origin)
    await page.goto(link)
    await page.wait_for_url(f"{portal.origin}/signin")
    await expect(page.get_by_role("status").filter(
        has_text="Your email address is confirmed")).to_be_visible()
    await page.get_by_label("Email").fill(address)
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(f"{portal.origin}/studio/image")


async def test_a_wrong_password_shows_the_translated_error(portal: Portal) -> None:
    address = await portal.customer()
    page = await portal.page(locale="ar")
    await page.goto(f"{portal.origin}/signin")
    await page.get_by_label("البريد الإلكتروني").fill(address)
    await page.get_by_label("كلمة المرور").fill("not-the-password")
    await page.locator("form button[type=submit]").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "البريد الإلكتروني وكلمة المرور غير متطابقين.")


async def test_forgot_password_mails_a_reset_link_whose_page_sets_it_and_signs_in(
        portal: Portal) -> None:
    address = await portal.customer(credits_mc=0)
    page = await portal.page()
    await page.goto(f"{portal.origin}/signin")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.wait_for_url(f"{portal.origin}/forgot-password")
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await page.get_by_label("Email").fill(address)
    await page.get_by_role("button", name="Send the reset link").click()
    await expect(page.get_by_role("status")).to_contain_text("is on its way")
    link = Inbox.link(await portal.smtp.next(address))
    assert urlsplit(link).path == "/reset-password"
    await page.goto(link)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill("something else")
    await page.get_by_role("button", name="Save the password").click()
    await expect(page.get_by_role("alert")).to_have_text("The two passwords are not the same.")
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save the password").click()
    await page.wait_for_url(f"{portal.origin}/studio/image")
    await expect(page.get_by_role("status").filter(
        has_text="Your new password is saved")).to_be_visible()
    # The new password works; the link does not work twice.
    await session_of(portal, address, NEW_PASSWORD)
    again = await portal.page()
    await again.goto(link)
    await again.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await again.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await again.get_by_role("button", name="Save the password").click()
    await expect(again.get_by_role("alert")).to_have_text(
        "This link is not valid any more: it was used already or it expired.")


async def test_a_staff_invitation_link_opens_set_password(portal: Portal) -> None:
    address = f"staff-{secrets.token_hex(4)}@example.com"
    r = await portal.api.post("/v1/users", headers={**portal.tenant_auth, "Host": portal.host},
                              json={"email": address, "role": "viewer"})
    assert r.status_code == 201, r.text
    # Sent through the tenant's key: the link is on the tenant's domain (default port in
    # production; the test server's port added here).
    parts = urlsplit(Inbox.link(await portal.smtp.next(address)))
    assert (parts.hostname, parts.path) == (portal.host.split(":")[0], "/set-password")
    link = parts._replace(netloc=portal.host).geturl()
    page = await portal.page(locale="ar")
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("عيّن كلمة المرور")
    await page.get_by_label("كلمة المرور الجديدة", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("أعد كتابة كلمة المرور الجديدة").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="احفظ كلمة المرور").click()
    await page.wait_for_url(f"{portal.origin}/studio/image")
    await session_of(portal, address, NEW_PASSWORD)


async def test_magic_links_sign_in_by_the_mailed_get_and_by_the_magic_page(
        portal: Portal) -> None:
    address = await portal.customer(credits_mc=0)
    page = await portal.page()
    await page.goto(f"{portal.origin}/signin")
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.get_by_label("Email").fill(address)
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
    link = Inbox.link(await portal.smtp.next(address))
    # The mailed link (GET /v1/auth/magic) sets the cookie and sends the browser into the
    # app, which picks the session up.
    await page.goto(link)
    await page.wait_for_url(f"{portal.origin}/studio/image")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # The /magic?token= page redeems a token with POST /v1/auth/magic/redeem.
    r = await portal.api.post("/v1/auth/magic", headers={"Host": portal.host},
                              json={"email": address})
    assert r.status_code == 202, r.text
    token = token_of(Inbox.link(await portal.smtp.next(address)))
    other = await portal.page()
    await other.goto(f"{portal.origin}/magic?token={token}")
    await other.wait_for_url(f"{portal.origin}/studio/image")
    await expect(other.get_by_role("button", name="Sign out")).to_be_visible()
    # Used once: a second visit explains, in the page's language.
    third = await portal.page(locale="ar")
    await third.goto(f"{portal.origin}/magic?token={token}")
    await expect(third.get_by_role("alert")).to_have_text(
        "هذا الرابط لم يعد صالحًا: استُخدم من قبل أو انتهت صلاحيته.")


async def test_a_minted_portal_session_link_arrives_signed_in(portal: Portal) -> None:
    r = await portal.api.post("/v1/portal_sessions",
                              headers={**portal.tenant_auth, "Host": portal.host},
                              json={"customer_id": f"crm-{secrets.token_hex(3)}",
                                    "return_url": "/credits"})
    assert r.status_code == 201, r.text
    # Minted by the tenant's backend: on the tenant's domain (default port in production;
    # the test server's port added here).
    parts = urlsplit(r.json()["url"])
    assert parts.hostname == portal.host.split(":")[0]
    url = parts._replace(netloc=portal.host).geturl()
    page = await portal.page()
    await page.goto(url)
    await page.wait_for_url(f"{portal.origin}/credits")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Credits")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def test_a_team_invitation_joins_the_team_and_the_workspace_switch_uses_it(
        portal: Portal) -> None:
    owner = await portal.customer()
    member = await portal.customer(credits_mc=5_000)
    owner_session = await session_of(portal, owner)
    team = await portal.api.post("/v1/teams", headers=owner_session, json={"name": "Design crew"})
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    fund = await portal.api.post(f"/v1/teams/{team_id}/credits",
                                 headers={**owner_session, "Idempotency-Key": secrets.token_hex(6)},
                                 json={"amount": 42_000})
    assert fund.status_code == 201, fund.text
    invite = await portal.api.post(f"/v1/teams/{team_id}/invitations", headers=owner_session,
                                   json={"email": member, "role": "member"})
    assert invite.status_code == 201, invite.text
    link = Inbox.link(await portal.smtp.next(member))
    assert link.startswith(f"{portal.origin}/teams/accept?token=")

    page = await portal.page()
    await portal.sign_in(page, member)
    await expect(page.locator(".balance-badge")).to_contain_text("5")
    await page.goto(link)
    await expect(page.get_by_role("status").filter(
        has_text="You joined Design crew")).to_be_visible()
    # Now working in the team: the switch shows it, the badge shows the team's balance,
    # and every call carries X-Team-Id.
    switch = page.get_by_label("Workspace")
    await expect(switch).to_have_value(team_id)
    await expect(page.locator(".balance-badge")).to_contain_text("42")
    async with page.expect_request(lambda req: "/v1/credits/transactions" in req.url) as sent:
        await page.get_by_role("link", name="Credits", exact=True).click()
    assert (await sent.value).headers.get("x-team-id") == team_id
    await switch.select_option(label="Personal")
    await expect(page.locator(".balance-badge")).to_contain_text("5")
    async with page.expect_request(lambda req: "/v1/credits/transactions" in req.url) as sent:
        await page.reload()
    assert (await sent.value).headers.get("x-team-id") is None


async def test_the_account_page_keeps_the_language_and_signs_other_sessions_out(
        portal: Portal) -> None:
    address = await portal.customer(credits_mc=0)
    await session_of(portal, address)  # another session, elsewhere
    page = await portal.page()
    await portal.sign_in(page, address, then="/account")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Account")
    rows = page.locator(".session-row")
    # This browser, the one above and the fixture's own sign-in.
    await expect(rows).to_have_count(3)
    await expect(rows.filter(has_text="This device")).to_have_count(1)
    await check(portal, page, "account-en-desktop")
    await rows.filter(has_not_text="This device").first.get_by_role(
        "button", name="Sign out").click()
    await expect(rows).to_have_count(2)
    await page.get_by_label("العربية").check()
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.get_by_role("heading", level=1)).to_have_text("الحساب")
    # Saved on the server (PATCH /v1/users/me), not only on this device ...
    await expect(page.get_by_text("حُفظت. ستتبعك لغتك")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text("الحساب")
    # ... so signing in on another device, in an English browser, opens in Arabic.
    elsewhere = await portal.page(locale="en")
    await portal.sign_in(elsewhere, address, then="/account")
    await expect(elsewhere.locator("html")).to_have_attribute("dir", "rtl")
    await expect(elsewhere.get_by_role("heading", level=1)).to_have_text("الحساب")


async def test_the_auth_screens_in_english_and_arabic_on_phone_and_desktop(
        portal: Portal) -> None:
    address = await portal.customer(credits_mc=12_500)
    for locale in ("en", "ar"):
        for phone in (False, True):
            size = "phone" if phone else "desktop"
            page = await portal.page(phone=phone, locale=locale)
            for path, name in (("/signup", "signup"), ("/forgot-password", "forgot"),
                               ("/reset-password?token=bogus", "reset"),
                               ("/set-password?token=bogus", "set-password"),
                               ("/magic?token=bogus", "magic-bad")):
                await page.goto(f"{portal.origin}{path}")
                await expect(page.get_by_role("heading", level=1)).to_be_visible()
                if name == "magic-bad":
                    await expect(page.get_by_role("alert")).to_be_visible()
                await check(portal, page, f"{name}-{locale}-{size}")
            await page.goto(f"{portal.origin}/signin")
            await page.locator("input[type=email]").fill(address)
            await page.locator("input[type=password]").fill(PASSWORD)
            await page.locator("form button[type=submit]").click()
            await page.wait_for_url(f"{portal.origin}/studio/image")
            await page.goto(f"{portal.origin}/account")
            await expect(page.locator(".session-row").first).to_be_visible()
            await expect(page.locator(".balance-badge")).to_be_visible()
            await check(portal, page, f"account-{locale}-{size}")
