"""The store side of sealing TOTP secrets again: those written before they were
encrypted (migration 0021) and those sealed under a previous key
(:mod:`hirondelle.identity.secret_box` does the cryptography, never this module).

Values sealed under the current key start with ``v1:<key id>:``; a base32 secret never
contains ``:``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext
from hirondelle.store.schema_web_sessions import totp_enrolments, totp_factors


def unsealed_totp_factors(conn: Connection, current: str) -> list[tuple[int, int, str]]:
    """(factor id, account id, secret) of every TOTP factor whose secret does not start
    with ``current`` (in clear, or sealed under another key)."""
    f, t = schema.second_factors, totp_factors
    rows = conn.execute(
        sa.select(t.c.second_factor_id, f.c.account_id, t.c.secret)
        .select_from(t.join(f, f.c.id == t.c.second_factor_id))
        .where(sa.not_(t.c.secret.startswith(current, autoescape=True)))
    )
    return [(row.second_factor_id, row.account_id, row.secret) for row in rows]


def unsealed_totp_enrolments(conn: Connection, current: str) -> list[tuple[int, str]]:
    """(account id, secret) of every TOTP enrolment not sealed under ``current``."""
    t = totp_enrolments
    rows = conn.execute(
        sa.select(t.c.account_id, t.c.secret).where(
            sa.not_(t.c.secret.startswith(current, autoescape=True))
        )
    )
    return [(row.account_id, row.secret) for row in rows]


def replace_totp_factor_secret(ctx: WriteContext, factor_id: int, old: str, new: str) -> bool:
    """Compare-and-set: False when the row changed meanwhile (another node sealed it)."""
    t = totp_factors
    done = ctx.conn.execute(
        t.update().where(t.c.second_factor_id == factor_id, t.c.secret == old).values(secret=new)
    ).rowcount
    return bool(done)


def replace_totp_enrolment_secret(ctx: WriteContext, account_id: int, old: str, new: str) -> bool:
    t = totp_enrolments
    done = ctx.conn.execute(
        t.update().where(t.c.account_id == account_id, t.c.secret == old).values(secret=new)
    ).rowcount
    return bool(done)
