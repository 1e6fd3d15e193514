"""SQL spelt per dialect where PostgreSQL and SQLite differ and SQLAlchemy has no portable
construct: the UTC calendar day of a timestamp column, for GROUP BY."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession


def utc_day(session: AsyncSession, column: Any) -> Any:
    """`column`'s UTC calendar day as `YYYY-MM-DD` text, the same on both databases.

    PostgreSQL stores `timestamptz`: converted to UTC before formatting (the session's time
    zone must not move a row to another day). SQLite stores `UTCDateTime` as ISO text already
    in UTC (`YYYY-MM-DD HH:MM:SS…`): its first ten characters are the day.
    """
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)
