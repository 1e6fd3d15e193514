"""Design templates: what `design_autofill` can fill, as one caller may see it.

A free catalogue read, like voices: the local design engine's built-in templates and, for a
provider with an account-side catalogue (Canva's brand templates), the templates of the
account the tenant's credentials open (its own key, else the platform's).
"""

from __future__ import annotations

import logging

import msgspec

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.providers.allowed import allowed
from gateway.providers.credentials import resolve
from gateway.providers.states import configured, provider_label, resolve_label
from plugins.errors import ProviderError
from plugins.provider import DesignTemplate, Provider
from tenants.kernel.errors import InvalidRequest, ProviderFailed
from tenants.models import Tenant

log = logging.getLogger(__name__)


class TemplateFieldOut(msgspec.Struct, kw_only=True):
    #: The key in `params.data` that fills it.
    name: str
    #: `text`, `image` or `chart`.
    kind: str
    label: str


class TemplateOut(msgspec.Struct, kw_only=True):
    #: What `design_autofill` takes (`params.template` locally, `params.brand_template_id`
    #: with Canva).
    id: str
    name: str
    provider: str
    fields: list[TemplateFieldOut]
    formats: list[str]
    #: True for the account's own brand template, false for a built-in one.
    brand: bool
    object: str = "design_template"


class TemplateList(msgspec.Struct, kw_only=True):
    data: list[TemplateOut]
    object: str = "list"


def _out(template: DesignTemplate, label: str) -> TemplateOut:
    return TemplateOut(id=template.id, name=template.name, provider=label,
                       fields=[TemplateFieldOut(name=f.name, kind=f.kind, label=f.label)
                               for f in template.fields],
                       formats=list(template.formats), brand=template.brand)


def _pinned(runtime: Runtime, tenant: Tenant, name: str, customer: bool) -> Provider:
    provider = runtime.plugins.get(resolve_label(runtime, tenant, name, customer=customer))
    if provider is None:
        raise InvalidRequest(f"no provider named {name!r}", code="unknown_provider",
                             param="provider")
    return provider


async def list_templates(runtime: Runtime, principal: Principal,
                         provider_name: str | None) -> TemplateList:
    """Called for `GET /v1/design/templates?provider=`: the templates of `provider_name`, or
    (none named) of every design provider configured and allowed for the tenant, each
    labelled with the provider name the caller is shown (`provider_label`). Reserves and
    charges nothing. Raises `InvalidRequest` for an unknown provider or one without a
    template catalogue, `ProviderFailed` when a named provider's answer cannot be had (with
    none named, a failing provider is left out so the others still show)."""
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    customer = principal.customer_id is not None
    if provider_name is not None:
        provider = _pinned(runtime, tenant, provider_name, customer)
        try:
            templates = await provider.list_templates(
                resolve(runtime, tenant, provider.name), runtime.http)
        except ProviderError as exc:
            raise ProviderFailed(f"{provider_name} did not list its templates: {exc.message}",
                                 code=exc.code) from exc
        if templates is None:
            raise InvalidRequest(f"{provider_name} has no design templates",
                                 code="no_templates", param="provider")
        label = provider_label(runtime, tenant, provider.name, customer=customer)
        return TemplateList(data=[_out(t, label) for t in templates])
    data: list[TemplateOut] = []
    for provider in runtime.plugins.all():
        if ("design" not in provider.media_types
                or not configured(runtime, provider, own=tenant.provider_credentials)
                or not allowed(runtime, tenant, provider)):
            continue
        try:
            templates = await provider.list_templates(
                resolve(runtime, tenant, provider.name), runtime.http)
        except ProviderError as exc:
            log.warning("%s did not list its templates: %s", provider.name, exc.message)
            continue
        label = provider_label(runtime, tenant, provider.name, customer=customer)
        data += [_out(t, label) for t in templates or []]
    return TemplateList(data=data)
