"""Initial schema: domains, accounts, aliases, mailboxes, emails, journal, audit, search.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 11:06:19.996643
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("refcount", sa.Integer(), nullable=False),
        sa.Column("unreferenced_since", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blobs")),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_blobs_unreferenced_since"), ["unreferenced_since"], unique=False
        )

    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("default_imap", sa.Boolean(), nullable=False),
        sa.Column("default_pop3", sa.Boolean(), nullable=False),
        sa.Column("default_smtp", sa.Boolean(), nullable=False),
        sa.Column("default_dav", sa.Boolean(), nullable=False),
        sa.Column("default_web", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("name", name=op.f("uq_domains_name")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("allow_imap", sa.Boolean(), nullable=False),
        sa.Column("allow_pop3", sa.Boolean(), nullable=False),
        sa.Column("allow_smtp", sa.Boolean(), nullable=False),
        sa.Column("allow_dav", sa.Boolean(), nullable=False),
        sa.Column("allow_web", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("save_sent_copy", sa.Boolean(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("journal_floor", sa.BigInteger(), nullable=False),
        sa.Column("credentials_version", sa.Integer(), nullable=False),
        sa.Column("last_uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_accounts_domain_id_domains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("address", name=op.f("uq_accounts_address")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_domain_id"), ["domain_id"], unique=False)

    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_aliases_domain_id_domains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("address", name=op.f("uq_aliases_address")),
    )
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aliases_domain_id"), ["domain_id"], unique=False)

    op.create_table(
        "alias_targets",
        sa.Column("alias_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["alias_id"],
            ["aliases.id"],
            name=op.f("fk_alias_targets_alias_id_aliases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alias_id", "target", name=op.f("pk_alias_targets")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_audit_log_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_account_id_at", ["account_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "emails",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("created_modseq", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("sort_subject", sa.Text(), nullable=False),
        sa.Column("sort_from", sa.Text(), nullable=False),
        sa.Column("sort_to", sa.Text(), nullable=False),
        sa.Column("sort_cc", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("has_attachment", sa.Boolean(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("body_structure", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("header_end", sa.Integer(), nullable=False),
        sa.Column("structure", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_emails_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blob_hash"], ["blobs.hash"], name=op.f("fk_emails_blob_hash_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_emails_account_id_received_at", ["account_id", "received_at"], unique=False
        )
        batch_op.create_index(
            "ix_emails_account_id_thread_id", ["account_id", "thread_id"], unique=False
        )
        batch_op.create_index("ix_emails_blob_hash", ["blob_hash"], unique=False)

    op.create_table(
        "journal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("container_id", sa.BigInteger(), nullable=True),
        sa.Column("change", sa.String(length=9), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_journal_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.create_index(
            "ix_journal_account_id_kind_container_id_modseq",
            ["account_id", "kind", "container_id", "modseq"],
            unique=False,
        )
        batch_op.create_index(
            "ix_journal_account_id_kind_modseq", ["account_id", "kind", "modseq"], unique=False
        )

    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("highest_modseq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_mailboxes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailboxes_parent_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_mailboxes_account_id_name")),
    )
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mailboxes_account_id_role",
            ["account_id", "role"],
            unique=True,
            sqlite_where=sa.text("role IS NOT NULL"),
            postgresql_where=sa.text("role IS NOT NULL"),
        )
        batch_op.create_index(batch_op.f("ix_mailboxes_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "message_ids",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_message_ids_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "message_id", name=op.f("pk_message_ids")),
    )
    op.create_table(
        "mailbox_messages",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("email_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["emails.id"],
            name=op.f("fk_mailbox_messages_email_id_emails"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_messages_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "uid", name=op.f("pk_mailbox_messages")),
        sa.UniqueConstraint(
            "mailbox_id", "email_id", name=op.f("uq_mailbox_messages_mailbox_id_email_id")
        ),
    )
    with op.batch_alter_table("mailbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_mailbox_messages_email_id", ["email_id"], unique=False)

    create_search_index()


def downgrade() -> None:
    drop_search_index()
    with op.batch_alter_table("mailbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_mailbox_messages_email_id")

    op.drop_table("mailbox_messages")
    op.drop_table("message_ids")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailboxes_parent_id"))
        batch_op.drop_index(
            "ix_mailboxes_account_id_role",
            sqlite_where=sa.text("role IS NOT NULL"),
            postgresql_where=sa.text("role IS NOT NULL"),
        )

    op.drop_table("mailboxes")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_index("ix_journal_account_id_kind_modseq")
        batch_op.drop_index("ix_journal_account_id_kind_container_id_modseq")

    op.drop_table("journal")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_blob_hash")
        batch_op.drop_index("ix_emails_account_id_thread_id")
        batch_op.drop_index("ix_emails_account_id_received_at")

    op.drop_table("emails")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index("ix_audit_log_account_id_at")

    op.drop_table("audit_log")
    op.drop_table("alias_targets")
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aliases_domain_id"))

    op.drop_table("aliases")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_domain_id"))

    op.drop_table("accounts")
    op.drop_table("domains")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blobs_unreferenced_since"))

    op.drop_table("blobs")


def create_search_index() -> None:
    """Full-text search: FTS5 on SQLite, a tsvector with a GIN index on PostgreSQL.

    See hirondelle.store.search for the queries. The FTS5 table keeps its own copy of the
    text because SQLite 3.40 (Debian 12) has no contentless-delete tables.
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE email_search_fts USING fts5("
            "account_id UNINDEXED, subject, participants, body, attachments, "
            "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
        )
    else:
        op.create_table(
            "email_search",
            sa.Column("email_id", sa.BigInteger(), nullable=False),
            sa.Column("account_id", sa.Integer(), nullable=False),
            sa.Column("document", postgresql.TSVECTOR(), nullable=False),
            sa.ForeignKeyConstraint(
                ["email_id"],
                ["emails.id"],
                ondelete="CASCADE",
                name=op.f("fk_email_search_email_id_emails"),
            ),
            sa.PrimaryKeyConstraint("email_id", name=op.f("pk_email_search")),
        )
        op.create_index("ix_email_search_account_id", "email_search", ["account_id"])
        op.execute("CREATE INDEX ix_email_search_document ON email_search USING gin (document)")


def drop_search_index() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE email_search_fts")
    else:
        op.drop_table("email_search")
