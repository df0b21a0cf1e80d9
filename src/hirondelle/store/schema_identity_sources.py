"""LDAP-sourced accounts and the store-backed login rate limiter (issue 6).

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0010 creates them.

- ``directory_accounts`` links a local account to the external directory entry it was
  created from (its DN), remembers which aliases the directory gave it (so that a later
  sync removes only those) and whether the sync disabled it (so that only a sync
  re-enables it: an administrator's ``account set --disabled`` is left alone).
- ``login_failures`` and ``login_lockouts`` hold the rate limiter's state where every
  node of a cluster sees it (``scope`` is ``"account"`` or ``"address"``; ``key`` is the
  address as typed, normalized, or the remote IP address).
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

__all__ = ["directory_accounts", "login_failures", "login_lockouts"]

directory_accounts = sa.Table(
    "directory_accounts",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(1000), nullable=False),
    # Space-separated aliases this source created for the account.
    sa.Column("aliases", sa.Text, nullable=False, default=""),
    sa.Column("disabled_by_sync", sa.Boolean, nullable=False, default=False),
    sa.Column("synced_at", Timestamp, nullable=False),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("key", sa.String(320), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index(None, "scope", "key", "at"),
)

login_lockouts = sa.Table(
    "login_lockouts",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),
    sa.Column("key", sa.String(320), primary_key=True),
    sa.Column("locked_until", Timestamp, nullable=False),
    sa.Column("strikes", sa.Integer, nullable=False),
    sa.Column("last_lockout", Timestamp, nullable=False),
)
