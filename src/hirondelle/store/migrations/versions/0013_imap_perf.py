"""IMAP performance (issue 4): the keywords in use per mailbox, and the header text in
the full-text index.

- ``mailbox_keywords`` lists every keyword set on a message of a mailbox, so that SELECT
  answers FLAGS and PERMANENTFLAGS (RFC 9051 §7.3.5, §7.1) without a ``SELECT DISTINCT
  keywords`` over every row of the mailbox. Filled here from the memberships' keywords.
- The full-text index gets a ``headers`` column (SQLite: the FTS5 table is rebuilt with
  it, FTS5 has no ADD COLUMN; PostgreSQL: a second ``tsvector`` with its GIN index), so
  that IMAP SEARCH TEXT is index queries. The header text lives only in the message
  files, which a migration does not read: every email stored before is listed in
  ``search_headers_pending``, searched the old way and indexed by the first SEARCH TEXT
  that reads it (``mail/search.py``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_FTS_COLUMNS = "rowid, account_id, subject, participants, body, attachments"


def upgrade() -> None:
    op.create_table(
        "mailbox_keywords",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_keywords_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "keyword", name=op.f("pk_mailbox_keywords")),
    )
    conn = op.get_bind()
    found: set[tuple[int, str]] = set()
    rows = conn.execute(
        sa.text("SELECT DISTINCT mailbox_id, keywords FROM mailbox_messages WHERE keywords <> ''")
    )
    for mailbox_id, text in rows:
        found.update((int(mailbox_id), word) for word in str(text).split())
    if found:
        conn.execute(
            sa.text("INSERT INTO mailbox_keywords (mailbox_id, keyword) VALUES (:m, :k)"),
            [{"m": m, "k": k} for m, k in sorted(found)],
        )

    op.create_table(
        "search_headers_pending",
        sa.Column("email_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["emails.id"],
            name=op.f("fk_search_headers_pending_email_id_emails"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("email_id", name=op.f("pk_search_headers_pending")),
    )
    op.execute("INSERT INTO search_headers_pending (email_id) SELECT id FROM emails")
    if conn.dialect.name == "sqlite":
        _rebuild_fts(with_headers=True)
    else:
        op.add_column(
            "email_search",
            sa.Column(
                "headers",
                postgresql.TSVECTOR(),
                nullable=False,
                server_default=sa.text("''::tsvector"),
            ),
        )
        op.alter_column("email_search", "headers", server_default=None)
        op.execute("CREATE INDEX ix_email_search_headers ON email_search USING gin (headers)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_fts(with_headers=False)
    else:
        op.execute("DROP INDEX ix_email_search_headers")
        op.drop_column("email_search", "headers")
    op.drop_table("search_headers_pending")
    op.drop_table("mailbox_keywords")


def _rebuild_fts(*, with_headers: bool) -> None:
    """The FTS5 table again, with or without the ``headers`` column, its rows copied."""
    headers = ", headers" if with_headers else ""
    empty = ", ''" if with_headers else ""  # rows of before: header text not indexed yet
    op.execute(
        "CREATE VIRTUAL TABLE email_search_fts_new USING fts5("
        f"account_id UNINDEXED, subject, participants, body, attachments{headers}, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
    )
    op.execute(
        f"INSERT INTO email_search_fts_new ({_FTS_COLUMNS}{headers}) "
        f"SELECT {_FTS_COLUMNS}{empty} FROM email_search_fts"
    )
    op.execute("DROP TABLE email_search_fts")
    op.execute("ALTER TABLE email_search_fts_new RENAME TO email_search_fts")
