"""A generation made for a team (docs/teams.md): who may make one, what it counts against,
what it gives back, and whose team generations a customer may read. Called from the submit
(`mark`, then `take` in its unit of work, before the wallets are reserved), from
`lifecycle.end` (`give_back`, in the unit that ends it) and from the reads (`teams_of`). The
team's wallet itself is chosen by `billing.wallets.payers`."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.auth import Principal
from gateway.generations.models import Generation
from tenants.kernel.errors import InvalidRequest, PermissionDenied
from tenants.models import Tenant
from tenants.teams import allocations
from tenants.teams.models import SPENDERS, TeamMember

MEDIAHUB = "mediahub"


def mark(principal: Principal, generation: Generation) -> None:
    """Record the team a generation is made for (`principal.team_id`, resolved from
    `X-Team-Id` or the body's `team_id`); a viewer cannot spend: 403 `team_viewer`."""
    if principal.team_id is None:
        return
    if principal.team_role not in SPENDERS:
        raise PermissionDenied("a team viewer cannot spend the team's credits",
                               code="team_viewer", param="team_id")
    generation.team_id = principal.team_id


async def take(session: AsyncSession, tenant: Tenant, generation: Generation) -> None:
    """In the submit's unit, before the wallets: count the generation's retail price (what
    the team's wallet reserves) against the member's allocation for the month the row was
    created in (or in total), re-checking the membership and role. Raises 402
    `allocation_exceeded`, 403 `team_viewer` or 404 `team_not_found`."""
    if generation.team_id is None:
        return
    if tenant.billing_mode != MEDIAHUB or generation.customer_id is None:
        raise InvalidRequest("teams need the tenant's 'mediahub' billing mode",
                             code="teams_unavailable", param="team_id")
    generation.team_period = await allocations.take(
        session, tenant_id=tenant.id, team_id=generation.team_id,
        customer_id=generation.customer_id, amount_mc=generation.retail_mc,
        month=f"{generation.created_at:%Y-%m}")


async def give_back(session: AsyncSession, *, tenant_id: str, team_id: str | None,
                    customer_id: str | None, period: str | None, amount_mc: int) -> None:
    """In the unit that ends a team's generation: what it did not spend goes back to the
    member's allocation (see `allocations.give_back`)."""
    await allocations.give_back(session, tenant_id, team_id, customer_id, period, amount_mc)


def teams_of(principal: Principal) -> Select[str]:
    """The teams the principal's customer is a member of (any role, a viewer too): whose
    generations it may read by id."""
    return select(TeamMember.team_id).where(TeamMember.tenant_id == principal.tenant,
                                            TeamMember.customer_id == principal.customer_id,
                                            TeamMember.removed_at.is_(None))
