"""Full-text search of mail behind one small interface.

SQLite: an FTS5 table (``email_search_fts``) whose rowid is the email id. PostgreSQL: a
``tsvector`` per email with a GIN index (table ``email_search``), built with the
``simple`` configuration (no stemming: an organisation writes in several languages, and
IMAP SEARCH asks for substrings, not stems). Both are created by the migrations.

The whole header text (every field, RFC 2047-decoded) is indexed too, in its own FTS5
column and its own ``tsvector`` column (``headers``, migration 0013), so that IMAP SEARCH
TEXT (RFC 9051 §6.4.4: header or body) is index queries, not a parse of every header.
Emails stored before 0013 are listed in ``search_headers_pending`` until their header
text is indexed (:func:`pending_headers`, :func:`index_headers`).

On SQLite a new email's document first waits in ``email_search_waiting`` (migration
0024) and is moved into FTS5 in batches by the writer, when it is idle or the oldest
document has waited long enough (:meth:`WriteContext.defer`). Whoever reads the index
first indexes the account's waiting documents (:func:`has_waiting`,
:func:`index_waiting`): ``mail/search.py`` does, once per search.

Queries are word-prefix matches of every word given, which is what IMAP SEARCH TEXT/BODY/
SUBJECT and JMAP ``text`` filters map to; the IMAP layer re-checks exact substring
semantics on the candidates where RFC 9051 requires it.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import DriverStatement, WriteContext, driver_cursor

_WORD = re.compile(r"\w+", re.UNICODE)

# How much text of one message is indexed: enough for any real mail body, bounded so
# that a 50 MB text attachment cannot make one index row enormous.
MAX_INDEXED_CHARS = 1_000_000


class Field(StrEnum):
    SUBJECT = "subject"
    PARTICIPANTS = "participants"  # From, To, Cc, Bcc names and addresses
    BODY = "body"
    ATTACHMENTS = "attachments"  # attachment file names
    HEADERS = "headers"  # every header field, "Name: decoded value" (migration 0013)


#: What a query without ``fields`` searches (JMAP ``text``-like): not the raw headers.
_DEFAULT_FIELDS = frozenset({Field.SUBJECT, Field.PARTICIPANTS, Field.BODY, Field.ATTACHMENTS})


# PostgreSQL tsvector weights stand for fields: A subject, B participants, C body,
# D attachment names; a tsquery ``word:*B`` matches the word in participants only.
_PG_WEIGHT = {Field.SUBJECT: "A", Field.PARTICIPANTS: "B", Field.BODY: "C", Field.ATTACHMENTS: "D"}

_pg_metadata = sa.MetaData()
pg_email_search = sa.Table(
    "email_search",
    _pg_metadata,
    sa.Column("email_id", sa.BigInteger, primary_key=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("document", postgresql.TSVECTOR, nullable=False),
    sa.Column("headers", postgresql.TSVECTOR, nullable=False),
)


@dataclass(frozen=True, slots=True)
class SearchDocument:
    subject: str
    participants: str
    body: str
    attachments: str
    headers: str = ""
    #: The PostgreSQL index's input (:func:`tokens`) when the parsing side made it (off
    #: the writer thread); None: made by :func:`index_email`.
    tokens: tuple[str, str, str, str, str] | None = None


def tokens(document: SearchDocument) -> tuple[str, str, str, str, str]:
    """What PostgreSQL's ``to_tsvector`` is given for ``document``: subject,
    participants, body, attachment names and headers as folded words."""
    return (
        _tokens(document.subject),
        _tokens(document.participants),
        _tokens(document.body[:MAX_INDEXED_CHARS]),
        _tokens(document.attachments),
        _tokens(document.headers[:MAX_INDEXED_CHARS]),
    )


def with_tokens(document: SearchDocument) -> SearchDocument:
    """``document`` with its PostgreSQL tokens made now (for a parsing worker)."""
    return dataclasses.replace(document, tokens=tokens(document))


def fold(text: str) -> str:
    """Lowercase and strip diacritics (Genève -> geneve), the same for index and query,
    so both backends match alike without a database extension.

    That is NFKD of the lowercased text without its combining characters (combining
    class not 0), which are never ASCII: ASCII text is returned as it is, and only the
    runs of non-ASCII characters are looked at one by one (a generator over every
    character was 20% of the server's GIL time on PostgreSQL, which indexes every
    delivered body through this). tests/store/test_search_fold.py checks it against
    that definition."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    if decomposed.isascii():
        return decomposed
    return _NON_ASCII.sub(_without_combining, decomposed)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: ASCII characters that are not word characters (``\w``: alphanumeric or "_"), to spaces.
