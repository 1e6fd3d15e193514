"""Tenants, domains, customers and API keys: the services the admin API and auth call.

Every function that reads tenant-owned rows takes the tenant id and filters by it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.branding import Branding, with_assets
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from tenants.models import ApiKey, Customer, Domain, Tenant
from tenants.schemas import KeyCreate, TenantCreate, TenantUpdate

KEY_PREFIX = "mh"


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who a request is: resolved from its API key."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    customer_id: str | None
    #: The key's own rate (requests per minute, burst); None: the tenant's per-key default.
    rate_limit: tuple[int, int] | None = None
    #: Whether the key has a monthly budget: a submit without one reads no budget
    #: (`gateway.generations.budgets.admit`). True when unknown.
    budgeted: bool = True


def hash_secret(secret: str) -> str:
    # Key secrets are 256-bit random, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(raw: str) -> tuple[str, str] | None:
    """`mh_<prefix>_<secret>` → (prefix, secret), or None when it is not shaped like a key."""
    head, sep, rest = raw.partition("_")
    prefix, sep2, secret = rest.partition("_")
    if head != KEY_PREFIX or not sep or not sep2 or not prefix or not secret:
        return None
    return prefix, secret


async def create_tenant(session: AsyncSession, body: TenantCreate) -> Tenant:
    """Insert a tenant and its domains; raises `Conflict` when the slug or a domain is taken."""
    tenant = Tenant(id=new_id("ten"), name=body.name, slug=body.slug,
                    branding=with_assets(body.branding, Branding()),
                    pricing=body.pricing, rate_limits=body.rate_limits,
                    billing_mode=body.billing_mode,
                    low_balance_threshold_mc=body.low_balance_threshold_mc,
                    routing=body.routing, cache=body.cache, caps=body.caps,
                    suggestions=body.suggestions, media=body.media)
    try:
        async with session.begin_nested():
            session.add(tenant)
            await session.flush()
            for host in body.domains:
                # The operator is trusted: its domains serve at once.
                session.add(Domain(hostname=host, tenant_id=tenant.id, verified_at=utcnow()))
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("slug or domain already taken", code="tenant_exists",
                       param="slug") from exc
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant", code="tenant_not_found")
    return tenant


async def tenant_domains(session: AsyncSession, tenant_id: str) -> list[str]:
    rows = await session.scalars(
        select(Domain.hostname).where(Domain.tenant_id == tenant_id).order_by(Domain.hostname)
    )
    return list(rows)


async def list_tenants(session: AsyncSession, *, limit: int,
                       cursor: str | None) -> list[Tenant]:
    """Tenants by id, after `cursor` (an id); `limit` + 1 rows so callers can tell if more."""
    query = select(Tenant).order_by(Tenant.id).limit(limit + 1)
    if cursor:
        query = query.where(Tenant.id > cursor)
    return list(await session.scalars(query))


async def update_tenant(session: AsyncSession, tenant_id: str, body: TenantUpdate) -> Tenant:
    tenant = await get_tenant(session, tenant_id)
    for field in ("name", "pricing", "rate_limits", "billing_mode",
                  "low_balance_threshold_mc", "routing", "cache", "caps", "analytics",
                  "suggestions", "media"):
        value = getattr(body, field)
        if value is not msgspec.UNSET:
            setattr(tenant, field, value)
    if body.time_zone is not msgspec.UNSET:
        tenant.time_zone = check_time_zone(body.time_zone)
    if body.branding is not msgspec.UNSET:
        tenant.branding = with_assets(body.branding, tenant.branding)
    if body.domains is not msgspec.UNSET:
        try:
            async with session.begin_nested():
                await session.execute(delete(Domain).where(Domain.tenant_id == tenant_id))
                for host in body.domains:
                    session.add(Domain(hostname=host, tenant_id=tenant_id,
                                       verified_at=utcnow()))
                await session.flush()
        except IntegrityError as exc:
            raise Conflict("a domain is already taken", code="domain_taken",
                           param="domains") from exc
    tenant.updated_at = utcnow()
    await session.flush()
    return tenant


def check_time_zone(name: str) -> str:
    """`name` if it is an IANA zone this system knows (`Asia/Riyadh`, `UTC`), else 422
    `invalid_time_zone`. Called on every write of a tenant's time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError: a malformed name
        raise InvalidRequest(f"{name!r} is not an IANA time zone name",
                             code="invalid_time_zone", param="time_zone") from None
    return name


