"""Request and response structs of sign-in, sessions, portal sessions and staff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from tenants.schemas import Slug, StaffRole

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254,
                                    pattern=r"^\s*[^@\s]+@[^@\s]+\s*$")]
#: The policy (minimum length, common list) is checked by the service: its minimum is a
#: setting, and a failure names the field (422, `param: "password"`).
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
CustomerRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SignupIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    #: The tenant's slug: required on the platform's own host, optional (and checked) on a
    #: tenant's domain, where the host names the tenant.
    tenant: Slug | None = None


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    tenant: Slug | None = None


class EmailIn(msgspec.Struct, forbid_unknown_fields=True):
    """A password reset or a magic sign-in link asked for."""

    email: Email
    tenant: Slug | None = None


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    """A mailed link's token (email verification, magic sign-in)."""

    token: Token
    tenant: Slug | None = None


class ResetConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    """A reset (or invitation) link's token and the new password."""

    token: Token
    password: Password
    tenant: Slug | None = None


class UserOut(msgspec.Struct):
    id: str
    email: str | None
    role: str
    #: A portal user's customer: the tenant's own id for it (as `X-Customer-Id` takes).
    customer_id: str | None
    email_verified: bool
    created_at: datetime
    disabled_at: datetime | None
    #: The language the user chose (`en`, `ar`; `PATCH /v1/users/me`), null when never chosen.
    locale: str | None
    object: str = "user"


class SignedIn(msgspec.Struct):
    """A new session: the cookie is set; `csrf_token` goes in `X-CSRF-Token` on writes."""

    id: str
    user: UserOut
    csrf_token: str
    #: The absolute end; a session unused for `MEDIAHUB_SESSION_IDLE_S` ends sooner.
    expires_at: datetime
    object: str = "session"


class SessionOut(msgspec.Struct):
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    ip_address: str
    #: How it was opened: `password`, `magic`, `portal` or `reset`.
    method: str
    #: The session of this request.
    current: bool
    revoked_at: datetime | None = None
    object: str = "session"


class SessionList(msgspec.Struct):
    data: list[SessionOut]
    next_cursor: str | None
    object: str = "list"


class Me(msgspec.Struct):
    """The caller: its user, its session, and the session's CSRF token (for a page that
    reloaded and lost the one sign-in gave)."""

    user: UserOut
    session: SessionOut
    csrf_token: str
    object: str = "me"


class Accepted(msgspec.Struct):
    """The answer to sign-up, reset and magic-link requests: the same whether or not the
    account exists, so it tells nothing about who has one."""

    status: Literal["accepted"] = "accepted"
    message: str = "if the address can receive it, a message is on its way"
    object: str = "request"


class PortalSessionIn(msgspec.Struct, forbid_unknown_fields=True):
    #: The tenant's own id for the customer (as in `X-Customer-Id`); created on first use.
    customer_id: CustomerRef
    #: Where the browser lands once signed in: a path (`/credits`) or an absolute URL on one
    #: of the tenant's domains. Default `/`.
    return_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None


class PortalSessionOut(msgspec.Struct):
    #: Open once, within minutes, to be signed in as the customer on the tenant's host.
    url: str
    expires_at: datetime
    customer_id: str
    return_url: str
    object: str = "portal_session"


class InviteIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: StaffRole


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: StaffRole


class UserList(msgspec.Struct):
    data: list[UserOut]
    next_cursor: str | None
    object: str = "list"


#: The languages the portal and its mails speak.
Locale = Literal["en", "ar"]


class MeUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/users/me`: the signed-in user's own preferences."""

    #: The portal's and the user's mails' language; null forgets the choice.
    locale: Locale | None
