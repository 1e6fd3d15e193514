"""The portal's single-page app, served on each tenant's own domains.

The React app lives in `gateway/portal/web/` and its build in `web/dist/` (committed, so a
machine without Node serves it). The gateway answers every portal route (`SPA_ROUTES`)
with `index.html`, after writing the tenant's name, favicon, theme colour and manifest into
its head, so the first paint is already in the tenant's brand; the app's own files are
under `/static/portal/` and its service worker at `/sw.js` (so its scope is the site).
A host that is no tenant's verified domain gets 404, as before.

The same app carries the operator console (`OPERATOR_ROUTES`, `/operator/*`): it is served
only on the platform's own host (one that is no tenant's domain, verified or pending), with
a neutral head and no tenant branding, and is 404 on every tenant's domain so a tenant's
customers never see that it exists. It signs in with the operator token in the browser and
calls `/admin/v1` with it; the page itself holds nothing secret.
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
from gateway.portal.config import is_platform_host, tenant_of_host, theme_colour
from tenants.kernel.errors import NotFound
from tenants.models import Tenant

DIST = Path(__file__).parent / "web" / "dist"

#: The app's own routes (React Router's, in web/src/App.tsx): each answers index.html.
SPA_ROUTES: tuple[str, ...] = (
    "/", "/signin", "/signup", "/forgot-password", "/reset-password", "/set-password",
    "/magic", "/teams/accept", "/account", "/studio", "/studio/{rest:path}", "/gallery",
    "/gallery/{rest:path}", "/credits", "/offline", "/portal/credits",
    "/shared/{rest:path}", "/usage", "/console", "/console/{rest:path}",
)

#: The operator console's routes (web/src/pages/operator/): only on the platform host.
OPERATOR_ROUTES: tuple[str, ...] = ("/operator", "/operator/{rest:path}")

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

_OPERATOR_HEAD = ('<title>Operator console</title><meta name="robots" content="noindex">'
                  '<meta name="theme-color" content="#334155">')


async def _operator_page(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[str]:
    if not await is_platform_host(runtime, request.headers.get("host", "")):
        # A tenant's domain: as if the console did not exist (no tenant learns of it).
        raise NotFound("no such page")
    page = _index().replace(_MARKER, _OPERATOR_HEAD, 1)
    return Response(page, media_type="text/html",
                    headers={"Cache-Control": "no-cache",
                             "X-Content-Type-Options": "nosniff",
                             "X-Frame-Options": "DENY",
                             "Referrer-Policy": "no-referrer"})


operator_page = get(list(OPERATOR_ROUTES), include_in_schema=False,
                    name="operator_page")(_operator_page)


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
