"""App passwords and second factors of accounts (DESIGN.md "Identity and security")."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext


@dataclass(frozen=True, slots=True)
class AppPassword:
    id: int
    account_id: int
    label: str
    protocols: tuple[str, ...]
    hash: str
    hint: str
    created_at: int
    last_used_at: int | None
    last_used_remote: str
    revoked_at: int | None


def _app_password(row: sa.Row[tuple[object, ...]]) -> AppPassword:
    m = row._mapping
    return AppPassword(
        id=m["id"],
        account_id=m["account_id"],
        label=m["label"],
        protocols=tuple(p for p in m["protocols"].split(",") if p),
        hash=m["hash"],
        hint=m["hint"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        last_used_remote=m["last_used_remote"],
        revoked_at=m["revoked_at"],
    )


def insert_app_password(
    ctx: WriteContext,
    *,
    account_id: int,
    label: str,
    protocols: tuple[str, ...],
    password_hash: str,
    hint: str,
    at: int,
) -> AppPassword:
    t = schema.app_passwords
    row = ctx.conn.execute(
        t.insert()
        .values(
            account_id=account_id,
            label=label,
            protocols=",".join(protocols),
            hash=password_hash,
            hint=hint,
            created_at=at,
            last_used_remote="",
        )
        .returning(*t.c)
    ).one()
    return _app_password(row)


def list_app_passwords(
    conn: Connection, account_id: int, *, include_revoked: bool = False
) -> list[AppPassword]:
    t = schema.app_passwords
    q = sa.select(t).where(t.c.account_id == account_id).order_by(t.c.id)
    if not include_revoked:
        q = q.where(t.c.revoked_at.is_(None))
    return [_app_password(r) for r in conn.execute(q)]


def get_app_password(conn: Connection, app_password_id: int) -> AppPassword | None:
    t = schema.app_passwords
    row = conn.execute(sa.select(t).where(t.c.id == app_password_id)).one_or_none()
    return _app_password(row) if row is not None else None


def revoke_app_password(ctx: WriteContext, account_id: int, app_password_id: int, at: int) -> bool:
    """Revoke one app password; the account's ``credentials_version`` moves on, so every
    node's verification cache forgets what the password unlocked."""
    t = schema.app_passwords
    done = ctx.conn.execute(
        t.update()
        .where(
            t.c.id == app_password_id,
            t.c.account_id == account_id,
            t.c.revoked_at.is_(None),
        )
        .values(revoked_at=at)
    ).rowcount
    if not done:
        return False
    a = schema.accounts
    ctx.conn.execute(
        a.update()
        .where(a.c.id == account_id)
        .values(credentials_version=a.c.credentials_version + 1)
    )
    return True


def record_app_password_use(ctx: WriteContext, app_password_id: int, at: int, remote: str) -> None:
    t = schema.app_passwords
    ctx.conn.execute(
        t.update()
        .where(t.c.id == app_password_id)
        .values(last_used_at=at, last_used_remote=remote[:64])
    )


def has_second_factor(conn: Connection, account_id: int) -> bool:
    t = schema.second_factors
    return (
        conn.execute(sa.select(t.c.id).where(t.c.account_id == account_id).limit(1)).first()
        is not None
    )


def add_second_factor(ctx: WriteContext, account_id: int, kind: str, at: int) -> None:
    ctx.conn.execute(
        schema.second_factors.insert().values(account_id=account_id, kind=kind, created_at=at)
    )


def succeeded_from(conn: Connection, address: str, remote: str, since: int) -> bool:
    """Whether ``address`` (an account's) logged in successfully from ``remote`` since
    ``since``, according to the audit log: it survives restarts, unlike the limiter."""
    a, accounts = schema.audit_log, schema.accounts
    account_id = sa.select(accounts.c.id).where(accounts.c.address == address).scalar_subquery()
    q = (
        sa.select(a.c.id)
        .where(
            a.c.account_id == account_id,
            a.c.at >= since,
            a.c.remote == remote[:64],
            a.c.outcome == "success",
        )
        .limit(1)
    )
    return conn.execute(q).first() is not None
