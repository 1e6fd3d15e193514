"""Shared steps of the team tests: a `mediahub` tenant, customers acting through its key,
a team with members who joined by the mailed link, and a funded team wallet."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import Gateway, Inbox, Tenant

#: A generation pinned to the scripted provider `fixed` (its charge equals its estimate).
IMAGE = {"type": "image", "prompt": "a lighthouse", "provider": "fixed"}


@dataclass
class Team:
    id: str
    tenant: Tenant
    owner: dict[str, str]


def customer(tenant: Tenant, name: str) -> dict[str, str]:
    return {**tenant.auth, "X-Customer-Id": name}


async def grant_customer(gw: Gateway, tenant: Tenant, name: str, amount: int) -> None:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/credits",
                             headers={**gw.admin(), "Idempotency-Key": secrets.token_hex(8)},
                             json={"amount": amount, "reason": "test", "customer_id": name})
    assert r.status_code == 201, r.text


async def new_team(gw: Gateway, *, owner: str = "alice", funded: int = 0,
                   **tenant_fields: Any) -> Team:
    tenant = await gw.tenant(credits_mc=100_000_000, billing_mode="mediahub",
                             **tenant_fields)
    auth = customer(tenant, owner)
    r = await gw.client.post("/v1/teams", headers=auth, json={"name": "Studio"})
    assert r.status_code == 201, r.text
    team = Team(id=r.json()["id"], tenant=tenant, owner=auth)
    if funded:
        await grant_customer(gw, tenant, owner, funded)
        r = await gw.client.post(f"/v1/teams/{team.id}/credits",
                                 headers={**auth, "Idempotency-Key": secrets.token_hex(8)},
                                 json={"amount": funded})
        assert r.status_code == 201, r.text
    return team


def token_of(message: Any) -> str:
    return parse_qs(urlsplit(Inbox.link(message)).query)["token"][0]


async def join(gw: Gateway, smtp: Inbox, team: Team, name: str, role: str = "member",
               ) -> dict[str, str]:
    """Invite `name` by mail, read the link from the SMTP server, accept as `name`."""
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    r = await gw.client.post(f"/v1/teams/{team.id}/invitations", headers=team.owner,
                             json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    token = token_of(await smtp.next(email))
    auth = customer(team.tenant, name)
    r = await gw.client.post("/v1/teams/invitations/accept", headers=auth,
                             json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == role
    return auth


async def retail(gw: Gateway, auth: dict[str, str]) -> int:
    r = await gw.client.post("/v1/generations/estimate", headers=auth, json=IMAGE)
    assert r.status_code == 200, r.text
    amount: int = r.json()["amount"]
    return amount


async def team_balance(gw: Gateway, team: Team) -> dict[str, Any]:
    r = await gw.client.get(f"/v1/teams/{team.id}/balance", headers=team.owner)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def allocate(gw: Gateway, team: Team, name: str, limit: int,
                   period: str = "month") -> dict[str, Any]:
    r = await gw.client.put(f"/v1/teams/{team.id}/allocations/{name}", headers=team.owner,
                            json={"limit_mc": limit, "period": period})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
