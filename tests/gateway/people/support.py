"""Helpers of the people tests: browsers with their own cookie jars, sign-up through mail."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from litestar import Litestar

from tests.conftest import Gateway, Inbox

PASSWORD = "correct horse battery staple"


def email() -> str:
    return f"p-{secrets.token_hex(5)}@example.com"


def browser(gw: Gateway, *, host: str = "testserver",
            client: tuple[str, int] = ("127.0.0.1", 40000)) -> httpx.AsyncClient:
    """A client over ASGI with its own cookie jar, speaking to `host`."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app, client=client),
                             base_url=f"http://{host}")


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def open_tenant(gw: Gateway, **fields: Any) -> tuple[str, str, str]:
    """A tenant open to sign-up (self billing, credits on its wallet): (id, slug, key)."""
    slug = f"p-{secrets.token_hex(4)}"
    branding = {"open_signup": True, **fields.pop("branding", {})}
    tenant = await gw.tenant(slug=slug, branding=branding, **fields)
    return tenant.id, slug, tenant.key


async def signed_up(client: httpx.AsyncClient, smtp: Inbox, slug: str | None,
                    address: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign up, open the verification link, sign in; the login answer."""
    body: dict[str, Any] = {"email": address, "password": password}
    if slug:
        body["tenant"] = slug
    r = await client.post("/v1/auth/signup", json=body)
    assert r.status_code == 202, r.text
    link = Inbox.link(await smtp.next(address))
    v = await client.get(path_of(link))
    assert v.status_code == 303, v.text
    return await login(client, slug, address, password)


async def login(client: httpx.AsyncClient, slug: str | None, address: str,
                password: str = PASSWORD) -> dict[str, Any]:
    body: dict[str, Any] = {"email": address, "password": password}
    if slug:
        body["tenant"] = slug
    r = await client.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def invited(gw: Gateway, smtp: Inbox, tenant_id: str, slug: str, role: str,
                  *, by: httpx.AsyncClient | None = None,
                  csrf: str | None = None) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """A staff member invited (by the operator, or by `by` with its CSRF token), who sets a
    password through the mailed link: its own browser and login answer."""
    address = email()
    if by is None:
        r = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/users", headers=gw.admin(),
                                 json={"email": address, "role": role})
    else:
        r = await by.post("/v1/users", headers={"X-CSRF-Token": csrf or ""},
                          json={"email": address, "role": role})
    assert r.status_code == 201, r.text
    link = Inbox.link(await smtp.next(address))
    assert "/set-password?" in link
    client = browser(gw)
    done = await client.post("/v1/auth/reset/confirm",
                             json={"token": token_of(link), "password": PASSWORD,
                                   "tenant": slug})
    assert done.status_code == 200, done.text
    answer: dict[str, Any] = done.json()
    return client, answer


@contextlib.asynccontextmanager
async def http_server(app: Litestar, sock: socket.socket) -> AsyncIterator[str]:
    """Serve `app` over real HTTP on the bound `sock`; yields its base URL."""
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
