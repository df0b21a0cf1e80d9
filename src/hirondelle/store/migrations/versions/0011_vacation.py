"""Vacation responses and the log of who was answered (issue 7), JMAP identities and
email submissions.

Tables live in ``store/schema_vacation.py``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vacation_responses",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("from_date", sa.BigInteger(), nullable=True),
        sa.Column("to_date", sa.BigInteger(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_vacation_responses_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_vacation_responses")),
    )
    op.create_table(
        "vacation_log",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("replied_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_vacation_log_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "sender", name=op.f("pk_vacation_log")),
    )
    op.create_table(
        "jmap_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("bcc", sa.Text(), nullable=True),
        sa.Column("text_signature", sa.Text(), nullable=False),
        sa.Column("html_signature", sa.Text(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_jmap_identities_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jmap_identities")),
    )
    with op.batch_alter_table("jmap_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jmap_identities_account_id"), ["account_id"], unique=False
        )
    op.create_table(
        "email_submissions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("email_id", _ID, nullable=False),
        sa.Column("thread_id", _ID, nullable=False),
        sa.Column("queue_message_id", _ID, nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("delivery_status", sa.Text(), nullable=False),
        sa.Column("send_at", sa.BigInteger(), nullable=False),
        sa.Column("undo_status", sa.String(length=9), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_submissions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_submissions")),
    )
    with op.batch_alter_table("email_submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_submissions_account_id_send_at", ["account_id", "send_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("email_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_email_submissions_account_id_send_at")
    op.drop_table("email_submissions")
    with op.batch_alter_table("jmap_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jmap_identities_account_id"))
    op.drop_table("jmap_identities")
    op.drop_table("vacation_log")
    op.drop_table("vacation_responses")
