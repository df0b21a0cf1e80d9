"""SQLite: search documents wait in ``email_search_waiting`` and are indexed in batches.

FTS5 writes a new index segment each time its pending data is flushed (at COMMIT, or
at the next statement that needs a statement journal), and every segment is merged
again later: indexing one message per transaction cost about 1.1 ms of the one writer
thread per 10 KB message, half of that in batches of 16 or more. A delivery now stores
its document here, in its own transaction (nothing is lost, nothing is unsearchable:
a search first indexes what is waiting for its account), and the writer moves the
waiting documents into ``email_search_fts`` in batches (``store/search.py``).

PostgreSQL needs no such table: its GIN index batches insertions itself (fastupdate).

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


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
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
        "INSERT INTO email_search_fts "
        "(rowid, account_id, subject, participants, body, attachments, headers) "
        "SELECT email_id, account_id, subject, participants, body, attachments, headers "
        "FROM email_search_waiting ORDER BY email_id"
    )
    op.execute("DROP TABLE email_search_waiting")
