"""A tenant's API keys as its owners and the operator manage them: read, page, change.

Creating, revoking and authenticating keys are in `tenants.service`. Every function takes the
tenant id and filters by it: another tenant's key is `NotFound`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.kernel.errors import NotFound
from tenants.kernel.pagination import keyset, page
from tenants.models import ApiKey
from tenants.schemas import KeyRateLimit, Millicredits


class KeyUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """What may change on a key (scopes and customer binding may not: make a new key).
    `null` removes a budget or a key's own rate limit."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET)
    monthly_budget_mc: Millicredits | msgspec.UnsetType | None = msgspec.UNSET
    rate_limit: KeyRateLimit | msgspec.UnsetType | None = msgspec.UNSET


def rate_limit_of(key: ApiKey) -> KeyRateLimit | None:
    """The key's own rate limit, or None (the tenant's per-key default)."""
    if key.rate_limit_rpm is None:
        return None
    return KeyRateLimit(requests_per_minute=key.rate_limit_rpm,
                        burst=key.rate_limit_burst or 1)


async def get_key(session: AsyncSession, tenant_id: str, key_id: str) -> ApiKey:
    """A tenant's key by id; `NotFound` for an unknown or another tenant's key."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound("no such key", code="key_not_found")
    return key


async def page_keys(session: AsyncSession, tenant_id: str, *, limit: int,
                    cursor: str | None) -> tuple[list[ApiKey], str | None]:
    """A page of a tenant's keys, newest first (revoked ones included), and the next
    page's cursor (None at the end)."""
    query = keyset(select(ApiKey).where(ApiKey.tenant_id == tenant_id), ApiKey.created_at,
                   ApiKey.id, cursor, limit)
    return page(list(await session.scalars(query)), limit)


async def update_key(session: AsyncSession, tenant_id: str, key_id: str,
                     body: KeyUpdate) -> ApiKey:
    """Change a key's name, monthly budget or own rate limit; returns the key."""
    key = await get_key(session, tenant_id, key_id)
    if body.name is not msgspec.UNSET:
        key.name = body.name
    if body.monthly_budget_mc is not msgspec.UNSET:
        key.monthly_budget_mc = body.monthly_budget_mc
    if body.rate_limit is not msgspec.UNSET:
        rate = body.rate_limit
        key.rate_limit_rpm = rate.requests_per_minute if rate is not None else None
        key.rate_limit_burst = rate.burst if rate is not None else None
    await session.flush()
    return key
