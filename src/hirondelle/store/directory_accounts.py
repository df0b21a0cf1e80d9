"""Local accounts that an external directory (LDAP) is the source of.

Each such account has a ``directory_accounts`` row naming its entry (the DN) and the
aliases the directory gave it. Plain functions over a :class:`WriteContext`, called
through ``Database.write`` by :mod:`hirondelle.identity.ldap`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import directory, mailboxes, schema
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.directory import Account
from hirondelle.store.schema_identity_sources import directory_accounts as links


@dataclass(frozen=True, slots=True)
class SyncReport:
    refreshed: int = 0
    disabled: int = 0
    enabled: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    account_id: int
    source: str
    external_id: str
    aliases: tuple[str, ...]
    disabled_by_sync: bool


def get_link(conn: Connection, account_id: int) -> Link | None:
    row = conn.execute(sa.select(links).where(links.c.account_id == account_id)).first()
    if row is None:
        return None
    return Link(
        account_id=row.account_id,
        source=row.source,
        external_id=row.external_id,
        aliases=tuple(row.aliases.split()),
        disabled_by_sync=bool(row.disabled_by_sync),
    )


def _domain_of(conn: Connection, address: str) -> directory.Domain | None:
    return directory.get_domain(conn, address.rpartition("@")[2])


def _reconcile_aliases(
    ctx: WriteContext, account: Account, managed: Sequence[str], wanted: Sequence[str]
) -> tuple[str, ...]:
    """Make the aliases this source manages for ``account`` those of ``wanted`` that
    are free in a local domain; an alias someone else set up is never taken over or
    removed. Returns the aliases now managed."""
    conn = ctx.conn
    kept: list[str] = []
    for alias in managed:
        existing = directory.get_alias(conn, alias)
        if alias in wanted:
            if existing is not None and existing.targets == (account.address,):
                kept.append(alias)
            continue
        if existing is not None and existing.targets == (account.address,):
            directory.remove_alias(ctx, alias)
    for alias in wanted:
        if alias in kept:
            continue
        domain = _domain_of(conn, alias)
        if domain is None or directory.get_account(conn, alias) is not None:
            continue
        existing = directory.get_alias(conn, alias)
        if existing is None:
            try:
                with conn.begin_nested():  # a concurrent refresh may create it first
                    directory.add_alias(
                        ctx, domain=domain, address=alias, targets=[account.address]
                    )
            except sa.exc.IntegrityError:
                existing = directory.get_alias(conn, alias)
                if existing is None or existing.targets != (account.address,):
                    continue
        elif existing.targets != (account.address,):
            continue  # an administrator's alias: leave it alone
        kept.append(alias)
    return tuple(kept)


def _refresh(
    ctx: WriteContext,
    account: Account,
    link: Link,
    *,
    external_id: str,
    display_name: str,
    aliases: Sequence[str],
) -> tuple[Account, bool]:
    """Bring ``account`` in line with its directory entry; True if it was re-enabled."""
    values: dict[str, object] = {}
    if display_name != account.display_name:
        values["display_name"] = display_name
    enabled = link.disabled_by_sync and account.disabled
    if enabled:
        values["disabled"] = False
    if values:
        account = directory.update_account(ctx, account.address, **values)
    managed = _reconcile_aliases(ctx, account, link.aliases, aliases)
    ctx.conn.execute(
        links.update()
        .where(links.c.account_id == account.id)
        .values(
            external_id=external_id,
            aliases=" ".join(managed),
            disabled_by_sync=False,
            synced_at=now_us(),
        )
    )
    return account, enabled


def provision(
    ctx: WriteContext,
    *,
    source: str,
    external_id: str,
    address: str,
    display_name: str,
    aliases: Sequence[str],
) -> Account | None:
    """The local account of a directory entry that just proved its password: created
    (with the default mailboxes) on first login, refreshed afterwards. None when the
    address is in no local domain or is a local alias."""
    conn = ctx.conn
    domain = _domain_of(conn, address)
    if domain is None:
        return None
    account = directory.get_account(conn, address)
    if account is None:
        if directory.get_alias(conn, address) is not None:
            return None
        try:
            # A savepoint: the first logins of one person on two nodes (or two
            # connections) at once race to create the account; the loser uses the
            # winner's (PostgreSQL waits for it to commit, then reports the duplicate).
            with conn.begin_nested():
                account = directory.insert_account(
                    ctx,
                    domain=domain,
                    address=address,
                    display_name=display_name,
                    password_hash=None,
                    quota_bytes=None,
                )
                mailboxes.create_default_mailboxes(ctx, account.id)
        except sa.exc.IntegrityError:
            account = directory.get_account(conn, address)
            if account is None:
                raise
    link = get_link(conn, account.id)
    if link is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    links.insert().values(
                        account_id=account.id,
                        source=source,
                        external_id=external_id,
                        aliases="",
                        disabled_by_sync=False,
                        synced_at=now_us(),
                    )
                )
        except sa.exc.IntegrityError:
            pass  # linked by a concurrent first login
        link = get_link(conn, account.id)
        assert link is not None
    account, _ = _refresh(
        ctx,
        account,
        link,
        external_id=external_id,
        display_name=display_name,
        aliases=aliases,
    )
    return account


def sync(
    ctx: WriteContext,
    *,
    source: str,
    present: Mapping[str, tuple[str, str, Sequence[str]]],
) -> SyncReport:
    """Compare every account of ``source`` with ``present`` (lower-cased DN -> address,
    display name, aliases): refresh those still there, disable those gone (ending their
    sessions and cached logins: the credentials version is bumped)."""
    conn = ctx.conn
    rows = conn.execute(
        sa.select(links.c.account_id).where(links.c.source == source).order_by(links.c.account_id)
    ).scalars()
    refreshed = disabled = enabled = 0
    for account_id in list(rows):
        account = directory.get_account_by_id(conn, account_id)
        link = get_link(conn, account_id)
        if account is None or link is None:
            continue
        entry = present.get(link.external_id.lower())
        if entry is not None and entry[0] == account.address:
            _, was_enabled = _refresh(
                ctx,
                account,
                link,
                external_id=link.external_id,
                display_name=entry[1],
                aliases=entry[2],
            )
            refreshed += 1
            enabled += was_enabled
            continue
        # Gone from the directory (or its entry now holds another address).
        if not account.disabled:
            directory.update_account(
                ctx,
                account.address,
                disabled=True,
                credentials_version=schema.accounts.c.credentials_version + 1,
            )
            conn.execute(
                links.update()
                .where(links.c.account_id == account_id)
                .values(disabled_by_sync=True, synced_at=now_us())
            )
            disabled += 1
    return SyncReport(refreshed=refreshed, disabled=disabled, enabled=enabled)
