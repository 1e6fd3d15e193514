"""A tenant's staff, managed by its owners and admins (`/v1/users`) and bootstrapped by the
operator (`POST /admin/v1/tenants/{id}/users`).

Rules: only an owner's session (or the operator) makes, unmakes or removes an owner; a key,
even with `tenant_admin`, cannot (so an admin cannot promote itself through a key it made);
the last enabled owner can be neither demoted nor removed (409 `last_owner`). Every change is
in the audit log.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.auth import OPERATOR, Principal
from gateway.core.runtime import Runtime
from gateway.people import mails
from gateway.people.schemas import InviteIn, UserList, UserOut, UserUpdate
from gateway.people.service import INVITE_PAGE
from gateway.people.sites import home_site
from gateway.people.views import external_ids, render_user, user_out
from tenants import audit
from tenants import service as tenants
from tenants.kernel.db import utcnow
from tenants.kernel.errors import Conflict, InvalidRequest, PermissionDenied
from tenants.users import service as users
from tenants.users.models import User

ROLES = ("owner", "admin", "developer", "billing", "viewer", "customer")


def _snapshot(user: User) -> dict[str, object]:
    return {"email": user.email, "role": user.role, "disabled_at": user.disabled_at}


def _may_touch_owners(principal: Principal) -> bool:
    return principal.kind == "operator" or (principal.kind == "user"
                                            and principal.role == "owner")


async def _guard_last_owner(session: AsyncSession, tenant_id: str) -> None:
    # Lock the enabled owners (PostgreSQL; SQLite writes one at a time anyway), so two
    # concurrent demotions cannot both see the other owner still there.
    owners = list(await session.scalars(
        select(User.id).where(User.tenant_id == tenant_id, User.role == "owner",
                              User.disabled_at.is_(None)).with_for_update()))
    if len(owners) <= 1:
        raise Conflict("a tenant keeps at least one owner", code="last_owner")


async def list_users(runtime: Runtime, principal: Principal, *, role: str | None, limit: int,
                     cursor: str | None) -> UserList:
    """`GET /v1/users`: the tenant's users (staff and customers; `role` narrows), newest
    first."""
    if role is not None and role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role",
                             param="role")
    async with runtime.db.session() as session:
        rows, next_cursor = await users.list_users(
            session, principal.tenant, roles=[role] if role else ROLES, limit=limit,
            cursor=cursor)
        external = await external_ids(session, principal.tenant, rows)
    return UserList(data=[user_out(u, external) for u in rows], next_cursor=next_cursor)


async def invite(runtime: Runtime, principal: Principal, tenant_id: str,
                 body: InviteIn) -> UserOut:
    """`POST /v1/users` (and the operator's bootstrap): a staff member with `role` and no
    password yet, mailed a link to set one (valid `MEDIAHUB_VERIFICATION_LINK_TTL_S`). 409
    `user_exists` when the address has a user in this tenant; 403 `owner_required` to invite
    an owner without being one."""
    if body.role == "owner" and not _may_touch_owners(principal):
        raise PermissionDenied("only an owner can make an owner", code="owner_required",
                               param="role")
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        user = await users.create_user(session, tenant.id, email=body.email, role=body.role)
        raw, _ = await users.issue_token(session, tenant.id, "invite", user_id=user.id,
                                         ttl_s=runtime.settings.verification_link_ttl_s)
        await audit.record(session, tenant_id=tenant.id, actor=principal.actor,
                           action="user.invited", target_type="user", target_id=user.id,
                           after=_snapshot(user))
        site = await home_site(session, runtime.settings, tenant)
        out = await render_user(session, user)
    assert user.email is not None
    mails.invitation(runtime, tenant, user.email, body.role, site.link(INVITE_PAGE, token=raw))
    return out


async def invite_as_operator(runtime: Runtime, tenant_id: str, body: InviteIn) -> UserOut:
    """`POST /admin/v1/tenants/{id}/users`: the operator invites a tenant's first owner (or
    anyone); 404 for an unknown tenant."""
    return await invite(runtime, OPERATOR, tenant_id, body)


async def change_role(runtime: Runtime, principal: Principal, user_id: str,
                      body: UserUpdate) -> UserOut:
    """`PATCH /v1/users/{id}`: a staff member's new role (takes effect on its next request);
    422 `customer_user` for a portal customer."""
    async with runtime.db.transaction() as session:
        user = await users.get_user(session, principal.tenant, user_id)
        if user.role == "customer":
            raise InvalidRequest("a portal customer has no staff role", code="customer_user",
                                 param="role")
        if "owner" in (user.role, body.role) and user.role != body.role:
            if not _may_touch_owners(principal):
                raise PermissionDenied("only an owner can make or unmake an owner",
                                       code="owner_required", param="role")
            if user.role == "owner" and user.disabled_at is None:
                await _guard_last_owner(session, principal.tenant)
        before = _snapshot(user)
        user.role = body.role
        await session.flush()
        await audit.record(session, tenant_id=principal.tenant, actor=principal.actor,
                           action="user.role_changed", target_type="user", target_id=user.id,
                           before=before, after=_snapshot(user))
        return await render_user(session, user)


async def disable(runtime: Runtime, principal: Principal, user_id: str) -> UserOut:
    """`DELETE /v1/users/{id}`: disables the user (it can no longer sign in) and revokes its
    sessions; idempotent. The row stays, for the audit log's sake."""
    async with runtime.db.transaction() as session:
        user = await users.get_user(session, principal.tenant, user_id)
        if user.disabled_at is None:
            if user.role == "owner":
                if not _may_touch_owners(principal):
                    raise PermissionDenied("only an owner can remove an owner",
                                           code="owner_required")
                await _guard_last_owner(session, principal.tenant)
            before = _snapshot(user)
            user.disabled_at = utcnow()
            await users.revoke_user_sessions(session, principal.tenant, user.id)
            await session.flush()
            await audit.record(session, tenant_id=principal.tenant, actor=principal.actor,
                               action="user.disabled", target_type="user", target_id=user.id,
                               before=before, after=_snapshot(user))
        return await render_user(session, user)
