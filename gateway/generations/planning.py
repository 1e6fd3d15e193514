"""Planning a request: validate it against the capable providers, route it by the tenant's
strategy and price it with the best one. Pure decisions over the plugin host and the
providers' routing state; nothing is written."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from billing.pricing import Price, price
from gateway.core.runtime import Runtime
from gateway.generations import inputs as media_urls
from gateway.generations.schemas import GenerationCreate
from gateway.providers.allowed import allowed
from gateway.providers.credentials import credential_scope
from gateway.providers.states import ProviderStates, configured
from plugins.errors import InvalidParams
from plugins.provider import Provider, ProviderRequest, check_params, declared_params
from plugins.vocabulary import DEFAULT_OPERATIONS, MAX_PARAMS_BYTES
from tenants.kernel.errors import InvalidRequest, Unavailable
from tenants.models import Tenant

#: At most this many providers are kept on a generation to fail over through.
MAX_CANDIDATES = 5


@dataclass(frozen=True, slots=True)
class Plan:
    request: ProviderRequest
    #: The provider that prices the reservation: the first of `candidates`.
    provider: Provider
    price: Price
    #: Best first: the failover order the worker follows.
    candidates: tuple[Provider, ...]


#: Operations whose input is media or nothing, so a prompt is optional (empty when absent).
PROMPTLESS_OPERATIONS = frozenset({"image_variation", "image_to_3d"})


def _prompt(body: GenerationCreate) -> str:
    text = body.text if body.prompt is None else body.prompt
    if body.operation in PROMPTLESS_OPERATIONS and (text is None or not text.strip()):
        return ""
    if text is None or not text.strip():
        field = "text" if body.type == "audio" else "prompt"
        raise InvalidRequest(f"{field} is required", code="missing_field", param=field)
    return text


def _capable(runtime: Runtime, tenant: Tenant, media_type: str, operation: str,
             pinned: str | None) -> list[Provider]:
    """The providers that may serve the request: the pinned one, or every one configured
    (by the platform, or by the tenant's own key) that can do the operation (an
    unconfigured provider would only fail) and that the tenant allows (no offline engine
    unless it chose them: `gateway.providers.allowed`)."""
    if pinned is not None:
        provider = runtime.plugins.get(pinned)
        if provider is None:
            raise InvalidRequest(f"no provider named {pinned!r}", code="unknown_provider",
                                 param="provider")
        if media_type not in provider.media_types or operation not in provider.operations:
            raise InvalidRequest(f"provider {pinned!r} cannot do {operation} for {media_type}",
                                 code="unsupported_operation", param="provider")
        if not configured(runtime, provider, own=tenant.provider_credentials):
            # Refused before anything is reserved: called without a key it could only fail
            # later with `auth`, after the customer's credits were held.
            raise InvalidRequest(
                f"provider {pinned!r} is not configured: the platform holds no key for it and "
                "neither does this tenant (PUT /v1/provider_keys/{provider})",
                code="provider_unconfigured", param="provider")
        return [provider]
    candidates = [p for p in runtime.plugins.for_operation(media_type, operation)
                  if configured(runtime, p, own=tenant.provider_credentials)
                  and allowed(runtime, tenant, p)]
    if not candidates:
        raise Unavailable(f"no provider can do {operation} for {media_type}",
                          code="no_provider")
    return candidates


def _check_size(params: dict[str, object]) -> None:
    """Refuse plain params over `MAX_PARAMS_BYTES` of JSON: each declared value is bounded,
    but an undeclared provider's or an object parameter's are not, and the params are stored
    in the generation row (an 8 MB string once was)."""
    if len(msgspec.json.encode(params)) > MAX_PARAMS_BYTES:
        raise InvalidRequest(f"params must be at most {MAX_PARAMS_BYTES} bytes of JSON "
                             "(input files aside: give those as image_url or data: URLs)",
                             code="params_too_large", param="params")


def _refusal(rejections: list[InvalidParams], operation: str, pinned: bool) -> InvalidRequest:
    """The 422 for a request no capable provider accepted: a provider's own objection to a
    value it reads comes first (it says what to change); a parameter none of them reads is
    `unknown_param`, worded without naming a provider the client did not pin (a white-label
    tenant's customers need not learn who serves them)."""
    for exc in rejections:
        if exc.code != "unknown_param":
            return InvalidRequest(exc.message, code=exc.code, param=exc.param)
    first = rejections[0]
    message = (first.message if pinned else f"{first.param} is not a parameter of "
               f"{operation} for any provider that can serve this request")
    return InvalidRequest(message, code="unknown_param", param=first.param)


def _route(states: ProviderStates, tenant: Tenant, candidates: list[Provider],
           estimates: dict[str, int], pinned: str | None) -> list[Provider]:
    """Rank the candidates by the tenant's strategy (a pinned request: only that provider),
    each judged by the state of the credentials the tenant would call it with."""
    scopes = {p.name: credential_scope(tenant, p.name) for p in candidates}
    if pinned is not None:
        return states.rank(candidates, "pinned", estimates, order=[pinned],
                           include_others=False, scopes=scopes)
    config = tenant.routing
    return states.rank(candidates, config.strategy, estimates, order=config.order,
                       include_others=config.include_others, weights=config.weights,
                       scopes=scopes)


def _without(request: ProviderRequest, provider: Provider,
             optional: frozenset[str]) -> ProviderRequest:
    """`request` as `provider` is checked with: the optional names it does not declare
    (a brand kit's additions) left out, so it is not refused for them."""
    if not optional:
        return request
    declared = declared_params(provider, request.operation)
    if declared is None:
        return request
    unread = {name for name in optional if name not in declared}
    if not unread:
        return request
    return msgspec.structs.replace(
        request, params={k: v for k, v in request.params.items() if k not in unread},
        inputs={k: v for k, v in request.inputs.items() if k not in unread})


def plan(runtime: Runtime, states: ProviderStates, tenant: Tenant, body: GenerationCreate,
         tier: str | None = None, inputs: media_urls.Inputs | None = None, *,
         optional: frozenset[str] = frozenset()) -> Plan:
    """Validate a request, route it and price it with the best provider.

    `inputs` are the decoded input media (`gateway.generations.inputs.prepare`); without them,
    inline inputs are decoded from `body.params` here. Raises `InvalidRequest` naming the bad
    field when no capable provider accepts the request (`unknown_param` when none of them
    reads one of the params, `params_too_large` over `MAX_PARAMS_BYTES`), `Unavailable`
    when none can be called now (breakers open). A provider that rejects the parameters
    (or does not read one) while another accepts them is simply not a candidate. `optional`
    names params and inputs a provider may not read without being refused for them (what a
    brand kit added, `gateway.brand_kits.apply`); one that declares them still checks them.
    """
    operation = body.operation or DEFAULT_OPERATIONS[body.type]
    params, inputs = ((body.params, inputs) if inputs is not None
                      else media_urls.split(body.params))
    request = ProviderRequest(type=body.type, operation=operation, prompt=_prompt(body),
                              params=params, inputs=inputs.media, samples=inputs.samples)
    _check_size(params)
    estimates: dict[str, int] = {}
    accepted: list[Provider] = []
    rejections: list[InvalidParams] = []
    for provider in _capable(runtime, tenant, body.type, operation, body.provider):
        try:
            # Names first: a parameter the provider does not read must not reach a provider
            # that would ignore it and bill its default (`"sise"` billed a 512x512 image).
            checked = _without(request, provider, optional)
            check_params(provider, checked)
            provider.validate(checked)
            estimates[provider.name] = provider.estimate_cost(checked)
        except InvalidParams as exc:
            rejections.append(exc)
            continue
        accepted.append(provider)
    if not accepted:
        raise _refusal(rejections, operation, pinned=body.provider is not None)
    ranked = _route(states, tenant, accepted, estimates, body.provider)
    if not ranked:
        raise Unavailable("every provider that can serve this request is failing right now; "
                          "nothing was reserved, try again shortly",
                          code="providers_unavailable")
    chosen = ranked[0]
    return Plan(request=request, provider=chosen,
                price=price(estimates[chosen.name], media_type=body.type,
                            tenant_pricing=tenant.pricing, tier=tier,
                            platform_markup_bps=runtime.settings.platform_markup_bps),
                candidates=tuple(ranked[:MAX_CANDIDATES]))
