"""A customer's analytics through the real submit → worker path: its own generations, its
team's per member with `X-Team-Id`, and a team it is no member of refused (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from billing.usage import rollup
from gateway.core.settings import Settings
from tests.conftest import Gateway, Inbox, ProvidersPlugin, Scripted, running_gateway, scripted
from tests.gateway.teams.helpers import (
    IMAGE,
    customer,
    grant_customer,
    join,
    new_team,
    retail,
)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    fixed: Scripted = scripted("fixed", cost_usd_micros=10_000, actual_usd_micros=10_000)
    async with running_gateway(settings, extra=[ProvidersPlugin(fixed)]) as gateway:
        yield gateway


def by_group(body: dict[str, Any]) -> dict[Any, tuple[int, int]]:
    out: dict[Any, tuple[int, int]] = {}
    for row in body["data"]:
        count, charged = out.get(row.get("group"), (0, 0))
        out[row.get("group")] = (count + row["count"], charged + (row["charged_mc"] or 0))
    return out


async def test_a_team_s_credits_per_member_and_a_customer_s_own(
        gw: Gateway, smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=500_000)
    bob = await join(gw, smtp_server, team, "bob")
    alice = team.owner
    await grant_customer(gw, team.tenant, "alice", 100_000)
    price = await retail(gw, alice)
    for auth in (bob, bob, alice):
        done = await gw.finish({**auth, "X-Team-Id": team.id}, IMAGE)
        assert done["status"] == "succeeded", done
    done = await gw.finish(alice, IMAGE)  # alice's own, from her own wallet
    assert done["status"] == "succeeded", done
    await rollup.rebuild_since(gw.runtime.db, team.tenant.id, None)

    r = await gw.client.get("/v1/analytics/me/credits", headers={**alice, "X-Team-Id": team.id},
                            params={"group_by": "member", "interval": "month"})
    assert r.status_code == 200, r.text
    assert by_group(r.json()) == {"alice": (1, price), "bob": (2, 2 * price)}
    # Bob, a member, sees the same team numbers; alone, only his own (none outside the team).
    r = await gw.client.get("/v1/analytics/me/credits", headers={**bob, "X-Team-Id": team.id},
                            params={"group_by": "member", "interval": "month"})
    assert by_group(r.json()) == {"alice": (1, price), "bob": (2, 2 * price)}
    r = await gw.client.get("/v1/analytics/me/credits", headers=bob,
                            params={"interval": "month"})
    assert by_group(r.json()) == {None: (0, 0)}
    r = await gw.client.get("/v1/analytics/me/credits", headers=alice,
                            params={"group_by": "type", "interval": "month"})
    assert by_group(r.json()) == {"image": (1, price)}
    # Dave is no member: 404, as for a team that does not exist.
    r = await gw.client.get("/v1/analytics/me/credits",
                            headers={**customer(team.tenant, "dave"), "X-Team-Id": team.id})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "team_not_found"
    # The tenant sees all four, charged at retail, by customer.
    r = await gw.client.get("/v1/analytics/credits", headers=team.tenant.auth,
                            params={"group_by": "customer", "interval": "month"})
    assert r.status_code == 200, r.text
    assert by_group(r.json()) == {"alice": (2, 2 * price), "bob": (2, 2 * price)}
