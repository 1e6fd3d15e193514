"""Issue #13's "done when", end to end on both databases: a reseller with nothing but its own
`tenant_admin` key sets up branding, a verified domain, pricing by tier, keys, customers and
packages; on that domain a customer signs up (mail read from the real SMTP server), signs in,
forms a team with a second customer and both spend from the team's wallet within allocations.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import httpx
from PIL import Image

from gateway.core.settings import Settings
from tests.conftest import Inbox, ProvidersPlugin, make_settings, running_gateway, scripted
from tests.gateway.people.support import PASSWORD, path_of, token_of
from tests.gateway.tenancy.test_domains import release_localhost, token_server

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "provider": "fixed"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), "#3355ff").save(out, format="PNG")
    return out.getvalue()


async def sign_up(client: httpx.AsyncClient, smtp: Inbox, address: str) -> str:
    """Sign up on the tenant's own domain, follow the mailed link, sign in: the CSRF token."""
    r = await client.post("/v1/auth/signup", json={"email": address, "password": PASSWORD})
    assert r.status_code == 202, r.text
    verified = await client.get(path_of(Inbox.link(await smtp.next(address))))
    assert verified.status_code == 303, verified.text
    r = await client.post("/v1/auth/login", json={"email": address, "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf: str = r.json()["csrf_token"]
    return csrf


async def test_a_reseller_serves_itself_and_a_customer_team_spends_within_allocations(
        settings: Settings, tmp_path: Path, smtp_server: Inbox) -> None:
    fixed = scripted("fixed", cost_usd_micros=10_000, actual_usd_micros=10_000)
    async with token_server() as site:
        own = make_settings(settings.database_url, tmp_path, smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port,
                            egress_allow_networks=("127.0.0.0/8", "::1/128"),
                            domain_verification_port=site.port)
        async with running_gateway(own, extra=[ProvidersPlugin(fixed)]) as gw:
            await release_localhost(gw)
            # The operator's part: a tenant billing its customers through us, wholesale
            # credits, one tenant_admin key. Everything after is the reseller's own doing.
            tenant = await gw.tenant(credits_mc=50_000_000, billing_mode="mediahub",
                                     scopes=["tenant_admin", "read", "billing"])
            admin = tenant.auth

            r = await gw.client.patch("/v1/tenant", headers=admin, json={
                "name": "Studio Nova",
                "branding": {"display_name": "Studio Nova", "colors": {"primary": "#3355ff"},
                             "open_signup": True},
                "pricing": {"markup_bps": {"default": 2_000},
                            "tier_markup_bps": {"pro": 3_000}}})
            assert r.status_code == 200, r.text
            logo = await gw.client.put("/v1/tenant/branding/logo", content=png(),
                                       headers={**admin, "Content-Type": "image/png"})
            assert logo.status_code == 200, logo.text

            pending = await gw.client.post("/v1/tenant/domains", headers=admin,
                                           json={"hostname": "localhost"})
            assert pending.status_code == 201, pending.text
            portal = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app),
                                       base_url="http://localhost")
            refused = await portal.post("/v1/auth/signup", json={
                "email": "early@example.com", "password": PASSWORD})
            assert refused.status_code == 404, refused.text  # not served before it is proven
            site.body = pending.json()["verification"]["token"].encode()
            proven = await gw.client.post("/v1/tenant/domains/localhost/verify", headers=admin)
            assert proven.status_code == 200, proven.text

            backend = await gw.client.post("/v1/keys", headers=admin, json={
                "name": "backend", "scopes": ["generate", "read"],
                "monthly_budget_mc": 1_000_000})
            assert backend.status_code == 201, backend.text
            package = await gw.client.post("/v1/credits/packages", headers=admin, json={
                "name": "Starter", "credits": 100_000, "price_cents": 900})
            assert package.status_code == 201, package.text

            # Alice signs up on the reseller's domain; the reseller makes her `pro` and gives
            # her credits from its own wallet.
            alice_mail = f"alice-{secrets.token_hex(4)}@example.com"
            alice_csrf = await sign_up(portal, smtp_server, alice_mail)
            me = await portal.get("/v1/users/me")
            alice = me.json()["user"]["customer_id"]
            standard = await portal.post("/v1/generations/estimate",
                                         headers={"X-CSRF-Token": alice_csrf}, json=IMAGE)
            assert standard.status_code == 200, standard.text
            tiered = await gw.client.patch(f"/v1/customers/{alice}", headers=admin,
                                           json={"tier": "pro"})
            assert tiered.status_code == 200, tiered.text
            moved = await gw.client.post(
                f"/v1/customers/{alice}/credits", json={"amount": 200_000, "reason": "welcome"},
                headers={**admin, "Idempotency-Key": "welcome"})
            assert moved.status_code == 201, moved.text
            pro = await portal.post("/v1/generations/estimate",
                                    headers={"X-CSRF-Token": alice_csrf}, json=IMAGE)
            # Wholesale w, retail +20 % for everyone, +30 % more for `pro` (rounded up).
            assert pro.json()["amount"] == -(-standard.json()["amount"] * 15_000 // 12_000)

            # Alice forms a team, funds it from her wallet and invites Bob.
            alice_writes = {"X-CSRF-Token": alice_csrf}
            team = await portal.post("/v1/teams", headers=alice_writes, json={"name": "Nova"})
            assert team.status_code == 201, team.text
            team_id = team.json()["id"]
            funded = await portal.post(f"/v1/teams/{team_id}/credits", json={"amount": 150_000},
                                       headers={**alice_writes, "Idempotency-Key": "fund"})
            assert funded.status_code == 201, funded.text
            bob_mail = f"bob-{secrets.token_hex(4)}@example.com"
            invited = await portal.post(f"/v1/teams/{team_id}/invitations",
                                        headers=alice_writes,
                                        json={"email": bob_mail, "role": "member"})
            assert invited.status_code == 201, invited.text
            invitation = token_of(Inbox.link(await smtp_server.next(bob_mail)))

            bob_portal = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app),
                                           base_url="http://localhost")
            bob_csrf = await sign_up(bob_portal, smtp_server, bob_mail)
            bob_writes = {"X-CSRF-Token": bob_csrf}
            joined = await bob_portal.post("/v1/teams/invitations/accept", headers=bob_writes,
                                           json={"token": invitation})
            assert joined.status_code == 200, joined.text
            bob = (await bob_portal.get("/v1/users/me")).json()["user"]["customer_id"]
            price = (await bob_portal.post("/v1/generations/estimate", headers=bob_writes,
                                           json=IMAGE)).json()["amount"]
            allocated = await portal.put(f"/v1/teams/{team_id}/allocations/{bob}",
                                         headers=alice_writes,
                                         json={"limit_mc": 2 * price, "period": "month"})
            assert allocated.status_code == 200, allocated.text

            # Bob spends for the team twice, then his allocation says no.
            as_team = {**bob_writes, "X-Team-Id": team_id}
            for _ in range(2):
                r = await bob_portal.post("/v1/generations", headers=as_team, json=IMAGE)
                assert r.status_code == 202, r.text
            await gw.drain()
            over = await bob_portal.post("/v1/generations", headers=as_team, json=IMAGE)
            assert over.status_code == 402, over.text
            assert over.json()["error"]["code"] == "allocation_exceeded"
            balance = await portal.get(f"/v1/teams/{team_id}/balance")
            assert balance.json()["available"] == 150_000 - 2 * price
            assert (await bob_portal.get("/v1/credits/balance")).json()["available"] == 0

            # The audit log tells the reseller who did what.
            log = await gw.client.get("/v1/audit_log?limit=100", headers=admin)
            actions = {e["action"] for e in log.json()["data"]}
            assert {"tenant.updated", "domain.verified", "key.created", "package.created",
                    "customer.updated", "credits.moved_to_customer"} <= actions

            out = await bob_portal.post("/v1/auth/logout", headers=bob_writes)
            assert out.status_code in (200, 204), out.text
            gone = await bob_portal.get("/v1/credits/balance")
            assert gone.status_code == 401, gone.text
            await portal.aclose()
            await bob_portal.aclose()
