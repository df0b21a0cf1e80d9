"""Domains, accounts and aliases: the directory of who receives mail here.

Plain functions over a connection (reads) or a :class:`WriteContext` (writes), called
through ``Database.read``/``Database.write`` by the services, which hold the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from hirondelle.errors import Reason, Refused
from hirondelle.store import schema
from hirondelle.store.database import WriteContext, now_us

PROTOCOLS = ("imap", "pop3", "smtp", "dav", "web")


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str
    default_switches: dict[str, bool]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    domain_id: int
    address: str
    display_name: str
    password_hash: str | None
    quota_bytes: int | None
    used_bytes: int
    switches: dict[str, bool]
    disabled: bool
    save_sent_copy: bool
    modseq: int
    journal_floor: int
    credentials_version: int
    created_at: int

    def allows(self, protocol: str) -> bool:
        return self.switches.get(protocol, False)


@dataclass(frozen=True, slots=True)
class Alias:
    id: int
    address: str
    targets: tuple[str, ...]


def _domain(row: Row[tuple[object, ...]]) -> Domain:
    m = row._mapping
    return Domain(
        id=m["id"],
        name=m["name"],
        default_switches={p: bool(m[f"default_{p}"]) for p in PROTOCOLS},
    )


def _account(row: Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        id=m["id"],
        domain_id=m["domain_id"],
        address=m["address"],
        display_name=m["display_name"],
        password_hash=m["password_hash"],
        quota_bytes=m["quota_bytes"],
        used_bytes=m["used_bytes"],
        switches={p: bool(m[f"allow_{p}"]) for p in PROTOCOLS},
        disabled=bool(m["disabled"]),
        save_sent_copy=bool(m["save_sent_copy"]),
        modseq=m["modseq"],
        journal_floor=m["journal_floor"],
        credentials_version=m["credentials_version"],
        created_at=m["created_at"],
    )


# -- domains -------------------------------------------------------------------------


def add_domain(ctx: WriteContext, name: str) -> Domain:
    if get_domain(ctx.conn, name) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"domain {name} already exists")
    domain_id = ctx.conn.execute(
        schema.domains.insert()
        .values(
            name=name,
            created_at=now_us(),
            default_imap=True,
            default_pop3=False,
            default_smtp=True,
            default_dav=True,
            default_web=True,
        )
        .returning(schema.domains.c.id)
    ).scalar_one()
    domain = get_domain(ctx.conn, name)
    assert domain is not None and domain.id == domain_id
    return domain


def get_domain(conn: Connection, name: str) -> Domain | None:
    row = conn.execute(sa.select(schema.domains).where(schema.domains.c.name == name)).first()
    return _domain(row) if row is not None else None


def list_domains(conn: Connection) -> list[tuple[Domain, int]]:
    """Every domain with its number of accounts."""
    count = (
        sa.select(sa.func.count())
        .where(schema.accounts.c.domain_id == schema.domains.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(schema.domains, count.label("accounts")).order_by(schema.domains.c.name)
    )
    return [(_domain(row), int(row._mapping["accounts"])) for row in rows]


def remove_domain(ctx: WriteContext, name: str) -> None:
    domain = get_domain(ctx.conn, name)
    if domain is None:
        raise Refused(Reason.NOT_FOUND, f"no domain {name}")
    accounts = ctx.conn.execute(
        sa.select(sa.func.count()).where(schema.accounts.c.domain_id == domain.id)
    ).scalar_one()
    if accounts:
        raise Refused(
            Reason.IN_USE,
            f"domain {name} still has {accounts} account(s); remove them first",
        )
    ctx.conn.execute(schema.aliases.delete().where(schema.aliases.c.domain_id == domain.id))
    ctx.conn.execute(schema.domains.delete().where(schema.domains.c.id == domain.id))


def set_domain_defaults(ctx: WriteContext, name: str, switches: dict[str, bool]) -> Domain:
    domain = get_domain(ctx.conn, name)
    if domain is None:
        raise Refused(Reason.NOT_FOUND, f"no domain {name}")
    values = {f"default_{p}": on for p, on in switches.items() if p in PROTOCOLS}
    if values:
        ctx.conn.execute(
            schema.domains.update().where(schema.domains.c.id == domain.id).values(**values)
        )
    updated = get_domain(ctx.conn, name)
    assert updated is not None
    return updated


# -- accounts ------------------------------------------------------------------------


def insert_account(
    ctx: WriteContext,
    *,
    domain: Domain,
    address: str,
    display_name: str,
    password_hash: str | None,
    quota_bytes: int | None,
) -> Account:
    if get_account(ctx.conn, address) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"account {address} already exists")
    if get_alias(ctx.conn, address) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"{address} is already an alias")
    ctx.conn.execute(
        schema.accounts.insert().values(
            domain_id=domain.id,
            address=address,
            display_name=display_name,
            password_hash=password_hash,
            quota_bytes=quota_bytes,
            used_bytes=0,
            disabled=False,
            save_sent_copy=False,
            modseq=0,
            journal_floor=0,
            credentials_version=0,
            created_at=now_us(),
            **{f"allow_{p}": on for p, on in domain.default_switches.items()},
        )
    )
    account = get_account(ctx.conn, address)
    assert account is not None
    return account


def get_account(conn: Connection, address: str) -> Account | None:
    row = conn.execute(
        sa.select(schema.accounts).where(schema.accounts.c.address == address)
    ).first()
    return _account(row) if row is not None else None


def get_account_by_id(conn: Connection, account_id: int) -> Account | None:
    row = conn.execute(sa.select(schema.accounts).where(schema.accounts.c.id == account_id)).first()
    return _account(row) if row is not None else None


def list_accounts(conn: Connection, *, domain: str | None = None) -> list[Account]:
    query = sa.select(schema.accounts).order_by(schema.accounts.c.address)
    if domain is not None:
        query = query.join(schema.domains).where(schema.domains.c.name == domain)
    return [_account(row) for row in conn.execute(query)]


def update_account(ctx: WriteContext, address: str, **values: object) -> Account:
    """Update columns of an account (``allow_imap=False``, ``quota_bytes=...``...)."""
    account = get_account(ctx.conn, address)
    if account is None:
        raise Refused(Reason.NOT_FOUND, f"no account {address}")
    if values:
        ctx.conn.execute(
            schema.accounts.update().where(schema.accounts.c.id == account.id).values(**values)
        )
    updated = get_account(ctx.conn, address)
    assert updated is not None
    return updated


def delete_account(ctx: WriteContext, address: str) -> list[str]:
    """Remove an account and everything it owns; returns the blob hashes it released."""
    account = get_account(ctx.conn, address)
    if account is None:
        raise Refused(Reason.NOT_FOUND, f"no account {address}")
    hashes = [
        row[0]
        for row in ctx.conn.execute(
            sa.select(schema.emails.c.blob_hash).where(schema.emails.c.account_id == account.id)
        )
    ]
    from hirondelle.store import search  # the search index has no FK on SQLite

    search.remove_account(ctx.conn, account.id)
    ctx.conn.execute(
        schema.mailbox_messages.delete().where(
            schema.mailbox_messages.c.mailbox_id.in_(
                sa.select(schema.mailboxes.c.id).where(schema.mailboxes.c.account_id == account.id)
            )
        )
    )
    from hirondelle.store.emails import keep_email_ids_unique

    keep_email_ids_unique(ctx.conn)
    ctx.conn.execute(schema.emails.delete().where(schema.emails.c.account_id == account.id))
    ctx.conn.execute(schema.mailboxes.delete().where(schema.mailboxes.c.account_id == account.id))
    ctx.conn.execute(
        schema.message_ids.delete().where(schema.message_ids.c.account_id == account.id)
    )
    ctx.conn.execute(schema.journal.delete().where(schema.journal.c.account_id == account.id))
    ctx.conn.execute(
        schema.audit_log.update()
        .where(schema.audit_log.c.account_id == account.id)
        .values(account_id=None)
    )
    ctx.conn.execute(schema.accounts.delete().where(schema.accounts.c.id == account.id))
    from hirondelle.store import emails  # circular at import time only

    emails.release_blobs(ctx.conn, hashes)
    return hashes


# -- aliases -------------------------------------------------------------------------


def get_alias(conn: Connection, address: str) -> Alias | None:
    row = conn.execute(sa.select(schema.aliases).where(schema.aliases.c.address == address)).first()
    if row is None:
        return None
    targets = conn.execute(
        sa.select(schema.alias_targets.c.target)
        .where(schema.alias_targets.c.alias_id == row.id)
        .order_by(schema.alias_targets.c.target)
    ).scalars()
    return Alias(id=row.id, address=row.address, targets=tuple(targets))


def add_alias(ctx: WriteContext, *, domain: Domain, address: str, targets: Iterable[str]) -> Alias:
    """Create an alias, or add targets to an existing one."""
    if get_account(ctx.conn, address) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"{address} is an account, not an alias")
    existing = get_alias(ctx.conn, address)
    if existing is None:
        alias_id = ctx.conn.execute(
            schema.aliases.insert()
            .values(domain_id=domain.id, address=address, created_at=now_us())
            .returning(schema.aliases.c.id)
        ).scalar_one()
        known: set[str] = set()
    else:
        alias_id = existing.id
        known = set(existing.targets)
    new = [t for t in dict.fromkeys(targets) if t not in known]
    if new:
        ctx.conn.execute(
            schema.alias_targets.insert(), [{"alias_id": alias_id, "target": t} for t in new]
        )
    alias = get_alias(ctx.conn, address)
    assert alias is not None
    return alias


def remove_alias(ctx: WriteContext, address: str) -> None:
    alias = get_alias(ctx.conn, address)
    if alias is None:
        raise Refused(Reason.NOT_FOUND, f"no alias {address}")
    ctx.conn.execute(schema.aliases.delete().where(schema.aliases.c.id == alias.id))


def list_aliases(conn: Connection, *, domain: str | None = None) -> list[Alias]:
    query = (
        sa.select(schema.aliases.c.id, schema.aliases.c.address, schema.alias_targets.c.target)
        .join(schema.alias_targets, isouter=True)
        .order_by(schema.aliases.c.address, schema.alias_targets.c.target)
    )
    if domain is not None:
        query = query.join(schema.domains).where(schema.domains.c.name == domain)
    grouped: dict[int, tuple[str, list[str]]] = {}
    for alias_id, address, target in conn.execute(query):
        entry = grouped.setdefault(alias_id, (address, []))
        if target is not None:
            entry[1].append(target)
    return [Alias(id=i, address=a, targets=tuple(t)) for i, (a, t) in grouped.items()]
