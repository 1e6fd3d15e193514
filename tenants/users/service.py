"""Users, sessions and one-time tokens: the database side of sign-in (gateway/people builds
the use cases on these; gateway/core/auth resolves a session cookie with `resolve_session`).

Every function takes the tenant id and filters by it. Tokens (session cookies, mailed links)
are 256-bit random, shown once and stored as SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, NotFound
from tenants.kernel.pagination import keyset, page
from tenants.users.models import OneTimeToken, User, UserSession

#: `last_seen_at` is written at most this often per session (not on every request).
LAST_SEEN_EVERY = timedelta(seconds=60)


def normalize_email(raw: str) -> str:
    """How an address is stored and compared: trimmed and lower-cased."""
    return raw.strip().lower()


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh 256-bit token (URL-safe) and its SHA-256."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


async def user_by_email(session: AsyncSession, tenant_id: str, email: str) -> User | None:
    return await session.scalar(select(User).where(User.tenant_id == tenant_id,
                                                   User.email == normalize_email(email)))


async def get_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    """A user of this tenant; `NotFound` for anyone else's."""
    user = await session.scalar(select(User).where(User.tenant_id == tenant_id,
                                                   User.id == user_id))
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


async def create_user(session: AsyncSession, tenant_id: str, *, email: str | None, role: str,
                      password_hash: str | None = None, customer_id: str | None = None,
                      verified: bool = False, user_id: str | None = None) -> User:
    """Insert a user; `Conflict` (`user_exists`, param `email`) when the tenant has one with
    this address."""
    user = User(id=user_id or new_id("usr"), tenant_id=tenant_id,
                email=None if email is None else normalize_email(email),
                password_hash=password_hash, role=role, customer_id=customer_id,
                email_verified_at=utcnow() if verified else None)
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("this tenant already has a user with that email", code="user_exists",
                       param="email") from exc
    return user


async def list_users(session: AsyncSession, tenant_id: str, *, roles: Sequence[str],
                     limit: int, cursor: str | None) -> tuple[list[User], str | None]:
    """A tenant's users with one of `roles`, newest first, one keyset page."""
    query = select(User).where(User.tenant_id == tenant_id, User.role.in_(roles))
    rows = list(await session.scalars(keyset(query, User.created_at, User.id, cursor, limit)))
    return page(rows, limit)


async def count_owners(session: AsyncSession, tenant_id: str) -> int:
    """Enabled owners of a tenant (the last one can be neither demoted nor removed)."""
    found = await session.scalar(select(func.count()).select_from(User).where(
        User.tenant_id == tenant_id, User.role == "owner", User.disabled_at.is_(None)))
    return int(found or 0)


async def customer_user(session: AsyncSession, tenant_id: str, customer_id: str) -> User | None:
    """The (oldest) portal user linked to a customer, if any."""
    return await session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.customer_id == customer_id,
                           User.role == "customer").order_by(User.created_at).limit(1))


# --- one-time tokens -------------------------------------------------------------------------

async def issue_token(session: AsyncSession, tenant_id: str, purpose: str, *, ttl_s: int,
                      user_id: str | None = None, customer_id: str | None = None,
                      redirect_to: str | None = None) -> tuple[str, OneTimeToken]:
    """Store a one-time token for a mailed or minted link; returns the raw token (put in the
    link, never stored) and its row."""
    raw, digest = new_token()
    row = OneTimeToken(id=new_id("ott"), tenant_id=tenant_id, purpose=purpose,
                       token_hash=digest, user_id=user_id, customer_id=customer_id,
                       redirect_to=redirect_to, expires_at=utcnow() + timedelta(seconds=ttl_s))
    session.add(row)
    await session.flush()
    return raw, row


async def redeem_token(session: AsyncSession, tenant_id: str, raw: str,
                       purposes: Sequence[str]) -> OneTimeToken | None:
    """Use a one-time token: one conditional UPDATE marks it used only if it is this
    tenant's, of one of `purposes`, unused and unexpired, so two concurrent redeems cannot
    both win. Returns the row, or None (unknown, used, expired or another tenant's)."""
    digest = hash_token(raw)
    now = utcnow()
    result = await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.token_hash == digest, OneTimeToken.tenant_id == tenant_id,
               OneTimeToken.purpose.in_(purposes), OneTimeToken.used_at.is_(None),
               OneTimeToken.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) != 1:
        return None
    return await session.scalar(select(OneTimeToken).where(OneTimeToken.token_hash == digest,
                                                           OneTimeToken.tenant_id == tenant_id))


