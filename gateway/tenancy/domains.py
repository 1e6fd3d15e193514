"""A tenant's own custom domains: added pending, proven by serving a token at
`http://<host>/.well-known/mediahub-verification`, and only then resolving the tenant
(`tenants.service.tenant_for_host` ignores pending domains).

The gateway fetches the token itself through the egress guard (`runtime.egress`: public
addresses only unless the operator allowed more, as tests allow loopback), on
`MEDIAHUB_DOMAIN_VERIFICATION_PORT` (80 unless set). Plain HTTP on purpose: the domain has no
certificate yet, and the token proves control of what the name points at, nothing more.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.egress import EgressError
from gateway.core.runtime import Runtime
from tenants import audit
from tenants import service as tenants
from tenants.kernel.db import utcnow
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound
from tenants.models import Domain
from tenants.schemas import Hostname

WELL_KNOWN_PATH = "/.well-known/mediahub-verification"
#: The most of the answer read: a token is 43 characters, a little whitespace is forgiven.
_MAX_ANSWER = 1024
_TIMEOUT_S = 10.0
_IPV4 = re.compile(r"[0-9.]+")


class DomainIn(msgspec.Struct, forbid_unknown_fields=True):
    hostname: Hostname


class Verification(msgspec.Struct):
    token: str
    url: str
    instructions: str


class DomainOut(msgspec.Struct):
    hostname: str
    #: `pending` until the token was found at `verification.url`; then `verified`.
    status: str
    created_at: datetime
    verified_at: datetime | None
    #: How to prove the domain (null once verified).
    verification: Verification | None
    object: str = "domain"


class DomainList(msgspec.Struct):
    data: list[DomainOut]
    object: str = "list"


class DomainDeleted(msgspec.Struct):
    hostname: str
    deleted: bool = True
    object: str = "domain"


def verification_url(runtime: Runtime, hostname: str) -> str:
    port = runtime.settings.domain_verification_port
    return f"http://{hostname}{'' if port == 80 else f':{port}'}{WELL_KNOWN_PATH}"


def domain_out(runtime: Runtime, domain: Domain) -> DomainOut:
    verification = None
    if domain.verified_at is None and domain.verification_token is not None:
        url = verification_url(runtime, domain.hostname)
        verification = Verification(
            token=domain.verification_token, url=url,
            instructions=(f"Point {domain.hostname} at this gateway's address, serve the "
                          f"token as the whole body of {url} (text/plain, HTTP 200), then "
                          f"POST /v1/tenant/domains/{domain.hostname}/verify."))
    return DomainOut(hostname=domain.hostname,
                     status="pending" if domain.verified_at is None else "verified",
                     created_at=domain.created_at, verified_at=domain.verified_at,
                     verification=verification)


async def _own(session: AsyncSession, tenant_id: str, hostname: str) -> Domain:
    domain = await session.get(Domain, tenants.normalize_host(hostname))
    if domain is None or domain.tenant_id != tenant_id:
        raise NotFound("no such domain", code="domain_not_found", param="hostname")
    return domain


async def list_domains(runtime: Runtime, tenant_id: str) -> DomainList:
    """`GET /v1/tenant/domains`: every domain of the tenant, pending and verified."""
    async with runtime.db.session() as session:
        rows = await session.scalars(select(Domain).where(Domain.tenant_id == tenant_id)
                                     .order_by(Domain.hostname))
        return DomainList(data=[domain_out(runtime, d) for d in rows])


async def add_domain(runtime: Runtime, tenant_id: str, actor: str, body: DomainIn) -> DomainOut:
    """`POST /v1/tenant/domains`: a pending domain with a fresh token. 409 `domain_taken`
    when any tenant (this one included) has the hostname, pending or verified, without
    saying which; 422 `domain_reserved` for the platform's own host; 422
    `domain_limit_reached` past the tenant's `caps.max_domains`."""
    hostname = body.hostname.rstrip(".")
    platform = urlsplit(runtime.settings.public_base_url).hostname or ""
    if _IPV4.fullmatch(hostname):
        raise InvalidRequest("a custom domain is a name, not an IP address",
                             code="invalid_hostname", param="hostname")
    if hostname == platform.lower():
        raise InvalidRequest("this is the platform's own hostname", code="domain_reserved",
                             param="hostname")
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        count = await session.scalar(select(func.count()).select_from(Domain)
                                     .where(Domain.tenant_id == tenant_id))
        if (count or 0) >= tenant.caps.max_domains:
            raise InvalidRequest(f"a tenant may have at most {tenant.caps.max_domains} "
                                 "domains", code="domain_limit_reached", param="hostname")
        if await session.get(Domain, hostname) is not None:
            raise Conflict("this hostname is already taken", code="domain_taken",
                           param="hostname")
        domain = Domain(hostname=hostname, tenant_id=tenant_id,
                        verification_token=secrets.token_urlsafe(32), created_at=utcnow())
        session.add(domain)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError as exc:  # a concurrent add of the same hostname won
            raise Conflict("this hostname is already taken", code="domain_taken",
                           param="hostname") from exc
        out = domain_out(runtime, domain)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="domain.created",
                           target_type="domain", target_id=hostname,
                           after={"hostname": hostname, "status": out.status})
        return out


async def verify_domain(runtime: Runtime, tenant_id: str, actor: str,
                        hostname: str) -> DomainOut:
    """`POST /v1/tenant/domains/{hostname}/verify`: fetch the well-known URL and compare its
    body (stripped) with the token in constant time. Verified: the host serves the tenant
    from now on. Else 422 `domain_verification_failed` saying what was found (unreachable,
    an HTTP status, another body). Verifying a verified domain answers it unchanged."""
    async with runtime.db.session() as session:
        domain = await _own(session, tenant_id, hostname)
        if domain.verified_at is not None:
            return domain_out(runtime, domain)
        token = domain.verification_token or ""
        host = domain.hostname
    url = verification_url(runtime, host)
    try:
        fetched = await runtime.egress.fetch(url, max_bytes=_MAX_ANSWER, timeout_s=_TIMEOUT_S)
    except EgressError as exc:
        raise InvalidRequest(f"{url} could not be read: {exc.message}",
                             code="domain_verification_failed", param="hostname",
                             extra={"reason": exc.code}) from exc
    answer = fetched.data.strip()
    if not token or not hmac.compare_digest(answer, token.encode()):
        raise InvalidRequest(f"{url} answered HTTP {fetched.status_code} with a body that is "
                             "not this domain's verification token",
                             code="domain_verification_failed", param="hostname",
                             extra={"reason": "token_mismatch"})
    async with runtime.db.transaction() as session:
        domain = await _own(session, tenant_id, host)
        if domain.verified_at is None:
            domain.verified_at = utcnow()
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="domain.verified", target_type="domain",
                               target_id=host, before={"status": "pending"},
                               after={"status": "verified"})
        return domain_out(runtime, domain)


async def delete_domain(runtime: Runtime, tenant_id: str, actor: str,
                        hostname: str) -> DomainDeleted:
    """`DELETE /v1/tenant/domains/{hostname}`: the host stops serving the tenant at once."""
    async with runtime.db.transaction() as session:
        domain = await _own(session, tenant_id, hostname)
        before = domain_out(runtime, domain)
        await session.delete(domain)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="domain.deleted",
                           target_type="domain", target_id=domain.hostname,
                           before={"hostname": before.hostname, "status": before.status})
    runtime.tenant_views.forget(tenant_id)
    return DomainDeleted(hostname=domain.hostname)
