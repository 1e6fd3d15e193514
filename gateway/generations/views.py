"""The one view of a generation: what REST, webhooks (and the OpenAI-compatible and MCP
surfaces) show of it, with freshly signed output URLs (or permanent CDN links, for a tenant
that allows them where the operator runs a CDN)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.generations.models import Generation
from gateway.generations.schemas import Attempt, Cost, ErrorInfo, GenerationOut, Output
from gateway.providers.states import provider_label
from plugins.media import INPUT_NAMES, SAMPLES
from tenants import service as tenants
from tenants.models import Tenant
from tenants.schemas import shows_provider_names


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a generation is shown to: the base URL its media links use (the tenant's own
    domain when the request came through it), whether it is a customer (shown retail prices
    only) and, for a white-label tenant's customer, the tenant whose neutral provider names
    it sees (None: real names)."""

    base_url: str
    customer: bool = False
    neutral_for: Tenant | None = None


async def audience(runtime: Runtime, principal: Principal, host: str | None) -> Audience:
    """The audience of a request by `principal` that arrived for `host` (its `Host` header);
    called by the routes before they render.

    Media links go to the host the request came through when that is one of the tenant's
    domains (a white-label client never sees the platform's hostname); otherwise, and for any
    other host, to `public_base_url`.
    """
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    base = runtime.settings.public_base_url
    platform = urlsplit(base)
    if host and host.lower() != (platform.netloc or "").lower():
        async with runtime.db.session() as session:
            owner = await tenants.tenant_for_host(session, host)
        if owner is not None and owner.id == principal.tenant:
            # Same scheme as the platform's: both sit behind the same TLS front.
            base = f"{platform.scheme}://{host.strip().lower()}"
    customer = principal.customer_id is not None
    neutral = customer and not shows_provider_names(tenant.branding)
    return Audience(base_url=base, customer=customer, neutral_for=tenant if neutral else None)


async def render(runtime: Runtime, generation: Generation,
                 to: Audience | None = None) -> GenerationOut:
    """The API view of a generation, with freshly signed output URLs; called by every
    surface that shows one. `to` (default: the platform's base URL, real provider names, as
    webhooks to the tenant are) is who it is shown to."""
    base_url = to.base_url if to is not None else runtime.settings.public_base_url
    neutral_for = to.neutral_for if to is not None else None

    def name(provider: str) -> str:
        if neutral_for is None:
            return provider
        return provider_label(runtime, neutral_for, provider, customer=True)

    def message(text: str) -> str:
        # A provider's own error message may name it ("OpenAI rejected ..."): a white-label
        # customer reads the neutral name there too. Best effort: a product name that is not
        # the provider's id (a model name, say) is not recognised.
        if neutral_for is None:
            return text
        for provider in runtime.plugins.all():
            text = re.sub(rf"\b{re.escape(provider.name)}\b", name(provider.name), text,
                          flags=re.IGNORECASE)
        return text

    cdn = await cdn_base(runtime, generation.tenant_id) if generation.outputs else None

    async def link(key: str) -> str:
        public = None if cdn is None else runtime.storage.public_url(key, base_url=cdn)
        if public is not None:
            return public
        return await runtime.storage.signed_url(
            key, expires_in_s=runtime.settings.media_url_ttl_s, base_url=base_url)

    outputs = []
    for item in generation.outputs:
        url = await link(item.key)
        thumbnail_url = None if item.thumbnail_key is None else await link(item.thumbnail_key)
        outputs.append(Output(url=url, content_type=item.content_type, bytes=item.bytes,
                              width=item.width, height=item.height,
                              duration_s=item.duration_s, thumbnail_url=thumbnail_url,
                              peaks=item.peaks))
    error = generation.error
    cost = Cost(estimated=generation.estimated_mc, charged=generation.charged_mc)
    if to is not None and to.customer and generation.customer_reservation_id is None:
        # The tenant paid wholesale (it bills its customers itself): the customer is shown
        # the retail price (the actual one once settled), never the reseller's wholesale.
        cost = Cost(estimated=generation.retail_mc,
                    charged=None if generation.charged_mc is None else generation.retail_mc)
    return GenerationOut(
        id=generation.id, type=generation.type, operation=generation.operation,
        status=generation.status, provider=name(generation.provider), cached=generation.cached,
        cost=cost,
        outputs=outputs,
        error=ErrorInfo(code=error.code, message=message(error.message)) if error else None,
        metadata=generation.metadata_, created_at=generation.created_at,
        started_at=generation.started_at, completed_at=generation.completed_at,
        attempts=[Attempt(provider=name(a.provider), outcome=a.outcome,
                          error_code=a.error_code, latency_ms=a.latency_ms,
                          retry_after_s=a.retry_after_s)
                  for a in generation.attempts_log or []],
        prompt=generation.prompt, params=plain_params(generation.params),
        favourite=bool(generation.favourite), team_id=generation.team_id,
        brand_kit_id=generation.brand_kit_id, brand_kit_version=generation.brand_kit_version,
    )


async def cdn_base(runtime: Runtime, tenant_id: str) -> str | None:
    """The CDN base URL for the media of `tenant_id`, or None for signed links: set only when
    the operator runs a CDN (`media_cdn_base_url`) and the tenant allows public links
    (`media.public_links`). Called by `render` for each generation with outputs."""
    base = runtime.settings.media_cdn_base_url
    if base is None:
        return None
    tenant = await runtime.tenant_views.tenant(tenant_id)
    return base if tenant.media.public_links else None


def plain_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """The params as the caller submitted them, without the input media: the row holds
    references to their stored copies (`inputs.stow_inputs`), which are ours, not the
    caller's, and name storage keys."""
    return {name: value for name, value in (params or {}).items()
            if name not in INPUT_NAMES and name != SAMPLES}
