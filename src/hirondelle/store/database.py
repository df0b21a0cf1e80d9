"""The SQL engine and the threads that run store work off the event loop.

Store work is written as plain synchronous functions over a SQLAlchemy Core connection
(one function = one transaction = usually one or two statements) and handed to
:meth:`Database.read` or :meth:`Database.write`, which run it on worker threads and
return to the event loop with the result. The loop never waits on a disk or a socket to
the database, and a function runs with one thread hop, not one hop per statement as an
async driver would need.

Writes on SQLite go through a single writer thread that practises **group commit**: the
writes waiting when it becomes free are run together in one ``BEGIN IMMEDIATE``
transaction and share one COMMIT and so one fsync (if one raises, the group is run
again with a SAVEPOINT around each write, so that it does not undo the others). A
caller's ``await`` returns only after that commit, which is what lets SMTP answer 250
and IMAP answer OK to APPEND only once the data is durable. PostgreSQL is written the
same way, by one writer thread grouping the waiting writes in one transaction: as
separate transactions on a pool of threads, concurrent deliveries to one account queued
on its row lock (below), each holding it through its own commit, and paid a commit and
its round trips each.

Writers serialise per account by bumping ``accounts.modseq`` first
(:meth:`WriteContext.next_modseq`): on PostgreSQL that row lock orders the writer's
transactions with any other process writing the same database (another node), so
modseqs are committed in increasing order; within one process there is one writer.
After commit, the changes are published on the notification bus, in the loop, in
modseq order per account.

A write may defer work that batches better than it runs one write at a time
(:meth:`WriteContext.defer`: the SQLite search index); the writer runs it when idle or
when it is overdue, in transactions of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from hirondelle.store.notifications import Change, InProcessBus, NotificationBus

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many queued writes one SQLite transaction may take at once: enough to amortise the
# fsync, small enough that one slow batch does not delay the first caller much.
GROUP_COMMIT_MAX = 256

# Deferred work (WriteContext.defer) runs once DEFERRED_BATCH writes have deferred it
# and the writer has then had nothing to do for DEFERRED_IDLE_S (between two writes of
# one SMTP connection there are about 3 ms), and in any case once its first deferral is
# DEFERRED_MAX_DELAY_S old (a busy writer is never idle), one step after each group.
# Small steps in the gaps, rather than one big step now and then, keep the wait of the
# write that arrives during a step short.
DEFERRED_BATCH = 32
DEFERRED_IDLE_S = 0.002
DEFERRED_MAX_DELAY_S = 0.5

#: A step of deferred work: a write function that answers whether more of it remains.
DeferredStep = Callable[["WriteContext"], bool]


def now_us() -> int:
    """Current time as integer microseconds since the epoch, the store's timestamp unit."""
    return time.time_ns() // 1000


class DriverStatement:
    """One SQL text of a hot path, written once with ``?`` placeholders and run on the
    driver's own cursor (DESIGN.md "Hot paths": statements built once and reused).

    Delivery runs about a dozen small statements per message; building and compiling a
    Core statement, then going through SQLAlchemy's execution context, cost more than
    SQLite running them (``insert_email``: 4.9 ms of CPU -> see docs/performance.md).
    The text must suit both backends; only the placeholder style differs (qmark for
    sqlite3, ``%s`` for psycopg).
    """

    __slots__ = ("_texts",)

    def __init__(self, sql: str) -> None:
        # psycopg reads "%" as the start of a placeholder: a literal one (LIKE '% x %')
        # is written "%%" there.
        self._texts = {"sqlite": sql, "postgresql": sql.replace("%", "%%").replace("?", "%s")}

    def text(self, dialect: str) -> str:
        return self._texts[dialect]


def driver_cursor(conn: Connection) -> Any:
    """The DBAPI cursor of ``conn``, inside its transaction (for :class:`DriverStatement`)."""
    return conn.connection.cursor()


def driver_pipeline(conn: Connection) -> contextlib.AbstractContextManager[Any]:
    """PostgreSQL: psycopg's pipeline mode around a run of driver-level statements. A
    statement whose result is not read is sent without waiting for its round trip; a
    fetch waits for what it needs; the end of the block waits for the rest and raises
    their errors there, inside the caller's write. Only driver-level statements may run
    inside: SQLAlchemy reads a statement's ``description`` at once, which the pipeline
    leaves empty until a sync (a ``RETURNING`` would look like "no rows"). SQLite: no
    round trips, nothing to do."""
    if conn.dialect.name != "postgresql":
        return contextlib.nullcontext()
    driver = conn.connection.driver_connection
    assert driver is not None  # a checked-out connection
    pipeline: contextlib.AbstractContextManager[Any] = driver.pipeline()
    return pipeline


