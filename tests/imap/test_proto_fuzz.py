"""Property and fuzz tests: arbitrary input never raises, never hangs, keeps the buffer
bounded, and gives the same events however it is split."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto import mailbox_name
from hirondelle.imap.proto.parser import CommandParser, Event, LiteralChunk

MAX_LINE = 200
THRESHOLD = 64

VALID = [
    b"a1 CAPABILITY\r\n",
    b"a2 LOGIN {5}\r\nsmith {6+}\r\nsesame\r\n",
    b"a3 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
    b"a4 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
    b'a5 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Sent/%") RETURN (STATUS (MESSAGES))\r\n',
    b'a6 APPEND saved (\\Seen) " 7-Feb-1994 22:43:04 -0800" {11}\r\n'
    b"hello world ~{3+}\r\na\x00b\r\n",
    b'a7 UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM "x" SEEN) NOT 1:5 '
    b"TEXT {2+}\r\n\xc3\xa9\r\n",
    b"a8 UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>) "
    b"(CHANGEDSINCE 1 VANISHED)\r\n",
    b"a9 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted $Junk)\r\n",
    b"b1 SORT (REVERSE DATE SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
    b'b2 THREAD REFERENCES US-ASCII TEXT "gewp"\r\n',
    b'b3 ID ("name" "sodr" "version" NIL)\r\n',
    b'b4 SETQUOTA "#user/alice" (STORAGE 510)\r\n',
    b"b5 IDLE\r\nDONE\r\n",
    b"b6 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n",
    b"b7 APPEND INBOX {100+}\r\n" + b"x" * 100 + b"\r\n",
    b"b8 UID MOVE 42:69 &U,BTFw-\r\n",
]


def run(chunks: list[bytes], **options: int) -> list[Event]:
    """Feed chunks like a server would (resuming after pausing commands), checking
    the buffer bound after each feed."""
    parser = CommandParser(max_line=MAX_LINE, literal_sink_threshold=THRESHOLD, **options)
    events: list[Event] = []
    for chunk in [*chunks, b""]:
        events += parser.feed(chunk)
        while parser.paused:
            parser.resume()
            events += parser.feed(b"")
        assert parser.buffered <= max(MAX_LINE + 2, THRESHOLD), parser.buffered
    return events


def normalised(events: list[Event]) -> list[object]:
    """Events with consecutive literal chunks joined (their boundaries follow the input)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, LiteralChunk) and out and isinstance(out[-1], LiteralChunk):
            out[-1] = LiteralChunk(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
def test_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    """Never an exception, a bounded buffer, and split-independent events."""
    whole = run([data])
    assert normalised(run(split(data, cuts))) == normalised(whole)


alphabet = st.sampled_from(list(b' ()[]{}<>"\\*%$~+-.:,0123456789\r\nAaBbXx\x00\xff'))


@settings(max_examples=300, deadline=None)
@given(st.lists(alphabet, max_size=300).map(bytes), st.lists(st.integers(0, 300), max_size=5))
def test_imap_alphabet(data: bytes, cuts: list[int]) -> None:
    """Bytes drawn from IMAP's special characters hit the interesting paths."""
    whole = run([data])
    assert normalised(run(split(data, cuts))) == normalised(whole)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if action == "delete" and position < len(data):
            del data[position : position + draw(st.integers(1, 8))]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 20))]
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(mutated(), st.lists(st.integers(0, 800), max_size=6))
def test_mutated_valid_commands(data: bytes, cuts: list[int]) -> None:
    whole = run([data])
    assert normalised(run(split(data, cuts))) == normalised(whole)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(VALID), min_size=1, max_size=6))
def test_valid_commands_all_parse(commands: list[bytes]) -> None:
    events = run([b"".join(commands)])
    parsed = [e for e in events if isinstance(e, c.Command)]
    assert len(parsed) == len(commands)


@given(st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30))
def test_mailbox_names_through_the_parser(name: str) -> None:
    encoded = mailbox_name.encode(name).encode("ascii")
    quoted = b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    (select,) = CommandParser().feed(b"a SELECT " + quoted + b"\r\n")
    assert isinstance(select, c.Select)
    assert select.mailbox == mailbox_name.normalize_inbox(name)
    raw = name.encode("utf-8")
    (select,) = list(
        CommandParser(utf8_names=True).feed(b"a SELECT {%d+}\r\n%s\r\n" % (len(raw), raw))
    )
    assert isinstance(select, c.Select) and select.mailbox == mailbox_name.normalize_inbox(name)
