"""Which database a session speaks to, and the one statement spelt per dialect: an INSERT that
ignores conflicts (`ON CONFLICT DO NOTHING`), which PostgreSQL and SQLite both have under their
own SQLAlchemy constructs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    insert = pg_insert if on_postgresql(session) else sqlite_insert
    return insert(table)


def on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"
