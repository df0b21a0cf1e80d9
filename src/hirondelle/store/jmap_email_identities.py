"""SQL of JMAP Identity (RFC 8621 §6): the addresses an account sends as, each with its
name, Reply-To, Bcc and signatures."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.schema_vacation import jmap_identities

KIND = "Identity"


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: int
    email: str
    name: str
    reply_to: list[dict[str, Any]] | None
    bcc: list[dict[str, Any]] | None
    text_signature: str
    html_signature: str
    is_default: bool


def _row(row: Any) -> IdentityRow:
    return IdentityRow(
        id=int(row.id),
        email=str(row.email),
        name=str(row.name),
        reply_to=json.loads(row.reply_to) if row.reply_to is not None else None,
        bcc=json.loads(row.bcc) if row.bcc is not None else None,
        text_signature=str(row.text_signature),
        html_signature=str(row.html_signature),
        is_default=bool(row.is_default),
    )


def list_identities(conn: Connection, account_id: int) -> list[IdentityRow]:
    rows = conn.execute(
        sa.select(jmap_identities)
        .where(jmap_identities.c.account_id == account_id)
        .order_by(jmap_identities.c.id)
    )
    return [_row(row) for row in rows]


def get_identity(conn: Connection, account_id: int, identity_id: int) -> IdentityRow | None:
    row = conn.execute(
        sa.select(jmap_identities).where(
            jmap_identities.c.account_id == account_id, jmap_identities.c.id == identity_id
        )
    ).first()
    return _row(row) if row is not None else None


def sync_defaults(ctx: WriteContext, account_id: int, addresses: Iterable[str], name: str) -> None:
    """One default identity per address the account owns: made for a new address (an
    alias added since), removed for one the account no longer owns."""
    wanted = set(addresses)
    have = {
        str(email): int(identity_id)
        for identity_id, email in ctx.conn.execute(
            sa.select(jmap_identities.c.id, jmap_identities.c.email).where(
                jmap_identities.c.account_id == account_id,
                jmap_identities.c.is_default.is_(True),
            )
        )
    }
    for address in sorted(wanted - set(have)):
        insert_identity(ctx, account_id, email=address, name=name, is_default=True)
    for address in sorted(set(have) - wanted):
        delete_identity(ctx, account_id, have[address])


def insert_identity(
    ctx: WriteContext,
    account_id: int,
    *,
    email: str,
    name: str = "",
    reply_to: list[dict[str, Any]] | None = None,
    bcc: list[dict[str, Any]] | None = None,
    text_signature: str = "",
    html_signature: str = "",
    is_default: bool = False,
) -> int:
    identity_id = int(
        ctx.conn.execute(
            jmap_identities.insert()
            .values(
                account_id=account_id,
                email=email,
                name=name,
                reply_to=json.dumps(reply_to) if reply_to is not None else None,
                bcc=json.dumps(bcc) if bcc is not None else None,
                text_signature=text_signature,
                html_signature=html_signature,
                is_default=is_default,
                created_at=now_us(),
            )
            .returning(jmap_identities.c.id)
        ).scalar_one()
    )
    ctx.journal(account_id, KIND, identity_id, "created")
    return identity_id


def update_identity(ctx: WriteContext, account_id: int, identity_id: int, **values: Any) -> None:
    for key in ("reply_to", "bcc"):
        if key in values:
            values[key] = json.dumps(values[key]) if values[key] is not None else None
    ctx.conn.execute(
        jmap_identities.update()
        .where(jmap_identities.c.account_id == account_id, jmap_identities.c.id == identity_id)
        .values(**values)
    )
    ctx.journal(account_id, KIND, identity_id, "updated")


def delete_identity(ctx: WriteContext, account_id: int, identity_id: int) -> None:
    ctx.conn.execute(
        jmap_identities.delete().where(
            jmap_identities.c.account_id == account_id, jmap_identities.c.id == identity_id
        )
    )
    ctx.journal(account_id, KIND, identity_id, "destroyed")
