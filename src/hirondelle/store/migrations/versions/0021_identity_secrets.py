"""Identity: second-factor secrets at rest (issue 6): TOTP secrets are stored sealed
(AES-256-GCM, :mod:`hirondelle.identity.secret_box`), which is longer than base32, so
the two ``secret`` columns widen from 64 to 255 characters.

The rows themselves are sealed by the node (the key is a file, never in the database,
so a migration cannot do it): ``identity.housekeeping.seal_secrets`` at each start.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-22 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLES = ("totp_factors", "totp_enrolments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "secret",
                existing_type=sa.String(length=64),
                type_=sa.String(length=255),
                existing_nullable=False,
            )


def downgrade() -> None:
    # Sealed secrets do not fit in 64 characters: going back needs them unsealed first,
    # which only the node with the key can do. Refuse rather than truncate.
    bind = op.get_bind()
    for table in TABLES:
        longest = bind.execute(sa.text(f"SELECT MAX(LENGTH(secret)) FROM {table}")).scalar()
        if longest is not None and longest > 64:
            raise RuntimeError(
                f"{table} holds sealed secrets longer than 64 characters: cannot downgrade"
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "secret",
                existing_type=sa.String(length=255),
                type_=sa.String(length=64),
                existing_nullable=False,
            )
