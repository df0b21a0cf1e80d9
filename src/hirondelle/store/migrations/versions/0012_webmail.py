"""Webmail settings such as the per-domain and per-account offline switch (issue 8).

Tables live in ``store/schema_webmail.py``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webmail_domain_settings",
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("offline_allowed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_webmail_domain_settings_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain_id", name=op.f("pk_webmail_domain_settings")),
    )
    op.create_table(
        "webmail_account_settings",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("offline_allowed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webmail_account_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_webmail_account_settings")),
    )


def downgrade() -> None:
    op.drop_table("webmail_account_settings")
    op.drop_table("webmail_domain_settings")
