"""SELECT/EXAMINE and FETCH of every item, with imaplib and exact raw lines."""

from __future__ import annotations

import re

from tests.imap.conftest import ImapServer
from tests.messages import simple_message

MULTIPART = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: Report\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <report@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9 au lait\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream; name=data.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQF\r\n"
    b"--b1--\r\n"
)


def _selected(imap: ImapServer, mailbox: str = "INBOX", command: str = "SELECT"):  # type: ignore[no-untyped-def]
    raw = imap.raw()
    raw.login()
    lines = raw.command(f"{command} {mailbox}")
    return raw, lines


def test_select_responses(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    imap.append("INBOX", simple_message(), flags=("$seen", "project"))
    raw, lines = _selected(imap)
    inbox = imap.mailbox("INBOX")
    assert lines[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft project)"
    assert lines[1] == b"* 2 EXISTS"
    assert lines[2] == b"* 0 RECENT"
    assert b"* OK [UIDVALIDITY %d]" % inbox.uidvalidity in b"\n".join(lines)
    assert b"* OK [UIDNEXT 3]" in b"\n".join(lines)
    assert (
        b"[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft project \\*)]"
        in b"\n".join(lines)
    )
    assert b"[HIGHESTMODSEQ %d]" % inbox.highest_modseq in b"\n".join(lines)
    assert lines[-1].startswith(b"t2 OK [READ-WRITE]")
    raw.close()


def test_examine_is_read_only_and_does_not_set_seen(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, lines = _selected(imap, command="EXAMINE")
    assert lines[-1].startswith(b"t2 OK [READ-ONLY]")
    lines = raw.command("FETCH 1 (BODY[TEXT] FLAGS)")
    assert b"FLAGS ()" in lines[0]
    raw.command("STORE 1 +FLAGS (\\Seen)", expect="NO")
    raw.close()


def test_select_unknown_mailbox_is_nonexistent(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    assert b"[NONEXISTENT]" in raw.command("SELECT Nowhere", expect="NO")[-1]
    raw.close()


def test_fetch_envelope_flags_size_uid(imap: ImapServer) -> None:
    message = simple_message(subject="Hello there")
    imap.deliver(message)
    raw, _ = _selected(imap)
    lines = raw.command("FETCH 1 (UID FLAGS RFC822.SIZE ENVELOPE)")
    assert lines[0].startswith(
        b"* 1 FETCH (UID 1 FLAGS () RFC822.SIZE %d ENVELOPE (" % len(message)
    )
    assert b'"Hello there"' in lines[0]
    raw.close()


def test_fetch_body_sections(imap: ImapServer) -> None:
    imap.deliver(MULTIPART)
    client = imap.imaplib()
    client.ok(client.imap.select("INBOX"))
    data = client.ok(
        client.imap.fetch(
            "1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (Subject FROM)])"
        )
    )
    first = data[0]
    assert first[1] == b"Caf=C3=A9 au lait"
    assert (
        data[1][1] == b"Content-Type: application/octet-stream; name=data.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    assert data[2][1] == b"From: Bob <bob@example.test>\r\nSubject: Report\r\n\r\n"
    data = client.ok(client.imap.fetch("1", "(BODY.PEEK[]<0.4> BODY.PEEK[TEXT] BODY.PEEK[HEADER])"))
    assert data[0][1] == b"From"
    assert data[1][1] == MULTIPART[MULTIPART.index(b"\r\n\r\n") + 4 :]
    assert data[2][1] == MULTIPART[: MULTIPART.index(b"\r\n\r\n") + 4]
    client.close()


def test_fetch_binary_decodes_transfer_encoding(imap: ImapServer) -> None:
    imap.deliver(MULTIPART)
    raw, _ = _selected(imap)
    lines = raw.command("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])")
    text = lines[0]
    assert "BINARY[1] {13}\r\nCafé au lait".encode() in text
    assert b"BINARY.SIZE[2] 6" in text
    assert b"BINARY[2] ~{6}\r\n\x00\x01\x02\x03\x04\x05" in text
    raw.close()


def test_fetch_bodystructure_and_body(imap: ImapServer) -> None:
    imap.deliver(MULTIPART)
    raw, _ = _selected(imap)
    lines = raw.command("FETCH 1 (BODYSTRUCTURE BODY)")
    assert b'BODYSTRUCTURE (("text" "plain"' in lines[0]
    assert b'"mixed"' in lines[0]
    raw.close()


def test_fetch_body_sets_seen_and_reports_flags(imap: ImapServer) -> None:
    imap.deliver(simple_message(body="Secret\r\n"))
    raw, _ = _selected(imap)
    lines = raw.command("FETCH 1 BODY[TEXT]")
    assert lines[0] == b"* 1 FETCH (BODY[TEXT] {8}\r\nSecret\r\n FLAGS (\\Seen))"
    lines = raw.command("FETCH 1 (FLAGS)")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Seen))"
    raw.close()


def test_fetch_peek_does_not_set_seen(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    raw.command("FETCH 1 (BODY.PEEK[] RFC822.HEADER)")
    assert raw.command("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    raw.close()


def test_fetch_rfc822_items(imap: ImapServer) -> None:
    message = simple_message()
    imap.deliver(message)
    client = imap.imaplib()
    client.ok(client.imap.select("INBOX"))
    data = client.ok(client.imap.fetch("1", "(RFC822)"))
    assert data[0][1] == message
    client.close()


def test_fetch_macros_and_uid_fetch_adds_uid(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    line = raw.command("FETCH 1 FAST")[0]
    assert re.match(rb'\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" RFC822.SIZE \d+\)', line)
    line = raw.command("UID FETCH 1 FLAGS")[0]
    assert line == b"* 1 FETCH (UID 1 FLAGS ())"
    raw.close()


def test_fetch_sequence_number_beyond_the_mailbox_is_bad(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    raw.command("FETCH 5 FLAGS", expect="BAD")
    assert raw.command("FETCH 1:* FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    raw.close()


def test_uid_fetch_of_missing_uids_returns_nothing(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    assert len(raw.command("UID FETCH 5:9 FLAGS")) == 1
    lines = raw.command("UID FETCH 5:* FLAGS")  # RFC 9051 §6.4.8: "5:*" names the last UID
    assert lines[0] == b"* 1 FETCH (UID 1 FLAGS ())"
    lines = raw.command("UID FETCH 5:9,1 FLAGS")
    assert lines[0] == b"* 1 FETCH (UID 1 FLAGS ())"
    raw.close()


def test_fetch_modseq_enables_condstore(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    line = raw.command("FETCH 1 (MODSEQ)")[0]
    assert re.fullmatch(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)", line)
    raw.close()


def test_fetch_1_star_of_many_messages(imap: ImapServer) -> None:
    for _ in range(30):
        imap.deliver(simple_message())
    client = imap.imaplib()
    client.ok(client.imap.select("INBOX"))
    data = client.ok(client.imap.fetch("1:*", "(FLAGS ENVELOPE UID)"))
    assert len(data) == 30
    client.close()


def test_bad_uid_set_is_bad_and_session_continues(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    raw, _ = _selected(imap)
    assert b"BAD" in raw.command("UID FETCH 0:x FLAGS", expect="BAD")[-1]
    raw.command("UID STORE 1,,2 +FLAGS (\\Seen)", expect="BAD")
    raw.command("FETCH 1 FLAGS")
    raw.close()


def test_reselect_reports_closed_for_imap4rev2_clients(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("ENABLE IMAP4rev2")
    lines = raw.command("SELECT INBOX")
    assert b'* LIST () "/" INBOX' in lines
    assert not any(b"RECENT" in line for line in lines)
    lines = raw.command("EXAMINE Sent")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
    raw.close()


def test_qresync_select_needs_enable_first(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX (QRESYNC (1 1))", expect="BAD")
    raw.close()
