"""The tenant's branded portal, resolved from the `Host` header (custom domains)."""

from __future__ import annotations

import html
import re
from typing import Any

from litestar import Request, Response, get
from litestar.response import Response as LitestarResponse

from gateway.core.deps import RuntimeDep
from tenants import service as tenants

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}")


@get("/", include_in_schema=False)
async def portal_home(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The portal's landing page for the tenant that owns this hostname; 404 for others."""
    async with runtime.db.session() as session:
        tenant = await tenants.tenant_for_host(session, request.headers.get("host", ""))
    if tenant is None:
        return LitestarResponse(
            "<!doctype html><title>mediahub</title><h1>mediahub</h1>"
            "<p>No portal is configured for this hostname.</p>",
            media_type="text/html", status_code=404)
    name = html.escape(tenant.name)
    colour = str(tenant.branding.get("primary_color", ""))
    if not _HEX_COLOUR.fullmatch(colour):
        colour = "#334155"  # anything else could break out of the style sheet
    return LitestarResponse(
        f"<!doctype html><html><head><meta charset=utf-8><title>{name}</title>"
        f"<style>body{{font-family:sans-serif;margin:3rem}}h1{{color:{colour}}}</style></head>"
        f"<body><h1>{name}</h1><p>Create images, speech, video, designs and 3D models.</p>"
        "</body></html>",
        media_type="text/html")
