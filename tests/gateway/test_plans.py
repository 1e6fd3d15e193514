"""The periodic queries and the list queries stay index-bound as history grows.

Each statement is captured as the product sends it (asyncpg, `$n` parameters), then
EXPLAINed on PostgreSQL under a generic plan (`plan_cache_mode = force_generic_plan`: a
prepared statement gets one after five runs), on tables holding tens of thousands of ended
generations and their transfers, analysed. The last test shows the data is big enough to
tell: the ledger's own history-wide sweep is planned to read every reservation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import event

from billing import ledger
from gateway.generations import gallery, sweeps
from gateway.webhooks import outbox
from tests.conftest import (
    Gateway,
    _admin_connect,
    make_settings,
    migrated_database,
    running_gateway,
)

ROWS = 30_000
IMAGE = {"type": "image", "prompt": "a quiet street", "params": {"size": "64x64"}}
BIG_TABLES = ("generations", "transfers", "webhook_events", "webhook_deliveries")

# One history for the module: loading it is the slow part.
pytestmark = pytest.mark.asyncio(loop_scope="module")



@pytest.fixture(scope="module")
def history_url() -> Iterator[str]:
    """A database of its own: the bulk rows must not reach other tests' sweeps."""
    with migrated_database("mediahub_plans") as url:
        yield url


async def _copies(conn: asyncpg.Connection, table: str, template_id: str,
                  overrides: dict[str, str]) -> None:
    """`ROWS` copies of one row of `table`, with `overrides` (SQL over the series `i`)."""
    columns = [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "AND is_generated = 'NEVER' "
        "ORDER BY ordinal_position", table)]
    chosen = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table} t, "
        f"generate_series(1, {ROWS}) i WHERE t.id = $1", template_id)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def history(history_url: str, tmp_path_factory: pytest.TempPathFactory,
                  ) -> AsyncIterator[tuple[Gateway, Any]]:
    settings = make_settings(history_url, tmp_path_factory.mktemp("plans"))
    async with running_gateway(settings) as gateway:
        tenant = await gateway.tenant()
        done = await gateway.finish(tenant.auth, IMAGE)
        assert done["status"] == "succeeded", done
        conn = await _admin_connect(history_url)
        try:
            reservation = await conn.fetchval(
                "SELECT reservation_id FROM generations WHERE id = $1", done["id"])
            resolution = await conn.fetchval(
                "SELECT id FROM transfers WHERE pending_id = $1", reservation)
            # Old, ended history: every reservation resolved, every generation final.
            old = "now() - interval '30 days' + i * interval '1 second'"
            await _copies(conn, "transfers", reservation, {
                "id": "'trp' || i", "idempotency_key": "'kp' || i",
                "generation_id": "'gen' || i", "created_at": old, "timeout_at": old})
            await _copies(conn, "transfers", resolution, {
                "id": "'trr' || i", "idempotency_key": "'kr' || i", "pending_id": "'trp' || i",
                "generation_id": "'gen' || i", "created_at": old})
            await _copies(conn, "generations", done["id"], {
                "id": "'gen' || i", "reservation_id": "'trp' || i",
                "customer_reservation_id": "NULL", "idempotency_key": "NULL",
                "created_at": old, "updated_at": old, "completed_at": old,
                "deleted_at": f"CASE WHEN i % 10 = 0 THEN {old} END", "outputs": "'[]'"})
            # Dispatched events and their ended deliveries (no endpoint: nothing is sent).
            await conn.execute(
                "INSERT INTO webhook_events (id, tenant_id, type, generation_id, created_at, "
                "dispatched_at) VALUES ('evt0', $1, 'generation.succeeded', $2, now(), now())",
                tenant.id, done["id"])
            await conn.execute(
                "INSERT INTO webhook_deliveries (id, tenant_id, event_id, url, status, "
                "attempts, created_at, updated_at) VALUES ('whd0', $1, 'evt0', "
                "'https://hooks.invalid/in', 'succeeded', 1, now(), now())", tenant.id)
            await _copies(conn, "webhook_events", "evt0", {
                "id": "'evt' || i", "generation_id": "'gen' || i", "created_at": old,
                "dispatched_at": old})
            await _copies(conn, "webhook_deliveries", "whd0", {
                "id": "'whd' || i", "event_id": "'evt' || i", "created_at": old,
                "updated_at": old})
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        yield gateway, tenant


