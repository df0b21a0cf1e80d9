"""Hot-path behaviour: a 50 MB attachment, many parts, deep nesting (DESIGN.md "Hot paths")."""

from __future__ import annotations

import time

from hirondelle.mime import parse_message
from hirondelle.mime.structure import MAX_DEPTH, MAX_PARTS

from .imap_reader import read_imap

HEAD = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: rcpt@example.org\r\n"
    b"Subject: the quarterly archive\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="big-boundary"\r\n'
    b"\r\n"
    b"--big-boundary\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The archive is attached.\r\n"
    b"--big-boundary\r\n"
    b"Content-Type: application/zip; name=archive.zip\r\n"
    b"Content-Disposition: attachment; filename=archive.zip\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
)


def big_message(encoded_size: int) -> tuple[bytes, int, int]:
    """A message whose attachment body is ``encoded_size`` octets of base64 lines."""
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    body = line * (encoded_size // len(line))
    body_start = len(HEAD)
    raw = HEAD + body + b"\r\n--big-boundary--\r\n"
    return raw, body_start, body_start + len(body)


# The bounds below are CPU time of this process (not wall time, which another process's load
# stretches): they catch a parser gone quadratic, not a slow machine.


def test_fifty_megabyte_attachment_parses_fast_with_exact_offsets() -> None:
    raw, body_start, body_end = big_message(50 * 1024 * 1024)
    started = time.process_time()
    message = parse_message(raw)
    elapsed = time.process_time() - started
    assert elapsed < 2.0, f"parsing took {elapsed:.2f}s"
    assert message.size == len(raw)
    attachment = next(part for part in message.parts if part.section == "2")
    assert (attachment.body_start, attachment.end) == (body_start, body_end)
    assert attachment.filename == "archive.zip"
    assert attachment.transfer_encoding == "base64"
    assert message.attachments == ("2",)
    assert message.has_attachment
    size = body_end - body_start
    assert b'"base64" %d NIL ("attachment"' % size in message.body_structure
    node = message.jmap_body_structure["subParts"][1]
    lines = raw.count(b"\n", body_start, body_end)
    assert node["size"] == (size - 2 * lines) * 3 // 4
    assert message.preview == "The archive is attached."
    read_imap(message.body_structure)


def test_fifty_megabyte_plain_text_body_is_capped_for_search() -> None:
    line = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\r\n"
    raw = b"Subject: long\r\n\r\n" + line * (50 * 1024 * 1024 // len(line))
    started = time.process_time()
    message = parse_message(raw)
    assert time.process_time() - started < 2.0
    assert len(message.search_text) <= 2 * 1024 * 1024
    assert message.preview.startswith("lorem ipsum")
    assert len(message.preview) <= 256


def test_part_count_is_bounded_and_the_rest_is_one_opaque_part() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(MAX_PARTS + 50))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    started = time.process_time()
    message = parse_message(raw)
    assert time.process_time() - started < 5.0
    assert len(message.parts) <= MAX_PARTS + 2
    last = message.parts[-1]
    assert last.content_type == "application/octet-stream"
    assert last.end == len(raw)
    read_imap(message.body_structure)


def test_nesting_depth_is_bounded() -> None:
    depth = MAX_DEPTH + 20
    head = b"".join(
        b"--l%d\r\nContent-Type: multipart/mixed; boundary=l%d\r\n\r\n" % (level, level + 1)
        for level in range(depth)
    )
    raw = (
        b"Content-Type: multipart/mixed; boundary=l0\r\n\r\n" + head + b"--l%d\r\n\r\nx\r\n" % depth
    )
    message = parse_message(raw)
    read_imap(message.body_structure)
    read_imap(message.body)
    assert max(part.section.count(".") for part in message.parts) < MAX_DEPTH
    assert any(part.content_type == "application/octet-stream" for part in message.parts)


def test_deeply_nested_messages_are_bounded() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * (MAX_DEPTH * 3) + b"Subject: core\r\n\r\nx"
    message = parse_message(raw)
    read_imap(message.body_structure)
    assert max(len(part.section.split(".")) for part in message.parts) <= MAX_DEPTH + 1
