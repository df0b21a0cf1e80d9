"""JMAP core: uploads, push subscriptions and what JMAP needs beyond the mail tables (issue 7).

Tables live in ``store/schema_jmap.py``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jmap_uploads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_jmap_uploads_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blob_hash"], ["blobs.hash"], name=op.f("fk_jmap_uploads_blob_hash_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jmap_uploads")),
    )
    op.create_index(op.f("ix_jmap_uploads_created_at"), "jmap_uploads", ["created_at"])
    op.create_index(
        "ix_jmap_uploads_account_id_blob_hash", "jmap_uploads", ["account_id", "blob_hash"]
    )


def downgrade() -> None:
    op.drop_index("ix_jmap_uploads_account_id_blob_hash", table_name="jmap_uploads")
    op.drop_index(op.f("ix_jmap_uploads_created_at"), table_name="jmap_uploads")
    op.drop_table("jmap_uploads")
