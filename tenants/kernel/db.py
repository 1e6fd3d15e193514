"""The shared SQLAlchemy base, id helpers and session factory.

Every domain folder declares its tables on `Base`, so one Alembic environment sees them all.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import JSON, BigInteger, DateTime, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from tenants.kernel.group_commit import GroupCommit

T = TypeVar("T")

# Predictable constraint names keep Alembic migrations stable across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money columns are 64-bit integers everywhere (millicredits, USD micros); never floats.
Money = BigInteger
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored timezone-aware on PostgreSQL and read back as UTC on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StructJSON(TypeDecorator[Any]):
    """A JSON column typed by msgspec: `StructJSON(list[Attempt])` stores what
    `msgspec.to_builtins` makes of the value and reads it back with `msgspec.convert`, so code
    sees Structs (attributes, not magic keys) and a row written by an older version with
    fewer fields still loads (fields it lacks take their defaults; unknown ones are dropped).
    The one way a JSON column gets a type."""

    impl = JSON
    cache_ok = True

    def __init__(self, type_: Any) -> None:
        super().__init__()
        self.type_ = type_

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return None if value is None else msgspec.to_builtins(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else msgspec.convert(value, self.type_)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """An opaque id prefixed by kind (`ten_…`, `gen_…`), 20 random chars after the prefix."""
    return f"{prefix}_{secrets.token_hex(10)}"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the engine for a database URL, with SQLite tuned for many concurrent writers.
    The pool arguments (`pool_size`, `max_overflow`, `pool_timeout`) apply to PostgreSQL
    only: SQLite keeps its own pool (one file, one writer), so they are dropped for it."""
    if url.startswith("sqlite"):
        for name in ("pool_size", "max_overflow", "pool_timeout"):
            kwargs.pop(name, None)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragma(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # BEGIN IMMEDIATE takes the write lock up front, so two transactions never both
            # read then deadlock upgrading to write (SQLite's classic SQLITE_BUSY trap).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine.sync_engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    # A bounded wait for a free connection: past it SQLAlchemy raises its `TimeoutError`,
    # which the API answers as 503 `database_busy` (gateway/core/errors.py); SQLAlchemy's
    # default (30 s) would hold every other request of the process in the queue instead.
    kwargs.setdefault("pool_timeout", 5)
    # Off unless asked (MEDIAHUB_DATABASE_PRE_PING): see `Settings.database_pre_ping`.
    kwargs.setdefault("pool_pre_ping", False)
    return create_async_engine(url, **kwargs)


class Database:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(self, url: str, *, group_commit: dict[str, int] | None = None,
                 **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._group = GroupCommit(self.transaction, **(group_commit or {}))

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on exit, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (autobegin; nothing committed)."""
        async with self.sessionmaker() as session:
            yield session

    async def grouped(self, unit: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `unit(session)` in a transaction shared with other callers' units (group
        commit, see `tenants.kernel.group_commit`); returns its result once committed, or raises
        what it raised, with nothing of it committed. For short writes on hot paths."""
        return await self._group.run(unit)

    async def dispose(self) -> None:
        await self.engine.dispose()
