"""FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE / VANISHED) and STORE
(RFC 9051 §6.4.6, RFC 7162 UNCHANGEDSINCE)."""

from __future__ import annotations

import pytest

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.commands import FetchAttribute as A
from hirondelle.imap.proto.sequence_set import STAR, SequenceSet

from .helpers import command, error


def fetch(line: bytes) -> c.Fetch:
    return command(line, c.Fetch)


def test_rfc9051_examples() -> None:
    """RFC 9051 §6.4.5 and §6.4.9 examples."""
    cmd = fetch(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n")
    assert cmd.sequence_set.ranges == ((2, 4),)
    assert cmd.items == (A.FLAGS, c.FetchBody(c.Section((), "HEADER.FIELDS", ("DATE", "FROM"))))
    cmd = fetch(b"A999 UID FETCH 4827313:4828442 FLAGS\r\n")
    assert cmd.uid and cmd.items == (A.FLAGS,)


def test_all_simple_items() -> None:
    cmd = fetch(
        b"a FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID MODSEQ "
        b"RFC822 RFC822.HEADER RFC822.TEXT)\r\n"
    )
    assert cmd.items == tuple(A)
    assert fetch(b"a fetch 1 (flags uid)\r\n").items == (A.FLAGS, A.UID)


@pytest.mark.parametrize(
    ("macro", "items"),
    [
        ("ALL", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE, A.ENVELOPE)),
        ("FAST", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE)),
        ("FULL", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE, A.ENVELOPE, A.BODY)),
    ],
)
def test_macros(macro: str, items: tuple[A, ...]) -> None:
    """RFC 9051 §6.4.5 macros."""
    cmd = fetch(b"a FETCH 1:* " + macro.lower().encode() + b"\r\n")
    assert cmd.macro == macro and cmd.items == items
    assert "Invalid fetch item" in error(b"a FETCH 1 (" + macro.encode() + b")\r\n").message


@pytest.mark.parametrize(
    ("item", "expected", "response_name"),
    [
        (b"BODY[]", c.FetchBody(c.Section()), "BODY[]"),
        (b"BODY.PEEK[]", c.FetchBody(c.Section(), peek=True), "BODY[]"),
        (b"BODY[HEADER]", c.FetchBody(c.Section((), "HEADER")), "BODY[HEADER]"),
        (b"BODY[TEXT]<0.2048>", c.FetchBody(c.Section((), "TEXT"), (0, 2048)), "BODY[TEXT]<0>"),
        (b"BODY[1]", c.FetchBody(c.Section((1,))), "BODY[1]"),
        (b"BODY[1.2.3]", c.FetchBody(c.Section((1, 2, 3))), "BODY[1.2.3]"),
        (b"BODY[4.2.MIME]", c.FetchBody(c.Section((4, 2), "MIME")), "BODY[4.2.MIME]"),
        (b"BODY[4.2.HEADER]", c.FetchBody(c.Section((4, 2), "HEADER")), "BODY[4.2.HEADER]"),
        (b"BODY[3.TEXT]", c.FetchBody(c.Section((3,), "TEXT")), "BODY[3.TEXT]"),
        (
            b'BODY.PEEK[HEADER.FIELDS.NOT (Received "X-Spam")]<10.20>',
            c.FetchBody(c.Section((), "HEADER.FIELDS.NOT", ("RECEIVED", "X-SPAM")), (10, 20), True),
            "BODY[HEADER.FIELDS.NOT (RECEIVED X-SPAM)]<10>",
        ),
        (b"BINARY[1]", c.FetchBinary((1,)), "BINARY[1]"),
        (b"BINARY.PEEK[1.2]<0.100>", c.FetchBinary((1, 2), (0, 100), True), "BINARY[1.2]<0>"),
        (b"BINARY[]", c.FetchBinary(()), "BINARY[]"),
        (b"BINARY.SIZE[2]", c.FetchBinarySize((2,)), "BINARY.SIZE[2]"),
    ],
)
def test_sections(item: bytes, expected: c.FetchItem, response_name: str) -> None:
    """RFC 9051 §6.4.5 section specs and partials; §7.5.2 response names."""
    cmd = fetch(b"a FETCH 1 " + item + b"\r\n")
    assert cmd.items == (expected,)
    assert not isinstance(expected, A)
    assert expected.response_name == response_name


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a FETCH 1 BODDY\r\n", "Error in IMAP command FETCH: Invalid fetch item 'BODDY'"),
        (b"a FETCH 1 (FLAGS BODDY)\r\n", "Error in IMAP command FETCH: Invalid fetch item 'BODDY'"),
        (b"a FETCH 1 BODY[MIME]\r\n", "Invalid section 'MIME'"),
        (b"a FETCH 1 BODY[0]\r\n", "Section part must not be zero"),
        (b"a FETCH 1 BODY[1.FOO]\r\n", "Invalid section 'FOO'"),
        (b"a FETCH 1 BODY[HEADER.FIELDS]\r\n", "Expected space before header list"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "Expected header field name"),
        (b"a FETCH 1 BODY[]<0.0>\r\n", "Partial length must not be zero"),
        (b"a FETCH 1 BODY[]<5>\r\n", "Expected '.' in partial range"),
        (b"a FETCH 1 BINARY\r\n", "Missing section after BINARY"),
        (b"a FETCH 1 BINARY[TEXT]\r\n", "Expected section part"),
        (b"a FETCH 1 FLAGS[]\r\n", "Invalid fetch item 'FLAGS'"),
        (b"a FETCH 1\r\n", "Missing argument: fetch items"),
        (b"a FETCH (FLAGS)\r\n", "Expected sequence set"),
        (b"a FETCH 1 ()\r\n", "Invalid fetch item"),
        (b"a FETCH 1:* (FLAGS) (FOO)\r\n", "Unknown or repeated FETCH modifier FOO"),
        (b"a FETCH 1:* (FLAGS) (VANISHED)\r\n", "VANISHED requires UID FETCH with CHANGEDSINCE"),
        (b"a UID FETCH 1:* (FLAGS) (VANISHED)\r\n", "VANISHED requires UID FETCH"),
    ],
)
def test_fetch_errors(line: bytes, message: str) -> None:
    err = error(line)
    assert message in err.message
    assert err.tag == "a" and err.command in ("FETCH", "UID FETCH")


