"""`/v1/teams` (docs/teams.md): teams, members, invitations, allocations, the team wallet
and its usage. Thin: each route parses, calls one use case (`gateway/teams/service.py`) and
renders. Team roles, not key scopes, decide who manages a team; reads need `read`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter

from gateway.core import origins
from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.teams import service
from tenants.teams.schemas import (
    AllocationEntry,
    AllocationList,
    AllocationSet,
    Funding,
    FundingOut,
    InvitationAccept,
    InvitationCreate,
    InvitationList,
    InvitationOut,
    MemberList,
    MemberOut,
    MemberUpdate,
    TeamBalanceOut,
    TeamCreate,
    TeamList,
    TeamOut,
    TeamUpdate,
    UsageOut,
)

RequiredIdempotencyKey = Annotated[
    str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)]


class TeamController(Controller):
    path = "/v1/teams"
    tags = ["teams"]

    @post("/", status_code=201, summary="Create a team", guards=[requires()])
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: TeamCreate) -> TeamOut:
        """The calling customer (a customer key, `X-Customer-Id`, a portal user) becomes the
        team's owner; the team's wallet is opened, empty. Only for tenants in the `mediahub`
        billing mode (422 `teams_unavailable` otherwise)."""
        return await service.create(runtime, principal, data.name)

    @get("/", summary="The caller's teams", guards=[requires("read")])
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> TeamList:
        """The calling customer's teams with its role in each, newest first; a tenant-wide
        `tenant_admin` key (no customer) sees all of its tenant's teams (role `tenant`)."""
        return await service.list_teams(runtime, principal, limit=page_limit(limit),
                                        cursor=cursor)

    @get("/{team_id:str}", summary="One team", guards=[requires("read")])
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   team_id: FromPath[str]) -> TeamOut:
        """A team the caller is a member of; any other is 404 `team_not_found`."""
        return await service.read(runtime, principal, team_id)

    @patch("/{team_id:str}", summary="Rename a team", guards=[requires()])
    async def update(self, principal: Principal, runtime: RuntimeDep, team_id: FromPath[str],
                     data: TeamUpdate) -> TeamOut:
        """Owners and admins (403 `team_role` for other members)."""
        if isinstance(data.name, str):
            return await service.rename(runtime, principal, team_id, data.name)
        return await service.read(runtime, principal, team_id)

    @get("/{team_id:str}/members", summary="The team's members", guards=[requires("read")])
    async def members(self, principal: Principal, runtime: RuntimeDep,
                      team_id: FromPath[str], limit: FromQuery[int | None] = None,
                      cursor: FromQuery[str | None] = None) -> MemberList:
        """Current members, oldest first; `customer_id` is the tenant's own id for each, and
        `allocation` its limit with what it spent this period (null: none)."""
        return await service.members(runtime, principal, team_id, limit=page_limit(limit),
                                     cursor=cursor)

    @patch("/{team_id:str}/members/{customer_id:str}", summary="Change a member's role",
           guards=[requires()])
    async def set_role(self, principal: Principal, runtime: RuntimeDep,
                       team_id: FromPath[str], customer_id: FromPath[str],
                       data: MemberUpdate) -> MemberOut:
        """Owners and admins; only an owner makes or unmakes an owner, and a team keeps at
        least one (409 `last_owner`)."""
        return await service.set_role(runtime, principal, team_id, customer_id, data.role)

    @delete("/{team_id:str}/members/{customer_id:str}", status_code=204,
            summary="Remove a member", guards=[requires()])
    async def remove(self, principal: Principal, runtime: RuntimeDep, team_id: FromPath[str],
                     customer_id: FromPath[str]) -> None:
        """Owners and admins remove members; any member may remove itself (leave). The
        allocation ends; the member's generations in flight settle normally; what it spent
        stays spent."""
        await service.remove(runtime, principal, team_id, customer_id)

    @post("/{team_id:str}/invitations", status_code=201, summary="Invite by email",
          guards=[requires()])
    async def invite(self, request: Request[Any, Any, Any], principal: Principal,
                     runtime: RuntimeDep, team_id: FromPath[str],
                     data: InvitationCreate) -> InvitationOut:
        """Owners and admins. Mails a one-time link (from the tenant; valid for
        `MEDIAHUB_EMAIL_LINK_TTL_S`) whose `token` the invitee's customer posts to
        `/v1/teams/invitations/accept`. The token is never shown here. Sent from the
        tenant's portal domain, the link opens that portal's `/teams/accept` page."""
        origin = await origins.portal_origin(runtime, principal.tenant, request.url.scheme,
                                             request.headers.get("host", ""))
        return await service.invite(runtime, principal, team_id, data, origin)

    @get("/{team_id:str}/invitations", summary="Pending invitations",
         guards=[requires("read")])
    async def invitations(self, principal: Principal, runtime: RuntimeDep,
                          team_id: FromPath[str], limit: FromQuery[int | None] = None,
                          cursor: FromQuery[str | None] = None) -> InvitationList:
        """Owners and admins: invitations neither accepted, revoked nor expired."""
        return await service.invitations(runtime, principal, team_id,
                                         limit=page_limit(limit), cursor=cursor)

    @delete("/{team_id:str}/invitations/{invitation_id:str}", status_code=204,
            summary="Revoke an invitation", guards=[requires()])
    async def revoke(self, principal: Principal, runtime: RuntimeDep, team_id: FromPath[str],
                     invitation_id: FromPath[str]) -> None:
        """Owners and admins; an accepted invitation is 409 `invitation_used`."""
        await service.revoke(runtime, principal, team_id, invitation_id)

    @post("/invitations/accept", status_code=200, summary="Accept an invitation",
          guards=[requires()])
    async def accept(self, principal: Principal, runtime: RuntimeDep,
                     data: InvitationAccept) -> TeamOut:
        """The calling customer joins with the invited role; the token works once. Unknown,
        used, revoked or expired: 404 `invitation_not_found`; already a member: 409
        `already_member`."""
        return await service.accept(runtime, principal, data.token)

    @get("/{team_id:str}/allocations", summary="Members' allocations",
         guards=[requires("read")])
    async def allocations(self, principal: Principal, runtime: RuntimeDep,
                          team_id: FromPath[str]) -> AllocationList:
        """Every member with an allocation: its limit, period, spent (this calendar month in
        UTC, or in total; reservations in flight included) and remaining."""
        return await service.allocation_list(runtime, principal, team_id)

    @put("/{team_id:str}/allocations/{customer_id:str}", summary="Set a member's allocation",
         guards=[requires()])
    async def set_allocation(self, principal: Principal, runtime: RuntimeDep,
                             team_id: FromPath[str], customer_id: FromPath[str],
                             data: AllocationSet) -> AllocationEntry:
        """Owners and admins: the most the member may spend for the team per calendar month
        (UTC) or in total. A submit over it is 402 `allocation_exceeded`."""
        return await service.set_allocation(runtime, principal, team_id, customer_id, data)

    @delete("/{team_id:str}/allocations/{customer_id:str}", status_code=204,
            summary="End a member's allocation", guards=[requires()])
    async def remove_allocation(self, principal: Principal, runtime: RuntimeDep,
                                team_id: FromPath[str], customer_id: FromPath[str]) -> None:
        """Owners and admins; the member is then limited by the team's wallet alone."""
        await service.remove_allocation(runtime, principal, team_id, customer_id)

    @post("/{team_id:str}/credits", status_code=201, summary="Fund the team's wallet",
          guards=[requires()])
    async def fund(self, principal: Principal, runtime: RuntimeDep, team_id: FromPath[str],
                   data: Funding, idempotency_key: RequiredIdempotencyKey) -> FundingOut:
        """Moves `amount` millicredits into the team's wallet once per `Idempotency-Key`:
        from the calling owner's or admin's own wallet (a key with `billing`), or from the
        tenant's wallet with a tenant-wide `tenant_admin` key. 402 when the source is
        short."""
        return await service.fund(runtime, principal, team_id, data, idempotency_key)

    @get("/{team_id:str}/balance", summary="The team wallet's balance",
         guards=[requires("read")])
    async def balance(self, principal: Principal, runtime: RuntimeDep,
                      team_id: FromPath[str]) -> TeamBalanceOut:
        """The team wallet's `available`, `pending` and `posted` millicredits, for its members
        (viewers too); 404 for a team the caller is not in."""
        return await service.balance(runtime, principal, team_id)

    @get("/{team_id:str}/usage", summary="The team's spending in a month",
         guards=[requires("read")])
    async def usage(self, principal: Principal, runtime: RuntimeDep, team_id: FromPath[str],
                    month: FromQuery[str | None] = None) -> UsageOut:
        """What the team's succeeded generations charged its wallet in `month` (`YYYY-MM`,
        UTC; default this month), per member and media type."""
        return await service.usage(runtime, principal, team_id, month)
