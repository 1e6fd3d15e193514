"""Sign-up, sign-in, reset and magic links over ASGI with cookie jars, on both databases."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from gateway.core.settings import Settings
from tests.conftest import Gateway, Inbox, make_settings, running_gateway
from tests.gateway.people.support import (
    PASSWORD,
    browser,
    email,
    login,
    open_tenant,
    path_of,
    signed_up,
    token_of,
)


async def test_password_reset_replaces_the_password_and_revokes_other_sessions(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    laptop, phone = browser(gateway), browser(gateway)
    await signed_up(laptop, smtp_server, slug, address)
    await login(phone, slug, address)
    assert (await phone.get("/v1/users/me")).status_code == 200

    asked = await browser(gateway).post("/v1/auth/reset", json={"email": address,
                                                                 "tenant": slug})
    assert asked.status_code == 202
    link = Inbox.link(await smtp_server.next(address))
    assert "/reset-password?" in link

    fresh = browser(gateway)
    weak = await fresh.post("/v1/auth/reset/confirm", json={
        "token": token_of(link), "password": "password123", "tenant": slug})
    assert weak.status_code == 422
    assert weak.json()["error"]["param"] == "password"
    new_password = "a brand new passphrase"
    done = await fresh.post("/v1/auth/reset/confirm", json={
        "token": token_of(link), "password": new_password, "tenant": slug})
    assert done.status_code == 200, done.text
    assert done.json()["user"]["email"] == address
    assert (await fresh.get("/v1/users/me")).status_code == 200  # this browser is signed in

    # Every session opened before the reset is gone.
    for old in (laptop, phone):
        assert (await old.get("/v1/users/me")).status_code == 401
    # The old password no longer works; the new one does.
    refused = await browser(gateway).post("/v1/auth/login", json={
        "email": address, "password": PASSWORD, "tenant": slug})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_credentials"
    await login(browser(gateway), slug, address, new_password)
    # The link worked once.
    again = await browser(gateway).post("/v1/auth/reset/confirm", json={
        "token": token_of(link), "password": "yet another passphrase", "tenant": slug})
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "invalid_token"


async def test_reset_answers_the_same_for_an_unknown_email_and_mails_nobody(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    known = email()
    await signed_up(browser(gateway), smtp_server, slug, known)
    unknown = email()
    a = await browser(gateway).post("/v1/auth/reset", json={"email": known, "tenant": slug})
    b = await browser(gateway).post("/v1/auth/reset", json={"email": unknown, "tenant": slug})
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert a.status_code == 202
    await smtp_server.next(known)  # the known address got its link ...
    await gateway.runtime.mailer.drain()
    assert smtp_server.sent_to(unknown) == 0  # ... the unknown one nothing


async def test_signup_of_a_taken_email_answers_the_same_and_mails_the_owner(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    await signed_up(browser(gateway), smtp_server, slug, address)
    first = await browser(gateway).post("/v1/auth/signup", json={
        "email": email(), "password": PASSWORD, "tenant": slug})
    taken = await browser(gateway).post("/v1/auth/signup", json={
        "email": address, "password": PASSWORD, "tenant": slug})
    assert (first.status_code, first.content) == (taken.status_code, taken.content)
    notice = await smtp_server.next(address)
    assert "already has an account" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_magic_link_signs_in_once(gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    await signed_up(browser(gateway), smtp_server, slug, address)
    asked = await browser(gateway).post("/v1/auth/magic", json={"email": address,
                                                                 "tenant": slug})
    assert asked.status_code == 202
    link = Inbox.link(await smtp_server.next(address))
    assert "/v1/auth/magic?" in link
    web = browser(gateway)
    opened = await web.get(path_of(link))
    assert opened.status_code == 303
    assert opened.headers["location"] == "/"
    me = await web.get("/v1/users/me")
    assert me.status_code == 200
    assert me.json()["session"]["method"] == "magic"
    again = await browser(gateway).get(path_of(link))
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "invalid_token"
    # An unknown address gets the same answer and no mail.
    nobody = email()
    same = await browser(gateway).post("/v1/auth/magic", json={"email": nobody,
                                                                "tenant": slug})
    assert (same.status_code, same.content) == (asked.status_code, asked.content)
    await gateway.runtime.mailer.drain()
    assert smtp_server.sent_to(nobody) == 0


@pytest.mark.parametrize(("password", "code"), [
    ("short", "password_too_short"),
    ("password123", "password_too_common"),
    ("qwertyuiop", "password_too_common"),
])
async def test_weak_passwords_are_refused_with_the_param(
        gateway: Gateway, password: str, code: str) -> None:
    _, slug, _ = await open_tenant(gateway)
    r = await browser(gateway).post("/v1/auth/signup", json={
        "email": email(), "password": password, "tenant": slug})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["param"] == "password"


async def test_the_same_email_under_two_tenants_is_two_users(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, one, _ = await open_tenant(gateway)
    _, two, _ = await open_tenant(gateway)
    address = email()
    a = await signed_up(browser(gateway), smtp_server, one, address)
    b = await signed_up(browser(gateway), smtp_server, two, address, "another long passphrase")
    assert a["user"]["id"] != b["user"]["id"]
    # Each tenant's password is its own.
    wrong = await browser(gateway).post("/v1/auth/login", json={
        "email": address, "password": PASSWORD, "tenant": two})
    assert wrong.status_code == 401


async def test_signup_is_closed_unless_the_tenant_opens_it(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    slug = (await gateway.client.get(f"/admin/v1/tenants/{tenant.id}",
                                     headers=gateway.admin())).json()["slug"]
    r = await browser(gateway).post("/v1/auth/signup", json={
        "email": email(), "password": PASSWORD, "tenant": slug})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "signup_closed"


async def test_the_platform_host_needs_a_tenant_and_unknown_hosts_are_404(
        gateway: Gateway) -> None:
    body = {"email": email(), "password": PASSWORD}
    r = await browser(gateway).post("/v1/auth/login", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["param"] == "tenant"
    other = await browser(gateway, host="nobody.example").post("/v1/auth/login", json=body)
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "domain_unverified"


async def test_a_tenant_domain_names_its_tenant(gateway: Gateway, smtp_server: Inbox) -> None:
    host = f"portal-{email().split('@')[0]}.example"
    _, slug, _ = await open_tenant(gateway, domains=[host])
    web = browser(gateway, host=host)
    address = email()
    answer = await signed_up(web, smtp_server, None, address)
    assert answer["user"]["email"] == address
    # The session is good on the tenant's host only: not on the platform host.
    cookie = web.cookies.get("mh_session")
    assert cookie
    elsewhere = browser(gateway)
    elsewhere.cookies.set("mh_session", cookie, domain="testserver")
    assert (await elsewhere.get("/v1/users/me")).status_code == 401
    mismatch = await web.post("/v1/auth/login", json={"email": address, "password": PASSWORD,
                                                      "tenant": "someone-else"})
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "tenant_mismatch"
    assert slug


async def test_login_is_throttled_per_email(gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    await signed_up(browser(gateway), smtp_server, slug, address)
    limit = gateway.runtime.settings.auth_attempts_per_email_per_hour
    statuses = []
    for i in range(limit + 1):
        # Each attempt from another address: only the email's limit binds.
        web = browser(gateway, client=(f"10.0.0.{i + 1}", 1234))
        r = await web.post("/v1/auth/login", json={"email": address, "password": "wrong one!",
                                                    "tenant": slug})
        statuses.append(r.status_code)
    # Sign-up and the first sign-in took two attempts: then wrong passwords (401) until the
    # limit, and 429 after it.
    assert statuses == [401] * (limit - 2) + [429] * 3
    refused = await browser(gateway, client=("10.0.1.1", 1)).post("/v1/auth/login", json={
        "email": address, "password": PASSWORD, "tenant": slug})
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) > 0
    # Another address of the same tenant is not affected.
    other = await browser(gateway, client=("10.0.1.2", 1)).post("/v1/auth/login", json={
        "email": email(), "password": PASSWORD, "tenant": slug})
    assert other.status_code == 401


async def test_requests_are_throttled_per_client_address(
        database_url: str, tmp_path: Path, smtp_server: Inbox) -> None:
    settings: Settings = make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                                       smtp_port=smtp_server.port,
                                       auth_attempts_per_address_per_minute=3)
    async with running_gateway(settings) as gw:
        _, slug, _ = await open_tenant(gw)
        web = browser(gw, client=("192.0.2.7", 5555))
        codes = [(await web.post("/v1/auth/reset", json={"email": email(), "tenant": slug})
                  ).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        login_refused = await web.post("/v1/auth/login", json={
            "email": email(), "password": PASSWORD, "tenant": slug})
        assert login_refused.status_code == 429
        assert "retry-after" in login_refused.headers
        # Another client address still gets through.
        other = await browser(gw, client=("192.0.2.8", 5555)).post(
            "/v1/auth/reset", json={"email": email(), "tenant": slug})
        assert other.status_code == 202


async def test_the_address_limit_holds_under_concurrency_through_valkey(
        database_url: str, tmp_path: Path, smtp_server: Inbox, valkey: str) -> None:
    settings: Settings = make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                                       smtp_port=smtp_server.port, valkey_url=valkey,
                                       auth_attempts_per_address_per_minute=5)
    async with running_gateway(settings) as gw:
        _, slug, _ = await open_tenant(gw)
        # A fresh address per run: the Valkey state outlives the test.
        ip = f"198.51.100.{secrets.randbelow(250) + 1}"
        web = browser(gw, client=(ip, 1))
        answers = await asyncio.gather(*(
            web.post("/v1/auth/reset", json={"email": email(), "tenant": slug})
            for _ in range(20)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [202] * 5 + [429] * 15
