"""The content-addressed blob store: dedup, durability (fsync path), ranges, streams."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hirondelle.store.blobs import BlobNotFound, FileBlobStore


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
