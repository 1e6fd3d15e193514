"""`POST /v1/tenant/pricing/example`: how a price is made, step by step, for a tenant's staff
checking their markups. It plans the request exactly as `POST /v1/generations/estimate` does
(`gateway.generations.planning.plan`, which prices with `billing.pricing.price`), so the
example and a customer's estimate of the same tier never disagree; the steps only explain the
numbers that call produced, with the markups `billing.pricing.markups` says it applied.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from billing.pricing import (
    BPS,
    MIN_CHARGE_MC,
    USD_MICROS_PER_MILLICREDIT,
    Markups,
    markups,
)
from gateway.generations.planning import plan
from gateway.generations.schemas import GenerationCreate
from gateway.generations.services import Services
from plugins.provider import model_of
from plugins.vocabulary import MediaType, Operation
from tenants.schemas import Tier

#: Priced when the example names no prompt: a provider that prices by length (speech) needs
#: some text, and a sentence is what a typical request sends.
#: The multiplication and division signs of the steps' details, escaped: the linter flags
#: the literal characters in source as look-alikes of the letter x and a plus.
TIMES, DIVIDED = "\u00d7", "\u00f7"
SAMPLE_PROMPT = "A lighthouse on a rocky coast at dawn, waves breaking below."


class PricingExampleIn(msgspec.Struct, forbid_unknown_fields=True):
    type: MediaType
    operation: Operation | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Price with this provider (as a pinned request); absent: the one routing picks.
    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    #: The customer tier priced (a new customer's tier is `standard`).
    tier: Tier = "standard"
    #: The text priced; providers that price by length (speech) depend on it.
    prompt: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None


class PricingStep(msgspec.Struct):
    label: Literal["provider cost", "wholesale", "retail"]
    amount: int
    unit: Literal["usd_micros", "millicredit"]
    detail: str


class PricingExample(msgspec.Struct):
    provider: str
    model: str | None
    tier: str
    cost_usd_micros: int
    wholesale_mc: int
    retail_mc: int
    steps: list[PricingStep]
    object: str = "pricing.example"


def _percent(bps: int) -> str:
    whole, rest = divmod(bps, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}%"


def _steps(body: PricingExampleIn, provider: str, cost: int, wholesale: int, retail: int,
           applied: Markups, min_charge_mc: int) -> list[PricingStep]:
    raw_wholesale = -(-cost * (BPS + applied.platform_bps)
                      // (BPS * USD_MICROS_PER_MILLICREDIT))
    floor = (f"; raised to the platform's minimum of {MIN_CHARGE_MC} millicredits"
             if raw_wholesale < MIN_CHARGE_MC else "")
    tenant_bps = applied.type_bps + applied.tier_bps
    raw_retail = -(-wholesale * (BPS + tenant_bps) // BPS)
    retail_floor = ""
    if retail > raw_retail:
        retail_floor = f"; raised to the tenant's minimum charge of {min_charge_mc} millicredits"
    return [
        PricingStep(label="provider cost", amount=cost, unit="usd_micros",
                    detail=f"{provider}'s own estimate for this request, in US dollar "
                           f"micros (1 USD = 1,000,000)"),
        PricingStep(label="wholesale", amount=wholesale, unit="millicredit",
                    detail=f"cost {TIMES} (1 + platform markup {_percent(applied.platform_bps)}) "
                           f"{DIVIDED} {USD_MICROS_PER_MILLICREDIT} USD micros per millicredit, "
                           f"rounded up{floor}"),
        PricingStep(label="retail", amount=retail, unit="millicredit",
                    detail=f"wholesale {TIMES} (1 + {body.type} markup "
                           f"{_percent(applied.type_bps)} + tier markup "
                           f"{_percent(applied.tier_bps)} for {body.tier!r}), rounded up"
                           f"{retail_floor}"),
    ]


async def example(services: Services, tenant_id: str, body: PricingExampleIn) -> PricingExample:
    """The price of `body` for a customer of `body.tier`, with the steps that make it;
    called by the route. Raises what the estimate raises for the same request (422 for bad
    params or an unknown provider, 503 when no provider can serve it)."""
    request = GenerationCreate(type=body.type, operation=body.operation,
                               prompt=body.prompt or SAMPLE_PROMPT, params=body.params,
                               provider=body.provider)
    request.check_operation()
    runtime = services.runtime
    tenant = await runtime.tenant_views.tenant(tenant_id)
    await services.providers.refresh(runtime)
    chosen = plan(runtime, services.providers, tenant, request, body.tier)
    applied = markups(body.type, tenant.pricing, body.tier,
                      runtime.settings.platform_markup_bps)
    found = model_of(chosen.provider, chosen.request.params, chosen.request.operation)
    price = chosen.price
    return PricingExample(
        provider=chosen.provider.name, model=found[0] if found is not None else None,
        tier=body.tier, cost_usd_micros=price.cost_usd_micros,
        wholesale_mc=price.wholesale_mc, retail_mc=price.retail_mc,
        steps=_steps(body, chosen.provider.name, price.cost_usd_micros, price.wholesale_mc,
                     price.retail_mc, applied, tenant.pricing.min_charge_mc))
