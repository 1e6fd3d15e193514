"""Portal sessions minted by a tenant's backend: one-time, short-lived, no open redirect."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tenants.kernel.db import utcnow
from tenants.users.models import OneTimeToken
from tests.conftest import Gateway
from tests.gateway.people.support import browser, path_of, token_of

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def test_a_minted_portal_session_signs_the_customer_in_once(gateway: Gateway) -> None:
    host = f"studio-{utcnow().strftime('%H%M%S%f')}.example"
    tenant = await gateway.tenant(domains=[host])
    minted = await gateway.client.post("/v1/portal_sessions", headers=tenant.auth, json={
        "customer_id": "alice", "return_url": "/credits"})
    assert minted.status_code == 201, minted.text
    body = minted.json()
    assert body["url"].startswith(f"http://{host}/v1/auth/portal?")
    assert body["return_url"] == "/credits"
    ttl = gateway.runtime.settings.portal_session_ttl_s
    web = browser(gateway, host=host)
    opened = await web.get(path_of(body["url"]))
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == "/credits"
    me = await web.get("/v1/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["user"]["role"] == "customer"
    assert me.json()["user"]["customer_id"] == "alice"
    assert me.json()["user"]["email"] is None
    assert me.json()["session"]["method"] == "portal"
    assert ttl <= 3600

    # The session spends as alice: what it makes, alice's key-side view sees.
    made = await web.post("/v1/generations", json=IMAGE,
                          headers={"X-CSRF-Token": me.json()["csrf_token"]})
    assert made.status_code == 202, made.text
    seen = await gateway.client.get(f"/v1/generations/{made.json()['id']}",
                                    headers={**tenant.auth, "X-Customer-Id": "alice"})
    assert seen.status_code == 200
    hidden = await gateway.client.get(f"/v1/generations/{made.json()['id']}",
                                      headers={**tenant.auth, "X-Customer-Id": "bob"})
    assert hidden.status_code == 404

    # Used twice: the second is refused.
    again = await browser(gateway, host=host).get(path_of(body["url"]))
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "invalid_token"

    # A second link for alice signs in the same portal user.
    second = await gateway.client.post("/v1/portal_sessions", headers=tenant.auth,
                                       json={"customer_id": "alice"})
    web2 = browser(gateway, host=host)
    assert (await web2.get(path_of(second.json()["url"]))).headers["location"] == "/"
    assert (await web2.get("/v1/users/me")).json()["user"]["id"] == me.json()["user"]["id"]


async def test_an_expired_portal_session_is_refused(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    minted = await gateway.client.post("/v1/portal_sessions", headers=tenant.auth,
                                       json={"customer_id": "carol"})
    assert minted.status_code == 201
    url = minted.json()["url"]
    # No domain: the link is on the platform host and names the tenant.
    assert url.startswith("http://testserver/v1/auth/portal?")
    assert "tenant=" in url
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(OneTimeToken).where(OneTimeToken.tenant_id == tenant.id)
                              .values(expires_at=utcnow() - timedelta(seconds=1)))
    refused = await browser(gateway).get(path_of(url))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_token"
    assert "set-cookie" not in refused.headers


async def test_portal_sessions_refuse_open_redirects_and_weak_keys(gateway: Gateway) -> None:
    host = f"shop-{utcnow().strftime('%H%M%S%f')}.example"
    tenant = await gateway.tenant(domains=[host])
    for bad in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)",
                "https://user@evil.example/", "/\\evil.example"):
        r = await gateway.client.post("/v1/portal_sessions", headers=tenant.auth,
                                      json={"customer_id": "alice", "return_url": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["param"] == "return_url"
    ok = await gateway.client.post("/v1/portal_sessions", headers=tenant.auth, json={
        "customer_id": "alice", "return_url": f"https://{host}/done"})
    assert ok.status_code == 201, ok.text

    # A key without every scope a customer's session holds cannot mint one.
    reader = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys",
                                       headers=gateway.admin(),
                                       json={"name": "r", "scopes": ["read"]})
    weak = await gateway.client.post("/v1/portal_sessions", json={"customer_id": "alice"},
                                      headers={"Authorization": f"Bearer {reader.json()['key']}"})
    assert weak.status_code == 403
    # Nor a key bound to a customer.
    bound = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys",
                                      headers=gateway.admin(),
                                      json={"name": "b", "customer_id": "alice"})
    refused = await gateway.client.post(
        "/v1/portal_sessions", json={"customer_id": "bob"},
        headers={"Authorization": f"Bearer {bound.json()['key']}"})
    assert refused.status_code == 403
    # Another tenant's link does not work on this tenant's host.
    other = await gateway.tenant()
    theirs = await gateway.client.post("/v1/portal_sessions", headers=other.auth,
                                       json={"customer_id": "alice"})
    crossed = await browser(gateway, host=host).get(
        f"/v1/auth/portal?token={token_of(theirs.json()['url'])}")
    assert crossed.status_code == 422
