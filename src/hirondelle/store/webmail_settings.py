"""The webmail's per-domain and per-account settings (issue 8): the offline switch.

Plain functions over a connection (reads) or a :class:`WriteContext` (writes), called by
:class:`hirondelle.identity.web_offline.WebOfflinePolicy`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.schema import accounts
from hirondelle.store.schema_webmail import webmail_account_settings, webmail_domain_settings


def offline_allowed(conn: Connection, account_id: int) -> bool:
    """Whether neither the account nor its domain forbids the offline copy."""
    forbidden = conn.execute(
        sa.select(sa.func.count())
        .select_from(accounts)
        .outerjoin(webmail_account_settings, webmail_account_settings.c.account_id == accounts.c.id)
        .outerjoin(
            webmail_domain_settings, webmail_domain_settings.c.domain_id == accounts.c.domain_id
        )
        .where(
            accounts.c.id == account_id,
            sa.or_(
                webmail_account_settings.c.offline_allowed.is_(False),
                webmail_domain_settings.c.offline_allowed.is_(False),
            ),
        )
    ).scalar_one()
    return forbidden == 0


def account_setting(conn: Connection, account_id: int) -> bool | None:
    """The account's own switch; None when it has none (the domain's applies)."""
    value = conn.execute(
        sa.select(webmail_account_settings.c.offline_allowed).where(
            webmail_account_settings.c.account_id == account_id
        )
    ).scalar_one_or_none()
    return None if value is None else bool(value)


def domain_setting(conn: Connection, domain_id: int) -> bool | None:
    """The domain's switch; None when it has none (allowed)."""
    value = conn.execute(
        sa.select(webmail_domain_settings.c.offline_allowed).where(
            webmail_domain_settings.c.domain_id == domain_id
        )
    ).scalar_one_or_none()
    return None if value is None else bool(value)


def _upsert(ctx: WriteContext, table: sa.Table, key: str, key_value: int, allowed: bool) -> None:
    values = {key: key_value, "offline_allowed": allowed, "updated_at": now_us()}
    update = {"offline_allowed": allowed, "updated_at": values["updated_at"]}
    insert = postgresql.insert if ctx.conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    ctx.conn.execute(statement.on_conflict_do_update(index_elements=[key], set_=update))


def set_account(ctx: WriteContext, account_id: int, allowed: bool) -> None:
    _upsert(ctx, webmail_account_settings, "account_id", account_id, allowed)


def set_domain(ctx: WriteContext, domain_id: int, allowed: bool) -> None:
    _upsert(ctx, webmail_domain_settings, "domain_id", domain_id, allowed)
