"""Monthly budgets per API key and per customer (issue #16): counted in the submit's unit,
exact at the boundary and under concurrency, given back by what a generation did not spend."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, select

from billing import ledger
from gateway.core.settings import Settings
from gateway.generations.budgets import month_of
from plugins.errors import ProviderError
from tenants.kernel.db import utcnow
from tenants.models import MonthlySpend
from tests.conftest import Gate, GatePlugin, Gateway, make_settings, running_gateway

GATED = {"type": "image", "provider": "gate"}
#: The gate's estimate (10 000 USD micros) at the platform's default 30 % markup.
WHOLESALE = 1_300
#: What the gate charges (4 000 USD micros).
CHARGED = 520


async def spent(gw: Gateway, tenant_id: str, kind: str, subject_id: str) -> int | None:
    async with gw.runtime.db.session() as session:
        return await session.scalar(select(MonthlySpend.spent_mc).where(
            MonthlySpend.tenant_id == tenant_id, MonthlySpend.subject_kind == kind,
            MonthlySpend.subject_id == subject_id,
            MonthlySpend.month == month_of(utcnow().date())))


async def submit(gw: Gateway, auth: dict[str, str], n: int = 0) -> httpx.Response:
    return await gw.client.post("/v1/generations", headers=auth,
                                json={**GATED, "prompt": f"p{n}"})


async def budgeted_key(gw: Gateway, budget: int, **tenant: object) -> tuple[str, str,
                                                                             dict[str, str]]:
    """A tenant with a `tenant_admin` key and a generate key under `budget`: (tenant id,
    key id, the key's auth)."""
    owner = await gw.tenant(scopes=["tenant_admin"], **tenant)
    r = await gw.client.post("/v1/keys", headers=owner.auth, json={
        "name": "budgeted", "scopes": ["generate", "read"], "monthly_budget_mc": budget})
    assert r.status_code == 201, r.text
    return owner.id, r.json()["id"], {"Authorization": f"Bearer {r.json()['key']}"}


async def test_a_keys_budget_is_exact_and_comes_back_on_cancel_failure_and_success(
        settings: Settings) -> None:
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        tenant_id, key_id, auth = await budgeted_key(gw, 4 * WHOLESALE - 1)
        answers = [await submit(gw, auth, i) for i in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 402]
        refusal = answers[3].json()["error"]
        assert (refusal["type"], refusal["code"]) == ("insufficient_credits", "budget_exceeded")
        assert f"{4 * WHOLESALE - 1} millicredits has {WHOLESALE - 1} left" in (
            refusal["message"])
        assert await spent(gw, tenant_id, "key", key_id) == 3 * WHOLESALE
        # Nothing was reserved for the refused one.
        async with gw.runtime.db.session() as session:
            books = await ledger.balances(session, tenant_id)
        assert books[ledger.TENANT_WALLET].debits_pending == 3 * WHOLESALE

        # A cancel gives its reservation back.
        first = answers[0].json()["id"]
        assert (await gw.client.post(f"/v1/generations/{first}/cancel",
                                     headers=auth)).json()["status"] == "canceled"
        assert await spent(gw, tenant_id, "key", key_id) == 2 * WHOLESALE
        assert (await submit(gw, auth, 10)).status_code == 202
        assert (await submit(gw, auth, 11)).status_code == 402

        # Failures give all of it back.
        gate.fail_with = ProviderError("refused", code="content_policy", retryable=False)
        gate.release.set()
        await gw.drain()
        assert await spent(gw, tenant_id, "key", key_id) == 0

        # A success keeps what was charged.
        gate.fail_with = None
        done = [await gw.finish(auth, {**GATED, "prompt": f"ok{i}"}) for i in range(2)]
        assert [g["cost"]["charged"] for g in done] == [CHARGED, CHARGED]
        assert await spent(gw, tenant_id, "key", key_id) == 2 * CHARGED
        # The key's listing shows the month's spend (succeeded: charged).
        owner_keys = await gw.client.get(f"/admin/v1/tenants/{tenant_id}/keys",
                                         headers=gw.admin())
        mine = next(k for k in owner_keys.json()["data"] if k["id"] == key_id)
        assert mine["month_spend_mc"] == 2 * CHARGED

        # No budget: no count, nothing refused.
        owner = next(k for k in owner_keys.json()["data"] if k["id"] != key_id)
        assert owner["monthly_budget_mc"] is None


async def test_a_customers_budget_counts_what_its_wallet_pays(settings: Settings) -> None:
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        owner = await gw.tenant(scopes=["tenant_admin", "generate"], billing_mode="mediahub",
                                pricing={"markup_bps": {"default": 5_000}})
        retail = WHOLESALE * 3 // 2  # 1950
        r = await gw.client.post("/v1/customers", headers=owner.auth, json={
            "external_id": "alice", "monthly_budget_mc": 2 * retail})
        assert r.status_code == 201, r.text
        customer_id = r.json()["id"]
        move = await gw.client.post(f"/v1/customers/{customer_id}/credits",
                                    headers={**owner.auth, "Idempotency-Key": "fund"},
                                    json={"amount": 100_000, "reason": "welcome"})
        assert move.status_code == 201, move.text
        alice = {**owner.auth, "X-Customer-Id": "alice"}
        codes = [(await submit(gw, alice, i)).status_code for i in range(3)]
        assert codes == [202, 202, 402]
        assert await spent(gw, owner.id, "customer", customer_id) == 2 * retail
        # The tenant's own requests (no customer) are not the customer's budget.
        assert (await submit(gw, owner.auth, 99)).status_code == 202
        # The budget removed: admitted from the next submit.
        r = await gw.client.patch(f"/v1/customers/{customer_id}", headers=owner.auth,
                                  json={"monthly_budget_mc": None})
        assert r.json()["monthly_budget_mc"] is None
        assert (await submit(gw, alice, 3)).status_code == 202
        # A customer's listing shows this month's spend and its wallet.
        got = (await gw.client.get("/v1/customers/alice", headers=owner.auth)).json()
        assert got["month_spend_mc"] == 3 * retail
        assert got["balance"]["pending"] == 3 * retail
        gate.release.set()


async def test_40_concurrent_submits_against_a_budget_for_7_on_postgresql(
        pg_url: str, tmp_path: Path) -> None:
    gate = Gate()
    async with running_gateway(make_settings(pg_url, tmp_path),
                               extra=[GatePlugin(gate)]) as gw:
        tenant_id, key_id, auth = await budgeted_key(gw, 7 * WHOLESALE)
        answers = await asyncio.gather(*(submit(gw, auth, i) for i in range(40)))
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 7, codes
        assert {a.json()["error"]["code"] for a in answers if a.status_code != 202} == {
            "budget_exceeded"}
        assert await spent(gw, tenant_id, "key", key_id) == 7 * WHOLESALE
        async with gw.runtime.db.session() as session:
            books = await ledger.balances(session, tenant_id)
        assert books[ledger.TENANT_WALLET].debits_pending == 7 * WHOLESALE
        assert sum(t.posted_balance for t in books.values()) == 0
        # All fail: the whole budget comes back, and the books still balance.
        gate.fail_with = ProviderError("refused", code="content_policy", retryable=False)
        gate.release.set()
        await gw.drain()
        assert await spent(gw, tenant_id, "key", key_id) == 0
        async with gw.runtime.db.session() as session:
            books = await ledger.balances(session, tenant_id)
        assert books[ledger.TENANT_WALLET].debits_pending == 0
        assert sum(t.posted_balance for t in books.values()) == 0


async def test_40_concurrent_submits_against_a_customers_budget_on_postgresql(
        pg_url: str, tmp_path: Path) -> None:
    """The customer's budget counts retail (its wallet pays in the `mediahub` mode), and two
    keys acting for it share it."""
    gate = Gate()
    async with running_gateway(make_settings(pg_url, tmp_path),
                               extra=[GatePlugin(gate)]) as gw:
        owner = await gw.tenant(scopes=["tenant_admin", "generate"], billing_mode="mediahub",
                                pricing={"markup_bps": {"default": 10_000}})
        retail = 2 * WHOLESALE
        await gw.client.post("/v1/customers", headers=owner.auth, json={
            "external_id": "erin", "monthly_budget_mc": 5 * retail + retail - 1})
        await gw.client.post("/v1/customers/erin/credits",
                             headers={**owner.auth, "Idempotency-Key": "fund"},
                             json={"amount": 500_000, "reason": "r"})
        second = await gw.client.post("/v1/keys", headers=owner.auth,
                                      json={"name": "second", "scopes": ["generate"]})
        keys = [owner.auth, {"Authorization": f"Bearer {second.json()['key']}"}]
        answers = await asyncio.gather(*(
            submit(gw, {**keys[i % 2], "X-Customer-Id": "erin"}, i) for i in range(40)))
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 5, codes
        customer = (await gw.client.get("/v1/customers/erin", headers=owner.auth)).json()
        assert await spent(gw, owner.id, "customer", customer["id"]) == 5 * retail
        assert customer["balance"]["pending"] == 5 * retail
        async with gw.runtime.db.session() as session:
            books = await ledger.balances(session, owner.id)
        assert sum(t.posted_balance for t in books.values()) == 0
        gate.release.set()


async def test_a_submit_without_budgets_reads_no_budget(settings: Settings) -> None:
    """Budget presence rides on the key cache and the tenant views: a submit whose key and
    customer have no budget sends no budget statement (one fewer statement per submit than
    before); one with a budget set a moment ago reads and counts it."""
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        owner = await gw.tenant(scopes=["tenant_admin"])
        made = await gw.client.post("/v1/keys", headers=owner.auth, json={
            "name": "plain", "scopes": ["generate", "read"]})
        assert made.status_code == 201, made.text
        key_id = made.json()["id"]
        auth = {"Authorization": f"Bearer {made.json()['key']}"}
        assert (await submit(gw, auth, 0)).status_code == 202  # caches warm

        sent: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
            sent.append(statement)

        engine = gw.runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert (await submit(gw, auth, 1)).status_code == 202
            without = list(sent)
            changed = await gw.client.patch(f"/v1/keys/{key_id}", headers=owner.auth,
                                            json={"monthly_budget_mc": WHOLESALE})
            assert changed.status_code == 200, changed.text
            sent.clear()
            assert (await submit(gw, auth, 2)).status_code == 202
            with_budget = list(sent)
            assert (await submit(gw, auth, 3)).status_code == 402  # counted, and exact
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert not [s for s in without if "monthly_budget_mc" in s], without
        assert [s for s in with_budget if "monthly_budget_mc" in s]
        assert await spent(gw, owner.id, "key", key_id) == WHOLESALE
        gate.release.set()
