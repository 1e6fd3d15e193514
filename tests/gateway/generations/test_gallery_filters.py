"""The gallery's list filters against a Python model of the same rows (every combination,
walked page by page), the GIN index behind `q` on PostgreSQL, and isolation of every new
route (other tenant, other customer, a team the caller is not in)."""

from __future__ import annotations

import io
import itertools
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.auth import Principal
from gateway.core.settings import Settings
from gateway.generations import search
from gateway.generations.models import Generation
from gateway.generations.service import _scoped
from tenants.kernel.db import Database
from tests.conftest import Gateway, Inbox, ProvidersPlugin, running_gateway, scripted
from tests.gateway.teams.helpers import join, new_team

BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    id: str
    prompt: str
    created_at: datetime
    cost: int
    favourite: bool


#: (prompt, days after BASE, charged cost in millicredits or None: estimated only, favourite)
ROWS = [
    ("a red fox in the snow", 0, 100, False),
    ("red sunset over the sea", 1, 250, True),
    ("قطة سوداء تجلس على السطح", 2, 400, False),
    ("blue whale, deep sea", 3, None, True),
    ("قطة بيضاء وكلب أحمر", 4, 150, True),
    ("REDWOOD forest at dawn", 5, 600, False),
    ("the sea is calm", 6, 250, False),
]


def _model(rows: list[Row], f: search.Filters) -> list[str]:
    def words(prompt: str) -> list[str]:
        return [w.lower() for w in search._WORD.findall(prompt)]

    def matches(row: Row) -> bool:
        if f.created_after is not None and row.created_at < f.created_after:
            return False
        if f.created_before is not None and row.created_at >= f.created_before:
            return False
        if f.min_cost is not None and row.cost < f.min_cost:
            return False
        if f.max_cost is not None and row.cost > f.max_cost:
            return False
        if f.favourite is not None and row.favourite != f.favourite:
            return False
        if f.q is not None:
            wanted, have = search.words(f.q), words(row.prompt)
            if any(w not in have for w in wanted[:-1]):
                return False
            if not any(h.startswith(wanted[-1]) for h in have):
                return False
        return True

    chosen = [r for r in rows if matches(r)]
    return [r.id for r in sorted(chosen, key=lambda r: (r.created_at, r.id), reverse=True)]


async def _seed(gateway: Gateway, auth: dict[str, str]) -> list[Row]:
    rows: list[Row] = []
    for prompt, day, charged, favourite in ROWS:
        done = await gateway.finish(auth, {"type": "image", "prompt": prompt,
                                           "params": {"size": "256x128"}})
        created = BASE + timedelta(days=day)
        # Set what the filters read, so the model knows every value exactly: charged (or
        # only estimated, still running in effect), when, and the mark.
        async with gateway.runtime.db.transaction() as session:
            await session.execute(update(Generation).where(Generation.id == done["id"]).values(
                created_at=created, charged_mc=charged, estimated_mc=charged or 500,
                favourite=favourite))
        rows.append(Row(done["id"], prompt, created, charged or 500, favourite))
    return rows


def _query(f: search.Filters) -> dict[str, str]:
    params: dict[str, str] = {}
    for name in ("created_after", "created_before"):
        value = getattr(f, name)
        if value is not None:
            params[name] = value.isoformat()
    for name in ("min_cost", "max_cost"):
        value = getattr(f, name)
        if value is not None:
            params[name] = str(value)
    if f.favourite is not None:
        params["favourite"] = "true" if f.favourite else "false"
    if f.q is not None:
        params["q"] = f.q
    return params


