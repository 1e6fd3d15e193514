"""Customers as their tenant's owners manage them (issue #13): search, read, create, tier and
monthly budget, and, in the `mediahub` billing mode, credits moved between the tenant's
wallet and a customer's. Each function is one transaction; changes are audited in it.

A customer is named by our id (`cus_…`) or, failing that, by the tenant's own id for it
(`external_id`), in every route (`tenants.customers.get_customer`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from sqlalchemy import select

from billing import ledger, wallets
from billing.models import Transfer
from gateway.core.runtime import Runtime
from gateway.generations import budgets
from gateway.generations.models import Generation
from tenants import audit
from tenants import customers as customer_rows
from tenants import service as tenants
from tenants.customers import CustomerCreate, CustomerUpdate
from tenants.kernel.db import utcnow
from tenants.kernel.errors import Conflict
from tenants.models import Customer

#: The longest credit move `Idempotency-Key`: stored as `cmove:<tenant id>:<key>` in
#: `transfers.idempotency_key` (255 characters; tenant ids up to 32).
MAX_MOVE_IDEMPOTENCY_KEY = 255 - len("cmove:") - 32 - 1

#: Transfer kinds of the two moves, as the wallets' histories show them.
GRANT_KIND = "tenant_grant"
TAKE_BACK_KIND = "take_back"


class CustomerBalance(msgspec.Struct):
    """A customer's wallet, as `GET /v1/credits/balance` shows it to the customer."""

    available: int
    pending: int
    posted: int
    unit: str = "millicredit"
    object: str = "balance"


class CustomerOut(msgspec.Struct):
    id: str
    external_id: str
    tier: str
    monthly_budget_mc: int | None
    #: What the customer's generations charged or hold this calendar month (UTC).
    month_spend_mc: int
    #: The customer's wallet (`mediahub` billing mode only; else null).
    balance: CustomerBalance | None
    created_at: datetime
    unit: str = "millicredit"
    object: str = "customer"


class CustomerList(msgspec.Struct):
    data: list[CustomerOut]
    next_cursor: str | None
    object: str = "list"


