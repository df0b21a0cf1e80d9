"""App passwords get a lookup hint, so that a login checks at most one of them with
argon2 and its timing does not depend on how many the account has (docs/security.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 12:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_passwords") as batch:
        batch.add_column(sa.Column("hint", sa.String(length=16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("app_passwords") as batch:
        batch.drop_column("hint")
