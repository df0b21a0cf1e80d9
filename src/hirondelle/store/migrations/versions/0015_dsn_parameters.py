"""RFC 3461 DSN parameters kept with queued mail: ENVID and RET per message, NOTIFY and ORCPT
per recipient (issue 3).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 15:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ret", sa.String(4), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("envid", sa.String(100), nullable=False, server_default=""))
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify", sa.String(32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("orcpt", sa.String(500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.drop_column("orcpt")
        batch_op.drop_column("notify")
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_column("envid")
        batch_op.drop_column("ret")
