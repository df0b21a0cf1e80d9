"""The SQL behind message search, SORT and THREAD (the rules live in ``mail/search.py``).

One query gives the candidate rows of a mailbox with the columns every search needs
(UID, email id, modseq, keywords, size, internal and sent dates); the few criteria that need
more (a subject, an address list, the ENVELOPE's date, the blob holding the header, the
full-text index) load it afterwards for the messages still in question only, in bounded
chunks: a search costs a handful of queries, never one per message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema, search

# Bound parameter lists: SQLite allows 32766 variables, but a few hundred per statement
# keeps statements small and cached plans useful on both backends.
_CHUNK = 500

#: The address lists of ``emails.structure`` that searches and sorts read.
ADDRESS_FIELDS = frozenset({"from", "sender", "replyTo", "to", "cc", "bcc"})


class MessageRow(NamedTuple):
    """One message of a mailbox as a search sees it first (times in µs since the epoch)."""

    uid: int
    email_id: int
    modseq: int
    keywords: str
    size: int
    received_at: int
    sent_at: int | None


class SortFields(NamedTuple):
    """RFC 5256 §3 sort keys stored at ingest, and the subject as written."""

    subject: str
    sort_subject: str
    sort_from: str
    sort_to: str
    sort_cc: str


class ThreadFields(NamedTuple):
    """What RFC 5256 §2.2 REFERENCES threading reads of a message."""

    message_ids: list[str]
    in_reply_to: list[str]
    references: list[str]


class BlobLocation(NamedTuple):
    blob_hash: str
    header_end: int
    size: int


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _document(conn: Connection) -> sa.ColumnElement[Any]:
    """``emails.structure`` as JSON for path lookups: SQLite's JSON functions read the
    text as it is (a CAST would give it numeric affinity); PostgreSQL needs a cast."""
    if conn.dialect.name == "sqlite":
        return sa.type_coerce(schema.emails.c.structure, sa.JSON)
    return sa.cast(schema.emails.c.structure, sa.JSON)


def mailbox_rows(
    conn: Connection,
    *,
    account_id: int,
    mailbox_id: int,
    uid_low: int | None = None,
    uid_high: int | None = None,
) -> list[MessageRow]:
    """Every message of the account's mailbox (optionally within a UID range), UID order:
    one query, the starting set of a search."""
    mm, e = schema.mailbox_messages, schema.emails
    query = (
        sa.select(
            mm.c.uid,
            mm.c.email_id,
            mm.c.modseq,
            e.c.keywords,
            e.c.size,
            e.c.received_at,
            e.c.sent_at,
        )
        .join(e, e.c.id == mm.c.email_id)
        .where(mm.c.mailbox_id == mailbox_id, e.c.account_id == account_id)
        .order_by(mm.c.uid)
    )
    if uid_low is not None:
        query = query.where(mm.c.uid >= uid_low)
    if uid_high is not None:
        query = query.where(mm.c.uid <= uid_high)
    return [MessageRow(*row) for row in conn.execute(query)]


def mailbox_snapshot(
    conn: Connection, *, account_id: int, mailbox_id: int, known_modseq: int | None
) -> tuple[int, list[MessageRow] | None]:
    """The mailbox's highest modseq and, unless it equals ``known_modseq`` (the caller
    still holds the rows of that state), all its rows: read in one transaction, so the
    rows are exactly those of the modseq returned. Every change to a message of the
    mailbox (arrival, keywords, expunge) raises ``mailboxes.highest_modseq``."""
    mb = schema.mailboxes
    modseq = conn.execute(
        sa.select(mb.c.highest_modseq).where(mb.c.id == mailbox_id, mb.c.account_id == account_id)
    ).scalar()
    if modseq is None:
        return 0, []
    if modseq == known_modseq:
        return int(modseq), None
    return int(modseq), mailbox_rows(conn, account_id=account_id, mailbox_id=mailbox_id)


def _rows_for(
    conn: Connection,
    columns: Sequence[sa.ColumnElement[Any]],
    email_ids: Sequence[int],
    mailbox_id: int | None,
) -> Iterator[Any]:
    """(email id, *columns) of each email: bounded IN lists for a few emails, one scan of
    the mailbox (filtered here) when many are asked for, so that a SORT of a large
    mailbox is one query, not one per few hundred messages."""
    e = schema.emails
    if mailbox_id is not None and len(email_ids) > _CHUNK * 4:
        wanted = set(email_ids)
        mm = schema.mailbox_messages
        query = (
            sa.select(e.c.id, *columns)
            .join(mm, mm.c.email_id == e.c.id)
            .where(mm.c.mailbox_id == mailbox_id)
        )
        yield from (row for row in conn.execute(query) if row[0] in wanted)
        return
    for chunk in _chunks(email_ids):
        yield from conn.execute(sa.select(e.c.id, *columns).where(e.c.id.in_(chunk)))


def subjects(
    conn: Connection, email_ids: Sequence[int], *, mailbox_id: int | None = None
) -> dict[int, str]:
    """The decoded Subject of each email."""
    rows = _rows_for(conn, [schema.emails.c.subject], email_ids, mailbox_id)
    return {row[0]: row[1] for row in rows}


def address_lists(
    conn: Connection, email_ids: Sequence[int], field: str, *, mailbox_id: int | None = None
) -> dict[int, list[dict[str, Any]]]:
    """One address list of ``emails.structure`` ({"name", "email"} items) per email.

    Only that list leaves the database (a JSON path on SQLite, ``->`` on PostgreSQL), not
    the whole structure document with its part map.
    """
    if field not in ADDRESS_FIELDS:
        raise ValueError(f"unknown address field {field!r}")
    rows = _rows_for(conn, [_document(conn)[field]], email_ids, mailbox_id)
    return {
        email_id: addresses if isinstance(addresses, list) else [] for email_id, addresses in rows
    }


def envelopes(
    conn: Connection, email_ids: Sequence[int], *, mailbox_id: int | None = None
) -> dict[int, bytes]:
    """The stored IMAP ENVELOPE of each email (its first item is the Date header as
    written, with its own time zone, which ``sent_at`` in UTC no longer has)."""
    rows = _rows_for(conn, [schema.emails.c.envelope], email_ids, mailbox_id)
    return {row[0]: row[1] for row in rows}


def blob_locations(
    conn: Connection, email_ids: Sequence[int], *, mailbox_id: int | None = None
) -> dict[int, BlobLocation]:
    """Where each email's content is: blob hash, end of the header block, size."""
    e = schema.emails
    rows = _rows_for(conn, [e.c.blob_hash, e.c.header_end, e.c.size], email_ids, mailbox_id)
    return {row[0]: BlobLocation(row[1], row[2], row[3]) for row in rows}


