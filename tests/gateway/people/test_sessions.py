"""Session cookies as credentials: CSRF on writes, the owner's list of sessions, revocation,
lifetimes, and what a role may do; on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from tenants.kernel.db import utcnow
from tenants.users.models import UserSession
from tests.conftest import Gateway, Inbox, make_settings, running_gateway
from tests.gateway.people.support import (
    browser,
    email,
    invited,
    login,
    open_tenant,
    signed_up,
    token_of,
)

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def test_csrf_is_required_on_cookie_writes(gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, key = await open_tenant(gateway)
    web = browser(gateway)
    signed = await signed_up(web, smtp_server, slug, email())
    token = signed["csrf_token"]

    missing = await web.post("/v1/generations", json=IMAGE)
    wrong = await web.post("/v1/generations", json=IMAGE, headers={"X-CSRF-Token": "x" * 43})
    foreign = await web.post("/v1/generations", json=IMAGE, headers={
        "X-CSRF-Token": token, "Origin": "https://evil.example"})
    null_origin = await web.post("/v1/generations", json=IMAGE, headers={
        "X-CSRF-Token": token, "Origin": "null"})
    for refused in (missing, wrong, foreign, null_origin):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "csrf_failed"

    same_origin = await web.post("/v1/generations", json=IMAGE, headers={
        "X-CSRF-Token": token, "Origin": "http://testserver"})
    assert same_origin.status_code == 202, same_origin.text
    # Reads need no token.
    assert (await web.get("/v1/generations")).status_code == 200
    # A bearer key needs no CSRF token, and wins over the cookie when both are sent.
    keyed = await web.post("/v1/generations", json=IMAGE,
                           headers={"Authorization": f"Bearer {key}"})
    assert keyed.status_code == 202, keyed.text
    # Another session's token is not this one's.
    other = browser(gateway)
    other_signed = await signed_up(other, smtp_server, slug, email())
    crossed = await web.post("/v1/generations", json=IMAGE,
                             headers={"X-CSRF-Token": other_signed["csrf_token"]})
    assert crossed.status_code == 403


async def test_sessions_are_listed_and_revoked_by_their_owner_only(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    laptop = browser(gateway)
    first = await signed_up(laptop, smtp_server, slug, address)
    phone = browser(gateway)
    second = await login(phone, slug, address)

    listed = await laptop.get("/v1/sessions")
    assert listed.status_code == 200, listed.text
    sessions = {s["id"]: s for s in listed.json()["data"]}
    assert set(sessions) == {first["id"], second["id"]}
    assert sessions[first["id"]]["current"] is True
    assert sessions[second["id"]]["current"] is False
    one = await laptop.get(f"/v1/sessions/{second['id']}")
    assert one.status_code == 200

    # Someone else's session is 404, to read and to revoke.
    stranger = browser(gateway)
    await signed_up(stranger, smtp_server, slug, email())
    csrf = {"X-CSRF-Token": first["csrf_token"]}
    stranger_sessions = (await stranger.get("/v1/sessions")).json()["data"]
    theirs = stranger_sessions[0]["id"]
    assert (await laptop.get(f"/v1/sessions/{theirs}")).status_code == 404
    gone = await laptop.delete(f"/v1/sessions/{theirs}", headers=csrf)
    assert gone.status_code == 404
    assert (await stranger.get("/v1/users/me")).status_code == 200

    revoked = await laptop.delete(f"/v1/sessions/{second['id']}", headers=csrf)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await phone.get("/v1/users/me")).status_code == 401
    assert (await laptop.get("/v1/users/me")).status_code == 200
    remaining = (await laptop.get("/v1/sessions")).json()["data"]
    assert [s["id"] for s in remaining] == [first["id"]]


async def test_idle_and_absolute_lifetimes_end_a_session(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    address = email()
    idle, old = browser(gateway), browser(gateway)
    a = await signed_up(idle, smtp_server, slug, address)
    b = await login(old, slug, address)
    settings = gateway.runtime.settings
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(UserSession).where(UserSession.id == a["id"]).values(
            last_seen_at=utcnow() - timedelta(seconds=settings.session_idle_s + 1)))
        await session.execute(update(UserSession).where(UserSession.id == b["id"]).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    for web in (idle, old):
        r = await web.get("/v1/users/me")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_session"


async def test_last_seen_is_written_at_most_once_a_minute(
        gateway: Gateway, smtp_server: Inbox) -> None:
    _, slug, _ = await open_tenant(gateway)
    web = browser(gateway)
    signed = await signed_up(web, smtp_server, slug, email())
    long_ago = utcnow() - timedelta(minutes=5)
    recent = utcnow() - timedelta(seconds=10)
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(UserSession).where(UserSession.id == signed["id"])
                              .values(last_seen_at=recent))
    await web.get("/v1/users/me")
    async with gateway.runtime.db.session() as session:
        row = await session.get(UserSession, signed["id"])
        assert row is not None
        assert abs((row.last_seen_at - recent).total_seconds()) < 0.01  # not rewritten
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(UserSession).where(UserSession.id == signed["id"])
                              .values(last_seen_at=long_ago))
    await web.get("/v1/users/me")
    async with gateway.runtime.db.session() as session:
        row = await session.get(UserSession, signed["id"])
        assert row is not None
        assert row.last_seen_at > utcnow() - timedelta(seconds=30)


async def test_roles_limit_what_a_session_may_do(gateway: Gateway, smtp_server: Inbox) -> None:
    tenant_id, slug, _ = await open_tenant(gateway)
    viewer, viewer_in = await invited(gateway, smtp_server, tenant_id, slug, "viewer")
    denied = await viewer.post("/v1/generations", json=IMAGE,
                               headers={"X-CSRF-Token": viewer_in["csrf_token"]})
    assert denied.status_code == 403
    assert denied.json()["error"]["param"] == "generate"
    assert (await viewer.get("/v1/generations")).status_code == 200

    developer, developer_in = await invited(gateway, smtp_server, tenant_id, slug, "developer")
    made = await developer.post("/v1/generations", json=IMAGE,
                                headers={"X-CSRF-Token": developer_in["csrf_token"]})
    assert made.status_code == 202, made.text
    admin_route = await developer.get("/v1/users")
    assert admin_route.status_code == 403
    assert admin_route.json()["error"]["param"] == "tenant_admin"

    # A portal customer acts for its own customer only, and never tenant-wide.
    customer = browser(gateway)
    await signed_up(customer, smtp_server, slug, email())
    assert (await customer.get("/v1/users")).status_code == 403


async def test_the_cookie_is_secure_behind_an_https_public_url(
        database_url: str, tmp_path: Path, smtp_server: Inbox) -> None:
    settings = make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                             smtp_port=smtp_server.port, public_base_url="https://testserver",
                             auth_attempts_per_address_per_minute=1000)
    async with running_gateway(settings) as gw:
        tenant_id, slug, _ = await open_tenant(gw)
        address = email()
        r = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/users", headers=gw.admin(),
                                 json={"email": address, "role": "viewer"})
        assert r.status_code == 201
        link = Inbox.link(await smtp_server.next(address))
        assert link.startswith("https://testserver/set-password?")
        done = await browser(gw).post("/v1/auth/reset/confirm", json={
            "token": token_of(link), "password": "a long passphrase here", "tenant": slug})
        assert done.status_code == 200, done.text
        cookie = done.headers["set-cookie"].lower()
        assert "; secure" in cookie
        assert "httponly" in cookie
