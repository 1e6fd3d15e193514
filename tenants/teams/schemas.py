"""The team API's structs (docs/teams.md): inputs forbid unknown fields; money is integer
millicredits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
InvitedRole = Literal["admin", "member", "viewer"]
Role = Literal["owner", "admin", "member", "viewer"]
Period = Literal["month", "total"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320,
                                    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class TeamUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET


class TeamOut(msgspec.Struct):
    id: str
    name: str
    #: The caller's role in the team (`tenant`: a tenant-wide key, which sees every team).
    role: str
    created_at: datetime
    object: str = "team"


class TeamList(msgspec.Struct):
    data: list[TeamOut]
    next_cursor: str | None
    object: str = "list"


class AllocationOut(msgspec.Struct):
    limit: int
    period: str
    #: Counted this period, reservations in flight included.
    spent: int
    remaining: int
    unit: str = "millicredit"
    object: str = "allocation"


class MemberOut(msgspec.Struct):
    #: The tenant's own id for the customer (what `X-Customer-Id` carries).
    customer_id: str
    role: str
    allocation: AllocationOut | None
    created_at: datetime
    object: str = "team_member"


class MemberList(msgspec.Struct):
    data: list[MemberOut]
    next_cursor: str | None
    object: str = "list"


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: InvitedRole = "member"


class InvitationOut(msgspec.Struct):
    id: str
    team_id: str
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    object: str = "team_invitation"


class InvitationList(msgspec.Struct):
    data: list[InvitationOut]
    next_cursor: str | None
    object: str = "list"


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AllocationSet(msgspec.Struct, forbid_unknown_fields=True):
    limit_mc: Annotated[int, msgspec.Meta(ge=0, le=10**15)]
    period: Period = "month"


class AllocationEntry(msgspec.Struct):
    customer_id: str
    limit: int
    period: str
    spent: int
    remaining: int
    unit: str = "millicredit"
    object: str = "allocation"


class AllocationList(msgspec.Struct):
    data: list[AllocationEntry]
    object: str = "list"


class Funding(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(gt=0, le=10**15)]


class FundingOut(msgspec.Struct):
    id: str
    team_id: str
    amount: int
    #: `customer`: from the caller's own wallet; `tenant`: from the tenant's wallet.
    source: str
    balance: int
    unit: str = "millicredit"
    object: str = "team_funding"


class TeamBalanceOut(msgspec.Struct):
    """The team wallet's balance, shaped as `GET /v1/credits/balance`."""

    available: int
    pending: int
    posted: int
    unit: str = "millicredit"
    object: str = "balance"


class UsageRow(msgspec.Struct):
    customer_id: str
    type: str
    spent: int
    generations: int


class UsageOut(msgspec.Struct):
    team_id: str
    month: str
    data: list[UsageRow]
    total: int
    unit: str = "millicredit"
    object: str = "team_usage"
