"""Streamed message writes (issue 4): a message handed over as a file object is copied
to the blob store chunk by chunk and parsed from the stored file, never held whole in
the process's memory; what is stored and parsed is what the bytes path would give."""

from __future__ import annotations

import mmap
import tempfile
import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa

from hirondelle.mail.delivery import MappedMessage
from hirondelle.mail.messages import MessageService, NewMessage
from hirondelle.mime import canonicalize_line_endings, parse_message
from hirondelle.services import Services
from hirondelle.store import emails, schema, schema_blobs
from tests.messages import simple_message
from tests.store.test_mail_store import inbox_of, make_account

# Empty files cannot be mapped; the service parses an empty blob as b"" without a mapping.
CORPUS = [
    p for p in sorted((Path(__file__).parent.parent / "corpus").glob("*.eml")) if p.stat().st_size
]


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_parse_over_a_mapping_equals_parse_over_bytes(path: Path) -> None:
    raw = canonicalize_line_endings(path.read_bytes())
    with tempfile.TemporaryFile() as file:
        file.write(raw)
        file.flush()
        with MappedMessage(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            assert parse_message(view) == parse_message(raw)  # type: ignore[arg-type]


def test_mapped_count_spans_windows() -> None:
    data = (b"a\nb=" * 700_000)[:2_500_000]
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        with MappedMessage(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            assert view.count(b"\n") == data.count(b"\n")
            assert view.count(b"=", 12345, 2_000_001) == data.count(b"=", 12345, 2_000_001)
            assert view.startswith(b"b=", 2) and not view.startswith(b"b=", 3)


def _big_message(lines: int) -> bytes:
    """A message with bare LF line ends (as an IMAP client may send) and a base64-like
    attachment, ``lines`` lines of 76 characters."""
    head = (
        b"From: Carol <carol@elsewhere.test>\nTo: alice@example.test\nSubject: Gros\n"
        b"Message-ID: <big@elsewhere.test>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\n'
        b"Content-Type: text/plain; charset=utf-8\n\nVoici le fichier.\n--b1\n"
        b"Content-Type: application/octet-stream; name=data.bin\n"
        b"Content-Transfer-Encoding: base64\n\n"
    )
    return (
        head
        + b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n" * (lines)
        + b"--b1--\n"
    )


async def test_append_from_a_file_is_streamed(services: Services, tmp_path: Path) -> None:
    """A 20 MB APPEND from a file: stored canonical, parsed as bytes would be, and the
    Python heap never grows by anything near the message's size."""
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    raw = _big_message(270_000)  # about 20 MB
    expected = canonicalize_line_endings(raw)
    with (tmp_path / "literal").open("w+b") as source:
        source.write(raw)
        del raw
        tracemalloc.start()
        try:
            uids = await MessageService(services.database, services.mail).append(
                alice.id, inbox.id, [NewMessage(source, frozenset({"$seen"}))]
            )
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert not source.closed, "the caller closes its file"
    assert uids == [1]
    assert peak < 4_000_000, f"{peak} bytes traced at peak for a {len(expected)} byte message"
    rows = await services.database.read(
        lambda c: emails.fetch_rows(c, inbox.id, [1], with_structure=True)
    )
    stored = rows[0]
    assert stored.size == len(expected)
    assert await services.blobs.get(stored.blob_hash) == expected
    assert services.blobs.path(stored.blob_hash).read_bytes() == expected
    # What was filed is what the bytes path parses.
    parsed = parse_message(expected)
    assert stored.body_structure == parsed.body_structure


async def test_delivery_from_a_file(services: Services, tmp_path: Path) -> None:
    alice = await make_account(services)
    raw = _big_message(2_000)
    with (tmp_path / "message.eml").open("w+b") as source:
        source.write(raw)
        outcomes = await services.mail.deliver(source, [alice.id])
    assert outcomes[0].stored is not None
    blob_hash = await services.database.read(
        lambda c: c.execute(sa.select(schema.emails.c.blob_hash)).scalar_one()
    )
    assert await services.blobs.get(blob_hash) == canonicalize_line_endings(raw)


async def test_a_small_file_is_stored_inline(services: Services, tmp_path: Path) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    raw = simple_message(body="court\n")
    with (tmp_path / "small").open("w+b") as source:
        source.write(raw)
        await MessageService(services.database, services.mail).append(
            alice.id, inbox.id, [NewMessage(source)]
        )
    inline = await services.database.read(
        lambda c: c.execute(sa.select(schema_blobs.blob_inline.c.data)).scalars().all()
    )
    assert [bytes(data) for data in inline] == [canonicalize_line_endings(raw)]
