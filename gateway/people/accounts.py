"""The signed-in user's own account: who am I, my sessions, sign-out (`/v1/users/me`,
`/v1/sessions`, `/v1/auth/logout`). Only a session has these: a key gets 403
`session_required`. A session id of another user is 404."""

from __future__ import annotations

from gateway.core import cookies
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.people.schemas import Me, MeUpdate, SessionList, SessionOut, UserOut
from gateway.people.views import render_user, session_out
from tenants.kernel.errors import PermissionDenied
from tenants.users import service as users


def _own(principal: Principal) -> tuple[str, str, str]:
    if principal.kind != "user" or principal.user_id is None or principal.session_id is None:
        raise PermissionDenied("this route is for a signed-in user's session, not a key",
                               code="session_required")
    return principal.tenant, principal.user_id, principal.session_id


async def me(runtime: Runtime, principal: Principal, raw_session: str) -> Me:
    """`GET /v1/users/me`: the caller's user, session and CSRF token."""
    tenant_id, user_id, session_id = _own(principal)
    async with runtime.db.session() as session:
        user = await users.get_user(session, tenant_id, user_id)
        rows, _ = await users.list_sessions(session, tenant_id, user_id,
                                            idle_s=runtime.settings.session_idle_s, limit=1,
                                            cursor=None, session_id=session_id)
        if not rows:  # revoked between the guard and here
            raise users.session_not_found()
        return Me(user=await render_user(session, user), session=session_out(rows[0], session_id),
                  csrf_token=cookies.csrf_token(runtime.settings, raw_session))


async def update_me(runtime: Runtime, principal: Principal, data: MeUpdate) -> UserOut:
    """`PATCH /v1/users/me`: set the caller's own preferences (its `locale`, which the
    portal then speaks on every device and the user's mails use). Returns the user; a key
    gets 403 `session_required`."""
    tenant_id, user_id, _ = _own(principal)
    async with runtime.db.transaction() as session:
        user = await users.get_user(session, tenant_id, user_id)
        user.locale = data.locale
        await session.flush()
        return await render_user(session, user)


async def list_sessions(runtime: Runtime, principal: Principal, *, limit: int,
                        cursor: str | None) -> SessionList:
    """`GET /v1/sessions`: the caller's live sessions, newest first."""
    tenant_id, user_id, session_id = _own(principal)
    async with runtime.db.session() as session:
        rows, next_cursor = await users.list_sessions(
            session, tenant_id, user_id, idle_s=runtime.settings.session_idle_s, limit=limit,
            cursor=cursor)
    return SessionList(data=[session_out(r, session_id) for r in rows], next_cursor=next_cursor)


async def get_session(runtime: Runtime, principal: Principal, session_id: str) -> SessionOut:
    """`GET /v1/sessions/{id}`: one of the caller's sessions (404 for anyone else's)."""
    tenant_id, user_id, current = _own(principal)
    async with runtime.db.session() as session:
        rows, _ = await users.list_sessions(session, tenant_id, user_id,
                                            idle_s=runtime.settings.session_idle_s,
                                            limit=1, cursor=None, session_id=session_id)
    if not rows:
        raise users.session_not_found()
    return session_out(rows[0], current)


async def revoke(runtime: Runtime, principal: Principal, session_id: str | None) -> SessionOut:
    """`DELETE /v1/sessions/{id}` and (`session_id` None: the current one) sign-out."""
    tenant_id, user_id, current = _own(principal)
    async with runtime.db.transaction() as session:
        row = await users.revoke_session(session, tenant_id, user_id, session_id or current)
        return session_out(row, current)
