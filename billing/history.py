"""A wallet's history as its owner sees it: one line per grant or reservation, newest first.

A reservation's line shows its outcome (pending, posted at the charged amount, voided); the
transfers that resolved it are folded into that line rather than listed on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing.models import PENDING, POST_PENDING, SINGLE, Transfer
from tenants.kernel.pagination import keyset, page


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    kind: str
    amount_mc: int
    status: str
    generation_id: str | None
    created_at: datetime


async def wallet_lines(session: AsyncSession, *, tenant_id: str, account: str, limit: int,
                       cursor: str | None) -> tuple[list[Line], str | None]:
    """One page of the wallet's lines and the cursor of the next page (None at the end)."""
    resolution = aliased(Transfer)
    query = (
        select(Transfer, resolution.phase, resolution.amount_mc)
        .outerjoin(resolution, resolution.pending_id == Transfer.id)
        .where(Transfer.tenant_id == tenant_id,
               Transfer.phase.in_((SINGLE, PENDING)),
               or_(Transfer.debit_account_id == account, Transfer.credit_account_id == account))
    )
    query = keyset(query, Transfer.created_at, Transfer.id, cursor, limit)
    lines = []
    for transfer, resolved_phase, resolved_amount in (await session.execute(query)).all():
        sign = 1 if transfer.credit_account_id == account else -1
        amount, status = transfer.amount_mc, "posted"
        if transfer.phase == PENDING:
            status = {None: "pending", POST_PENDING: "posted"}.get(resolved_phase, "voided")
            if resolved_phase == POST_PENDING:
                amount = resolved_amount
        lines.append(Line(id=transfer.id, kind=transfer.kind, amount_mc=sign * amount,
                          status=status, generation_id=transfer.generation_id,
                          created_at=transfer.created_at))
    return page(lines, limit)
