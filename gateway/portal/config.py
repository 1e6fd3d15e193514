"""What the portal app learns about its tenant before anyone signs in.

`GET /v1/portal/config` (public, resolved from the `Host`) gives the app the tenant's name,
its public branding (never `sender_email`), whether sign-up is open and the languages it
speaks; `GET /manifest.webmanifest` makes the portal installable under the tenant's name,
icons and colour.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get

from gateway.core.deps import RuntimeDep
from gateway.core.runtime import Runtime
from tenants import service as tenants
from tenants.branding import BrandAsset, BrandColors, FontStack, SupportLinks
from tenants.kernel.errors import NotFound
from tenants.models import Tenant
from tenants.schemas import shows_provider_names, signup_open

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}")
Locale = Literal["en", "ar"]
LOCALES: tuple[Locale, ...] = ("en", "ar")


async def tenant_of_host(runtime: Runtime, host: str) -> Tenant:
    """The tenant whose verified domain `host` is; 404 `domain_unverified` for a domain
    added but not proven, 404 `not_found` for any other host."""
    async with runtime.db.session() as session:
        tenant = await tenants.tenant_for_host(session, host)
        pending = tenant is None and await tenants.domain_for_host(session, host) is not None
    if pending:
        # Added by a tenant but not proven yet: it serves nobody (docs/reseller.md).
        raise NotFound("this domain is not verified yet", code="domain_unverified")
    if tenant is None:
        raise NotFound("no portal is configured for this hostname")
    return tenant


async def is_platform_host(runtime: Runtime, host: str) -> bool:
    """True when `host` is no tenant's domain, verified or pending: the platform's own
    host, where the operator console is served (and no portal is)."""
    async with runtime.db.session() as session:
        return await tenants.domain_for_host(session, host) is None


class PortalBranding(msgspec.Struct, omit_defaults=True):
    """The tenant's branding as its portal shows it (`tenants.branding.Branding`)."""

    colors: BrandColors | None = None
    fonts: dict[str, FontStack] = msgspec.field(default_factory=dict)
    css_variables: dict[str, str] = msgspec.field(default_factory=dict)
    support: SupportLinks | None = None
    logo: BrandAsset | None = None
    favicon: BrandAsset | None = None
    icon: BrandAsset | None = None


class PortalConfig(msgspec.Struct):
    tenant_id: str
    #: The name the portal shows: the branding's display name, else the tenant's name.
    name: str
    branding: PortalBranding
    signup_open: bool
    show_provider_names: bool
    locales: list[str]
    default_locale: str
    object: str = "portal_config"
    #: The operator suspended the tenant: the portal says so instead of signing anyone in
    #: (every request with its keys or sessions is a 403 `tenant_suspended`).
    suspended: bool = False
    #: The tenant's IANA time zone: the days of every analytics series (and so the "last
    #: 30 days" the usage page starts with) are the tenant's local days.
    time_zone: str = "UTC"


def portal_config(tenant: Tenant) -> PortalConfig:
    branding = tenant.branding
    return PortalConfig(
        tenant_id=tenant.id, name=branding.display_name or tenant.name,
        branding=PortalBranding(colors=branding.colors,
                                fonts={str(r): s for r, s in branding.fonts.items()},
                                css_variables=dict(branding.css_variables),
                                support=branding.support, logo=branding.logo,
                                favicon=branding.favicon, icon=branding.icon),
        signup_open=signup_open(branding), show_provider_names=shows_provider_names(branding),
        locales=list(LOCALES), default_locale="en",
        suspended=tenant.suspended_at is not None, time_zone=tenant.time_zone)


def theme_colour(tenant: Tenant) -> str:
    """The tenant's primary colour when it is a plain hex colour (anything else could
    break out of the attribute or style sheet it is written into), else a neutral slate."""
    colors = tenant.branding.colors
    colour = (colors.primary if colors is not None else None) or ""
    return colour if _HEX_COLOUR.fullmatch(colour) else "#334155"


def _manifest(tenant: Tenant, theme: str) -> dict[str, object]:
    branding = tenant.branding
    name = branding.display_name or tenant.name
    icons = [{"src": asset.url, "sizes": f"{asset.width}x{asset.height}",
              "type": asset.content_type, "purpose": "any"}
             for asset in (branding.icon, branding.logo) if asset is not None]
    background = (branding.colors.background if branding.colors is not None else None)
    return {"name": name, "short_name": name[:12], "id": "/", "start_url": "/studio",
            "scope": "/", "display": "standalone", "theme_color": theme,
            "background_color": background or "#ffffff", "icons": icons,
            "description": f"{name}: images, speech, video, designs and 3D models"}


class PortalConfigController(Controller):
    path = "/v1/portal"
    tags = ["portal"]

    @get("/config", summary="The portal's tenant, branding and languages (public)")
    async def config(self, request: Request[Any, Any, Any], runtime: RuntimeDep) -> PortalConfig:
        """What the portal app needs before anyone signs in, for the tenant whose verified
        domain the request came to: its name, public branding (colours, fonts, CSS
        variables, support links, images), whether sign-up is open, whether provider names
        are shown, the languages offered, and `suspended` (true while the operator has
        suspended the tenant). 404 `domain_unverified` on a domain not yet
        proven, 404 on any other host."""
        tenant = await tenant_of_host(runtime, request.headers.get("host", ""))
        return portal_config(tenant)


@get("/manifest.webmanifest", include_in_schema=False)
async def web_manifest(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[bytes]:
    """The tenant's web app manifest: its name, icons and theme colour make the portal
    installable as the tenant's own app."""
    tenant = await tenant_of_host(runtime, request.headers.get("host", ""))
    return Response(msgspec.json.encode(_manifest(tenant, theme_colour(tenant))),
                    media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})
