"""The ledger with teams, as a random walk checked after every step (on SQLite and
PostgreSQL): a team's wallet funded from its owner's wallet, members reserving from it
within their allocations (the counter taken in the same transaction as the reservation, as
the submit does), reservations posted or voided with the unspent part given back, limits and
periods changed, months passing.

Invariants: posted money sums to zero across the tenant's accounts and every pending debit
has its pending credit; no wallet is below zero (counting what it reserved); the wallets'
balances are the model's; and each allocation counter equals the sum of its member's open
and posted team spend counted in that period.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import Account
from tenants import service as tenants
from tenants.kernel.db import Database, new_id, utcnow
from tenants.kernel.errors import InsufficientCredits
from tenants.schemas import TenantCreate
from tenants.teams import allocations
from tenants.teams.models import MEMBER, OWNER, Team, TeamAllocationSpend, TeamMember
from tests.billing.test_ledger import FAR_FUTURE, new_key

T = TypeVar("T")
MEMBERS = ("m0", "m1", "m2")
MONTHS = ("2026-11", "2026-12", "2027-01")


@dataclass
class World:
    tenant_id: str
    team_id: str
    owner_wallet: str
    team_wallet: str
    customers: dict[str, str]  # member name -> customer id


async def open_world(db: Database) -> World:
    slug = f"teams-{secrets.token_hex(6)}"
    async with db.transaction() as session:
        tenant = await tenants.create_tenant(session, TenantCreate(
            name=slug, slug=slug, billing_mode="mediahub"))
        await ledger.open_tenant_accounts(session, tenant.id)
        ids = {}
        for name in ("owner", *MEMBERS):
            found = await tenants.customer_for(session, tenant.id, name, create=True)
            assert found is not None
            ids[name] = found.id
        team = Team(id=new_id("team"), tenant_id=tenant.id, name="t", created_by=ids["owner"])
        session.add(team)
        await session.flush()
        for name in ("owner", *MEMBERS):
            session.add(TeamMember(id=new_id("tmem"), tenant_id=tenant.id, team_id=team.id,
                                   customer_id=ids[name],
                                   role=OWNER if name == "owner" else MEMBER))
        team_wallet = await ledger.open_team_wallet(session, tenant.id, team.id)
        owner_wallet = await ledger.customer_wallet(session, tenant.id, ids["owner"])
    return World(tenant_id=tenant.id, team_id=team.id, owner_wallet=owner_wallet,
                 team_wallet=team_wallet, customers=ids)


@dataclass
class Spend:
    id: str
    member: str
    amount: int
    period: str | None  # the counter that took it (None: no allocation)
    posted: int | None = None  # once resolved: what was posted (0: voided)


def team_machine(runner: asyncio.Runner, db: Database) -> type[RuleBasedStateMachine]:

    class TeamLedger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = self.run(open_world(db))
            self.owner_posted = 0
            self.team_posted = 0
            self.month = MONTHS[0]
            self.limits: dict[str, tuple[int, str] | None] = dict.fromkeys(MEMBERS)
            self.spends: list[Spend] = []

        def run(self, coro: object) -> T:  # type: ignore[type-var]
            return runner.run(coro)  # type: ignore[arg-type,no-any-return]

        # The model.
        def team_pending(self) -> int:
            return sum(s.amount for s in self.spends if s.posted is None)

        def counter(self, member: str, period: str) -> int:
            return sum(s.amount if s.posted is None else s.posted for s in self.spends
                       if s.member == member and s.period == period)

        @initialize(amount=st.integers(0, 20_000))
        def opening_grant(self, amount: int) -> None:
            self.grant(amount)

        @rule(amount=st.integers(0, 10_000))
        def grant(self, amount: int) -> None:
            async def go() -> None:
                async with db.transaction() as session:
                    await ledger.grant(session, tenant_id=self.world.tenant_id,
                                       to_account=self.world.owner_wallet, amount_mc=amount,
                                       idempotency_key=new_key("grant"), reason="test")
            self.run(go())
            self.owner_posted += amount

        @rule(amount=st.integers(1, 15_000))
        def fund(self, amount: int) -> None:
            async def go() -> None:
                async with db.transaction() as session:
                    await ledger.move(session, tenant_id=self.world.tenant_id,
                                      from_account=self.world.owner_wallet,
                                      to_account=self.world.team_wallet, amount_mc=amount,
                                      idempotency_key=new_key("fund"), reason="test")
            if amount > self.owner_posted:
                with pytest.raises(InsufficientCredits):
                    self.run(go())
                return
            self.run(go())
            self.owner_posted -= amount
            self.team_posted += amount

        @rule(member=st.sampled_from(MEMBERS),
              limit=st.none() | st.integers(0, 8_000),
              period=st.sampled_from(["month", "total"]))
        def set_allocation(self, member: str, limit: int | None, period: str) -> None:
            async def go() -> None:
                async with db.transaction() as session:
                    await session.execute(
                        update(TeamMember)
                        .where(TeamMember.team_id == self.world.team_id,
                               TeamMember.customer_id == self.world.customers[member])
                        .values(allocation_mc=limit, allocation_period=period))
            self.run(go())
            self.limits[member] = None if limit is None else (limit, period)

        @rule()
        def next_month(self) -> None:
            self.month = MONTHS[min(MONTHS.index(self.month) + 1, len(MONTHS) - 1)]

        @rule(member=st.sampled_from(MEMBERS), amount=st.integers(0, 5_000))
        def reserve(self, member: str, amount: int) -> None:
            world = self.world

            async def unit(session: AsyncSession) -> tuple[str, str | None]:
                period = await allocations.take(
                    session, tenant_id=world.tenant_id, team_id=world.team_id,
                    customer_id=world.customers[member], amount_mc=amount, month=self.month)
                t = await ledger.reserve(
                    session, tenant_id=world.tenant_id, from_account=world.team_wallet,
                    amount_mc=amount, to_code=ledger.TENANT_REVENUE,
                    idempotency_key=new_key("team-reserve"),
                    timeout_at=utcnow() + FAR_FUTURE, generation_id=None)
                return t.id, period

            limit = self.limits[member]
            expected_period = None
            if limit is not None:
                expected_period = "total" if limit[1] == "total" else self.month
                if self.counter(member, expected_period) + amount > limit[0]:
                    with pytest.raises(InsufficientCredits) as caught:
                        self.run(db.grouped(unit))
                    assert caught.value.code == "allocation_exceeded"
                    assert caught.value.extra["remaining"] == max(
                        0, limit[0] - self.counter(member, expected_period))
                    return
            if amount > self.team_posted - self.team_pending():
                with pytest.raises(InsufficientCredits) as caught:
                    self.run(db.grouped(unit))
                assert caught.value.code == "insufficient_credits"
                return
            pending_id, period = self.run(db.grouped(unit))
            assert period == expected_period
            self.spends.append(Spend(pending_id, member, amount, period))

        @rule(data=st.data())
        def resolve(self, data: st.DataObject) -> None:
            open_ = [s for s in self.spends if s.posted is None]
            if not open_:
                return
            spend = data.draw(st.sampled_from(open_), label="spend")
            posted = data.draw(st.integers(0, spend.amount), label="posted")
            void = data.draw(st.booleans(), label="void")
            world = self.world

            async def unit(session: AsyncSession) -> None:
                # As `lifecycle.end` does: the counter first, then the ledger.
                await allocations.give_back(session, world.tenant_id, world.team_id,
                                            world.customers[spend.member], spend.period,
                                            spend.amount - (0 if void else posted))
                if void:
                    await ledger.void(session, tenant_id=world.tenant_id, pending_id=spend.id)
                else:
                    await ledger.post(session, tenant_id=world.tenant_id, pending_id=spend.id,
                                      amount_mc=posted)

            self.run(db.grouped(unit))
            spend.posted = 0 if void else posted
            self.team_posted -= spend.posted

        @invariant()
        def books_balance_and_counters_match(self) -> None:
            world = self.world

            async def read() -> tuple[dict[str, ledger.Totals], list[Account],
                                      list[TeamAllocationSpend]]:
                async with db.session() as session:
                    totals = await ledger.balances(session, world.tenant_id)
                    accounts = list(await session.scalars(
                        select(Account).where(Account.tenant_id == world.tenant_id)))
                    counters = list(await session.scalars(select(TeamAllocationSpend).where(
                        TeamAllocationSpend.team_id == world.team_id)))
                return totals, accounts, counters

            totals, accounts, counters = self.run(read())
            assert sum(t.posted_balance for t in totals.values()) == 0
            assert (sum(t.credits_pending for t in totals.values())
                    == sum(t.debits_pending for t in totals.values()))
            for account in accounts:
                if account.no_overdraft:
                    assert (account.debits_posted + account.debits_pending
                            <= account.credits_posted), account.code
            team = totals[ledger.team_code(world.team_id)]
            assert team.posted_balance == self.team_posted
            assert team.debits_pending == self.team_pending()
            owner = totals[ledger.customer_code(world.customers["owner"])]
            assert owner.posted_balance == self.owner_posted
            names = {cid: name for name, cid in world.customers.items()}
            found = {(names[c.customer_id], c.period): c.spent_mc for c in counters}
            expected = {(s.member, s.period): 0 for s in self.spends if s.period is not None}
            for key in expected:
                expected[key] = self.counter(*key)  # type: ignore[arg-type]
            assert {k: v for k, v in found.items() if v or k in expected} == expected

    return TeamLedger


def test_random_team_spending_keeps_every_invariant(database_url: str) -> None:
    with asyncio.Runner() as runner:
        db = Database(database_url)
        try:
            run_state_machine_as_test(
                team_machine(runner, db),
                settings=settings(max_examples=25, stateful_step_count=30, deadline=None,
                                  database=None, suppress_health_check=[HealthCheck.too_slow]),
            )
        finally:
            runner.run(db.dispose())
