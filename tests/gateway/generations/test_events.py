"""`GET /v1/generations/events` over real HTTP (uvicorn, httpx streaming): a customer's stream
receives its own generations' queued → running → succeeded and nothing of another customer's;
a tenant-wide key sees both; keepalive comments; the per-tenant stream limit; and, with
Valkey, an event published by one app instance reaches a stream on another (contract C2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from gateway.core.settings import Settings
from gateway.generations.events import GenerationEvent
from plugins.errors import ProviderError
from tenants.models import Customer
from tests.conftest import Gate, Gateway, make_settings, running_gateway
from tests.gateway.generations.test_isolation import customer_key
from tests.gateway.people.support import http_server
from tests.gateway.teams.helpers import grant_customer, new_team

IMAGE = {"type": "image", "provider": "local-image", "prompt": "a lighthouse at dusk",
         "params": {"size": "256x128"}}


class EventStream:
    """An open event stream read message by message (blank-line separated blocks)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
        """The next message: its fields (`event`, `id`, `data`, or `comment`)."""
        fields: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def events_until(self, generation_id: str, status: str) -> list[dict[str, Any]]:
        """Every generation event up to `generation_id` reaching `status`."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while True:
                message = await self.next()
                if message.get("event") != "generation":
                    continue
                data = json.loads(message["data"])
                data["_sse_id"] = message["id"]
                seen.append(data)
                if data["id"] == generation_id and data["status"] == status:
                    return seen


@contextlib.asynccontextmanager
async def served(gw: Gateway) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    async with http_server(gw.app, sock) as base:
        yield base


@contextlib.asynccontextmanager
async def stream(base: str, headers: dict[str, str],
                 path: str = "/v1/generations/events") -> AsyncIterator[EventStream]:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30)) as client, \
            client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = EventStream(response)
        # The opening comment: the stream is registered (and subscribed) from here on.
        assert (await events.next()) == {"comment": "connected"}
        yield events


async def test_a_customer_streams_its_own_generations_only(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = await customer_key(gateway, tenant.id, "alice")
    bob = await customer_key(gateway, tenant.id, "bob")
    async with served(gateway) as base, stream(base, alice) as hers, \
            stream(base, tenant.auth) as everyone:
        others = await gateway.client.post("/v1/generations", headers=bob, json=IMAGE)
        assert others.status_code == 202, others.text
        await gateway.drain()
        mine = await gateway.client.post("/v1/generations", headers=alice, json=IMAGE)
        assert mine.status_code == 202, mine.text
        await gateway.drain()
        seen = await hers.events_until(mine.json()["id"], "succeeded")
        # Bob's generation ended before Alice's was submitted: had it been sent to her
        # stream, it would have come first.
        assert {e["id"] for e in seen} == {mine.json()["id"]}
        statuses = [e["status"] for e in seen]
        assert statuses[0] == "queued"
        assert statuses[-1] == "succeeded"
        assert "running" in statuses
        assert statuses.index("running") < statuses.index("succeeded")
        first = seen[0]
        assert first["type"] == "image"
        assert first["team_id"] is None
        assert "progress" in first
        assert first["_sse_id"].startswith(f"{mine.json()['id']}:")
        sequence = [int(e["_sse_id"].rsplit(":", 1)[1]) for e in seen]
        assert sequence == sorted(sequence)
        # The tenant-wide key sees both customers' generations.
        tenant_seen = await everyone.events_until(mine.json()["id"], "succeeded")
        assert {e["id"] for e in tenant_seen} == {others.json()["id"], mine.json()["id"]}


async def test_a_stream_of_a_team_the_caller_is_not_in_is_404(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = await customer_key(gateway, tenant.id, "alice")
    r = await gateway.client.get("/v1/generations/events?team_id=team_nope", headers=alice)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "team_not_found"
    unauthenticated = await gateway.client.get("/v1/generations/events")
    assert unauthenticated.status_code == 401


async def test_keepalive_comments_and_the_stream_limit(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, events_keepalive_s=1,
                             events_max_streams_per_tenant=1)
    async with running_gateway(settings) as gw, served(gw) as base:
        tenant = await gw.tenant()
        async with stream(base, tenant.auth) as events:
            async with asyncio.timeout(5):
                assert (await events.next()) == {"comment": "keepalive"}
            # One stream is the tenant's maximum: another answers 429 at once.
            async with httpx.AsyncClient(base_url=base) as client:
                refused = await client.get("/v1/generations/events", headers=tenant.auth)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "too_many_streams"
        # Closed by the client: the slot is free again.
        async with asyncio.timeout(10):
            while gw.services.events.open_streams(tenant.id):
                await asyncio.sleep(0.05)  # polling a condition, bounded by the timeout
        async with stream(base, tenant.auth):
            pass


async def test_with_valkey_an_event_published_by_one_instance_reaches_another(
        pg_url: str, valkey: str, tmp_path: Path) -> None:
    settings: Settings = make_settings(pg_url, tmp_path, valkey_url=valkey)
    async with running_gateway(settings) as api, running_gateway(settings) as other, \
            served(api) as base:
        tenant = await api.tenant()
        alice = await customer_key(api, tenant.id, "alice")
        await customer_key(api, tenant.id, "bob")
        async with api.runtime.db.session() as session:
            ids = {c.external_id: c.id for c in (await session.scalars(
                select(Customer).where(Customer.tenant_id == tenant.id))).all()}
        async with stream(base, alice) as hers:
            # Published by the other instance: Bob's first (not for Alice), then hers.
            publisher = other.services.events
            await publisher.publish(tenant.id, ids["bob"], GenerationEvent(
                id="gen_bobs", status="running", progress=0.5, type="image", team_id=None))
            await publisher.publish("ten_other", ids["alice"], GenerationEvent(
                id="gen_other_tenant", status="running", progress=None, type="image",
                team_id=None))
            await publisher.publish(tenant.id, ids["alice"], GenerationEvent(
                id="gen_hers", status="succeeded", progress=None, type="video", team_id=None))
            seen = await hers.events_until("gen_hers", "succeeded")
            assert [e["id"] for e in seen] == ["gen_hers"]
            assert seen[0]["type"] == "video"


async def test_a_team_stream_shows_the_teams_generations(gateway: Gateway) -> None:
    team = await new_team(gateway, funded=1_000_000)
    await grant_customer(gateway, team.tenant, "alice", 1_000_000)
    for_team = {**team.owner, "X-Team-Id": team.id}
    # A tenant-wide key acts for no customer, so for no team.
    nobody = await gateway.client.get(f"/v1/generations/events?team_id={team.id}",
                                      headers=team.tenant.auth)
    assert nobody.status_code == 422, nobody.text
    async with served(gateway) as base, stream(base, for_team) as teams:
        own = await gateway.client.post("/v1/generations", headers=team.owner, json=IMAGE)
        assert own.status_code == 202, own.text
        await gateway.drain()
        shared = await gateway.client.post("/v1/generations", headers=for_team, json=IMAGE)
        assert shared.status_code == 202, shared.text
        await gateway.drain()
        seen = await teams.events_until(shared.json()["id"], "succeeded")
        assert {e["id"] for e in seen} == {shared.json()["id"]}
        assert {e["team_id"] for e in seen} == {team.id}


async def test_a_cancel_and_a_failure_are_streamed(gated: tuple[Gateway, Gate]) -> None:
    gw, gate = gated
    tenant = await gw.tenant()
    body = {"type": "image", "provider": "gate", "prompt": "held at the gate"}
    async with served(gw) as base, stream(base, tenant.auth) as events:
        first = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
        assert first.status_code == 202, first.text
        await gate.entered.wait()
        # Running inside the provider: the stream has said so.
        await events.events_until(first.json()["id"], "running")
        canceled = await gw.client.post(f"/v1/generations/{first.json()['id']}/cancel",
                                        headers=tenant.auth)
        assert canceled.status_code == 200, canceled.text
        seen = await events.events_until(first.json()["id"], "canceled")
        assert seen[-1]["status"] == "canceled"
        gate.fail_with = ProviderError.content_policy()
        gate.release.set()
        await gw.drain()
        second = await gw.client.post("/v1/generations", headers=tenant.auth, json=body)
        assert second.status_code == 202, second.text
        await gw.drain()
        seen = await events.events_until(second.json()["id"], "failed")
        assert [e["status"] for e in seen if e["id"] == second.json()["id"]][-1] == "failed"
