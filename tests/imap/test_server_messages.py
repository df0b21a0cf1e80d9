"""STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT (UIDPLUS) — raw lines and
imaplib."""

from __future__ import annotations

from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message


def _inbox_with(imap: ImapServer, count: int) -> RawClient:
    for _ in range(count):
        imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    return raw


def test_store_add_remove_replace_flags(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 2)
    assert raw.command("STORE 1 +FLAGS (\\Flagged $Work)")[0] == (
        b"* 1 FETCH (FLAGS (\\Flagged $work) UID 1)"
    )
    assert raw.command("STORE 1 -FLAGS (\\Flagged)")[0] == b"* 1 FETCH (FLAGS ($work) UID 1)"
    assert raw.command("STORE 1:2 FLAGS (\\Answered)")[:2] == [
        b"* 1 FETCH (FLAGS (\\Answered) UID 1)",
        b"* 2 FETCH (FLAGS (\\Answered) UID 2)",
    ]
    assert len(raw.command("STORE 1 +FLAGS.SILENT (\\Seen)")) == 1
    assert raw.command("UID STORE 2 +FLAGS (\\Seen)")[0] == (
        b"* 2 FETCH (FLAGS (\\Answered \\Seen) UID 2)"
    )
    raw.close()


def test_store_recent_flag_is_bad(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 1)
    raw.command("STORE 1 +FLAGS (\\Recent)", expect="BAD")
    raw.command("STORE 1 +FLAGS (\\Seen)")
    raw.close()


def test_store_unchangedsince_reports_modified(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 2)
    lines = raw.command("FETCH 1:2 (MODSEQ)")
    modseq = int(lines[0].split(b"MODSEQ (")[1].split(b")")[0])
    raw.command("STORE 2 +FLAGS (\\Seen)")
    lines = raw.command(f"STORE 1:2 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)")
    assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Flagged) UID 1 MODSEQ (")
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [MODIFIED 2]")
    raw.close()


def test_copy_returns_copyuid_and_keeps_flags(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 3)
    raw.command("STORE 2 +FLAGS (\\Flagged)")
    lines = raw.command("COPY 2:3 Archive")
    archive = imap.mailbox("Archive")
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [COPYUID %d 2:3 1:2]" % archive.uidvalidity)
    raw.command("SELECT Archive")
    assert raw.command("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Flagged))"
    raw.close()


def test_copy_to_missing_mailbox_is_trycreate(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 1)
    assert b"[TRYCREATE]" in raw.command("COPY 1 Nowhere", expect="NO")[-1]
    raw.close()


def test_copy_into_the_same_mailbox_makes_a_new_message(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 1)
    lines = raw.command("COPY 1 INBOX")
    assert b"* 2 EXISTS" in lines
    assert b"[COPYUID" in lines[-1]
    raw.close()


def test_move_sends_copyuid_then_expunge(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 3)
    lines = raw.command("MOVE 1:2 Trash")
    trash = imap.mailbox("Trash")
    assert lines[0] == b"* OK [COPYUID %d 1:2 1:2] Moved" % trash.uidvalidity
    assert lines[1:3] == [b"* 2 EXPUNGE", b"* 1 EXPUNGE"]
    assert raw.command("FETCH 1 UID")[0] == b"* 1 FETCH (UID 3)"
    assert raw.command("STATUS Trash (MESSAGES)")[0] == b"* STATUS Trash (MESSAGES 2)"
    raw.close()


def test_uid_move(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 2)
    lines = raw.command("UID MOVE 2 Junk")
    assert lines[1] == b"* 2 EXPUNGE"
    raw.close()


def test_expunge_removes_only_deleted_messages(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 4)
    raw.command("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    lines = raw.command("EXPUNGE")
    assert lines[:-1] == [b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
    assert raw.command("FETCH 1:* UID")[:2] == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]
    raw.close()


def test_uid_expunge_restricts_to_the_set(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 3)
    raw.command("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    assert raw.command("UID EXPUNGE 2")[:-1] == [b"* 2 EXPUNGE"]
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 2)"
    raw.close()


def test_close_expunges_silently_and_unselect_does_not(imap: ImapServer) -> None:
    raw = _inbox_with(imap, 2)
    raw.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    raw.command("UNSELECT")
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 2)"
    raw.command("SELECT INBOX")
    assert [line.split(b" ", 1)[1] for line in raw.command("CLOSE")] == [b"OK CLOSE completed"]
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 1)"
    raw.command("FETCH 1 FLAGS", expect="BAD")
    raw.close()


def test_expunge_in_examine_is_refused(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("EXAMINE INBOX")
    raw.command("EXPUNGE", expect="NO")
    raw.command("MOVE 1 Trash", expect="NO")
    raw.close()


def test_imaplib_store_copy_expunge_round(imap: ImapServer) -> None:
    for _ in range(3):
        imap.deliver(simple_message())
    client = imap.imaplib()
    client.ok(client.imap.select("INBOX"))
    client.ok(client.imap.store("1", "+FLAGS", "\\Deleted"))
    client.ok(client.imap.copy("2:3", "Archive"))
    data = client.ok(client.imap.expunge())
    assert data == [b"1"]
    client.ok(client.imap.close())
    client.close()
