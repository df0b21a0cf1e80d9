"""Identity: app passwords and second factors (issue 6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("protocols", sa.String(length=100), nullable=False),
        sa.Column("hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("last_used_remote", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_app_passwords_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passwords")),
    )
    op.create_index(
        op.f("ix_app_passwords_account_id"), "app_passwords", ["account_id"], unique=False
    )
    op.create_table(
        "second_factors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_second_factors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_factors")),
    )
    op.create_index(
        op.f("ix_second_factors_account_id"), "second_factors", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_second_factors_account_id"), table_name="second_factors")
    op.drop_table("second_factors")
    op.drop_index(op.f("ix_app_passwords_account_id"), table_name="app_passwords")
    op.drop_table("app_passwords")
