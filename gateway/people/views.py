"""Users and sessions as the API shows them (one renderer for every route)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.people.schemas import SessionOut, UserOut
from tenants.models import Customer
from tenants.users.models import User, UserSession


async def external_ids(session: AsyncSession, tenant_id: str,
                       users: Sequence[User]) -> dict[str, str]:
    """The tenant's own ids of the customers these users are linked to (one query)."""
    ids = {u.customer_id for u in users if u.customer_id is not None}
    if not ids:
        return {}
    rows = await session.execute(select(Customer.id, Customer.external_id).where(
        Customer.tenant_id == tenant_id, Customer.id.in_(ids)))
    return {row.id: row.external_id for row in rows}


def user_out(user: User, external: dict[str, str]) -> UserOut:
    return UserOut(id=user.id, email=user.email, role=user.role,
                   customer_id=external.get(user.customer_id or ""),
                   email_verified=user.email_verified_at is not None,
                   created_at=user.created_at, disabled_at=user.disabled_at,
                   locale=user.locale)


async def render_user(session: AsyncSession, user: User) -> UserOut:
    return user_out(user, await external_ids(session, user.tenant_id, [user]))


def session_out(row: UserSession, current_id: str | None) -> SessionOut:
    return SessionOut(id=row.id, created_at=row.created_at, last_seen_at=row.last_seen_at,
                      expires_at=row.expires_at, user_agent=row.user_agent,
                      ip_address=row.ip_address, method=row.method,
                      current=row.id == current_id, revoked_at=row.revoked_at)
