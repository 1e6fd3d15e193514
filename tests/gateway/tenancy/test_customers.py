"""`/v1/customers`: a tenant's owners search and manage its customers (issue #13): tiers that
price, budgets, credits moved between the tenant's wallet and a customer's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from billing import ledger
from billing.pricing import apply_markup
from gateway.core.settings import Settings
from tenants.audit import AuditEvent
from tests.conftest import Gate, GatePlugin, Gateway, make_settings, running_gateway

GATED = {"type": "image", "provider": "gate"}
WHOLESALE = 1_300  # the gate's estimate (10 000 USD micros) at the platform's 30 %
ACTUAL_WHOLESALE = 520  # what it charges (4 000 USD micros)


async def events(gw: Gateway, tenant_id: str, action: str) -> list[AuditEvent]:
    async with gw.runtime.db.session() as session:
        return list(await session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id,
                                     AuditEvent.action == action)
            .order_by(AuditEvent.created_at)))


async def test_create_search_read_and_change_customers(gateway: Gateway) -> None:
    owner = await gateway.tenant(scopes=["tenant_admin"])
    made = {}
    for external, tier in (("Acme-1", "gold"), ("acme_2", "standard"), ("acmex3", "gold"),
                           ("bolt", "gold")):
        r = await gateway.client.post("/v1/customers", headers=owner.auth,
                                      json={"external_id": external, "tier": tier})
        assert r.status_code == 201, r.text
        made[external] = r.json()["id"]
    r = await gateway.client.post("/v1/customers", headers=owner.auth,
                                  json={"external_id": "bolt"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "customer_exists")

    async def ids(query: str) -> list[str]:
        r = await gateway.client.get(f"/v1/customers{query}", headers=owner.auth)
        assert r.status_code == 200, r.text
        return [c["external_id"] for c in r.json()["data"]]

    assert await ids("") == ["bolt", "acmex3", "acme_2", "Acme-1"]  # newest first
    assert await ids("?q=ACME") == ["acmex3", "acme_2", "Acme-1"]  # case-insensitive
    assert await ids("?q=acme_") == ["acme_2"]  # `_` is a character, not a wildcard
    assert await ids("?q=acme&tier=gold") == ["acmex3", "Acme-1"]
    assert await ids("?q=zzz") == []
    page = (await gateway.client.get("/v1/customers?limit=3", headers=owner.auth)).json()
    rest = (await gateway.client.get(f"/v1/customers?limit=3&cursor={page['next_cursor']}",
                                     headers=owner.auth)).json()
    assert [c["external_id"] for c in rest["data"]] == ["Acme-1"]

    # Read by our id or the tenant's own; a self-billing tenant's customers have no wallet.
    by_id = (await gateway.client.get(f"/v1/customers/{made['bolt']}",
                                      headers=owner.auth)).json()
    by_external = (await gateway.client.get("/v1/customers/bolt", headers=owner.auth)).json()
    assert by_id == by_external
    assert (by_id["tier"], by_id["balance"], by_id["month_spend_mc"]) == ("gold", None, 0)

    r = await gateway.client.patch("/v1/customers/bolt", headers=owner.auth,
                                   json={"tier": "silver", "monthly_budget_mc": 9_000})
    assert (r.json()["tier"], r.json()["monthly_budget_mc"]) == ("silver", 9_000)
    [changed] = await events(gateway, owner.id, "customer.updated")
    assert changed.actor == f"key:{owner.key_id}"
    assert (changed.before["tier"], changed.after["tier"]) == ("gold", "silver")
    assert (changed.before["monthly_budget_mc"], changed.after["monthly_budget_mc"]) == (
        None, 9_000)

    # Another tenant's customer does not exist for this one.
    other = await gateway.tenant(scopes=["tenant_admin"])
    for method in ("GET", "PATCH"):
        r = await gateway.client.request(method, f"/v1/customers/{made['bolt']}",
                                         headers=other.auth,
                                         json={"tier": "x"} if method == "PATCH" else None)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "customer_not_found")
    assert (await gateway.client.get("/v1/customers", headers=other.auth)).json()["data"] == []
    # Without tenant_admin: 403.
    plain = await gateway.tenant()
    assert (await gateway.client.get("/v1/customers", headers=plain.auth)).status_code == 403


async def test_a_tier_prices_the_customers_next_estimate_reservation_and_charge(
        settings: Settings) -> None:
    gate = Gate()
    gate.release.set()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        owner = await gw.tenant(scopes=["tenant_admin"], billing_mode="mediahub",
                                pricing={"markup_bps": {"default": 2_000},
                                         "tier_markup_bps": {"gold": 5_000}})
        r = await gw.client.post("/v1/keys", headers=owner.auth, json={
            "name": "bob's", "scopes": ["generate", "read", "billing"], "customer_id": "bob"})
        bob = {"Authorization": f"Bearer {r.json()['key']}"}
        r = await gw.client.post("/v1/customers/bob/credits",
                                 headers={**owner.auth, "Idempotency-Key": "k"},
                                 json={"amount": 50_000, "reason": "start"})
        assert r.status_code == 201, r.text

        async def estimate() -> int:
            r = await gw.client.post("/v1/generations/estimate", headers=bob,
                                     json={**GATED, "prompt": "e"})
            assert r.status_code == 200, r.text
            amount: int = r.json()["amount"]
            return amount

        assert await estimate() == apply_markup(WHOLESALE, 2_000) == 1_560
        done = await gw.finish(bob, {**GATED, "prompt": "standard"})
        assert (done["cost"]["estimated"], done["cost"]["charged"]) == (
            1_560, apply_markup(ACTUAL_WHOLESALE, 2_000))

        r = await gw.client.patch("/v1/customers/bob", headers=owner.auth,
                                  json={"tier": "gold"})
        assert r.status_code == 200, r.text
        assert await estimate() == apply_markup(WHOLESALE, 7_000) == 2_210
        done = await gw.finish(bob, {**GATED, "prompt": "gold"})
        assert (done["cost"]["estimated"], done["cost"]["charged"]) == (
            2_210, apply_markup(ACTUAL_WHOLESALE, 7_000))
        assert done["cost"]["charged"] == 884
        balance = await gw.balance(bob)
        assert balance["available"] == 50_000 - 624 - 884


async def test_credit_moves_are_idempotent_refused_when_short_and_keep_the_books(
        gateway: Gateway) -> None:
    owner = await gateway.tenant(scopes=["tenant_admin", "billing"], credits_mc=10_000,
                                 billing_mode="mediahub")
    customer = (await gateway.client.post("/v1/customers", headers=owner.auth,
                                          json={"external_id": "carol"})).json()["id"]

    def move(path: str, key: str | None, amount: int) -> object:
        headers = {**owner.auth, **({"Idempotency-Key": key} if key else {})}
        return gateway.client.post(f"/v1/customers/{customer}/credits{path}", headers=headers,
                                   json={"amount": amount, "reason": "r"})

    first = await move("", "g1", 4_000)
    again = await move("", "g1", 4_000)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["customer_available"], first.json()["tenant_available"]) == (
        4_000, 6_000)
    r = await move("", "g1", 5_000)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "idempotency_key_reused")
    r = await move("", None, 1)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "idempotency_key_required")
    r = await move("", "g2", 6_001)  # the tenant's wallet holds 6 000
    assert (r.status_code, r.json()["error"]["code"]) == (402, "insufficient_credits")

    r = await move("/take_back", "t1", 4_001)
    assert (r.status_code, r.json()["error"]["code"]) == (402, "insufficient_credits")
    r = await move("/take_back", "t1", 1_500)
    assert r.status_code == 201, r.text
    assert r.json()["direction"] == "to_tenant"
    assert (r.json()["customer_available"], r.json()["tenant_available"]) == (2_500, 7_500)
    r = await move("/take_back", "g1", 4_000)  # a grant's key for a take-back: another move
    assert r.status_code == 409

    assert (await gateway.balance(owner.auth))["available"] == 7_500
    got = (await gateway.client.get("/v1/customers/carol", headers=owner.auth)).json()
    assert got["balance"]["available"] == 2_500
    async with gateway.runtime.db.session() as session:
        books = await ledger.balances(session, owner.id)
    assert sum(t.posted_balance for t in books.values()) == 0
    moved = await events(gateway, owner.id, "credits.moved_to_customer")
    taken = await events(gateway, owner.id, "credits.taken_back")
    assert [(e.actor, e.target_id, e.after["amount_mc"]) for e in moved + taken] == [
        (f"key:{owner.key_id}", customer, 4_000), (f"key:{owner.key_id}", customer, 1_500)]

    # A tenant that bills its customers itself has no customer wallets to move to.
    selfish = await gateway.tenant(scopes=["tenant_admin"])
    await gateway.client.post("/v1/customers", headers=selfish.auth,
                              json={"external_id": "dan"})
    r = await gateway.client.post("/v1/customers/dan/credits",
                                  headers={**selfish.auth, "Idempotency-Key": "x"},
                                  json={"amount": 1, "reason": "r"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "billing_mode_self")


async def test_concurrent_repeats_of_a_credit_move_move_once_on_postgresql(
        pg_url: str, tmp_path: Path) -> None:
    async with running_gateway(make_settings(pg_url, tmp_path)) as gw:
        owner = await gw.tenant(scopes=["tenant_admin"], credits_mc=10_000,
                                billing_mode="mediahub")
        await gw.client.post("/v1/customers", headers=owner.auth,
                             json={"external_id": "frank"})
        answers = await asyncio.gather(*(
            gw.client.post("/v1/customers/frank/credits",
                           headers={**owner.auth, "Idempotency-Key": "once"},
                           json={"amount": 3_000, "reason": "r"}) for _ in range(20)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        got = (await gw.client.get("/v1/customers/frank", headers=owner.auth)).json()
        assert got["balance"]["available"] == 3_000
        async with gw.runtime.db.session() as session:
            books = await ledger.balances(session, owner.id)
        assert books[ledger.TENANT_WALLET].posted_balance == 7_000
        assert sum(t.posted_balance for t in books.values()) == 0
