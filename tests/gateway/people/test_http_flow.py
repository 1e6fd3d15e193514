"""The whole sign-in story over a real HTTP server with a cookie jar, on both databases:
sign-up → verification mail (real SMTP) → verify → sign-in → a generation paid by the
session → sign-out → the old cookie is refused."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from gateway.app import create_app, start_services
from plugins.host import build_plugin_host
from tests.conftest import ADMIN_TOKEN, Inbox, make_settings
from tests.gateway.people.support import PASSWORD, email, http_server

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def test_signup_verify_login_generate_logout_over_http(
        database_url: str, tmp_path: Path, smtp_server: Inbox) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The server's own address is the platform host: the tenant is named by slug.
    settings = make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                             smtp_port=smtp_server.port, public_base_url=base)
    services = await start_services(settings, plugins=build_plugin_host(
        load_entry_points=False))
    app = create_app(settings, services=services)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with http_server(app, sock) as url, httpx.AsyncClient(base_url=url) as web:
            r = await web.post("/admin/v1/tenants", headers=admin, json={
                "name": "Acme Studio", "slug": "acme-http", "billing_mode": "self",
                "branding": {"open_signup": True}})
            assert r.status_code == 201, r.text
            tenant_id = r.json()["id"]
            g = await web.post(f"/admin/v1/tenants/{tenant_id}/credits",
                               headers={**admin, "Idempotency-Key": "seed"},
                               json={"amount": 1_000_000, "reason": "test"})
            assert g.status_code == 201, g.text

            address = email()
            browser = httpx.AsyncClient(base_url=url)
            r = await browser.post("/v1/auth/signup", json={
                "email": address.upper(), "password": PASSWORD, "tenant": "acme-http"})
            assert r.status_code == 202, r.text

            # Not verified yet: the right password gets a clear 403, no session.
            early = await browser.post("/v1/auth/login", json={
                "email": address, "password": PASSWORD, "tenant": "acme-http"})
            assert early.status_code == 403
            assert early.json()["error"]["code"] == "email_unverified"
            assert "set-cookie" not in early.headers

            mail = await smtp_server.next(address)
            assert "Acme Studio" in str(mail["From"])
            link = Inbox.link(mail)
            assert link.startswith(f"{url}/v1/auth/verify?")
            opened = await browser.get(link)
            assert opened.status_code == 303
            assert opened.headers["location"].startswith("/")

            r = await browser.post("/v1/auth/login", json={
                "email": address, "password": PASSWORD, "tenant": "acme-http"})
            assert r.status_code == 200, r.text
            signed = r.json()
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("mh_session=")
            for attribute in ("HttpOnly", "Path=/", "SameSite=lax"):
                assert attribute.lower() in cookie.lower()
            assert "domain=" not in cookie.lower()
            assert "secure" not in cookie.lower()  # plain http here
            assert signed["user"]["email"] == address
            assert signed["user"]["role"] == "customer"
            assert signed["user"]["customer_id"] == f"portal:{signed['user']['id']}"
            csrf = {"X-CSRF-Token": signed["csrf_token"]}

            me = await browser.get("/v1/users/me")
            assert me.status_code == 200, me.text
            assert me.json()["user"]["id"] == signed["user"]["id"]
            assert me.json()["csrf_token"] == signed["csrf_token"]

            # Without the CSRF header a cookie write is refused, before anything is spent.
            refused = await browser.post("/v1/generations", json=IMAGE)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "csrf_failed"

            made = await browser.post("/v1/generations", json=IMAGE, headers=csrf)
            assert made.status_code == 202, made.text
            generation = made.json()
            listed = await browser.get(f"/v1/generations/{generation['id']}")
            assert listed.status_code == 200

            out = await browser.post("/v1/auth/logout", headers=csrf)
            assert out.status_code == 200, out.text
            assert out.json()["revoked_at"] is not None
            assert "max-age=0" in out.headers["set-cookie"].lower()

            # The old cookie, sent again by hand, is dead.
            stale = httpx.AsyncClient(base_url=url, cookies={
                "mh_session": cookie.split(";")[0].split("=", 1)[1]})
            again = await stale.get("/v1/users/me")
            assert again.status_code == 401
            assert again.json()["error"]["code"] == "invalid_session"
            await stale.aclose()
            await browser.aclose()
    finally:
        await services.close()
