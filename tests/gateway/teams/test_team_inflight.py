"""A team's generations in flight: removing a member ends its allocation while what it
started settles normally; and many members racing on PostgreSQL never take more than their
allocations and the team's wallet allow."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing import ledger
from gateway.core.settings import Settings
from gateway.generations.models import Generation
from tenants.teams.models import TeamAllocationSpend
from tests.conftest import Gate, GatePlugin, Gateway, Inbox, make_settings, running_gateway
from tests.gateway.teams.helpers import allocate, join, new_team, team_balance

GATED = {"type": "image", "prompt": "a lighthouse", "provider": "gate"}


async def counted(gw: Gateway, team_id: str) -> int:
    async with gw.runtime.db.session() as session:
        return int(await session.scalar(
            select(func.coalesce(func.sum(TeamAllocationSpend.spent_mc), 0))
            .where(TeamAllocationSpend.team_id == team_id)) or 0)


async def test_removing_a_member_ends_its_allocation_and_its_generation_settles(
        gated: tuple[Gateway, Gate], smtp_server: Inbox) -> None:
    gw, gate = gated
    team = await new_team(gw, funded=1_000_000)
    bob = await join(gw, smtp_server, team, "bob")
    await allocate(gw, team, "bob", 500_000)
    r = await gw.client.post("/v1/generations", headers={**bob, "X-Team-Id": team.id},
                             json=GATED)
    assert r.status_code == 202, r.text
    reserved = r.json()["cost"]["estimated"]
    await asyncio.wait_for(gate.entered.wait(), 10)

    d = await gw.client.delete(f"/v1/teams/{team.id}/members/bob", headers=team.owner)
    assert d.status_code == 204, d.text
    listed = await gw.client.get(f"/v1/teams/{team.id}/allocations", headers=team.owner)
    assert listed.json()["data"] == []
    again = await gw.client.post("/v1/generations", headers={**bob, "X-Team-Id": team.id},
                                 json=GATED)
    assert again.status_code == 404, again.text
    assert (await team_balance(gw, team))["pending"] == reserved

    gate.release.set()
    await gw.drain()
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, r.json()["id"])
    assert row is not None
    assert row.status == "succeeded"
    assert row.charged_mc is not None
    assert 0 < row.charged_mc <= reserved
    balance = await team_balance(gw, team)
    assert (balance["available"], balance["pending"]) == (1_000_000 - row.charged_mc, 0)
    assert await counted(gw, team.id) == row.charged_mc  # what was spent stays spent


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path, smtp_server: Inbox) -> Settings:
    return make_settings(pg_url, tmp_path, smtp_host=smtp_server.host,
                         smtp_port=smtp_server.port)


@pytest.fixture
async def pg_gated(pg_settings: Settings) -> AsyncIterator[tuple[Gateway, Gate]]:
    gate = Gate()
    async with running_gateway(pg_settings, extra=[GatePlugin(gate)]) as gw:
        try:
            yield gw, gate
        finally:
            gate.release.set()


MEMBERS, SUBMITS, PER_MEMBER, WALLET = 8, 10, 3, 20


async def test_racing_members_never_exceed_allocations_or_the_wallet_on_postgresql(
        pg_gated: tuple[Gateway, Gate], smtp_server: Inbox) -> None:
    gw, gate = pg_gated
    team = await new_team(gw)
    names = [f"m{i}" for i in range(MEMBERS)]
    members = {name: await join(gw, smtp_server, team, name) for name in names}
    estimate = await gw.client.post("/v1/generations/estimate",
                                    headers=members["m0"], json=GATED)
    price = estimate.json()["amount"]
    for name in names:
        await allocate(gw, team, name, PER_MEMBER * price)
    k = await gw.client.post(f"/admin/v1/tenants/{team.tenant.id}/keys", headers=gw.admin(),
                             json={"name": "admin", "scopes": ["tenant_admin"]})
    funded = await gw.client.post(
        f"/v1/teams/{team.id}/credits",
        headers={"Authorization": f"Bearer {k.json()['key']}", "Idempotency-Key": "f"},
        json={"amount": WALLET * price})
    assert funded.status_code == 201, funded.text

    async def submit(name: str) -> tuple[str, int, str | None]:
        r = await gw.client.post("/v1/generations",
                                 headers={**members[name], "X-Team-Id": team.id}, json=GATED)
        code = r.json()["error"]["code"] if r.status_code != 202 else None
        return name, r.status_code, code

    results = await asyncio.gather(*(submit(name) for name in names
                                     for _ in range(SUBMITS)))
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {202, 402}, results
    accepted = Counter(name for name, status, _ in results if status == 202)
    # Allocations allow 24, the wallet 20: exactly the wallet's worth is accepted, and no
    # member above its allocation.
    assert statuses[202] == WALLET, results
    assert all(n <= PER_MEMBER for n in accepted.values()), accepted
    assert {code for _, _, code in results if code} <= {"allocation_exceeded",
                                                        "insufficient_credits"}
    balance = await team_balance(gw, team)
    assert (balance["available"], balance["pending"]) == (0, WALLET * price)
    assert await counted(gw, team.id) == WALLET * price

    gate.release.set()
    await gw.drain()
    async with gw.runtime.db.session() as session:
        books = await ledger.balances(session, team.tenant.id)
        charged = int(await session.scalar(
            select(func.coalesce(func.sum(Generation.charged_mc), 0))
            .where(Generation.team_id == team.id)) or 0)
    assert sum(t.posted_balance for t in books.values()) == 0
    assert all(t.debits_pending == 0 and t.credits_pending == 0 for t in books.values())
    team_wallet = books[ledger.team_code(team.id)]
    assert team_wallet.posted_balance == WALLET * price - charged >= 0
    # The counters hold exactly what was charged: the unspent part was given back.
    assert await counted(gw, team.id) == charged