async def void_tokens(session: AsyncSession, tenant_id: str, user_id: str,
                      purposes: Sequence[str]) -> None:
    """Mark a user's unused tokens of `purposes` used (a new password voids old reset
    links)."""
    await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.tenant_id == tenant_id, OneTimeToken.user_id == user_id,
               OneTimeToken.purpose.in_(purposes), OneTimeToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False))


# --- sessions --------------------------------------------------------------------------------

async def open_session(session: AsyncSession, user: User, *, absolute_s: int, user_agent: str,
                       ip_address: str, method: str) -> tuple[UserSession, str]:
    """A new session for `user`; returns the row and the raw token for the cookie."""
    raw, digest = new_token()
    now = utcnow()
    row = UserSession(id=new_id("ses"), tenant_id=user.tenant_id, user_id=user.id,
                      token_hash=digest, created_at=now, last_seen_at=now,
                      expires_at=now + timedelta(seconds=absolute_s),
                      user_agent=user_agent[:200], ip_address=ip_address[:64], method=method)
    session.add(row)
    await session.flush()
    return row, raw


def session_alive(row: UserSession, *, idle_s: int, now: datetime) -> bool:
    """Not revoked, within its absolute lifetime, and used within the idle lifetime."""
    return (row.revoked_at is None and row.expires_at > now
            and row.last_seen_at + timedelta(seconds=idle_s) > now)


async def resolve_session(session: AsyncSession, raw: str, *,
                          idle_s: int) -> tuple[UserSession, User] | None:
    """The live session a cookie's token names and its (enabled) user, or None. Called on
    every cookie-authenticated request; reads only (see `touch_session`)."""
    if not raw:
        return None
    found = (await session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(raw),
               User.tenant_id == UserSession.tenant_id))).first()
    if found is None:
        return None
    row, user = found
    if not session_alive(row, idle_s=idle_s, now=utcnow()) or user.disabled_at is not None:
        return None
    return row, user


def needs_touch(row: UserSession) -> bool:
    """Whether `last_seen_at` is over a minute old (so the idle clock must be restarted)."""
    return utcnow() - row.last_seen_at >= LAST_SEEN_EVERY


async def touch_session(session: AsyncSession, tenant_id: str, session_id: str) -> None:
    """Restart a session's idle clock: at most once a minute, not on every request, so a
    busy browser costs no write per request."""
    await session.execute(
        update(UserSession)
        .where(UserSession.tenant_id == tenant_id, UserSession.id == session_id)
        .values(last_seen_at=utcnow())
        .execution_options(synchronize_session=False))


def session_not_found() -> NotFound:
    return NotFound("no such session", code="session_not_found")


async def list_sessions(session: AsyncSession, tenant_id: str, user_id: str, *, idle_s: int,
                        limit: int, cursor: str | None,
                        session_id: str | None = None) -> tuple[list[UserSession], str | None]:
    """A user's live sessions (or the one `session_id`), newest first (revoked and expired
    ones are left out)."""
    now = utcnow()
    query = select(UserSession).where(
        UserSession.tenant_id == tenant_id, UserSession.user_id == user_id,
        UserSession.revoked_at.is_(None), UserSession.expires_at > now,
        UserSession.last_seen_at > now - timedelta(seconds=idle_s))
    if session_id is not None:
        query = query.where(UserSession.id == session_id)
    rows = list(await session.scalars(keyset(query, UserSession.created_at, UserSession.id,
                                             cursor, limit)))
    return page(rows, limit)


async def revoke_session(session: AsyncSession, tenant_id: str, user_id: str,
                         session_id: str) -> UserSession:
    """Revoke one of the user's own sessions (idempotent); `NotFound` for anyone else's."""
    row = await session.scalar(select(UserSession).where(
        UserSession.tenant_id == tenant_id, UserSession.user_id == user_id,
        UserSession.id == session_id))
    if row is None:
        raise session_not_found()
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def revoke_user_sessions(session: AsyncSession, tenant_id: str, user_id: str, *,
                               keep: str | None = None) -> None:
    """Revoke every live session of a user but `keep` (a reset, a disable, a role change)."""
    query = (update(UserSession)
             .where(UserSession.tenant_id == tenant_id, UserSession.user_id == user_id,
                    UserSession.revoked_at.is_(None))
             .values(revoked_at=utcnow())
             .execution_options(synchronize_session=False))
    if keep is not None:
        query = query.where(UserSession.id != keep)
    await session.execute(query)
