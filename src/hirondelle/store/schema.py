"""The relational schema: one set of tables for SQLite and PostgreSQL.

This module is the *current* shape of the schema, used by queries. Migrations under
``store/migrations/versions`` build it step by step; ``tests/store/test_migrations.py``
checks that migrating from empty yields exactly these tables and indexes on both
backends, so the two can never drift apart.

Design notes (DESIGN.md "The change journal", "Mail model"):

- ``accounts.modseq`` is the account's one monotonic counter. Every write bumps it once
  and appends ``journal`` rows carrying the new value; every sync mechanism (IMAP
  CONDSTORE/QRESYNC, JMAP /changes, WebDAV sync-collection) reads the journal.
- An email is immutable content (a blob, addressed by SHA-256) plus metadata; it is a
  member of one or more mailboxes, each membership (``mailbox_messages``) with its own
  UID and modseq. Keywords belong to the email (JMAP semantics), stored in their JMAP
  spelling (``$seen``, ``$flagged``, ``$answered``, ``$draft``, ``$deleted`` for IMAP's
  ``\\Deleted``), space-separated, sorted.
- Everything IMAP FETCH needs without a re-parse (ENVELOPE, BODYSTRUCTURE, BODY as IMAP
  bytes, the MIME part map) is stored at ingest.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def account_id_column(**options: object) -> sa.Column[int]:
    """The ``account_id`` column of a table whose rows belong to one account: removing
    the account removes them (``ON DELETE CASCADE``)."""
    return sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        **options,  # type: ignore[arg-type]
    )


# Timestamps are stored as integer microseconds since the epoch (UTC): identical on both
# backends, totally ordered, and cheap to compare in indexes.
Timestamp = sa.BigInteger

domains = sa.Table(
    "domains",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # Protocol switches that new accounts of this domain start with.
    sa.Column("default_imap", sa.Boolean, nullable=False, default=True),
    sa.Column("default_pop3", sa.Boolean, nullable=False, default=False),
    sa.Column("default_smtp", sa.Boolean, nullable=False, default=True),
    sa.Column("default_dav", sa.Boolean, nullable=False, default=True),
    sa.Column("default_web", sa.Boolean, nullable=False, default=True),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "domain_id",
        sa.Integer,
        sa.ForeignKey("domains.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("address", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("quota_bytes", sa.BigInteger, nullable=True),
    sa.Column("used_bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("allow_imap", sa.Boolean, nullable=False),
    sa.Column("allow_pop3", sa.Boolean, nullable=False),
    sa.Column("allow_smtp", sa.Boolean, nullable=False),
    sa.Column("allow_dav", sa.Boolean, nullable=False),
    sa.Column("allow_web", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    # Submission: save a copy in Sent (off by default: IMAP clients upload it themselves).
    sa.Column("save_sent_copy", sa.Boolean, nullable=False, default=False),
    # The change journal's counter and its compaction horizon: changes at or below
    # journal_floor are gone, so a client whose state is older must resync.
    sa.Column("modseq", sa.BigInteger, nullable=False, default=0),
    sa.Column("journal_floor", sa.BigInteger, nullable=False, default=0),
    # Bumped when the password (or anything that must end sessions) changes.
    sa.Column("credentials_version", sa.Integer, nullable=False, default=0),
    # The last UIDVALIDITY given to one of this account's mailboxes: a new mailbox gets a
    # larger one even if a mailbox of the same name was deleted the same second.
    sa.Column("last_uidvalidity", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "domain_id",
        sa.Integer,
        sa.ForeignKey("domains.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    # "local@domain", or "@domain" for the domain's catch-all.
    sa.Column("address", sa.String(320), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

alias_targets = sa.Table(
    "alias_targets",
    metadata,
    sa.Column(
        "alias_id",
        sa.Integer,
        sa.ForeignKey("aliases.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("target", sa.String(320), primary_key=True),
)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False),
    # Full hierarchical name, "/"-separated, NFC Unicode ("INBOX" for the inbox).
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column(
        "parent_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    # SPECIAL-USE role in JMAP spelling: inbox, drafts, sent, trash, junk, archive.
    sa.Column("role", sa.String(32), nullable=True),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uidnext", sa.BigInteger, nullable=False, default=1),
    sa.Column("subscribed", sa.Boolean, nullable=False, default=True),
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
    # Highest modseq of any change inside this mailbox (append, flags, expunge, rename):
    # IMAP HIGHESTMODSEQ, and a cheap "has anything changed" check.
    sa.Column("highest_modseq", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
    # Counters kept by every write in the same transaction (store/emails.py
    # refresh_thread_counts, migration 0014): IMAP STATUS and JMAP Mailbox/get read them
    # instead of scanning the mailbox. Sums of the mailbox's mailbox_threads rows.
    sa.Column("total_emails", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("unseen_emails", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("unread_emails", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("deleted_emails", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total_size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total_threads", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("unread_threads", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("account_id", "name"),
    sa.Index(
        "ix_mailboxes_account_id_role",
        "account_id",
        "role",
        unique=True,
        sqlite_where=sa.text("role IS NOT NULL"),
        postgresql_where=sa.text("role IS NOT NULL"),
    ),
)

# Per mailbox and thread: the thread's emails in the mailbox (a row only while there is
# at least one), their unseen (no $seen), unread (RFC 8621: neither $seen nor $draft) and
# \\Deleted counts and size, and the number of unread emails of the whole thread (RFC 8621
# §2 unreadThreads: the unread email need not be in this mailbox). Rewritten for the
# threads a write touches; the mailbox columns above move by the difference (migration 0014).
mailbox_threads = sa.Table(
    "mailbox_threads",
    metadata,
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("thread_id", sa.BigInteger, primary_key=True),
    sa.Column("emails", sa.BigInteger, nullable=False),
    sa.Column("unseen", sa.BigInteger, nullable=False),
    sa.Column("unread", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("thread_unread", sa.BigInteger, nullable=False),
    sa.Index("ix_mailbox_threads_thread_id", "thread_id"),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    # How many rows reference the blob; a blob whose count fell to zero is removed by the
    # garbage collector only after a grace period, so a delivery racing with the sweep
    # never loses its content.
    sa.Column("refcount", sa.Integer, nullable=False, default=0),
    sa.Column("unreferenced_since", Timestamp, nullable=True, index=True),
)

emails = sa.Table(
    "emails",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    account_id_column(nullable=False),
    sa.Column("blob_hash", sa.String(64), sa.ForeignKey("blobs.hash"), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.Column("keywords", sa.Text, nullable=False, default=""),
    sa.Column("thread_id", sa.BigInteger, nullable=False),
    sa.Column("modseq", sa.BigInteger, nullable=False),
    sa.Column("created_modseq", sa.BigInteger, nullable=False),
    # Header-derived fields, decoded, for JMAP, SORT and the message list.
    sa.Column("subject", sa.Text, nullable=False, default=""),
    sa.Column("sort_subject", sa.Text, nullable=False, default=""),
    sa.Column("sort_from", sa.Text, nullable=False, default=""),
    sa.Column("sort_to", sa.Text, nullable=False, default=""),
    sa.Column("sort_cc", sa.Text, nullable=False, default=""),
    sa.Column("message_id", sa.Text, nullable=True),
    sa.Column("preview", sa.Text, nullable=False, default=""),
    sa.Column("has_attachment", sa.Boolean, nullable=False, default=False),
    # Pre-rendered IMAP data and the part map (see mime.ParsedMessage).
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("body_structure", sa.LargeBinary, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("header_end", sa.Integer, nullable=False),
    # JSON: addresses, message-id lists, part map, JMAP body structure.
    sa.Column("structure", sa.Text, nullable=False),
    sa.Index("ix_emails_account_id_received_at", "account_id", "received_at"),
    sa.Index("ix_emails_account_id_thread_id", "account_id", "thread_id"),
    sa.Index("ix_emails_blob_hash", "blob_hash"),
)

mailbox_messages = sa.Table(
    "mailbox_messages",
    metadata,
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("uid", sa.BigInteger, primary_key=True),
    sa.Column(
        "email_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("emails.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Modseq of the last change to this message as seen in this mailbox (CONDSTORE).
    sa.Column("modseq", sa.BigInteger, nullable=False),
    # A copy of emails.keywords (written in the same transaction), so that opening a
    # mailbox reads this table alone (migration 0003).
    sa.Column("keywords", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("mailbox_id", "email_id"),
    sa.Index("ix_mailbox_messages_email_id", "email_id"),
    # Covers SELECT's read of a mailbox (migration 0004): an index-only range scan.
    sa.Index("ix_mailbox_messages_mailbox_id_uid_modseq", "mailbox_id", "uid", "modseq"),
)

# Every keyword ever set on a message of a mailbox (IMAP FLAGS / PERMANENTFLAGS at
# SELECT, RFC 9051 §7.3.5), kept at write time so that SELECT of 100,000 messages does
# not scan every row's keywords (migration 0013). Only grows, as Dovecot's list does: a
# keyword no message holds any more may still be listed, which the RFC allows.
mailbox_keywords = sa.Table(
    "mailbox_keywords",
    metadata,
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("keyword", sa.Text, primary_key=True),
)

# Emails stored before migration 0013 whose header text is not yet in the full-text
# index (store/search.py): IMAP SEARCH TEXT reads their headers the slow way, then
# indexes them. Empty for anything stored since.
search_headers_pending = sa.Table(
    "search_headers_pending",
    metadata,
    sa.Column(
        "email_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("emails.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

# Message-ID -> thread, for threading at ingest (References / In-Reply-To).
message_ids = sa.Table(
    "message_ids",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("message_id", sa.String(998), primary_key=True),
    sa.Column("thread_id", sa.BigInteger, nullable=False),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    account_id_column(nullable=False),
    sa.Column("modseq", sa.BigInteger, nullable=False),
    # What changed: "Mailbox", "Email", "Thread", "MailboxMessage" (object_id = UID,
    # container_id = mailbox id, for IMAP VANISHED), later calendar and contact kinds.
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("object_id", sa.BigInteger, nullable=False),
    sa.Column("container_id", sa.BigInteger, nullable=True),
    # "created", "updated" or "destroyed".
    sa.Column("change", sa.String(9), nullable=False),
    sa.Index("ix_journal_account_id_kind_modseq", "account_id", "kind", "modseq"),
    sa.Index(
        "ix_journal_account_id_kind_container_id_modseq",
        "account_id",
        "kind",
        "container_id",
        "modseq",
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", Timestamp, nullable=False, index=True),
    sa.Column("protocol", sa.String(16), nullable=False),
    sa.Column("remote", sa.String(64), nullable=False, default=""),
    sa.Column("client_id", sa.String(200), nullable=False, default=""),
    # As typed by the client (lowercased); account_id only when it names an account.
    sa.Column("address", sa.String(320), nullable=False, default=""),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False, default=""),
    sa.Index("ix_audit_log_account_id_at", "account_id", "at"),
)

# -- mail transport (issue 3): the outbound queue and DKIM keys --------------------------

# One outgoing message: its content (a referenced blob) and envelope sender. Rows live
# in SQL, not memory, so a message accepted with 250 survives a restart or kill -9.
queue_messages = sa.Table(
    "queue_messages",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("blob_hash", sa.String(64), sa.ForeignKey("blobs.hash"), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # The envelope sender; "" is the null reverse-path of bounces (RFC 5321 §4.5.5).
    sa.Column("mail_from", sa.String(320), nullable=False),
    # The submitting account, to which bounces and delay warnings are filed directly.
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created_at", Timestamp, nullable=False),
    # RFC 3461 §4.3-4.4: MAIL FROM's RET ("FULL", "HDRS" or "") and ENVID (decoded).
    sa.Column("ret", sa.String(4), nullable=False, server_default=""),
    sa.Column("envid", sa.String(100), nullable=False, server_default=""),
    # RFC 8689: "required" (MAIL FROM ... REQUIRETLS: verified TLS to a next hop that
    # offers REQUIRETLS, or a bounce), "not-required" (a "TLS-Required: No" header field:
    # clear text when TLS fails), or "" (opportunistic STARTTLS, RFC 7435).
    sa.Column("tls_policy", sa.String(16), nullable=False, server_default=""),
    sa.Index("ix_queue_messages_blob_hash", "blob_hash"),
)

# One recipient of a queued message, with its own retry schedule and outcome.
queue_recipients = sa.Table(
    "queue_recipients",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "message_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("queue_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("domain", sa.String(253), nullable=False),
    # When the worker may try next; a worker that claims a row pushes it forward by a
    # lease, so a crashed worker's rows are retried by another after the lease.
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("delay_warned", sa.Boolean, nullable=False, default=False),
    # RFC 3461 §4.1-4.2: RCPT TO's NOTIFY ("" = FAILURE,DELAY) and ORCPT ("type;address").
    sa.Column("notify", sa.String(32), nullable=False, server_default=""),
    sa.Column("orcpt", sa.String(500), nullable=False, server_default=""),
    sa.Index("ix_queue_recipients_next_attempt_at", "next_attempt_at"),
)

# The final outcome of a queued recipient (issue 7), kept once its queue row is gone so
# that JMAP EmailSubmission deliveryStatus (RFC 8621 §7) can still tell delivered from
# failed. Not a foreign key: the queue_messages row goes with its last recipient. Removed
# with the submission; rows no submission refers to are pruned after a while.
queue_outcomes = sa.Table(
    "queue_outcomes",
    metadata,
    sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("delivered", sa.Boolean, nullable=False),
    # The remote's reply ("250 2.0.0 OK id=..."), or ours when it never answered.
    sa.Column("reply", sa.Text, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=False),
    sa.Index("ix_queue_outcomes_finished_at", "finished_at"),
)

# DKIM signing keys (RFC 6376), kept in SQL so that every node of a cluster signs alike.
dkim_keys = sa.Table(
    "dkim_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("selector", sa.String(63), nullable=False),
    # "rsa-sha256" or "ed25519-sha256" (RFC 8463).
    sa.Column("algorithm", sa.String(32), nullable=False),
    # PKCS#8 PEM for RSA; the raw 32-byte seed, base64, for Ed25519 (dkimpy's format).
    sa.Column("private_key", sa.Text, nullable=False),
    # The base64 public key for the DNS record.
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("domain", "selector"),
)

# -- identity (issue 6): app passwords and second factors --------------------------------

# Per-device passwords for clients that cannot do a second factor (DESIGN.md "Identity
# and security"); only an argon2 hash is kept. Revoked rows stay for the listing.
app_passwords = sa.Table(
    "app_passwords",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("label", sa.String(100), nullable=False),
    # Comma-separated client protocols: imap, pop3, smtp, dav, jmap.
    sa.Column("protocols", sa.String(100), nullable=False),
    sa.Column("hash", sa.String(200), nullable=False),
    # 8 hex digits of SHA-256 of the secret: picks the one row worth an argon2 check.
    # The secret has 79 random bits, so this reveals nothing usable ("" for none).
    sa.Column("hint", sa.String(16), nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("last_used_remote", sa.String(64), nullable=False, default=""),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# An account's second factors (TOTP, WebAuthn: a later part of issue 6). Having one makes
# the main password useless on IMAP, POP3, SMTP and DAV: those need an app password.
second_factors = sa.Table(
    "second_factors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Tables of later subsystems live in their own modules (one owner each); importing them
# here completes ``metadata`` for every user of this module.
from hirondelle.store import schema_blobs as schema_blobs  # noqa: E402
from hirondelle.store import schema_groupware as schema_groupware  # noqa: E402
from hirondelle.store import schema_identity_sources as schema_identity_sources  # noqa: E402
from hirondelle.store import schema_jmap as schema_jmap  # noqa: E402
from hirondelle.store import schema_push as schema_push  # noqa: E402
from hirondelle.store import schema_vacation as schema_vacation  # noqa: E402
from hirondelle.store import schema_web_sessions as schema_web_sessions  # noqa: E402
from hirondelle.store import schema_webmail as schema_webmail  # noqa: E402