_BUMP_MODSEQ = DriverStatement(
    "UPDATE accounts SET modseq = modseq + 1 WHERE id = ? RETURNING modseq"
)
_INSERT_JOURNAL = DriverStatement(
    "INSERT INTO journal (account_id, modseq, kind, object_id, container_id, change)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


@functools.lru_cache(maxsize=32)
def _insert_journal_rows(count: int) -> DriverStatement:
    """One INSERT of ``count`` journal rows: one statement (on PostgreSQL one prepared
    round trip) where executemany was a pipeline of ``count`` (a delivery writes 4)."""
    return DriverStatement(
        "INSERT INTO journal (account_id, modseq, kind, object_id, container_id, change)"
        " VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)
    )


@dataclass
class WriteContext:
    """What a write function receives: the connection, inside its transaction, and the
    account counters it has bumped (at most once per account per write)."""

    conn: Connection
    _modseqs: dict[int, int] = field(default_factory=dict)
    _kinds: dict[int, set[str]] = field(default_factory=dict)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    _deferred: list[DeferredStep] = field(default_factory=list)

    def next_modseq(self, account_id: int) -> int:
        """The modseq of this write for ``account_id``: bumped once, on first use.

        DESIGN.md "The change journal": every change to anything the account owns
        happens in one transaction that bumps the counter and appends journal rows.
        """
        modseq = self._modseqs.get(account_id)
        if modseq is None:
            cursor = driver_cursor(self.conn)
            cursor.execute(_BUMP_MODSEQ.text(self.conn.dialect.name), (account_id,))
            row = cursor.fetchone()
            cursor.close()
            if row is None:
                raise LookupError(f"no account with id {account_id}")
            modseq = int(row[0])
            self._modseqs[account_id] = modseq
        return modseq

    def known_modseq(self, account_id: int) -> int | None:
        """The modseq of this write for ``account_id`` if it is bumped already."""
        return self._modseqs.get(account_id)

    def bumped_modseq(self, account_id: int, modseq: int) -> None:
        """Record that the caller bumped ``accounts.modseq`` of ``account_id`` itself, to
        ``modseq``, in a statement doing more (emails.insert_email's quota check): what
        :meth:`next_modseq` would have done."""
        if account_id in self._modseqs:
            raise RuntimeError(f"modseq of account {account_id} bumped twice in one write")
        self._modseqs[account_id] = modseq

    def journal(
        self,
        account_id: int,
        kind: str,
        object_id: int,
        change: str,
        *,
        container_id: int | None = None,
    ) -> int:
        """Append one journal row at this write's modseq; returns the modseq."""
        modseq = self.next_modseq(account_id)
        cursor = driver_cursor(self.conn)
        cursor.execute(
            _INSERT_JOURNAL.text(self.conn.dialect.name),
            (account_id, modseq, kind, object_id, container_id, change),
        )
        cursor.close()
        self._kinds.setdefault(account_id, set()).add(kind)
        return modseq

    def journal_many(self, account_id: int, rows: list[dict[str, Any]]) -> int:
        """Append several journal rows (dicts with kind, object_id, change and optionally
        container_id) in one statement."""
        modseq = self.next_modseq(account_id)
        if rows:
            cursor = driver_cursor(self.conn)
            dialect = self.conn.dialect.name
            values = [
                (
                    account_id,
                    modseq,
                    row["kind"],
                    row["object_id"],
                    row.get("container_id"),
                    row["change"],
                )
                for row in rows
            ]
            if len(values) <= 16:
                cursor.execute(
                    _insert_journal_rows(len(values)).text(dialect),
                    [value for row_values in values for value in row_values],
                )
            else:
                cursor.executemany(_INSERT_JOURNAL.text(dialect), values)
            cursor.close()
            kinds = self._kinds.setdefault(account_id, set())
            kinds.update(str(row["kind"]) for row in rows)
        return modseq

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (in the event loop) once the transaction has committed."""
        self._after_commit.append(callback)

    def defer(self, step: DeferredStep) -> None:
        """Have the writer run ``step`` later, in a transaction of its own, once this one
        has committed (not if it rolls back): work that batches better than it runs one
        write at a time (the search index, ``store/search.py``). The writer repeats the
        step while it answers True. Deferred work must be derived data whose absence
        readers make up for: a crash can leave it undone, and it is redone by the next
        deferral, the next reader, or the next start."""
        if step not in self._deferred:
            self._deferred.append(step)

    def changes(self) -> list[Change]:
        return [
            Change(
                account_id=account_id,
                modseq=modseq,
                kinds=frozenset(self._kinds.get(account_id, ())),
            )
            for account_id, modseq in sorted(self._modseqs.items())
        ]


@dataclass
class _Deferral:
    """A deferred step: when it was first deferred, by how many writes since it ran."""

    since: float
    count: int


@dataclass
class _PendingWrite:
    function: Callable[[WriteContext], Any]
    future: Future[tuple[Any, WriteContext]]


class Database:
    """One SQL database (SQLite file or PostgreSQL), with reader and writer threads."""

    def __init__(
        self,
        url: str,
        *,
        bus: NotificationBus | None = None,
        sqlite_synchronous: str = "full",
        readers: int = 4,
    ) -> None:
        self.url = sa.make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self.bus: NotificationBus = bus if bus is not None else InProcessBus()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="store-read")
        self._closed = False
        if self.dialect == "sqlite":
            self.read_engine = self._sqlite_engine(
                begin="BEGIN", synchronous=sqlite_synchronous, pool_size=readers
            )
            self.write_engine = self._sqlite_engine(
                begin="BEGIN IMMEDIATE", synchronous=sqlite_synchronous, pool_size=1
            )
        else:
            url_pg = self.url.set(drivername="postgresql+psycopg")
            engine = sa.create_engine(
                url_pg, pool_size=readers + 4, max_overflow=4, pool_pre_ping=True
            )
            self.read_engine = engine
            self.write_engine = engine
        self._write_queue: queue.SimpleQueue[_PendingWrite | None] = queue.SimpleQueue()
        # Deferred steps (WriteContext.defer) in deferral order, with when the first was
        # deferred; touched by the writer thread only.
        self._deferred: dict[DeferredStep, _Deferral] = {}
        self._writer_thread = threading.Thread(
            target=self._group_writer, name="store-write", daemon=True
        )
        self._writer_thread.start()

    # -- engines -------------------------------------------------------------------

    def _sqlite_engine(self, *, begin: str, synchronous: str, pool_size: int) -> Engine:
        engine = sa.create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself, so that the writer's
            # transactions take the write lock up front (BEGIN IMMEDIATE) instead of
            # failing with SQLITE_BUSY when a deferred transaction tries to upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns (WAL + NORMAL may lose the last
            # transactions on power loss, which "nothing accepted is lost" forbids).
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    # -- running work --------------------------------------------------------------

    async def read(self, function: Callable[[Connection], T]) -> T:
        """Run ``function(conn)`` in a read transaction (a consistent snapshot) on a
        reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, function)

    def _run_read(self, function: Callable[[Connection], T]) -> T:
        with self.read_engine.connect() as conn, conn.begin():
            return function(conn)

    def read_sync(self, function: Callable[[Connection], T]) -> T:
        """The same as :meth:`read`, for code that is not in an event loop (the CLI)."""
        return self._run_read(function)

    async def write(self, function: Callable[[WriteContext], T]) -> T:
        """Run ``function(ctx)`` in a write transaction; return after it is durable.

        The changes it journaled are published on the bus after the commit.
        """
        future = self._submit_write(function)
        result, ctx = await asyncio.wrap_future(future)
        self._after_commit(ctx)
        return result  # type: ignore[no-any-return]

    def write_sync(self, function: Callable[[WriteContext], T]) -> T:
        """The same as :meth:`write`, for code that is not in an event loop (the CLI).
        Notifications are not published: no session lives in this process."""
        result, _ctx = self._submit_write(function).result()
        return result  # type: ignore[no-any-return]

    def _submit_write(
        self, function: Callable[[WriteContext], Any]
    ) -> Future[tuple[Any, WriteContext]]:
        if self._closed:
            raise RuntimeError("database is closed")
        future: Future[tuple[Any, WriteContext]] = Future()
        self._write_queue.put(_PendingWrite(function, future))
        return future

    def _after_commit(self, ctx: WriteContext) -> None:
        for callback in ctx._after_commit:
            try:
                callback()
            except Exception:  # a failed hook must not turn a committed write into an error
                log.exception("after-commit callback failed")
        for change in ctx.changes():
            self.bus.publish(change)

    def _group_writer(self) -> None:
        """The writer thread: group commit of whatever writes are waiting, and deferred
        work when it is idle or overdue."""
        while True:
            try:
                first = self._write_queue.get(timeout=self._deferred_wait())
            except queue.Empty:
                self._run_deferred_step()
                continue
            if first is None:
                self._run_all_deferred()
                return
            batch = [first]
            while len(batch) < GROUP_COMMIT_MAX:
                try:
                    item = self._write_queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._write_queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._run_batch(batch)
            if self._deferred:
                self._run_deferred_step(overdue_only=True)

    def _deferred_wait(self) -> float | None:
        """How long the writer may wait for a write before it runs deferred work."""
        if not self._deferred:
            return None
        now = time.monotonic()
        wait = min(d.since + DEFERRED_MAX_DELAY_S - now for d in self._deferred.values())
        if any(d.count >= DEFERRED_BATCH for d in self._deferred.values()):
            wait = min(wait, DEFERRED_IDLE_S)
        return max(0.0, wait)

    def _run_deferred_step(self, *, overdue_only: bool = False, everything: bool = False) -> None:
        """Run one deferred step that is due (all are, with ``everything``), once, in a
        transaction of its own."""
        now = time.monotonic()
        due = [
            (step, deferral)
            for step, deferral in self._deferred.items()
            if everything
            or now - deferral.since >= DEFERRED_MAX_DELAY_S
            or (not overdue_only and deferral.count >= DEFERRED_BATCH)
        ]
        if not due:
            return
        step, deferral = due[0]
        del self._deferred[step]
        try:
            with self.write_engine.connect() as conn, conn.begin():
                more = step(WriteContext(conn))
        except Exception:
            # Derived work: what it left undone is redone by the next deferral or reader.
            log.exception("deferred store work failed")
            return
        if more:
            # As old as it was: still overdue if it was, and a batch's worth is waiting.
            self._deferred[step] = _Deferral(deferral.since, max(deferral.count, DEFERRED_BATCH))

    def _run_all_deferred(self) -> None:
        """At close: finish the deferred work, so that a clean stop leaves none behind."""
        while self._deferred:
            self._run_deferred_step(everything=True)

    def _run_batch(self, batch: list[_PendingWrite]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = self._run_group(live, savepoints=False)
            if outcomes is None:
                # One write raised, and the group was rolled back: run it again with a
                # SAVEPOINT around each write, so that the failure undoes only its own.
                outcomes = self._run_group(live, savepoints=True)
            assert outcomes is not None
        except BaseException as exc:
            # The transaction itself failed (or the only write in it raised): nothing of
            # the batch is committed, so every caller gets an error.
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        now = time.monotonic()
        for item, result, ctx, error in outcomes:
            if error is not None:
                item.future.set_exception(error)
            else:
                assert ctx is not None
                for step in ctx._deferred:
                    deferral = self._deferred.get(step)
                    if deferral is None:
                        self._deferred[step] = _Deferral(now, 1)
                    else:
                        deferral.count += 1
                item.future.set_result((result, ctx))

    def _run_group(
        self, live: list[_PendingWrite], *, savepoints: bool
    ) -> list[tuple[_PendingWrite, Any, WriteContext | None, BaseException | None]] | None:
        """One transaction for the writes of ``live``; None when, without savepoints, one
        of several writes raised (the transaction is then rolled back, nothing ran).

        Savepoints are not the default because they are not free on SQLite: each RELEASE
        makes FTS5 flush its pending index data as a new segment (0.5-0.8 ms a delivery,
        on the one writer thread); without them FTS5 writes the group's data once, at
        COMMIT. A write function may therefore run twice (its first run rolled back), as
        it may on any retried transaction: it must act only through its ``ctx``.
        """
        outcomes: list[tuple[_PendingWrite, Any, WriteContext | None, BaseException | None]] = []
        with self.write_engine.connect() as conn, conn.begin() as transaction:
            for item in live:
                savepoint = conn.begin_nested() if savepoints else None
                item_ctx = WriteContext(conn)
                try:
                    result = item.function(item_ctx)
                except Exception as exc:
                    if savepoint is not None:
                        savepoint.rollback()
                        outcomes.append((item, None, None, exc))
                        continue
                    if len(live) == 1:
                        raise
                    transaction.rollback()
                    return None
                if savepoint is not None:
                    savepoint.commit()
                outcomes.append((item, result, item_ctx, None))
        return outcomes

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._write_queue.put(None)
        self._writer_thread.join()
        self._readers.shutdown(wait=True)
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()
