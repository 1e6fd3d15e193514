"""A tenant's own custom domains: pending until the gateway itself finds the token at
`http://<host>/.well-known/mediahub-verification` (through the egress guard), and only then
serving the tenant."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from gateway.core.settings import Settings
from tenants.models import Domain
from tests.conftest import Gateway, Tenant, make_settings, running_gateway

ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]
HOST = "localhost"
#: The PostgreSQL database is shared by the session's tests: hostnames of their own.
SUFFIX = f"{secrets.token_hex(4)}.example.com"


class TokenServer:
    """A tiny HTTP server on loopback answering every request with `status` and `body`."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.paths: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.paths.append(head.split(b" ", 2)[1].decode())
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (self.status, len(self.body), self.body))
        await writer.drain()
        writer.close()


@asynccontextmanager
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def loopback_settings(settings: Settings, tmp_path: Path, port: int) -> Settings:
    return make_settings(settings.database_url, tmp_path,
                         egress_allow_networks=("127.0.0.0/8", "::1/128"),
                         domain_verification_port=port)


async def release_localhost(gw: Gateway) -> None:
    """Only `localhost` resolves to loopback here, and the PostgreSQL database outlives a
    test: free the name a previous test may have left taken."""
    async with gw.runtime.db.transaction() as session:
        await session.execute(delete(Domain).where(Domain.hostname == HOST))


@asynccontextmanager
async def gateway_on(settings: Settings, tmp_path: Path, port: int) -> AsyncIterator[Gateway]:
    async with running_gateway(loopback_settings(settings, tmp_path, port)) as gw:
        await release_localhost(gw)
        yield gw


