"""Dead properties of DAV resources (PROPPATCH on calendar objects and vCards, RFC 4918
§9.2), beside those of collections (issue 5).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22 15:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dav_resource_properties",
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["dav_resources.id"],
            name=op.f("fk_dav_resource_properties_resource_id_dav_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "name", name=op.f("pk_dav_resource_properties")),
    )


def downgrade() -> None:
    op.drop_table("dav_resource_properties")
