"""SELECT's FLAGS and PERMANENTFLAGS (RFC 9051 §7.3.5, §7.1) from the mailbox's keyword
list kept at write time (``mailbox_keywords``): APPEND, STORE, COPY and MOVE add to it,
and each mailbox lists only what was set on its own messages."""

from __future__ import annotations

from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message


def _flags_line(raw: RawClient, mailbox: str) -> bytes:
    lines = raw.command(f"SELECT {mailbox}")
    flags = [line for line in lines if line.startswith(b"* FLAGS ")]
    assert len(flags) == 1
    return flags[0]


def _permanent(raw: RawClient, mailbox: str) -> bytes:
    lines = raw.command(f"SELECT {mailbox}")
    return next(line for line in lines if b"PERMANENTFLAGS" in line)


def test_keywords_follow_append_store_copy_and_move(imap: ImapServer) -> None:
    imap.append("INBOX", simple_message(), flags=("$appended",))
    imap.append("INBOX", simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Projects")
    raw.command("CREATE Other")
    assert b"$appended" in _flags_line(raw, "INBOX")
    assert b"$stored" not in _flags_line(raw, "INBOX")
    raw.command("STORE 2 +FLAGS ($Stored)")
    # Another session opening the mailbox now sees the new keyword at once.
    other = imap.raw()
    other.login()
    assert b"$stored" in _flags_line(other, "INBOX")
    assert b"$stored" in _permanent(other, "INBOX")
    other.close()
    # Projects and Other have no message yet: only the system flags.
    assert _flags_line(raw, "Projects") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    )
    raw.command("SELECT INBOX")
    raw.command("COPY 2 Projects")
    raw.command("MOVE 1 Other")
    archive = _flags_line(raw, "Projects")
    assert b"$stored" in archive and b"$appended" not in archive
    moved = _flags_line(raw, "Other")
    assert b"$appended" in moved and b"$stored" not in moved
    raw.close()


def test_removed_keyword_may_stay_listed_but_flags_stay_exact(imap: ImapServer) -> None:
    """The list only grows (RFC 9051 §7.3.5 lists the flags applicable in the mailbox),
    while each message's FLAGS are its own."""
    imap.append("INBOX", simple_message(), flags=("$once",))
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    assert raw.command("STORE 1 -FLAGS ($Once)")[0] == b"* 1 FETCH (FLAGS () UID 1)"
    assert b"$once" in _flags_line(raw, "INBOX")
    assert raw.command("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    raw.close()


def test_reselect_reuses_nothing_stale(imap: ImapServer) -> None:
    """SELECT of a mailbox whose account has not changed reuses the listener's columns;
    any change in the account (a delivery, an expunge, a flag) makes it read again."""
    imap.deliver(simple_message())
    imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()

    def exists() -> list[bytes]:
        lines = raw.command("SELECT INBOX")
        return [line for line in lines if line.endswith(b" EXISTS")]

    assert exists() == [b"* 2 EXISTS"]
    assert exists() == [b"* 2 EXISTS"]
    imap.deliver(simple_message())
    assert exists() == [b"* 3 EXISTS"]
    raw.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    raw.command("EXPUNGE")
    assert exists() == [b"* 2 EXISTS"]
    assert raw.command("FETCH 1:* (UID)")[:2] == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]
    other = imap.raw()
    other.login()
    other.command("SELECT INBOX")
    other.command("STORE 2 +FLAGS.SILENT (\\Flagged)")
    other.close()
    lines = raw.command("SELECT INBOX")
    assert raw.command("FETCH 2 (FLAGS)")[0] == b"* 2 FETCH (FLAGS (\\Flagged))"
    assert any(b"HIGHESTMODSEQ" in line for line in lines)
    raw.close()
