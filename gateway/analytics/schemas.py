"""The envelope every analytics series answers with."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ColumnType = Literal["date", "string", "integer", "millicredits", "usd_micros", "ratio", "ms"]


class Column(msgspec.Struct):
    """A column of `data`: its key in each row and how to show it (`millicredits` and
    `usd_micros` are integers in those units, `ratio` a float 0..1 or null, `ms` whole
    milliseconds or null)."""

    name: str
    type: ColumnType


class Series(msgspec.Struct, rename={"from_": "from"}):
    """One series over `[from, to)` (local dates in `time_zone`; `to` exclusive), its rows
    sorted by period then group."""

    series: str
    interval: Literal["day", "week", "month"] | None
    #: The tenant's IANA zone; null on the operator's series (each tenant's own days).
    time_zone: str | None
    from_: str
    to: str
    group_by: str | None
    columns: list[Column]
    data: list[dict[str, Any]]
    object: Literal["analytics.series"] = "analytics.series"
