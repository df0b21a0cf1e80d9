"""Putting messages into mailboxes: the one path every way of arrival takes.

SMTP and LMTP delivery, IMAP APPEND, JMAP Email/import and the webmail's drafts all end
here: the message is parsed once, its blob is written and fsynced, then one transaction
files it. The caller's ``await`` returns after that transaction is durable, so a
protocol may answer "stored" as soon as it returns.

The parse runs in worker processes (:class:`ParseWorkers`), not on threads of the
server: it is pure-Python CPU work, and on a thread it holds the one GIL that the event
loop and the store's writer thread need. Measured under LMTP load, the parse was about a
third of the server's GIL-held time; in a worker process it costs the server only the
unpickling of the result. The worker also makes what the writer would otherwise derive
(the structure JSON and the search document, :class:`~hirondelle.store.emails.DerivedForms`)
and the content hash, so the writer thread only writes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copyreg
import dataclasses
import functools
import io
import logging
import mmap
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import pickle
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, cast

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mime import ParsedMessage, canonicalize_line_endings, parse_message
from hirondelle.mime.addresses import Address
from hirondelle.mime.message import PartLocation
from hirondelle.store import emails
from hirondelle.store.blobs import BlobRef, FileBlobStore, blob_hash
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.emails import DerivedForms, StoredEmail, derived_forms
from hirondelle.store.search import SearchDocument

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ingested:
    parsed: ParsedMessage
    blob: BlobRef
    #: The structure JSON and search document of ``parsed``, when the parsing worker
    #: made them (None: the writer derives them).
    forms: DerivedForms | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened for one account: stored, or refused with a reason."""

    account_id: int
    stored: StoredEmail | None = None
    refused: Refused | None = None


class DeliveryObserver(Protocol):
    """Told of messages delivered from a sender (the vacation responder).

    ``wants`` decides from the message alone (in the loop); ``interested`` picks, inside
    the delivery's own transaction, the accounts it has business with (a reader-thread
    hop of its own per delivery cost about as much GIL time as a small parse);
    ``delivered`` is then called after commit with those accounts, if any."""

    def wants(self, parsed: ParsedMessage, *, mail_from: str) -> bool: ...

    def interested(self, conn: Connection, account_ids: list[int]) -> list[int]: ...

    def delivered(
        self, parsed: ParsedMessage, account_ids: list[int], *, mail_from: str
    ) -> None: ...


class CalendarMail(Protocol):
    """The scheduling service's interest in delivered mail (RFC 6047 iMIP): told about
    each delivered message that has a text/calendar part, after it is stored."""

    async def received(self, raw: bytes, account_ids: Sequence[int]) -> None: ...


#: What a message may be handed over as: bytes, or a readable binary file object (a
#: spooled temporary file for a big IMAP literal), read from offset 0 to its end on a
#: worker thread and never closed here: the caller closes it after the call returns.
MessageSource = bytes | BinaryIO


@dataclass(frozen=True, slots=True)
class ParsedInWorker:
    """What a parse worker sends back: the parse, its derived forms, the content hash and,
    only when making line endings canonical changed it, the canonical content."""

    parsed: ParsedMessage
    forms: DerivedForms
    hash: str
    canonical: bytes | None


def _pickle_by_constructor(cls: type) -> None:
    """Pickle instances of the frozen dataclass ``cls`` as its constructor's arguments.

    The default for a slots dataclass restores each object through a Python-level
    ``__setstate__`` that looks up its fields every time; calling the generated
    ``__init__`` halves the unpickling of a parse result (about 100 -> 57 us for a 10 KB
    message), which the server pays on its side for every message a worker parsed."""
    names = tuple(f.name for f in dataclasses.fields(cls))

    def reduce(instance: object) -> tuple[type, tuple[object, ...]]:
        return cls, tuple(getattr(instance, name) for name in names)

    copyreg.pickle(cls, reduce)


def parse_small(raw: bytes, postgresql: bool = False) -> ParsedInWorker:
    """In a worker: canonical line endings, parse, forms and hash of a small message."""
    canonical = canonicalize_line_endings(raw)
    parsed = parse_message(canonical)
    # Canonicalising only inserts CRs: the same length means the same content, which
    # then need not travel back.
    changed = canonical if len(canonical) != len(raw) else None
    forms = derived_forms(parsed, postgresql=postgresql)
    return ParsedInWorker(parsed, forms, blob_hash(canonical), changed)


