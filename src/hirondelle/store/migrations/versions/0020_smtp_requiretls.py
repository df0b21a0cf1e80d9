"""SMTP: REQUIRETLS (RFC 8689) in the outbound queue (issue 3): each queued message's
TLS policy, "required", "not-required" or "" (opportunistic).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-22 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tls_policy", sa.String(16), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_column("tls_policy")
