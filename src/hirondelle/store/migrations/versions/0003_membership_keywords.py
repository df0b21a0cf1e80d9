"""Keywords copied onto each mailbox membership, so that opening a mailbox reads one
table (DESIGN.md "Hot paths": SELECT of 100,000 messages is an index range scan of
``mailbox_messages``, not 100,000 lookups into the wide ``emails`` rows).

``emails.keywords`` stays the truth (JMAP semantics: keywords belong to the email);
``store.emails`` writes both in the same transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox_messages") as batch:
        batch.add_column(sa.Column("keywords", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE mailbox_messages SET keywords = "
        "(SELECT emails.keywords FROM emails WHERE emails.id = mailbox_messages.email_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_messages") as batch:
        batch.drop_column("keywords")