def parse_stored(
    path: str, size: int, postgresql: bool = False
) -> tuple[ParsedMessage, DerivedForms]:
    """In a worker: parse a stored blob file through a read-only mapping: the pages the
    parser touches come from the page cache and leave the process when it is unmapped,
    so a 30 MB message is never copied whole into memory."""
    if size == 0:
        parsed = parse_message(b"")  # an empty file cannot be mapped
    else:
        with (
            Path(path).open("rb") as file,
            MappedMessage(file.fileno(), 0, access=mmap.ACCESS_READ) as view,
        ):
            # The parser is written for bytes; the mapping offers the few bytes methods
            # it calls on the whole message (slices are bytes). tests/store/
            # test_streamed.py checks that it gives the same result as on bytes.
            parsed = parse_message(view)  # type: ignore[arg-type]
    return parsed, derived_forms(parsed, postgresql=postgresql)


for _cls in (ParsedInWorker, ParsedMessage, PartLocation, Address, DerivedForms, SearchDocument):
    _pickle_by_constructor(_cls)


def _exit_with_server(server_pid: int) -> None:
    """Worker initializer: exit when the server process is gone, however it ended.

    A worker's parent is the fork server, not the server, and the worker itself holds
    the pipes the fork server and its own task queue would see closing: after a
    ``kill -9`` of the server nothing would ever tell it to go. A pidfd becomes readable
    when the process exits (Linux 5.3+); elsewhere the thread polls."""

    def watch() -> None:
        try:
            pidfd = os.pidfd_open(server_pid)
        except (AttributeError, OSError):
            while _alive(server_pid):
                time.sleep(1.0)
        else:
            select.select([pidfd], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerDied(RuntimeError):
    """A parse worker process ended while it had a task."""


def _worker_main(connection: multiprocessing.connection.Connection, server_pid: int) -> None:
    """A parse worker: run the (function, arguments) requests that come down the
    connection one at a time, answer each with (True, result) or (False, exception)."""
    _exit_with_server(server_pid)
    while True:
        try:
            request = connection.recv_bytes()
        except (EOFError, OSError):
            return
        function, arguments = pickle.loads(request)
        try:
            reply: tuple[bool, object] = (True, function(*arguments))
        except Exception as error:
            reply = (False, error)
        try:
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            payload = pickle.dumps((False, RuntimeError(f"result cannot be sent: {error}")))
        try:
            connection.send_bytes(payload)
        except OSError:
            return


_HEADER = struct.Struct("!i")  # multiprocessing.Connection's frame header
_LONG_HEADER = struct.Struct("!Q")  # after a -1 header, for frames of 2 GiB and more


class _WorkerProtocol(asyncio.Protocol):
    """The server's end of one worker's socket: length-prefixed pickles, in the loop,
    no thread; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reply: asyncio.Future[object] | None = None
        self.alive = True
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, function: Callable[..., object], arguments: tuple[object, ...]) -> None:
        assert self.transport is not None and self.reply is None
        payload = pickle.dumps((function, arguments), protocol=pickle.HIGHEST_PROTOCOL)
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(_HEADER.pack(len(payload)) + payload)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            start = _HEADER.size
            if size == -1:
                if len(buffer) < start + _LONG_HEADER.size:
                    return
                (size,) = _LONG_HEADER.unpack_from(buffer, start)
                start += _LONG_HEADER.size
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            self._answer(payload)

    def _answer(self, payload: bytes) -> None:
        future, self.reply = self.reply, None
        if future is None or future.done():
            return
        try:
            ok, value = pickle.loads(payload)
        except Exception as error:
            future.set_exception(error)
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        future, self.reply = self.reply, None
        if future is not None and not future.done():
            future.set_exception(WorkerDied("a parse worker ended during its task"))


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    protocol: _WorkerProtocol


class ParseWorkers:
    """The processes that parse messages (DESIGN.md: CPU-heavy work goes to a pool).

    Each worker is a process started from a fork server (a clean process, not a fork of
    this threaded one) that has the parser imported, so a new one costs milliseconds. The
    event loop talks to it over a socket pair: a request is one pickled frame written by
    the loop, the reply one frame read by the loop, with no thread in between; the
    standard ProcessPoolExecutor's manager and feeder threads cost the server about as
    much GIL time per message as the 10 KB parse they took away. A worker takes one
    message at a time; callers wait for a free one. A worker that dies (killed, out of
    memory) is replaced and the parse tried once more, so one lost worker costs one
    retry, not the delivery. ``processes=0`` parses on threads of this process instead.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._waiting: collections.deque[asyncio.Future[_Worker | None]] = collections.deque()
        self._starting = 0
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._in_flight = 0

    async def run(self, function: Callable[..., T], *args: object, light: bool = False) -> T:
        """``function(*args)`` in a worker (module-level function, picklable arguments
        and result); its exception is raised here.

        A ``light`` task (a small message's parse, about half a millisecond) that finds
        no other task in flight runs on a thread of this process instead: nothing else
        wants the interpreter then, and the round trip to a worker (sending the message,
        unpickling the result, two wake-ups) is a fifth of a delivery's time at one
        connection. As soon as tasks overlap, they go to the workers."""
        if self._closed:
            raise RuntimeError("the parse workers are stopped")
        loop = asyncio.get_running_loop()
        if self.processes == 0 or (light and self._in_flight == 0):
            self._in_flight += 1
            try:
                return await loop.run_in_executor(self._thread_pool(), function, *args)
            finally:
                self._in_flight -= 1
        self._in_flight += 1
        try:
            return await self._run_in_worker(loop, function, args)
        finally:
            self._in_flight -= 1

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mime")
            return self._threads

    async def _run_in_worker(
        self, loop: asyncio.AbstractEventLoop, function: Callable[..., T], args: tuple[object, ...]
    ) -> T:
        self._bind(loop)
        for attempt in (1, 2):
            worker = await self._acquire()
            try:
                worker.protocol.send(function, args)
                reply = worker.protocol.reply
                assert reply is not None
                reply.add_done_callback(functools.partial(self._released, worker))
            except BaseException:
                self._release(worker)
                raise
            try:
                # Shielded: a cancelled caller leaves the worker busy until its reply
                # comes, so the next task never gets this one's answer.
                result = await asyncio.shield(reply)
                return cast(T, result)
            except WorkerDied:
                if attempt == 2:
                    raise
                log.warning("a parse worker died; starting a new one and parsing again")
        raise AssertionError("unreachable")

    async def _acquire(self) -> _Worker:
        while True:
            if self._idle:
                worker = self._idle.pop()
                if worker.protocol.alive:
                    return worker
                self._forget(worker)
                continue
            if len(self._workers) + self._starting < self.processes:
                return await self._start()
            waiter: asyncio.Future[_Worker | None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed
            # None: a worker died; there is room to start one now (loop again).

    def _released(self, worker: _Worker, _reply: asyncio.Future[object]) -> None:
        self._release(worker)

    def _release(self, worker: _Worker) -> None:
        if not worker.protocol.alive:
            self._forget(worker)
            handed: _Worker | None = None
        else:
            handed = worker
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return
        if handed is not None:
            self._idle.append(handed)

    def _forget(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        with contextlib.suppress(Exception):
            worker.process.join(timeout=0)

    async def _start(self) -> _Worker:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("forkserver")
        # "__main__" too: the fork server imports the program's main module once, so a
        # worker forked from it does not re-run it (multiprocessing's spawn preparation
        # would: for `hirondelle serve` that imports the whole CLI, 1.5 s of CPU a worker).
        context.set_forkserver_preload(["__main__", __name__])
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_worker_main,
            args=(theirs, os.getpid()),
            name="hirondelle-parse",
            daemon=True,  # multiprocessing ends it when the server exits
        )
        self._starting += 1
        try:
            # Blocking: talks to the fork server (which the first call starts).
            await loop.run_in_executor(None, process.start)
            theirs.close()
            sock = socket.socket(fileno=os.dup(ours.fileno()))
            ours.close()
            _transport, protocol = await loop.create_connection(_WorkerProtocol, sock=sock)
        except BaseException:
            ours.close()
            theirs.close()
            if process.pid is not None:
                process.terminate()
            raise
        finally:
            self._starting -= 1
        worker = _Worker(process, protocol)
        self._workers.append(worker)
        return worker

    async def prestart(self) -> None:
        """Start every worker now (the node does, after its listeners), so the first
        messages do not wait for the fork server and the workers to come up."""
        if self.processes == 0 or self._closed:
            return
        self._bind(asyncio.get_running_loop())
        while len(self._workers) + self._starting < self.processes:
            self._release(await self._start())

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Workers talk to one event loop; a service reused from another loop (a CLI
        command after the server, a test) gets workers of its own."""
        if self._loop is not loop:
            self._stop_workers()
            self._loop = loop

    def _stop_workers(self) -> None:
        workers, self._workers, self._idle = self._workers, [], []
        for waiter in self._waiting:
            if not waiter.done():
                waiter.cancel()
        self._waiting.clear()
        loop = self._loop
        for worker in workers:
            transport = worker.protocol.transport
            if transport is not None and loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(transport.abort)
            worker.process.terminate()
        for worker in workers:
            worker.process.join(timeout=5)

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def close(self) -> None:
        self._closed = True
        self._stop_workers()
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)


class MappedMessage(mmap.mmap):
    """A read-only mapping of a stored message with the ``bytes`` methods the MIME parser
    uses on the whole message that ``mmap`` lacks (``startswith``, and ``count`` of one
    byte), done without copying the mapping."""

    _WINDOW = 1 << 20

    def startswith(self, prefix: bytes, start: int = 0) -> bool:
        return self[start : start + len(prefix)] == prefix

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        if len(sub) != 1:  # the parser counts single bytes only (line ends, "=")
            raise ValueError("MappedMessage.count counts one byte")
        stop = len(self) if end is None else min(end, len(self))
        total = 0
        for position in range(max(0, start), stop, self._WINDOW):
            total += self[position : min(stop, position + self._WINDOW)].count(sub)
        return total


def default_parse_processes() -> int:
    """One worker per CPU, at most 4; none (threads) on a one-CPU machine, where a
    worker process could only add the cost of moving its result."""
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(4, cpus)


def _source_size(source: BinaryIO) -> int:
    source.seek(0, os.SEEK_END)
    return source.tell()


def _read_source(source: BinaryIO) -> bytes:
    source.seek(0)
    return source.read()


class MailService:
    def __init__(
        self, database: Database, blobs: FileBlobStore, *, parse_processes: int | None = None
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.parse_workers = ParseWorkers(
            default_parse_processes() if parse_processes is None else parse_processes
        )
        # PostgreSQL's full-text index takes folded words, which the worker then makes.
        self._postgresql = database.dialect == "postgresql"
        # Reading a handed-over file (seek, read) is I/O: threads, not the parse workers.
        self._io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-io")
        # Set by the services once scheduling exists (it is built after mail).
        self.calendar_mail: CalendarMail | None = None
        #: Set by open_services: auto-replies (RFC 8621 §8) after a durable delivery.
        self.observer: DeliveryObserver | None = None

    async def ingest(self, raw: MessageSource) -> Ingested:
        """Parse once and stage the content; nothing is filed yet.

        Line endings are made canonical first (bare LF -> CRLF, RFC 5322 §2.1): what is
        stored is what IMAP FETCH and POP3 RETR send, byte for byte, so RFC822.SIZE and
        LIST sizes are the blob's size. (DKIM and the other checks on the message as
        received run before ingest, on the original bytes.)

        A small message (up to the blob store's inline limit) is only hashed: its
        content travels in the returned blob ref and is written, durably, by the
        transaction that files it (:func:`hirondelle.store.emails.reference_blob`); so
        the caller must file it with ``emails.insert_email`` before answering "stored".
        A bigger one is a file, fsynced before this returns. A file object ``raw`` is
        copied to the blob store chunk by chunk (:meth:`FileBlobStore.put_file`).
        """
        loop = asyncio.get_running_loop()
        if not isinstance(raw, bytes):
            size = await loop.run_in_executor(self._io_pool, _source_size, raw)
            if size > self.blobs.inline_limit:
                return await self._ingest_file(raw)
            raw = await loop.run_in_executor(self._io_pool, _read_source, raw)
        if len(raw) <= self.blobs.inline_limit:
            done = await self.parse_workers.run(parse_small, raw, self._postgresql, light=True)
            content = raw if done.canonical is None else done.canonical
            return Ingested(
                done.parsed, BlobRef(done.hash, len(content), inline=content), done.forms
            )
        # A big message is written as a file first (line endings made canonical on the
        # way), then parsed from that file by a worker: its bytes are not copied to the
        # worker, and the parse reads the page cache.
        return await self._ingest_file(io.BytesIO(raw))

    async def _ingest_file(self, source: BinaryIO) -> Ingested:
        """A big message handed over as a file: its blob is written from the file in
        chunks (canonical line endings made on the way), then parsed from the stored
        blob by a worker."""
        blob = await self.blobs.put_file(source, canonical_line_endings=True)
        parsed, forms = await self.parse_workers.run(
            parse_stored, str(self.blobs.path(blob.hash)), blob.size, self._postgresql
        )
        return Ingested(parsed, blob, forms)

    async def deliver(
        self, raw: MessageSource, account_ids: Sequence[int], *, mail_from: str | None = None
    ) -> list[DeliveryOutcome]:
        """Deliver one message into the Inbox of each account (DESIGN.md: stored once,
        whatever the number of recipients). One recipient over quota does not stop the
        others; each gets its own outcome. ``mail_from``, the envelope sender, is what
        an auto-reply answers (None: not mail from a sender, e.g. a bounce we made)."""
        ingested = await self.ingest(raw)
        unique = list(dict.fromkeys(account_ids))

        def write(ctx: WriteContext) -> tuple[list[DeliveryOutcome], list[int]]:
            outcomes = []
            for account_id in unique:
                inbox = emails.inbox_id(ctx.conn, account_id)
                if inbox is None:
                    outcomes.append(
                        DeliveryOutcome(account_id, refused=Refused(Reason.NOT_FOUND, "no inbox"))
                    )
                    continue
                try:
                    stored = emails.insert_email(
                        ctx,
                        account_id=account_id,
                        mailbox_ids=[inbox],
                        parsed=ingested.parsed,
                        blob=ingested.blob,
                        forms=ingested.forms,
                    )
                except Refused as refused:
                    outcomes.append(DeliveryOutcome(account_id, refused=refused))
                else:
                    # RFC 8621 §1.5: EmailDelivery is pushed for delivered mail only (not
                    # APPEND, import or Email/set), so delivery journals a kind of its own.
                    ctx.journal(account_id, "EmailDelivery", stored.email_id, "created")
                    outcomes.append(DeliveryOutcome(account_id, stored=stored))
            if observer is None:
                return outcomes, []
            stored_ids = [o.account_id for o in outcomes if o.stored is not None]
            return outcomes, (observer.interested(ctx.conn, stored_ids) if stored_ids else [])

        observer = self.observer
        if observer is not None and (
            mail_from is None or not observer.wants(ingested.parsed, mail_from=mail_from)
        ):
            observer = None
        outcomes, interested = await self.database.write(write)
        if observer is not None and interested:
            assert mail_from is not None
            observer.delivered(ingested.parsed, interested, mail_from=mail_from)
        if self.calendar_mail is not None and any(
            part.content_type == "text/calendar" for part in ingested.parsed.parts
        ):
            content = raw if isinstance(raw, bytes) else await self.blobs.get(ingested.blob.hash)
            await self._tell_calendar(self.calendar_mail, content, outcomes)
        return outcomes

    async def _tell_calendar(
        self, calendar_mail: CalendarMail, raw: bytes, outcomes: Sequence[DeliveryOutcome]
    ) -> None:
        """The message is stored whatever happens here: an iMIP message that cannot be
        applied stays in the Inbox for the user, and the error is logged."""
        delivered = [o.account_id for o in outcomes if o.stored is not None]
        if not delivered:
            return
        try:
            await calendar_mail.received(raw, delivered)
        except Exception:
            log.exception("iMIP processing failed for accounts %s", delivered)

    async def append(
        self,
        *,
        account_id: int,
        mailbox_id: int,
        raw: MessageSource,
        keywords: Iterable[str] = (),
        received_at: int | None = None,
    ) -> StoredEmail:
        """File a message in one mailbox (IMAP APPEND, JMAP import)."""
        ingested = await self.ingest(raw)
        keyword_list = list(keywords)

        def write(ctx: WriteContext) -> StoredEmail:
            return emails.insert_email(
                ctx,
                account_id=account_id,
                mailbox_ids=[mailbox_id],
                parsed=ingested.parsed,
                blob=ingested.blob,
                forms=ingested.forms,
                keywords=keyword_list,
                received_at=received_at,
            )

        return await self.database.write(write)

    def close(self) -> None:
        self.parse_workers.close()
        self._io_pool.shutdown(wait=True)
