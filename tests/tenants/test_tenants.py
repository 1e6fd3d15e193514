"""Tenants, keys, customers, credit grants and the portal, on SQLite and PostgreSQL.

PostgreSQL is one database for the whole session, so every slug and hostname here is random and
every list is filtered to the ids the test itself made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tenants.models import ApiKey
from tenants.models import Tenant as TenantRow
from tests.conftest import ADMIN_TOKEN, Gateway, make_settings, running_gateway

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "64x64"}}
KEY_SHAPE = re.compile(r"^mh_([0-9A-Za-z]+)_([0-9A-Za-z_-]+)$")


def slug() -> str:
    return f"t-{secrets.token_hex(5)}"


def host() -> str:
    return f"portal-{secrets.token_hex(5)}.example.com"


def assert_error(body: dict[str, Any], type_: str, code: str | None = None,
                 param: str | None = None) -> None:
    error = body["error"]
    assert set(error) >= {"type", "code", "message", "param"}, body
    assert error["type"] == type_, body
    if code is not None:
        assert error["code"] == code, body
    if param is not None:
        assert error["param"] == param, body


# Every operator endpoint, with a body that would be valid for it.
ADMIN_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/admin/v1/tenants", {"name": "X", "slug": "x-tenant"}),
    ("GET", "/admin/v1/tenants", None),
    ("GET", "/admin/v1/tenants/{tid}", None),
    ("PATCH", "/admin/v1/tenants/{tid}", {"name": "Y"}),
    ("POST", "/admin/v1/tenants/{tid}/keys", {"name": "k", "scopes": ["read"]}),
    ("GET", "/admin/v1/tenants/{tid}/keys", None),
    ("DELETE", "/admin/v1/tenants/{tid}/keys/{kid}", None),
    ("POST", "/admin/v1/tenants/{tid}/credits", {"amount": 5, "reason": "x"}),
]


async def _admin_calls(gw: Gateway, headers: dict[str, str], tid: str, kid: str,
                       *, bad_bodies: bool = True) -> list[tuple[str, str, Any]]:
    """Every admin call with `headers`; also with a body that fails validation."""
    answers = []
    for method, path, body in ADMIN_CALLS:
        url = path.format(tid=tid, kid=kid)
        sends: list[dict[str, Any] | None] = [body]
        if bad_bodies and body is not None:
            sends.append({"surprise": True})  # invalid: must still be refused as 401 first
        for sent in sends:
            r = await gw.client.request(method, url, json=sent,
                                        headers={**headers, "Idempotency-Key": "k1"})
            answers.append((method, url, r))
    return answers


async def test_admin_api_refuses_everyone_when_no_token_is_configured(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, admin_token=None)
    async with running_gateway(settings) as gw:
        for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"},
                        {"Authorization": "Bearer "}):
            for method, url, r in await _admin_calls(gw, headers, "ten_x", "key_x"):
                assert r.status_code == 401, (method, url, r.text)
                assert_error(r.json(), "authentication_error", "admin_disabled")


async def test_admin_api_refuses_a_wrong_token_and_a_tenant_key(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    for headers in ({"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
                    {"Authorization": ADMIN_TOKEN},  # no scheme
                    {},
                    tenant.auth):
        for method, url, r in await _admin_calls(gateway, headers, tenant.id, tenant.key_id):
            assert r.status_code == 401, (headers, method, url, r.text)
            assert_error(r.json(), "authentication_error")
    # Nothing those calls attempted happened.
    keys = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}/keys",
                                    headers=gateway.admin())
    assert [k["id"] for k in keys.json()["data"]] == [tenant.key_id]
    assert keys.json()["data"][0]["revoked_at"] is None
    got = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin())
    assert got.json()["name"] != "Y"


async def test_create_read_and_conflicts(gateway: Gateway) -> None:
    s, h1, h2 = slug(), host(), host()
    body = {"name": "Acme", "slug": s, "domains": [h2, h1],
            "branding": {"colors": {"primary": "#ff0066"},
                         "support": {"url": "https://x.test/help"}},
            "pricing": {"markup_bps": {"image": 2500}}}
    r = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(), json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert re.fullmatch(r"ten_[0-9a-f]{20}", created["id"]), created
    assert created["name"] == "Acme"
    assert created["slug"] == s
    assert created["domains"] == sorted([h1, h2])
    assert created["branding"] == body["branding"]
    assert created["pricing"] == {"markup_bps": {"image": 2500}}
    assert created["object"] == "tenant"

    got = await gateway.client.get(f"/admin/v1/tenants/{created['id']}",
                                   headers=gateway.admin())
    assert got.status_code == 200
    assert got.json() == created

    dup = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                    json={"name": "Other", "slug": s})
    assert dup.status_code == 409, dup.text
    assert_error(dup.json(), "conflict_error")
    taken = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                      json={"name": "Other", "slug": slug(), "domains": [h1]})
    assert taken.status_code == 409, taken.text
    assert_error(taken.json(), "conflict_error")

    missing = await gateway.client.get("/admin/v1/tenants/ten_00000000000000000000",
                                       headers=gateway.admin())
    assert missing.status_code == 404
    assert_error(missing.json(), "not_found_error")


@pytest.mark.parametrize("bad", ["Acme", "has space", "-leading", "trailing-", "", "a" * 64,
                                 "under_score"])
async def test_a_bad_slug_is_422_naming_slug(gateway: Gateway, bad: str) -> None:
    r = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                  json={"name": "Acme", "slug": bad})
    assert r.status_code == 422, r.text
    assert_error(r.json(), "invalid_request_error", param="slug")


async def test_patch_changes_only_the_fields_sent(gateway: Gateway) -> None:
    s, old_host, new_host = slug(), host(), host()
    r = await gateway.client.post(
        "/admin/v1/tenants", headers=gateway.admin(),
        json={"name": "Before", "slug": s, "domains": [old_host],
              "branding": {"colors": {"primary": "#000000"}},
              "pricing": {"markup_bps": {"default": 1000}},
              "rate_limits": {"requests_per_minute": 60}})
    tid = r.json()["id"]
    r = await gateway.client.patch(f"/admin/v1/tenants/{tid}", headers=gateway.admin(),
                                   json={"name": "After", "domains": [new_host],
                                         "branding": {"colors": {"primary": "#ffffff"}}})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "After"
    assert changed["domains"] == [new_host]
    assert changed["branding"] == {"colors": {"primary": "#ffffff"}}
    assert changed["slug"] == s
    assert changed["pricing"] == {"markup_bps": {"default": 1000}}
    assert changed["rate_limits"] == {"requests_per_minute": 60}
    again = await gateway.client.get(f"/admin/v1/tenants/{tid}", headers=gateway.admin())
    assert again.json() == changed
    # The old hostname is free again, the new one serves this tenant.
    assert (await gateway.client.get("/", headers={"Host": old_host})).status_code == 404
    assert "After" in (await gateway.client.get("/", headers={"Host": new_host})).text

    r = await gateway.client.patch(f"/admin/v1/tenants/{tid}", headers=gateway.admin(),
                                   json={"slug": "renamed"})
    assert r.status_code == 422
    assert_error(r.json(), "invalid_request_error", param="slug")
    r = await gateway.client.patch("/admin/v1/tenants/ten_00000000000000000000",
                                   headers=gateway.admin(), json={"name": "x"})
    assert r.status_code == 404


async def test_list_pages_through_every_tenant(gateway: Gateway) -> None:
    mine = set()
    for _ in range(5):
        r = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                      json={"name": "Paged", "slug": slug()})
        mine.add(r.json()["id"])
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await gateway.client.get("/admin/v1/tenants", headers=gateway.admin(),
                                     params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 2
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a tenant appeared on two pages"
    assert [t for t in seen if t in mine] == sorted(mine)
    bad = await gateway.client.get("/admin/v1/tenants", headers=gateway.admin(),
                                   params={"limit": "0"})
    assert bad.status_code == 422
    assert_error(bad.json(), "invalid_request_error", param="limit")


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gateway.admin(),
                                  json={"name": "ci", "scopes": ["read", "generate"]})
    assert r.status_code == 201, r.text
    made = r.json()
    match = KEY_SHAPE.fullmatch(made["key"])
    assert match, made["key"]
    prefix, secret = match.groups()
    assert made["prefix"] == prefix
    assert sorted(made["scopes"]) == ["generate", "read"]
    assert len(secret) >= 32

    async with gateway.runtime.db.session() as session:
        row = (await session.execute(
            select(ApiKey.__table__).where(ApiKey.__table__.c.id == made["id"]))).one()
    stored = row._mapping
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert stored["prefix"] == prefix
    for column, value in stored.items():
        assert secret not in str(value), f"the secret is stored in {column}"

    listed = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}/keys",
                                      headers=gateway.admin())
    assert listed.status_code == 200
    assert secret not in listed.text
    assert made["key"] not in listed.text
    by_id = {k["id"]: k for k in listed.json()["data"]}
    assert set(by_id) == {tenant.key_id, made["id"]}
    assert "key" not in by_id[made["id"]]
    assert by_id[made["id"]]["prefix"] == prefix

    # The key works and carries exactly its scopes.
    auth = {"Authorization": f"Bearer {made['key']}"}
    assert (await gateway.client.get("/v1/generations", headers=auth)).status_code == 200
    no_billing = await gateway.client.get("/v1/credits/balance", headers=auth)
    assert no_billing.status_code == 403
    assert_error(no_billing.json(), "permission_error")
    # The right prefix with a wrong secret is refused.
    last = "B" if secret[-1] == "A" else "A"
    forged = {"Authorization": f"Bearer mh_{prefix}_{secret[:-1]}{last}"}
    assert (await gateway.client.get("/v1/generations", headers=forged)).status_code == 401


async def test_revoking_a_key_takes_effect_at_once(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    # Use it first, so it sits in the in-process key cache.
    assert (await gateway.client.get("/v1/generations", headers=tenant.auth)).status_code == 200
    r = await gateway.client.delete(f"/admin/v1/tenants/{tenant.id}/keys/{tenant.key_id}",
                                    headers=gateway.admin())
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    after = await gateway.client.get("/v1/generations", headers=tenant.auth)
    assert after.status_code == 401
    assert_error(after.json(), "authentication_error", "revoked_api_key")
    # Revoking again is harmless and keeps the first revocation time.
    again = await gateway.client.delete(f"/admin/v1/tenants/{tenant.id}/keys/{tenant.key_id}",
                                        headers=gateway.admin())
    assert again.status_code == 200
    assert again.json()["revoked_at"] == r.json()["revoked_at"]


async def test_another_tenants_key_cannot_be_revoked_through_the_wrong_tenant(
    gateway: Gateway,
) -> None:
    owner, other = await gateway.tenant(), await gateway.tenant()
    r = await gateway.client.delete(f"/admin/v1/tenants/{other.id}/keys/{owner.key_id}",
                                    headers=gateway.admin())
    assert r.status_code == 404, r.text
    assert_error(r.json(), "not_found_error")
    assert (await gateway.client.get("/v1/generations", headers=owner.auth)).status_code == 200
    r = await gateway.client.delete(f"/admin/v1/tenants/{owner.id}/keys/key_nope",
                                    headers=gateway.admin())
    assert r.status_code == 404


@pytest.mark.parametrize("scopes", [[], ["read", "superuser"], ["READ"]])
async def test_a_key_needs_known_scopes(gateway: Gateway, scopes: list[str]) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gateway.admin(),
                                  json={"name": "bad", "scopes": scopes})
    assert r.status_code == 422, r.text
    assert_error(r.json(), "invalid_request_error")
    assert (r.json()["error"]["param"] or "").startswith("scopes"), r.json()
    listed = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}/keys",
                                      headers=gateway.admin())
    assert [k["id"] for k in listed.json()["data"]] == [tenant.key_id]


async def test_a_key_for_an_unknown_tenant_is_404(gateway: Gateway) -> None:
    r = await gateway.client.post("/admin/v1/tenants/ten_00000000000000000000/keys",
                                  headers=gateway.admin(), json={"name": "k", "scopes": ["read"]})
    assert r.status_code == 404


async def test_a_customer_key_sees_only_its_customers_generations(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gateway.admin(),
                                  json={"name": "alice", "scopes": ["generate", "read"],
                                        "customer_id": "alice"})
    assert r.status_code == 201, r.text
    assert r.json()["customer_id"] is not None
    alice = {"Authorization": f"Bearer {r.json()['key']}"}
    as_bob = {**tenant.auth, "X-Customer-Id": "bob"}

    bob_gen = (await gateway.client.post("/v1/generations", headers=as_bob, json=IMAGE)).json()
    alice_gen = (await gateway.client.post("/v1/generations", headers=alice, json=IMAGE)).json()
    tenant_gen = (await gateway.client.post("/v1/generations", headers=tenant.auth,
                                            json=IMAGE)).json()
    await gateway.drain()

    listed = await gateway.client.get("/v1/generations", headers=alice)
    assert [g["id"] for g in listed.json()["data"]] == [alice_gen["id"]]
    for other in (bob_gen, tenant_gen):
        r = await gateway.client.get(f"/v1/generations/{other['id']}", headers=alice)
        assert r.status_code == 404, r.text
        assert_error(r.json(), "not_found_error")
    assert (await gateway.client.get(f"/v1/generations/{alice_gen['id']}",
                                     headers=alice)).status_code == 200

    # The tenant acting for bob sees bob's only; acting for alice, the same customer as the key.
    bobs = await gateway.client.get("/v1/generations", headers=as_bob)
    assert [g["id"] for g in bobs.json()["data"]] == [bob_gen["id"]]
    as_alice = await gateway.client.get("/v1/generations",
                                        headers={**tenant.auth, "X-Customer-Id": "alice"})
    assert [g["id"] for g in as_alice.json()["data"]] == [alice_gen["id"]]
    # The tenant itself sees all three.
    everything = await gateway.client.get("/v1/generations", headers=tenant.auth)
    assert {g["id"] for g in everything.json()["data"]} == {
        bob_gen["id"], alice_gen["id"], tenant_gen["id"]}

    # A customer key cannot pose as another customer.
    r = await gateway.client.get("/v1/generations", headers={**alice, "X-Customer-Id": "bob"})
    assert r.status_code == 403, r.text
    assert_error(r.json(), "permission_error", param="X-Customer-Id")
    r = await gateway.client.post("/v1/generations", json=IMAGE,
                                  headers={**alice, "X-Customer-Id": "alice"})
    assert r.status_code == 403


async def test_customers_are_per_tenant(gateway: Gateway) -> None:
    one, two = await gateway.tenant(), await gateway.tenant()
    made = await gateway.client.post("/v1/generations", json=IMAGE,
                                     headers={**one.auth, "X-Customer-Id": "carol"})
    assert made.status_code == 202, made.text
    theirs = await gateway.client.get("/v1/generations",
                                      headers={**two.auth, "X-Customer-Id": "carol"})
    assert theirs.json()["data"] == []


async def balance(gw: Gateway, auth: dict[str, str]) -> int:
    r = await gw.client.get("/v1/credits/balance", headers=auth)
    assert r.status_code == 200, r.text
    available: int = r.json()["available"]
    return available


async def test_credit_grants_are_idempotent(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    url = f"/admin/v1/tenants/{tenant.id}/credits"
    body = {"amount": 7_000, "reason": "welcome"}

    r = await gateway.client.post(url, headers=gateway.admin(), json=body)
    assert r.status_code == 422, r.text
    assert_error(r.json(), "invalid_request_error", param="Idempotency-Key")
    r = await gateway.client.post(url, headers={**gateway.admin(), "Idempotency-Key": ""},
                                  json=body)
    assert r.status_code == 422
    assert await balance(gateway, tenant.auth) == 0

    headers = {**gateway.admin(), "Idempotency-Key": "welcome-1"}
    first = await gateway.client.post(url, headers=headers, json=body)
    second = await gateway.client.post(url, headers=headers, json=body)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["amount"] == 7_000
    assert first.json()["unit"] == "millicredit"
    assert second.json()["balance"] == 7_000
    assert await balance(gateway, tenant.auth) == 7_000

    other = await gateway.client.post(url, headers=headers, json={**body, "amount": 8_000})
    assert other.status_code == 409, other.text
    assert_error(other.json(), "conflict_error")
    assert await balance(gateway, tenant.auth) == 7_000

    more = await gateway.client.post(url, headers={**gateway.admin(), "Idempotency-Key": "b"},
                                     json={"amount": 500, "reason": "bonus"})
    assert more.status_code == 201
    assert await balance(gateway, tenant.auth) == 7_500

    # The same Idempotency-Key on another tenant is another grant.
    neighbour = await gateway.tenant(credits_mc=0)
    r = await gateway.client.post(f"/admin/v1/tenants/{neighbour.id}/credits", headers=headers,
                                  json=body)
    assert r.status_code == 201
    assert r.json()["id"] != first.json()["id"]
    assert await balance(gateway, neighbour.auth) == 7_000

    history = await gateway.client.get("/v1/credits/transactions", headers=tenant.auth)
    assert history.status_code == 200
    lines = history.json()["data"]
    assert [(t["id"], t["kind"], t["amount"], t["status"]) for t in lines] == [
        (more.json()["id"], "grant", 500, "posted"),
        (first.json()["id"], "grant", 7_000, "posted"),
    ]


@pytest.mark.parametrize("body", [{"amount": 0, "reason": "x"}, {"amount": -5, "reason": "x"},
                                  {"amount": 5}, {"amount": 5, "reason": ""}])
async def test_a_bad_grant_is_422(gateway: Gateway, body: dict[str, Any]) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/credits", json=body,
                                  headers={**gateway.admin(), "Idempotency-Key": "x"})
    assert r.status_code == 422, r.text
    assert_error(r.json(), "invalid_request_error")
    assert await balance(gateway, tenant.auth) == 0


async def test_a_grant_to_an_unknown_tenant_is_404(gateway: Gateway) -> None:
    r = await gateway.client.post("/admin/v1/tenants/ten_00000000000000000000/credits",
                                  headers={**gateway.admin(), "Idempotency-Key": "x"},
                                  json={"amount": 5, "reason": "x"})
    assert r.status_code == 404


async def test_the_portal_is_found_by_host_and_escapes_the_name(gateway: Gateway) -> None:
    h = host()
    r = await gateway.client.post(
        "/admin/v1/tenants", headers=gateway.admin(),
        json={"name": "<b>Acme & Co</b>", "slug": slug(), "domains": [h],
              "branding": {"colors": {"primary": "#12ab9f"}}})
    assert r.status_code == 201, r.text
    for sent in (h, f"{h}:8443", h.upper(), f"{h.upper()}:80"):
        page = await gateway.client.get("/", headers={"Host": sent})
        assert page.status_code == 200, (sent, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "&lt;b&gt;Acme &amp; Co&lt;/b&gt;" in page.text
        assert "<b>" not in page.text
        assert "#12ab9f" in page.text

    for unknown in (host(), "example.com", "", f"x.{h}"):
        page = await gateway.client.get("/", headers={"Host": unknown})
        assert page.status_code == 404, unknown
        assert "Acme" not in page.text


@pytest.mark.parametrize("colour", [
    "red}</style><script>alert(1)</script>",
    "#fff;background:url(https://evil.test/x)",
    "#fff}body{display:none",
    "expression(alert(1))",
])
async def test_a_branding_colour_cannot_inject_css(gateway: Gateway, colour: str) -> None:
    h = host()
    # Branding is typed: a colour that is not a hex colour is refused at the edge...
    r = await gateway.client.post(
        "/admin/v1/tenants", headers=gateway.admin(),
        json={"name": "Styled", "slug": slug(), "domains": [h],
              "branding": {"colors": {"primary": colour}}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "branding.colors.primary"
    r = await gateway.client.post(
        "/admin/v1/tenants", headers=gateway.admin(),
        json={"name": "Styled", "slug": slug(), "domains": [h]})
    assert r.status_code == 201, r.text
    # ...and a row stored while branding was free-form still renders safely.
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(TenantRow).where(TenantRow.id == r.json()["id"])
                              .values(branding={"primary_color": colour}))
    page = await gateway.client.get("/", headers={"Host": h})
    assert page.status_code == 200
    assert colour not in page.text
    assert "<script>" not in page.text
    assert "evil.test" not in page.text
    assert "display:none" not in page.text
    assert "Styled" in page.text
