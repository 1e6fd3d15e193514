"""Credits use cases: the caller's wallet, its balance and history, and operator grants.

Called by the `/v1/credits` routes, the operator API and the CLI (`mediahub credits grant`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from sqlalchemy import select

from billing import history, ledger, wallets
from billing.models import Transfer
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from tenants import audit
from tenants import service as tenants
from tenants.kernel.errors import NotFound
from tenants.models import Tenant


class BalanceOut(msgspec.Struct):
    available: int
    pending: int
    posted: int
    unit: str = "millicredit"
    object: str = "balance"


class TransactionOut(msgspec.Struct):
    id: str
    kind: str
    amount: int
    status: str
    generation_id: str | None
    created_at: datetime
    unit: str = "millicredit"


class TransactionList(msgspec.Struct):
    data: list[TransactionOut]
    next_cursor: str | None
    object: str = "list"


class CreditGrant(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(gt=0, le=10**15)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    #: The tenant's own id for a customer: grant to that customer's wallet (`mediahub` mode).
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class GrantOut(msgspec.Struct):
    id: str
    tenant_id: str
    amount: int
    reason: str | None
    balance: int
    unit: str = "millicredit"
    object: str = "credit_grant"


async def caller_wallet(runtime: Runtime, principal: Principal) -> str:
    """The wallet the caller sees: its customer's in `mediahub` billing mode, else the
    tenant's."""
    async with runtime.db.transaction() as session:
        tenant = await session.get(Tenant, principal.tenant)
        if tenant is None:
            raise NotFound("no such tenant", code="tenant_not_found")
        return await wallets.own_wallet(session, tenant, principal.customer_id)


async def balance(runtime: Runtime, principal: Principal) -> BalanceOut:
    account = await caller_wallet(runtime, principal)
    async with runtime.db.session() as session:
        held = await ledger.balance(session, tenant_id=principal.tenant, account=account)
    return BalanceOut(available=held.available_mc, pending=held.pending_mc,
                      posted=held.posted_mc)


async def transactions(runtime: Runtime, principal: Principal, *, limit: int,
                       cursor: str | None) -> TransactionList:
    account = await caller_wallet(runtime, principal)
    async with runtime.db.session() as session:
        lines, next_cursor = await history.wallet_lines(
            session, tenant_id=principal.tenant, account=account, limit=limit, cursor=cursor)
    return TransactionList(
        data=[TransactionOut(id=line.id, kind=line.kind, amount=line.amount_mc,
                             status=line.status, generation_id=line.generation_id,
                             created_at=line.created_at) for line in lines],
        next_cursor=next_cursor,
    )


async def grant_credits(runtime: Runtime, tenant_id: str, body: CreditGrant,
                        idempotency_key: str, *, actor: str = "operator") -> GrantOut:
    """Grant credits to a tenant's (or one of its customers') wallet once per idempotency
    key; called by the operator API and the CLI. Audited `credits.granted` (once)."""
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        customer_id = None
        if body.customer_id is not None:
            customer = await tenants.customer_for(session, tenant_id, body.customer_id,
                                                  create=True)
            customer_id = customer.id if customer is not None else None
        wallet = await wallets.own_wallet(session, tenant, customer_id)
        key = f"grant:{tenant_id}:{idempotency_key}"
        repeat = await session.scalar(select(Transfer.id).where(Transfer.idempotency_key == key))
        transfer = await ledger.grant(
            session, tenant_id=tenant_id, to_account=wallet, amount_mc=body.amount,
            idempotency_key=key, reason=body.reason)
        if repeat is None:
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="credits.granted",
                               target_type="customer" if customer_id else "tenant",
                               target_id=customer_id or tenant_id,
                               after={"transfer_id": transfer.id,
                                      "amount_mc": transfer.amount_mc,
                                      "reason": transfer.reason})
        held = await ledger.balance(session, tenant_id=tenant_id, account=wallet)
    return GrantOut(id=transfer.id, tenant_id=tenant_id, amount=transfer.amount_mc,
                    reason=transfer.reason, balance=held.available_mc)