@contextmanager
def captured(gateway: Gateway) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the gateway sends while inside, with its parameters."""
    sent: list[tuple[str, Any]] = []
    engine = gateway.runtime.db.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def generic_plans(url: str, sent: list[tuple[str, Any]], marker: str,
                        ) -> list[list[dict[str, Any]]]:
    """The generic plan of every captured statement containing `marker` (a table's name)."""
    conn = await _admin_connect(url)
    plans = []
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for statement, parameters in sent:
            if marker not in statement or not statement.lstrip().upper().startswith(
                    ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
                continue
            async with conn.transaction():  # EXPLAIN alone never runs it, but be sure
                raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + statement,
                                          *(parameters or ()))
            plans.append(list(_nodes(json.loads(raw)[0]["Plan"])))
    finally:
        await conn.close()
    assert plans, f"no statement on {marker} was sent"
    return plans


def _seq_scans(plan: list[dict[str, Any]]) -> list[str]:
    return [n["Relation Name"] for n in plan
            if n["Node Type"] == "Seq Scan" and n["Relation Name"] in BIG_TABLES]


def _indexes(plan: list[dict[str, Any]]) -> set[str]:
    return {n["Index Name"] for n in plan if "Index Name" in n}


async def test_the_reservation_sweeper_reads_in_flight_generations_not_the_history(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, _ = history
    with captured(gateway) as sent:
        # Later than every copied reservation's timeout: none of them may be touched.
        assert await sweeps.expire_reservations(gateway.services) == 0
    [plan] = await generic_plans(history_url, sent, "transfers")
    assert _seq_scans(plan) == [], plan
    assert {"ix_generations_status_updated", "pk_transfers"} <= _indexes(plan), plan
    assert "ix_transfers_pending_timeout" not in _indexes(plan)


async def test_the_reconciler_is_bound_to_the_status_index(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, _ = history
    with captured(gateway) as sent:
        assert await sweeps.reconcile(gateway.services) == 0
    [plan] = await generic_plans(history_url, sent, "generations")
    assert _seq_scans(plan) == [], plan
    assert "ix_generations_status_updated" in _indexes(plan), plan


async def test_the_purge_requeue_reads_only_deleted_generations_with_media(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, _ = history
    with captured(gateway) as sent:
        assert await gallery.requeue_purges(gateway.runtime) == 0
    [plan] = await generic_plans(history_url, sent, "generations")
    assert _seq_scans(plan) == [], plan
    assert "ix_generations_purge_pending" in _indexes(plan), plan


async def test_the_outbox_insert_probes_the_tenant_endpoints_only(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, tenant = history
    generation_id = "gen1"
    with captured(gateway) as sent:
        async with gateway.runtime.db.transaction() as session:
            await outbox.generation_ended(session, tenant.id, generation_id, "succeeded",
                                          has_webhook_url=False)
            await session.rollback()
    [plan] = await generic_plans(history_url, sent, "webhook_events")
    assert _seq_scans(plan) == [], plan
    # Nothing on generations: the caller knows the row's webhook_url from its own UPDATE.
    assert not [n for n in plan if n.get("Relation Name") == "generations"], plan
    assert {n["Relation Name"] for n in plan if "Relation Name" in n} == {
        "webhook_events", "webhook_endpoints"}, plan


async def test_the_webhook_sweep_is_index_bound(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, _ = history
    with captured(gateway) as sent:
        await gateway.services.webhooks.dispatch_pending()
        await gateway.services.webhooks.redeliver_overdue()
    for marker, index in (("webhook_events", "ix_webhook_events_dispatched_created"),
                          ("webhook_deliveries", "ix_webhook_deliveries_status_next")):
        plans = await generic_plans(history_url, sent, f"FROM {marker}")
        for plan in plans:
            assert _seq_scans(plan) == [], plan
        assert any(index in _indexes(plan) for plan in plans), plans


async def test_listing_generations_reads_one_page_through_the_tenant_index(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    gateway, tenant = history
    with captured(gateway) as sent:
        first = await gateway.client.get("/v1/generations?limit=20", headers=tenant.auth)
        assert first.status_code == 200, first.text
        cursor = first.json()["next_cursor"]
        assert cursor
        following = await gateway.client.get(f"/v1/generations?limit=20&cursor={cursor}",
                                              headers=tenant.auth)
        assert following.status_code == 200, following.text
    plans = await generic_plans(history_url, sent, "FROM generations")
    for plan in plans:
        assert _seq_scans(plan) == [], plan
        assert "Sort" not in {n["Node Type"] for n in plan}, plan
    assert all("ix_generations_tenant_created" in _indexes(p) for p in plans), plans


async def test_the_ledgers_own_sweep_reads_the_whole_history(
    history: tuple[Gateway, Any], history_url: str,
) -> None:
    """What the sweeper replaced, and the proof that the data is big enough to tell: the
    ledger's `expired_reservations` (pending transfers by phase and timeout, without their
    resolutions) reads every reservation ever made, resolved or not."""
    gateway, _ = history
    with captured(gateway) as sent:
        async with gateway.runtime.db.session() as session:
            assert await ledger.expired_reservations(session) == []
    [plan] = await generic_plans(history_url, sent, "transfers")
    read = [n for n in plan if n.get("Relation Name") == "transfers"
            and n["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan",
                                   "Bitmap Heap Scan")]
    assert max(n["Plan Rows"] for n in read) >= ROWS, plan