_ASCII_NON_WORD = {c: " " for c in range(128) if not (chr(c).isalnum() or c == ord("_"))}


def _without_combining(match: re.Match[str]) -> str:
    return "".join(c for c in match.group() if not unicodedata.combining(c))


def _non_word_spaced(match: re.Match[str]) -> str:
    # A str is a word character for ``re`` when it is alphanumeric (str.isalnum) or "_".
    return "".join(c if c.isalnum() else " " for c in match.group())


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def _tokens(text: str) -> str:
    """The text as the words a query is made of. PostgreSQL's parser would otherwise keep
    "carol@elsewhere.test" or a URL as one token, where FTS5 (and the query side) sees
    "carol", "elsewhere", "test": both backends must split alike.

    ``" ".join(words(text))``, without a regex over every character: the non-word
    characters become spaces (a table for ASCII, the non-ASCII runs one by one) and
    ``str.split`` cuts on them."""
    folded = fold(text)
    if not folded.isascii():
        folded = _NON_ASCII.sub(_non_word_spaced, folded)
    return " ".join(folded.translate(_ASCII_NON_WORD).split())


# The hot path's statements, written once (DESIGN.md "Hot paths"). On PostgreSQL the
# weights are our four constant letters (the "char" type), one per field.
_INSERT_WAITING = DriverStatement(
    "INSERT INTO email_search_waiting (email_id, account_id, subject, participants, body,"
    " attachments, headers) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TSVECTOR = DriverStatement(
    "INSERT INTO email_search (email_id, account_id, document, headers) VALUES (?, ?,"
    " setweight(to_tsvector('simple', ?), 'A') || setweight(to_tsvector('simple', ?), 'B')"
    " || setweight(to_tsvector('simple', ?), 'C') || setweight(to_tsvector('simple', ?), 'D'),"
    " to_tsvector('simple', ?))"
)
_SET_HEADERS_FTS = DriverStatement("UPDATE email_search_fts SET headers = ? WHERE rowid = ?")
_SET_HEADERS_TSVECTOR = DriverStatement(
    "UPDATE email_search SET headers = to_tsvector('simple', ?) WHERE email_id = ?"
)
_DONE_PENDING = DriverStatement("DELETE FROM search_headers_pending WHERE email_id = ?")


def index_email(
    ctx: WriteContext, *, email_id: int, account_id: int, document: SearchDocument
) -> None:
    """Make ``document`` searchable as email ``email_id``, in the caller's transaction.

    On SQLite the document waits in ``email_search_waiting`` (migration 0024) and the
    writer moves it into FTS5 later, in a batch (:func:`index_waiting_batch`, deferred
    with :meth:`WriteContext.defer`): one FTS5 segment per message cost the writer about
    twice as much. Searches first index what waits for their account
    (:func:`index_waiting`), so nothing committed is ever missing from an answer.
    """
    conn = ctx.conn
    body = document.body[:MAX_INDEXED_CHARS]
    dialect = conn.dialect.name
    if dialect == "sqlite":
        ctx.defer(index_waiting_batch)
        values: tuple[object, ...] = (
            email_id,
            account_id,
            document.subject,
            document.participants,
            body,
            document.attachments,
            document.headers[:MAX_INDEXED_CHARS],
        )
        statement = _INSERT_WAITING
    else:
        values = (email_id, account_id, *(document.tokens or tokens(document)))
        statement = _INSERT_TSVECTOR
    cursor = driver_cursor(conn)
    try:
        cursor.execute(statement.text(dialect), values)
    finally:
        cursor.close()