class CreditMove(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(gt=0, le=10**15)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class CreditMoveOut(msgspec.Struct):
    id: str
    customer_id: str
    #: `to_customer` (a grant from the tenant's wallet) or `to_tenant` (taken back).
    direction: Literal["to_customer", "to_tenant"]
    amount: int
    reason: str | None
    #: Available balances after the move.
    customer_available: int
    tenant_available: int
    created_at: datetime
    unit: str = "millicredit"
    object: str = "credit_move"


def _snapshot(customer: Customer) -> dict[str, object]:
    return {"external_id": customer.external_id, "tier": customer.tier,
            "monthly_budget_mc": customer.monthly_budget_mc}


async def _render(runtime: Runtime, tenant_id: str, rows: list[Customer]) -> list[CustomerOut]:
    ids = [c.id for c in rows]
    async with runtime.db.session() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        spend = await budgets.month_spend(session, tenant_id, Generation.customer_id, ids,
                                          utcnow())
        held = (await ledger.customer_balances(session, tenant_id=tenant_id, customer_ids=ids)
                if tenant.billing_mode == wallets.MEDIAHUB else None)
    out = []
    for c in rows:
        balance = None
        if held is not None:
            b = held.get(c.id)
            balance = CustomerBalance(available=b.available_mc if b else 0,
                                 pending=b.pending_mc if b else 0,
                                 posted=b.posted_mc if b else 0)
        out.append(CustomerOut(id=c.id, external_id=c.external_id, tier=c.tier,
                               monthly_budget_mc=c.monthly_budget_mc,
                               month_spend_mc=spend.get(c.id, 0), balance=balance,
                               created_at=c.created_at))
    return out


async def list_customers(runtime: Runtime, tenant_id: str, *, q: str | None,
                         tier: str | None, limit: int, cursor: str | None) -> CustomerList:
    """A page of the tenant's customers, newest first: those whose own id starts with `q`
    (case-insensitive) and of `tier`, when given."""
    async with runtime.db.session() as session:
        rows, next_cursor = await customer_rows.search(session, tenant_id, q=q, tier=tier,
                                                       limit=limit, cursor=cursor)
    return CustomerList(data=await _render(runtime, tenant_id, rows), next_cursor=next_cursor)


async def read_customer(runtime: Runtime, tenant_id: str, ref: str) -> CustomerOut:
    """One of the tenant's customers, by our id or the tenant's own."""
    async with runtime.db.session() as session:
        customer = await customer_rows.get_customer(session, tenant_id, ref)
    return (await _render(runtime, tenant_id, [customer]))[0]


async def create_customer(runtime: Runtime, tenant_id: str, body: CustomerCreate, *,
                          actor: str) -> CustomerOut:
    """Create a customer before its first request (audited `customer.created`)."""
    async with runtime.db.transaction() as session:
        await tenants.get_tenant(session, tenant_id)
        customer = await customer_rows.create_customer(session, tenant_id, body)
        await audit.record(session, tenant_id=tenant_id, actor=actor,
                           action="customer.created", target_type="customer",
                           target_id=customer.id, after=_snapshot(customer))
    return (await _render(runtime, tenant_id, [customer]))[0]


async def update_customer(runtime: Runtime, tenant_id: str, ref: str, body: CustomerUpdate, *,
                          actor: str) -> CustomerOut:
    """Change a customer's tier or monthly budget (audited `customer.updated`). The tier
    prices the customer's next estimate, reservation and settle (this process's tenant
    views forget the tenant at once; other processes within seconds); the budget applies to
    the next submit."""
    async with runtime.db.transaction() as session:
        customer = await customer_rows.get_customer(session, tenant_id, ref)
        before = _snapshot(customer)
        customer = await customer_rows.update_customer(session, tenant_id, ref, body)
        await audit.record(session, tenant_id=tenant_id, actor=actor,
                           action="customer.updated", target_type="customer",
                           target_id=customer.id, before=before, after=_snapshot(customer))
    runtime.tenant_views.forget(tenant_id)
    return (await _render(runtime, tenant_id, [customer]))[0]


async def move_credits(runtime: Runtime, tenant_id: str, ref: str, body: CreditMove,
                       idempotency_key: str, *, take_back: bool, actor: str) -> CreditMoveOut:
    """Move credits from the tenant's wallet to a customer's (`take_back`: the other way),
    posted at once, once per idempotency key (a repeat returns the first move; the same key
    for another move is a 409). Only in the `mediahub` billing mode (else 409
    `billing_mode_self`). A wallet short of the amount refuses it: 402
    `insufficient_credits`. Audited `credits.moved_to_customer` / `credits.taken_back`."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        if tenant.billing_mode != wallets.MEDIAHUB:
            raise Conflict("this tenant bills its customers itself: customers have no wallet "
                           "here (billing_mode 'self')", code="billing_mode_self")
        customer = await customer_rows.get_customer(session, tenant_id, ref)
        tenant_wallet = await ledger.account_id(session, tenant_id, ledger.TENANT_WALLET)
        customer_wallet = await ledger.customer_wallet(session, tenant_id, customer.id)
        source, target = ((customer_wallet, tenant_wallet) if take_back
                          else (tenant_wallet, customer_wallet))
        key = f"cmove:{tenant_id}:{idempotency_key}"
        repeat = await session.scalar(select(Transfer.id).where(Transfer.idempotency_key == key))
        transfer = await ledger.move(
            session, tenant_id=tenant_id, from_account=source, to_account=target,
            amount_mc=body.amount, idempotency_key=key, reason=body.reason,
            kind=TAKE_BACK_KIND if take_back else GRANT_KIND)
        direction: Literal["to_customer", "to_tenant"] = (
            "to_tenant" if take_back else "to_customer")
        if repeat is None:
            await audit.record(
                session, tenant_id=tenant_id, actor=actor,
                action="credits.taken_back" if take_back else "credits.moved_to_customer",
                target_type="customer", target_id=customer.id,
                after={"transfer_id": transfer.id, "direction": direction,
                       "amount_mc": transfer.amount_mc, "reason": transfer.reason})
        held_customer = await ledger.balance(session, tenant_id=tenant_id,
                                             account=customer_wallet)
        held_tenant = await ledger.balance(session, tenant_id=tenant_id, account=tenant_wallet)
    return CreditMoveOut(id=transfer.id, customer_id=customer.id, direction=direction,
                         amount=transfer.amount_mc, reason=transfer.reason,
                         customer_available=held_customer.available_mc,
                         tenant_available=held_tenant.available_mc,
                         created_at=transfer.created_at)
