"""Sign-up, sign-in, sign-out, email verification, password reset and magic links: the use
cases behind `/v1/auth` (docs/people.md).

Requests that take an email address answer the same whether or not it has an account
(sign-up, reset and magic-link requests: 202 `Accepted`; sign-in: 401 `invalid_credentials`
for an unknown address and a wrong password alike, after the same argon2 work), and every one
of them is throttled first (`throttle`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import cookies
from gateway.core.runtime import Runtime
from gateway.core.suspension import check_active
from gateway.people import mails
from gateway.people.schemas import (
    Accepted,
    EmailIn,
    LoginIn,
    ResetConfirmIn,
    SignedIn,
    SignupIn,
    TokenIn,
    UserOut,
)
from gateway.people.sites import Caller, Site, resolve_site
from gateway.people.throttle import throttle
from gateway.people.views import render_user
from tenants import audit
from tenants import service as tenants
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from tenants.schemas import signup_open
from tenants.users import passwords
from tenants.users import service as users
from tenants.users.models import User

#: Mailed links for a reset and an invitation point at the portal's pages, which ask for the
#: new password and post it to `POST /v1/auth/reset/confirm`.
RESET_PAGE = "/reset-password"
INVITE_PAGE = "/set-password"


@dataclass(frozen=True, slots=True)
class Opened:
    """A session just opened: what to answer, and the raw token for the cookie."""

    answer: SignedIn
    raw_token: str
    max_age_s: int
    #: Where a link-opened session sends the browser (portal sessions: their return URL).
    redirect_to: str = "/"


def invalid_token() -> InvalidRequest:
    return InvalidRequest("this link is not valid: it was used, expired, or is unknown",
                          code="invalid_token", param="token")


async def site_for(runtime: Runtime, caller: Caller, slug: str | None) -> Site:
    """The tenant (and link origin) of a sign-in request: `sites.resolve_site`. 403
    `tenant_suspended` while the operator has the tenant suspended: no one signs in, up or
    back (the public portal config already says so, so this tells no one anything new)."""
    async with runtime.db.session() as session:
        site = await resolve_site(session, runtime.settings, caller, slug)
    await check_active(runtime, site.tenant.id)
    return site


async def open_for(runtime: Runtime, session: AsyncSession, user: User, caller: Caller,
                   method: str, redirect_to: str = "/") -> Opened:
    """Open a session for `user` in the caller's transaction and describe it."""
    settings = runtime.settings
    row, raw = await users.open_session(session, user, absolute_s=settings.session_absolute_s,
                                        user_agent=caller.user_agent, ip_address=caller.ip,
                                        method=method)
    answer = SignedIn(id=row.id, user=await render_user(session, user),
                      csrf_token=cookies.csrf_token(settings, raw), expires_at=row.expires_at)
    return Opened(answer=answer, raw_token=raw, max_age_s=settings.session_absolute_s,
                  redirect_to=redirect_to)


async def signup(runtime: Runtime, caller: Caller, body: SignupIn) -> Accepted:
    """`POST /v1/auth/signup`: a portal customer (and its customer, external id
    `portal:<user id>`) with a password, unverified until the mailed link is opened. An
    address that already has an account gets a mail saying so instead; the answer is the
    same. 403 `signup_closed` unless the tenant's `branding.open_signup` is true."""
    site = await site_for(runtime, caller, body.tenant)
    tenant = site.tenant
    await throttle(runtime, tenant_id=tenant.id, email=body.email, ip=caller.ip)
    if not signup_open(tenant.branding):
        raise PermissionDenied("this portal does not take sign-ups", code="signup_closed")
    email = users.normalize_email(body.email)
    passwords.check_policy(body.password, min_length=runtime.settings.password_min_length,
                           email=email)
    # Hashed before looking the address up, so both answers cost the same.
    password_hash = await passwords.hash_password(body.password)
    async with runtime.db.transaction() as session:
        if await users.user_by_email(session, tenant.id, email) is not None:
            mails.already_registered(runtime, tenant, email, site.link(RESET_PAGE))
            return Accepted()
        user_id = new_id("usr")
        customer = await tenants.customer_for(session, tenant.id, f"portal:{user_id}",
                                              create=True)
        assert customer is not None
        user = await users.create_user(session, tenant.id, email=email, role="customer",
                                       password_hash=password_hash, customer_id=customer.id,
                                       user_id=user_id)
        raw, _ = await users.issue_token(session, tenant.id, "verify", user_id=user.id,
                                         ttl_s=runtime.settings.verification_link_ttl_s)
        await audit.record(session, tenant_id=tenant.id, actor=f"user:{user.id}",
                           action="user.signed_up", target_type="user", target_id=user.id,
                           after={"email": email, "role": "customer"})
    mails.verification(runtime, tenant, email, site.link("/v1/auth/verify", token=raw))
    return Accepted()


async def verify(runtime: Runtime, caller: Caller, body: TokenIn) -> UserOut:
    """`POST /v1/auth/verify` (and the mailed link's GET): marks the address verified; 422
    `invalid_token` for a used, expired or unknown link."""
    site = await site_for(runtime, caller, body.tenant)
    async with runtime.db.transaction() as session:
        token = await users.redeem_token(session, site.tenant.id, body.token, ["verify"])
        if token is None or token.user_id is None:
            raise invalid_token()
        user = await users.get_user(session, site.tenant.id, token.user_id)
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            await session.flush()
        return await render_user(session, user)


