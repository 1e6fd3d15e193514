"""Opaque keyset cursors `(created_at, id)` shared by every newest-first list endpoint."""

from __future__ import annotations

import base64
from datetime import datetime

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
        return datetime.fromisoformat(created), row_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not valid", code="invalid_cursor",
                             param="cursor") from exc
