"""The suggestion API's structs (`/v1/suggestions`, `/improve`, `/trends`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from gateway.suggestions.rules import Improvement, Missing, Variant

__all__ = [
    "ImproveRequest",
    "Improvement",
    "Missing",
    "Suggestion",
    "SuggestionList",
    "SuggestionType",
    "Trends",
    "Variant",
]

#: The media types suggestions are curated for (the vocabulary's, without `text`).
SuggestionType = Literal["image", "audio", "video", "design", "model_3d"]
Language = Literal["en", "ar"]


class Suggestion(msgspec.Struct, kw_only=True):
    text: str
    #: `template` (curated), `history` (a prompt of the caller's that succeeded) or
    #: `model` (written by the tenant's text model).
    source: str
    #: BM25 relevance to `context`, scaled so the best is 1 (0 without a context).
    score: float
    #: The suggestion's own language (a history prompt keeps the one it was written in).
    lang: str


class SuggestionList(msgspec.Struct, kw_only=True):
    data: list[Suggestion]
    object: str = "list"
    #: Set when the tenant's model was asked and failed (its error code).
    model_error: str | None = None


class ImproveRequest(msgspec.Struct, forbid_unknown_fields=True):
    type: SuggestionType
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    lang: Language | None = None


class Count(msgspec.Struct, kw_only=True):
    key: str
    count: int


class ParamCount(msgspec.Struct, kw_only=True):
    name: str
    value: str
    count: int


class DayCount(msgspec.Struct, kw_only=True):
    day: str
    count: int


class Trends(msgspec.Struct, kw_only=True):
    scope: str
    start: datetime
    end: datetime
    #: The zone hours and weekdays are counted in.
    time_zone: str
    #: Generations counted (the latest `MAX_TREND_ROWS` of the range at most).
    total: int
    #: True when the range held more generations than were counted.
    truncated: bool
    types: list[Count]
    styles: list[Count]
    parameters: list[ParamCount]
    #: 24 counts, hour 0 to 23.
    by_hour: list[int]
    #: Mon to Sun.
    by_weekday: list[DayCount]
    object: str = "suggestion_trends"
