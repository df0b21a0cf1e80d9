"""Emails, their membership in mailboxes, keywords, threads and quota accounting.

DESIGN.md "Mail model": an email is immutable content (a blob) plus metadata; it may be
in several mailboxes, each membership with its own UID (RFC 9051 §2.3.1.1: strictly
ascending within a mailbox, never reused under one UIDVALIDITY) and modseq (RFC 7162
§3.1.1). Every change writes journal rows at the account's new modseq:

==================  =========================================  =============================
journal kind        object_id / container_id                   read by
==================  =========================================  =============================
``Email``           email id / --                              JMAP Email/changes
``Thread``          thread id / --                             JMAP Thread/changes
``Mailbox``         mailbox id / --                            JMAP Mailbox/changes (counts)
``MailboxMessage``  UID / mailbox id                           IMAP CONDSTORE/QRESYNC
==================  =========================================  =============================
"""

from __future__ import annotations

import functools
import json
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mime import ParsedMessage
from hirondelle.mime.headers import decode_words, unfold
from hirondelle.store import schema, search
from hirondelle.store.blobs import BlobRef
from hirondelle.store.database import (
    DriverStatement,
    WriteContext,
    driver_cursor,
    driver_pipeline,
    now_us,
)


@dataclass(frozen=True, slots=True)
class StoredEmail:
    email_id: int
    thread_id: int
    modseq: int
    uids: dict[int, int]  # mailbox id -> UID


@dataclass(frozen=True, slots=True)
class MessageView:
    """One row of a selected mailbox's compact view (DESIGN.md "Hot paths")."""

    uid: int
    modseq: int
    email_id: int
    keywords: str


@dataclass(frozen=True, slots=True)
class KeywordChange:
    email_id: int
    keywords: frozenset[str]
    modseq: int


def serialize_keywords(keywords: Iterable[str]) -> str:
    return " ".join(sorted(set(keywords)))


def parse_keywords(text: str) -> frozenset[str]:
    return frozenset(text.split())


