"""The store side of sealing TOTP secrets written before they were encrypted (migration
0021; :mod:`hirondelle.identity.secret_box` does the cryptography, never this module).

Sealed values start with ``v1:``; a base32 secret never contains ``:``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext
from hirondelle.store.schema_web_sessions import totp_enrolments, totp_factors

SEALED_PREFIX = "v1:"


def unsealed_totp_factors(conn: Connection) -> list[tuple[int, int, str]]:
    """(factor id, account id, secret) of every TOTP factor stored unsealed."""
    f, t = schema.second_factors, totp_factors
    rows = conn.execute(
        sa.select(t.c.second_factor_id, f.c.account_id, t.c.secret)
        .select_from(t.join(f, f.c.id == t.c.second_factor_id))
        .where(sa.not_(t.c.secret.startswith(SEALED_PREFIX, autoescape=True)))
    )
    return [(row.second_factor_id, row.account_id, row.secret) for row in rows]


def unsealed_totp_enrolments(conn: Connection) -> list[tuple[int, str]]:
    """(account id, secret) of every TOTP enrolment stored unsealed."""
    t = totp_enrolments
    rows = conn.execute(
        sa.select(t.c.account_id, t.c.secret).where(
            sa.not_(t.c.secret.startswith(SEALED_PREFIX, autoescape=True))
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