def sort_fields(
    conn: Connection, email_ids: Sequence[int], *, mailbox_id: int | None = None
) -> dict[int, SortFields]:
    e = schema.emails
    columns = [e.c.subject, e.c.sort_subject, e.c.sort_from, e.c.sort_to, e.c.sort_cc]
    return {
        row[0]: SortFields(row[1], row[2], row[3], row[4], row[5])
        for row in _rows_for(conn, columns, email_ids, mailbox_id)
    }


def thread_fields(
    conn: Connection, email_ids: Sequence[int], *, mailbox_id: int | None = None
) -> dict[int, ThreadFields]:
    """Message-ID, In-Reply-To and References of each email (angle brackets removed)."""
    document = _document(conn)
    columns = [document["messageId"], document["inReplyTo"], document["references"]]
    return {
        row[0]: ThreadFields(_strings(row[1]), _strings(row[2]), _strings(row[3]))
        for row in _rows_for(conn, columns, email_ids, mailbox_id)
    }


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def message_id_matches(conn: Connection, *, mailbox_id: int, fragment: str) -> set[int]:
    """Ids of the mailbox's emails whose stored Message-ID (first id, no angle brackets)
    contains ``fragment``, ASCII case ignored: narrows HEADER Message-ID searches (which
    clients such as Thunderbird send to find a message) to an index-free column scan
    instead of reading every header."""
    mm, e = schema.mailbox_messages, schema.emails
    return set(
        conn.execute(
            sa.select(mm.c.email_id)
            .join(e, e.c.id == mm.c.email_id)
            .where(
                mm.c.mailbox_id == mailbox_id,
                sa.func.lower(e.c.message_id).contains(fragment.lower(), autoescape=True),
            )
        ).scalars()
    )


def text_matches(
    conn: Connection,
    *,
    account_id: int,
    mailbox_id: int,
    text: str,
    fields: frozenset[search.Field] | None,
) -> set[int] | None:
    """Ids of the mailbox's emails whose indexed ``fields`` hold every word of ``text`` as
    a word prefix (``store.search`` semantics); None when ``text`` has no word."""
    matching = search.matching_ids(conn, account_id=account_id, text=text, fields=fields)
    if matching is None:
        return None
    mm = schema.mailbox_messages
    return set(
        conn.execute(
            sa.select(mm.c.email_id).where(
                mm.c.mailbox_id == mailbox_id, mm.c.email_id.in_(matching)
            )
        ).scalars()
    )
