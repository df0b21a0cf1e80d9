"""Framing: literals, continuations, resynchronisation, limits, streaming, modes
(RFC 9051 §2.2, §4.3, §6.2.2, §6.3.13; RFC 7888; RFC 3516)."""

from __future__ import annotations

import time

import pytest

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.parser import (
    CommandParser,
    Event,
    IdleDone,
    LiteralChunk,
    LiteralEnd,
    LiteralStart,
    LiteralTooLarge,
    NeedContinuation,
    ParseError,
    SaslResponse,
)
from hirondelle.imap.proto.reader import StreamedLiteral

PIPELINE = (
    b"a1 LOGIN {5}\r\nsmith {6+}\r\nse\r\ncr\r\n"
    b"a2 SELECT INBOX (CONDSTORE)\r\n"
    b"a3 APPEND INBOX (\\Seen) {12}\r\nHello\r\nWorld ~{3+}\r\na\x00b\r\n"
    b"a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)])\r\n"
    b"a5 BAD{ COMMAND {4+}\r\nb6 N\r\n"
    b"a7 SEARCH CHARSET UTF-8 TEXT {2}\r\n\xc3\xa9\r\n"
)


def summary(events: list[Event]) -> list[object]:
    out: list[object] = []
    for event in events:
        if isinstance(event, c.Command):
            out.append((type(event).__name__, event.tag))
        elif isinstance(event, ParseError):
            out.append(("error", event.tag))
        else:
            out.append(event)
    return out


def test_pipeline_in_one_feed() -> None:
    events = CommandParser().feed(PIPELINE)
    assert summary(events) == [
        NeedContinuation("a1"),
        ("Login", "a1"),
        ("Select", "a2"),
        NeedContinuation("a3"),
        ("Append", "a3"),
        ("Fetch", "a4"),
        ("error", "a5"),
        NeedContinuation("a7"),
        ("Search", "a7"),
    ]
    login = events[1]
    assert isinstance(login, c.Login) and login.password == "se\r\ncr"
    append = events[4]
    assert isinstance(append, c.Append)
    assert [m.content for m in append.messages] == [b"Hello\r\nWorld", b"a\x00b"]


def test_pipeline_split_at_every_offset() -> None:
    """The same events whichever way the bytes are split."""
    expected = summary(CommandParser().feed(PIPELINE))
    for cut in range(len(PIPELINE) + 1):
        parser = CommandParser()
        events = parser.feed(PIPELINE[:cut]) + parser.feed(PIPELINE[cut:])
        assert summary(events) == expected, cut


def test_one_byte_at_a_time() -> None:
    parser = CommandParser()
    events: list[Event] = []
    for i in range(len(PIPELINE)):
        events += parser.feed(PIPELINE[i : i + 1])
    assert summary(events) == summary(CommandParser().feed(PIPELINE))
    assert parser.buffered == 0


def test_continuation_comes_before_the_literal() -> None:
    """RFC 9051 §4.3: the server asks for a synchronising literal once it has the line."""
    parser = CommandParser()
    assert parser.feed(b"a LOGIN {5}\r\n") == [NeedContinuation("a")]
    assert parser.feed(b"smith {3}\r\n") == [NeedContinuation("a")]
    (login,) = parser.feed(b"pwd\r\n")
    assert isinstance(login, c.Login) and (login.username, login.password) == ("smith", "pwd")


def test_non_synchronising_literals_need_no_continuation() -> None:
    """RFC 7888 §3: {n+}."""
    (login,) = CommandParser().feed(b"a LOGIN {5+}\r\nsmith {3+}\r\npwd\r\n")
    assert isinstance(login, c.Login)


def test_bad_line_is_refused_before_its_literal() -> None:
    """RFC 9051 §4.3: no "+" for a command that is already bad; the next line is a
    new command since the client waits."""
    parser = CommandParser()
    (err,) = parser.feed(b"a FOO {5}\r\n")
    assert isinstance(err, ParseError) and err.tag == "a" and err.message == "Unknown command FOO"
    (noop,) = parser.feed(b"b NOOP\r\n")
    assert isinstance(noop, c.Noop)
    (err,) = parser.feed(b"a FETCH 1 BODY[] {5}\r\n")
    assert isinstance(err, ParseError) and err.command == "FETCH"


