"""The authentication audit log: one row per attempt, on every protocol."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int
    protocol: str
    remote: str
    client_id: str
    address: str
    account_id: int | None
    outcome: str
    reason: str


def record(ctx: WriteContext, entry: AuditEntry) -> None:
    ctx.conn.execute(
        schema.audit_log.insert().values(
            at=entry.at,
            protocol=entry.protocol,
            remote=entry.remote[:64],
            client_id=entry.client_id[:200],
            address=entry.address[:320],
            account_id=entry.account_id,
            outcome=entry.outcome,
            reason=entry.reason,
        )
    )


def query(
    conn: Connection, *, address: str | None = None, since: int | None = None, limit: int = 1000
) -> list[AuditEntry]:
    a = schema.audit_log
    q = sa.select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
    if address is not None:
        q = q.where(a.c.address == address)
    if since is not None:
        q = q.where(a.c.at >= since)
    return [
        AuditEntry(
            at=r.at,
            protocol=r.protocol,
            remote=r.remote,
            client_id=r.client_id,
            address=r.address,
            account_id=r.account_id,
            outcome=r.outcome,
            reason=r.reason,
        )
        for r in conn.execute(q)
    ]


def prune(ctx: WriteContext, *, before: int) -> int:
    return int(
        ctx.conn.execute(schema.audit_log.delete().where(schema.audit_log.c.at < before)).rowcount
        or 0
    )
