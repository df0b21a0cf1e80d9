"""Mail transport: the outbound queue (messages, recipients) and DKIM keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "queue_messages",
        sa.Column("id", _ID, nullable=False),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_hash"], ["blobs.hash"], name=op.f("fk_queue_messages_blob_hash_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_queue_messages_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_messages")),
    )
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.create_index("ix_queue_messages_blob_hash", ["blob_hash"], unique=False)

    op.create_table(
        "queue_recipients",
        sa.Column("id", _ID, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("delay_warned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["queue_messages.id"],
            name=op.f("fk_queue_recipients_message_id_queue_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_recipients")),
    )
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_recipients_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            "ix_queue_recipients_next_attempt_at", ["next_attempt_at"], unique=False
        )

    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_keys")),
        sa.UniqueConstraint("domain", "selector", name=op.f("uq_dkim_keys_domain_selector")),
    )


def downgrade() -> None:
    op.drop_table("dkim_keys")
    with op.batch_alter_table("queue_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_recipients_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_queue_recipients_message_id"))
    op.drop_table("queue_recipients")
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_messages_blob_hash")
    op.drop_table("queue_messages")