def test_bad_line_skips_its_non_synchronising_literal() -> None:
    """The literal of a refused line is never read as commands (injection)."""
    parser = CommandParser()
    events = parser.feed(b"a FOO {17+}\r\nb DELETE INBOX\r\nx\r\nc NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "c")]
    # the bad command continues after its literal with another literal
    events = parser.feed(b"a FOO {3+}\r\nabc {10+}\r\nd LOGOUT\r\n\r\ne NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "e")]


def test_error_after_literal_continues_with_next_command() -> None:
    events = CommandParser().feed(b"a LOGIN {3+}\r\nfoo bar baz\r\nb NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "b")]


def test_line_too_long_resynchronises() -> None:
    parser = CommandParser(max_line=100)
    events = parser.feed(b"a SEARCH " + b"A" * 200)
    assert len(events) == 1 and isinstance(events[0], ParseError)
    assert (
        events[0].tag == "a" and events[0].message == "Line too long" and events[0].code == "TOOBIG"
    )
    assert parser.buffered < 100
    assert parser.feed(b"B" * 1000) == []
    assert parser.buffered == 0
    assert summary(parser.feed(b"\r\nb NOOP\r\n")) == [("Noop", "b")]


def test_too_long_line_announcing_non_synchronising_literal() -> None:
    parser = CommandParser(max_line=50)
    events = parser.feed(b"a SEARCH TEXT " + b"x" * 100 + b" {10+}\r\nc DELETE x\r\nd NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "d")]
    # the announcement split across feeds in skip mode
    parser = CommandParser(max_line=50)
    events = parser.feed(b"a SEARCH TEXT " + b"x" * 100 + b" {1")
    events += parser.feed(b"0+}\r")
    events += parser.feed(b"\nc DELETE x\r\nd NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "d")]


def test_complete_line_longer_than_the_limit() -> None:
    parser = CommandParser(max_line=20)
    events = parser.feed(b"a NOOP" + b" " * 30 + b"\r\nb NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "b")]


def test_command_text_limit() -> None:
    parser = CommandParser(max_line=100, max_command=150)
    data = b"a LOGIN " + b"x" * 80 + b" {1+}\r\ny" + b" " + b"z" * 80 + b"\r\nb NOOP\r\n"
    events = parser.feed(data)
    assert summary(events) == [("error", "a"), ("Noop", "b")]
    assert isinstance(events[0], ParseError) and events[0].message == "Command too long"


def test_literal_too_large() -> None:
    """Non-message literals are bounded by max_line; messages by max_literal."""
    parser = CommandParser(max_line=100, max_literal=1000)
    assert parser.feed(b"a LOGIN {101}\r\n") == [LiteralTooLarge("a", 101, True, "LOGIN")]
    assert summary(parser.feed(b"b NOOP\r\n")) == [("Noop", "b")]
    events = parser.feed(b"a APPEND INBOX {1001+}\r\n" + b"x" * 1001 + b"\r\nb NOOP\r\n")
    assert events[0] == LiteralTooLarge("a", 1001, False, "APPEND")
    assert summary(events[1:]) == [("Noop", "b")]
    big = b"a APPEND INBOX {99999999999999999999}\r\nb NOOP\r\n"
    events = parser.feed(big)
    assert events[0] == LiteralTooLarge("a", 99999999999999999999, True, "APPEND")


def test_far_over_the_limit_a_non_synchronizing_literal_closes_instead_of_being_read() -> None:
    """More than DISCARD_FACTOR times the limit: the server answers and closes (the
    parser stops; nothing after the announcement is read)."""
    parser = CommandParser(max_line=100, max_literal=1000)
    events = parser.feed(b"a APPEND INBOX {2001+}\r\n" + b"b NOOP\r\n")
    assert events == [LiteralTooLarge("a", 2001, False, "APPEND", close=True)]
    assert parser.paused and parser.feed(b"c NOOP\r\n") == []
    events = CommandParser(max_line=100).feed(b"a LOGIN {201+}\r\n")
    assert events == [LiteralTooLarge("a", 201, False, "LOGIN", close=True)]
    # A synchronising literal is never sent unasked: no reason to close.
    events = CommandParser(max_line=100).feed(b"a LOGIN {201}\r\nb NOOP\r\n")
    assert events[0] == LiteralTooLarge("a", 201, True, "LOGIN")
    assert summary(events[1:]) == [("Noop", "b")]


def test_literals_of_one_command_add_up_to_the_command_limit() -> None:
    """Each literal under max_line, but their sum is bounded by max_command: otherwise
    one command could hold any amount of memory."""
    parser = CommandParser(max_line=100, max_command=250)
    two = b"a SEARCH" + b" OR TEXT {90+}\r\n" + b"x" * 90 + b" TEXT {90+}\r\n" + b"y" * 90
    (search,) = parser.feed(two + b"\r\n")
    assert isinstance(search, c.Search)
    three = two + b" TEXT {90+}\r\n" + b"z" * 90 + b"\r\nb NOOP\r\n"
    events = parser.feed(three.replace(b"a SEARCH", b"a SEARCH OR", 1))
    assert events[0] == LiteralTooLarge("a", 90, False, "SEARCH")
    assert summary(events[1:]) == [("Noop", "b")]


def test_literal_minus() -> None:
    """RFC 7888 §4: LITERAL- allows {n+} up to 4096 octets."""
    parser = CommandParser(literal_minus=True)
    (append,) = parser.feed(b"a APPEND INBOX {4096+}\r\n" + b"x" * 4096 + b"\r\n")
    assert isinstance(append, c.Append)
    events = parser.feed(b"a APPEND INBOX {4097+}\r\n" + b"x" * 4097 + b"\r\nb NOOP\r\n")
    assert events[0] == LiteralTooLarge("a", 4097, False, "APPEND")
    assert summary(events[1:]) == [("Noop", "b")]
    assert parser.feed(b"a APPEND INBOX {4097}\r\n") == [NeedContinuation("a")]


def test_literal8_only_where_allowed() -> None:
    for data in (b"a LOGIN ~{3}\r\n", b"a ID (~{3}\r\n"):
        (err,) = CommandParser().feed(data)
        assert isinstance(err, ParseError)


def test_nul_in_literal_is_bad() -> None:
    """RFC 9051 §4.3: literal is CHAR8, no NUL."""
    (err,) = CommandParser().feed(b"a LOGIN {3+}\r\na\x00b x\r\n")
    assert isinstance(err, ParseError) and "NUL" in err.message


def test_streamed_append_literal() -> None:
    """Message literals over the threshold go out as chunks, never kept whole."""
    parser = CommandParser(literal_sink_threshold=100)
    body = bytes(range(256)) * 4
    events = parser.feed(b"a APPEND INBOX (\\Seen) {1024}\r\n")
    assert events == [NeedContinuation("a"), LiteralStart("a", 0, 1024, False)]
    received = bytearray()
    for i in range(0, len(body), 300):
        for event in parser.feed(body[i : i + 300]):
            if isinstance(event, LiteralChunk):
                received += event.data
            else:
                assert event == LiteralEnd(0)
        assert parser.buffered == 0
    events = parser.feed(b" {5+}\r\nsmall\r\n")
    append = events[0]
    assert isinstance(append, c.Append)
    assert bytes(received) == body
    assert append.messages[0].content == StreamedLiteral(0, 1024, False)
    assert append.messages[0].size == 1024
    assert append.messages[1].content == b"small"


def test_buffered_literals_share_one_budget() -> None:
    """Several small messages in one MULTIAPPEND stream once the budget is spent."""
    parser = CommandParser(literal_sink_threshold=100)
    events = parser.feed(
        b"a APPEND INBOX {60+}\r\n" + b"x" * 60 + b" {60+}\r\n" + b"y" * 60 + b"\r\n"
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["LiteralStart", "LiteralChunk", "LiteralEnd", "Append"]
    append = events[-1]
    assert isinstance(append, c.Append)
    assert append.messages[0].content == b"x" * 60
    assert append.messages[1].content == StreamedLiteral(1, 60, False)


def test_mailbox_literal_in_append_is_not_streamed() -> None:
    parser = CommandParser(literal_sink_threshold=4)
    events = parser.feed(b"a APPEND {5+}\r\nINBOX {5+}\r\nhello\r\n")
    assert [type(e).__name__ for e in events] == [
        "LiteralStart",
        "LiteralChunk",
        "LiteralEnd",
        "Append",
    ]
    append = events[-1]
    assert isinstance(append, c.Append) and append.mailbox == "INBOX"


def test_twenty_megabyte_append_is_cheap() -> None:
    body = b"0123456789abcdef" * (20 * 1024 * 1024 // 16)
    parser = CommandParser()
    start = time.perf_counter()
    events = parser.feed(b"a APPEND INBOX {%d+}\r\n" % len(body))
    size = 0
    for i in range(0, len(body), 65536):
        for event in parser.feed(body[i : i + 65536]):
            if isinstance(event, LiteralChunk):
                size += len(event.data)
    events += parser.feed(b"\r\n")
    elapsed = time.perf_counter() - start
    assert size == len(body)
    assert isinstance(events[-1], c.Append)
    assert elapsed < 2.0, elapsed


def test_uid_fetch_is_cheap() -> None:
    parser = CommandParser()
    line = b"a UID FETCH 1:* (FLAGS)\r\n"
    start = time.perf_counter()
    for _ in range(10000):
        (fetch,) = parser.feed(line)
    per_command = (time.perf_counter() - start) / 10000
    assert isinstance(fetch, c.Fetch)
    assert per_command < 200e-6, per_command


def test_crlf_split_and_bare_lf() -> None:
    parser = CommandParser()
    assert parser.feed(b"a NOOP\r") == []
    assert summary(parser.feed(b"\n")) == [("Noop", "a")]
    assert summary(parser.feed(b"b NOOP\nc NOOP\r\n")) == [("Noop", "b"), ("Noop", "c")]
    assert parser.feed(b"\r\n\r\n") == []


def test_idle_done() -> None:
    """RFC 9051 §6.3.13: the parser pauses after IDLE; DONE ends it."""
    parser = CommandParser()
    events = parser.feed(b"a IDLE\r\nDONE\r\nb NOOP\r\n")
    assert summary(events) == [("Idle", "a")]
    assert parser.paused
    parser.expect_idle_done()
    assert summary(parser.feed(b"")) == [IdleDone(), ("Noop", "b")]
    parser.feed(b"c IDLE\r\n")
    parser.expect_idle_done()
    (err,) = parser.feed(b"d NOOP\r\n")
    assert isinstance(err, ParseError) and err.message == "Expected DONE to end IDLE"
    assert summary(parser.feed(b"e NOOP\r\n")) == [("Noop", "e")]


def test_sasl_exchange() -> None:
    """RFC 9051 §6.2.2: continuation lines, "*" cancels."""
    parser = CommandParser()
    events = parser.feed(b"a AUTHENTICATE PLAIN\r\nAGZvbwBiYXI=\r\nb NOOP\r\n")
    assert summary(events) == [("Authenticate", "a")]
    parser.expect_sasl_response()
    (response,) = parser.feed(b"")
    assert isinstance(response, SaslResponse) and response.decode() == b"\x00foo\x00bar"
    assert parser.paused and not response.cancelled
    parser.resume()
    assert summary(parser.feed(b"")) == [("Noop", "b")]
    parser.feed(b"c AUTHENTICATE LOGIN\r\n")
    parser.expect_sasl_response()
    (response,) = parser.feed(b"*\r\n")
    assert isinstance(response, SaslResponse) and response.cancelled


def test_starttls_discards_buffered_plaintext() -> None:
    """RFC 9051 §6.2.1: nothing sent before the TLS handshake is a command after it."""
    parser = CommandParser()
    events = parser.feed(b"a STARTTLS\r\nb DELETE INBOX\r\n")
    assert summary(events) == [("StartTLS", "a")]
    assert parser.take_buffer() == b"b DELETE INBOX\r\n"
    assert not parser.paused and parser.feed(b"") == []


def test_enable_pauses_so_utf8_applies_to_the_next_command() -> None:
    """RFC 6855 §3: names after ENABLE UTF8=ACCEPT are UTF-8."""
    parser = CommandParser()
    events = parser.feed(b'a ENABLE UTF8=ACCEPT\r\nb SELECT "caf\xc3\xa9"\r\n')
    assert summary(events) == [("Enable", "a")]
    parser.utf8_names = True
    parser.resume()
    (select,) = parser.feed(b"")
    assert isinstance(select, c.Select) and select.mailbox == "café"


@pytest.mark.parametrize("data", [b"a NOOP {3+}\r\nabc\r\n", b"a LOGIN x y {3+}\r\nabc\r\n"])
def test_unexpected_literal(data: bytes) -> None:
    events = CommandParser().feed(data + b"b NOOP\r\n")
    assert summary(events) == [("error", "a"), ("Noop", "b")]


def test_sasl_line_too_long_ends_the_exchange() -> None:
    parser = CommandParser(max_line=50)
    parser.feed(b"a AUTHENTICATE PLAIN\r\n")
    parser.expect_sasl_response()
    (err,) = parser.feed(b"A" * 100)
    assert isinstance(err, ParseError) and err.message == "Line too long"
    assert parser.paused
    parser.resume()
    assert summary(parser.feed(b"AAAA\r\nb NOOP\r\n")) == [("Noop", "b")]


def test_compress_hands_over_the_buffer() -> None:
    """RFC 4978 §3: what follows COMPRESS is compressed; the server inflates it."""
    import zlib

    parser = CommandParser()
    deflate = zlib.compressobj(wbits=-15)
    tail = deflate.compress(b"b NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    events = parser.feed(b"a COMPRESS DEFLATE\r\n" + tail)
    assert summary(events) == [("Compress", "a")]
    inflate = zlib.decompressobj(wbits=-15)
    assert summary(parser.feed(inflate.decompress(parser.take_buffer()))) == [("Noop", "b")]
