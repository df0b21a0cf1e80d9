"""Property tests (hypothesis): the parser is total, its offsets are sane and what it renders
is always balanced, well-formed IMAP syntax, whatever the input."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.mime import ParsedMessage, parse_message

from .imap_reader import Item, read_imap

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MESSAGES = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Fragments that steer random input towards the parser's interesting paths.
FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--b\r\n",
    b"--b--\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/html; charset=x-unknown\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1*=%AC\r\n",
    b'From: "a\\" b" <x@y>, group: c@d;, (comment) e@f\r\n',
    b"To: ) (unclosed <x@y\r\n",
    b'Cc: "unterminated\r\n',
    b"Subject: =?utf-8?B?w6k=?= =?x?Q?=FF?=\r\n",
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n",
    b"References: <a@b> garbage <c@d\r\n",
    b" folded\r\n",
    b"\x00",
    b"\xff\xfe",
    b"<html><script>",
    b"=\r\n",
]


def check(message: ParsedMessage, raw: bytes) -> None:
    """The invariants every parse must satisfy."""
    assert message.size == len(raw)
    assert 0 <= message.header_end <= message.size
    assert message.parts and message.parts[0].section == ""
    sections = [part.section for part in message.parts]
    assert len(sections) == len(set(sections))
    previous_start = 0
    for part in message.parts:
        assert 0 <= part.header_start <= part.body_start <= part.end <= message.size
        assert part.header_start >= previous_start or part.section.endswith(".1")
        previous_start = part.header_start
    for data in (message.envelope, message.body_structure, message.body):
        assert isinstance(read_imap(data), list)
    envelope = read_imap(message.envelope)
    assert isinstance(envelope, list) and len(envelope) == 10
    check_body_grammar(read_imap(message.body_structure), extensible=True)
    check_body_grammar(read_imap(message.body), extensible=False)
    json.dumps(message.jmap_body_structure)
    assert len(message.preview) <= 256
    assert len(message.search_text) <= 2 * 1024 * 1024
    for text in (message.subject, message.preview, message.search_text):
        assert "\x00" not in text
    assert message.sent_at is None or message.sent_at.tzinfo is not None


def check_body_grammar(body: Item, *, extensible: bool) -> None:
    """RFC 9051 §9 ``body``: field counts of multipart, basic, text and message bodies."""
    assert isinstance(body, list) and body
    if isinstance(body[0], list):  # body-type-mpart: 1*body SP subtype [ext]
        children = [item for item in body if isinstance(item, list) and item]
        children = children[: next(i for i, item in enumerate(body) if isinstance(item, bytes))]
        for child in children:
            check_body_grammar(child, extensible=extensible)
        assert len(body) == len(children) + (5 if extensible else 1)
        return
    media_type, subtype = body[0], body[1]
    assert isinstance(media_type, bytes) and isinstance(subtype, bytes)
    basic = 7
    if media_type.lower() == b"message" and subtype.lower() in (b"rfc822", b"global"):
        envelope = body[7]
        assert isinstance(envelope, list) and len(envelope) == 10
        check_body_grammar(body[8], extensible=extensible)
        assert isinstance(body[9], int)
        basic += 3
    elif media_type.lower() == b"text":
        assert isinstance(body[7], int)
        basic += 1
    assert len(body) == basic + (4 if extensible else 0)


@PROPERTY_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(parse_message(raw), raw)


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=20)), max_size=60))
def test_arbitrary_mime_shaped_bytes(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    check(parse_message(raw), raw)


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(MESSAGES))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["truncate", "insert", "delete", "unboundary", "lf"]))
        position = draw(st.integers(min_value=0, max_value=len(raw)))
        if operation == "truncate":
            raw = raw[:position]
        elif operation == "insert":
            raw = raw[:position] + draw(st.binary(min_size=1, max_size=30)) + raw[position:]
        elif operation == "delete":
            raw = raw[:position] + raw[position + draw(st.integers(1, 200)) :]
        elif operation == "unboundary":
            found = raw.find(b"\n--", position)
            if found >= 0:
                raw = raw[: found + 1] + raw[found + 3 :]
        else:
            raw = raw.replace(b"\r\n", b"\n")
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus_message())
def test_mutated_corpus_messages(raw: bytes) -> None:
    check(parse_message(raw), raw)


@PROPERTY_SETTINGS
@given(st.sampled_from(MESSAGES), st.integers(min_value=0, max_value=100_000))
def test_every_truncation_of_a_corpus_message(raw: bytes, cut: int) -> None:
    truncated = raw[: cut % (len(raw) + 1)]
    check(parse_message(truncated), truncated)


def test_stray_closing_parenthesis_in_an_address_terminates() -> None:
    """Regression: a ")" outside a comment once made the address tokenizer loop forever."""
    message = parse_message(b"To: ) x@y (a\r\n\r\n")
    assert message.envelope.endswith(b' (("a" NIL ")x" "y")) NIL NIL NIL NIL)')
