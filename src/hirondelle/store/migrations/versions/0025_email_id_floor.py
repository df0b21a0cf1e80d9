"""SQLite: email ids are never given twice (``email_id_floor``).

``emails.id`` is a rowid without AUTOINCREMENT, and the insert chose ``MAX(id) + 1``:
when the newest email was destroyed (expunged), the next one got its id again. JMAP
(RFC 8620 §1.2: an id is never reused for another object of the account) and IMAP
OBJECTID (RFC 8474 §5.1: EMAILID) forbid it, and a client syncing with Email/changes
saw one id destroyed and created, for two different messages. The floor is the highest
id ever given: destroying emails raises it, and new ids start above it.

PostgreSQL takes ids from the column's sequence, which never goes back.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-23 00:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE email_id_floor (value INTEGER NOT NULL)")
    # Ids destroyed before this migration are known while their journal rows last.
    op.execute(
        "INSERT INTO email_id_floor (value) SELECT max("
        "COALESCE((SELECT MAX(id) FROM emails), 0),"
        " COALESCE((SELECT MAX(object_id) FROM journal WHERE kind = 'Email'), 0))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TABLE email_id_floor")
