"""SEARCH (ESEARCH, SEARCHRES, MODSEQ, charsets), SORT and THREAD through the server:
numbers vs UIDs and the response encodings. The key semantics are the search
engine's own tests."""

from __future__ import annotations

import re

from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message


def _mailbox(imap: ImapServer) -> RawClient:
    imap.deliver(simple_message(subject="apple pie", sender="Zed <zed@x.test>"))
    imap.deliver(simple_message(subject="banana split", sender="Amy <amy@x.test>"))
    imap.deliver(simple_message(subject="apple crumble", sender="Bob <bob@x.test>"))
    imap.deliver(simple_message(subject="cherry", message_id="root@x.test"))
    imap.deliver(simple_message(subject="Re: cherry", in_reply_to="root@x.test"))
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    # UIDs 1..5; expunge UID 1 so sequence numbers and UIDs differ.
    raw.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    raw.command("EXPUNGE")
    return raw


def test_search_returns_sequence_numbers_and_uid_search_uids(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    assert raw.command("SEARCH SUBJECT apple")[0] == b"* SEARCH 2"
    assert raw.command("UID SEARCH SUBJECT apple")[0] == b"* SEARCH 3"
    assert raw.command("SEARCH ALL")[0] == b"* SEARCH 1 2 3 4"
    assert raw.command("SEARCH SUBJECT nothing-like-this")[0] == b"* SEARCH"
    raw.close()


def test_esearch_return_options(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    raw.counter = 10
    lines = raw.command("SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    assert lines[0] == b'* ESEARCH (TAG "t11") MIN 1 MAX 4 ALL 1:4 COUNT 4'
    lines = raw.command("UID SEARCH RETURN () UNSEEN")
    assert lines[0] == b'* ESEARCH (TAG "t12") UID ALL 2:5'
    lines = raw.command("SEARCH RETURN (COUNT) SUBJECT zzz")
    assert lines[0] == b'* ESEARCH (TAG "t13") COUNT 0'
    raw.close()


def test_searchres_save_and_dollar(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    assert len(raw.command("SEARCH RETURN (SAVE) SUBJECT cherry")) == 1
    assert raw.command("FETCH $ (UID)")[:2] == [b"* 3 FETCH (UID 4)", b"* 4 FETCH (UID 5)"]
    raw.command("UID STORE $ +FLAGS (\\Flagged)")
    assert raw.command("SEARCH FLAGGED")[0] == b"* SEARCH 3 4"
    raw.close()


def test_search_modseq_reports_highest(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    raw.command("STORE 2 +FLAGS (\\Seen)")
    line = raw.command("SEARCH MODSEQ 1")[0]
    assert re.fullmatch(rb"\* SEARCH 1 2 3 4 \(MODSEQ \d+\)", line)
    raw.close()


def test_unknown_charset_is_badcharset(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    lines = raw.command("SEARCH CHARSET KLINGON SUBJECT x", expect="NO")
    assert b"[BADCHARSET (US-ASCII UTF-8)]" in lines[-1]
    assert raw.command("SEARCH CHARSET UTF-8 SUBJECT apple")[0] == b"* SEARCH 2"
    raw.close()


def test_sort_by_subject_and_from(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    assert raw.command("SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 2 1 3 4"
    assert raw.command("UID SORT (REVERSE FROM) UTF-8 SUBJECT apple")[0].startswith(b"* SORT 3")
    raw.close()


def test_esort_return_options_keep_the_sort_order(imap: ImapServer) -> None:
    """RFC 5267 §3.2: MIN/MAX are the first/last of the sorted result, ALL is in sort
    order."""
    raw = _mailbox(imap)
    raw.counter = 20
    assert b" ESORT" in raw.command("CAPABILITY")[0]
    lines = raw.command("SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")
    assert lines[0] == b'* ESEARCH (TAG "t22") MIN 2 MAX 4 ALL 2,1,3,4 COUNT 4'
    lines = raw.command("UID SORT RETURN () (REVERSE SUBJECT) UTF-8 ALL")
    assert lines[0] == b'* ESEARCH (TAG "t23") UID ALL 4,5,2,3'
    lines = raw.command("SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT zzz")
    assert lines[0] == b'* ESEARCH (TAG "t24") COUNT 0'
    raw.command("UID SORT RETURN (SAVE) (SUBJECT) UTF-8 SUBJECT apple")
    assert raw.command("UID FETCH $ (UID)")[0] == b"* 2 FETCH (UID 3)"
    raw.close()


def test_thread_references(imap: ImapServer) -> None:
    raw = _mailbox(imap)
    line = raw.command("THREAD REFERENCES UTF-8 ALL")[0]
    assert line.startswith(b"* THREAD ")
    assert b"(3 4)" in line
    assert b"(5 4)" not in line
    line = raw.command("UID THREAD ORDEREDSUBJECT UTF-8 ALL")[0]
    assert b"(4 5)" in line
    raw.close()


def test_search_text_finds_header_words_through_the_index(imap: ImapServer) -> None:
    """TEXT (RFC 9051 §6.4.4) reads the header text from the full-text index: a word in
    any field, encoded words decoded, a substring that starts a word; the body half
    still answers."""
    imap.deliver(simple_message(extra_headers="X-Tracker: Zebrafish-4411\r\n"))
    imap.deliver(simple_message(subject="=?utf-8?q?R=C3=A9union_Gen=C3=A8ve?="))
    imap.deliver(simple_message(body="zebrafish in the body only\r\n"))
    imap.deliver(simple_message())
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    assert raw.command("SEARCH TEXT zebrafish")[0] == b"* SEARCH 1 3"
    assert raw.command("SEARCH TEXT zebrafish-44")[0] == b"* SEARCH 1"
    assert raw.command('SEARCH CHARSET UTF-8 TEXT "reunion gen"')[0] == b"* SEARCH 2"
    # Like BODY, a string must start at the start of a word (mail/search.py deviations).
    assert raw.command('SEARCH CHARSET UTF-8 TEXT "union gen"')[0] == b"* SEARCH"
    assert raw.command("SEARCH TEXT x-tracker")[0] == b"* SEARCH 1"
    # A substring across a field's name and value; a string split between the header
    # and the body of one message is in neither.
    assert raw.command('SEARCH TEXT "tracker: zebra"')[0] == b"* SEARCH 1"
    assert raw.command('SEARCH TEXT "zebrafish-4411 just"')[0] == b"* SEARCH"
    assert raw.command("SEARCH TEXT elsewhere.test")[0] == b"* SEARCH 1 2 3 4"
    raw.close()


def test_search_text_indexes_headers_of_emails_stored_before_the_index_had_them(
    imap: ImapServer,
) -> None:
    """Migration 0013 lists older emails in search_headers_pending with no header text
    indexed: TEXT still finds them, and indexes them on the way."""
    import sqlalchemy as sa

    from hirondelle.store import schema, search
    from hirondelle.store.database import WriteContext

    imap.deliver(simple_message(extra_headers="X-Legacy: okapi\r\n"))
    imap.deliver(simple_message())

    def forget(ctx: WriteContext) -> None:
        conn = ctx.conn
        while search.index_waiting_batch(ctx):  # new mail waits to be indexed (SQLite)
            pass
        ids = list(conn.execute(sa.select(schema.emails.c.id)).scalars())
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("UPDATE email_search_fts SET headers = ''")
        else:
            conn.exec_driver_sql("UPDATE email_search SET headers = ''::tsvector")
        conn.execute(schema.search_headers_pending.insert(), [{"email_id": i} for i in ids])

    def pending(conn: sa.Connection) -> int:
        return len(conn.execute(sa.select(schema.search_headers_pending)).all())

    database = imap.services.database
    imap.run(database.write(forget))
    assert imap.run(database.read(pending)) == 2
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    assert raw.command("SEARCH TEXT okapi")[0] == b"* SEARCH 1"
    assert imap.run(database.read(pending)) == 0
    # Now from the index alone.
    assert raw.command("SEARCH TEXT okapi")[0] == b"* SEARCH 1"
    assert raw.command("SEARCH TEXT x-legacy")[0] == b"* SEARCH 1"
    raw.close()