def structure_document(parsed: ParsedMessage) -> str:
    """What ``emails.structure`` keeps of a parse: JSON for JMAP and section FETCH."""

    def addresses(values: Sequence[object]) -> list[dict[str, str | None]]:
        return [{"name": a.name, "email": a.email} for a in values]  # type: ignore[attr-defined]

    return json.dumps(
        {
            "from": addresses(parsed.from_),
            "sender": addresses(parsed.sender),
            "replyTo": addresses(parsed.reply_to),
            "to": addresses(parsed.to),
            "cc": addresses(parsed.cc),
            "bcc": addresses(parsed.bcc),
            "messageId": list(parsed.message_id),
            "inReplyTo": list(parsed.in_reply_to),
            "references": list(parsed.references),
            "bodyStructure": parsed.jmap_body_structure,
            "textBody": list(parsed.text_body),
            "htmlBody": list(parsed.html_body),
            "attachments": list(parsed.attachments),
            "parts": [
                [
                    p.section,
                    p.header_start,
                    p.body_start,
                    p.end,
                    p.content_type,
                    p.transfer_encoding,
                    p.is_multipart,
                    p.is_message,
                ]
                for p in parsed.parts
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _sort_address(values: Sequence[object]) -> str:
    """RFC 5256 §3 SORT FROM/TO/CC key: the first address's mailbox, lowercased."""
    for address in values:
        email = getattr(address, "email", "")
        if email:
            return str(email).split("@", 1)[0].lower()
    return ""


@dataclass(frozen=True, slots=True)
class DerivedForms:
    """What :func:`insert_email` writes besides the parse's own fields: the structure
    JSON and the full-text document. Made by :func:`derived_forms`, either on the writer
    thread or where the message was parsed (a worker process, off the GIL)."""

    structure: str
    search: search.SearchDocument


def derived_forms(parsed: ParsedMessage, *, postgresql: bool = False) -> DerivedForms:
    """``postgresql``: the store is PostgreSQL, whose full-text index takes the
    document's folded words (:func:`hirondelle.store.search.tokens`, 0.4 ms for a 10 KB
    body): made here too, so that a parsing worker makes them, not the writer thread."""
    document = search_document(parsed)
    if postgresql:
        document = search.with_tokens(document)
    return DerivedForms(structure_document(parsed), document)


def search_document(parsed: ParsedMessage) -> search.SearchDocument:
    people = []
    for group in (parsed.from_, parsed.sender, parsed.reply_to, parsed.to, parsed.cc, parsed.bcc):
        for address in group:
            people.append(f"{address.name or ''} {address.email}")
    attachment_names = [p.filename for p in parsed.parts if p.filename]
    return search.SearchDocument(
        subject=parsed.subject,
        participants=" ".join(people),
        body=parsed.search_text,
        attachments=" ".join(attachment_names),
        headers=header_text(parsed.headers),
    )


def header_text(fields: Iterable[tuple[str, str]]) -> str:
    """The header as IMAP SEARCH TEXT reads it (``mail/search.py``): one "Name: value"
    line per field, the value unfolded and RFC 2047-decoded."""
    return "\n".join(
        f"{name}: {decode_words(unfold(value.encode('utf-8')))}" for name, value in fields
    )


def release_blobs(conn: Connection, hashes: Iterable[str]) -> None:
    """One reference fewer to each blob (a hash may appear several times)."""
    counts: dict[str, int] = defaultdict(int)
    for blob_hash in hashes:
        counts[blob_hash] += 1
    now = now_us()
    for blob_hash, count in counts.items():
        conn.execute(
            schema.blobs.update()
            .where(schema.blobs.c.hash == blob_hash)
            .values(
                refcount=schema.blobs.c.refcount - count,
                unreferenced_since=sa.case((schema.blobs.c.refcount - count <= 0, now), else_=None),
            )
        )


def reference_blob(conn: Connection, blob: BlobRef) -> None:
    """One reference more to ``blob`` (an email or a queued message now points to it);
    the row is created on first use. A staged small blob (``blob.inline``, see
    :meth:`hirondelle.store.blobs.FileBlobStore.stage`) has its content written here,
    in the caller's transaction: it is durable when that transaction commits."""
    cursor = driver_cursor(conn)
    cursor.execute(_UPSERT_BLOB.text(conn.dialect.name), (blob.hash, blob.size))
    if blob.inline is not None:
        cursor.execute(_INSERT_INLINE.text(conn.dialect.name), (blob.hash, blob.inline))


# The delivery path's statements (DESIGN.md "Hot paths": built once, run on the driver's
# cursor; see DriverStatement). Their semantics are those of the Core statements they
# replaced; tests/store checks them on both backends.
_QUOTA = DriverStatement("SELECT used_bytes, quota_bytes FROM accounts WHERE id = ?")
# The account row's one update of a delivery: the quota check (a message that does not
# fit changes nothing: no row comes back), the modseq bump (WriteContext.next_modseq)
# and the used bytes, in one statement. The second form is for an account whose modseq
# this write has bumped already.
_QUOTA_CONDITION = " AND (? OR quota_bytes IS NULL OR used_bytes + ? <= quota_bytes)"
_RESERVE_AND_BUMP = DriverStatement(
    "UPDATE accounts SET modseq = modseq + 1, used_bytes = used_bytes + ? WHERE id = ?"
    + _QUOTA_CONDITION
    + " RETURNING modseq"
)
_RESERVE = DriverStatement(
    "UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?"
    + _QUOTA_CONDITION
    + " RETURNING modseq"
)
_UPSERT_BLOB = DriverStatement(
    "INSERT INTO blobs (hash, size, refcount, unreferenced_since) VALUES (?, ?, 1, NULL)"
    " ON CONFLICT (hash) DO UPDATE SET refcount = blobs.refcount + 1,"
    " unreferenced_since = NULL"
)
# Identical content already inline (another recipient, a redelivery) is kept as it is.
_INSERT_INLINE = DriverStatement(
    "INSERT INTO blob_inline (hash, data) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING"
)
# The id is chosen in the statement so that a message starting a thread names its own
# id as thread id at once (no UPDATE after): ``COALESCE(existing thread, new id)``. On
# SQLite one more than the largest id there is or ever was (``email_id_floor``,
# migration 0025: ids are never given twice), on PostgreSQL the column's sequence.
_INSERT_EMAIL_TEXT = (
    "WITH next_id AS (SELECT {next_id} AS n)"
    " INSERT INTO emails (id, thread_id, account_id, blob_hash, size, received_at, sent_at,"
    " keywords, modseq, created_modseq, subject, sort_subject, sort_from, sort_to, sort_cc,"
    " message_id, preview, has_attachment, envelope, body_structure, body, header_end,"
    " structure) VALUES ((SELECT n FROM next_id), COALESCE(?, (SELECT n FROM next_id)),"
    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
_INSERT_EMAIL = {
    "sqlite": DriverStatement(
        _INSERT_EMAIL_TEXT.format(
            next_id="(SELECT max(COALESCE((SELECT MAX(id) FROM emails), 0),"
            " (SELECT value FROM email_id_floor)) + 1)"
        )
    ).text("sqlite"),
    "postgresql": DriverStatement(
        _INSERT_EMAIL_TEXT.format(next_id="nextval(pg_get_serial_sequence('emails', 'id'))")
    ).text("postgresql"),
}
_INSERT_MESSAGE_ID = DriverStatement(
    "INSERT INTO message_ids (account_id, message_id, thread_id) VALUES (?, ?, ?)"
)
_ALLOCATE_UID = DriverStatement(
    "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = ?"
    " WHERE id = ? AND account_id = ? RETURNING uidnext"
)
# The same for the first message of a new thread, moving the mailbox's counters too: its
# deltas are known without recounting (one email, one thread, nothing there before), so
# refresh_thread_counts is not needed.
_ALLOCATE_UID_NEW_THREAD = DriverStatement(
    "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = ?,"
    " total_emails = total_emails + 1, unseen_emails = unseen_emails + ?,"
    " unread_emails = unread_emails + ?, deleted_emails = deleted_emails + ?,"
    " total_size = total_size + ?, total_threads = total_threads + 1,"
    " unread_threads = unread_threads + ?"
    " WHERE id = ? AND account_id = ? RETURNING uidnext"
)
_INSERT_MEMBERSHIP = DriverStatement(
    "INSERT INTO mailbox_messages (mailbox_id, uid, email_id, modseq, keywords)"
    " VALUES (?, ?, ?, ?, ?)"
)
# The mailbox's keyword list only grows (schema.mailbox_keywords): an insert that is
# already there is a no-op on both backends.
_NOTE_KEYWORD = DriverStatement(
    "INSERT INTO mailbox_keywords (mailbox_id, keyword) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
_ADD_USED_BYTES = DriverStatement("UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?")
_INBOX = DriverStatement("SELECT id FROM mailboxes WHERE account_id = ? AND role = 'inbox' LIMIT 1")


def inbox_id(conn: Connection, account_id: int) -> int | None:
    """The id of the account's Inbox (RFC 9051 §5.1: every account has one), the one
    column delivery needs, without building a whole ``Mailbox``."""
    cursor = driver_cursor(conn)
    cursor.execute(_INBOX.text(conn.dialect.name), (account_id,))
    row = cursor.fetchone()
    cursor.close()
    return None if row is None else int(row[0])


def _known_message_ids(
    cursor: Any, dialect: str, account_id: int, ids: list[str]
) -> list[tuple[str, int]]:
    """(message_id, thread_id) of the account's known Message-IDs among ``ids``."""
    mark = "?" if dialect == "sqlite" else "%s"
    cursor.execute(
        "SELECT message_id, thread_id FROM message_ids WHERE account_id = "
        f"{mark} AND message_id IN ({', '.join([mark] * len(ids))})",
        (account_id, *ids),
    )
    return [(str(m), int(t)) for m, t in cursor.fetchall()]


def insert_email(
    ctx: WriteContext,
    *,
    account_id: int,
    mailbox_ids: Sequence[int],
    parsed: ParsedMessage,
    blob: BlobRef,
    keywords: Iterable[str] = (),
    received_at: int | None = None,
    enforce_quota: bool = True,
    forms: DerivedForms | None = None,
) -> StoredEmail:
    """Add a message to one or more of the account's mailboxes, in the caller's
    transaction. Raises Refused(OVER_QUOTA) or Refused(NOT_FOUND) (unknown mailbox).
    ``forms``: :func:`derived_forms` of ``parsed`` when already made (by the process that
    parsed it), so that the writer thread only writes."""
    if not mailbox_ids:
        raise ValueError("an email must be in at least one mailbox")
    conn = ctx.conn
    dialect = conn.dialect.name
    cursor = driver_cursor(conn)
    try:
        # PostgreSQL: the statements whose results are not read (blob, Message-IDs,
        # membership, counters, search, journal) go without a round trip each: 5 waits a
        # delivery instead of 12 for the one writer thread.
        with driver_pipeline(conn):
            return _insert_email(
                ctx,
                cursor,
                dialect,
                account_id=account_id,
                mailbox_ids=mailbox_ids,
                parsed=parsed,
                blob=blob,
                keywords=serialize_keywords(keywords),
                received_at=received_at,
                enforce_quota=enforce_quota,
                forms=forms or derived_forms(parsed),
            )
    finally:
        cursor.close()


def _insert_email(
    ctx: WriteContext,
    cursor: Any,
    dialect: str,
    *,
    account_id: int,
    mailbox_ids: Sequence[int],
    parsed: ParsedMessage,
    blob: BlobRef,
    keywords: str,
    received_at: int | None,
    enforce_quota: bool,
    forms: DerivedForms,
) -> StoredEmail:
    # The quota check comes before anything is written, so a refusal leaves the
    # transaction untouched and other recipients of the same delivery go on. On
    # PostgreSQL two concurrent deliveries may both pass it: a quota is exceeded by at
    # most the messages in flight, as with Dovecot. The statement takes the account's
    # row lock on PostgreSQL, first, as WriteContext.next_modseq does.
    known_modseq = ctx.known_modseq(account_id)
    reserve = _RESERVE if known_modseq is not None else _RESERVE_AND_BUMP
    cursor.execute(
        reserve.text(dialect),
        (blob.size, account_id, not enforce_quota, blob.size),
    )
    reserved = cursor.fetchone()
    if reserved is None:
        cursor.execute(_QUOTA.text(dialect), (account_id,))
        if cursor.fetchone() is None:
            raise Refused(Reason.NOT_FOUND, "no such account")
        raise Refused(Reason.OVER_QUOTA, "mailbox is over quota")
    modseq = int(reserved[0])
    if known_modseq is None:
        ctx.bumped_modseq(account_id, modseq)
    cursor.execute(_UPSERT_BLOB.text(dialect), (blob.hash, blob.size))
    if blob.inline is not None:
        cursor.execute(_INSERT_INLINE.text(dialect), (blob.hash, blob.inline))
    # One query answers both questions about Message-IDs: the thread of any message this
    # one refers to (References, In-Reply-To) or of an earlier copy with the same
    # Message-ID, and which of its own Message-IDs are already known.
    own_ids = [i for i in dict.fromkeys(parsed.message_id) if i and len(i) <= 998]
    related = [
        i
        for i in dict.fromkeys([*parsed.references, *parsed.in_reply_to, *parsed.message_id])
        if i and len(i) <= 998
    ]
    known = _known_message_ids(cursor, dialect, account_id, related) if related else []
    existing_thread = known[0][1] if known else None
    cursor.execute(
        _INSERT_EMAIL[dialect],
        (
            existing_thread,
            account_id,
            blob.hash,
            blob.size,
            received_at if received_at is not None else now_us(),
            int(parsed.sent_at.timestamp() * 1_000_000) if parsed.sent_at else None,
            keywords,
            modseq,
            modseq,
            parsed.subject,
            parsed.thread_subject,
            _sort_address(parsed.from_),
            _sort_address(parsed.to),
            _sort_address(parsed.cc),
            parsed.message_id[0] if parsed.message_id else None,
            parsed.preview,
            bool(parsed.has_attachment),
            parsed.envelope,
            parsed.body_structure,
            parsed.body,
            parsed.header_end,
            forms.structure,
        ),
    )
    email_id = int(cursor.fetchone()[0])
    thread_id = existing_thread or email_id
    known_ids = {message_id for message_id, _thread in known}
    new = [i for i in own_ids if i not in known_ids]
    if new:
        cursor.executemany(
            _INSERT_MESSAGE_ID.text(dialect), [(account_id, i, thread_id) for i in new]
        )
    uids: dict[int, int] = {}
    journal_rows: list[dict[str, object]] = [
        {"kind": "Email", "object_id": email_id, "change": "created"},
        {
            "kind": "Thread",
            "object_id": thread_id,
            "change": "updated" if existing_thread else "created",
        },
    ]
    counts = _new_email_counts(keywords, dialect)
    allocate = _ALLOCATE_UID_NEW_THREAD.text(dialect)
    for mailbox_id in dict.fromkeys(mailbox_ids):
        if existing_thread is None:
            cursor.execute(
                allocate, (modseq, *counts[1:4], blob.size, counts[2], mailbox_id, account_id)
            )
            row = cursor.fetchone()
            if row is None:
                raise Refused(Reason.NOT_FOUND, "no such mailbox")
            uid = int(row[0]) - 1
        else:
            uid = _next_uid(cursor, dialect, account_id, mailbox_id, modseq)
        uids[mailbox_id] = uid
        journal_rows.append(
            {
                "kind": "MailboxMessage",
                "object_id": uid,
                "container_id": mailbox_id,
                "change": "created",
            }
        )
        journal_rows.append({"kind": "Mailbox", "object_id": mailbox_id, "change": "updated"})
    cursor.executemany(
        _INSERT_MEMBERSHIP.text(dialect),
        [(m, u, email_id, modseq, keywords) for m, u in uids.items()],
    )
    if keywords:
        _note_keywords(cursor, dialect, [(m, keywords) for m in uids])
    if existing_thread is None:
        # The new thread's rows, as refresh_thread_counts would write them.
        cursor.executemany(
            _INSERT_MAILBOX_THREAD.text(dialect),
            [(m, thread_id, *counts, blob.size, counts[2]) for m in uids],
        )
    else:
        refresh_thread_counts(ctx.conn, [thread_id], account_id=account_id)
    search.index_email(ctx, email_id=email_id, account_id=account_id, document=forms.search)
    ctx.journal_many(account_id, journal_rows)
    return StoredEmail(email_id=email_id, thread_id=thread_id, modseq=modseq, uids=uids)


def _new_email_counts(keywords: str, dialect: str) -> tuple[int, int, int, int]:
    """(emails, unseen, unread, deleted) of one email with ``keywords``, as the counter
    statements count them: ``(' ' || keywords || ' ') LIKE '% $seen %'`` is a substring
    test, case-insensitive for ASCII letters on SQLite and case-sensitive on PostgreSQL."""
    padded = f" {keywords} "
    if dialect == "sqlite":
        padded = padded.encode("utf-8").lower().decode("utf-8")  # ASCII letters only
    unseen = " $seen " not in padded
    unread = unseen and " $draft " not in padded
    return 1, int(unseen), int(unread), int(" $deleted " in padded)


def _allocate_uid(conn: Connection, account_id: int, mailbox_id: int, modseq: int) -> int:
    """Take the mailbox's next UID; the UPDATE locks the mailbox row until commit, so
    concurrent writers on PostgreSQL can never get the same UID."""
    cursor = driver_cursor(conn)
    try:
        return _next_uid(cursor, conn.dialect.name, account_id, mailbox_id, modseq)
    finally:
        cursor.close()


def _next_uid(cursor: Any, dialect: str, account_id: int, mailbox_id: int, modseq: int) -> int:
    cursor.execute(_ALLOCATE_UID.text(dialect), (modseq, mailbox_id, account_id))
    row = cursor.fetchone()
    if row is None:
        raise Refused(Reason.NOT_FOUND, "no such mailbox")
    return int(row[0]) - 1


def list_messages(conn: Connection, mailbox_id: int) -> list[MessageView]:
    """UID, modseq, email id and keywords of every message, in UID order: one query,
    the data a selected IMAP mailbox keeps in memory."""
    mm = schema.mailbox_messages
    # One table, one index range (membership keywords mirror emails.keywords).
    rows = conn.execute(
        sa.select(mm.c.uid, mm.c.modseq, mm.c.email_id, mm.c.keywords)
        .where(mm.c.mailbox_id == mailbox_id)
        .order_by(mm.c.uid)
    )
    return [
        MessageView(uid, modseq, email_id, keywords) for uid, modseq, email_id, keywords in rows
    ]


@dataclass(frozen=True, slots=True)
class MailboxColumns:
    """A mailbox's messages as parallel columns in UID order, and the keywords in use:
    what a selected IMAP mailbox keeps (no per-message object, no per-message string
    for a 100,000-message SELECT)."""

    uids: array[int]
    modseqs: array[int]
    keywords_in_use: frozenset[str]


_MAILBOX_UIDS = DriverStatement(
    "SELECT uid, modseq FROM mailbox_messages WHERE mailbox_id = ? ORDER BY uid"
)
_MAILBOX_KEYWORDS = DriverStatement("SELECT keyword FROM mailbox_keywords WHERE mailbox_id = ?")


@dataclass(frozen=True, slots=True)
class KnownColumns:
    """A mailbox's UID and modseq columns as a caller already holds them, read when the
    account was at modseq ``modseq`` (never changed in place: they may be shared)."""

    modseq: int
    uids: array[int]
    modseqs: array[int]
    #: The caller knows ``modseq`` is the account's modseq in this very transaction:
    #: nothing to bring forward, not even the account row to read.
    current: bool = False


#: Journal rows past which patching known columns costs more than reading them again
#: (each touched UID is one more row to read and one more array update).
PATCH_LIMIT = 2000

_MAILBOX_JOURNAL_UIDS = DriverStatement(
    "SELECT object_id FROM journal WHERE account_id = ? AND kind = 'MailboxMessage'"
    " AND container_id = ? AND modseq > ? LIMIT ?"
)
_ACCOUNT_MODSEQ = DriverStatement("SELECT modseq, journal_floor FROM accounts WHERE id = ?")


def mailbox_columns(
    conn: Connection,
    mailbox_id: int,
    *,
    known: tuple[array[int], array[int]] | KnownColumns | None = None,
    account_id: int | None = None,
) -> MailboxColumns:
    """UID and modseq of every message (one index-only range scan of one narrow table)
    and the mailbox's keywords (``mailbox_keywords``, kept at write time: no scan of the
    rows' keywords), for SELECT. ``known``: UIDs and modseqs the caller already holds,
    either as a tuple known to be current (same account modseq in this transaction) or
    as :class:`KnownColumns` read at an earlier account modseq, which (with
    ``account_id``) are brought up to date from the journal when few messages changed
    since (:func:`patched_columns`); only the keywords are read then."""
    dialect = conn.dialect.name
    held: tuple[array[int], array[int]] | None = None
    if isinstance(known, KnownColumns):
        if known.current:
            held = known.uids, known.modseqs
        elif account_id is not None:
            held = patched_columns(conn, account_id, mailbox_id, known)
    else:
        held = known
    cursor = driver_cursor(conn)
    try:
        rows: list[tuple[int, int]] = []
        if held is None:
            cursor.execute(_MAILBOX_UIDS.text(dialect), (mailbox_id,))
            rows = cursor.fetchall()
        cursor.execute(_MAILBOX_KEYWORDS.text(dialect), (mailbox_id,))
        in_use = frozenset(str(row[0]) for row in cursor.fetchall())
    finally:
        cursor.close()
    if held is not None:
        return MailboxColumns(held[0], held[1], in_use)
    if not rows:
        return MailboxColumns(array("I"), array("Q"), in_use)
    # Two comprehensions: zip(*rows) would be a call with 100,000 arguments, four times
    # slower (200 ms of CPU for 100,000 rows, measured).
    return MailboxColumns(
        array("I", [row[0] for row in rows]), array("Q", [row[1] for row in rows]), in_use
    )


def patched_columns(
    conn: Connection, account_id: int, mailbox_id: int, known: KnownColumns
) -> tuple[array[int], array[int]] | None:
    """``known`` brought to the account's current modseq, or None when the mailbox must
    be read again (the journal no longer reaches back to ``known.modseq``, or more than
    :data:`PATCH_LIMIT` changes of the mailbox happened since).

    The journal only says which UIDs of the mailbox changed after ``known.modseq``
    (``MailboxMessage`` rows: created, updated, destroyed); their rows in
    ``mailbox_messages`` say what they are now. A UID with a row is added or gets its
    modseq; a UID without one is removed. So the result equals a full read in the same
    transaction whatever the order or kind of the changes, and the held arrays are
    copied, never changed (other views share them)."""
    dialect = conn.dialect.name
    cursor = driver_cursor(conn)
    try:
        cursor.execute(_ACCOUNT_MODSEQ.text(dialect), (account_id,))
        account = cursor.fetchone()
        if account is None:
            return None
        current, floor = int(account[0]), int(account[1])
        if known.modseq == current:
            return known.uids, known.modseqs
        if not floor <= known.modseq < current:
            return None  # compacted away, or held columns newer than this transaction
        cursor.execute(
            _MAILBOX_JOURNAL_UIDS.text(dialect),
            (account_id, mailbox_id, known.modseq, PATCH_LIMIT + 1),
        )
        journal_rows = cursor.fetchall()
    finally:
        cursor.close()
    if len(journal_rows) > PATCH_LIMIT:
        return None
    if not journal_rows:
        return known.uids, known.modseqs
    touched = sorted({int(row[0]) for row in journal_rows})
    rows = _membership_rows(conn, "mm.uid, mm.modseq", mailbox_id, touched, join=False)
    present = {int(uid): int(modseq) for uid, modseq in rows}
    return patch_columns(known.uids, known.modseqs, touched, present)


def patch_columns(
    uids: array[int], modseqs: array[int], touched: Sequence[int], present: dict[int, int]
) -> tuple[array[int], array[int]]:
    """New UID and modseq columns: ``uids``/``modseqs`` (ascending UIDs) where each UID
    of ``touched`` now has the modseq ``present`` gives it, or is absent when
    ``present`` has none. The inputs are not changed."""
    new_uids = array("I", uids)
    new_modseqs = array("Q", modseqs)
    removed: list[int] = []
    added: list[int] = []
    for uid in sorted(set(touched)):
        i = bisect_left(new_uids, uid)
        here = i < len(new_uids) and new_uids[i] == uid
        modseq = present.get(uid)
        if modseq is None:
            if here:
                removed.append(i)
        elif here:
            new_modseqs[i] = modseq
        else:
            added.append(uid)
    if removed:
        # Slices between the removed positions: C copies, not a Python loop per message.
        kept_uids, kept_modseqs = array("I"), array("Q")
        start = 0
        for i in removed:
            kept_uids.extend(new_uids[start:i])
            kept_modseqs.extend(new_modseqs[start:i])
            start = i + 1
        kept_uids.extend(new_uids[start:])
        kept_modseqs.extend(new_modseqs[start:])
        new_uids, new_modseqs = kept_uids, kept_modseqs
    for uid in added:
        if not new_uids or uid > new_uids[-1]:
            new_uids.append(uid)
            new_modseqs.append(present[uid])
        else:  # a UID below the last one: only if held columns missed a commit
            i = bisect_left(new_uids, uid)
            new_uids.insert(i, uid)
            new_modseqs.insert(i, present[uid])
    return new_uids, new_modseqs


def _note_keywords(cursor: Any, dialect: str, sets: Iterable[tuple[int, str]]) -> None:
    """Add the words of each (mailbox id, serialized keywords) to the mailbox's keyword
    list (``schema.mailbox_keywords``)."""
    pairs = sorted({(m, word) for m, text in sets for word in text.split()})
    if pairs:
        cursor.executemany(_NOTE_KEYWORD.text(dialect), pairs)


def note_mailbox_keywords(conn: Connection, mailbox_id: int) -> None:
    """Rebuild a mailbox's keyword list from its messages (for a fill that wrote
    ``mailbox_messages`` directly, such as ``bench.imap``'s)."""
    mm = schema.mailbox_messages
    sets = conn.execute(
        sa.select(mm.c.keywords).where(mm.c.mailbox_id == mailbox_id).distinct()
    ).scalars()
    cursor = driver_cursor(conn)
    try:
        _note_keywords(cursor, conn.dialect.name, [(mailbox_id, text) for text in sets])
    finally:
        cursor.close()


def set_keywords(
    ctx: WriteContext,
    *,
    account_id: int,
    email_ids: Iterable[int],
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    replace: Iterable[str] | None = None,
) -> list[KeywordChange]:
    """Change keywords of the account's emails; returns only the emails that changed.

    Bumps the modseq of the email and of each of its memberships, and journals the
    changes (a ``Mailbox`` update too when ``$seen`` changed, since unread counts did).
    """
    conn = ctx.conn
    e, mm = schema.emails, schema.mailbox_messages
    ids = list(dict.fromkeys(email_ids))
    if not ids:
        return []
    rows = conn.execute(
        sa.select(e.c.id, e.c.keywords, e.c.thread_id).where(
            e.c.account_id == account_id, e.c.id.in_(ids)
        )
    ).all()
    thread_of = {int(email_id): int(thread_id) for email_id, _, thread_id in rows}
    add_set, remove_set = set(add), set(remove)
    replace_set = set(replace) if replace is not None else None
    changed: list[tuple[int, frozenset[str], bool]] = []
    for email_id, text, _thread in rows:
        current = parse_keywords(text)
        new = (
            frozenset(replace_set) if replace_set is not None else (current | add_set) - remove_set
        )
        if new != current:
            changed.append((email_id, new, ("$seen" in new) != ("$seen" in current)))
    if not changed:
        return []
    modseq = ctx.next_modseq(account_id)
    for email_id, new, _ in changed:
        text = serialize_keywords(new)
        conn.execute(e.update().where(e.c.id == email_id).values(keywords=text, modseq=modseq))
        conn.execute(
            mm.update().where(mm.c.email_id == email_id).values(keywords=text, modseq=modseq)
        )
    changed_ids = [email_id for email_id, _, _ in changed]
    memberships = conn.execute(
        sa.select(mm.c.mailbox_id, mm.c.uid, mm.c.email_id).where(mm.c.email_id.in_(changed_ids))
    ).all()
    new_text = {email_id: serialize_keywords(new) for email_id, new, _ in changed}
    cursor = driver_cursor(conn)
    try:
        _note_keywords(
            cursor, conn.dialect.name, [(m, new_text[email_id]) for m, _, email_id in memberships]
        )
    finally:
        cursor.close()
    seen_changed = {email_id for email_id, _, flip in changed if flip}
    journal_rows: list[dict[str, object]] = [
        {"kind": "Email", "object_id": email_id, "change": "updated"} for email_id in changed_ids
    ]
    touched_mailboxes: set[int] = set()
    for mailbox_id, uid, email_id in memberships:
        journal_rows.append(
            {
                "kind": "MailboxMessage",
                "object_id": uid,
                "container_id": mailbox_id,
                "change": "updated",
            }
        )
        touched_mailboxes.add(mailbox_id)
        if email_id in seen_changed:
            journal_rows.append({"kind": "Mailbox", "object_id": mailbox_id, "change": "updated"})
    _touch_mailboxes(conn, touched_mailboxes, modseq)
    refresh_thread_counts(
        conn, {thread_of[email_id] for email_id in changed_ids}, account_id=account_id
    )
    ctx.journal_many(account_id, _dedupe(journal_rows))
    return [KeywordChange(email_id, new, modseq) for email_id, new, _ in changed]


def remove_from_mailbox(
    ctx: WriteContext, *, account_id: int, mailbox_id: int, uids: Iterable[int]
) -> list[int]:
    """Remove messages from a mailbox (IMAP EXPUNGE, MOVE's source side).

    An email left in no mailbox is destroyed: its quota is released, its blob loses a
    reference, it leaves the search index. Returns the UIDs actually removed.
    """
    conn = ctx.conn
    mm, e = schema.mailbox_messages, schema.emails
    uid_list = sorted(set(uids))
    if not uid_list:
        return []
    owner = conn.execute(
        sa.select(schema.mailboxes.c.account_id).where(schema.mailboxes.c.id == mailbox_id)
    ).scalar()
    if owner != account_id:
        raise Refused(Reason.NOT_FOUND, "no such mailbox")
    modseq = ctx.next_modseq(account_id)
    removed: list[tuple[int, int]] = []
    for chunk_start in range(0, len(uid_list), 500):
        chunk = uid_list[chunk_start : chunk_start + 500]
        removed.extend(
            conn.execute(
                sa.select(mm.c.uid, mm.c.email_id).where(
                    mm.c.mailbox_id == mailbox_id, mm.c.uid.in_(chunk)
                )
            ).all()
        )
    if not removed:
        return []
    removed_uids = [uid for uid, _ in removed]
    email_ids = [email_id for _, email_id in removed]
    for chunk_start in range(0, len(removed_uids), 500):
        conn.execute(
            mm.delete().where(
                mm.c.mailbox_id == mailbox_id,
                mm.c.uid.in_(removed_uids[chunk_start : chunk_start + 500]),
            )
        )
    still_filed = set(
        conn.execute(
            sa.select(mm.c.email_id).where(mm.c.email_id.in_(email_ids)).distinct()
        ).scalars()
    )
    orphans = [email_id for email_id in email_ids if email_id not in still_filed]
    journal_rows: list[dict[str, object]] = [
        {
            "kind": "MailboxMessage",
            "object_id": uid,
            "container_id": mailbox_id,
            "change": "destroyed",
        }
        for uid in removed_uids
    ]
    journal_rows.append({"kind": "Mailbox", "object_id": mailbox_id, "change": "updated"})
    threads = dict(
        conn.execute(sa.select(e.c.id, e.c.thread_id).where(e.c.id.in_(email_ids))).all()
    )
    orphan_set = set(orphans)
    for email_id in email_ids:
        journal_rows.append(
            {
                "kind": "Email",
                "object_id": email_id,
                "change": "destroyed" if email_id in orphan_set else "updated",
            }
        )
    if orphans:
        _destroy_emails(conn, account_id, orphans)
    thread_ids = set(threads.values())
    refresh_thread_counts(conn, thread_ids, account_id=account_id)
    living_threads = set(
        conn.execute(
            sa.select(e.c.thread_id)
            .where(e.c.account_id == account_id, e.c.thread_id.in_(thread_ids))
            .distinct()
        ).scalars()
    )
    for thread_id in thread_ids:
        change = "updated" if thread_id in living_threads else "destroyed"
        journal_rows.append({"kind": "Thread", "object_id": thread_id, "change": change})
    # Still-filed emails changed (their mailboxIds), so their modseq moves too.
    filed = [email_id for email_id in email_ids if email_id in still_filed]
    if filed:
        conn.execute(e.update().where(e.c.id.in_(filed)).values(modseq=modseq))
    _touch_mailboxes(conn, {mailbox_id}, modseq)
    ctx.journal_many(account_id, _dedupe(journal_rows))
    return removed_uids


def keep_email_ids_unique(conn: Connection) -> None:
    """Before emails are deleted (SQLite): raise the id floor to the largest id given so
    far, so that no later email gets a destroyed one's id (migration 0025; PostgreSQL's
    sequence never goes back)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "UPDATE email_id_floor SET value ="
            " max(value, COALESCE((SELECT MAX(id) FROM emails), 0))"
        )


def _destroy_emails(conn: Connection, account_id: int, email_ids: list[int]) -> None:
    e = schema.emails
    keep_email_ids_unique(conn)
    rows = conn.execute(sa.select(e.c.blob_hash, e.c.size).where(e.c.id.in_(email_ids))).all()
    freed = sum(size for _, size in rows)
    search.remove_emails(conn, email_ids)
    conn.execute(e.delete().where(e.c.id.in_(email_ids)))
    conn.execute(
        schema.accounts.update()
        .where(schema.accounts.c.id == account_id)
        .values(used_bytes=schema.accounts.c.used_bytes - freed)
    )
    release_blobs(conn, [blob_hash for blob_hash, _ in rows])


def _touch_mailboxes(conn: Connection, mailbox_ids: set[int], modseq: int) -> None:
    if mailbox_ids:
        conn.execute(
            schema.mailboxes.update()
            .where(schema.mailboxes.c.id.in_(mailbox_ids))
            .values(highest_modseq=modseq)
        )


def _dedupe(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    seen: set[tuple[object, ...]] = set()
    unique = []
    for row in rows:
        key = (row["kind"], row["object_id"], row.get("container_id"), row["change"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def email_row(conn: Connection, account_id: int, email_id: int) -> dict[str, object] | None:
    row = conn.execute(
        sa.select(schema.emails).where(
            schema.emails.c.account_id == account_id, schema.emails.c.id == email_id
        )
    ).first()
    return dict(row._mapping) if row is not None else None


# -- IMAP views of a mailbox's messages ------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchRow:
    """What FETCH needs of one message, prepared at ingest (DESIGN.md "Hot paths")."""

    uid: int
    modseq: int
    email_id: int
    keywords: str
    size: int
    received_at: int
    blob_hash: str
    header_end: int
    envelope: bytes
    body_structure: bytes
    body: bytes
    structure: str | None


def _uid_ranges(uids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted UIDs as merged inclusive ranges, so ``1:*`` is one BETWEEN, not 100,000
    bound parameters."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def _range_chunks(uids: Sequence[int], size: int = 400) -> list[list[tuple[int, int]]]:
    ranges = _uid_ranges(uids)
    return [ranges[start : start + size] for start in range(0, len(ranges), size)]


def _uid_sql(ranges: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """UID ranges as SQL (a BETWEEN per span, one IN for single UIDs) with ``?``
    placeholders, and its parameters."""
    clauses = ["mm.uid BETWEEN ? AND ?" for low, high in ranges if low != high]
    params = [bound for low, high in ranges if low != high for bound in (low, high)]
    singles = [low for low, high in ranges if low == high]
    if singles:
        clauses.append(f"mm.uid IN ({', '.join('?' * len(singles))})")
        params.extend(singles)
    return " OR ".join(clauses), params


def _membership_rows(
    conn: Connection, columns: str, mailbox_id: int, uids: Sequence[int], *, join: bool
) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` of the mailbox's memberships (``mm``; with ``join``, their
    emails ``e``) whose UID is in ``uids``, in UID order, as the driver's tuples.

    These run once per FETCH, often for one message (``UID FETCH n BODY.PEEK[]``):
    building and compiling a Core statement cost more than SQLite's work there
    (DESIGN.md "Hot paths"), so the text is written directly, in one dialect-neutral
    form whose only variable part is the number of placeholders."""
    dialect = conn.dialect.name
    source = (
        "mailbox_messages mm JOIN emails e ON e.id = mm.email_id"
        if join
        else ("mailbox_messages mm")
    )
    result: list[tuple[Any, ...]] = []
    cursor = driver_cursor(conn)
    try:
        for chunk in _range_chunks(uids):
            condition, params = _uid_sql(chunk)
            text = (
                f"SELECT {columns} FROM {source} WHERE mm.mailbox_id = ? AND ({condition})"
                " ORDER BY mm.uid"
            )
            if dialect != "sqlite":
                text = text.replace("?", "%s")
            cursor.execute(text, (mailbox_id, *params))
            result.extend(cursor.fetchall())
    finally:
        cursor.close()
    return result


_FETCH_COLUMNS = (
    "mm.uid, mm.modseq, mm.email_id, e.keywords, e.size, e.received_at, e.blob_hash,"
    " e.header_end, e.envelope, e.body_structure, e.body"
)


def fetch_rows(
    conn: Connection, mailbox_id: int, uids: Sequence[int], *, with_structure: bool = False
) -> list[FetchRow]:
    """The stored FETCH data of the given UIDs, in UID order: one query per 400 UID
    ranges (a whole mailbox is one range)."""
    columns = _FETCH_COLUMNS + (", e.structure" if with_structure else ", NULL")
    rows = _membership_rows(conn, columns, mailbox_id, uids, join=True)
    return [FetchRow(*row) for row in rows]


#: Stored FETCH data by IMAP item name (ENVELOPE, BODYSTRUCTURE... rendered at ingest):
#: the column of ``mm`` (mailbox_messages) or ``e`` (emails) that holds it.
STORED_ITEMS = {
    "FLAGS": "mm.keywords",
    "MODSEQ": "mm.modseq",
    "INTERNALDATE": "e.received_at",
    "RFC822.SIZE": "e.size",
    "ENVELOPE": "e.envelope",
    "BODY": "e.body",
    "BODYSTRUCTURE": "e.body_structure",
}


def stored_items(
    conn: Connection, mailbox_id: int, uids: Sequence[int], names: Sequence[str]
) -> list[tuple[Any, ...]]:
    """(UID, *values of ``names``) per message in UID order: ``FETCH 1:* (FLAGS
    ENVELOPE)`` is this one query joining stored bytes (DESIGN.md "Hot paths")."""
    columns = ", ".join(["mm.uid", *(STORED_ITEMS[name] for name in names)])
    return _membership_rows(conn, columns, mailbox_id, uids, join=True)


def message_views(conn: Connection, mailbox_id: int, uids: Sequence[int]) -> list[MessageView]:
    """UID, modseq, email id and keywords of the given UIDs still in the mailbox."""
    rows = _membership_rows(
        conn, "mm.uid, mm.modseq, mm.email_id, mm.keywords", mailbox_id, uids, join=False
    )
    return [MessageView(*row) for row in rows]


def keywords_of(conn: Connection, mailbox_id: int, uids: Sequence[int]) -> dict[int, str]:
    """UID -> keywords of the given UIDs still in the mailbox (FETCH FLAGS), as plain
    driver rows: this is read for every message of a ``FETCH 1:* FLAGS``."""
    rows = _membership_rows(conn, "mm.uid, mm.keywords", mailbox_id, uids, join=False)
    return {int(uid): str(keywords) for uid, keywords in rows}


def copy_to_mailbox(
    ctx: WriteContext, *, account_id: int, mailbox_id: int, email_ids: Sequence[int]
) -> list[int]:
    """File existing emails in one more mailbox (IMAP COPY/MOVE, JMAP mailboxIds);
    returns the new UIDs in the order of ``email_ids``.

    An email already in the target is duplicated (a new email row on the same blob):
    IMAP COPY always creates a new message (RFC 9051 §6.4.7), while an email is in a
    mailbox at most once. The duplicate counts against the quota like a new message.
    """
    conn = ctx.conn
    mm, e = schema.mailbox_messages, schema.emails
    if not email_ids:
        return []
    modseq = ctx.next_modseq(account_id)
    already = set(
        conn.execute(
            sa.select(mm.c.email_id).where(
                mm.c.mailbox_id == mailbox_id, mm.c.email_id.in_(list(email_ids))
            )
        ).scalars()
    )
    targets: list[int] = []
    journal_rows: list[dict[str, object]] = []
    for email_id in email_ids:
        if email_id in already:
            email_id = _duplicate_email(conn, account_id, email_id, modseq)
            journal_rows.append({"kind": "Email", "object_id": email_id, "change": "created"})
        else:
            journal_rows.append({"kind": "Email", "object_id": email_id, "change": "updated"})
        already.add(email_id)
        targets.append(email_id)
    uids = []
    for _ in targets:
        uid = _allocate_uid(conn, account_id, mailbox_id, modseq)
        uids.append(uid)
        journal_rows.append(
            {
                "kind": "MailboxMessage",
                "object_id": uid,
                "container_id": mailbox_id,
                "change": "created",
            }
        )
    keyword_of: dict[int, str] = dict(
        conn.execute(sa.select(e.c.id, e.c.keywords).where(e.c.id.in_(targets))).all()
    )
    conn.execute(
        mm.insert(),
        [
            {
                "mailbox_id": mailbox_id,
                "uid": uid,
                "email_id": email_id,
                "modseq": modseq,
                "keywords": keyword_of.get(email_id, ""),
            }
            for uid, email_id in zip(uids, targets, strict=True)
        ],
    )
    cursor = driver_cursor(conn)
    try:
        _note_keywords(cursor, conn.dialect.name, [(mailbox_id, t) for t in keyword_of.values()])
    finally:
        cursor.close()
    conn.execute(e.update().where(e.c.id.in_(targets)).values(modseq=modseq))
    refresh_thread_counts(
        conn,
        conn.execute(sa.select(e.c.thread_id).where(e.c.id.in_(targets)).distinct()).scalars(),
        account_id=account_id,
    )
    journal_rows.append({"kind": "Mailbox", "object_id": mailbox_id, "change": "updated"})
    ctx.journal_many(account_id, _dedupe(journal_rows))
    return uids


def _duplicate_email(conn: Connection, account_id: int, email_id: int, modseq: int) -> int:
    e = schema.emails
    row = conn.execute(sa.select(e).where(e.c.id == email_id, e.c.account_id == account_id)).one()
    values = dict(row._mapping)
    del values["id"]
    values.update(modseq=modseq, created_modseq=modseq)
    new_id = int(conn.execute(e.insert().values(**values).returning(e.c.id)).scalar_one())
    reference_blob(conn, BlobRef(str(values["blob_hash"]), int(values["size"])))
    conn.execute(
        schema.accounts.update()
        .where(schema.accounts.c.id == account_id)
        .values(used_bytes=schema.accounts.c.used_bytes + values["size"])
    )
    return new_id


def account_quota(conn: Connection, account_id: int) -> tuple[int, int | None]:
    """(used bytes, quota bytes or None) of an account (RFC 9208 STORAGE)."""
    row = conn.execute(
        sa.select(schema.accounts.c.used_bytes, schema.accounts.c.quota_bytes).where(
            schema.accounts.c.id == account_id
        )
    ).one()
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


def _has(keywords: sa.ColumnElement[str], word: str) -> sa.ColumnElement[bool]:
    """Keyword test on the space-separated ``keywords`` column."""
    return (sa.literal(" ") + keywords + sa.literal(" ")).like(f"% {word} %")


def _as_int(flag: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.case((flag, 1), else_=0)


_COUNT_FIELDS = ("emails", "unseen", "unread", "deleted", "size")


# The counter statements of :func:`refresh_thread_counts` as driver SQL (every delivery
# runs them; as Core statements with an expanding IN they were compiled on each call and
# cost 1.8 ms of the one SQLite writer thread a delivery, more than SQLite running them).
_UNSEEN_SQL = "(' ' || e.keywords || ' ') NOT LIKE '% $seen %'"
_UNREAD_SQL = _UNSEEN_SQL + " AND (' ' || e.keywords || ' ') NOT LIKE '% $draft %'"
_DELETED_SQL = "(' ' || e.keywords || ' ') LIKE '% $deleted %'"


@functools.lru_cache(maxsize=64)
def _thread_count_statements(count: int) -> dict[str, DriverStatement]:
    """The statements for ``count`` thread ids (``IN (?, ...)``), built once per count."""
    threads = "(" + ", ".join("?" * count) + ")"
    return {
        "old": DriverStatement(
            "SELECT mailbox_id, thread_id, emails, unseen, unread, deleted, size, thread_unread"
            f" FROM mailbox_threads WHERE thread_id IN {threads}"
        ),
        "thread_unread": DriverStatement(
            f"SELECT e.thread_id, SUM(CASE WHEN {_UNREAD_SQL} THEN 1 ELSE 0 END)"
            f" FROM emails AS e WHERE e.account_id = ? AND e.thread_id IN {threads}"
            " GROUP BY e.thread_id"
        ),
        "new": DriverStatement(
            "SELECT mm.mailbox_id, e.thread_id, COUNT(*),"
            f" SUM(CASE WHEN {_UNSEEN_SQL} THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {_UNREAD_SQL} THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {_DELETED_SQL} THEN 1 ELSE 0 END),"
            " SUM(e.size)"
            " FROM emails AS e JOIN mailbox_messages AS mm ON mm.email_id = e.id"
            f" WHERE e.account_id = ? AND e.thread_id IN {threads}"
            " GROUP BY mm.mailbox_id, e.thread_id"
        ),
        "delete": DriverStatement(f"DELETE FROM mailbox_threads WHERE thread_id IN {threads}"),
    }


_INSERT_MAILBOX_THREAD = DriverStatement(
    "INSERT INTO mailbox_threads"
    " (mailbox_id, thread_id, emails, unseen, unread, deleted, size, thread_unread)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE_MAILBOX_COUNTERS = DriverStatement(
    "UPDATE mailboxes SET total_emails = total_emails + ?, unseen_emails = unseen_emails + ?,"
    " unread_emails = unread_emails + ?, deleted_emails = deleted_emails + ?,"
    " total_size = total_size + ?, total_threads = total_threads + ?,"
    " unread_threads = unread_threads + ? WHERE id = ?"
)


def refresh_thread_counts(conn: Connection, thread_ids: Iterable[int], *, account_id: int) -> None:
    """Bring ``mailbox_threads`` and the mailbox counter columns up to date for
    ``thread_ids`` after a write changed their emails' memberships or keywords.

    Every write that changes ``mailbox_messages``, ``emails.keywords`` or
    ``emails.thread_id`` calls this in its own transaction with the threads it touched:
    their rows are recounted from the (small) threads themselves, and each mailbox's
    columns move by the difference, so STATUS and Mailbox/get read counters instead of
    scanning (RFC 8621 §2 counts; RFC 9051 §6.3.11 STATUS). Idempotent, so a re-run write
    function (SQLite group commit) is safe.

    ``account_id`` owns the threads (a thread's emails are all of one account): the
    recounts go through the (account_id, thread_id) index with it; by thread id alone,
    SQLite scanned the account's whole mailbox_messages on every delivery.
    """
    dialect = conn.dialect.name
    threads = sorted(set(thread_ids))
    cursor = driver_cursor(conn)
    try:
        for start in range(0, len(threads), 500):
            chunk = threads[start : start + 500]
            statements = _thread_count_statements(len(chunk))
            cursor.execute(statements["old"].text(dialect), chunk)
            old: dict[tuple[int, int], tuple[int, ...]] = {
                (int(row[0]), int(row[1])): tuple(int(v) for v in row[2:])
                for row in cursor.fetchall()
            }
            cursor.execute(statements["thread_unread"].text(dialect), [account_id, *chunk])
            thread_unread = {int(t): int(n or 0) for t, n in cursor.fetchall()}
            cursor.execute(statements["new"].text(dialect), [account_id, *chunk])
            new: dict[tuple[int, int], tuple[int, ...]] = {}
            for row in cursor.fetchall():
                key = (int(row[0]), int(row[1]))
                new[key] = (*(int(v or 0) for v in row[2:]), thread_unread.get(key[1], 0))
            deltas: dict[int, list[int]] = {}
            for key in old.keys() | new.keys():
                before, after = old.get(key), new.get(key)
                if before == after:
                    continue
                delta = deltas.setdefault(key[0], [0] * 7)
                for i in range(5):
                    delta[i] += (after[i] if after else 0) - (before[i] if before else 0)
                delta[5] += (after is not None) - (before is not None)
                delta[6] += (after is not None and after[5] > 0) - (
                    before is not None and before[5] > 0
                )
            if old.keys() - new.keys() or any(old.get(k) != v for k, v in new.items()):
                cursor.execute(statements["delete"].text(dialect), chunk)
                if new:
                    cursor.executemany(
                        _INSERT_MAILBOX_THREAD.text(dialect),
                        [(m, t, *v) for (m, t), v in new.items()],
                    )
            moves = [(*d, mailbox_id) for mailbox_id, d in deltas.items() if any(d)]
            if moves:
                cursor.executemany(_MOVE_MAILBOX_COUNTERS.text(dialect), moves)
    finally:
        cursor.close()


def rebuild_counters(conn: Connection, account_id: int) -> None:
    """Recompute the account's mailbox counters by scanning its mail, for bulk loaders
    that fill ``mailbox_messages`` directly (the benchmarks' synthetic fill); every write
    path of the store keeps them with :func:`refresh_thread_counts` instead."""
    mt, mm, e, mb = schema.mailbox_threads, schema.mailbox_messages, schema.emails, schema.mailboxes
    own = sa.select(mb.c.id).where(mb.c.account_id == account_id)
    conn.execute(mt.delete().where(mt.c.mailbox_id.in_(own)))
    unread = ~_has(e.c.keywords, "$seen") & ~_has(e.c.keywords, "$draft")
    thread_unread = (
        sa.select(e.c.thread_id, sa.func.sum(_as_int(unread)).label("n"))
        .where(e.c.account_id == account_id)
        .group_by(e.c.thread_id)
        .subquery()
    )
    per_pair = (
        sa.select(
            mm.c.mailbox_id,
            e.c.thread_id,
            sa.func.count(),
            sa.func.sum(_as_int(~_has(e.c.keywords, "$seen"))),
            sa.func.sum(_as_int(unread)),
            sa.func.sum(_as_int(_has(e.c.keywords, "$deleted"))),
            sa.func.sum(e.c.size),
            sa.func.max(thread_unread.c.n),
        )
        .join(mm, mm.c.email_id == e.c.id)
        .join(thread_unread, thread_unread.c.thread_id == e.c.thread_id)
        .where(e.c.account_id == account_id)
        .group_by(mm.c.mailbox_id, e.c.thread_id)
    )
    conn.execute(
        mt.insert().from_select(
            ["mailbox_id", "thread_id", *_COUNT_FIELDS, "thread_unread"], per_pair
        )
    )

    def total(value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(
            sa.select(value).where(mt.c.mailbox_id == mb.c.id).scalar_subquery(), 0
        )

    conn.execute(
        mb.update()
        .where(mb.c.account_id == account_id)
        .values(
            total_emails=total(sa.func.sum(mt.c.emails)),
            unseen_emails=total(sa.func.sum(mt.c.unseen)),
            unread_emails=total(sa.func.sum(mt.c.unread)),
            deleted_emails=total(sa.func.sum(mt.c.deleted)),
            total_size=total(sa.func.sum(mt.c.size)),
            total_threads=total(sa.func.count()),
            unread_threads=total(sa.func.sum(_as_int(mt.c.thread_unread > 0))),
        )
    )
