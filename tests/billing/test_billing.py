"""Who pays what: billing modes, customer wallets, retail and wholesale, credits.low, and a
wallet under 500 concurrent requests (issue: a ledger that cannot lose or invent a credit)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from billing import ledger
from billing.models import LedgerEvent
from billing.pricing import BPS, MIN_CHARGE_MC, USD_MICROS_PER_MILLICREDIT, price
from gateway.core.settings import Settings
from tenants.schemas import TenantPricing
from tests.conftest import Gate, GatePlugin, Gateway, Tenant, make_settings, running_gateway

GATED = {"type": "image", "prompt": "x", "provider": "gate"}
# The gate provider estimates 10 000 USD micros: wholesale = 10000 * 1.3 / 10 = 1300.
WHOLESALE = 1_300


@pytest.fixture
async def open_gate(gated: tuple[Gateway, Gate]) -> tuple[Gateway, Gate]:
    """A gated gateway whose provider answers at once (4 000 USD micros actually spent)."""
    gated[1].release.set()
    return gated


async def customer_key(gw: Gateway, tenant: Tenant, customer: str) -> dict[str, str]:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/keys", headers=gw.admin(),
                             json={"name": customer, "customer_id": customer,
                                   "scopes": ["generate", "read", "billing"]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def grant_customer(gw: Gateway, tenant: Tenant, customer: str, amount: int) -> None:
    r = await gw.client.post(f"/admin/v1/tenants/{tenant.id}/credits",
                             headers={**gw.admin(), "Idempotency-Key": f"c-{customer}"},
                             json={"amount": amount, "reason": "top-up", "customer_id": customer})
    assert r.status_code == 201, r.text


async def wallet(gw: Gateway, auth: dict[str, str]) -> dict[str, int]:
    r = await gw.client.get("/v1/credits/balance", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


async def books_balance(gw: Gateway, tenant_id: str) -> dict[str, ledger.Totals]:
    async with gw.runtime.db.session() as session:
        return await ledger.balances(session, tenant_id)


async def test_mediahub_mode_customer_pays_retail_and_tenant_pays_wholesale(
    open_gate: tuple[Gateway, Gate],
) -> None:
    gw, _ = open_gate
    tenant = await gw.tenant(credits_mc=100_000, billing_mode="mediahub",
                             pricing={"markup_bps": {"image": 5_000},
                                      "tier_markup_bps": {"standard": 1_000}})
    alice = await customer_key(gw, tenant, "alice")
    await grant_customer(gw, tenant, "alice", 10_000)
    assert (await wallet(gw, alice))["available"] == 10_000

    estimate = (await gw.client.post("/v1/generations/estimate", headers=alice,
                                     json=GATED)).json()
    retail = WHOLESALE * (BPS + 6_000) // BPS  # +50 % for images, +10 % for the tier
    # A customer is shown its retail price only (the provider's cost and the wholesale price
    # are the tenant's business).
    assert estimate["breakdown"] == {"retail": retail}
    assert estimate["amount"] == retail

    r = await gw.client.post("/v1/generations", headers={**alice, "Prefer": "wait=30"},
                             json=GATED)
    assert r.status_code == 200, r.text
    done = r.json()
    # The gate reports 4 000 USD micros actually spent: 520 wholesale, 832 retail.
    assert done["cost"] == {"estimated": retail, "charged": 832, "unit": "millicredit"}
    assert await wallet(gw, alice) == {"available": 10_000 - 832, "pending": 0,
                                       "posted": 10_000 - 832, "unit": "millicredit",
                                       "object": "balance"}
    assert (await wallet(gw, tenant.auth))["available"] == 100_000 - 520
    books = await books_balance(gw, tenant.id)
    assert books[ledger.PLATFORM_REVENUE].posted_balance == 520
    assert books[ledger.TENANT_REVENUE].posted_balance == 832
    assert sum(t.posted_balance for t in books.values()) == 0

    history = (await gw.client.get("/v1/credits/transactions", headers=alice)).json()["data"]
    assert [(h["kind"], h["amount"], h["status"]) for h in history] == [
        ("generation", -832, "posted"), ("grant", 10_000, "posted")]


async def test_a_customer_short_of_credits_gets_402_and_nothing_moves(
    open_gate: tuple[Gateway, Gate],
) -> None:
    gw, _ = open_gate
    tenant = await gw.tenant(credits_mc=100_000, billing_mode="mediahub")
    bob = await customer_key(gw, tenant, "bob")
    await grant_customer(gw, tenant, "bob", WHOLESALE - 1)
    r = await gw.client.post("/v1/generations", headers=bob, json=GATED)
    assert r.status_code == 402
    assert r.json()["error"]["shortfall"] == 1
    assert (await wallet(gw, bob))["pending"] == 0
    assert (await wallet(gw, tenant.auth)) ["pending"] == 0


async def test_self_billing_charges_only_the_tenant_and_records_retail(
    open_gate: tuple[Gateway, Gate],
) -> None:
    gw, _ = open_gate
    tenant = await gw.tenant(credits_mc=100_000, pricing={"markup_bps": {"default": 10_000}})
    r = await gw.client.post("/v1/generations",
                             headers={**tenant.auth, "X-Customer-Id": "carol",
                                      "Prefer": "wait=30"}, json=GATED)
    done = r.json()
    # Carol is shown her retail price; the tenant, who paid, sees the wholesale one.
    assert done["cost"]["charged"] == 1_040
    as_tenant = await gw.client.get(f"/v1/generations/{done['id']}", headers=tenant.auth)
    assert as_tenant.json()["cost"]["charged"] == 520
    assert (await wallet(gw, tenant.auth))["available"] == 100_000 - 520
    # Carol has no wallet here: her tenant bills her itself.
    r = await gw.client.get("/v1/credits/balance",
                            headers={**tenant.auth, "X-Customer-Id": "carol"})
    assert r.status_code == 404
    from gateway.generations.models import Generation

    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, done["id"])
    assert row is not None
    assert (row.cost_usd_micros, row.wholesale_mc, row.retail_mc) == (4_000, 520, 1_040)


async def test_credits_low_is_raised_once_per_crossing(settings: Settings) -> None:
    gate = Gate()  # closed: reservations stay pending, so every balance step is known
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        tenant = await gw.tenant(credits_mc=3 * WHOLESALE, low_balance_threshold_mc=2_000)

        async def events() -> list[LedgerEvent]:
            async with gw.runtime.db.session() as session:
                return list(await session.scalars(
                    select(LedgerEvent).where(LedgerEvent.tenant_id == tenant.id)))

        async def submit(n: int) -> None:
            r = await gw.client.post("/v1/generations", headers=tenant.auth,
                                     json={**GATED, "prompt": f"p{n}"})
            assert r.status_code == 202, r.text

        await submit(0)  # 3900 → 2600: above the threshold
        assert await events() == []
        await submit(1)  # 2600 → 1300: crosses
        await submit(2)  # 1300 → 0: already below, no second event
        [low] = await events()
        assert low.type == "credits.low"
        assert low.payload == {"account_id": low.payload["account_id"], "available": 1_300,
                               "threshold": 2_000, "unit": "millicredit"}
        # Topped up above the threshold, then down again: a second crossing, a second event.
        await gw.client.post(f"/admin/v1/tenants/{tenant.id}/credits",
                             headers={**gw.admin(), "Idempotency-Key": "top"},
                             json={"amount": 3 * WHOLESALE, "reason": "top-up"})
        await submit(3)
        assert len(await events()) == 1
        await submit(4)
        assert [e.payload["available"] for e in await events()] == [1_300, 1_300]
        gate.release.set()
        await gw.drain()


async def test_500_concurrent_requests_against_a_wallet_that_pays_for_137(
    pg_url: str, tmp_path: object,
) -> None:
    from pathlib import Path

    settings = make_settings(pg_url, Path(str(tmp_path)))
    gate = Gate()  # closed: nothing settles while the requests race
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        funded = 137 * WHOLESALE + WHOLESALE - 1
        tenant = await gw.tenant(credits_mc=funded)
        answers = await asyncio.gather(*(
            gw.client.post("/v1/generations", headers=tenant.auth,
                           json={**GATED, "prompt": f"race {i}"}) for i in range(500)))
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 137, {c: codes.count(c) for c in set(codes)}
        assert codes.count(402) == 500 - 137
        assert await wallet(gw, tenant.auth) == {
            "available": WHOLESALE - 1, "pending": 137 * WHOLESALE, "posted": funded,
            "unit": "millicredit", "object": "balance"}
        gate.release.set()
        await gw.drain()
        after = await wallet(gw, tenant.auth)
        assert after == {"available": funded - 137 * 520, "pending": 0,
                         "posted": funded - 137 * 520, "unit": "millicredit",
                         "object": "balance"}
        books = await books_balance(gw, tenant.id)
        assert sum(t.posted_balance for t in books.values()) == 0


@given(cost=st.integers(0, 10**9), markup=st.integers(0, 50_000),
       tenant_bps=st.integers(0, 50_000), tier_bps=st.integers(0, 20_000))
def test_prices_round_up_never_down(cost: int, markup: int, tenant_bps: int,
                                    tier_bps: int) -> None:
    pricing = TenantPricing(markup_bps={"video": tenant_bps}, tier_markup_bps={"pro": tier_bps})
    p = price(cost, media_type="video", tenant_pricing=pricing, tier="pro",
              platform_markup_bps={"video": markup})
    assert isinstance(p.wholesale_mc, int)
    assert isinstance(p.retail_mc, int)
    # Never below the exact price, and less than one millicredit above it.
    exact_num = cost * (BPS + markup)
    assert p.wholesale_mc >= MIN_CHARGE_MC
    if p.wholesale_mc > MIN_CHARGE_MC:
        assert 0 <= p.wholesale_mc * BPS * USD_MICROS_PER_MILLICREDIT - exact_num \
            < BPS * USD_MICROS_PER_MILLICREDIT
    retail_num = p.wholesale_mc * (BPS + tenant_bps + tier_bps)
    assert 0 <= p.retail_mc * BPS - retail_num < BPS
    assert p.retail_mc >= p.wholesale_mc


async def test_a_refused_reservation_leaves_no_transfer_even_if_the_caller_commits(
    database_url: str,
) -> None:
    from datetime import timedelta

    from billing.models import Transfer
    from tenants.kernel.db import Database, utcnow
    from tenants.kernel.errors import InsufficientCredits
    from tenants.schemas import TenantCreate
    from tenants.service import create_tenant

    db = Database(database_url)
    try:
        async with db.transaction() as session:
            tenant = await create_tenant(session, TenantCreate(name="r", slug=f"r-{id(db)}"))
            ids = await ledger.open_tenant_accounts(session, tenant.id)
        async with db.transaction() as session:
            await ledger.grant(session, tenant_id=tenant.id, to_account=ids["tenant_wallet"],
                               amount_mc=1_000, idempotency_key=f"g-{tenant.id}", reason="t")
        # The first reservation teaches the process the accounts (PostgreSQL then takes its
        # one-statement path); the second is refused inside a transaction that commits.
        for n, amount in ((1, 600), (2, 600)):
            async with db.transaction() as session:
                try:
                    await ledger.reserve(
                        session, tenant_id=tenant.id, from_account=ids["tenant_wallet"],
                        amount_mc=amount, idempotency_key=f"r{n}-{tenant.id}",
                        timeout_at=utcnow() + timedelta(hours=1), generation_id=None)
                except InsufficientCredits:
                    assert n == 2
        async with db.session() as session:
            keys = list(await session.scalars(
                select(Transfer.idempotency_key).where(Transfer.tenant_id == tenant.id)))
            held = await ledger.balance(session, tenant_id=tenant.id,
                                        account=ids["tenant_wallet"])
        assert sorted(keys) == sorted([f"g-{tenant.id}", f"r1-{tenant.id}"])
        assert (held.available_mc, held.pending_mc) == (400, 600)
    finally:
        await db.dispose()
