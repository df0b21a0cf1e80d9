"""Tables of JMAP push (RFC 8620 §7): push subscriptions. Owned by the JMAP push work.

Migration 0018 creates them. A subscription belongs to the account that created it
(RFC 8620 §7.2: subscriptions are per user, not per account; here a user is its one
account) and goes with it.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    account_id_column(nullable=False, index=True),
    # RFC 8620 §7.2 deviceClientId, as the client gave it (at most 255 characters).
    sa.Column("device_client_id", sa.String(255), nullable=False),
    # The push endpoint (https, or http to loopback when the switch allows it).
    sa.Column("url", sa.String(2048), nullable=False),
    # The code POSTed in the PushVerification object, and whether the client has
    # echoed it back (no StateChange is sent before).
    sa.Column("verification_code", sa.String(64), nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False, default=False),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
    # JSON array of type names, or NULL for every type.
    sa.Column("types", sa.Text, nullable=True),
    # The account modseq of the last StateChange the endpoint accepted: after a restart,
    # anything newer is pushed at once.
    sa.Column("pushed_modseq", sa.BigInteger, nullable=False, default=0),
    # Consecutive permanent refusals by the endpoint (4xx); reset by a success.
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
)

__all__ = ["push_subscriptions"]
