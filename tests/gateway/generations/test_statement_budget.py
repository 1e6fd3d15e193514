"""The wait path's statement budget: one image generation through `POST /v1/generations`
with `Prefer: wait` (submit, the job's claim, the provider, the settle, the wait's reads)
issues at most a known number of SQL statements and transactions. Adding a query to this path
fails here; `bench/wait_cost.py` shows where each one comes from.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.auth import keys
from tests.conftest import Gateway

IMAGE = {"type": "image", "provider": "local-image", "params": {"size": "64x64"}}

# What one generation issues (the tests' settings turn the result cache off, so no
# coalescing followers' read after the end; bench/wait_cost.py runs with it on):
#   submit      the reservation (PostgreSQL: one WITH statement; SQLite's portable ledger:
#               INSERT transfers, UPDATE accounts), then INSERT generations with its id
#   worker      the claim (UPDATE ... RETURNING the row; no save before the local engine's
#               call, which takes our idempotency key), the end (UPDATE ... RETURNING, with
#               whether the tenant has a webhook endpoint: no outbox statement without one),
#               the posting (PostgreSQL: one WITH statement; SQLite: SELECT, INSERT
#               transfers, UPDATE accounts)
#   the wait    the row when the wait starts and once woken, the X-Credits-Remaining read
# PostgreSQL 8, SQLite 11 (before this budget: 14 and 17). Transactions: the submit, the
# claim and the end (commits), the three reads of the wait: 6 (before: 9).
BUDGETS = {"postgresql": (8, 6), "sqlite": (11, 6)}


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[dict[str, Any]]:
    """Statements (by text) and transactions begun on `engine` inside the block."""
    seen: dict[str, Any] = {"statements": [], "transactions": 0}

    def statement(conn: Any, cursor: Any, text: str, *_: Any) -> None:
        if not text.lstrip().upper().startswith("BEGIN"):  # SQLite's: counted below
            seen["statements"].append(" ".join(text.split())[:120])

    def begin(conn: Any) -> None:
        seen["transactions"] += 1

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "begin", begin)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", statement)
        event.remove(sync, "begin", begin)


async def test_one_generation_on_the_wait_path_keeps_to_its_statement_budget(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    # Caches that refresh by time (tenants, keys, provider states) must not refresh inside
    # the measured generation on a slow run: they cost per interval, not per generation.
    monkeypatch.setattr(gateway.runtime.tenant_views, "ttl_s", 3600.0)
    monkeypatch.setattr(keys.key_cache, "ttl_s", 3600.0)
    monkeypatch.setattr(gateway.services.providers, "refresh_interval_s", 3600.0)
    monkeypatch.setattr(gateway.services.providers, "persist_interval_s", 3600.0)
    tenant = await gateway.tenant()
    headers = {**tenant.auth, "Prefer": "wait=30"}
    # The first one warms every cache (tenant, key, accounts, provider states).
    r = await gateway.client.post("/v1/generations", headers=headers,
                                  json={**IMAGE, "prompt": "a kite, first"})
    assert r.status_code == 200, r.text
    with counted(gateway.runtime.db.engine) as seen:
        r = await gateway.client.post("/v1/generations", headers=headers,
                                      json={**IMAGE, "prompt": "a kite, second"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
        await gateway.drain()
    statements, transactions = BUDGETS[gateway.runtime.db.engine.dialect.name]
    listing = "\n".join(seen["statements"])
    by_table = collections.Counter(s.split(" ")[0] for s in seen["statements"])
    assert len(seen["statements"]) <= statements, f"{by_table}\n{listing}"
    assert seen["transactions"] <= transactions, listing
