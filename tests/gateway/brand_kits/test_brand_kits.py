"""Brand kits over the API on SQLite and PostgreSQL with real storage: create, read, change
(each change a new version with its snapshot), list, delete; fonts and logos uploaded,
checked by their bytes and served; who may read and change which kit."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import select

from tenants.audit import AuditEvent
from tests.conftest import Gateway, Inbox
from tests.gateway.brand_kits.helpers import FONT, KIT, PRIMARY, logo, make_kit, upload
from tests.gateway.teams.helpers import customer, join, new_team


async def test_create_change_and_read_every_version(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    assert kit["id"].startswith("bk_")
    assert kit["owner"] == {"type": "tenant", "id": tenant.id}
    assert kit["version"] == 1
    assert kit["colors"][0] == {"name": "Primary", "hex": PRIMARY}
    assert (kit["fonts"], kit["logos"], kit["default_voice"]) == ([], [], None)

    r = await gateway.client.patch(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth,
                                   json={"name": "Acme 2", "default_voice": "Rachel"})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["name"], r.json()["default_voice"]) == (
        2, "Acme 2", "Rachel")
    assert r.json()["dont_words"] == KIT["dont_words"]  # left out: unchanged

    up = await upload(gateway, tenant.auth, kit["id"], "fonts", FONT, "font/ttf",
                      "Aileron.ttf")
    assert up.status_code == 201, up.text
    assert up.json()["version"] == 3
    [font] = up.json()["fonts"]
    assert (font["family"], font["content_type"], font["filename"], font["bytes"]) == (
        "Aileron", "font/ttf", "Aileron.ttf", len(FONT))

    versions = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions",
                                        headers=tenant.auth, params={"limit": 2})
    assert versions.status_code == 200, versions.text
    assert [v["version"] for v in versions.json()["data"]] == [3, 2]
    older = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions",
                                     headers=tenant.auth,
                                     params={"after": versions.json()["next_cursor"]})
    assert [v["version"] for v in older.json()["data"]] == [1]
    assert older.json()["next_cursor"] is None

    first = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions/1",
                                     headers=tenant.auth)
    assert first.status_code == 200, first.text
    assert (first.json()["name"], first.json()["default_voice"], first.json()["fonts"]) == (
        "Acme", None, [])
    assert first.json()["created_by"] == f"key:{tenant.key_id}"
    third = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions/3",
                                     headers=tenant.auth)
    assert [f["id"] for f in third.json()["fonts"]] == [font["id"]]
    missing = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions/9",
                                       headers=tenant.auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "brand_kit_version_not_found"

    # The font leaves the kit (a new version); version 3 still names it.
    gone = await gateway.client.delete(f"/v1/brand_kits/{kit['id']}/assets/{font['id']}",
                                       headers=tenant.auth)
    assert gone.status_code == 200, gone.text
    now = await gateway.client.get(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth)
    assert (now.json()["version"], now.json()["fonts"]) == (4, [])
    third = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions/3",
                                     headers=tenant.auth)
    assert [f["id"] for f in third.json()["fonts"]] == [font["id"]]

    async with gateway.runtime.db.session() as session:
        actions = list(await session.scalars(
            select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id,
                                            AuditEvent.target_id == kit["id"])
            .order_by(AuditEvent.created_at, AuditEvent.id)))
    assert actions == ["brand_kit.created", "brand_kit.updated", "brand_kit.asset_added",
                       "brand_kit.asset_removed"]

    deleted = await gateway.client.delete(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": kit["id"], "deleted": True, "object": "brand_kit"}
    r = await gateway.client.get(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth)
    assert r.status_code == 404


async def test_bad_input_is_a_named_422(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    for body, param in (({**KIT, "colors": []}, "colors"),
                        ({**KIT, "colors": [{"name": "P", "hex": "teal"}]}, "colors"),
                        ({**KIT, "colors": [{"name": "P", "hex": "#000000"}] * 17}, "colors"),
                        ({**KIT, "dont_words": ["x" * 65]}, "dont_words"),
                        ({**KIT, "owner": {"type": "team"}}, "owner.id")):
        r = await gateway.client.post("/v1/brand_kits", headers=tenant.auth, json=body)
        assert r.status_code in (400, 422), r.text
        assert param in (r.json()["error"]["param"] or r.json()["error"]["message"]), r.text
    r = await gateway.client.get("/v1/brand_kits", headers=tenant.auth,
                                 params={"after": "not-a-cursor"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_cursor"
    r = await gateway.client.get("/v1/brand_kits", headers=tenant.auth,
                                 params={"owner_type": "teams"})
    assert (r.status_code, r.json()["error"]["param"]) == (422, "owner_type")


async def test_uploads_are_checked_by_their_bytes(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    kit_id = kit["id"]

    png = logo()
    ok = await upload(gateway, tenant.auth, kit_id, "logos", png, "image/png")
    assert ok.status_code == 201, ok.text
    [stored] = ok.json()["logos"]
    assert (stored["width"], stored["height"], stored["filename"]) == (64, 32, "logo.png")
    served = await gateway.client.get(stored["url"], headers=tenant.auth)
    assert served.status_code == 200
    assert served.content == png
    assert served.headers["content-type"].startswith("image/png")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in served.headers["content-security-policy"]

    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    refused = [
        (await upload(gateway, tenant.auth, kit_id, "logos", svg, "image/svg+xml"),
         415, "unsupported_logo_type"),
        (await upload(gateway, tenant.auth, kit_id, "logos", b"not a png", "image/png"),
         422, "invalid_image"),
        (await upload(gateway, tenant.auth, kit_id, "logos", logo((4097, 1)), "image/png"),
         422, "image_too_large"),
        (await upload(gateway, tenant.auth, kit_id, "logos", b"\0" * (2 * 1024 * 1024 + 1),
                      "image/png"), 413, "logo_too_large"),
        (await upload(gateway, tenant.auth, kit_id, "fonts", FONT, "text/plain"),
         415, "unsupported_font_type"),
        (await upload(gateway, tenant.auth, kit_id, "fonts", png, "font/ttf"),
         422, "invalid_font"),
        # Right magic bytes, broken font.
        (await upload(gateway, tenant.auth, kit_id, "fonts", FONT[:64], "font/ttf"),
         422, "invalid_font"),
        (await upload(gateway, tenant.auth, kit_id, "fonts", b"\0" * (5 * 1024 * 1024 + 1),
                      "font/ttf"), 413, "font_too_large"),
    ]
    for response, status, code in refused:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    # None of them changed the kit.
    r = await gateway.client.get(f"/v1/brand_kits/{kit_id}", headers=tenant.auth)
    assert r.json()["version"] == 2
    assert len(r.json()["logos"]) == 1


async def test_others_kits_are_404_and_roles_decide_who_changes(gateway: Gateway) -> None:
    acme = await gateway.tenant(billing_mode="mediahub")
    other = await gateway.tenant()
    tenant_kit = await make_kit(gateway, acme.auth)
    alice, bob = customer(acme, "alice"), customer(acme, "bob")
    alice_kit = await make_kit(gateway, alice, name="Alice's")
    assert alice_kit["owner"]["type"] == "customer"

    # Another tenant: every kit of acme is a 404, in reads, writes and lists.
    for method, path in (("GET", f"/v1/brand_kits/{tenant_kit['id']}"),
                         ("PATCH", f"/v1/brand_kits/{tenant_kit['id']}"),
                         ("DELETE", f"/v1/brand_kits/{alice_kit['id']}"),
                         ("GET", f"/v1/brand_kits/{alice_kit['id']}/versions")):
        r = await gateway.client.request(method, path, headers=other.auth,
                                         json={} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "brand_kit_not_found"
    listed = await gateway.client.get("/v1/brand_kits", headers=other.auth)
    assert listed.json()["data"] == []

    # Another customer of the same tenant: alice's kit does not exist for bob; the tenant's
    # kit is bob's to use, not to change.
    r = await gateway.client.get(f"/v1/brand_kits/{alice_kit['id']}", headers=bob)
    assert r.status_code == 404
    assert (await gateway.client.get(f"/v1/brand_kits/{tenant_kit['id']}",
                                     headers=bob)).status_code == 200
    r = await gateway.client.patch(f"/v1/brand_kits/{tenant_kit['id']}", headers=bob,
                                   json={"name": "mine"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "brand_kit_role"
    r = await gateway.client.post("/v1/brand_kits", headers=bob,
                                  json={**KIT, "owner": {"type": "tenant"}})
    assert r.status_code == 403
    listed = await gateway.client.get("/v1/brand_kits", headers=bob)
    assert [k["id"] for k in listed.json()["data"]] == [tenant_kit["id"]]
    listed = await gateway.client.get("/v1/brand_kits", headers=alice,
                                      params={"owner_type": "customer"})
    assert [k["id"] for k in listed.json()["data"]] == [alice_kit["id"]]

    # A key with `read` only reads the tenant's kits.
    reader = await gateway.client.post(
        f"/admin/v1/tenants/{acme.id}/keys", headers=gateway.admin(),
        json={"name": "reader", "scopes": ["read"]})
    read_auth = {"Authorization": f"Bearer {reader.json()['key']}"}
    assert (await gateway.client.get(f"/v1/brand_kits/{tenant_kit['id']}",
                                     headers=read_auth)).status_code == 200
    r = await gateway.client.patch(f"/v1/brand_kits/{tenant_kit['id']}", headers=read_auth,
                                   json={"name": "x"})
    assert r.status_code == 403


async def test_team_kits_are_read_by_members_and_changed_by_managers(
        gateway: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gateway)
    kit = await make_kit(gateway, team.owner, owner={"type": "team", "id": team.id},
                         name=f"Team {secrets.token_hex(2)}")
    assert kit["owner"] == {"type": "team", "id": team.id}
    member = await join(gateway, smtp_server, team, "bob")
    outsider = customer(team.tenant, "carol")

    assert (await gateway.client.get(f"/v1/brand_kits/{kit['id']}",
                                     headers=member)).status_code == 200
    r = await gateway.client.patch(f"/v1/brand_kits/{kit['id']}", headers=member,
                                   json={"name": "x"})
    assert r.status_code == 403
    r = await gateway.client.get(f"/v1/brand_kits/{kit['id']}", headers=outsider)
    assert r.status_code == 404
    r = await gateway.client.post("/v1/brand_kits", headers=outsider,
                                  json={**KIT, "owner": {"type": "team", "id": team.id}})
    assert r.status_code == 404
    r = await gateway.client.patch(f"/v1/brand_kits/{kit['id']}", headers=team.owner,
                                   json={"tone_words": ["warm"]})
    assert (r.status_code, r.json()["version"]) == (200, 2)
    listed = await gateway.client.get("/v1/brand_kits", headers=member,
                                      params={"owner_type": "team"})
    assert [k["id"] for k in listed.json()["data"]] == [kit["id"]]


async def test_concurrent_changes_each_get_their_own_version(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    kit = await make_kit(gateway, tenant.auth)
    changes = await asyncio.gather(*(
        gateway.client.patch(f"/v1/brand_kits/{kit['id']}", headers=tenant.auth,
                             json={"name": f"Acme {n}"}) for n in range(8)))
    assert all(r.status_code == 200 for r in changes), [r.text for r in changes]
    assert sorted(r.json()["version"] for r in changes) == list(range(2, 10))
    versions = await gateway.client.get(f"/v1/brand_kits/{kit['id']}/versions",
                                        headers=tenant.auth)
    listed = versions.json()["data"]
    assert [v["version"] for v in listed] == list(range(9, 0, -1))
    # Each snapshot is the change that made it.
    by_version = {r.json()["version"]: r.json()["name"] for r in changes}
    assert all(v["name"] == by_version[v["version"]] for v in listed if v["version"] > 1)
