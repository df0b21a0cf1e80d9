"""The blob write path: small blobs stored inline in SQL (issues 3 and 4).

Tables live in ``store/schema_blobs.py``.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_inline",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hash"],
            ["blobs.hash"],
            name=op.f("fk_blob_inline_hash_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blob_inline")),
    )


def downgrade() -> None:
    op.drop_table("blob_inline")
