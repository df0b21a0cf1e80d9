"""The final outcome of each queued recipient (delivered or failed, with the remote's
reply), kept for JMAP EmailSubmission deliveryStatus (issue 7).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22 15:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_outcomes",
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_queue_outcomes_finished_at", "queue_outcomes", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_queue_outcomes_finished_at", table_name="queue_outcomes")
    op.drop_table("queue_outcomes")
