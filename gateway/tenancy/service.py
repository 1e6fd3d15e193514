"""Tenancy use cases: tenants and their API keys, as the operator API and the CLI manage
them. Each function is one transaction; caches of this process forget a changed tenant or a
revoked key at once (other processes within seconds)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from billing import ledger
from gateway.core.auth import key_cache
from gateway.core.runtime import Runtime
from gateway.generations import budgets
from gateway.generations.models import Generation
from gateway.providers.allowed import check_caps, check_routing
from tenants import audit, keys
from tenants import service as tenants
from tenants.kernel.db import utcnow
from tenants.keys import KeyUpdate
from tenants.models import ApiKey, Tenant
from tenants.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)


class TenantList(msgspec.Struct):
    data: list[TenantOut]
    next_cursor: str | None
    object: str = "list"


class KeyList(msgspec.Struct):
    data: list[KeyOut]
    next_cursor: str | None = None
    object: str = "list"


def tenant_out(tenant: Tenant, domains: list[str]) -> TenantOut:
    return TenantOut(id=tenant.id, name=tenant.name, slug=tenant.slug, domains=domains,
                     branding=tenant.branding, pricing=tenant.pricing,
                     rate_limits=tenant.rate_limits, billing_mode=tenant.billing_mode,
                     low_balance_threshold_mc=tenant.low_balance_threshold_mc,
                     created_at=tenant.created_at,
                     routing=tenant.routing, cache=tenant.cache, caps=tenant.caps,
                     time_zone=tenant.time_zone,
                     analytics=tenant.analytics, suspended_at=tenant.suspended_at,
                     suspension_reason=tenant.suspension_reason,
                     suggestions=tenant.suggestions, media=tenant.media)


def key_out(key: ApiKey, month_spend_mc: int | None = None) -> KeyOut:
    return KeyOut(id=key.id, name=key.name, prefix=key.prefix, scopes=key.scopes,
                  customer_id=key.customer_id, created_at=key.created_at,
                  revoked_at=key.revoked_at, monthly_budget_mc=key.monthly_budget_mc,
                  rate_limit=keys.rate_limit_of(key), month_spend_mc=month_spend_mc)


async def create_tenant(runtime: Runtime, body: TenantCreate, *,
                        actor: str = "operator") -> TenantOut:
    """Create a tenant with its ledger accounts in one transaction, audited
    (`tenant.created` by `actor`)."""
    check_routing(runtime, body.routing)
    check_caps(runtime, body.caps)
    async with runtime.db.transaction() as session:
        tenant = await tenants.create_tenant(session, body)
        await ledger.open_tenant_accounts(session, tenant.id)
        out = tenant_out(tenant, sorted(body.domains))
        await audit.record(session, tenant_id=tenant.id, actor=actor, action="tenant.created",
                           target_type="tenant", target_id=tenant.id, after=out)
        return out


async def list_tenants(runtime: Runtime, *, limit: int, cursor: str | None) -> TenantList:
    async with runtime.db.session() as session:
        rows = await tenants.list_tenants(session, limit=limit, cursor=cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        data = [tenant_out(t, await tenants.tenant_domains(session, t.id)) for t in rows]
    return TenantList(data=data, next_cursor=rows[-1].id if more and rows else None)


async def read_tenant(runtime: Runtime, tenant_id: str) -> TenantOut:
    async with runtime.db.session() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        return tenant_out(tenant, await tenants.tenant_domains(session, tenant_id))


async def update_tenant(runtime: Runtime, tenant_id: str, body: TenantUpdate, *,
                        actor: str = "operator",
                        check: Callable[[Tenant], None] | None = None) -> TenantOut:
    """Change a tenant; its new limits and settings apply at once in this process. Called by
    the operator's `PATCH /admin/v1/tenants/{id}` and the tenant's own `PATCH /v1/tenant`
    (which passes `check`: its caps, run on the row inside the transaction before the
    change). Audited as `tenant.updated` by `actor` with before and after."""
    if body.routing is not msgspec.UNSET:
        check_routing(runtime, body.routing)
    if body.caps is not msgspec.UNSET:
        check_caps(runtime, body.caps)
    async with runtime.db.transaction() as session:
        current = await tenants.get_tenant(session, tenant_id)
        if check is not None:
            check(current)
        domains = await tenants.tenant_domains(session, tenant_id)
        before = audit.snapshot(tenant_out(current, domains))
        tenant = await tenants.update_tenant(session, tenant_id, body)
        out = tenant_out(tenant, await tenants.tenant_domains(session, tenant_id))
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="tenant.updated",
                           target_type="tenant", target_id=tenant_id,
                           before=_changed(before, audit.snapshot(out), keep=True),
                           after=_changed(before, audit.snapshot(out), keep=False))
    runtime.limiter.forget(tenant_id)
    runtime.tenant_views.forget(tenant_id)
    return out


def _changed(before: dict[str, object], after: dict[str, object], *,
              keep: bool) -> dict[str, object]:
    """The fields that differ between two tenant snapshots, as they were (`keep`) or are
    now: the audit log shows what a change changed, not the whole tenant twice."""
    source = before if keep else after
    return {k: source.get(k) for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)}


async def create_key(runtime: Runtime, tenant_id: str, body: KeyCreate, *,
                     actor: str = "operator") -> KeyCreated:
    """A new API key (the operator's, the CLI's or the tenant's own `POST /v1/keys`); the
    answer is the only place its secret ever appears. Audited as `key.created` by `actor`."""
    async with runtime.db.transaction() as session:
        key, secret = await tenants.create_key(session, tenant_id, body)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="key.created",
                           target_type="api_key", target_id=key.id, after=key_out(key))
        return KeyCreated(id=key.id, key=secret, prefix=key.prefix, name=key.name,
                          scopes=key.scopes, customer_id=key.customer_id,
                          created_at=key.created_at, monthly_budget_mc=key.monthly_budget_mc,
                          rate_limit=keys.rate_limit_of(key))


async def list_keys(runtime: Runtime, tenant_id: str, *, limit: int,
                    cursor: str | None) -> KeyList:
    """A page of a tenant's keys, newest first, no secrets, each with what its generations
    charged or hold this calendar month (UTC)."""
    async with runtime.db.session() as session:
        await tenants.get_tenant(session, tenant_id)
        rows, next_cursor = await keys.page_keys(session, tenant_id, limit=limit,
                                                 cursor=cursor)
        spend = await budgets.month_spend(session, tenant_id, Generation.api_key_id,
                                          [k.id for k in rows], utcnow())
    return KeyList(data=[key_out(k, spend.get(k.id, 0)) for k in rows],
                   next_cursor=next_cursor)


async def read_key(runtime: Runtime, tenant_id: str, key_id: str) -> KeyOut:
    """One of a tenant's keys (no secret), with this month's spend."""
    async with runtime.db.session() as session:
        key = await keys.get_key(session, tenant_id, key_id)
        spend = await budgets.month_spend(session, tenant_id, Generation.api_key_id,
                                          [key.id], utcnow())
    return key_out(key, spend.get(key.id, 0))


async def update_key(runtime: Runtime, tenant_id: str, key_id: str, body: KeyUpdate, *,
                     actor: str) -> KeyOut:
    """Change a key's name, monthly budget or own rate limit (audited `key.updated`); the
    budget applies to the next submit, the rate limit at once in this process (the key
    cache forgets the key), within seconds on other replicas."""
    async with runtime.db.transaction() as session:
        key = await keys.get_key(session, tenant_id, key_id)
        before = key_out(key)
        key = await keys.update_key(session, tenant_id, key_id, body)
        after = key_out(key)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="key.updated",
                           target_type="api_key", target_id=key.id, before=before,
                           after=after)
    key_cache.evict_key_id(key_id)
    return await read_key(runtime, tenant_id, key_id)


async def revoke_key(runtime: Runtime, tenant_id: str, key_id: str, *,
                     actor: str = "operator") -> KeyOut:
    """Revoke a key: refused at once here, within seconds on every other replica. Audited
    `key.revoked` (once: revoking a revoked key changes nothing)."""
    async with runtime.db.transaction() as session:
        before = key_out(await keys.get_key(session, tenant_id, key_id))
        key = await tenants.revoke_key(session, tenant_id, key_id)
        if before.revoked_at is None:
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="key.revoked", target_type="api_key",
                               target_id=key.id, before=before, after=key_out(key))
    key_cache.evict_key_id(key.id)
    return key_out(key)
