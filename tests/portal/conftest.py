"""Browser tests of the portal: the gateway over real HTTP, Debian's Chromium driven by
Playwright, a tenant on its own domain (`<slug>.portal.test`, which Chromium resolves to
the loopback address through `--host-resolver-rules`), and real SMTP for mailed links.

`MEDIAHUB_SCREENSHOTS` names a folder to keep the screenshots the tests take (desktop and
phone, English and Arabic); without it they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from gateway.app import create_app, start_services
from gateway.generations.services import Services
from plugins.host import build_plugin_host
from tests.conftest import ADMIN_TOKEN, Inbox, make_settings
from tests.gateway.people.support import PASSWORD, http_server, path_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_args() -> list[str]:
    # The flags the machine's notes give for a closed network, and the test domains.
    return ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--host-resolver-rules=MAP *.portal.test 127.0.0.1"]


@dataclass
class Portal:
    """A running gateway with one tenant whose portal is `origin`."""

    base: str
    origin: str
    host: str
    tenant_id: str
    slug: str
    key: str
    api: httpx.AsyncClient
    smtp: Inbox
    browser: Browser
    shots: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    #: The gateway's services (provider states, ...), for tests that set up state directly.
    services: Services | None = None

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @property
    def tenant_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def customer(self, credits_mc: int = 200_000) -> str:
        """A verified portal user with `credits_mc` on its customer wallet; its email
        (password `PASSWORD`)."""
        address = f"c-{secrets.token_hex(5)}@example.com"
        host = {"Host": self.host}
        r = await self.api.post("/v1/auth/signup", headers=host,
                                json={"email": address, "password": PASSWORD})
        assert r.status_code == 202, r.text
        link = Inbox.link(await self.smtp.next(address))
        v = await self.api.get(path_of(link), headers=host)
        assert v.status_code == 303, v.text
        login = await self.api.post("/v1/auth/login", headers=host,
                                    json={"email": address, "password": PASSWORD})
        assert login.status_code == 200, login.text
        customer_id = login.json()["user"]["customer_id"]
        if credits_mc:
            g = await self.api.post(f"/v1/customers/{customer_id}/credits",
                                    headers={**self.tenant_auth,
                                             "Idempotency-Key": secrets.token_hex(8)},
                                    json={"amount": credits_mc, "reason": "test"})
            assert g.status_code in (200, 201), g.text
        return address

    async def page(self, *, phone: bool = False, locale: str = "en") -> Page:
        """A fresh browser (own cookies and storage) at the chosen size and language."""
        context = await self.browser.new_context(
            viewport=PHONE if phone else DESKTOP, locale="ar-EG" if locale == "ar" else "en-US",
            is_mobile=phone, has_touch=phone, device_scale_factor=2 if phone else 1)
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        return page

    async def sign_in(self, page: Page, address: str, then: str = "/studio/image") -> None:
        await page.goto(f"{self.origin}/signin?next={then}")
        await page.locator("input[type=email]").fill(address)
        await page.locator("input[type=password]").fill(PASSWORD)
        await page.locator("form button[type=submit]").click()
        await page.wait_for_url(f"{self.origin}{then}*")

    async def shot(self, page: Page, name: str) -> Path:
        """A full-page screenshot named `name`, kept in the screenshots folder."""
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def portal_settings() -> dict[str, Any]:
    """Settings a test module wants on top of the defaults (override this fixture, e.g. to
    point Stripe at the fake)."""
    return {}


@pytest.fixture
async def portal(pg_url: str, tmp_path: Path, smtp_server: Inbox,
                 portal_settings: dict[str, Any]) -> AsyncIterator[Portal]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(pg_url, tmp_path, smtp_host=smtp_server.host,
                             smtp_port=smtp_server.port, public_base_url=base,
                             **portal_settings)
    services = await start_services(settings, plugins=build_plugin_host(
        load_entry_points=False))
    app = create_app(settings, services=services)
    slug = f"b-{secrets.token_hex(4)}"
    host = f"{slug}.portal.test"
    shots = Path(os.environ.get("MEDIAHUB_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with http_server(app, sock) as url, httpx.AsyncClient(base_url=url) as api, \
                async_playwright() as pw:
            r = await api.post("/admin/v1/tenants", headers=admin, json={
                "name": "Acme Studio", "slug": slug, "billing_mode": "mediahub",
                "domains": [host],
                "branding": {"open_signup": True, "colors": {"primary": "#0f766e"}}})
            assert r.status_code == 201, r.text
            tenant_id = r.json()["id"]
            g = await api.post(f"/admin/v1/tenants/{tenant_id}/credits",
                               headers={**admin, "Idempotency-Key": "seed"},
                               json={"amount": 10_000_000, "reason": "test"})
            assert g.status_code == 201, g.text
            k = await api.post(f"/admin/v1/tenants/{tenant_id}/keys", headers=admin, json={
                "name": "staff", "scopes": ["generate", "read", "billing", "tenant_admin"]})
            assert k.status_code == 201, k.text
            origin = f"http://{host}:{port}"
            # Service workers (offline, push) need a secure context: the test origin is
            # plain http on a made-up domain, so Chromium is told to treat it as secure.
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                *chromium_args(), f"--unsafely-treat-insecure-origin-as-secure={origin}"])
            site = Portal(base=url, origin=origin, host=f"{host}:{port}",
                          tenant_id=tenant_id, slug=slug, key=k.json()["key"], api=api,
                          smtp=smtp_server, browser=browser, shots=shots,
                          services=services)
            try:
                yield site
            finally:
                for context in site.contexts:
                    await context.close()
                await browser.close()
    finally:
        await services.close()


def axe_violations(results: Any) -> list[str]:
    """Serious and critical axe-core violations, one line each (empty when clean)."""
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
