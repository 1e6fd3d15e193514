"""The portal's single-page app, served on each tenant's own domains.

The React app lives in `gateway/portal/web/` and its build in `web/dist/` (committed, so a
machine without Node serves it). The gateway answers every portal route (`SPA_ROUTES`)
with `index.html`, after writing the tenant's name, favicon, theme colour and manifest into
its head, so the first paint is already in the tenant's brand; the app's own files are
under `/static/portal/` and its service worker at `/sw.js` (so its scope is the site).
A host that is no tenant's verified domain gets 404, as before.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.response import File
from litestar.router import Router
from litestar.static_files import create_static_files_router

from gateway.core.deps import RuntimeDep
from gateway.portal.config import tenant_of_host, theme_colour
from tenants.models import Tenant

DIST = Path(__file__).parent / "web" / "dist"

#: The app's own routes (React Router's, in web/src/App.tsx): each answers index.html.
SPA_ROUTES: tuple[str, ...] = (
    "/", "/signin", "/signup", "/forgot-password", "/reset-password", "/set-password",
    "/magic", "/teams/accept", "/account", "/studio", "/studio/{rest:path}", "/gallery",
    "/gallery/{rest:path}", "/credits", "/offline", "/portal/credits",
    "/shared/{rest:path}", "/console", "/console/{rest:path}",
)

_MARKER = "<!--portal-head-->"


@cache
def _index() -> str:
    # Read once per process: the build only changes with a deploy.
    return (DIST / "index.html").read_text(encoding="utf-8")


def _head(tenant: Tenant) -> str:
    branding = tenant.branding
    name = html.escape(branding.display_name or tenant.name)
    icon = branding.favicon or branding.icon or branding.logo
    parts = [f"<title>{name}</title>",
             f'<meta name="theme-color" content="{theme_colour(tenant)}">',
             '<link rel="manifest" href="/manifest.webmanifest">']
    if icon is not None:
        parts.append(f'<link rel="icon" href="{html.escape(icon.url)}">')
        parts.append(f'<link rel="apple-touch-icon" href="{html.escape(icon.url)}">')
    return "".join(parts)


async def _portal_page(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[str]:
    tenant = await tenant_of_host(runtime, request.headers.get("host", ""))
    page = _index().replace(_MARKER, _head(tenant), 1)
    return Response(page, media_type="text/html",
                    headers={"Cache-Control": "no-cache",
                             "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "same-origin"})


portal_page = get(list(SPA_ROUTES), include_in_schema=False, name="portal_page")(_portal_page)


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    """The service worker, at the root so that it controls the whole site."""
    return File(DIST / "sw.js", content_disposition_type="inline",
                media_type="text/javascript",
                headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


def static_router() -> Router:
    """`/static/portal/*`: the built app's files; their names carry a content hash."""
    return create_static_files_router(
        path="/static/portal", directories=[DIST], include_in_schema=False,
        cache_control=None, name="portal_static")
