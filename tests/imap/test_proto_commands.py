"""Commands of RFC 9051 / RFC 3501 and extensions, mostly the RFCs' own examples."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.sequence_set import STAR, SequenceSet

from .helpers import command, error


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"abcd CAPABILITY\r\n", c.Capability),
        (b"a002 NOOP\r\n", c.Noop),
        (b"A023 LOGOUT\r\n", c.Logout),
        (b"a002 STARTTLS\r\n", c.StartTLS),
        (b"A002 NAMESPACE\r\n", c.Namespace),
        (b"FXXZ CHECK\r\n", c.Check),
        (b"A341 CLOSE\r\n", c.Close),
        (b"A342 UNSELECT\r\n", c.Unselect),
        (b"A202 EXPUNGE\r\n", c.Expunge),
        (b"A002 IDLE\r\n", c.Idle),
        (b"a002 noop\r\n", c.Noop),
    ],
)
def test_commands_without_arguments(line: bytes, kind: type[c.Command]) -> None:
    """RFC 9051 §6.1.1-§6.4.3 examples."""
    cmd = command(line, kind)
    assert cmd.tag == line.split(b" ")[0].decode()


def test_argumentless_command_with_arguments_is_bad() -> None:
    err = error(b"a NOOP now\r\n")
    assert err.tag == "a"
    assert (
        err.message == "Error in IMAP command NOOP: Unexpected characters at end of command: ' now'"
    )


def test_login() -> None:
    """RFC 9051 §6.2.3 example."""
    cmd = command(b"a001 LOGIN SMITH SESAME\r\n", c.Login)
    assert (cmd.username, cmd.password) == ("SMITH", "SESAME")
    cmd = command(b'a LOGIN "fred smith" "p\\"w\\\\d"\r\n', c.Login)
    assert (cmd.username, cmd.password) == ("fred smith", 'p"w\\d')
    cmd = command(b"a LOGIN {4+}\r\nj\xc3\xa9r {3+}\r\nx y\r\n", c.Login)
    assert (cmd.username, cmd.password) == ("jér", "x y")
    assert "SESAME" not in repr(command(b"a001 LOGIN SMITH SESAME\r\n", c.Login))


def test_login_missing_password() -> None:
    err = error(b"a LOGIN smith\r\n")
    assert err.message == "Error in IMAP command LOGIN: Missing argument: password"


def test_authenticate() -> None:
    """RFC 9051 §6.2.2 and RFC 4959 §3 (SASL-IR) examples."""
    cmd = command(b"A001 AUTHENTICATE GSSAPI\r\n", c.Authenticate)
    assert cmd.mechanism == "GSSAPI" and cmd.initial_response is None
    cmd = command(b"a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n", c.Authenticate)
    assert cmd.initial_response == b"test\x00test\x00test"
    cmd = command(b"a authenticate plain =\r\n", c.Authenticate)
    assert cmd.mechanism == "PLAIN" and cmd.initial_response == b""
    assert "Invalid base64" in error(b"a AUTHENTICATE PLAIN dGVzd\r\n").message


def test_enable() -> None:
    """RFC 5161 §3.1 example; RFC 9051 §6.3.1."""
    cmd = command(b"t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n", c.Enable)
    assert cmd.capabilities == ("CONDSTORE", "X-GOOD-IDEA")
    assert command(b"t ENABLE utf8=accept IMAP4rev2\r\n", c.Enable).capabilities == (
        "UTF8=ACCEPT",
        "IMAP4REV2",
    )
    assert error(b"t ENABLE\r\n").tag == "t"


def test_select_examine() -> None:
    """RFC 9051 §6.3.2/§6.3.3 examples; INBOX is case-insensitive (§5.1)."""
    cmd = command(b"A142 SELECT INBOX\r\n", c.Select)
    assert cmd.mailbox == "INBOX" and not cmd.read_only and cmd.qresync is None
    assert command(b"a SELECT inbox\r\n", c.Select).mailbox == "INBOX"
    assert command(b'a SELECT "InBoX"\r\n', c.Select).mailbox == "INBOX"
    cmd = command(b"A932 EXAMINE blurdybloop\r\n", c.Examine)
    assert cmd.read_only and cmd.name == "EXAMINE"


def test_select_condstore() -> None:
    """RFC 7162 §3.1.8 example."""
    assert command(b"A142 SELECT INBOX (CONDSTORE)\r\n", c.Select).condstore


def test_select_qresync() -> None:
    """RFC 7162 §3.2.5.2 examples."""
    cmd = command(
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        c.Select,
    )
    assert cmd.qresync == c.QResync(
        67890007, 20050715194045000, SequenceSet(((41, 41), (43, 211), (214, 541)))
    )
    cmd = command(
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,"
        b"9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,"
        b"29994,29997)))\r\n",
        c.Select,
    )
    assert cmd.qresync is not None and cmd.qresync.sequence_match is not None
    sequences, uids = cmd.qresync.sequence_match
    assert sequences.ranges[-1] == (9990, 9999)
    assert uids.ranges[0] == (15000, 15000)
    cmd = command(b"a SELECT INBOX (QRESYNC (1 2))\r\n", c.Select)
    assert cmd.qresync == c.QResync(1, 2)
    cmd = command(b"a EXAMINE x (CONDSTORE QRESYNC (1 2 (1:2 5:6)))\r\n", c.Examine)
    assert cmd.condstore and cmd.qresync is not None and cmd.qresync.known_uids is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a SELECT INBOX (QRESYNC (0 2))\r\n", "Uidvalidity must not be zero"),
        (b"a SELECT INBOX (QRESYNC (1 0))\r\n", "Mod-sequence must not be zero"),
        (b"a SELECT INBOX (QRESYNC (1 2 1:*))\r\n", "'*' is not allowed in known UIDs"),
        (b"a SELECT INBOX (FOO)\r\n", "Unknown or repeated SELECT parameter FOO"),
        (b"a SELECT INBOX (CONDSTORE CONDSTORE)\r\n", "Unknown or repeated SELECT"),
    ],
)
def test_select_bad_parameters(line: bytes, message: str) -> None:
    assert message.lower() in error(line).message.lower()


def test_create_delete_rename_subscribe() -> None:
    """RFC 9051 §6.3.4-§6.3.8 examples."""
    assert command(b"A003 CREATE owatagusiam/\r\n", c.Create).mailbox == "owatagusiam/"
    assert command(b"A682 DELETE blurdybloop\r\n", c.Delete).mailbox == "blurdybloop"
    cmd = command(b"A683 RENAME blurdybloop sarasoop\r\n", c.Rename)
    assert (cmd.mailbox, cmd.new_name) == ("blurdybloop", "sarasoop")
    cmd = command(b"A002 SUBSCRIBE #news.comp.mail.mime\r\n", c.Subscribe)
    assert cmd.mailbox == "#news.comp.mail.mime"
    assert command(b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", c.Unsubscribe).mailbox == (
        "#news.comp.mail.mime"
    )


def test_create_special_use() -> None:
    """RFC 6154 §5.2 example."""
    cmd = command(b"t1 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n", c.Create)
    assert cmd.special_use == ("\\Drafts", "\\Sent")
    assert command(b"t CREATE x (use (\\junk))\r\n", c.Create).special_use == ("\\Junk",)
    assert "Unknown CREATE parameter" in error(b"t CREATE x (FOO (\\Junk))\r\n").message


def test_mailbox_names_modified_utf7() -> None:
    """RFC 3501 §5.1.3 example; UTF-8 once enabled (RFC 6855 §3)."""
    cmd = command(b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n", c.Create)
    assert cmd.mailbox == "~peter/mail/台北/日本語"
    assert "not valid modified UTF-7" in error(b"a CREATE &Jjo\r\n").message
    assert "not valid modified UTF-7" in error(b'a CREATE "caf\xc3\xa9"\r\n').message
    cmd = command(b'a CREATE "caf\xc3\xa9"\r\n', c.Create, utf8_names=True)
    assert cmd.mailbox == "café"
    cmd = command(b"a CREATE &U,BTFw-\r\n", c.Create, utf8_names=True)
    assert cmd.mailbox == "&U,BTFw-"


def test_list_basic() -> None:
    """RFC 9051 §6.3.9 examples."""
    cmd = command(b'A101 LIST "" ""\r\n', c.List)
    assert (cmd.reference, cmd.patterns, cmd.extended) == ("", ("",), False)
    cmd = command(b'A102 LIST #news.comp.mail.misc ""\r\n', c.List)
    assert cmd.reference == "#news.comp.mail.misc"
    cmd = command(b"A202 LIST ~/Mail/ %\r\n", c.List)
    assert cmd.patterns == ("%",)
    cmd = command(b'a LIST "" *\r\n', c.List)
    assert cmd.patterns == ("*",)
    cmd = command(b"a LIST &U,BTFw- &U,BTFw-/%\r\n", c.List)
    assert (cmd.reference, cmd.patterns) == ("台北", ("台北/%",))


def test_list_extended() -> None:
    """RFC 5258 §5 / RFC 9051 §6.3.9 examples; RFC 6154 §5.1; RFC 5819 §2."""
    cmd = command(b'A02 LIST (SUBSCRIBED) "" "*"\r\n', c.List)
    assert cmd.selection == {"SUBSCRIBED"} and cmd.extended
    cmd = command(b'A03 LIST () "" "%" RETURN (CHILDREN)\r\n', c.List)
    assert cmd.selection == frozenset() and cmd.return_options == {"CHILDREN"}
    cmd = command(b'A05 LIST (REMOTE SUBSCRIBED) "" "*"\r\n', c.List)
    assert cmd.selection == {"REMOTE", "SUBSCRIBED"}
    cmd = command(b'A06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n', c.List)
    assert cmd.selection == {"SUBSCRIBED", "RECURSIVEMATCH"}
    cmd = command(b'A07 LIST "" ("INBOX" "Drafts" "Sent/%")\r\n', c.List)
    assert cmd.patterns == ("INBOX", "Drafts", "Sent/%") and cmd.extended
    cmd = command(b't1 LIST (SPECIAL-USE) "" "*"\r\n', c.List)
    assert cmd.selection == {"SPECIAL-USE"}
    cmd = command(b't1 LIST "" "%" RETURN (SPECIAL-USE SUBSCRIBED)\r\n', c.List)
    assert cmd.return_options == {"SPECIAL-USE", "SUBSCRIBED"}
    cmd = command(b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n', c.List)
    assert cmd.status == ("MESSAGES", "UNSEEN")
    cmd = command(
        b'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))\r\n', c.List
    )
    assert cmd.status == ("MESSAGES",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'a LIST (RECURSIVEMATCH) "" *\r\n', "RECURSIVEMATCH must be used"),
        (b'a LIST (FOO) "" *\r\n', "Unknown LIST selection option FOO"),
        (b'a LIST "" * RETURN (FOO)\r\n', "Unknown LIST return option FOO"),
        (b'a LIST "" * FOO (CHILDREN)\r\n', "Expected RETURN"),
        (b'a LIST "" ()\r\n', "Expected mailbox pattern"),
        (b'a LIST ""\r\n', "Missing argument: mailbox pattern"),
    ],
)
def test_list_errors(line: bytes, message: str) -> None:
    assert message in error(line).message


def test_lsub() -> None:
    """RFC 3501 §6.3.9 example."""
    cmd = command(b'A002 LSUB "#news." "comp.mail.*"\r\n', c.Lsub)
    assert (cmd.reference, cmd.pattern) == ("#news.", "comp.mail.*")


def test_status() -> None:
    """RFC 9051 §6.3.11 example; RFC 7162 HIGHESTMODSEQ; RFC 8438 SIZE; RFC 7889."""
    cmd = command(b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", c.Status)
    assert cmd.items == ("UIDNEXT", "MESSAGES")
    cmd = command(
        b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT "
        b"HIGHESTMODSEQ APPENDLIMIT)\r\n",
        c.Status,
    )
    assert len(cmd.items) == 9
    assert "Invalid status item 'FOO'" in error(b"a STATUS INBOX (FOO)\r\n").message
    assert error(b"a STATUS INBOX ()\r\n").tag == "a"


MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


def test_append() -> None:
    """RFC 9051 §6.3.12 example."""
    data = b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n"
    cmd = command(data, c.Append)
    assert cmd.mailbox == "saved-messages"
    (message,) = cmd.messages
    assert message.flags == ("\\Seen",)
    assert message.content == MESSAGE and message.size == len(MESSAGE)
    assert message.internal_date is None and not message.binary


def test_append_date_time() -> None:
    """RFC 9051 §9 date-time (date-day-fixed with a leading space)."""
    data = b'a APPEND INBOX () " 7-Feb-1994 22:43:04 -0800" {3+}\r\nabc\r\n'
    (message,) = command(data, c.Append).messages
    assert message.flags == ()
    assert message.internal_date == datetime(
        1994, 2, 7, 22, 43, 4, tzinfo=timezone(-timedelta(hours=8))
    )
    data = b'a APPEND INBOX "17-Jul-1996 02:44:25 +0000" {1+}\r\nx\r\n'
    (message,) = command(data, c.Append).messages
    assert message.internal_date == datetime(1996, 7, 17, 2, 44, 25, tzinfo=UTC)
    assert (
        "Invalid date-time"
        in error(b'a APPEND INBOX "32-Jul-1996 02:44:25 +0000" {1+}\r\nx\r\n').message
    )


def test_multiappend() -> None:
    """RFC 3502 §6.3.11 example: two messages in one APPEND."""
    data = (
        b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(MESSAGE)
        + MESSAGE
        + b' (\\Seen) " 7-Feb-1994 22:43:04 -0800" {5}\r\nhello\r\n'
    )
    cmd = command(data, c.Append)
    assert [m.content for m in cmd.messages] == [MESSAGE, b"hello"]
    assert cmd.messages[1].internal_date is not None


def test_append_binary_and_utf8() -> None:
    """RFC 3516 §4.4 literal8; RFC 6855 §4 UTF8 (~{n})."""
    (message,) = command(b"a APPEND Drafts ~{3+}\r\na\x00b\r\n", c.Append).messages
    assert message.binary and message.content == b"a\x00b"
    (message,) = command(
        b"a APPEND Drafts (\\Draft) UTF8 (~{5+}\r\nh\xc3\xa9y!)\r\n", c.Append
    ).messages
    assert message.utf8 and message.binary and message.content == b"h\xc3\xa9y!"
    assert (
        "UTF8 APPEND data must be a literal8" in error(b"a APPEND D UTF8 ({1+}\r\nx)\r\n").message
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a APPEND INBOX (\\Recent) {1+}\r\nx\r\n", "\\Recent flag cannot be set"),
        (b"a APPEND INBOX (\\Foo) {1+}\r\nx\r\n", "Invalid system flag \\Foo"),
        (b"a APPEND INBOX {1+}\r\nx extra\r\n", "Expected a message literal"),
        (b"a APPEND INBOX\r\n", "Missing argument: message"),
        (b"a APPEND INBOX hello\r\n", "Expected a message literal"),
        (b"a APPEND INBOX {1+}\r\nx\x00\r\n", "Expected space before message"),
    ],
)
def test_append_errors(data: bytes, message: str) -> None:
    assert message in error(data).message


def test_uid_expunge() -> None:
    """RFC 9051 §6.4.9 example."""
    cmd = command(b"A003 UID EXPUNGE 3000:3002\r\n", c.Expunge)
    assert cmd.uid and cmd.uids == SequenceSet(((3000, 3002),))
    assert not command(b"a EXPUNGE\r\n", c.Expunge).uid


def test_copy_move() -> None:
    """RFC 9051 §6.4.7 / §6.4.8 examples; RFC 6851 UID MOVE."""
    cmd = command(b"A003 COPY 2:4 MEETING\r\n", c.Copy)
    assert cmd.sequence_set.ranges == ((2, 4),) and cmd.mailbox == "MEETING" and not cmd.uid
    cmd = command(b"a UID MOVE 42:69 foo\r\n", c.Move)
    assert cmd.uid and cmd.mailbox == "foo"
    cmd = command(b"a MOVE $ Trash\r\n", c.Move)
    assert cmd.sequence_set.saved


def test_quota() -> None:
    """RFC 9208 §4.2-§4.4 examples."""
    assert command(b'G0001 GETQUOTA "!partition/sda4"\r\n', c.GetQuota).root == "!partition/sda4"
    assert command(b"G0002 GETQUOTAROOT INBOX\r\n", c.GetQuotaRoot).mailbox == "INBOX"
    cmd = command(b'S0001 SETQUOTA "#user/alice" (STORAGE 510)\r\n', c.SetQuota)
    assert (cmd.root, cmd.limits) == ("#user/alice", (("STORAGE", 510),))
    cmd = command(b'S SETQUOTA "" (storage 1 MESSAGE 2)\r\n', c.SetQuota)
    assert cmd.limits == (("STORAGE", 1), ("MESSAGE", 2))
    assert command(b'S SETQUOTA "" ()\r\n', c.SetQuota).limits == ()


def test_id() -> None:
    """RFC 2971 §3.1 examples."""
    cmd = command(
        b'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")\r\n',
        c.Id,
    )
    assert cmd.parameters == (
        ("name", "sodr"),
        ("version", "19.34"),
        ("vendor", "Pink Floyd Music Limited"),
    )
    assert command(b"a042 ID NIL\r\n", c.Id).parameters is None
    assert command(b'a ID ("os" NIL)\r\n', c.Id).parameters == (("os", None),)


def test_compress() -> None:
    """RFC 4978 §3 example."""
    assert command(b"a COMPRESS DEFLATE\r\n", c.Compress).mechanism == "DEFLATE"


def test_dates_in_search() -> None:
    """RFC 9051 §9 date = date-text / DQUOTE date-text DQUOTE."""
    cmd = command(b'a SEARCH SINCE "1-Feb-1994" BEFORE 29-feb-2000\r\n', c.Search)
    assert isinstance(cmd.criteria, c.SearchAnd)
    assert cmd.criteria.keys == (
        c.SearchDate("SINCE", date(1994, 2, 1)),
        c.SearchDate("BEFORE", date(2000, 2, 29)),
    )
    assert "Invalid date" in error(b"a SEARCH SINCE 29-Feb-1999\r\n").message
    assert "Invalid month" in error(b"a SEARCH SINCE 1-Foo-1999\r\n").message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a FOO\r\n", "Unknown command FOO"),
        (b"a UID FOO 1\r\n", "Unknown command UID FOO"),
        (b"a\r\n", "Missing command"),
        (b"+ NOOP\r\n", "Invalid tag"),
        (b"* NOOP\r\n", "Invalid tag"),
        (b"a  NOOP\r\n", "Expected command name"),
    ],
)
def test_unknown_or_malformed(line: bytes, message: str) -> None:
    assert message in error(line).message


def test_tagless_error_has_no_tag() -> None:
    assert error(b"(bad\r\n").tag is None
    assert error(b"a FOO\r\n").tag == "a"


def test_star_constant() -> None:
    cmd = command(b"a COPY 1:*,* x\r\n", c.Copy)
    assert cmd.sequence_set.ranges == ((1, STAR), (STAR, STAR))
