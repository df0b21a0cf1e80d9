"""Domains and accounts: the rules the `hirondelle` command and the admin API share.

Creating an account creates its standard mailboxes in the same transaction, so an
account is never seen without its Inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.identity import password_policy
from hirondelle.identity.passwords import hash_password
from hirondelle.mail.addresses import normalize_address, normalize_domain, split_address
from hirondelle.store import directory, mailboxes, schema, web_sessions
from hirondelle.store.blobs import BlobStore
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.directory import Account, Domain

MAX_DISPLAY_NAME = 200
# Largest quota: 1 PiB (sizes are 64-bit integers in the store; this leaves room).
MAX_QUOTA = 1 << 50


class Unchanged(Enum):
    """Marks an argument that keeps its current value (``None`` means "unlimited")."""

    TOKEN = "unchanged"


UNCHANGED = Unchanged.TOKEN


class AccountService:
    def __init__(
        self, database: Database, blobs: BlobStore, *, password_min_length: int = 10
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.password_min_length = password_min_length

    # -- domains ---------------------------------------------------------------------

    async def add_domain(self, name: str) -> Domain:
        domain = normalize_domain(name)
        return await self.database.write(lambda ctx: directory.add_domain(ctx, domain))

    async def remove_domain(self, name: str) -> None:
        domain = normalize_domain(name)
        await self.database.write(lambda ctx: directory.remove_domain(ctx, domain))

    async def list_domains(self) -> list[tuple[Domain, int]]:
        return await self.database.read(directory.list_domains)

    # -- accounts --------------------------------------------------------------------

    def check_password(self, password: str) -> None:
        """The password policy (:mod:`hirondelle.identity.password_policy`): raises
        :class:`~hirondelle.identity.password_policy.WeakPassword`."""
        password_policy.check(password, min_length=self.password_min_length)

    async def add_account(
        self,
        address: str,
        *,
        password: str | None,
        display_name: str = "",
        quota_bytes: int | None = None,
    ) -> Account:
        normalized = normalize_address(address)
        _, domain_name = split_address(normalized)
        if len(display_name) > MAX_DISPLAY_NAME:
            raise Refused(Reason.INVALID, "display name too long")
        self.check_quota(quota_bytes)
        if password is not None:
            self.check_password(password)
        password_hash = await hash_password(password) if password is not None else None

        def write(ctx: WriteContext) -> Account:
            domain = directory.get_domain(ctx.conn, domain_name)
            if domain is None:
                raise Refused(
                    Reason.NOT_FOUND,
                    f"unknown domain {domain_name}: add it first with `domain add`",
                )
            account = directory.insert_account(
                ctx,
                domain=domain,
                address=normalized,
                display_name=display_name,
                password_hash=password_hash,
                quota_bytes=quota_bytes,
            )
            mailboxes.create_default_mailboxes(ctx, account.id)
            return account

        return await self.database.write(write)

    async def get_account(self, address: str) -> Account:
        normalized = normalize_address(address)
        account = await self.database.read(lambda conn: directory.get_account(conn, normalized))
        if account is None:
            raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
        return account

    async def list_accounts(self, *, domain: str | None = None) -> list[Account]:
        name = normalize_domain(domain) if domain is not None else None

        def read(conn: Connection) -> list[Account]:
            if name is not None and directory.get_domain(conn, name) is None:
                raise Refused(Reason.NOT_FOUND, f"no domain {name}")
            return directory.list_accounts(conn, domain=name)

        return await self.database.read(read)

    @staticmethod
    def check_quota(quota_bytes: int | None) -> None:
        if quota_bytes is not None and not 0 <= quota_bytes <= MAX_QUOTA:
            raise Refused(Reason.INVALID, "quota must be between 0 and 1P")

    async def set_password(self, address: str, password: str) -> Account:
        normalized = normalize_address(address)
        self.check_password(password)
        password_hash = await hash_password(password)

        def write(ctx: WriteContext) -> Account:
            account = directory.update_account(
                ctx,
                normalized,
                password_hash=password_hash,
                credentials_version=schema.accounts.c.credentials_version + 1,
            )
            # A new password ends every web session (issue 6 item 5); the version bump
            # makes every node's verification cache forget the old one.
            web_sessions.revoke_all(ctx, account.id)
            return account

        return await self.database.write(write)

    async def update_account(
        self,
        address: str,
        *,
        switches: Mapping[str, bool] | None = None,
        quota_bytes: int | Unchanged | None = UNCHANGED,
        display_name: str | None = None,
        disabled: bool | None = None,
        save_sent_copy: bool | None = None,
    ) -> Account:
        """Change what is given; ``quota_bytes=None`` means unlimited."""
        normalized = normalize_address(address)
        values: dict[str, object] = {}
        for protocol, on in (switches or {}).items():
            if protocol not in directory.PROTOCOLS:
                raise Refused(Reason.INVALID, f"unknown protocol {protocol!r}")
            values[f"allow_{protocol}"] = on
        if quota_bytes is not UNCHANGED:
            self.check_quota(quota_bytes)
            values["quota_bytes"] = quota_bytes
        if display_name is not None:
            if len(display_name) > MAX_DISPLAY_NAME:
                raise Refused(Reason.INVALID, "display name too long")
            values["display_name"] = display_name
        if disabled is not None:
            values["disabled"] = disabled
        if save_sent_copy is not None:
            values["save_sent_copy"] = save_sent_copy
        return await self.database.write(
            lambda ctx: directory.update_account(ctx, normalized, **values)
        )

    async def remove_account(self, address: str) -> None:
        normalized = normalize_address(address)
        await self.database.write(lambda ctx: directory.delete_account(ctx, normalized))