async def add(gw: Gateway, tenant: Tenant, hostname: str = HOST) -> dict[str, Any]:
    r = await gw.client.post("/v1/tenant/domains", headers=tenant.auth,
                             json={"hostname": hostname})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_domain_serves_its_tenant_only_once_verified(
        settings: Settings, tmp_path: Path) -> None:
    async with token_server() as server, gateway_on(settings, tmp_path, server.port) as gw:
        tenant = await gw.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
        added = await add(gw, tenant)
        assert added["status"] == "pending"
        assert added["verified_at"] is None
        token = added["verification"]["token"]
        assert added["verification"]["url"] == (
            f"http://{HOST}:{server.port}/.well-known/mediahub-verification")
        assert token in (await gw.client.get("/v1/tenant/domains",
                                             headers=tenant.auth)).text

        # Not served before verification, on the portal or as the tenant's media host.
        page = await gw.client.get("/", headers={"Host": HOST})
        assert page.status_code == 404
        assert page.json()["error"]["code"] == "domain_unverified"
        assert (await gw.client.get("/v1/tenant", headers=tenant.auth)).json()["domains"] \
            == [HOST]

        # The server answers, but not with the token: each failure says what was found.
        server.status, server.body = 404, b"nothing here"
        r = await gw.client.post(f"/v1/tenant/domains/{HOST}/verify", headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "domain_verification_failed"
        assert "404" in r.json()["error"]["message"]
        server.status, server.body = 200, b"not-the-token"
        r = await gw.client.post(f"/v1/tenant/domains/{HOST}/verify", headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "domain_verification_failed"
        assert r.json()["error"]["reason"] == "token_mismatch"
        assert (await gw.client.get("/", headers={"Host": HOST})).status_code == 404

        server.body = token.encode() + b"\n"
        r = await gw.client.post(f"/v1/tenant/domains/{HOST}/verify", headers=tenant.auth)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "verified"
        assert r.json()["verification"] is None
        assert server.paths[-1] == "/.well-known/mediahub-verification"

        page = await gw.client.get("/", headers={"Host": f"{HOST}:8080"})
        assert page.status_code == 200, page.text
        assert "Tenant " in page.text

        # Removed: the host stops serving at once (and is unknown, not pending).
        r = await gw.client.delete(f"/v1/tenant/domains/{HOST}", headers=tenant.auth)
        assert r.status_code == 200, r.text
        page = await gw.client.get("/", headers={"Host": HOST})
        assert page.status_code == 404
        assert "domain_unverified" not in page.text


async def test_an_unreachable_host_is_422(settings: Settings, tmp_path: Path) -> None:
    async with gateway_on(settings, tmp_path, free_port()) as gw:
        tenant = await gw.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
        await add(gw, tenant)
        r = await gw.client.post(f"/v1/tenant/domains/{HOST}/verify", headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "domain_verification_failed"
        assert r.json()["error"]["reason"] == "fetch_failed"
        listed = await gw.client.get("/v1/tenant/domains", headers=tenant.auth)
        assert listed.json()["data"][0]["status"] == "pending"


async def test_the_egress_guard_refuses_loopback_unless_allowed(gateway: Gateway) -> None:
    async with token_server() as server:
        await release_localhost(gateway)
        tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
        await add(gateway, tenant)
        r = await gateway.client.post(f"/v1/tenant/domains/{HOST}/verify",
                                      headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["reason"] == "url_not_allowed"
        assert server.paths == []


async def test_a_hostname_of_another_tenant_is_409(gateway: Gateway) -> None:
    a = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    b = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0,
                             domains=[f"operator-set.{SUFFIX}"])
    await add(gateway, a, f"pending.{SUFFIX}")
    for hostname in (f"pending.{SUFFIX}", f"operator-set.{SUFFIX}"):
        r = await gateway.client.post("/v1/tenant/domains", headers=b.auth if hostname
                                      == f"pending.{SUFFIX}" else a.auth,
                                      json={"hostname": hostname})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert (error["type"], error["code"]) == ("conflict_error", "domain_taken")
        assert a.id not in r.text
        assert b.id not in r.text
    # The operator's domains are verified at once and serve.
    assert (await gateway.client.get("/", headers={"Host": f"operator-set.{SUFFIX}"})
            ).status_code == 200
    listed = (await gateway.client.get("/v1/tenant/domains", headers=b.auth)).json()["data"]
    assert [(d["hostname"], d["status"]) for d in listed] == [
        (f"operator-set.{SUFFIX}", "verified")]
    # Another tenant's domain cannot be verified or removed: 404.
    for method, path in (("POST", f"/v1/tenant/domains/pending.{SUFFIX}/verify"),
                         ("DELETE", f"/v1/tenant/domains/pending.{SUFFIX}")):
        r = await gateway.client.request(method, path, headers=b.auth)
        assert r.status_code == 404, r.text
    assert [d["hostname"] for d in (await gateway.client.get(
        "/v1/tenant/domains", headers=a.auth)).json()["data"]] == [f"pending.{SUFFIX}"]


async def test_domains_are_limited_per_tenant(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0,
                                  caps={"max_domains": 1})
    await add(gateway, tenant, f"one.{SUFFIX}")
    r = await gateway.client.post("/v1/tenant/domains", headers=tenant.auth,
                                  json={"hostname": f"two.{SUFFIX}"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "domain_limit_reached"


@pytest.mark.parametrize("hostname", ["testserver", "Upper.example.com", "a..b", "-x.com",
                                      "x" * 254, "host:80", "http://x.com",
                                      "10.0.0.1"])
async def test_bad_or_reserved_hostnames_are_422(gateway: Gateway, hostname: str) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.post("/v1/tenant/domains", headers=tenant.auth,
                                  json={"hostname": hostname})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "hostname"


async def test_concurrent_adds_of_one_hostname_give_it_to_one_tenant(
        gateway: Gateway) -> None:
    tenants = [await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0) for _ in range(6)]
    answers = await asyncio.gather(*(
        gateway.client.post("/v1/tenant/domains", headers=t.auth,
                            json={"hostname": f"race.{SUFFIX}"}) for t in tenants))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [
        a.text for a in answers]
