"""Counters kept by every write: per mailbox (emails, unread, size) and per mailbox and thread,
for STATUS and JMAP Mailbox/get without scans (issue 2, 4, 7).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 15:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COUNTERS = (
    "total_emails",
    "unseen_emails",
    "unread_emails",
    "deleted_emails",
    "total_size",
    "total_threads",
    "unread_threads",
)


def _has(word: str) -> str:
    return f"(' ' || e.keywords || ' ') LIKE '% {word} %'"


_UNREAD = f"NOT {_has('$seen')} AND NOT {_has('$draft')}"


def upgrade() -> None:
    for name in _COUNTERS:
        op.add_column(
            "mailboxes", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "mailbox_threads",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("emails", sa.BigInteger(), nullable=False),
        sa.Column("unseen", sa.BigInteger(), nullable=False),
        sa.Column("unread", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("thread_unread", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_threads_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "thread_id", name=op.f("pk_mailbox_threads")),
    )
    op.create_index("ix_mailbox_threads_thread_id", "mailbox_threads", ["thread_id"])
    # Fill from the existing data: the same sums store/emails.py refresh_thread_counts
    # keeps, computed once by scanning.
    op.execute(
        "INSERT INTO mailbox_threads"
        " (mailbox_id, thread_id, emails, unseen, unread, deleted, size, thread_unread)"
        " SELECT mm.mailbox_id, e.thread_id, COUNT(*),"
        f" SUM(CASE WHEN {_has('$seen')} THEN 0 ELSE 1 END),"
        f" SUM(CASE WHEN {_UNREAD} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {_has('$deleted')} THEN 1 ELSE 0 END),"
        " SUM(e.size), 0"
        " FROM mailbox_messages mm JOIN emails e ON e.id = mm.email_id"
        " GROUP BY mm.mailbox_id, e.thread_id"
    )
    op.execute(
        "UPDATE mailbox_threads SET thread_unread = (SELECT COUNT(*) FROM emails e"
        f" WHERE e.thread_id = mailbox_threads.thread_id AND {_UNREAD})"
    )
    sums = {
        "total_emails": "SUM(t.emails)",
        "unseen_emails": "SUM(t.unseen)",
        "unread_emails": "SUM(t.unread)",
        "deleted_emails": "SUM(t.deleted)",
        "total_size": "SUM(t.size)",
        "total_threads": "COUNT(*)",
        "unread_threads": "SUM(CASE WHEN t.thread_unread > 0 THEN 1 ELSE 0 END)",
    }
    op.execute(
        "UPDATE mailboxes SET "
        + ", ".join(
            f"{name} = COALESCE((SELECT {value} FROM mailbox_threads t"
            " WHERE t.mailbox_id = mailboxes.id), 0)"
            for name, value in sums.items()
        )
    )


def downgrade() -> None:
    op.drop_index("ix_mailbox_threads_thread_id", table_name="mailbox_threads")
    op.drop_table("mailbox_threads")
    with op.batch_alter_table("mailboxes") as batch:
        for name in reversed(_COUNTERS):
            batch.drop_column(name)
