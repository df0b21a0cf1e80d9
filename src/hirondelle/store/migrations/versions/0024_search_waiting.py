"""SQLite: search documents wait in ``email_search_waiting`` and are indexed in batches.

FTS5 writes a new index segment each time its pending data is flushed (at COMMIT, or
at the next statement that needs a statement journal), and every segment is merged
again later: indexing one message per transaction cost about 1.1 ms of the one writer
thread per 10 KB message, half of that in batches of 16 or more. A delivery now stores
its document here, in its own transaction (nothing is lost, nothing is unsearchable:
a search first indexes what is waiting for its account), and the writer moves the
waiting documents into ``email_search_fts`` in batches (``store/search.py``).

PostgreSQL needs no such table: its GIN index batches insertions itself (fastupdate).

The FTS5 table is rebuilt with ``detail = column``: it keeps which columns of a row
hold a term, not the term's positions, which no query here uses (every query is a
conjunction of single-word prefixes, with column filters). Indexing costs 295 instead
of 540 us per 10 KB message in batches, the index is a third smaller, and queries are
as fast. (Rebuilding copies every row: about 0.3 ms per message, once.)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-22 23:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


_COLUMNS = "account_id, subject, participants, body, attachments, headers"


def _rebuild_fts(detail: str) -> None:
    """The FTS5 table again with ``detail`` (``column`` or ``full``), its rows copied."""
    op.execute(
        "CREATE VIRTUAL TABLE email_search_fts_new USING fts5("
        "account_id UNINDEXED, subject, participants, body, attachments, headers, "
        f"tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3', detail = {detail})"
    )
    op.execute(
        f"INSERT INTO email_search_fts_new (rowid, {_COLUMNS}) "
        f"SELECT rowid, {_COLUMNS} FROM email_search_fts ORDER BY rowid"
    )
    op.execute("DROP TABLE email_search_fts")
    op.execute("ALTER TABLE email_search_fts_new RENAME TO email_search_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild_fts("column")
    op.execute(
        "CREATE TABLE email_search_waiting ("
        "email_id INTEGER NOT NULL PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE, "
        "account_id INTEGER NOT NULL, "
        "subject TEXT NOT NULL, participants TEXT NOT NULL, body TEXT NOT NULL, "
        "attachments TEXT NOT NULL, headers TEXT NOT NULL)"
    )
    op.execute(
        "CREATE INDEX ix_email_search_waiting_account_id ON email_search_waiting (account_id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        f"INSERT INTO email_search_fts (rowid, {_COLUMNS}) "
        f"SELECT email_id, {_COLUMNS} FROM email_search_waiting ORDER BY email_id"
    )
    op.execute("DROP TABLE email_search_waiting")
    _rebuild_fts("full")
