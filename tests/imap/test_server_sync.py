"""Several sessions on one mailbox: IDLE, NOOP, the EXPUNGE rules; CONDSTORE and
QRESYNC (RFC 7162) from the change journal."""

from __future__ import annotations

import re
import time

from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message


def _selected(imap: ImapServer, *, enable: str | None = None) -> RawClient:
    raw = imap.raw()
    raw.login()
    if enable:
        raw.command(f"ENABLE {enable}")
    raw.command("SELECT INBOX")
    return raw


def _idle_line(raw: RawClient, within: float = 1.0) -> bytes:
    """The next untagged line during IDLE, which must come within ``within`` seconds."""
    raw.sock.settimeout(within)
    try:
        return raw.line()
    except TimeoutError:
        raise AssertionError(f"nothing within {within}s during IDLE") from None
    finally:
        raw.sock.settimeout(30)


def test_idle_sees_new_flags_and_expunge_from_another_session(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    watcher = _selected(imap)
    actor = _selected(imap)
    watcher.send(b"i IDLE\r\n")
    assert watcher.line() == b"+ idling"
    started = time.monotonic()
    imap.deliver(simple_message())
    assert _idle_line(watcher) == b"* 2 EXISTS"
    actor.command("STORE 1 +FLAGS (\\Flagged)")
    assert _idle_line(watcher) == b"* 1 FETCH (FLAGS (\\Flagged) UID 1)"
    actor.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert _idle_line(watcher) == b"* 2 FETCH (FLAGS (\\Deleted) UID 2)"
    actor.command("EXPUNGE")
    assert _idle_line(watcher) == b"* 2 EXPUNGE"
    assert time.monotonic() - started < 10
    watcher.send(b"DONE\r\n")
    assert watcher.until_tagged(b"i")[-1] == b"i OK IDLE terminated"
    watcher.command("NOOP")
    watcher.close()
    actor.close()


def test_noop_reports_changes_of_another_session(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    watcher = _selected(imap)
    actor = _selected(imap)
    actor.command("STORE 1 +FLAGS (\\Seen)")
    imap.deliver(simple_message())
    lines = watcher.command("NOOP")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Seen) UID 1)", b"* 2 EXISTS"]
    assert len(watcher.command("NOOP")) == 1  # told once
    watcher.close()
    actor.close()


def test_no_expunge_during_fetch_store_search_then_on_noop(imap: ImapServer) -> None:
    for _ in range(3):
        imap.deliver(simple_message())
    watcher = _selected(imap)
    actor = _selected(imap)
    actor.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    lines = watcher.command("FETCH 3 (UID)")  # message 3 is still number 3 here
    assert b"* 3 FETCH (UID 3)" in lines
    assert not any(b"EXPUNGE" in line for line in lines)
    lines = watcher.command("STORE 1 +FLAGS (\\Answered)")
    assert not any(b"EXPUNGE" in line for line in lines)
    lines = watcher.command("NOOP")
    assert b"* 2 EXPUNGE" in lines
    assert watcher.command("FETCH 2 (UID)")[0] == b"* 2 FETCH (UID 3)"
    watcher.close()
    actor.close()


def test_uid_fetch_may_announce_pending_expunges(imap: ImapServer) -> None:
    for _ in range(2):
        imap.deliver(simple_message())
    watcher = _selected(imap)
    actor = _selected(imap)
    actor.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    lines = watcher.command("UID FETCH 2 (FLAGS)")
    assert lines[:2] == [b"* 1 EXPUNGE", b"* 1 FETCH (UID 2 FLAGS ())"]
    watcher.close()
    actor.close()


def test_qresync_enabled_session_gets_vanished(imap: ImapServer) -> None:
    for _ in range(2):
        imap.deliver(simple_message())
    watcher = _selected(imap, enable="QRESYNC")
    actor = _selected(imap)
    actor.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    lines = watcher.command("NOOP")
    assert lines[0] == b"* VANISHED 1"
    watcher.close()
    actor.close()


