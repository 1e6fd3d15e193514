"""Integer pricing: provider cost (USD micros) → wholesale → retail, in millicredits.

1 credit = 1000 millicredits = US$0.01 at wholesale, so 1 millicredit = 10 USD micros.
Markups are basis points (10000 = +100 %): the operator's per media type make the wholesale
price, the tenant's per media type and customer tier make the retail price. Every step rounds
up to the next millicredit, so rounding never loses the platform or the tenant money; a minimum
charge applies per generation (the operator's on wholesale, optionally the tenant's on retail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenants.schemas import TenantPricing

USD_MICROS_PER_MILLICREDIT = 10
BPS = 10_000
DEFAULT_PLATFORM_MARKUP_BPS = 3_000
MIN_CHARGE_MC = 100


def div_ceil(numerator: int, denominator: int) -> int:
    """Integer division rounded up (for non-negative numerators)."""
    return -(-numerator // denominator)


def apply_markup(amount_mc: int, markup_bps: int) -> int:
    """`amount_mc` raised by `markup_bps`, rounded up."""
    return div_ceil(amount_mc * (BPS + markup_bps), BPS)


@dataclass(frozen=True, slots=True)
class Price:
    cost_usd_micros: int
    wholesale_mc: int
    retail_mc: int


def _by_type(table: Mapping[Any, int], media_type: str, default: int) -> int:
    return int(table.get(media_type, table.get("default", default)))


@dataclass(frozen=True, slots=True)
class Markups:
    """The markups one price applies, in basis points: the operator's for the media type
    (cost → wholesale), the tenant's for the media type and for the customer's tier
    (wholesale → retail, added together)."""

    platform_bps: int
    type_bps: int
    tier_bps: int


def markups(media_type: str, tenant_pricing: TenantPricing, tier: str | None = None,
            platform_markup_bps: Mapping[str, int] | None = None) -> Markups:
    """The markups `price` applies to a generation of `media_type` for a customer of `tier`;
    also read by the pricing worked example to show them."""
    return Markups(
        platform_bps=_by_type(platform_markup_bps or {}, media_type,
                              DEFAULT_PLATFORM_MARKUP_BPS),
        type_bps=_by_type(tenant_pricing.markup_bps, media_type, 0),
        tier_bps=(tenant_pricing.tier_markup_bps.get(tier, 0) if tier is not None else 0))


def calculate_markup(base_cost_mc: int, service_type: str, user_tier: str | None,
                     tenant_pricing: TenantPricing) -> int:
    """The retail price of `base_cost_mc` (wholesale) for a customer of `user_tier`.

    The tenant's markup for the media type (or its `default`) plus its markup for the tier.
    """
    found = markups(service_type, tenant_pricing, user_tier)
    return apply_markup(base_cost_mc, found.type_bps + found.tier_bps)


def price(cost_usd_micros: int, *, media_type: str, tenant_pricing: TenantPricing,
          tier: str | None = None,
          platform_markup_bps: Mapping[str, int] | None = None) -> Price:
    """Price one generation; called at estimate, reserve and settle time alike."""
    if cost_usd_micros < 0:
        raise ValueError("cost must not be negative")
    markup = markups(media_type, tenant_pricing, tier, platform_markup_bps).platform_bps
    # One rounding from USD micros to millicredits, not two.
    wholesale = div_ceil(cost_usd_micros * (BPS + markup), BPS * USD_MICROS_PER_MILLICREDIT)
    wholesale = max(wholesale, MIN_CHARGE_MC)
    retail = max(calculate_markup(wholesale, media_type, tier, tenant_pricing),
                 tenant_pricing.min_charge_mc, wholesale)
    return Price(cost_usd_micros=cost_usd_micros, wholesale_mc=wholesale, retail_mc=retail)
