"""Acting for a team (`X-Team-Id`, a body's `team_id`): membership checked once, here."""

from __future__ import annotations

from dataclasses import replace

from gateway.core.auth.principal import MAX_TEAM_ID, Principal
from gateway.core.runtime import Runtime
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.teams import service as teams


async def with_team(runtime: Runtime, principal: Principal, team_id: str | None, *,
                    param: str = "team_id") -> Principal:
    """The principal acting for `team_id` (`X-Team-Id`, or a generation body's `team_id`):
    with `team_id` and the caller's `team_role` once its membership is checked. The one place
    a team is resolved. A team the customer is no member of (or another tenant's) is 404
    `team_not_found`; a caller without a customer 422 `customer_required`; a principal already
    acting for another team 422 `team_mismatch`. None: the principal unchanged."""
    if not team_id:
        return principal
    if principal.team_id is not None:
        if principal.team_id != team_id:
            raise InvalidRequest("X-Team-Id and the body's team_id name different teams",
                                 code="team_mismatch", param=param)
        return principal
    if len(team_id) > MAX_TEAM_ID:
        raise InvalidRequest(f"{param} is longer than {MAX_TEAM_ID} characters",
                             code="invalid_team", param=param)
    if principal.customer_id is None:
        raise InvalidRequest("a team is spent for and shown to its members: act for a "
                             "customer (a customer key or X-Customer-Id)",
                             code="customer_required", param=param)
    async with runtime.db.session() as session:
        try:
            role = await teams.role_in(session, principal.tenant, team_id,
                                       principal.customer_id)
        except NotFound as exc:
            raise NotFound(exc.message, code=exc.code, param=param) from exc
    return replace(principal, team_id=team_id, team_role=role)