async def test_every_filter_combination_matches_the_model(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    rows = await _seed(gateway, tenant.auth)
    # Another tenant's row with the same words: never in the answers.
    other = await gateway.tenant()
    await gateway.finish(other.auth, {"type": "image", "prompt": "a red fox",
                                      "params": {"size": "256x128"}})
    combos = itertools.product(
        (None, BASE + timedelta(days=1)),
        (None, BASE + timedelta(days=5)),
        (None, 150),
        (None, 400),
        (None, True, False),
        (None, "red", "sea", "قطة", "red sun", "redw"),
    )
    checked = 0
    for after, before, low, high, favourite, q in combos:
        f = search.Filters(created_after=after, created_before=before, min_cost=low,
                           max_cost=high, favourite=favourite, q=q)
        expected = _model(rows, f)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {**_query(f), "limit": "2"}
            if cursor:
                params["cursor"] = cursor
            r = await gateway.client.get("/v1/generations", params=params,
                                         headers=tenant.auth)
            assert r.status_code == 200, (params, r.text)
            seen += [g["id"] for g in r.json()["data"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert seen == expected, f
        checked += 1
    assert checked == 2 * 2 * 2 * 2 * 3 * 6


async def test_q_uses_the_gin_index_on_postgresql(pg_url: str) -> None:
    """A tenant with thousands of generations searching for a word few prompts hold: the
    plan reads the GIN index on `search_vector`, not every row of the tenant. The rows are
    inserted in a transaction rolled back at the end (the session database stays clean)."""
    db = Database(pg_url)
    principal = Principal(kind="key", tenant_id="ten_explain", key_id="key_x",
                          customer_id=None, scopes=frozenset({"read"}))
    query = _scoped(select(Generation), principal).where(
        *search.conditions(search.Filters(q="red sun"), customer=False, dialect="postgresql"))
    sql = str(query.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))
    try:
        async with db.engine.connect() as conn:
            transaction = await conn.begin()
            await conn.execute(text(
                "INSERT INTO tenants (id, name, slug, branding, pricing, rate_limits, "
                "created_at, updated_at) VALUES ('ten_explain', 'E', 'explain', '{}', '{}', "
                "'{}', now(), now())"))
            await conn.execute(text(
                "INSERT INTO generations (id, tenant_id, type, operation, prompt, params, "
                "provider, status, cached, cost_usd_micros, wholesale_mc, retail_mc, "
                "estimated_mc, outputs, metadata, request_hash, attempts, created_at, "
                "updated_at) SELECT 'gen_explain' || i, 'ten_explain', 'image', "
                "'text_to_image', 'picture ' || i || CASE WHEN i % 1000 = 0 "
                "THEN ' red sunset' ELSE ' blue lagoon' END, '{}', 'local-image', "
                "'succeeded', false, 0, 1, 1, 1, '[]', '{}', 'h', 1, now(), now() "
                "FROM generate_series(1, 5000) AS i"))
            await conn.execute(text("ANALYZE generations"))
            plan = "\n".join((await conn.execute(text("EXPLAIN " + sql))).scalars())
            await transaction.rollback()
    finally:
        await db.dispose()
    assert "ix_generations_search" in plan, plan


# --- isolation -----------------------------------------------------------------------------

IMAGE = {"type": "image", "prompt": "a lighthouse", "params": {"size": "256x128"}}


async def _refused_everywhere(gateway: Gateway, auth: dict[str, str], generation_id: str,
                              ) -> None:
    """Every gallery route answers 404 for `generation_id` to `auth` (bulk: ok false)."""
    base = f"/v1/generations/{generation_id}"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("DELETE", base, {}),
        ("PUT", f"{base}/favourite", {}),
        ("DELETE", f"{base}/favourite", {}),
        ("POST", f"{base}/share", {"json": {}}),
        ("GET", "/v1/generations/archive", {"params": {"ids": generation_id}}),
    ]
    for method, path, extra in calls:
        r = await gateway.client.request(method, path, headers=auth, **extra)
        assert r.status_code == 404, (method, path, r.text)
    for action in ("delete", "favourite", "unfavourite"):
        r = await gateway.client.post("/v1/generations/bulk", headers=auth,
                                      json={"action": action, "ids": [generation_id]})
        assert r.status_code == 200, r.text
        [result] = r.json()["results"]
        assert result["ok"] is False
        assert result["error"]["code"] == "generation_not_found"


async def test_other_tenants_and_customers_reach_nothing(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = {**tenant.auth, "X-Customer-Id": "alice"}
    done = await gateway.finish(alice, IMAGE)
    other = await gateway.tenant()
    await _refused_everywhere(gateway, other.auth, done["id"])
    await _refused_everywhere(gateway, {**tenant.auth, "X-Customer-Id": "bob"}, done["id"])
    await _refused_everywhere(gateway, {**other.auth, "X-Customer-Id": "alice"}, done["id"])
    # Still there, untouched, for its owner.
    mine = await gateway.client.get(f"/v1/generations/{done['id']}", headers=alice)
    assert mine.status_code == 200
    assert mine.json()["favourite"] is False


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    fixed = scripted("fixed", cost_usd_micros=10_000, actual_usd_micros=10_000)
    async with running_gateway(settings, extra=[ProvidersPlugin(fixed)]) as gateway:
        yield gateway


async def test_a_teams_generations_are_its_members_only(gw: Gateway,
                                                        smtp_server: Inbox) -> None:
    team = await new_team(gw, funded=500_000)
    bob = await join(gw, smtp_server, team, "bob")
    done = await gw.finish({**bob, "X-Team-Id": team.id},
                           {"type": "image", "prompt": "team work", "provider": "fixed"})
    assert done["team_id"] == team.id
    outsider = {**team.tenant.auth, "X-Customer-Id": "mallory"}
    await _refused_everywhere(gw, outsider, done["id"])
    # A viewer sees it and changes nothing.
    carol = {**await join(gw, smtp_server, team, "carol", role="viewer"), "X-Team-Id": team.id}
    seen = await gw.client.get(f"/v1/generations/{done['id']}", headers=carol)
    assert seen.status_code == 200, seen.text
    for method, path in (("DELETE", ""), ("PUT", "/favourite")):
        r = await gw.client.request(method, f"/v1/generations/{done['id']}{path}",
                                    headers=carol)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "team_viewer"
    # A download link cannot send X-Team-Id: the team rides in the query instead.
    alone = await gw.client.get("/v1/generations/archive", params={"ids": done["id"]},
                                headers=carol)
    assert alone.status_code == 200, alone.text
    link = await gw.client.get("/v1/generations/archive",
                               params={"ids": done["id"], "team_id": team.id},
                               headers={k: v for k, v in carol.items() if k != "X-Team-Id"})
    assert link.status_code == 200, link.text
    def files(zipped: bytes) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            return {name: archive.read(name) for name in archive.namelist()
                    if name != "generations.json"}

    assert files(link.content) == files(alone.content) != {}
    # Someone outside the team naming it gets nothing.
    refused = await gw.client.get("/v1/generations/archive",
                                  params={"ids": done["id"], "team_id": team.id},
                                  headers=outsider)
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["code"] == "team_not_found"
    # A member acting for the team marks it; the whole team sees the mark.
    as_team = {**bob, "X-Team-Id": team.id}
    r = await gw.client.put(f"/v1/generations/{done['id']}/favourite", headers=as_team)
    assert r.status_code == 200, r.text
    listed = await gw.client.get("/v1/generations", params={"favourite": "true"},
                                 headers={**team.owner, "X-Team-Id": team.id})
    assert [g["id"] for g in listed.json()["data"]] == [done["id"]]
    assert (await gw.client.delete(f"/v1/generations/{done['id']}",
                                   headers=as_team)).status_code == 200
    await gw.drain()


async def test_q_reads_the_fts5_index_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    principal = Principal(kind="key", tenant_id="ten_x", key_id="key_x", customer_id=None,
                          scopes=frozenset({"read"}))
    query = _scoped(select(Generation), principal).where(
        *search.conditions(search.Filters(q="red sun"), customer=False, dialect="sqlite"))
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    try:
        async with db.engine.connect() as conn:
            plan = "\n".join(str(row[-1]) for row in
                             await conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    finally:
        await db.dispose()
    assert "VIRTUAL TABLE INDEX" in plan, plan
    assert "generations_fts" in plan, plan
