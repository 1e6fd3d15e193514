"""`GET`/`PATCH /v1/tenant`: a tenant's owners and admins change its settings themselves,
within the operator's ceilings (`TenantCaps`). The change goes through the operator's own
path (`service.update_tenant`: one transaction, audited, applied at once in this process);
this module only decides what the tenant may send.

Operator-only, never settable here: `slug`, `billing_mode` (the operator's deal with the
reseller), `caps`, and the operator's `domains` list (the tenant adds domains through
`/v1/tenant/domains`, which verifies them).
"""

from __future__ import annotations

import msgspec

from gateway.core.runtime import Runtime
from gateway.providers.allowed import check_routing, may_allow
from gateway.tenancy.service import read_tenant, update_tenant
from tenants.branding import BrandingIn
from tenants.kernel.errors import InvalidRequest
from tenants.models import Tenant
from tenants.schemas import (
    Millicredits,
    Name,
    RateLimitPolicy,
    TenantAnalytics,
    TenantCache,
    TenantCaps,
    TenantMedia,
    TenantOut,
    TenantPricing,
    TenantRouting,
    TenantSuggestions,
    TenantUpdate,
    TimeZone,
)


class TenantSelfUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """What a tenant's owners and admins may change; fields left out stay as they are. Each
    object sent replaces that object as a whole (as the operator's PATCH does)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    branding: BrandingIn | msgspec.UnsetType = msgspec.UNSET
    pricing: TenantPricing | msgspec.UnsetType = msgspec.UNSET
    rate_limits: RateLimitPolicy | msgspec.UnsetType = msgspec.UNSET
    routing: TenantRouting | msgspec.UnsetType = msgspec.UNSET
    cache: TenantCache | msgspec.UnsetType = msgspec.UNSET
    #: `credits.low` fires when the tenant's wallet falls below this (the tenant's own alert).
    low_balance_threshold_mc: Millicredits | msgspec.UnsetType = msgspec.UNSET
    #: IANA name; analytics count days in it (422 `invalid_time_zone` if unknown).
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    #: The thresholds of the tenant's customer segments (docs/analytics-segments.md).
    analytics: TenantAnalytics | msgspec.UnsetType = msgspec.UNSET
    #: Model-written prompt suggestions (docs/suggestions.md).
    suggestions: TenantSuggestions | msgspec.UnsetType = msgspec.UNSET
    #: Permanent CDN links for its media where the operator runs a CDN (docs/operations.md).
    media: TenantMedia | msgspec.UnsetType = msgspec.UNSET


def check_suggestion_model(runtime: Runtime, suggestions: TenantSuggestions) -> None:
    """Refuse (422 `unknown_model`, param `suggestions.model`) a suggestion model that is not
    `<provider>:<model>` of an installed text provider offering that model; called before
    the tenant's settings change."""
    if suggestions.model is None:
        return
    name, _, model = suggestions.model.partition(":")
    provider = runtime.plugins.get(name)
    if provider is None or "text" not in provider.media_types or (
            provider.models and model not in provider.models):
        raise InvalidRequest(f"{suggestions.model} is not a text model of an installed "
                             "provider", code="unknown_model", param="suggestions.model")


_SCALAR_LIMITS = ("requests_per_minute", "burst", "key_requests_per_minute", "key_burst",
                  "daily_spend_cap_mc")


def _over_cap(param: str, value: int, cap: int) -> InvalidRequest:
    shown = "0 (no limit)" if value == 0 else str(value)
    return InvalidRequest(f"{param} is {shown}; the operator's ceiling is {cap}",
                          code="over_cap", param=param, extra={"cap": cap})


def check_limits(limits: RateLimitPolicy, caps: TenantCaps) -> None:
    """Refuse (422 `over_cap`, `param` naming the field) a limit above its ceiling, or 0
    ("no limit") where there is a ceiling. Left-out limits (the platform default) pass."""
    for field in _SCALAR_LIMITS:
        value: int | None = getattr(limits, field)
        cap: int | None = getattr(caps, field)
        if value is not None and cap is not None and (value == 0 or value > cap):
            raise _over_cap(f"rate_limits.{field}", value, cap)
    if caps.concurrent_jobs is not None:
        for media_type, jobs in sorted(limits.concurrent_jobs.items()):
            if jobs == 0 or jobs > caps.concurrent_jobs:
                raise _over_cap(f"rate_limits.concurrent_jobs.{media_type}", jobs,
                                caps.concurrent_jobs)


def check_providers(runtime: Runtime, tenant: Tenant, routing: TenantRouting) -> None:
    """Refuse (422 `provider_not_permitted`) an allowed provider or a pinned `order` entry
    the operator does not let this tenant use."""
    for field, names in (("allowed_providers", routing.allowed_providers or []),
                         ("order", routing.order)):
        for index, name in enumerate(names):
            if not may_allow(runtime, tenant, name):
                raise InvalidRequest(f"the operator does not let this tenant use {name!r}",
                                     code="provider_not_permitted",
                                     param=f"routing.{field}[{index}]")


async def read_own_tenant(runtime: Runtime, tenant_id: str) -> TenantOut:
    """`GET /v1/tenant`: the tenant as the operator sees it (its caps included, read-only);
    it carries no secrets (provider keys live under `/v1/provider_keys`)."""
    return await read_tenant(runtime, tenant_id)


async def update_own_tenant(runtime: Runtime, tenant_id: str, actor: str,
                            body: TenantSelfUpdate) -> TenantOut:
    """`PATCH /v1/tenant`: check the body against the tenant's caps (inside the update's
    transaction) and apply it through the operator's path, audited as `actor`."""
    if body.routing is not msgspec.UNSET:
        check_routing(runtime, body.routing)
    if body.suggestions is not msgspec.UNSET:
        check_suggestion_model(runtime, body.suggestions)

    def within_caps(tenant: Tenant) -> None:
        if body.rate_limits is not msgspec.UNSET:
            check_limits(body.rate_limits, tenant.caps)
        if body.routing is not msgspec.UNSET:
            check_providers(runtime, tenant, body.routing)

    update = TenantUpdate(name=body.name, branding=body.branding, pricing=body.pricing,
                          rate_limits=body.rate_limits, routing=body.routing,
                          cache=body.cache, suggestions=body.suggestions,
                          low_balance_threshold_mc=body.low_balance_threshold_mc,
                          time_zone=body.time_zone, analytics=body.analytics,
                          media=body.media)
    return await update_tenant(runtime, tenant_id, update, actor=actor, check=within_caps)
