"""Sign-in, sessions, portal sessions and staff (docs/people.md). Thin: each route parses,
calls one service function, renders (setting or clearing the session cookie)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from gateway.core import cookies
from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.runtime import Runtime
from gateway.people import accounts, portal_sessions, service, staff
from gateway.people.schemas import (
    Accepted,
    EmailIn,
    InviteIn,
    LoginIn,
    Me,
    MeUpdate,
    PortalSessionIn,
    PortalSessionOut,
    ResetConfirmIn,
    SessionList,
    SessionOut,
    SignedIn,
    SignupIn,
    TokenIn,
    UserList,
    UserOut,
    UserUpdate,
)
from gateway.people.service import Opened
from gateway.people.sites import Caller

AnyRequest = Request[Any, Any, Any]


def _caller(request: AnyRequest, runtime: Runtime) -> Caller:
    return Caller.of(request, runtime.settings)


def _signed_in(request: AnyRequest, runtime: Runtime, opened: Opened) -> Response[SignedIn]:
    cookie = cookies.session_cookie(runtime.settings, request, opened.raw_token,
                                    opened.max_age_s)
    return Response(opened.answer, cookies=[cookie])


def _redirect(request: AnyRequest, runtime: Runtime, opened: Opened) -> Redirect:
    cookie = cookies.session_cookie(runtime.settings, request, opened.raw_token,
                                    opened.max_age_s)
    return Redirect(path=opened.redirect_to, status_code=303, cookies=[cookie])


def _link(token: str | None, tenant: str | None) -> TokenIn:
    # A link's query, held to the body's limits (an oversized value is simply not valid).
    if not token or len(token) > 200:
        raise service.invalid_token()
    return TokenIn(token=token, tenant=tenant[:63] if tenant else None)


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["sign-in"]

    @post("/signup", status_code=202, summary="Sign up for a tenant's portal")
    async def signup(self, request: AnyRequest, runtime: RuntimeDep,
                     data: SignupIn) -> Accepted:
        """Creates a portal customer (and its wallet's customer) and mails a verification
        link; an address that has an account gets a mail saying so, and the same answer.
        On the platform host name the tenant with `tenant`. 403 `signup_closed` unless the
        tenant's `branding.open_signup` is true; 422 `password_too_short` /
        `password_too_common` (`param: "password"`); 429 when throttled."""
        return await service.signup(runtime, _caller(request, runtime), data)

    @post("/login", status_code=200, summary="Sign in with email and password")
    async def login(self, request: AnyRequest, runtime: RuntimeDep,
                    data: LoginIn) -> Response[SignedIn]:
        """Sets the `mh_session` cookie (HttpOnly, SameSite=Lax) and answers the session
        with its `csrf_token`, to send as `X-CSRF-Token` on every write. 401
        `invalid_credentials`, 403 `email_unverified`, 429 when throttled."""
        opened = await service.login(runtime, _caller(request, runtime), data)
        return _signed_in(request, runtime, opened)

    @post("/logout", status_code=200, guards=[requires()], summary="Sign out")
    async def logout(self, request: AnyRequest, principal: Principal,
                     runtime: RuntimeDep) -> Response[SessionOut]:
        """Revokes the current session and clears the cookie (needs `X-CSRF-Token`)."""
        revoked = await accounts.revoke(runtime, principal, None)
        return Response(revoked, cookies=[cookies.cleared_cookie(runtime.settings, request)])

    @post("/verify", status_code=200, summary="Confirm an email address")
    async def verify(self, request: AnyRequest, runtime: RuntimeDep,
                     data: TokenIn) -> UserOut:
        """The token of the verification link; 422 `invalid_token` when used or expired."""
        return await service.verify(runtime, _caller(request, runtime), data)

    @get("/verify", summary="The verification link", status_code=303)
    async def verify_link(self, request: AnyRequest, runtime: RuntimeDep,
                          token: FromQuery[str | None] = None,
                          tenant: FromQuery[str | None] = None) -> Redirect:
        """What the mailed link opens: verifies, then sends the browser to the portal's
        root (`/?verified=1`)."""
        await service.verify(runtime, _caller(request, runtime), _link(token, tenant))
        return Redirect(path="/?verified=1", status_code=303)

    @post("/reset", status_code=202, summary="Ask for a password reset link")
    async def reset(self, request: AnyRequest, runtime: RuntimeDep,
                    data: EmailIn) -> Accepted:
        """Always 202 with the same body; the mail goes out only when the address has an
        account. Its link opens the portal's `/reset-password?token=` page, which posts the
        new password to `/v1/auth/reset/confirm`."""
        return await service.request_reset(runtime, _caller(request, runtime), data)

    @post("/reset/confirm", status_code=200, summary="Set a new password with a link's token")
    async def reset_confirm(self, request: AnyRequest, runtime: RuntimeDep,
                            data: ResetConfirmIn) -> Response[SignedIn]:
        """For a reset or an invitation link: sets the password, signs out every other
        session of the user, and signs this browser in (cookie + CSRF token)."""
        opened = await service.confirm_reset(runtime, _caller(request, runtime), data)
        return _signed_in(request, runtime, opened)

    @post("/magic", status_code=202, summary="Ask for a sign-in link by email")
    async def magic(self, request: AnyRequest, runtime: RuntimeDep,
                    data: EmailIn) -> Accepted:
        """Passwordless sign-in: always 202; the link goes out only to an existing account."""
        return await service.request_magic(runtime, _caller(request, runtime), data)

    @post("/magic/redeem", status_code=200, summary="Sign in with a magic link's token")
    async def magic_redeem(self, request: AnyRequest, runtime: RuntimeDep,
                           data: TokenIn) -> Response[SignedIn]:
        """Signs in (cookie + CSRF token); 422 `invalid_token` when used or expired."""
        opened = await service.redeem_magic(runtime, _caller(request, runtime), data)
        return _signed_in(request, runtime, opened)

    @get("/magic", summary="The magic sign-in link", status_code=303)
    async def magic_link(self, request: AnyRequest, runtime: RuntimeDep,
                         token: FromQuery[str | None] = None,
                         tenant: FromQuery[str | None] = None) -> Redirect:
        """What the mailed link opens: signs in and sends the browser to the portal's root."""
        opened = await service.redeem_magic(runtime, _caller(request, runtime),
                                            _link(token, tenant))
        return _redirect(request, runtime, opened)

    @get("/portal", summary="A portal session's link", status_code=303)
    async def portal_link(self, request: AnyRequest, runtime: RuntimeDep,
                          token: FromQuery[str | None] = None,
                          tenant: FromQuery[str | None] = None) -> Redirect:
        """What a minted portal session's `url` opens (once): signs the customer in on this
        host and sends the browser to the session's `return_url`."""
        opened = await portal_sessions.redeem(runtime, _caller(request, runtime),
                                              _link(token, tenant))
        return _redirect(request, runtime, opened)


class SessionController(Controller):
    path = "/v1/sessions"
    tags = ["sign-in"]
    guards = [requires()]

    @get("/", summary="Your sessions")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> SessionList:
        """The signed-in user's live sessions, newest first (`current` marks this one)."""
        return await accounts.list_sessions(runtime, principal, limit=page_limit(limit),
                                            cursor=cursor)

    @get("/{session_id:str}", summary="One of your sessions")
    async def get_(self, principal: Principal, runtime: RuntimeDep,
                   session_id: FromPath[str]) -> SessionOut:
        """404 for a session that is not the caller's own (or no longer live)."""
        return await accounts.get_session(runtime, principal, session_id)

    @delete("/{session_id:str}", status_code=200, summary="Sign a session out")
    async def delete_(self, principal: Principal, runtime: RuntimeDep,
                      session_id: FromPath[str]) -> SessionOut:
        """Revokes one of the caller's own sessions (idempotent); 404 for anyone else's."""
        return await accounts.revoke(runtime, principal, session_id)


@get("/v1/users/me", guards=[requires()], tags=["sign-in"], summary="Who you are")
async def users_me(request: AnyRequest, principal: Principal, runtime: RuntimeDep) -> Me:
    """The signed-in user, its session and the session's CSRF token (403
    `session_required` for a key)."""
    raw = request.cookies.get(cookies.SESSION_COOKIE, "")
    return await accounts.me(runtime, principal, raw)


@patch("/v1/users/me", guards=[requires()], tags=["sign-in"],
       summary="Change your own preferences")
async def update_users_me(principal: Principal, runtime: RuntimeDep, data: MeUpdate) -> UserOut:
    """Sets the signed-in user's `locale` (`en` or `ar`; null forgets it): the portal's
    language on every device, and the language of the mails sent to this user. A session
    only (403 `session_required` for a key), with `X-CSRF-Token` as every signed-in write."""
    return await accounts.update_me(runtime, principal, data)


class UserController(Controller):
    path = "/v1/users"
    tags = ["staff"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @get("/", summary="The tenant's users")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    role: FromQuery[str | None] = None, limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> UserList:
        """Staff and portal customers, newest first; `role` narrows to one role."""
        return await staff.list_users(runtime, principal, role=role, limit=page_limit(limit),
                                      cursor=cursor)

    @post("/", status_code=201, summary="Invite a staff member")
    async def invite(self, principal: Principal, runtime: RuntimeDep,
                     data: InviteIn) -> UserOut:
        """Mails a link to set a password. Only an owner's session invites an owner (403
        `owner_required`); 409 `user_exists`."""
        return await staff.invite(runtime, principal, principal.tenant, data)

    @patch("/{user_id:str}", summary="Change a staff member's role")
    async def update(self, principal: Principal, runtime: RuntimeDep,
                     user_id: FromPath[str], data: UserUpdate) -> UserOut:
        """Only an owner's session makes or unmakes an owner; the last owner stays (409
        `last_owner`)."""
        return await staff.change_role(runtime, principal, user_id, data)

    @delete("/{user_id:str}", status_code=200, summary="Remove a user")
    async def remove(self, principal: Principal, runtime: RuntimeDep,
                     user_id: FromPath[str]) -> UserOut:
        """Disables the user and signs out its sessions; the last owner stays (409)."""
        return await staff.disable(runtime, principal, user_id)


@post("/v1/portal_sessions", status_code=201, tags=["sign-in"],
      guards=[requires("generate", "read", "billing", tenant_wide=True)],
      summary="Mint a one-time portal link for a customer")
async def create_portal_session(principal: Principal, runtime: RuntimeDep,
                                data: PortalSessionIn) -> PortalSessionOut:
    """For the tenant's backend (as Stripe's customer portal): a link, valid for minutes and
    usable once, that signs `customer_id` (the tenant's own id) in on the tenant's host and
    sends it to `return_url`. Needs a tenant-wide key (or staff session) holding
    `generate`, `read` and `billing`: every scope the customer's session will hold."""
    return await portal_sessions.mint(runtime, principal, data)