def test_condstore_qresync_modifiers() -> None:
    """RFC 7162 §3.1.4.2 and §3.2.6 examples."""
    cmd = fetch(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n")
    assert cmd.uid and cmd.changed_since == 12345 and not cmd.vanished
    assert cmd.sequence_set.ranges == ((1, STAR),)
    cmd = fetch(b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert cmd.vanished and cmd.changed_since == 12345
    cmd = fetch(b"a FETCH 1:* (UID FLAGS MODSEQ) (CHANGEDSINCE 0)\r\n")
    assert cmd.changed_since == 0


def test_store() -> None:
    """RFC 9051 §6.4.6 example and every form."""
    cmd = command(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", c.Store)
    assert (cmd.mode, cmd.silent, cmd.flags) == (c.StoreMode.ADD, False, ("\\Deleted",))
    cmd = command(b"a STORE 1 -flags.silent \\seen $Forwarded\r\n", c.Store)
    assert (cmd.mode, cmd.silent, cmd.flags) == (c.StoreMode.REMOVE, True, ("\\Seen", "$Forwarded"))
    cmd = command(b"a UID STORE 1:* FLAGS ()\r\n", c.Store)
    assert (cmd.uid, cmd.mode, cmd.flags) == (True, c.StoreMode.REPLACE, ())
    cmd = command(
        b"a STORE 1 FLAGS.SILENT (\\Answered \\Flagged \\Deleted \\Seen \\Draft kw)\r\n", c.Store
    )
    assert cmd.flags == ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "kw")


def test_store_unchangedsince() -> None:
    """RFC 7162 §3.1.3 examples."""
    cmd = command(
        b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n", c.Store
    )
    assert cmd.unchanged_since == 12121230045 and cmd.silent
    assert cmd.sequence_set == SequenceSet(((6, 6), (4, 4), (8, 8)))
    cmd = command(b"a104 STORE 50 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)\r\n", c.Store)
    assert cmd.unchanged_since == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a STORE 1 +FLAGS (\\Recent)\r\n", "\\Recent flag cannot be set by the client"),
        (b"a STORE 1 +FLAGS (\\Unknown)\r\n", "Invalid system flag \\Unknown"),
        (b"a STORE 1 *FLAGS (x)\r\n", "Invalid STORE item"),
        (b"a STORE 1 +FLAGSX (x)\r\n", "Invalid STORE item"),
        (b"a STORE 1 +FLAGS\r\n", "Missing argument: flags"),
        (b"a STORE 1 +FLAGS (x\r\n", "Expected ')' to close the flag list"),
        (b"a STORE 1 +FLAGS (a%b)\r\n", "Expected ')' to close the flag list"),
        (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()\r\n", "Expected mod-sequence"),
        (b"a STORE 1 (FOO 1) FLAGS ()\r\n", "Unknown or repeated STORE modifier FOO"),
        (b"a STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS ()\r\n", "out of range"),
    ],
)
def test_store_errors(line: bytes, message: str) -> None:
    assert message in error(line).message


def test_search_keyword_accepts_recent_flag_syntax() -> None:
    """KEYWORD takes a flag-keyword; system flags are not storable there either."""
    assert command(b"a SEARCH KEYWORD $MDNSent\r\n", c.Search).criteria == c.SearchFlag("$MDNSent")