#: How many waiting documents one deferred step indexes: big enough that FTS5 writes few
#: segments (per 10 KB message: 520 us in batches of 8, 360 of 32, 300 of 64), small
#: enough that a step holds the writer for about 10 ms (a write arriving meanwhile waits).
WAITING_BATCH = 32

_WAITING_COLUMNS = "account_id, subject, participants, body, attachments, headers"


def _index_waiting_up_to(conn: Connection, last_id: int, account_id: int | None) -> None:
    """Move the waiting documents up to email id ``last_id`` (of one account, or all)
    into FTS5, in rowid order (FTS5 appends to its pending data instead of flushing)."""
    where = "email_id <= ?" + ("" if account_id is None else " AND account_id = ?")
    parameters = (last_id,) if account_id is None else (last_id, account_id)
    cursor = driver_cursor(conn)
    try:
        cursor.execute(
            f"INSERT INTO email_search_fts (rowid, {_WAITING_COLUMNS}) SELECT email_id,"
            f" {_WAITING_COLUMNS} FROM email_search_waiting WHERE {where} ORDER BY email_id",
            parameters,
        )
        cursor.execute(f"DELETE FROM email_search_waiting WHERE {where}", parameters)
    finally:
        cursor.close()


def index_waiting_batch(ctx: WriteContext) -> bool:
    """A deferred step: index up to :data:`WAITING_BATCH` waiting documents, oldest first;
    whether more are waiting (never on PostgreSQL, which has no waiting table)."""
    if ctx.conn.dialect.name != "sqlite":
        return False
    rows = ctx.conn.exec_driver_sql(
        "SELECT email_id FROM email_search_waiting ORDER BY email_id LIMIT ?",
        (WAITING_BATCH + 1,),
    ).all()
    if not rows:
        return False
    batch = rows[:WAITING_BATCH]
    _index_waiting_up_to(ctx.conn, int(batch[-1][0]), None)
    return len(rows) > WAITING_BATCH


def has_waiting(conn: Connection, account_id: int) -> bool:
    """Whether documents of the account wait to be indexed (never on PostgreSQL)."""
    if conn.dialect.name != "sqlite":
        return False
    return (
        conn.exec_driver_sql(
            "SELECT 1 FROM email_search_waiting WHERE account_id = ? LIMIT 1", (account_id,)
        ).first()
        is not None
    )


def index_waiting(conn: Connection, account_id: int) -> None:
    """Index every waiting document of the account (before a search reads the index)."""
    if conn.dialect.name != "sqlite":
        return
    last = conn.exec_driver_sql(
        "SELECT MAX(email_id) FROM email_search_waiting WHERE account_id = ?", (account_id,)
    ).scalar()
    if last is not None:
        _index_waiting_up_to(conn, int(last), account_id)


def index_headers(conn: Connection, texts: dict[int, str]) -> None:
    """Index the header text of emails stored before migration 0013 (email id -> text)
    and take them off ``search_headers_pending``. May be re-run (a write function)."""
    if not texts:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        values = [(text[:MAX_INDEXED_CHARS], email_id) for email_id, text in texts.items()]
        statement = _SET_HEADERS_FTS
    else:
        values = [(_tokens(text[:MAX_INDEXED_CHARS]), email_id) for email_id, text in texts.items()]
        statement = _SET_HEADERS_TSVECTOR
    cursor = driver_cursor(conn)
    try:
        cursor.executemany(statement.text(dialect), values)
        cursor.executemany(_DONE_PENDING.text(dialect), [(email_id,) for email_id in texts])
    finally:
        cursor.close()


def pending_headers(conn: Connection, mailbox_id: int) -> set[int]:
    """Emails of the mailbox whose header text is not indexed yet (stored before 0013)."""
    p, mm = schema.search_headers_pending, schema.mailbox_messages
    return set(
        conn.execute(
            sa.select(p.c.email_id)
            .join(mm, mm.c.email_id == p.c.email_id)
            .where(mm.c.mailbox_id == mailbox_id)
        ).scalars()
    )


