"""Request and response structs for tenants and keys (msgspec at the edges)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from plugins.routing.policy import Strategy, Weights
from plugins.vocabulary import MediaType
from tenants.branding import Branding, BrandingIn

Scope = Literal["generate", "read", "billing", "tenant_admin"]
ALL_SCOPES: tuple[Scope, ...] = ("generate", "read", "billing", "tenant_admin")

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
Hostname = Annotated[str, msgspec.Meta(
    pattern=r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
#: An IANA time zone name (`Asia/Riyadh`); checked against the zone database on write
#: (`tenants.service.check_time_zone`).
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


BillingMode = Literal["self", "mediahub"]
Bps = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
PriceKey = Literal["default", MediaType]
Tier = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Millicredits = Annotated[int, msgspec.Meta(ge=0, le=10**15)]


class TenantPricing(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tenant's retail pricing: markups in basis points (2500 = +25 %) over wholesale."""

    markup_bps: dict[PriceKey, Bps] = msgspec.field(default_factory=dict)
    tier_markup_bps: dict[Tier, Bps] = msgspec.field(default_factory=dict)
    min_charge_mc: Millicredits = 0


ProviderName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
#: A provider's name, or `*`: every installed provider, the offline engines included.
AllowedProvider = Annotated[str, msgspec.Meta(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,63})$")]


