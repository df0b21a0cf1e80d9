"""Whether the webmail may keep an offline copy for an account (issue 8).

The administrator's switch, per domain and per account; the user's own choice ("use this
computer offline") is per device and lives in the browser. The session API reports the
result as ``webOffline``; a webmail that reads ``false`` purges its local copy at once
(as Exchange's OfflineEnabledWeb does).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mail.addresses import normalize_address, normalize_domain
from hirondelle.store import directory, webmail_settings
from hirondelle.store.database import Database, WriteContext


@dataclass(frozen=True, slots=True)
class WebOfflineState:
    """The switches that decide, and the result."""

    address: str
    account: bool | None
    domain: bool | None

    @property
    def allowed(self) -> bool:
        return self.account is not False and self.domain is not False


class WebOfflinePolicy:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def allowed(self, account_id: int) -> bool:
        """True unless the account or its domain forbids the offline copy."""
        return await self.database.read(
            lambda conn: webmail_settings.offline_allowed(conn, account_id)
        )

    async def set_account(self, address: str, *, allowed: bool) -> WebOfflineState:
        normalized = normalize_address(address)

        def write(ctx: WriteContext) -> WebOfflineState:
            account = directory.get_account(ctx.conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            webmail_settings.set_account(ctx, account.id, allowed)
            return _state(ctx.conn, account)

        return await self.database.write(write)

    async def set_domain(self, name: str, *, allowed: bool) -> bool:
        normalized = normalize_domain(name)

        def write(ctx: WriteContext) -> bool:
            domain = directory.get_domain(ctx.conn, normalized)
            if domain is None:
                raise Refused(Reason.NOT_FOUND, f"no domain {normalized}")
            webmail_settings.set_domain(ctx, domain.id, allowed)
            return allowed

        return await self.database.write(write)

    async def state(self, address: str) -> WebOfflineState:
        normalized = normalize_address(address)

        def read(conn: Connection) -> WebOfflineState:
            account = directory.get_account(conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            return _state(conn, account)

        return await self.database.read(read)


def _state(conn: Connection, account: directory.Account) -> WebOfflineState:
    return WebOfflineState(
        address=account.address,
        account=webmail_settings.account_setting(conn, account.id),
        domain=webmail_settings.domain_setting(conn, account.domain_id),
    )
