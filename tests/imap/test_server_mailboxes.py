"""Mailbox commands: LIST (extended, status, special-use), LSUB, STATUS, CREATE,
DELETE, RENAME (INBOX too), SUBSCRIBE, APPEND, QUOTA — imaplib and raw lines."""

from __future__ import annotations

from tests.imap.conftest import ImapServer
from tests.messages import simple_message


def test_list_all_shows_special_use_and_children(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Projects/Alpha")
    lines = raw.command('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" INBOX' in lines
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent' in lines
    assert b'* LIST (\\HasChildren) "/" Projects' in lines
    assert b'* LIST (\\HasNoChildren) "/" Projects/Alpha' in lines
    raw.close()


def test_list_percent_stops_at_the_delimiter_and_root_query(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Projects/Alpha")
    lines = raw.command('LIST "" "%"')
    assert not any(b"Projects/Alpha" in line for line in lines)
    assert raw.command('LIST "" ""')[0] == b'* LIST (\\Noselect) "/" ""'
    lines = raw.command('LIST "Projects/" "%"')
    assert lines[0] == b'* LIST (\\HasNoChildren) "/" Projects/Alpha'
    assert len(raw.command('LIST "" "inbox"')) == 2  # INBOX in any case
    raw.close()


def test_list_extended_selection_and_return_options(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Notes")
    raw.command("UNSUBSCRIBE Notes")
    lines = raw.command('LIST (SPECIAL-USE) "" "*"')
    assert {line.rsplit(b" ", 1)[-1] for line in lines[:-1]} == {
        b"Drafts",
        b"Sent",
        b"Trash",
        b"Junk",
        b"Archive",
    }
    lines = raw.command('LIST (SUBSCRIBED) "" "*"')
    assert all(b"\\Subscribed" in line for line in lines[:-1])
    assert not any(line.endswith(b" Notes") for line in lines)
    lines = raw.command('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT SIZE))')
    assert b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1 SIZE 0)" in lines
    raw.close()


def test_lsub_lists_subscribed_mailboxes(imap: ImapServer) -> None:
    client = imap.imaplib()
    client.ok(client.imap.create("Reports"))
    client.ok(client.imap.unsubscribe("Reports"))
    names = [line.decode() for line in client.ok(client.imap.lsub())]
    assert any(n.endswith(" INBOX") for n in names)
    assert not any(n.endswith(" Reports") for n in names)
    client.ok(client.imap.subscribe("Reports"))
    names = [line.decode() for line in client.ok(client.imap.lsub())]
    assert any(n.endswith(" Reports") for n in names)
    client.close()


def test_status_counts_messages_and_unseen(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    imap.append("INBOX", simple_message(), flags=("$seen",))
    raw = imap.raw()
    raw.login()
    lines = raw.command(
        "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT DELETED HIGHESTMODSEQ"
        " APPENDLIMIT)"
    )
    inbox = imap.mailbox("INBOX")
    expected = (
        f"* STATUS INBOX (MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY {inbox.uidvalidity} RECENT 0 "
        f"DELETED 0 HIGHESTMODSEQ {inbox.highest_modseq} APPENDLIMIT "
        f"{imap.services.settings.limits.max_message_size})"
    )
    assert lines[0].decode() == expected
    raw.close()


def test_status_of_unknown_mailbox_is_nonexistent(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    lines = raw.command("STATUS Nowhere (MESSAGES)", expect="NO")
    assert b"[NONEXISTENT]" in lines[-1]
    raw.close()


def test_create_existing_and_delete_rules(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    assert b"[ALREADYEXISTS]" in raw.command("CREATE Sent", expect="NO")[-1]
    raw.command("CREATE Parent/Child/")
    assert b"[HASCHILDREN]" in raw.command("DELETE Parent", expect="NO")[-1]
    raw.command("DELETE Parent/Child")
    raw.command("DELETE Parent")
    assert b"[NONEXISTENT]" in raw.command("DELETE Parent", expect="NO")[-1]
    raw.command("DELETE INBOX", expect="NO")
    raw.close()


def test_create_special_use(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("DELETE Archive")
    raw.command("CREATE Old (USE (\\Archive))")
    assert b'* LIST (\\HasNoChildren \\Archive) "/" Old' in raw.command('LIST "" Old')
    assert b"[USEATTR]" in raw.command("CREATE Other (USE (\\Archive))", expect="NO")[-1]
    raw.close()


def test_delete_removes_the_messages(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Box")
    imap.append("Box", simple_message())
    raw.command("DELETE Box")
    raw.command("CREATE Box")
    assert raw.command("STATUS Box (MESSAGES)")[0] == b"* STATUS Box (MESSAGES 0)"
    raw.close()


def test_rename_moves_children_and_keeps_messages(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("CREATE Work/2025")
    imap.append("Work/2025", simple_message())
    raw.command("RENAME Work Job")
    lines = raw.command('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" Job/2025' in lines
    assert not any(b"Work" in line for line in lines)
    assert raw.command('STATUS "Job/2025" (MESSAGES)')[0] == b"* STATUS Job/2025 (MESSAGES 1)"
    assert b"[ALREADYEXISTS]" in raw.command("RENAME Job Sent", expect="NO")[-1]
    raw.close()


def test_rename_inbox_moves_its_messages_and_inbox_stays(imap: ImapServer) -> None:
    imap.deliver(simple_message())
    imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("RENAME INBOX Saved")
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)"
    assert raw.command("STATUS Saved (MESSAGES)")[0] == b"* STATUS Saved (MESSAGES 2)"
    raw.close()


def test_non_ascii_names_in_modified_utf7_and_utf8(imap: ImapServer) -> None:
    client = imap.imaplib()
    client.ok(client.imap.create("&AMk-t&AOk-"))  # « Été »
    raw = imap.raw()
    raw.login()
    assert b'* LIST (\\HasNoChildren) "/" &AMk-t&AOk-' in raw.command('LIST "" "*"')
    raw.command("ENABLE UTF8=ACCEPT")
    assert '* LIST (\\HasNoChildren) "/" "Été"'.encode() in raw.command('LIST "" "*"')
    raw.close()
    client.close()


def test_append_returns_appenduid_and_stores_flags_and_date(imap: ImapServer) -> None:
    client = imap.imaplib()
    message = simple_message(subject="Appended")
    status, data = client.imap.append(
        "Drafts", "(\\Draft $Label1)", '"01-Feb-2025 10:20:30 +0100"', message
    )
    assert status == "OK"
    drafts = imap.mailbox("Drafts")
    assert f"[APPENDUID {drafts.uidvalidity} 1]".encode() in data[0]
    client.ok(client.imap.select("Drafts"))
    data = client.ok(client.imap.uid("FETCH", "1", "(FLAGS INTERNALDATE RFC822.SIZE)"))
    assert b"\\Draft" in data[0] and b"$label1" in data[0]
    assert b'INTERNALDATE " 1-Feb-2025 09:20:30 +0000"' in data[0]
    assert f"RFC822.SIZE {len(message)}".encode() in data[0]
    client.close()


def test_append_to_missing_mailbox_is_trycreate(imap: ImapServer) -> None:
    client = imap.imaplib()
    status, data = client.imap.append("Missing", None, None, simple_message())
    assert status == "NO" and b"[TRYCREATE]" in data[0]
    client.close()


def test_multiappend_with_literal_plus(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    first, second = simple_message(), simple_message()
    raw.send(
        b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(first)
        + first
        + b" {%d+}\r\n" % len(second)
        + second
        + b"\r\n"
    )
    lines = raw.until_tagged(b"a")
    inbox = imap.mailbox("INBOX")
    assert lines[-1].startswith(b"a OK [APPENDUID %d 1:2]" % inbox.uidvalidity)
    raw.close()


def test_append_over_the_size_limit_is_toobig(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    size = imap.services.settings.limits.max_message_size + 1
    raw.send(b"a APPEND INBOX {%d}\r\n" % size)
    line = raw.line()
    assert line.startswith(b"a NO [TOOBIG]")
    raw.command("NOOP")
    raw.close()


def test_append_over_quota_is_overquota(imap: ImapServer) -> None:
    imap.run(imap.services.accounts.update_account(imap.account.address, quota_bytes=10))  # type: ignore[union-attr]
    client = imap.imaplib()
    status, data = client.imap.append("INBOX", None, None, simple_message())
    assert status == "NO" and b"[OVERQUOTA]" in data[0]
    client.close()


def test_quota_root_and_storage_usage(imap: ImapServer) -> None:
    imap.run(
        imap.services.accounts.update_account(imap.account.address, quota_bytes=10 * 1024 * 1024)
    )  # type: ignore[union-attr]
    imap.deliver(simple_message(body="x" * 5000))
    raw = imap.raw()
    raw.login()
    lines = raw.command("GETQUOTAROOT INBOX")
    assert lines[0] == b'* QUOTAROOT INBOX ""'
    assert lines[1].startswith(b'* QUOTA "" (STORAGE 5 10240)')
    assert raw.command('GETQUOTA ""')[0].startswith(b'* QUOTA "" (STORAGE 5 10240)')
    raw.command('SETQUOTA "" (STORAGE 1)', expect="NO")
    raw.close()


def test_multiappend_is_all_or_nothing(imap: ImapServer) -> None:
    first, second = simple_message(), simple_message()
    assert imap.account is not None
    imap.run(
        imap.services.accounts.update_account(imap.account.address, quota_bytes=len(first) + 10)
    )
    raw = imap.raw()
    raw.login()
    raw.send(
        b"a APPEND INBOX {%d+}\r\n" % len(first)
        + first
        + b" {%d+}\r\n" % len(second)
        + second
        + b"\r\n"
    )
    assert raw.until_tagged(b"a")[-1].startswith(b"a NO [OVERQUOTA]")
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)"
    raw.close()