def normalize_host(hostname: str) -> str:
    """A `Host` header as a domain's hostname: port, case and a trailing dot ignored."""
    return hostname.split(":", 1)[0].strip().lower().rstrip(".")


async def tenant_for_host(session: AsyncSession, hostname: str) -> Tenant | None:
    """The tenant whose portal `hostname` serves (port and case ignored), or None. Only a
    verified domain counts: a pending one (added, not yet proven) resolves nobody."""
    return await session.scalar(
        select(Tenant).join(Domain, Domain.tenant_id == Tenant.id)
        .where(Domain.hostname == normalize_host(hostname), Domain.verified_at.is_not(None))
    )


async def domain_for_host(session: AsyncSession, hostname: str) -> Domain | None:
    """The domain row of `hostname`, verified or not (the portal tells a pending domain
    apart from an unknown host)."""
    return await session.get(Domain, normalize_host(hostname))


async def customer_for(session: AsyncSession, tenant_id: str, external_id: str,
                       *, create: bool) -> Customer | None:
    """A tenant's customer by the tenant's own id for them, created on first use if asked."""
    found = await session.scalar(
        select(Customer).where(Customer.tenant_id == tenant_id,
                               Customer.external_id == external_id)
    )
    if found is not None or not create:
        return found
    customer = Customer(id=new_id("cus"), tenant_id=tenant_id, external_id=external_id)
    try:
        async with session.begin_nested():
            session.add(customer)
            await session.flush()
    except IntegrityError:
        # A concurrent request created the same customer first.
        return await customer_for(session, tenant_id, external_id, create=False)
    return customer


async def create_key(session: AsyncSession, tenant_id: str, body: KeyCreate) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never shown again."""
    await get_tenant(session, tenant_id)
    if not body.scopes:
        raise InvalidRequest("a key needs at least one scope", param="scopes")
    customer_id = None
    if body.customer_id is not None:
        customer = await customer_for(session, tenant_id, body.customer_id, create=True)
        assert customer is not None
        customer_id = customer.id
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), tenant_id=tenant_id, name=body.name, prefix=prefix,
                 secret_hash=hash_secret(secret), scopes=sorted(set(body.scopes)),
                 customer_id=customer_id, monthly_budget_mc=body.monthly_budget_mc,
                 rate_limit_rpm=body.rate_limit.requests_per_minute if body.rate_limit else None,
                 rate_limit_burst=body.rate_limit.burst if body.rate_limit else None)
    session.add(key)
    await session.flush()
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


async def revoke_key(session: AsyncSession, tenant_id: str, key_id: str) -> ApiKey:
    """Mark a key revoked (idempotent); raises `NotFound` for another tenant's key."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
    )
    if key is None:
        raise NotFound("no such key", code="key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def list_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    return list(await session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    ))


async def authenticate(session: AsyncSession, raw_key: str) -> KeyIdentity:
    """Resolve a bearer key to its identity; raises `AuthenticationFailed` for any bad key.

    Called per request (behind the gateway's short-lived cache).
    """
    parts = split_key(raw_key)
    if parts is None:
        raise AuthenticationFailed("the API key is malformed")
    prefix, secret = parts
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    # Compare even when the prefix is unknown, so timing does not tell prefixes apart.
    expected = key.secret_hash if key is not None else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(secret)) or key is None:
        raise AuthenticationFailed("the API key is not valid")
    if key.revoked_at is not None:
        raise AuthenticationFailed("the API key was revoked", code="revoked_api_key")
    rate = ((key.rate_limit_rpm, key.rate_limit_burst or 1)
            if key.rate_limit_rpm is not None else None)
    return KeyIdentity(key_id=key.id, tenant_id=key.tenant_id, scopes=frozenset(key.scopes),
                       customer_id=key.customer_id, rate_limit=rate,
                       budgeted=key.monthly_budget_mc is not None)
