"""APPEND of a big message is never held whole in memory (issue 4): the parser streams
the literal, the session spools it (memory up to ``SPOOL_MEMORY``, then a temporary
file), and the mail service reads that file in chunks into the blob store.

The server runs in this process (on its own thread), so ``tracemalloc`` sees every
Python allocation the APPEND causes, server side and client side; the message itself
is built before tracing starts."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

import pytest

from hirondelle.imap import session as imap_session
from hirondelle.mail.messages import MessageService
from tests.imap.conftest import ImapServer
from tests.messages import simple_message

SIZE = 30 * 1024 * 1024


def _big_message() -> bytes:
    head = simple_message(subject="thirty megabytes")
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
    body = line * ((SIZE - len(head)) // len(line) + 1)
    return (head + body)[: SIZE - 2] + b"\r\n"


def test_append_of_30_mb_keeps_the_heap_far_below_the_message_size(
    imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The heap's peak up to the moment the mail service is called (the IMAP side:
    # socket reads, parser, spool), then the peak inside the service (ingest, blob).
    phases: dict[str, int] = {}
    append = MessageService.append

    async def measured(self: MessageService, *args: Any, **kwargs: Any) -> list[int]:
        phases["imap"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        try:
            return await append(self, *args, **kwargs)
        finally:
            phases["service"] = tracemalloc.get_traced_memory()[1]

    monkeypatch.setattr(MessageService, "append", measured)
    message = _big_message()
    assert len(message) == SIZE
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")  # the code paths are loaded before measuring
    view = memoryview(message)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        raw.send(b"a APPEND INBOX {%d+}\r\n" % SIZE)
        for start in range(0, SIZE, 1 << 20):
            raw.send(view[start : start + (1 << 20)])
        raw.send(b"\r\n")
        lines = raw.until_tagged(b"a")
    finally:
        tracemalloc.stop()
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    # IMAP side: parser buffers, the 1 MiB in-memory part of the spool and the client's
    # 1 MiB slices (measured: 2.1 MB). The service: its own chunked ingest (measured
    # 16.3 MB on 30 MB: the parse; the store-write side's to bring down).
    assert phases["imap"] < 4 * 1024 * 1024, phases
    assert phases["service"] < 20 * 1024 * 1024, phases
    # Stored whole and exactly.
    assert raw.command("FETCH 1 RFC822.SIZE")[0] == b"* 1 FETCH (RFC822.SIZE %d)" % SIZE
    fetched = raw.command("FETCH 1 BODY.PEEK[]")[0]
    body = fetched[fetched.index(b"}\r\n") + 3 : -1]
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(message).hexdigest()
    raw.close()


def test_spooled_literal_files_are_gone_after_the_command(imap: ImapServer) -> None:
    """The spool goes to disk above SPOOL_MEMORY and is closed (so removed) whether the
    APPEND succeeded or was refused."""
    size = imap_session.SPOOL_MEMORY * 3
    message = simple_message(subject="three megabytes") + b"x" * size
    raw = imap.raw()
    raw.login()
    raw.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    assert raw.until_tagged(b"a")[-1].startswith(b"a OK [APPENDUID ")
    raw.send(b"b APPEND Nowhere {%d+}\r\n" % len(message) + message + b"\r\n")
    assert raw.until_tagged(b"b")[-1].startswith(b"b NO [TRYCREATE]")
    spool = imap.services.settings.blob_dir() / "tmp"
    assert not [p for p in spool.iterdir() if p.name.startswith("imap-append-")]
    raw.command("SELECT INBOX")
    assert raw.command("FETCH 1 RFC822.SIZE")[0] == b"* 1 FETCH (RFC822.SIZE %d)" % len(message)
    raw.close()
