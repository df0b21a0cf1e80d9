"""Content-addressed blob storage (SHA-256).

DESIGN.md "Mail model": a blob is written to a temporary file, fsynced, renamed into
place (and the directory fsynced), then referenced. Identical content is stored once,
whatever the number of recipients. :class:`BlobStore` is the interface an S3-compatible
store implements later; :class:`FileBlobStore` is the embedded default.

Small blobs (at most ``inline_limit`` bytes, :data:`INLINE_LIMIT` by default) are not
files: :meth:`FileBlobStore.stage` only hashes them and hands back a :class:`BlobRef`
carrying the content, and the transaction that references the blob writes it into the
``blob_inline`` table (:func:`hirondelle.store.emails.reference_blob`). Storing a small
message then costs one durable write, the commit, instead of three fsyncs in series
(docs/architecture.md, "Small blobs live in SQL"). Reads look for a file first, then
for an inline row, behind the same methods.

Big content can be written from a file object without holding it in memory
(:meth:`FileBlobStore.put_file`): it is copied chunk by chunk into the temporary file,
hashed on the way, optionally with its line endings made canonical.

All methods are coroutines that do their file I/O on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from sqlalchemy.engine import Connection

from hirondelle.store.database import DriverStatement, driver_cursor
from hirondelle.store.schema_blobs import blob_inline

if TYPE_CHECKING:
    from hirondelle.store.database import Database, WriteContext

CHUNK_SIZE = 256 * 1024
# Worker threads for file I/O (see FileBlobStore.__init__).
BLOB_THREADS = 16
#: Blobs up to this size live in SQL (``blob_inline``), written by the referencing
#: transaction. 64 KiB covers the bulk of mail by count (text messages, most HTML ones)
#: while keeping big attachments out of the database and its WAL.
INLINE_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class BlobRef:
    hash: str
    size: int
    #: The content, when it is not stored yet and must be written inline by the
    #: transaction that references the blob (see :meth:`FileBlobStore.stage`).
    inline: bytes | None = field(default=None, compare=False, repr=False)


class BlobNotFound(LookupError):
    pass


class BlobStore(Protocol):
    async def put(self, data: bytes) -> BlobRef:
        """Store ``data`` durably; return its address. Storing existing content is a no-op."""

    async def get(self, blob_hash: str) -> bytes: ...

    async def read_range(self, blob_hash: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive)."""

    def stream(
        self, blob_hash: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks, never the whole blob in memory."""

    async def exists(self, blob_hash: str) -> bool: ...

    async def delete(self, blob_hash: str) -> None: ...


def blob_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LineEndings:
    """Incremental canonicalisation of line endings (RFC 5322 §2.1: bare LF -> CRLF)
    over chunks, so a big message is made canonical while it is copied. A CR that ends
    a chunk is held back until the next chunk shows whether an LF follows it."""

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        if self._last_cr and chunk.startswith(b"\n"):
            head, chunk = b"\n", chunk[1:]
        else:
            head = b""
        self._last_cr = chunk.endswith(b"\r")
        if chunk.count(b"\n") != chunk.count(b"\r\n"):
            # Bare LFs inside the chunk: CRLF first to LF, then every LF to CRLF.
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return head + chunk


def _valid_hash(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class FileBlobStore:
    """Blobs as files ``ROOT/ab/cd/<hash>`` on the local filesystem."""

    def __init__(
        self,
        root: Path,
        *,
        fsync: bool = True,
        database: Database | None = None,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        self.root = root
        self.fsync = fsync
        # Without a database (tests of the file layer, tools) every blob is a file.
        self.database = database
        self.inline_limit = inline_limit if database is not None else -1
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Threads mostly wait in fsync (the GIL is released there), and the filesystem's
        # journal commits concurrent fsyncs together: with 4 threads, 16 concurrent
        # deliveries queued behind each other's fsyncs (docs/performance.md).
        self._pool = ThreadPoolExecutor(max_workers=BLOB_THREADS, thread_name_prefix="blobs")

    def path(self, blob_hash: str) -> Path:
        if not _valid_hash(blob_hash):
            raise BlobNotFound(blob_hash)
        return self.root / blob_hash[:2] / blob_hash[2:4] / blob_hash

    async def _run(self, function: object, *args: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, *args)  # type: ignore[arg-type]

    async def put(self, data: bytes) -> BlobRef:
        result = await self._run(self.put_sync, data)
        assert isinstance(result, BlobRef)
        return result

    def put_sync(self, data: bytes) -> BlobRef:
        """Write ``data`` durably: the file is fsynced, renamed into place, and its
        directory fsynced so that the new name is."""
        digest = blob_hash(data)
        target = self.path(digest)
        if target.exists():
            # Another writer may have renamed it in but not yet fsynced the directory:
            # the name must be durable before this caller commits a reference to it.
            if self.fsync:
                _fsync_directory(target.parent)
            return BlobRef(digest, len(data))
        self._make_directory(target.parent)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                if self.fsync:
                    os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        if self.fsync:
            _fsync_directory(target.parent)
        return BlobRef(digest, len(data))

    def stage(self, data: bytes) -> BlobRef:
        """The address of ``data``, to be stored by the transaction that references it.

        Small content (at most ``inline_limit`` bytes) is only hashed, with no I/O: the
        returned ref carries it, and :func:`hirondelle.store.emails.reference_blob`
        writes it into ``blob_inline`` in the caller's transaction, which makes it
        durable at commit. Bigger content is written as a file first (:meth:`put_sync`).
        Runs on the caller's thread (a worker thread: hashing is CPU work).
        """
        if len(data) <= self.inline_limit:
            return BlobRef(blob_hash(data), len(data), inline=data)
        return self.put_sync(data)

    async def put_file(self, source: BinaryIO, *, canonical_line_endings: bool = False) -> BlobRef:
        """Store the content of ``source`` (read from offset 0 to its end, in
        :data:`CHUNK_SIZE` chunks, never whole in memory) durably, as a file whatever its
        size. With ``canonical_line_endings`` bare LFs become CRLF on the way. The caller
        keeps ``source`` and closes it."""
        result = await self._run(self.put_file_sync, source, canonical_line_endings)
        assert isinstance(result, BlobRef)
        return result

    def put_file_sync(self, source: BinaryIO, canonical_line_endings: bool = False) -> BlobRef:
        source.seek(0)
        digest = hashlib.sha256()
        size = 0
        endings = LineEndings() if canonical_line_endings else None
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := source.read(CHUNK_SIZE):
                    if endings is not None:
                        chunk = endings.feed(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
                tmp.flush()
                if self.fsync:
                    os.fsync(tmp.fileno())
            target = self.path(digest.hexdigest())
            if target.exists():
                os.unlink(tmp_name)
            else:
                self._make_directory(target.parent)
                os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        if self.fsync:
            _fsync_directory(target.parent)
        return BlobRef(digest.hexdigest(), size)

    def _make_directory(self, directory: Path) -> None:
        """Create ``ROOT/ab/cd`` as needed; each directory created is made durable in its
        parent (POSIX does not promise that a new directory's name survives a crash
        until its parent is fsynced)."""
        if directory.is_dir():
            return
        missing = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for new in reversed(missing):
            try:
                new.mkdir()
            except FileExistsError:  # another writer made it first: its fsync is ours too
                continue
            if self.fsync:
                _fsync_directory(new.parent)

    async def get(self, blob_hash: str) -> bytes:
        result = await self._run(self.get_sync, blob_hash)
        assert isinstance(result, bytes)
        return result

    def get_sync(self, blob_hash: str) -> bytes:
        try:
            return self.path(blob_hash).read_bytes()
        except FileNotFoundError:
            return self._inline_sync(blob_hash)

    def _inline_sync(self, blob_hash: str) -> bytes:
        """The content of an inline blob (``blob_inline``), or BlobNotFound."""
        if self.database is None:
            raise BlobNotFound(blob_hash)
        data = _read_inline_raw(self.database, blob_hash)
        if data is None:
            raise BlobNotFound(blob_hash)
        return data

    async def read_range(self, blob_hash: str, start: int, end: int) -> bytes:
        result = await self._run(self._read_range_sync, blob_hash, start, end)
        assert isinstance(result, bytes)
        return result

    def _read_range_sync(self, blob_hash: str, start: int, end: int) -> bytes:
        try:
            with self.path(blob_hash).open("rb") as blob:
                blob.seek(start)
                return blob.read(max(0, end - start))
        except FileNotFoundError:
            return self._inline_sync(blob_hash)[start:end]

    async def stream(
        self, blob_hash: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        position = start
        while end is None or position < end:
            size = CHUNK_SIZE if end is None else min(CHUNK_SIZE, end - position)
            chunk = await self.read_range(blob_hash, position, position + size)
            if not chunk:
                return
            yield chunk
            if len(chunk) < size:  # the end of the blob: no need to ask again
                return
            position += len(chunk)

    async def exists(self, blob_hash: str) -> bool:
        try:
            if self.path(blob_hash).exists():
                return True
        except BlobNotFound:
            return False
        result = await self._run(self._inline_exists_sync, blob_hash)
        assert isinstance(result, bool)
        return result

    def _inline_exists_sync(self, blob_hash: str) -> bool:
        try:
            self._inline_sync(blob_hash)
        except BlobNotFound:
            return False
        return True

    async def delete(self, blob_hash: str) -> None:
        await self._run(self._delete_sync, blob_hash)
        if self.database is not None and _valid_hash(blob_hash):
            await self.database.write(lambda ctx: delete_inline(ctx, blob_hash))

    def _delete_sync(self, blob_hash: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(blob_hash).unlink()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# On every read of a small blob (IMAP FETCH, POP3 RETR): run on the driver's cursor, not
# through a Core statement (DriverStatement: the statement's overhead was most of a read).
_READ_INLINE = DriverStatement("SELECT data FROM blob_inline WHERE hash = ?")


def read_inline(conn: Connection, blob_hash: str) -> bytes | None:
    cursor = driver_cursor(conn)
    try:
        cursor.execute(_READ_INLINE.text(conn.dialect.name), (blob_hash,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else bytes(row[0])


def _read_inline_raw(database: Database, blob_hash: str) -> bytes | None:
    """:func:`read_inline` on a pooled driver connection, without a SQLAlchemy
    Connection and its BEGIN/COMMIT: one SELECT is consistent on its own, and this runs
    on every read of a small blob. (The pool rolls the connection back when it returns.)"""
    raw = database.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(_READ_INLINE.text(database.dialect), (blob_hash,))
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        raw.close()
    return None if row is None else bytes(row[0])


def delete_inline(ctx: WriteContext, blob_hash: str) -> None:
    ctx.conn.execute(blob_inline.delete().where(blob_inline.c.hash == blob_hash))


def _fsync_directory(path: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
