"""What an SMTP RCPT needs from the store in the common case: the account with exactly
that address, in one prepared statement.

:func:`hirondelle.mail.recipients.resolve` answers every case (aliases, ``+tag``,
catch-all) with four or more Core statements; an account's own address is rule 1 of
that resolution (first match wins), so when it matches, nothing else need be read.
An account always belongs to a local domain (``accounts.domain_id`` is a RESTRICT
foreign key), so the match also answers "is the domain local".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from hirondelle.store.database import DriverStatement, driver_cursor


@dataclass(frozen=True, slots=True)
class RecipientAccount:
    """What RCPT checks of an account: it exists, is enabled, has room."""

    id: int
    address: str
    disabled: bool
    quota_bytes: int | None
    used_bytes: int


_BY_ADDRESS = DriverStatement(
    "SELECT id, address, disabled, quota_bytes, used_bytes FROM accounts WHERE address = ?"
)


def account_by_address(conn: Connection, address: str) -> RecipientAccount | None:
    """The account whose address is exactly ``address`` (already normalized)."""
    cursor = driver_cursor(conn)
    try:
        cursor.execute(_BY_ADDRESS.text(conn.dialect.name), (address,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    account_id, found, disabled, quota_bytes, used_bytes = row
    return RecipientAccount(
        id=int(account_id),
        address=str(found),
        disabled=bool(disabled),
        quota_bytes=None if quota_bytes is None else int(quota_bytes),
        used_bytes=int(used_bytes),
    )
