"""Which wallets pay, by the tenant's billing mode (issue "A ledger that cannot lose…").

- `self`: the tenant bills its customers itself; only the tenant wallet pays, at wholesale.
- `mediahub`: a customer's wallet pays retail (to the tenant's revenue) and the tenant wallet
  pays wholesale (to the platform's); without a customer, only the tenant wallet pays. A
  generation for a team (docs/teams.md) takes its retail from the team's wallet instead of
  the member's; teams exist only in this mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from tenants.kernel.errors import NotFound
from tenants.models import Tenant

MEDIAHUB = "mediahub"


@dataclass(frozen=True, slots=True)
class Payers:
    tenant_wallet: str
    customer_wallet: str | None


async def payers(session: AsyncSession, tenant: Tenant, customer_id: str | None,
                 team_id: str | None = None) -> Payers:
    """The wallets that pay for a generation by this tenant (and customer, or team): the
    retail payer (`customer_wallet`) is the team's wallet for a team's generation."""
    tenant_wallet = await ledger.account_id(session, tenant.id, ledger.TENANT_WALLET)
    customer_wallet = None
    if team_id is not None and tenant.billing_mode == MEDIAHUB:
        customer_wallet = await ledger.team_wallet(session, tenant.id, team_id)
    elif customer_id is not None and tenant.billing_mode == MEDIAHUB:
        customer_wallet = await ledger.customer_wallet(session, tenant.id, customer_id)
    return Payers(tenant_wallet=tenant_wallet, customer_wallet=customer_wallet)


async def own_wallet(session: AsyncSession, tenant: Tenant, customer_id: str | None) -> str:
    """The wallet a caller sees and tops up: its customer wallet, or the tenant's.

    A customer of a tenant that bills its customers itself has no wallet here: `NotFound`,
    rather than a view of the tenant's money.
    """
    if customer_id is None:
        return await ledger.account_id(session, tenant.id, ledger.TENANT_WALLET)
    if tenant.billing_mode != MEDIAHUB:
        raise NotFound("this tenant bills its customers itself; customers have no wallet here",
                       code="customer_wallet_not_found")
    return await ledger.customer_wallet(session, tenant.id, customer_id)
