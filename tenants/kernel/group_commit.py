"""Group commit: many callers' small units of work share one transaction.

Why: a ledger verb is one statement, but each transaction around it costs a session,
`BEGIN`, `COMMIT` and a WAL flush, and on a hot wallet every transaction holds the
wallet's row lock until its commit. Units that arrive while a batch is in flight wait for the
next one and go together, so those costs are paid once per batch (`bench/ledger_bench.py`
measures it). TigerBeetle batches for the same reason.

There are no savepoints (they cost as much Python as the transactions saved): if any unit
raises, or the commit fails, the whole batch rolls back and each of its units runs again
alone in its own transaction, so a caller only ever sees its own unit's outcome and no unit's
half-done work commits. So a unit may run twice, and must do nothing outside the database
that cannot be repeated (every ledger verb is idempotent by key; side effects such as
enqueueing a job belong after `grouped` returns).

Code called from a unit can defer work to the end of its batch: `batch_of(session)` is the
`SharedBatch` when the session is a batch's shared transaction, and None otherwise (a unit run
alone, any other session). `SharedBatch.defer(work)` runs `await work(session)` after the last
unit, before the commit; `SharedBatch.state(Kind)` is the batch's one `Kind()`, made on first
use, whose `at_batch_end(session)` is deferred then (the ledger notes its units' verbs in one
and does them all there, see `billing.ledger.batched`). Deferred work that raises rolls the
batch back like a unit that raises. A unit run alone has no `SharedBatch`, so deferring code
must also work without one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
Unit = Callable[[AsyncSession], Awaitable[T]]
#: Work deferred to the end of a batch: `await work(session)`, before the commit.
Deferred = Callable[[AsyncSession], Awaitable[None]]
#: Opens a session inside a new transaction, committed when the block exits without error and
#: rolled back when it raises (`Database.transaction`).
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]

log = logging.getLogger(__name__)


class BatchState(Protocol):
    """State kept once per batch (`SharedBatch.state`): its class makes it with no arguments,
    and its `at_batch_end` runs after the batch's last unit, before the commit."""

    async def at_batch_end(self, session: AsyncSession) -> None: ...


S = TypeVar("S", bound=BatchState)


@dataclass(eq=False, slots=True)
class SharedBatch:
    """A batch's shared transaction as the code its units call sees it (`batch_of`)."""

    _deferred: list[Deferred] = field(default_factory=list)
    _states: dict[type[BatchState], BatchState] = field(default_factory=dict)

    def defer(self, work: Deferred) -> None:
        """Run `await work(session)` after the batch's last unit, before its commit (deferred
        work runs in the order it was deferred). If it raises, the batch rolls back and its
        units run again alone."""
        self._deferred.append(work)

    def state(self, kind: type[S]) -> S:
        """The batch's one `kind()`, made on first use; its `at_batch_end` is deferred then."""
        found = self._states.get(kind)
        if found is None:
            found = self._states[kind] = kind()
            self.defer(found.at_batch_end)
        return cast(S, found)  # kept under its own class

    async def _end(self, session: AsyncSession) -> None:
        for work in self._deferred:
            await work(session)


def batch_of(session: AsyncSession) -> SharedBatch | None:
    """The batch whose shared transaction `session` is, or None (a unit run alone, or any
    session that no group commit opened)."""
    shared: SharedBatch | None = session.info.get(SharedBatch)
    return shared


class GroupCommit:
    """Runs units of work (`async def unit(session) -> T`) in shared transactions, each
    opened by `transaction()` (`Database.transaction`: a session in a new transaction,
    committed when the block exits, rolled back when it raises).

    `max_batch` bounds the units in one transaction (and so how long a batch holds its
    locks); `max_concurrent` bounds the batches in flight at once from this process.
    """

    def __init__(self, transaction: Transaction, *, max_batch: int = 32,
                 max_concurrent: int = 2) -> None:
        if max_batch < 1 or max_concurrent < 1:
            raise ValueError("max_batch and max_concurrent must be at least 1")
        self._transaction = transaction
        self._max_batch = max_batch
        self._max_concurrent = max_concurrent
        self._waiting: deque[tuple[Unit[Any], asyncio.Future[Any]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run
        self._draining = 0  # counted synchronously: a finishing task must not strand a unit
        self.batches = 0  # committed shared transactions, for tests and benchmarks
        self.units = 0  # units committed in them
        self.fallbacks = 0  # batches rolled back and run again unit by unit
        self.retries = 0  # units run again alone after the database aborted them (deadlock)

    async def run(self, unit: Unit[T]) -> T:
        """Run `unit` in the next shared transaction; returns its result once committed, or
        raises what it raised (nothing of it committed then)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((unit, future))
        if self._draining < self._max_concurrent:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = [self._waiting.popleft()
                         for _ in range(min(self._max_batch, len(self._waiting)))]
                try:
                    await self._run_batch(batch)
                except BaseException as exc:  # cancelled at shutdown: nobody waits forever
                    for _unit, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception)
                                                 else asyncio.CancelledError())
                    raise
        finally:
            # No await between the empty check above and this: a unit queued after it
            # starts a new drain.
            self._draining -= 1

    async def _run_batch(self, batch: list[tuple[Unit[Any], asyncio.Future[Any]]]) -> None:
        if len(batch) == 1:
            await self._alone(*batch[0])
            return
        values: list[Any] = []
        try:
            async with self._transaction() as session:
                # Lets a unit's code defer work to the end of the batch (the ledger's verbs
                # do: their statements run there, once for all units, see
                # billing.ledger.batched); kept with the session under the class itself.
                shared = session.info[SharedBatch] = SharedBatch()
                for unit, _future in batch:
                    values.append(await unit(session))
                await shared._end(session)
        except Exception as exc:
            # A unit raised (a 402, a duplicate key) or the commit failed: nothing of the
            # batch committed, and each unit runs again alone so that only the one that
            # failed sees its error.
            self.fallbacks += 1
            log.info("a batch of %d units rolled back (%s); running them alone", len(batch),
                     type(exc).__name__)
            for unit, future in batch:
                await self._alone(unit, future)
            return
        self.batches += 1
        self.units += len(batch)
        for (_unit, future), value in zip(batch, values, strict=True):
            _deliver(future, None, value)

    async def _alone(self, unit: Unit[Any], future: asyncio.Future[Any]) -> None:
        for attempt in range(1, _ALONE_ATTEMPTS + 1):
            try:
                async with self._transaction() as session:
                    value = await unit(session)
            except Exception as exc:
                if attempt < _ALONE_ATTEMPTS and _transient(exc):
                    # PostgreSQL broke a deadlock (or a serialization conflict) by aborting
                    # this transaction: nothing of it stands, and a unit may run again.
                    self.retries += 1
                    continue
                _deliver(future, exc, None)
            else:
                self.batches += 1
                self.units += 1
                _deliver(future, None, value)
            return


#: Runs of a unit alone when PostgreSQL aborts it as a deadlock victim.
_ALONE_ATTEMPTS = 3
#: deadlock_detected, serialization_failure.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def _transient(exc: BaseException) -> bool:
    """Whether the database aborted the transaction only to break a conflict."""
    return (isinstance(exc, DBAPIError)
            and getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES)


def _deliver(future: asyncio.Future[Any], error: BaseException | None, value: Any) -> None:
    if future.done():  # its caller was cancelled; the unit's work stands (it is idempotent)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
