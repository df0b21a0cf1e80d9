"""Content-addressed blob storage (SHA-256).

DESIGN.md "Mail model": a blob is written to a temporary file, fsynced, renamed into
place (and the directory fsynced), then referenced. Identical content is stored once,
whatever the number of recipients. :class:`BlobStore` is the interface an S3-compatible
store implements later; :class:`FileBlobStore` is the embedded default.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 256 * 1024
# Worker threads for file I/O (see FileBlobStore.__init__).
BLOB_THREADS = 16


@dataclass(frozen=True, slots=True)
class BlobRef:
    hash: str
    size: int


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


def _valid_hash(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class FileBlobStore:
    """Blobs as files ``ROOT/ab/cd/<hash>`` on the local filesystem."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
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
            raise BlobNotFound(blob_hash) from None

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
            raise BlobNotFound(blob_hash) from None

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
            position += len(chunk)

    async def exists(self, blob_hash: str) -> bool:
        try:
            return self.path(blob_hash).exists()
        except BlobNotFound:
            return False

    async def delete(self, blob_hash: str) -> None:
        await self._run(self._delete_sync, blob_hash)

    def _delete_sync(self, blob_hash: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(blob_hash).unlink()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _fsync_directory(path: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
