"""The content-addressed blob store: dedup, durability (fsync path), ranges, streams."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mime import canonicalize_line_endings
from hirondelle.store import emails, migrate, schema
from hirondelle.store.blobs import CHUNK_SIZE, BlobNotFound, BlobRef, FileBlobStore, LineEndings
from hirondelle.store.database import Database, WriteContext


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    blobs = FileBlobStore(tmp_path / "blobs")
    yield blobs  # type: ignore[misc]
    blobs.close()


async def test_put_is_content_addressed_and_deduplicated(store: FileBlobStore) -> None:
    data = b"Subject: hi\r\n\r\nhello\r\n"
    first = await store.put(data)
    second = await store.put(data)
    assert first == second
    assert first.hash == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert files == [store.path(first.hash)]
    assert await store.get(first.hash) == data


async def test_write_goes_through_fsync_then_rename(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        events.append(
            f"fsync-dir {Path(path).relative_to(store.root.parent)}"
            if os.path.isdir(path)
            else "fsync-file"
        )
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        assert Path(src).parent == store.root / "tmp", "written beside, in tmp/, never in place"
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ref = await store.put(b"durable content")
    first, second = ref.hash[:2], ref.hash[2:4]
    # New directories are made durable in their parents, then the file is written and
    # fsynced, renamed in, and the rename made durable.
    assert events == [
        "fsync-dir blobs",
        f"fsync-dir blobs/{first}",
        "fsync-file",
        "rename",
        f"fsync-dir blobs/{first}/{second}",
    ]
    assert list((store.root / "tmp").iterdir()) == [], "no temporary file left behind"
    # Storing the same content again only makes sure its name is durable.
    events.clear()
    await store.put(b"durable content")
    assert events == [f"fsync-dir blobs/{first}/{second}"]


async def test_a_failed_write_leaves_nothing_visible(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    data = b"never stored"
    with pytest.raises(OSError):
        await store.put(data)
    assert not await store.exists(hashlib.sha256(data).hexdigest())
    assert list((store.root / "tmp").iterdir()) == []


async def test_ranges_and_streams(store: FileBlobStore) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB, several stream chunks
    ref = await store.put(data)
    assert await store.read_range(ref.hash, 10, 20) == data[10:20]
    assert await store.read_range(ref.hash, len(data) - 5, len(data) + 100) == data[-5:]
    chunks = [chunk async for chunk in store.stream(ref.hash)]
    assert len(chunks) > 1
    assert b"".join(chunks) == data
    part = b"".join([chunk async for chunk in store.stream(ref.hash, 1000, 300_000)])
    assert part == data[1000:300_000]


async def test_unknown_and_malformed_hashes_are_not_found(store: FileBlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.get("0" * 64)
    with pytest.raises(BlobNotFound):
        await store.get("../../etc/passwd")
    assert not await store.exists("not-a-hash")


# -- streamed writes (issue 4) ------------------------------------------------------


@given(
    data=st.binary(max_size=400).map(lambda b: b.replace(b"\x00", b"\n")),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_line_endings_chunked_equal_the_whole(data: bytes, cuts: list[int]) -> None:
    """Made canonical chunk by chunk, whatever the cuts (a CRLF split between two
    chunks included), the result is the one-shot canonicalisation of the whole."""
    endings = LineEndings()
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    out = b"".join(endings.feed(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert out == canonicalize_line_endings(data)


def test_line_endings_across_a_chunk_boundary() -> None:
    endings = LineEndings()
    assert endings.feed(b"a\r") + endings.feed(b"\nb\n") + endings.feed(b"\r") + endings.feed(
        b"c"
    ) == (b"a\r\nb\r\n\rc")


async def test_put_file_streams_in_chunks_and_is_durable(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 5000  # several CHUNK_SIZE reads
    reads: list[int] = []
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append("dir" if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with (tmp_path / "source").open("w+b") as source:
        source.write(data)  # left at its end: put_file reads from offset 0
        real_read = source.read

        def read(size: int = -1) -> bytes:
            reads.append(size)
            return real_read(size)

        monkeypatch.setattr(source, "read", read)
        ref = await store.put_file(source)
        assert not source.closed, "the caller closes its file"
    assert ref.hash == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert reads and all(0 < size <= CHUNK_SIZE for size in reads), "never read whole"
    assert "file" in events and events[-1] == "dir", "file fsynced, then its name"
    assert await store.get(ref.hash) == data
    assert list((store.root / "tmp").iterdir()) == []
    # The same content again: deduplicated, no second file, no temporary left.
    with (tmp_path / "again").open("w+b") as source:
        source.write(data)
        assert await store.put_file(source) == ref
    assert [p for p in store.root.rglob("*") if p.is_file()] == [store.path(ref.hash)]


async def test_put_file_makes_line_endings_canonical(store: FileBlobStore, tmp_path: Path) -> None:
    raw = b"Subject: x\n\n" + b"line\n" * 100_000 + b"last\r\nend"
    with (tmp_path / "source").open("w+b") as source:
        source.write(raw)
        ref = await store.put_file(source, canonical_line_endings=True)
    expected = canonicalize_line_endings(raw)
    assert await store.get(ref.hash) == expected
    assert ref == BlobRef(hashlib.sha256(expected).hexdigest(), len(expected))


# -- small blobs inline in SQL (issue 3) ----------------------------------------------


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    migrate.upgrade(db.write_engine)
    yield db
    db.close()


async def test_stage_keeps_small_content_for_the_transaction(
    database: Database, tmp_path: Path
) -> None:
    """A staged small blob is nowhere until a transaction references it; then every
    read method finds it, and no file was ever written."""
    store = FileBlobStore(tmp_path / "blobs", database=database, inline_limit=1000)
    try:
        data = b"Subject: petit\r\n\r\n" + b"0123456789" * 50
        ref = store.stage(data)
        assert ref.inline == data and ref.hash == hashlib.sha256(data).hexdigest()
        assert not await store.exists(ref.hash)
        with pytest.raises(BlobNotFound):
            await store.get(ref.hash)
        await database.write(lambda ctx: emails.reference_blob(ctx.conn, ref))
        assert await store.exists(ref.hash)
        assert await store.get(ref.hash) == data
        assert await store.read_range(ref.hash, 5, 20) == data[5:20]
        assert b"".join([c async for c in store.stream(ref.hash)]) == data
        assert b"".join([c async for c in store.stream(ref.hash, 3, 30)]) == data[3:30]
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
        # Referencing the same content again is one more reference, not an error.
        await database.write(lambda ctx: emails.reference_blob(ctx.conn, store.stage(data)))
        count = await database.read(
            lambda c: c.execute(sa.select(schema.blobs.c.refcount)).scalar_one()
        )
        assert count == 2
        await store.delete(ref.hash)
        assert not await store.exists(ref.hash)
    finally:
        store.close()


async def test_stage_writes_big_content_as_a_file(database: Database, tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs", database=database, inline_limit=1000)
    try:
        data = b"x" * 1001
        ref = store.stage(data)
        assert ref.inline is None
        assert store.path(ref.hash).read_bytes() == data
    finally:
        store.close()


async def test_a_rolled_back_transaction_leaves_no_inline_blob(
    database: Database, tmp_path: Path
) -> None:
    store = FileBlobStore(tmp_path / "blobs", database=database)
    try:
        ref = store.stage(b"Subject: lost\r\n\r\nnever committed\r\n")

        def failing(ctx: WriteContext) -> None:
            emails.reference_blob(ctx.conn, ref)
            raise RuntimeError("the transaction fails after the reference")

        with pytest.raises(RuntimeError):
            await database.write(failing)
        assert not await store.exists(ref.hash)
    finally:
        store.close()
