"""The one egress client: every request to a URL that a user, a tenant or a provider supplied
(input images, provider outputs, webhook targets) goes through `Egress`.

What it guarantees (DESIGN.md, "Reliability notes"):

- **Resolve once, check every address.** The host is resolved with `getaddrinfo` (run off the
  event loop by asyncio's executor); if *any* address it resolves to is not public, the URL is
  refused, so a DNS answer mixing a public and a private address cannot pick the private one
  later. Not public: private, loopback, link-local, multicast, reserved, unspecified, the
  shared 100.64.0.0/10 range, IPv6 site-local and unique-local, and IPv4 addresses embedded in
  IPv6 (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, Teredo, NAT64 `64:ff9b::/96` and
  `64:ff9b:1::/48`) checked as the IPv4 address they carry. Networks listed in
  `MEDIAHUB_EGRESS_ALLOW_NETWORKS` (or loopback with `MEDIAHUB_EGRESS_ALLOW_LOOPBACK`) are
  allowed although not public.
- **Connect to the address that was checked.** The request goes to the IP itself (the URL's
  host is replaced by it) so nothing resolves the name a second time (no DNS rebinding). The
  original `Host` header is sent; for `https` the original name is given to TLS as the SNI
  name (httpx's `sni_hostname` request extension), so the server certificate is still verified
  against the name, not the IP. Connections are not kept alive, so a TLS connection opened for
  one name is never reused for another name on the same address.
- **Every redirect is checked again** (and counted: at most `max_redirects`); a webhook POST
  does not follow redirects at all.
- **Size and time are capped.** A declared `Content-Length` over the cap is refused before
  reading; otherwise the body is streamed and the download aborted as soon as it passes the
  cap. The whole exchange (resolution, every redirect, the body) runs under one deadline.
- **Media is typed by its bytes** (`sniff`), never by the server's `Content-Type`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from gateway.core.settings import Settings
from tenants.kernel.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
#: How much of a webhook receiver's answer is read (and then thrown away).
_RESPONSE_CAP: Final = 64 * 1024


class EgressError(InvalidRequest):
    """A URL could not be fetched; `code` says why. A 422 when the URL came from the client."""

    default_code = "fetch_failed"


class UrlNotAllowed(EgressError):
    default_code = "url_not_allowed"


class FetchTooLarge(EgressError):
    default_code = "fetch_too_large"


class FetchTimeout(EgressError):
    default_code = "fetch_timeout"


class FetchFailed(EgressError):
    default_code = "fetch_failed"


class UnsupportedMedia(EgressError):
    default_code = "unsupported_media_type"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet, the only kind egress reaches by default."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if any(not is_public(v4) for v4 in _embedded_ipv4(address)):
            return False
        if address.is_site_local:
            return False
    elif address in _SHARED:
        return False
    return bool(address.is_global) and not (
        address.is_private or address.is_loopback or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified)


@dataclass(frozen=True)
class EgressPolicy:
    """What egress may reach and how much it may take; built from settings."""

    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 30.0
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        return cls(allow_networks=tuple(ipaddress.ip_network(n)
                                        for n in settings.egress_allow_networks),
                   max_bytes=settings.egress_max_bytes,
                   timeout_s=float(settings.egress_timeout_s))

    def allows(self, address: IPAddress) -> bool:
        """Public, or inside a network the operator allowed (an IPv4-mapped address counts
        as the IPv4 address it carries)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        for candidate in candidates:
            if any(candidate.version == net.version and candidate in net
                   for net in self.allow_networks):
                return True
        return is_public(address)


@dataclass
class Fetched:
    """A fetched body: `content_type` is the server's claim; `sniffed` what the bytes are."""

    url: str
    status_code: int
    content_type: str
    data: bytes
    sniffed: str | None = None


