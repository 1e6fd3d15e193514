"""The migration files sort in the order they run, and databases migrated before the files were
renamed keep upgrading (migrations/README.md).

`tests/migrations/test_migrations.py` is the `alembic check` of a database built from base
to head (types compared, as `migrations/env.py` configures autogenerate). Here the same
comparison, with server defaults compared too, runs on databases that stopped mid-chain,
held rows, and were then upgraded to head.
"""

from __future__ import annotations

import ast
import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

import billing.models
import billing.usage.models
import gateway.generations.models
import gateway.generations.push_models
import gateway.webhooks.models
import tenants.audit
import tenants.brand_kits.models
import tenants.models
import tenants.teams.models
import tenants.users.models  # noqa: F401  (all tables on the metadata)
from gateway.core.migrate import MIGRATIONS_DIR, alembic_config, upgrade
from tenants.kernel.db import Base, Database
from tests.conftest import _admin_connect, pg_base_url

del billing

#: The search objects exist on one database each and are not declared (models.py).
_SKIP = {"include_object": gateway.generations.models.compared_in_schema_checks}

VERSIONS = MIGRATIONS_DIR / "versions"
NAME = re.compile(r"(?P<position>\d{2})_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.py")

#: Revision ids written before the naming rule. They stay: migrated databases hold them in
#: `alembic_version`. Every other file's id must be `00NN_<slug>`, as its name says.
LEGACY_IDS = {
    "01_initial_schema.py": "0001",
    "02_billing.py": "0002",
    "03_routing.py": "0003",
    "05_cache.py": "0006_cache",       # written beside 0005_webhooks, chained before it
    "06_webhooks.py": "0005_webhooks",
}

#: Where the migrated schema and the models differ, and why that is right: each is a NOT NULL
#: column added to a table that already had rows, so its migration gives it a server default
#: for those rows; the models set the value in Python on every insert and declare none.
#: `alembic check` does not compare server defaults (nor does
#: `tests/migrations/test_migrations.py`).
EXPECTED_SERVER_DEFAULTS = {
    ("accounts", "system"),                      # 0002
    ("tenants", "billing_mode"),                 # 0002
    ("tenants", "low_balance_threshold_mc"),     # 0002
    ("generations", "candidates"),               # 0003
    ("generations", "attempts_log"),             # 0003
    ("tenants", "routing"),                      # 0003
    ("tenants", "cache"),                        # 0006_cache
    ("generations", "lease_seq"),                # 0007_jobs
    ("tenants", "provider_credentials"),         # 0008_provider_keys
    ("tenants", "caps"),                         # 0014_selfserve
    ("generations", "favourite"),                # 0017_gallery
    ("tenants", "analytics"),                    # 0021_console
    ("tenants", "suggestions"),                  # 0023_suggestions
    ("tenants", "media"),                        # 0025_media_links
}


@dataclass(frozen=True)
class Migration:
    file: str
    revision: str
    down_revision: str | None
    docstring: str


def _read(path: Path) -> Migration:
    """The revision, down revision and docstring of a migration file, without importing it."""
    tree = ast.parse(path.read_text())
    values: dict[str, Any] = {}
    target: ast.expr
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value)
    assert "revision" in values, f"{path.name}: no `revision = ...`"
    assert "down_revision" in values, f"{path.name}: no `down_revision = ...`"
    return Migration(path.name, values["revision"], values["down_revision"],
                     ast.get_docstring(tree) or "")


def _migrations() -> list[Migration]:
    return [_read(path) for path in sorted(VERSIONS.glob("*.py"))
            if path.name != "__init__.py"]


def test_file_names_are_positions_then_slugs() -> None:
    names = [m.file for m in _migrations()]
    assert names, "no migrations found"
    bad = [name for name in names if not NAME.fullmatch(name)]
    assert not bad, f"not NN_<slug>.py: {bad}"
    positions = [int(match["position"]) for match in map(NAME.fullmatch, names) if match]
    assert positions == list(range(1, len(names) + 1)), (
        f"positions must run 01, 02, ... without gaps or repeats: {names}")


def test_sorted_files_are_the_chain() -> None:
    migrations = _migrations()
    assert migrations[0].down_revision is None, f"{migrations[0].file} must be the base"
    for before, after in pairwise(migrations):
        assert after.down_revision == before.revision, (
            f"{after.file} revises {after.down_revision!r}, but the file before it, "
            f"{before.file}, is {before.revision!r}: sorted names must give the chain order")
    revisions = [m.revision for m in migrations]
    assert len(set(revisions)) == len(revisions), f"repeated revision ids: {revisions}"