async def login(runtime: Runtime, caller: Caller, body: LoginIn) -> Opened:
    """`POST /v1/auth/login`: checks the password (rehashing one made with older
    parameters) and opens a session. 401 `invalid_credentials` for an unknown address, a
    wrong password or a disabled user alike; 403 `email_unverified` (only to whoever knows
    the password) until the address is verified."""
    site = await site_for(runtime, caller, body.tenant)
    tenant_id = site.tenant.id
    await throttle(runtime, tenant_id=tenant_id, email=body.email, ip=caller.ip)
    async with runtime.db.session() as session:
        user = await users.user_by_email(session, tenant_id, body.email)
    usable = user is not None and user.disabled_at is None
    ok, rehash = await passwords.verify_password(
        user.password_hash if user is not None and usable else None, body.password)
    if not ok or user is None:
        raise AuthenticationFailed("the email or the password is wrong",
                                   code="invalid_credentials")
    if user.email_verified_at is None:
        raise PermissionDenied("confirm your email address first: open the link we sent",
                               code="email_unverified")
    async with runtime.db.transaction() as session:
        user = await users.get_user(session, tenant_id, user.id)
        if rehash is not None:
            user.password_hash = rehash
        return await open_for(runtime, session, user, caller, "password")


async def request_reset(runtime: Runtime, caller: Caller, body: EmailIn) -> Accepted:
    """`POST /v1/auth/reset`: mails a one-time link to set a new password when the address
    has an enabled account; answers the same either way."""
    return await _mail_link(runtime, caller, body, "reset")


async def request_magic(runtime: Runtime, caller: Caller, body: EmailIn) -> Accepted:
    """`POST /v1/auth/magic`: mails a one-time sign-in link when the address has an enabled
    account (no account is created); answers the same either way."""
    return await _mail_link(runtime, caller, body, "magic")


async def _mail_link(runtime: Runtime, caller: Caller, body: EmailIn, purpose: str) -> Accepted:
    site = await site_for(runtime, caller, body.tenant)
    tenant = site.tenant
    await throttle(runtime, tenant_id=tenant.id, email=body.email, ip=caller.ip)
    async with runtime.db.transaction() as session:
        user = await users.user_by_email(session, tenant.id, body.email)
        if user is None or user.disabled_at is not None or user.email is None:
            return Accepted()
        raw, _ = await users.issue_token(session, tenant.id, purpose, user_id=user.id,
                                         ttl_s=runtime.settings.email_link_ttl_s)
    # In the language the user chose (PATCH /v1/users/me), English when none.
    if purpose == "reset":
        mails.reset(runtime, tenant, user.email, site.link(RESET_PAGE, token=raw),
                    locale=user.locale)
    else:
        mails.magic(runtime, tenant, user.email, site.link("/v1/auth/magic", token=raw),
                    locale=user.locale)
    return Accepted()


async def confirm_reset(runtime: Runtime, caller: Caller, body: ResetConfirmIn) -> Opened:
    """`POST /v1/auth/reset/confirm`: a reset (or invitation) link's token and a new
    password. Sets it (the address is verified: the mail reached it), revokes every other
    session of the user and unused reset links, and signs this browser in. 422 with `param`
    for a weak password (checked before the link is used up), 422 `invalid_token`."""
    site = await site_for(runtime, caller, body.tenant)
    await throttle(runtime, tenant_id=site.tenant.id, email=None, ip=caller.ip)
    passwords.check_policy(body.password, min_length=runtime.settings.password_min_length)
    password_hash = await passwords.hash_password(body.password)
    async with runtime.db.transaction() as session:
        token = await users.redeem_token(session, site.tenant.id, body.token,
                                         ["reset", "invite"])
        if token is None or token.user_id is None:
            raise invalid_token()
        user = await users.get_user(session, site.tenant.id, token.user_id)
        if user.disabled_at is not None:
            raise invalid_token()
        if user.email is not None and body.password.lower() == user.email:
            raise InvalidRequest("this password is too common; choose another",
                                 code="password_too_common", param="password")
        user.password_hash = password_hash
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
        await users.revoke_user_sessions(session, site.tenant.id, user.id)
        await users.void_tokens(session, site.tenant.id, user.id, ["reset", "invite"])
        return await open_for(runtime, session, user, caller, "reset")


async def redeem_magic(runtime: Runtime, caller: Caller, body: TokenIn) -> Opened:
    """`POST /v1/auth/magic/redeem` (and the mailed link's GET): signs in with a magic
    link (which also verifies the address); 422 `invalid_token`."""
    site = await site_for(runtime, caller, body.tenant)
    async with runtime.db.transaction() as session:
        token = await users.redeem_token(session, site.tenant.id, body.token, ["magic"])
        if token is None or token.user_id is None:
            raise invalid_token()
        user = await users.get_user(session, site.tenant.id, token.user_id)
        if user.disabled_at is not None:
            raise invalid_token()
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
        return await open_for(runtime, session, user, caller, "magic")
