"""Responses to bytes (RFC 9051 §7 and the extensions), mostly the RFCs' examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hirondelle.imap.proto.response import (
    RESPONSE_CODES,
    LiteralRef,
    ResponseCode,
    ResponseEncoder,
    ThreadNode,
    render,
)
from hirondelle.imap.proto.sequence_set import SequenceSet

enc = ResponseEncoder()


def test_status_responses() -> None:
    """RFC 9051 §7.1 examples."""
    assert enc.ok(None, "IMAP4rev2 server ready") == b"* OK IMAP4rev2 server ready\r\n"
    assert (
        enc.ok("a001", "SELECT completed", ResponseCode.simple("READ-WRITE"))
        == b"a001 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert (
        enc.no("A223", "COPY failed: disk is full", ResponseCode("OVERQUOTA"))
        == b"A223 NO [OVERQUOTA] COPY failed: disk is full\r\n"
    )
    assert enc.bad(None, "Command line too long") == b"* BAD Command line too long\r\n"
    assert enc.bye("Autologout; idle for too long") == b"* BYE Autologout; idle for too long\r\n"
    assert enc.status(None, "PREAUTH", "Welcome") == b"* PREAUTH Welcome\r\n"
    assert enc.ok("a", "bad\r\ntext") == b"a OK bad  text\r\n"
    with pytest.raises(ValueError):
        enc.status("a", "MAYBE", "x")


def test_response_codes() -> None:
    """RFC 9051 §7.1, RFC 4315 §3, RFC 7162 §3.1.3."""
    assert ResponseCode.number("UIDNEXT", 4392).encode() == b"[UIDNEXT 4392]"
    assert ResponseCode.number("UIDVALIDITY", 3857529045).encode() == b"[UIDVALIDITY 3857529045]"
    assert (
        ResponseCode.number("HIGHESTMODSEQ", 715194045007).encode()
        == b"[HIGHESTMODSEQ 715194045007]"
    )
    assert (
        ResponseCode.permanent_flags(["\\Deleted", "\\Seen"]).encode()
        == b"[PERMANENTFLAGS (\\Deleted \\Seen \\*)]"
    )
    assert ResponseCode.appenduid(38505, SequenceSet.of(3955)).encode() == b"[APPENDUID 38505 3955]"
    assert (
        ResponseCode.copyuid(
            38505, SequenceSet.parse("304,319:320"), SequenceSet.parse("3956:3958")
        ).encode()
        == b"[COPYUID 38505 304,319:320 3956:3958]"
    )
    assert ResponseCode.modified(SequenceSet.parse("7,9")).encode() == b"[MODIFIED 7,9]"
    assert ResponseCode.capability(["IMAP4rev2", "IDLE"]).encode() == b"[CAPABILITY IMAP4rev2 IDLE]"
    assert (
        ResponseCode.badcharset(["US-ASCII", "UTF-8"]).encode() == b"[BADCHARSET (US-ASCII UTF-8)]"
    )
    for name in [
        "ALERT",
        "ALREADYEXISTS",
        "AUTHENTICATIONFAILED",
        "AUTHORIZATIONFAILED",
        "CANNOT",
        "CLIENTBUG",
        "CLOSED",
        "CONTACTADMIN",
        "CORRUPTION",
        "EXPIRED",
        "EXPUNGEISSUED",
        "HASCHILDREN",
        "INUSE",
        "LIMIT",
        "NOMODSEQ",
        "NONEXISTENT",
        "NOPERM",
        "OVERQUOTA",
        "PARSE",
        "PRIVACYREQUIRED",
        "READ-ONLY",
        "SERVERBUG",
        "TOOBIG",
        "TRYCREATE",
        "UIDNOTSTICKY",
        "UNAVAILABLE",
        "UNKNOWN-CTE",
        "NOTSAVED",
    ]:
        assert name in RESPONSE_CODES
        assert enc.no("t", "x", ResponseCode.simple(name)) == b"t NO [%s] x\r\n" % name.encode()


def test_continuations() -> None:
    """RFC 9051 §7.5; §6.2.2 challenges."""
    assert enc.continuation() == b"+ Ready\r\n"
    assert enc.continuation("idling") == b"+ idling\r\n"
    assert enc.challenge(b"") == b"+ \r\n"
    assert enc.challenge(b"\x00ab") == b"+ AGFi\r\n"


def test_data_responses() -> None:
    """RFC 9051 §7.2-§7.4 examples."""
    assert (
        enc.capability(["IMAP4rev2", "STARTTLS", "AUTH=GSSAPI", "LOGINDISABLED"])
        == b"* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n"
    )
    assert enc.enabled(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"
    assert enc.enabled([]) == b"* ENABLED\r\n"
    assert (
        enc.flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"])
        == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    )
    assert enc.exists(23) == b"* 23 EXISTS\r\n"
    assert enc.recent(5) == b"* 5 RECENT\r\n"
    assert enc.expunge(22) == b"* 22 EXPUNGE\r\n"
    assert (
        enc.status_data("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)])
        == b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    )
    assert enc.search([2, 3, 6]) == b"* SEARCH 2 3 6\r\n"
    assert enc.search([]) == b"* SEARCH\r\n"
    assert enc.search([2, 5], modseq=917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert enc.sort([2, 84, 882]) == b"* SORT 2 84 882\r\n"


def test_list() -> None:
    """RFC 9051 §7.3.1; RFC 5258 §3.5 CHILDINFO; RFC 9051 OLDNAME; RFC 3501 LSUB."""
    assert enc.list(["\\Noselect"], "/", "~/Mail/foo") == b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n'
    assert enc.list([], ".", "INBOX") == b'* LIST () "." INBOX\r\n'
    assert enc.list(["\\Noselect"], None, "") == b'* LIST (\\Noselect) NIL ""\r\n'
    assert (
        enc.list([], "/", "Foo", childinfo=["SUBSCRIBED"])
        == b'* LIST () "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert enc.list([], "/", "Bar", oldname="Foo") == b'* LIST () "/" Bar ("OLDNAME" (Foo))\r\n'
    assert enc.list([], "\\", "a b") == b'* LIST () "\\\\" "a b"\r\n'
    assert enc.lsub([], "/", "x") == b'* LSUB () "/" x\r\n'


def test_mailbox_names_in_responses() -> None:
    """RFC 3501 §5.1.3 modified UTF-7; UTF-8 once enabled (RFC 6855 §3)."""
    assert enc.list([], "/", "台北") == b'* LIST () "/" &U,BTFw-\r\n'
    assert enc.list([], "/", "a%b") == b'* LIST () "/" "a%b"\r\n'
    utf8 = ResponseEncoder(utf8=True)
    assert utf8.list([], "/", "台北") == b'* LIST () "/" "\xe5\x8f\xb0\xe5\x8c\x97"\r\n'
    assert utf8.mailbox("NIL") == b'"NIL"'
    assert enc.mailbox("inbox") == b"INBOX"


def test_strings() -> None:
    """RFC 9051 §4.3: quoted when possible, else a literal."""
    assert enc.string("abc") == b'"abc"'
    assert enc.string('a"b\\c') == b'"a\\"b\\\\c"'
    assert enc.string("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert enc.string("café") == b"{5}\r\ncaf\xc3\xa9"
    assert ResponseEncoder(utf8=True).string("café") == b'"caf\xc3\xa9"'
    assert enc.string("x" * 2000).startswith(b"{2000}\r\n")
    assert enc.nstring(None) == b"NIL"
    assert enc.astring("NIL") == b'"NIL"'
    assert enc.astring("atom") == b"atom"
    with pytest.raises(ValueError):
        enc.string(b"a\x00b")


def test_esearch() -> None:
    """RFC 4731 §3.1 / RFC 9051 §7.3.4 examples."""
    assert enc.esearch("A282", minimum=2, count=3) == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    assert (
        enc.esearch("A283", numbers=SequenceSet.parse("2,10:11"))
        == b'* ESEARCH (TAG "A283") ALL 2,10:11\r\n'
    )
    assert enc.esearch("A284", count=0) == b'* ESEARCH (TAG "A284") COUNT 0\r\n'
    assert (
        enc.esearch("A285", uid=True, minimum=7, maximum=3800, modseq=12)
        == b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800 MODSEQ 12\r\n'
    )


def test_vanished() -> None:
    """RFC 7162 §3.2.10 examples."""
    assert (
        enc.vanished(SequenceSet.parse("41,43:116,118,120:211,214:540"), earlier=True)
        == b"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"
    )
    assert enc.vanished(SequenceSet.parse("405,407,410,425")) == b"* VANISHED 405,407,410,425\r\n"


def test_namespace_quota_id() -> None:
    """RFC 9051 §7.3.2; RFC 9208 §5; RFC 2971 §3.2 examples."""
    assert enc.namespace([("", "/")], None, None) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert (
        enc.namespace([("", "/")], [("~", "/")], [("#shared/", "/"), ("#news.", ".")])
        == b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#news." "."))\r\n'
    )
    assert enc.quota("", [("STORAGE", 10, 512)]) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    assert enc.quotaroot("INBOX", [""]) == b'* QUOTAROOT INBOX ""\r\n'
    assert enc.quotaroot("x", []) == b"* QUOTAROOT x\r\n"
    assert (
        enc.id([("name", "Cyrus"), ("version", "1.5"), ("os", None)])
        == b'* ID ("name" "Cyrus" "version" "1.5" "os" NIL)\r\n'
    )
    assert enc.id(None) == b"* ID NIL\r\n"


def test_thread() -> None:
    """RFC 5256 §4 examples."""
    tree = [
        ThreadNode(2),
        ThreadNode(
            3,
            (
                ThreadNode(
                    6,
                    (
                        ThreadNode(4, (ThreadNode(23),)),
                        ThreadNode(44, (ThreadNode(7, (ThreadNode(96),)),)),
                    ),
                ),
            ),
        ),
    ]
    assert enc.thread(tree) == b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    dummy = ThreadNode(None, (ThreadNode(3), ThreadNode(5)))
    assert enc.thread([dummy]) == b"* THREAD ((3)(5))\r\n"
    assert enc.thread([]) == b"* THREAD\r\n"


def test_fetch_in_memory() -> None:
    """RFC 9051 §7.5.2 example."""
    moment = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    response = (
        enc.fetch(12)
        .flags(["\\Seen"])
        .internal_date(moment)
        .size(4286)
        .raw(
            "ENVELOPE",
            b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" NIL NIL NIL NIL NIL NIL NIL NIL NIL)',
        )
        .uid(7)
        .modseq(624140003)
        .literal("BODY[HEADER]", b"Subject: hi\r\n\r\n")
        .literal("BODY[1]", None)
        .literal("BINARY[1]", b"a\x00b", binary=True)
        .number("BINARY.SIZE[1]", 3)
    )
    assert response.to_bytes() == (
        b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b'RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" NIL NIL NIL NIL '
        b"NIL NIL NIL NIL NIL) UID 7 MODSEQ (624140003) BODY[HEADER] {15}\r\nSubject: hi\r\n\r\n "
        b"BODY[1] NIL BINARY[1] ~{3}\r\na\x00b BINARY.SIZE[1] 3)\r\n"
    )
    assert enc.fetch(1).internal_date(datetime(2024, 1, 5, tzinfo=UTC)).to_bytes() == (
        b'* 1 FETCH (INTERNALDATE " 5-Jan-2024 00:00:00 +0000")\r\n'
    )


def test_fetch_with_streamed_bodies() -> None:
    """Bodies announced with their stored size, content streamed later."""
    blobs = {"blob-1": b"x" * 5000, "blob-2": b"\x00\x01"}
    response = (
        enc.fetch(3)
        .uid(9)
        .stream("BODY[]", 5000, "blob-1")
        .stream("BINARY[2]", 2, "blob-2", binary=True)
        .stream("BODY[TEXT]", 0, "empty")
        .flags([])
    )
    pieces = response.pieces()
    assert pieces == [
        b"* 3 FETCH (UID 9 BODY[] {5000}\r\n",
        LiteralRef(5000, "blob-1"),
        b" BINARY[2] ~{2}\r\n",
        LiteralRef(2, "blob-2", binary=True),
        b" BODY[TEXT] {0}\r\n FLAGS ())\r\n",
    ]
    data = render(pieces, lambda ref: blobs[str(ref.handle)])
    assert data.startswith(b"* 3 FETCH (UID 9 BODY[] {5000}\r\nxxx")
    assert data.endswith(b"\x00\x01 BODY[TEXT] {0}\r\n FLAGS ())\r\n")
    with pytest.raises(ValueError):
        response.to_bytes()
    with pytest.raises(ValueError):
        render(pieces, lambda ref: b"short")


def test_refusals_of_parser_errors() -> None:
    from hirondelle.imap.proto.parser import CommandParser

    def answer(data: bytes) -> bytes:
        (event,) = CommandParser(max_line=100).feed(data)
        assert not hasattr(event, "name")
        return enc.refusal(event)  # type: ignore[arg-type]

    assert answer(b"a FETCH 1 BODDY\r\n") == (
        b"a BAD Error in IMAP command FETCH: Invalid fetch item 'BODDY'\r\n"
    )
    assert answer(b"a SEARCH CHARSET X TEXT x\r\n") == (
        b"a NO [BADCHARSET (US-ASCII UTF-8)] "
        b"Error in IMAP command SEARCH: Unsupported charset X\r\n"
    )
    assert answer(b"a APPEND INBOX {99999999999}\r\n") == b"a NO [TOOBIG] Literal too large\r\n"
    assert answer(b"a LOGIN {101}\r\n") == b"a BAD [TOOBIG] Literal too large\r\n"
    assert answer(b"(" * 200) == b"* BAD [TOOBIG] Line too long\r\n"
