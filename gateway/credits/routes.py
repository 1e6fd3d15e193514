"""`/v1/credits`: the caller's balance and history (API.md, "Credits")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromQuery

from billing import history, ledger, wallets
from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.http import acting_customer, identify, require_scope
from gateway.core.runtime import Runtime
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


async def caller_wallet(request: Request[Any, Any, Any], runtime: Runtime) -> tuple[str, str]:
    """(tenant id, wallet id) of the caller: its customer wallet in `mediahub` billing mode,
    the tenant's wallet for a tenant key. Needs the `billing` scope."""
    identity = await identify(request, runtime)
    require_scope(identity, "billing")
    customer_id = await acting_customer(request, runtime, identity)
    async with runtime.db.transaction() as session:
        tenant = await session.get(Tenant, identity.tenant_id)
        if tenant is None:
            raise NotFound("no such tenant", code="tenant_not_found")
        account = await wallets.own_wallet(session, tenant, customer_id)
    return identity.tenant_id, account


class CreditsController(Controller):
    path = "/v1/credits"
    tags = ["credits"]

    @get("/balance", summary="The calling wallet's balance")
    async def balance(self, request: Request[Any, Any, Any], runtime: RuntimeDep) -> BalanceOut:
        tenant_id, account = await caller_wallet(request, runtime)
        async with runtime.db.session() as session:
            held = await ledger.balance(session, tenant_id=tenant_id, account=account)
        return BalanceOut(available=held.available_mc, pending=held.pending_mc,
                          posted=held.posted_mc)

    @get("/transactions", summary="The calling wallet's history, newest first")
    async def transactions(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                           limit: FromQuery[int | None] = None,
                           cursor: FromQuery[str | None] = None) -> TransactionList:
        tenant_id, account = await caller_wallet(request, runtime)
        async with runtime.db.session() as session:
            lines, next_cursor = await history.wallet_lines(
                session, tenant_id=tenant_id, account=account, limit=page_limit(limit),
                cursor=cursor)
        return TransactionList(
            data=[TransactionOut(id=line.id, kind=line.kind, amount=line.amount_mc,
                                 status=line.status, generation_id=line.generation_id,
                                 created_at=line.created_at) for line in lines],
            next_cursor=next_cursor,
        )
