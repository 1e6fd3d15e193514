"""Integer pricing: provider cost (USD micros) → wholesale → retail, in millicredits.

1 credit = 1000 millicredits = US$0.01 at wholesale, so 1 millicredit = 10 USD micros.
Markups are basis points (10000 = +100 %). Every step rounds up to the next millicredit, so
rounding never loses the platform or the tenant money; a minimum charge applies per generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USD_MICROS_PER_MILLICREDIT = 10
BPS = 10_000
DEFAULT_PLATFORM_MARKUP_BPS = 3_000
MIN_CHARGE_MC = 100


def div_ceil(numerator: int, denominator: int) -> int:
    """Integer division rounded up (for non-negative numerators)."""
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class Price:
    cost_usd_micros: int
    wholesale_mc: int
    retail_mc: int


def _markup_bps(pricing: dict[str, Any], media_type: str, tier: str | None) -> int:
    by_type = pricing.get("markup_bps", {})
    bps = int(by_type.get(media_type, by_type.get("default", 0)))
    if tier is not None:
        bps += int(pricing.get("tier_markup_bps", {}).get(tier, 0))
    return bps


def price(cost_usd_micros: int, *, media_type: str, tenant_pricing: dict[str, Any],
          tier: str | None = None,
          platform_markup_bps: int = DEFAULT_PLATFORM_MARKUP_BPS) -> Price:
    """Price one generation; called at estimate, reserve and settle time alike."""
    if cost_usd_micros < 0:
        raise ValueError("cost must not be negative")
    wholesale = div_ceil(cost_usd_micros * (BPS + platform_markup_bps),
                         BPS * USD_MICROS_PER_MILLICREDIT)
    wholesale = max(wholesale, MIN_CHARGE_MC)
    retail = div_ceil(wholesale * (BPS + _markup_bps(tenant_pricing, media_type, tier)), BPS)
    return Price(cost_usd_micros=cost_usd_micros, wholesale_mc=wholesale, retail_mc=retail)
