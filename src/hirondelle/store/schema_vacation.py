"""Vacation responses and the log of who was answered (RFC 8621 §8, RFC 3834), and the
other JMAP mail objects with state of their own: Identity (RFC 8621 §6) and
EmailSubmission (RFC 8621 §7) (issue 7, "jmap-mail").

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0011 creates them.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# RFC 8621 §8: one VacationResponse per account (a singleton); no row = disabled.
vacation_responses = sa.Table(
    "vacation_responses",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("is_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("from_date", Timestamp, nullable=True),
    sa.Column("to_date", Timestamp, nullable=True),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("text_body", sa.Text, nullable=True),
    sa.Column("html_body", sa.Text, nullable=True),
    # Bumped on every change: a new message resets who was answered (RFC 3834 §2 lets the
    # interval restart when the response changes).
    sa.Column("generation", sa.Integer, nullable=False, default=0),
)

# RFC 3834 §2: "one reply per sender per interval": who was answered, and when.
vacation_log = sa.Table(
    "vacation_log",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("sender", sa.String(320), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("replied_at", Timestamp, nullable=False),
)

# RFC 8621 §6: the identities an account may send as. One row per address the account
# owns (its own and its aliases, created on first use) plus any the user adds.
jmap_identities = sa.Table(
    "jmap_identities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False, default=""),
    # JSON lists of EmailAddress, or null.
    sa.Column("reply_to", sa.Text, nullable=True),
    sa.Column("bcc", sa.Text, nullable=True),
    sa.Column("text_signature", sa.Text, nullable=False, default=""),
    sa.Column("html_signature", sa.Text, nullable=False, default=""),
    # True for the rows made from the account's addresses: they may not be destroyed.
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# RFC 8621 §7: a submitted email, its envelope and what became of each recipient.
email_submissions = sa.Table(
    "email_submissions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    account_id_column(nullable=False),
    sa.Column("identity_id", sa.Integer, nullable=False),
    # Not foreign keys: the email may be destroyed (onSuccessDestroyEmail), the queue row
    # goes once every recipient is done; the submission stays.
    sa.Column("email_id", _ID, nullable=False),
    sa.Column("thread_id", _ID, nullable=False),
    sa.Column("queue_message_id", _ID, nullable=True),
    # JSON: the Envelope (mailFrom, rcptTo) and the initial deliveryStatus by address.
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("delivery_status", sa.Text, nullable=False),
    sa.Column("send_at", Timestamp, nullable=False),
    sa.Column("undo_status", sa.String(9), nullable=False),
    sa.Index("ix_email_submissions_account_id_send_at", "account_id", "send_at"),
)
