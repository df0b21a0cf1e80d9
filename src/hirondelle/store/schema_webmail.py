"""Webmail settings such as the per-domain and per-account offline switch (issue 8).

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0012 creates them.

The offline switch: an administrator may forbid the webmail's offline copy for a whole
domain or for one account (``hirondelle domain set --web-offline off``, ``hirondelle
account set --web-offline off``). A missing row means "allowed"; offline use is allowed
only when neither the domain nor the account forbids it. The webmail learns the answer
from the session API (``webOffline``) and purges its local copy when it is false.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

__all__ = ["Timestamp", "metadata", "sa", "webmail_account_settings", "webmail_domain_settings"]

webmail_domain_settings = sa.Table(
    "webmail_domain_settings",
    metadata,
    sa.Column(
        "domain_id",
        sa.Integer,
        sa.ForeignKey("domains.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("offline_allowed", sa.Boolean, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

webmail_account_settings = sa.Table(
    "webmail_account_settings",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("offline_allowed", sa.Boolean, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