class TenantRouting(msgspec.Struct, forbid_unknown_fields=True):
    """How a tenant's generations pick a provider (plugins/routing/ has the scores).

    `cheapest`, `fastest`, `balanced` (default; `weights` tune it) or `pinned`: the providers
    named in `order` first, in that order, then (`include_others`, default true) every other
    capable provider ranked as `balanced`, or (false) none. `order` is only for `pinned`.
    A request's own `provider` always wins over this.

    `allowed_providers`: the providers the tenant's generations may route to and fail over
    through (`*`: every installed one, offline engines included); unset, the operator's
    `MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS`, and when that is empty every remote provider. An
    offline (local) engine serves only a tenant that names it here or in `order`, or a
    request that pins it. Names are checked against the installed providers when set.
    """

    strategy: Strategy = "balanced"
    order: Annotated[list[ProviderName], msgspec.Meta(max_length=32)] = msgspec.field(
        default_factory=list)
    include_others: bool = True
    weights: Weights | None = None
    allowed_providers: Annotated[list[AllowedProvider], msgspec.Meta(
        max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.strategy == "pinned" and not self.order:
            raise ValueError("the pinned strategy needs a non-empty `order`")
        if self.strategy != "pinned" and self.order:
            raise ValueError("`order` is only used by the pinned strategy")
        if len(set(self.order)) != len(self.order):
            raise ValueError("`order` names a provider twice")
        if self.weights is not None and self.strategy != "balanced":
            raise ValueError("`weights` are only used by the balanced strategy")
        if (self.allowed_providers is not None
                and len(set(self.allowed_providers)) != len(self.allowed_providers)):
            raise ValueError("`allowed_providers` names a provider twice")




Limit = Annotated[int, msgspec.Meta(ge=0, le=10**9)]


class RateLimitPolicy(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tenant's limits (`rate_limits` on the tenant). A field left out takes the platform's
    default (`MEDIAHUB_RATE_LIMIT_*`); 0 means no limit.

    `requests_per_minute`/`burst` limit the whole tenant, `key_requests_per_minute`/
    `key_burst` each of its API keys (GCRA: `burst` requests at once, then one every
    60/`requests_per_minute` seconds). `concurrent_jobs` caps generations queued or running
    at once per media type (`default` for the others); `daily_spend_cap_mc` caps what the
    tenant's wallet reserves per UTC day, in millicredits.
    """

    requests_per_minute: Limit | None = None
    burst: Limit | None = None
    key_requests_per_minute: Limit | None = None
    key_burst: Limit | None = None
    concurrent_jobs: dict[PriceKey, Limit] = msgspec.field(default_factory=dict)
    daily_spend_cap_mc: Millicredits | None = None




class CachePercent(msgspec.Struct, forbid_unknown_fields=True):
    """Charge this percentage of the full price for a cached answer."""

    percent: Annotated[int, msgspec.Meta(ge=0, le=100)]


#: `free` (default): a cached answer costs nothing; `full`: the price of a fresh one;
#: `{"percent": N}`: N % of it, rounded up to the millicredit.
CacheCharge = Literal["free", "full"] | CachePercent


class TenantCache(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tenant's result cache policy (gateway/generations/cache.py).

    `enabled: false` turns off both the cache and the coalescing of identical requests in
    flight. `ttl_s` is how long a finished result stays reusable (None:
    `MEDIAHUB_CACHE_TTL_S`). `charge` is what a cached answer is billed.
    """

    enabled: bool = True
    ttl_s: Annotated[int, msgspec.Meta(ge=1, le=90 * 86400)] | None = None
    charge: CacheCharge = "free"




class TenantSuggestions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Prompt suggestions written by a text model (docs/suggestions.md).

    `model`: `<provider>:<model>` of a text provider (`openai_chat:gpt-4o-mini`), or None
    (default) for curated and history suggestions only. Each model suggestion is a text
    generation charged to the caller. `wait_ms`: how long a suggestion request waits for
    the model before answering without it.
    """

    model: Annotated[str, msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        examples=["openai_chat:gpt-4o-mini"])] | None = None
    wait_ms: Annotated[int, msgspec.Meta(ge=100, le=30_000)] = 8000


class TenantMedia(msgspec.Struct, forbid_unknown_fields=True):
    """How the tenant's generated media is linked (docs/operations.md, "Managed services
    and a CDN").

    `public_links`: when the operator has put a CDN in front of the media bucket
    (`MEDIAHUB_MEDIA_CDN_BASE_URL`), output and preview links are permanent, unsigned CDN
    links instead of links that expire. Anyone holding such a link can fetch the media for
    as long as it is stored, so it is off by default; without a CDN it changes nothing.
    """

    public_links: bool = False


class TenantCaps(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The operator's ceilings on what a tenant's owners and admins set for themselves
    (`PATCH /v1/tenant`); set only through the operator API. A ceiling left out (None) is no
    ceiling. A rate limit of 0 means "no limit", so under a ceiling the tenant may not choose
    0; leaving a limit out (the platform default, which the operator sets) is always allowed.
    Lowering a ceiling does not change values already set: the operator sets those too.

    `allowed_providers`: the providers the tenant may allow, route to or pin in `order`
    (`*`: every installed one); None: the operator's `MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS`, or
    every remote provider when that is empty. It is also the tenant's allow list while the
    tenant has not set its own. `max_domains`: custom domains the tenant may add itself.
    """

    requests_per_minute: Limit | None = None
    burst: Limit | None = None
    key_requests_per_minute: Limit | None = None
    key_burst: Limit | None = None
    #: Ceiling of every media type's `concurrent_jobs`.
    concurrent_jobs: Limit | None = None
    daily_spend_cap_mc: Millicredits | None = None
    allowed_providers: Annotated[list[AllowedProvider], msgspec.Meta(
        max_length=64)] | None = None
    max_domains: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10


Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class TenantAnalytics(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The thresholds of a tenant's customer segments (gateway/analytics/segments.py,
    docs/analytics-segments.md). As of a moment T, a customer with a generation before T is
    exactly one of `new` (first generation less than `new_days` before T), `active` or
    `returning` (a generation less than `active_days` before T; `returning` when none in
    the `active_days` before that), `at_risk` (last generation `active_days` to
    `lapsed_days` before T) or `lapsed` (longer); `top_spenders` (the top
    `top_spender_percent` of customers by spend over the last `active_days`) overlaps them.
    """

    new_days: Days = 30
    active_days: Days = 30
    lapsed_days: Days = 90
    top_spender_percent: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10

    def __post_init__(self) -> None:
        if self.lapsed_days <= self.active_days:
            # Otherwise no customer could be at risk: active ends where lapsed begins.
            raise ValueError("`lapsed_days` must be greater than `active_days`")


def signup_open(branding: Branding) -> bool:
    """Whether anyone may sign up on the tenant's portal (`POST /v1/auth/signup`)."""
    return branding.open_signup


def shows_provider_names(branding: Branding) -> bool:
    """Whether the tenant shows upstream provider names to its customers; read when a
    customer is shown a generation, an estimate or the provider list."""
    return branding.show_provider_names


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    slug: Slug
    domains: list[Hostname] = msgspec.field(default_factory=list)
    branding: BrandingIn = msgspec.field(default_factory=BrandingIn)
    pricing: TenantPricing = msgspec.field(default_factory=TenantPricing)
    rate_limits: RateLimitPolicy = msgspec.field(default_factory=RateLimitPolicy)
    billing_mode: BillingMode = "self"
    low_balance_threshold_mc: Millicredits = 0
    routing: TenantRouting = msgspec.field(default_factory=TenantRouting)
    cache: TenantCache = msgspec.field(default_factory=TenantCache)
    caps: TenantCaps = msgspec.field(default_factory=TenantCaps)
    analytics: TenantAnalytics = msgspec.field(default_factory=TenantAnalytics)
    suggestions: TenantSuggestions = msgspec.field(default_factory=TenantSuggestions)
    media: TenantMedia = msgspec.field(default_factory=TenantMedia)


class TenantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    domains: list[Hostname] | msgspec.UnsetType = msgspec.UNSET
    branding: BrandingIn | msgspec.UnsetType = msgspec.UNSET
    pricing: TenantPricing | msgspec.UnsetType = msgspec.UNSET
    rate_limits: RateLimitPolicy | msgspec.UnsetType = msgspec.UNSET
    billing_mode: BillingMode | msgspec.UnsetType = msgspec.UNSET
    low_balance_threshold_mc: Millicredits | msgspec.UnsetType = msgspec.UNSET
    routing: TenantRouting | msgspec.UnsetType = msgspec.UNSET
    cache: TenantCache | msgspec.UnsetType = msgspec.UNSET
    caps: TenantCaps | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    analytics: TenantAnalytics | msgspec.UnsetType = msgspec.UNSET
    suggestions: TenantSuggestions | msgspec.UnsetType = msgspec.UNSET
    media: TenantMedia | msgspec.UnsetType = msgspec.UNSET


class TenantOut(msgspec.Struct):
    id: str
    name: str
    slug: str
    domains: list[str]
    branding: Branding
    pricing: TenantPricing
    rate_limits: RateLimitPolicy
    billing_mode: str
    low_balance_threshold_mc: int
    created_at: datetime
    routing: TenantRouting = msgspec.field(default_factory=TenantRouting)
    object: str = "tenant"
    cache: TenantCache = msgspec.field(default_factory=TenantCache)
    caps: TenantCaps = msgspec.field(default_factory=TenantCaps)
    #: Analytics count days in it (docs/analytics.md).
    time_zone: str = "UTC"
    analytics: TenantAnalytics = msgspec.field(default_factory=TenantAnalytics)
    #: When the operator suspended the tenant (None: not suspended): its keys and sessions
    #: are refused with 403 `tenant_suspended` until it is resumed.
    suspended_at: datetime | None = None
    suspension_reason: str | None = None
    suggestions: TenantSuggestions = msgspec.field(default_factory=TenantSuggestions)
    #: Whether its media gets permanent CDN links (`TenantMedia`).
    media: TenantMedia = msgspec.field(default_factory=TenantMedia)


class KeyRateLimit(msgspec.Struct, forbid_unknown_fields=True):
    """A key's own request rate (GCRA: `burst` at once, then `requests_per_minute`), used
    instead of the tenant's per-key default and always within the tenant's own limit."""

    requests_per_minute: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: list[Scope] = msgspec.field(default_factory=lambda: ["generate", "read", "billing"])
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    #: What the key's generations may reserve per calendar month (UTC); None: no budget.
    monthly_budget_mc: Millicredits | None = None
    #: The key's own request rate; None: the tenant's per-key default.
    rate_limit: KeyRateLimit | None = None


class KeyOut(msgspec.Struct):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    customer_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    object: str = "api_key"
    monthly_budget_mc: int | None = None
    rate_limit: KeyRateLimit | None = None
    #: What the key's generations charged or hold this calendar month (UTC).
    month_spend_mc: int | None = None
    unit: str = "millicredit"


class KeyCreated(msgspec.Struct):
    """The only response that carries the key's secret."""

    id: str
    key: str
    prefix: str
    name: str
    scopes: list[str]
    customer_id: str | None
    created_at: datetime
    object: str = "api_key"
    monthly_budget_mc: int | None = None
    rate_limit: KeyRateLimit | None = None


#: A tenant's staff roles, most powerful first, and `customer` (a portal user).
StaffRole = Literal["owner", "admin", "developer", "billing", "viewer"]
UserRole = Literal["owner", "admin", "developer", "billing", "viewer", "customer"]

#: The key scopes a signed-in user's session holds, by role: a session passes the same
#: `requires(...)` guards a key with these scopes would. A customer acts for its own customer
#: (and so its own wallet), never tenant-wide.
ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    "owner": frozenset(ALL_SCOPES),
    "admin": frozenset(ALL_SCOPES),
    "developer": frozenset({"generate", "read"}),
    "billing": frozenset({"read", "billing"}),
    "viewer": frozenset({"read"}),
    "customer": frozenset({"generate", "read", "billing"}),
}
