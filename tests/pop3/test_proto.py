"""The sans-I/O POP3 layer: RFC 1939/2449/5034 command examples, responses, SASL PLAIN,
and properties of the message encoder (CRLF, dot-stuffing, TOP, sizes) under any
chunking; the parser fuzzed with arbitrary bytes."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mime import canonicalize_line_endings
from hirondelle.pop3 import proto


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"USER mrose", proto.User("mrose")),
        (b"PASS secret", proto.Pass("secret")),
        (b"PASS two words  and spaces ", proto.Pass("two words  and spaces ")),
        (b"STAT", proto.Stat()),
        (b"LIST", proto.List()),
        (b"LIST 2", proto.List(2)),
        (b"RETR 1", proto.Retr(1)),
        (b"DELE 1", proto.Dele(1)),
        (b"NOOP", proto.Noop()),
        (b"RSET", proto.Rset()),
        (b"QUIT", proto.Quit()),
        (b"TOP 10 5", proto.Top(10, 5)),
        (b"TOP 1 0", proto.Top(1, 0)),
        (b"UIDL", proto.Uidl()),
        (b"UIDL 2", proto.Uidl(2)),
        (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb", proto.Apop()),
        (b"CAPA", proto.Capa()),
        (b"STLS", proto.Stls()),
        (b"AUTH", proto.Auth(None)),
        (b"AUTH PLAIN", proto.Auth("PLAIN")),
        (b"AUTH plain dGVzdAB0ZXN0AHRlc3Q=", proto.Auth("PLAIN", "dGVzdAB0ZXN0AHRlc3Q=")),
        (b"auth PLAIN =", proto.Auth("PLAIN", "=")),
        (b"stat", proto.Stat()),
        (b"List  3", proto.List(3)),
    ],
)
def test_rfc_examples_parse(line: bytes, expected: proto.Command) -> None:
    assert proto.parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "empty command"),
        (b"XYZZY", "unknown command"),
        (b"HELLOWORLD", "unknown command"),
        (b"RETR", "syntax: RETR msg"),
        (b"RETR 1 2", "syntax: RETR msg"),
        (b"RETR 0", "invalid message number"),
        (b"RETR -1", "invalid message number"),
        (b"RETR 1234567890", "invalid message number"),
        (b"LIST \xc3\xa9", "arguments must be printable ASCII"),
        (b"TOP 1 x", "invalid number of lines"),
        (b"STAT now", "syntax: STAT"),
        (b"USER", "syntax: USER name"),
        (b"PASS", "syntax: PASS password"),
        (b"PASS \xff", "password is not valid UTF-8"),
        (b"PASS a\x00b", "password contains control characters"),
        (b"NOOP " + b"x" * 260, "line too long (255 octets at most)"),
    ],
)
def test_bad_commands_get_precise_errors(line: bytes, message: str) -> None:
    with pytest.raises(proto.CommandError) as raised:
        proto.parse_command(line)
    assert raised.value.message == message


def test_responses() -> None:
    assert proto.ok() == b"+OK\r\n"
    assert proto.ok("2 320") == b"+OK 2 320\r\n"
    assert proto.err("busy", code="IN-USE") == b"-ERR [IN-USE] busy\r\n"
    assert proto.err("no\r\n+OK injected") == b"-ERR no  +OK injected\r\n"
    assert proto.continuation() == b"+ \r\n"
    assert proto.multiline(proto.ok("list"), ["1 120", ".dot"]) == (
        b"+OK list\r\n1 120\r\n..dot\r\n.\r\n"
    )


def test_sasl_plain() -> None:
    credentials = proto.decode_plain(proto.decode_sasl_response("dGVzdAB0ZXN0AHRlc3Q="))
    assert credentials == proto.PlainCredentials("test", "test", "test")
    encoded = base64.b64encode("\0alice@example.test\0pässword".encode()).decode()
    assert proto.decode_plain(proto.decode_sasl_response(encoded)).password == "pässword"
    assert proto.decode_sasl_response("=") == b""
    for bad in ("abc", "!!!!", "ab=c", ""):
        with pytest.raises(proto.CommandError):
            proto.decode_sasl_response(bad)
    for bad_plain in (b"", b"\0user", b"\0\0password", b"a\0b\0c\0d", b"\0\xff\0x"):
        with pytest.raises(proto.CommandError):
            proto.decode_plain(bad_plain)


# -- the message encoder -------------------------------------------------------------

# Messages made of the octets that matter: line endings, dots, and a letter.
messages = st.binary(max_size=400).map(
    lambda data: bytes(b"a.\r\n"[octet % 4] for octet in data)
) | st.binary(max_size=200)


def canonical(message: bytes) -> bytes:
    """What RETR must deliver: CRLF line endings and a final CRLF."""
    data = canonicalize_line_endings(message)
    return data if not data or data.endswith(b"\r\n") else data + b"\r\n"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return chunks


def encode(chunks: list[bytes], body_lines: int | None = None) -> bytes:
    encoder = proto.MessageEncoder(body_lines=body_lines)
    return b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.finish()


def reference_top(message: bytes, lines: int) -> bytes:
    data = canonical(message)
    header_end = 0 if data.startswith(b"\r\n") else data.find(b"\r\n\r\n")
    if header_end < 0:
        return data
    cut = header_end + (2 if header_end == 0 else 4)
    body = data[cut:].split(b"\r\n")[:-1] if data[cut:] else []
    return data[:cut] + b"".join(line + b"\r\n" for line in body[:lines])


@given(messages, st.lists(st.integers(0, 400), max_size=6))
def test_retr_data_is_the_canonical_message_however_it_is_chunked(
    message: bytes, cuts: list[int]
) -> None:
    encoded = encode(split(message, cuts))
    assert encoded == encode([message])
    assert proto.unstuff(encoded) == canonical(message)
    # The terminator appears only at the end: no line of the body is a lone dot.
    assert b"\r\n.\r\n" not in encoded[:-3] and not encoded[:-3].startswith(b".\r\n")


@given(messages, st.lists(st.integers(0, 400), max_size=6))
def test_size_is_what_retr_sends(message: bytes, cuts: list[int]) -> None:
    assert proto.pop3_size(split(message, cuts)) == len(canonical(message))
    counter = proto.SizeCounter()
    for chunk in split(message, cuts):
        counter.feed(chunk)
    assert counter.finish() == len(canonical(message))


@given(messages, st.integers(0, 10), st.lists(st.integers(0, 400), max_size=6))
def test_top_sends_header_and_n_lines(message: bytes, lines: int, cuts: list[int]) -> None:
    assert proto.unstuff(encode(split(message, cuts), lines)) == reference_top(message, lines)


@given(st.binary(max_size=300))
def test_parser_never_raises_anything_but_command_error(line: bytes) -> None:
    try:
        parsed = proto.parse_command(line)
    except proto.CommandError as error:
        assert error.message and "\n" not in error.message
    else:
        assert type(parsed).__name__.upper().startswith(line[:3].decode("ascii").upper())


@given(
    st.lists(
        st.sampled_from(
            [
                b"RETR",
                b"TOP",
                b"LIST",
                b"UIDL",
                b"DELE",
                b"PASS",
                b"USER",
                b"AUTH",
                b"1",
                b"0",
                b"-1",
                b"99999999999",
                b"x",
                b"",
                b"\x00",
                b"\xff",
                b"PLAIN",
                b"=",
                b"  ",
            ]
        ),
        max_size=5,
    )
)
def test_parser_on_command_like_noise(words: list[bytes]) -> None:
    with contextlib.suppress(proto.CommandError):
        proto.parse_command(b" ".join(words))
