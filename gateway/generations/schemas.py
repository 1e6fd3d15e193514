"""The generation API's structs (API.md, "Generations")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from plugins.vocabulary import TYPE_OPERATIONS, MediaType, Operation
from tenants.kernel.errors import InvalidRequest

MetaValue = Annotated[str, msgspec.Meta(max_length=500)]


#: The operations each media type has; any other pairing is a client error (422), not a
#: missing provider (503).
class GenerationCreate(msgspec.Struct, forbid_unknown_fields=True):
    type: MediaType
    operation: Operation | None = None
    prompt: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    text: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    metadata: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], MetaValue],
                        msgspec.Meta(max_length=32)] = msgspec.field(default_factory=dict)
    #: Spend from this team's wallet (the caller must be a member that may spend); the same
    #: as the `X-Team-Id` header (docs/teams.md).
    team_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    #: Apply this brand kit (one the caller may read) at its current version
    #: (docs/brand-kits.md); 404 `brand_kit_not_found` otherwise.
    brand_kit_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None

    def check_operation(self) -> None:
        """Called by the routes before planning: raises `InvalidRequest` (422, `param:
        operation`) when `operation` is not one of `type`'s."""
        allowed = TYPE_OPERATIONS.get(self.type, frozenset())
        if self.operation is not None and self.operation not in allowed:
            raise InvalidRequest(
                f"operation {self.operation!r} is not one of {self.type}'s: "
                f"{', '.join(sorted(allowed))}", code="invalid_operation", param="operation")


class Cost(msgspec.Struct):
    estimated: int
    charged: int | None
    unit: str = "millicredit"


class Output(msgspec.Struct, omit_defaults=True):
    url: str
    content_type: str
    bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    #: A link (signed, or a CDN link as `url` is) to a small preview: images a WebP at most
    #: 512 px on the long side, video a JPEG poster frame. Absent (null) for other media and
    #: outputs stored before previews.
    thumbnail_url: str | None = None
    #: Audio: 256 peak amplitudes 0..1 for drawing a waveform. Absent (null) otherwise.
    peaks: list[float] | None = None


class ErrorInfo(msgspec.Struct):
    code: str
    message: str


class Attempt(msgspec.Struct, omit_defaults=True):
    """One provider call of a generation (failover tries the next candidate).

    `outcome`: `succeeded`, `failed`, `skipped` (not called: circuit open, rate limited or not
    installed; `error_code` says which) or `running`. `retry_after_s` comes with a 429.
    """

    provider: str
    outcome: str
    error_code: str | None
    latency_ms: int
    retry_after_s: float | None = None


class GenerationOut(msgspec.Struct):
    id: str
    type: str
    operation: str
    status: str
    provider: str
    cached: bool
    cost: Cost
    outputs: list[Output]
    error: ErrorInfo | None
    metadata: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    #: The prompt (or text to speak) as submitted.
    prompt: str
    #: The plain `params` as submitted (input media are not repeated: the gateway keeps its
    #: own copies of them).
    params: dict[str, Any]
    #: Marked with `PUT /v1/generations/{id}/favourite`.
    favourite: bool
    #: The team it was made for (its members see it), or null: the caller's own.
    team_id: str | None
    #: The brand kit applied and the version it had then (null: none).
    brand_kit_id: str | None = None
    brand_kit_version: int | None = None
    #: Every provider call, in order (empty until a worker starts it, and for cached ones).
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    object: str = "generation"


class GenerationList(msgspec.Struct):
    data: list[GenerationOut]
    next_cursor: str | None
    object: str = "list"


class Estimate(msgspec.Struct):
    amount: int
    provider: str
    breakdown: dict[str, int]
    unit: str = "millicredit"


class GenerationDeleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: str = "generation"


BulkAction = Literal["delete", "favourite", "unfavourite"]


class BulkRequest(msgspec.Struct, forbid_unknown_fields=True):
    action: BulkAction
    ids: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=32)]],
                   msgspec.Meta(min_length=1, max_length=100)]


class BulkError(msgspec.Struct):
    code: str
    message: str


class BulkResult(msgspec.Struct):
    id: str
    ok: bool
    error: BulkError | None = None


class BulkResults(msgspec.Struct):
    results: list[BulkResult]
    object: str = "list"


#: A share link lives 60 s to 30 days; 7 days unless asked.
SHARE_MIN_S, SHARE_DEFAULT_S, SHARE_MAX_S = 60, 7 * 86_400, 30 * 86_400


class ShareCreate(msgspec.Struct, forbid_unknown_fields=True):
    expires_in_s: Annotated[int, msgspec.Meta(ge=SHARE_MIN_S, le=SHARE_MAX_S)] = SHARE_DEFAULT_S


class Share(msgspec.Struct):
    url: str
    token: str
    expires_at: datetime
    object: str = "share"


class SharedGeneration(msgspec.Struct):
    id: str
    type: str
    prompt: str
    outputs: list[Output]
    created_at: datetime
    object: str = "shared_generation"