def remove_emails(conn: Connection, email_ids: list[int]) -> None:
    if not email_ids:
        return
    if conn.dialect.name == "sqlite":
        placeholders = ",".join("?" * len(email_ids))
        conn.exec_driver_sql(
            f"DELETE FROM email_search_fts WHERE rowid IN ({placeholders})", tuple(email_ids)
        )
        conn.exec_driver_sql(
            f"DELETE FROM email_search_waiting WHERE email_id IN ({placeholders})",
            tuple(email_ids),
        )
    else:
        conn.execute(pg_email_search.delete().where(pg_email_search.c.email_id.in_(email_ids)))


def remove_account(conn: Connection, account_id: int) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DELETE FROM email_search_fts WHERE account_id = ?", (account_id,))
        conn.exec_driver_sql("DELETE FROM email_search_waiting WHERE account_id = ?", (account_id,))
    else:
        conn.execute(pg_email_search.delete().where(pg_email_search.c.account_id == account_id))


def matching_ids(
    conn: Connection, *, account_id: int, text: str, fields: frozenset[Field] | None = None
) -> sa.Select[int] | None:
    """A SELECT of the ids of the account's emails whose ``fields`` (all when None) hold
    every word of ``text`` as a word prefix; None when ``text`` has no word, which the
    caller treats as "no constraint from the index"."""
    query_words = words(text)
    if not query_words:
        return None
    fields = fields or _DEFAULT_FIELDS
    if conn.dialect.name == "sqlite":
        # FTS5 query syntax: {col1 col2} : "word" * AND ... ; words are quoted, so no
        # user text is ever read as FTS5 operators.
        # The index keeps no positions (detail = column, migration 0024), so every
        # quoted string must be one FTS5 token: "_" is a word character for Python's
        # \w but a separator for FTS5's unicode61, so "foo_bar" asks for both words.
        # (IMAP then checks the substring on the candidates.)
        column_filter = "{" + " ".join(sorted(f.value for f in fields)) + "} : "
        fts_words = [part for word in query_words for part in word.split("_") if part]
        if not fts_words:
            return None
        fts_query = " AND ".join(f'{column_filter}"{w}" *' for w in fts_words)
        return (
            sa.select(sa.column("rowid", sa.Integer))
            .select_from(sa.table("email_search_fts"))
            .where(
                sa.text("email_search_fts MATCH :fts_query").bindparams(fts_query=fts_query),
                sa.column("account_id") == account_id,
            )
        )
    # to_tsquery input is built from \w+ words only, so it cannot carry operators.
    conditions = []
    if fields & _DEFAULT_FIELDS:
        weights = "".join(sorted(_PG_WEIGHT[f] for f in fields & _DEFAULT_FIELDS))
        if fields >= _DEFAULT_FIELDS:
            weights = ""
        tsquery = " & ".join(f"{w}:*{weights}" for w in query_words)
        conditions.append(
            pg_email_search.c.document.op("@@")(sa.func.to_tsquery("simple", tsquery))
        )
    if Field.HEADERS in fields:
        # Every word in the headers column (a word in the body alone does not count).
        tsquery = " & ".join(f"{w}:*" for w in query_words)
        conditions.append(pg_email_search.c.headers.op("@@")(sa.func.to_tsquery("simple", tsquery)))
    return sa.select(pg_email_search.c.email_id).where(
        pg_email_search.c.account_id == account_id, sa.or_(*conditions)
    )


def stored_bodies(conn: Connection, email_ids: list[int]) -> dict[int, str] | None:
    """The indexed body text of each email (at most :data:`MAX_INDEXED_CHARS`), for
    checking substrings after a word-prefix match; None when the backend keeps no text
    (PostgreSQL's tsvector holds words only)."""
    if conn.dialect.name != "sqlite":
        return None
    found: dict[int, str] = {}
    for start in range(0, len(email_ids), 500):
        chunk = email_ids[start : start + 500]
        placeholders = ",".join("?" * len(chunk))
        rows = conn.exec_driver_sql(
            f"SELECT rowid, body FROM email_search_fts WHERE rowid IN ({placeholders})",
            tuple(chunk),
        )
        found.update((int(rowid), str(body)) for rowid, body in rows)
    return found
