"""Calendars and address books: collections, resources, occurrence index, dead properties (issue 5).

Tables live in ``store/schema_groupware.py``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dav_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("color", sa.String(length=32), nullable=True),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("components", sa.String(length=100), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dav_collections_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_collections")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_dav_collections_account_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dav_properties",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["dav_collections.id"],
            name=op.f("fk_dav_properties_collection_id_dav_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "name", name=op.f("pk_dav_properties")),
    )
    op.create_table(
        "dav_resources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("uid", sa.String(length=1000), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("created_modseq", sa.BigInteger(), nullable=False),
        sa.Column("first_start", sa.BigInteger(), nullable=True),
        sa.Column("last_end", sa.BigInteger(), nullable=True),
        sa.Column("indexed_until", sa.BigInteger(), nullable=True),
        sa.Column("organizer", sa.String(length=320), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dav_resources_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["dav_collections.id"],
            name=op.f("fk_dav_resources_collection_id_dav_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_resources")),
        sa.UniqueConstraint(
            "collection_id", "name", name=op.f("uq_dav_resources_collection_id_name")
        ),
        sa.UniqueConstraint(
            "collection_id", "uid", name=op.f("uq_dav_resources_collection_id_uid")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_dav_resources_account_id"), "dav_resources", ["account_id"], unique=False
    )
    op.create_index(
        "ix_dav_resources_collection_id_indexed_until",
        "dav_resources",
        ["collection_id", "indexed_until"],
        unique=False,
    )
    op.create_table(
        "dav_tombstones",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["dav_collections.id"],
            name=op.f("fk_dav_tombstones_collection_id_dav_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_tombstones")),
    )
    op.create_index(
        "ix_dav_tombstones_collection_id_resource_id",
        "dav_tombstones",
        ["collection_id", "resource_id"],
        unique=False,
    )
    op.create_index(
        "ix_dav_tombstones_collection_id_name",
        "dav_tombstones",
        ["collection_id", "name"],
        unique=False,
    )
    op.create_table(
        "dav_occurrences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["dav_resources.id"],
            name=op.f("fk_dav_occurrences_resource_id_dav_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_occurrences")),
    )
    op.create_index(
        "ix_dav_occurrences_collection_id_start_end",
        "dav_occurrences",
        ["collection_id", "start", "end"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dav_occurrences_resource_id"), "dav_occurrences", ["resource_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dav_occurrences_resource_id"), table_name="dav_occurrences")
    op.drop_index("ix_dav_occurrences_collection_id_start_end", table_name="dav_occurrences")
    op.drop_table("dav_occurrences")
    op.drop_index("ix_dav_tombstones_collection_id_name", table_name="dav_tombstones")
    op.drop_index("ix_dav_tombstones_collection_id_resource_id", table_name="dav_tombstones")
    op.drop_table("dav_tombstones")
    op.drop_index("ix_dav_resources_collection_id_indexed_until", table_name="dav_resources")
    op.drop_index(op.f("ix_dav_resources_account_id"), table_name="dav_resources")
    op.drop_table("dav_resources")
    op.drop_table("dav_properties")
    op.drop_table("dav_collections")
