"""The session cookie, its CSRF token and the hosts a session is good on.

- The cookie `mh_session` holds the session's raw token: `HttpOnly; SameSite=Lax; Path=/`, no
  `Domain` (host-only: a tenant's custom domain never shares it with another), `Secure` when
  `MEDIAHUB_PUBLIC_BASE_URL` is https or the request itself came over https. An
  `X-Forwarded-Proto` from a proxy is not trusted (out of scope): behind a TLS-terminating
  proxy, set an https public base URL.
- The CSRF token is derived, not stored: HMAC-SHA256(`MEDIAHUB_SECRET_KEY`, session token).
  The login answer carries it; the page sends it back as `X-CSRF-Token` on every write. A page
  on another site can neither read the cookie nor compute the token.
- A session is good on the hosts of its tenant: one of its domains, or the platform's own host
  (the host of `MEDIAHUB_PUBLIC_BASE_URL`), where the tenant is named by slug at sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from gateway.core.settings import Settings

SESSION_COOKIE = "mh_session"
CSRF_HEADER = "x-csrf-token"
#: The methods that change something: a cookie-authenticated one needs the CSRF token.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def csrf_token(settings: Settings, raw_session: str) -> str:
    """The CSRF token of a session (the same for its whole life)."""
    mac = hmac.new(settings.secret_key, b"csrf:" + raw_session.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def csrf_ok(settings: Settings, raw_session: str, sent: str | None) -> bool:
    """Whether `sent` is the session's CSRF token (compared in constant time)."""
    if not sent:
        return False
    return hmac.compare_digest(sent.encode(), csrf_token(settings, raw_session).encode())


def hostname(host_header: str) -> str:
    """A `Host` header's name: lower case, without port or trailing dot."""
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0].rstrip(".")


def platform_host(settings: Settings) -> str:
    """The platform's own host: that of `MEDIAHUB_PUBLIC_BASE_URL`."""
    return (urlsplit(settings.public_base_url).hostname or "").lower()


def request_host(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return hostname(connection.headers.get("host", ""))


def is_https(settings: Settings, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return (settings.public_base_url.startswith("https://")
            or connection.scope.get("scheme") == "https")


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").rstrip("."), port or _DEFAULT_PORTS.get(scheme)


def origin_ok(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """No `Origin` header, or one naming the request's own host and port (a browser sends
    it on cross-site writes; `null` or another site is refused). The scheme is not compared:
    behind a TLS-terminating proxy the app sees http."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False
    scheme = str(connection.scope.get("scheme", "http"))
    sent = _origin_key(parts.scheme, parts.netloc)
    own = _origin_key(scheme, connection.headers.get("host", "").strip().lower())
    return sent[1] == own[1] and (sent[2] == own[2] or {sent[2], own[2]} <= {80, 443})


def session_cookie(settings: Settings, connection: ASGIConnection[Any, Any, Any, Any],
                   raw: str, max_age_s: int) -> Cookie:
    """The `Set-Cookie` that signs the browser in for `max_age_s` (the absolute lifetime)."""
    return Cookie(key=SESSION_COOKIE, value=raw, max_age=max_age_s, path="/", domain=None,
                  httponly=True, samesite="lax", secure=is_https(settings, connection))


def cleared_cookie(settings: Settings, connection: ASGIConnection[Any, Any, Any, Any]) -> Cookie:
    """The `Set-Cookie` that signs the browser out."""
    return Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", domain=None,
                  httponly=True, samesite="lax", secure=is_https(settings, connection))
