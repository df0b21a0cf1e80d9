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


def subjects(conn: Connection, email_ids: Sequence[int]) -> dict[int, str]:
    """The decoded Subject of each email."""
    e = schema.emails
    found: dict[int, str] = {}
    for chunk in _chunks(email_ids):
        found.update(conn.execute(sa.select(e.c.id, e.c.subject).where(e.c.id.in_(chunk))).all())
    return found


def address_lists(
    conn: Connection, email_ids: Sequence[int], field: str
) -> dict[int, list[dict[str, Any]]]:
    """One address list of ``emails.structure`` ({"name", "email"} items) per email.

    Only that list leaves the database (a JSON path on SQLite, ``->`` on PostgreSQL), not
    the whole structure document with its part map.
    """
    if field not in ADDRESS_FIELDS:
        raise ValueError(f"unknown address field {field!r}")
    e = schema.emails
    value = _document(conn)[field]
    found: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(email_ids):
        for email_id, addresses in conn.execute(sa.select(e.c.id, value).where(e.c.id.in_(chunk))):
            found[email_id] = addresses if isinstance(addresses, list) else []
    return found


def envelopes(conn: Connection, email_ids: Sequence[int]) -> dict[int, bytes]:
    """The stored IMAP ENVELOPE of each email (its first item is the Date header as
    written, with its own time zone, which ``sent_at`` in UTC no longer has)."""
    e = schema.emails
    found: dict[int, bytes] = {}
    for chunk in _chunks(email_ids):
        found.update(conn.execute(sa.select(e.c.id, e.c.envelope).where(e.c.id.in_(chunk))).all())
    return found


def blob_locations(conn: Connection, email_ids: Sequence[int]) -> dict[int, BlobLocation]:
    """Where each email's content is: blob hash, end of the header block, size."""
    e = schema.emails
    found: dict[int, BlobLocation] = {}
    for chunk in _chunks(email_ids):
        for email_id, blob_hash, header_end, size in conn.execute(
            sa.select(e.c.id, e.c.blob_hash, e.c.header_end, e.c.size).where(e.c.id.in_(chunk))
        ):
            found[email_id] = BlobLocation(blob_hash, header_end, size)
    return found


def sort_fields(conn: Connection, email_ids: Sequence[int]) -> dict[int, SortFields]:
    e = schema.emails
    found: dict[int, SortFields] = {}
    for chunk in _chunks(email_ids):
        for email_id, *values in conn.execute(
            sa.select(
                e.c.id, e.c.subject, e.c.sort_subject, e.c.sort_from, e.c.sort_to, e.c.sort_cc
            ).where(e.c.id.in_(chunk))
        ):
            found[email_id] = SortFields(*values)
    return found


def thread_fields(conn: Connection, email_ids: Sequence[int]) -> dict[int, ThreadFields]:
    """Message-ID, In-Reply-To and References of each email (angle brackets removed)."""
    e = schema.emails
    document = _document(conn)
    found: dict[int, ThreadFields] = {}
    for chunk in _chunks(email_ids):
        for email_id, message_ids, in_reply_to, references in conn.execute(
            sa.select(
                e.c.id, document["messageId"], document["inReplyTo"], document["references"]
            ).where(e.c.id.in_(chunk))
        ):
            found[email_id] = ThreadFields(
                _strings(message_ids), _strings(in_reply_to), _strings(references)
            )
    return found


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
