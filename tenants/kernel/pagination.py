"""Keyset pagination: opaque cursors `(created_at, id)` and the one way every list endpoint
pages (`keyset` for the query, `page` for the answer)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select

from tenants.kernel.errors import InvalidRequest


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor stands for; raises `InvalidRequest` for a bad one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, sep, row_id = raw.partition("|")
        if not sep or not row_id:
            raise ValueError(cursor)
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            # Rows are compared in UTC; a naive timestamp cannot be compared with them (a
            # TypeError, or asyncpg's DataError on PostgreSQL), and we never issue one.
            raise ValueError(cursor)
        if "\x00" in row_id:
            raise ValueError(cursor)  # PostgreSQL text cannot hold NUL
        return at, row_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not valid", code="invalid_cursor",
                             param="cursor") from exc


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def keyset(query: Q, created: Any, row_id: Any, cursor: str | None, limit: int, *,
           newest_first: bool = True) -> Q:
    """`query` narrowed to one page after `cursor`, ordered by (`created`, `row_id`) newest
    (or oldest) first, with one row more than `limit`: `page` cuts it and so knows whether
    another page follows. Every cursor-paginated list goes through here and `page`."""
    if cursor:
        at, last_id = decode_cursor(cursor)
        if newest_first:
            query = query.where((created < at) | ((created == at) & (row_id < last_id)))
        else:
            query = query.where((created > at) | ((created == at) & (row_id > last_id)))
    order = (created.desc(), row_id.desc()) if newest_first else (created, row_id)
    return query.order_by(*order).limit(limit + 1)


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> str: ...


K = TypeVar("K", bound=_Keyed)


def page(rows: Sequence[K], limit: int) -> tuple[list[K], str | None]:
    """The page (at most `limit` rows of what `keyset` fetched) and the next page's cursor
    (None at the end)."""
    kept = list(rows[:limit])
    more = len(rows) > limit
    return kept, encode_cursor(kept[-1].created_at, kept[-1].id) if more and kept else None