def test_alembic_sees_one_base_one_head_and_the_same_chain() -> None:
    migrations = _migrations()
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert script.get_bases() == [migrations[0].revision]
    assert script.get_heads() == [migrations[-1].revision]
    walked = list(reversed(list(script.walk_revisions())))
    assert [s.revision for s in walked] == [m.revision for m in migrations]
    assert [Path(s.path).name for s in walked] == [m.file for m in migrations]


def test_revision_ids_follow_the_names() -> None:
    names = {m.file for m in _migrations()}
    assert set(LEGACY_IDS) <= names, "a legacy file was renamed: update LEGACY_IDS"
    for m in _migrations():
        match = NAME.fullmatch(m.file)
        assert match is not None
        expected = LEGACY_IDS.get(m.file, f"{int(match['position']):04d}_{match['slug']}")
        assert m.revision == expected, f"{m.file}: revision {m.revision!r}, not {expected!r}"


def test_docstring_headers_match_the_code() -> None:
    for m in _migrations():
        headers = dict(re.findall(r"^(Revision ID|Revises): ?(.*)$", m.docstring, re.M))
        assert headers.get("Revision ID") == m.revision, m.file
        assert headers.get("Revises", "") == (m.down_revision or ""), m.file


# A database migrated part of the way, with rows in it, then to head.


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database_url(request: pytest.FixtureRequest,
                             tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables at all, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"mediahub_chain_{secrets.token_hex(4)}"
    base = pg_base_url()
    conn = await _admin_connect(base)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await _admin_connect(base)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# Rows with the columns of the first migration only: every later migration must give its new
# NOT NULL columns a value for rows like these.
_SEED = (
    "INSERT INTO tenants (id, name, slug, branding, pricing, rate_limits, created_at, "
    "updated_at) VALUES ('ten_old', 'Old', 'old', '{}', '{}', '{}', CURRENT_TIMESTAMP, "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO generations (id, tenant_id, type, operation, prompt, params, provider, status, "
    "cached, cost_usd_micros, wholesale_mc, retail_mc, estimated_mc, outputs, metadata, "
    "request_hash, attempts, created_at, updated_at) VALUES ('gen_old', 'ten_old', 'image', "
    "'text_to_image', 'x', '{}', 'local-image', 'running', false, 0, 100, 100, 100, '[]', '{}', "
    "'h', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO domains (hostname, tenant_id, created_at) VALUES ('old.example', 'ten_old', "
    "CURRENT_TIMESTAMP)",
)


def _differences(sync_conn: Any) -> tuple[set[tuple[str, str]], list[Any]]:
    """(server-default differences as (table, column), every other difference)."""
    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "compare_server_default": True, **_SKIP})
    defaults: set[tuple[str, str]] = set()
    others: list[Any] = []
    for diff in compare_metadata(context, Base.metadata):
        for op in diff if isinstance(diff, list) else [diff]:
            if op[0] == "modify_default":
                defaults.add((op[2], op[3]))
            else:
                others.append(op)
    return defaults, others


@pytest.mark.parametrize("stopped_at", ["0006_cache", "0005_webhooks"])
async def test_a_database_stopped_mid_chain_upgrades_to_head(
        empty_database_url: str, stopped_at: str) -> None:
    url = empty_database_url
    head = _migrations()[-1].revision
    await asyncio.to_thread(upgrade, url, stopped_at)
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == stopped_at
            for statement in _SEED:
                await conn.execute(text(statement))
    finally:
        await db.dispose()

    await asyncio.to_thread(upgrade, url, "head")

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == head
            tenant = (await conn.execute(text(
                "SELECT billing_mode, low_balance_threshold_mc FROM tenants "
                "WHERE id = 'ten_old'"))).one()
            assert tuple(tenant) == ("self", 0)
            generation = (await conn.execute(text(
                "SELECT status, lease_until, lease_seq FROM generations "
                "WHERE id = 'gen_old'"))).one()
            assert tuple(generation) == ("running", None, 0)
            # Domains from before verification existed were the operator's: verified.
            assert await conn.scalar(text(
                "SELECT verified_at IS NOT NULL FROM domains WHERE hostname = 'old.example'"))
            defaults, others = await conn.run_sync(_differences)
        assert others == [], "the models and the migrated schema differ"
        assert defaults == EXPECTED_SERVER_DEFAULTS
    finally:
        await db.dispose()
