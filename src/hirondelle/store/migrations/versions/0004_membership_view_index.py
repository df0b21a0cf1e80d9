"""An index that covers what SELECT reads of a mailbox (UID order, modseq), so opening a
100,000-message mailbox is an index-only range scan (DESIGN.md "Hot paths").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 12:25:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_mailbox_messages_mailbox_id_uid_modseq",
        "mailbox_messages",
        ["mailbox_id", "uid", "modseq"],
    )


def downgrade() -> None:
    op.drop_index("ix_mailbox_messages_mailbox_id_uid_modseq", table_name="mailbox_messages")