def _highestmodseq(lines: list[bytes]) -> int:
    for line in lines:
        found = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if found:
            return int(found.group(1))
    raise AssertionError(lines)


def test_qresync_after_offline_changes_returns_exact_expunges_and_flag_changes(
    imap: ImapServer,
) -> None:
    for _ in range(5):
        imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("ENABLE QRESYNC")
    modseq = _highestmodseq(raw.command("SELECT INBOX"))
    raw.command("LOGOUT")
    raw.close()
    # Meanwhile, another client: expunge UIDs 2 and 4, flag 3, a new message arrives.
    other = _selected(imap)
    other.command("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    other.command("EXPUNGE")
    other.command("UID STORE 3 +FLAGS.SILENT (\\Flagged)")
    other.close()
    imap.deliver(simple_message())
    uidvalidity = imap.mailbox("INBOX").uidvalidity
    back = imap.raw()
    back.login()
    back.command("ENABLE QRESYNC")
    lines = back.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:5))")
    assert b"* VANISHED (EARLIER) 2,4" in lines
    fetches = [line for line in lines if b" FETCH " in line]
    assert [re.search(rb"UID (\d+)", f).group(1) for f in fetches] == [b"3", b"6"]  # type: ignore[union-attr]
    assert b"\\Flagged" in fetches[0]
    back.close()


def test_fetch_changedsince_with_vanished(imap: ImapServer) -> None:
    for _ in range(3):
        imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("ENABLE QRESYNC")
    modseq = _highestmodseq(raw.command("SELECT INBOX"))
    other = _selected(imap)
    other.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.command("EXPUNGE")
    other.command("STORE 2 +FLAGS.SILENT (\\Seen)")
    other.close()
    lines = raw.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert b"* VANISHED (EARLIER) 1" in lines
    assert any(re.match(rb"\* \d FETCH \(UID 3 FLAGS \(\\Seen\) MODSEQ", line) for line in lines)
    assert not any(b"UID 2 " in line for line in lines)
    raw.close()


def test_select_condstore_reports_highestmodseq_and_search_modseq_is_wired(
    imap: ImapServer,
) -> None:
    imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    lines = raw.command("SELECT INBOX (CONDSTORE)")
    assert _highestmodseq(lines) == imap.mailbox("INBOX").highest_modseq
    raw.close()


def test_qresync_seq_match_data_limits_vanished_when_the_journal_is_too_old(
    imap: ImapServer,
) -> None:
    """RFC 7162 §3.2.5.2: when the changes since the client's modseq are no longer known,
    the server reports every known UID that is gone, except below the point where the
    client's sequence numbers still name the UIDs it gave (seq-match-data)."""
    import sqlalchemy as sa

    from hirondelle.store import schema

    for _ in range(6):
        imap.deliver(simple_message())
    raw = _selected(imap)
    raw.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
    raw.command("EXPUNGE")  # the client saw UID 2 go: it knows 1,3,4,5,6
    modseq = _highestmodseq(raw.command("SELECT INBOX"))
    raw.command("STORE 4 +FLAGS.SILENT (\\Deleted)")  # sequence 4 = UID 5
    raw.command("EXPUNGE")
    raw.close()
    account_id = imap.account.id if imap.account else 0

    def forget(conn: sa.Connection) -> None:
        accounts = schema.accounts
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(journal_floor=accounts.c.modseq)
        )

    imap.run(imap.services.database.write(lambda ctx: forget(ctx.conn)))
    uidvalidity = imap.mailbox("INBOX").uidvalidity
    back = imap.raw()
    back.login()
    back.command("ENABLE QRESYNC")
    lines = back.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6))")
    assert b"* VANISHED (EARLIER) 2,5" in lines
    # Sequence numbers 1..3 still name UIDs 1, 3, 4: nothing below UID 4 went away.
    lines = back.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6 (1:4 1,3:5)))")
    assert b"* VANISHED (EARLIER) 5" in lines
    back.close()
