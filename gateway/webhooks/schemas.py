"""Request and response structs of the webhook endpoints API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

EventType = Literal["generation.succeeded", "generation.failed", "generation.canceled",
                    "credits.low"]


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    #: Empty or absent: every event type.
    events: list[EventType] = msgspec.field(default_factory=list)
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class EndpointOut(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    object: str = "webhook_endpoint"


class EndpointCreated(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    #: The `whsec_…` signing secret: shown here (and by rotate_secret) only.
    secret: str
    object: str = "webhook_endpoint"


class EndpointList(msgspec.Struct):
    data: list[EndpointOut]
    next_cursor: str | None
    object: str = "list"


class Deleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: str = "webhook_endpoint"


class SecretOut(msgspec.Struct):
    secret: str
    #: Until when the previous secret still signs too (rotation), if any.
    previous_expires_at: datetime | None = None
    object: str = "webhook_secret"


class DeliveryOut(msgspec.Struct):
    """One event sent (and retried) to one endpoint; its attempts are the delivery log."""

    id: str
    endpoint_id: str | None
    event_id: str
    event_type: str
    url: str
    #: `pending` until a 2xx (`succeeded`) or the last attempt (`failed`).
    status: str
    attempts: int
    #: The delivery this one replays; None for the event's own delivery.
    replay_of: str | None
    created_at: datetime
    object: str = "webhook_delivery"


class AttemptOut(msgspec.Struct):
    id: str
    delivery_id: str
    event_id: str
    event_type: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None
    created_at: datetime
    object: str = "webhook_delivery_attempt"
    #: The delivery this attempt's delivery replays (None: the event's own delivery).
    replay_of: str | None = None


class AttemptList(msgspec.Struct):
    data: list[AttemptOut]
    next_cursor: str | None
    object: str = "list"