@dataclass
class Posted:
    """A webhook receiver's answer (its body is not kept)."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _parse(url: str) -> tuple[str, str, int, bool]:
    """(scheme, host, port, port given) of an http(s) URL; raises `UrlNotAllowed`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed("the URL is not valid") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("only http and https URLs are allowed")
    if not parts.hostname:
        raise UrlNotAllowed("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("URLs with credentials are not allowed")
    return parts.scheme, parts.hostname, port or _default_port(parts.scheme), port is not None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class Egress:
    """The egress client; one per process (`Runtime.egress`)."""

    def __init__(self, policy: EgressPolicy,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        # No pooling (see the module docstring), no proxies from the environment (a proxy
        # would resolve the name itself), no automatic redirects (each one is checked here).
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(policy.timeout_s))

    async def close(self) -> None:
        await self._client.aclose()

    async def resolve(self, url: str) -> list[IPAddress]:
        """Resolve the URL's host once and check every address it has.

        Returns the addresses (each allowed by the policy); raises `UrlNotAllowed` for a URL
        that is not http(s) or reaches a non-public address, `FetchFailed` when the name
        does not resolve. Called at submit to validate `webhook_url` and input URLs, and
        before every request and redirect.
        """
        _, host, port, _ = _parse(url)
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise FetchFailed(f"the host {host!r} could not be resolved") from exc
            addresses = []
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if address not in addresses:
                    addresses.append(address)
        refused = [a for a in addresses if not self.policy.allows(a)]
        if refused or not addresses:
            raise UrlNotAllowed(f"the host {host!r} resolves to an address that is not "
                                "public; only public addresses may be reached")
        return addresses

    async def _open(self, method: str, url: str, addresses: list[IPAddress], *,
                    content: bytes | None, headers: dict[str, str]) -> httpx.Response:
        """Send to the checked addresses in order (the next one on a connection failure)."""
        parts = urlsplit(url)
        scheme, host, port, explicit = _parse(url)
        last: Exception | None = None
        for address in addresses:
            ip_host = f"[{address}]" if address.version == 6 else str(address)
            target = urlunsplit((scheme, f"{ip_host}:{port}", parts.path or "/", parts.query,
                                 ""))
            host_header = f"[{host}]" if _literal(host) is not None and ":" in host else host
            request = self._client.build_request(
                method, target, content=content,
                headers={**headers, "Host": f"{host_header}:{port}" if explicit else host_header},
                extensions={"sni_hostname": host} if scheme == "https" else {})
            try:
                return await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc
        raise FetchFailed(f"could not connect to {host!r}") from last

    async def _read(self, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise FetchTooLarge(f"the response is larger than {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise FetchTooLarge(f"the response is larger than {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def fetch(self, url: str, *, max_bytes: int | None = None,
                    timeout_s: float | None = None) -> Fetched:
        """GET a URL under the guard, following (and re-checking) redirects.

        Returns the body; raises `UrlNotAllowed`, `FetchTooLarge`, `FetchTimeout` or
        `FetchFailed` (including for a non-2xx answer).
        """
        cap = max_bytes or self.policy.max_bytes
        try:
            async with asyncio.timeout(timeout_s or self.policy.timeout_s):
                for _ in range(self.policy.max_redirects + 1):
                    addresses = await self.resolve(url)
                    response = await self._open("GET", url, addresses, content=None,
                                                headers={"Accept": "*/*"})
                    try:
                        location = response.headers.get("location")
                        if response.status_code in _REDIRECTS and location:
                            url = urljoin(url, location)
                            continue
                        if not 200 <= response.status_code < 300:
                            raise FetchFailed(f"the URL answered HTTP {response.status_code}")
                        data = await self._read(response, cap)
                        return Fetched(url=url, status_code=response.status_code,
                                       content_type=response.headers.get("content-type", ""),
                                       data=data)
                    finally:
                        await response.aclose()
                raise FetchFailed(f"more than {self.policy.max_redirects} redirects")
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise FetchTimeout(f"the URL did not answer within "
                               f"{timeout_s or self.policy.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"the URL could not be fetched ({type(exc).__name__})") from exc

    async def fetch_media(self, url: str, *, kinds: tuple[str, ...] = ("image/", "video/",
                                                                          "audio/", "model/",
                                                                          "application/pdf"),
                          max_bytes: int | None = None,
                          timeout_s: float | None = None) -> Fetched:
        """`fetch`, then type the body by its bytes; raises `UnsupportedMedia` when they are
        not a known media format starting with one of `kinds`."""
        fetched = await self.fetch(url, max_bytes=max_bytes, timeout_s=timeout_s)
        sniffed = sniff(fetched.data)
        if sniffed is None or not sniffed.startswith(kinds):
            raise UnsupportedMedia("the URL's content is not a supported media file "
                                   f"({', '.join(kinds)})")
        fetched.sniffed = sniffed
        return fetched

    async def post(self, url: str, content: bytes, headers: dict[str, str], *,
                   timeout_s: float) -> Posted:
        """POST under the guard without following redirects (a 3xx is the receiver's
        answer); the answer's body is read up to 64 KiB and dropped. Raises `EgressError`s
        as `fetch` does."""
        try:
            async with asyncio.timeout(timeout_s):
                addresses = await self.resolve(url)
                response = await self._open("POST", url, addresses, content=content,
                                            headers=headers)
                try:
                    await self._read(response, _RESPONSE_CAP)
                except FetchTooLarge:
                    pass  # the status is what counts; a chatty receiver is not a failure
                finally:
                    await response.aclose()
                return Posted(status_code=response.status_code,
                              headers=dict(response.headers))
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise FetchTimeout(f"no answer within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"the request failed ({type(exc).__name__})") from exc


def sniff(data: bytes) -> str | None:
    """The media type of `data` judged by its first bytes, or None when not recognised."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF
                                   and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


async def check_url(egress: Egress, url: str, *, param: str) -> None:
    """Refuse (422 naming `param`) a URL that is not http(s) or does not resolve to an
    address egress may reach; called before anything that names it is stored or reserved."""
    try:
        await egress.resolve(url)
    except EgressError as exc:
        raise InvalidRequest(exc.message, code=exc.code, param=param) from exc
