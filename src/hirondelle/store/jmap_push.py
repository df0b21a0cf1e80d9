"""Store side of JMAP push (RFC 8620 §7): push subscriptions, and "which kinds changed
since modseq N" for a reconnecting EventSource (``Last-Event-ID``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.journal import account_modseq
from hirondelle.store.schema_push import push_subscriptions

t = push_subscriptions


def changed_kinds_since(
    conn: Connection, account_id: int, since: int
) -> tuple[int, frozenset[str] | None]:
    """(current modseq, journal kinds with a row after ``since``). The kinds are None
    when the journal cannot tell (``since`` older than its compaction floor, or newer
    than the account: a restored backup): anything may have changed."""
    current, floor = account_modseq(conn, account_id)
    if since == current:
        return current, frozenset()
    if since < floor or since > current:
        return current, None
    j = schema.journal
    kinds = conn.execute(
        sa.select(j.c.kind)
        .where(j.c.account_id == account_id, j.c.modseq > since)
        .group_by(j.c.kind)
    ).scalars()
    return current, frozenset(str(k) for k in kinds)


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    id: int
    account_id: int
    device_client_id: str
    url: str
    verification_code: str
    verified: bool
    expires_at: int  # microseconds since the epoch
    types: frozenset[str] | None
    pushed_modseq: int
    failures: int


_COLUMNS = (
    t.c.id,
    t.c.account_id,
    t.c.device_client_id,
    t.c.url,
    t.c.verification_code,
    t.c.verified,
    t.c.expires_at,
    t.c.types,
    t.c.pushed_modseq,
    t.c.failures,
)


def _row(row: Sequence[Any]) -> StoredSubscription:
    types = None if row[7] is None else frozenset(str(x) for x in json.loads(row[7]))
    return StoredSubscription(
        id=int(row[0]),
        account_id=int(row[1]),
        device_client_id=str(row[2]),
        url=str(row[3]),
        verification_code=str(row[4]),
        verified=bool(row[5]),
        expires_at=int(row[6]),
        types=types,
        pushed_modseq=int(row[8]),
        failures=int(row[9]),
    )


def encode_types(types: Sequence[str] | None) -> str | None:
    return None if types is None else json.dumps(sorted(set(types)))


def insert_subscription(
    ctx: WriteContext,
    *,
    account_id: int,
    device_client_id: str,
    url: str,
    verification_code: str,
    expires_at: int,
    types: Sequence[str] | None,
) -> StoredSubscription:
    """A new, unverified subscription. Its pushed modseq is the account's current one:
    it owes the endpoint nothing from before it existed."""
    current, _floor = account_modseq(ctx.conn, account_id)
    new_id = ctx.conn.execute(
        t.insert()
        .values(
            account_id=account_id,
            device_client_id=device_client_id,
            url=url,
            verification_code=verification_code,
            verified=False,
            expires_at=expires_at,
            types=encode_types(types),
            pushed_modseq=current,
            failures=0,
            created_at=now_us(),
        )
        .returning(t.c.id)
    ).scalar_one()
    found = get_subscription(ctx.conn, account_id, int(new_id))
    assert found is not None
    return found


def get_subscription(
    conn: Connection, account_id: int, subscription_id: int
) -> StoredSubscription | None:
    row = conn.execute(
        sa.select(*_COLUMNS).where(t.c.account_id == account_id, t.c.id == subscription_id)
    ).first()
    return None if row is None else _row(row)


def account_subscriptions(conn: Connection, account_id: int) -> list[StoredSubscription]:
    rows = conn.execute(
        sa.select(*_COLUMNS).where(t.c.account_id == account_id).order_by(t.c.id)
    ).all()
    return [_row(r) for r in rows]


def live_subscriptions(conn: Connection, *, now: int) -> list[StoredSubscription]:
    """Every subscription not yet expired (what a starting node pushes to)."""
    rows = conn.execute(sa.select(*_COLUMNS).where(t.c.expires_at > now).order_by(t.c.id)).all()
    return [_row(r) for r in rows]


def count_subscriptions(conn: Connection, account_id: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(t).where(t.c.account_id == account_id)
        ).scalar_one()
    )


def update_subscription(
    ctx: WriteContext,
    account_id: int,
    subscription_id: int,
    *,
    verified: bool | None = None,
    expires_at: int | None = None,
    set_types: bool = False,
    types: Sequence[str] | None = None,
) -> StoredSubscription | None:
    """Change what a client may change (the types only with ``set_types``)."""
    values: dict[str, Any] = {}
    if verified is not None:
        values["verified"] = verified
    if expires_at is not None:
        values["expires_at"] = expires_at
    if set_types:
        values["types"] = encode_types(types)
    if values:
        ctx.conn.execute(
            t.update()
            .where(t.c.account_id == account_id, t.c.id == subscription_id)
            .values(**values)
        )
    return get_subscription(ctx.conn, account_id, subscription_id)


def delete_subscription(ctx: WriteContext, account_id: int, subscription_id: int) -> bool:
    result = ctx.conn.execute(
        t.delete().where(t.c.account_id == account_id, t.c.id == subscription_id)
    )
    return bool(result.rowcount)


def record_pushed(ctx: WriteContext, subscription_id: int, modseq: int) -> None:
    """The endpoint accepted a StateChange up to ``modseq``: remember it, forget failures."""
    ctx.conn.execute(
        t.update()
        .where(t.c.id == subscription_id, t.c.pushed_modseq < modseq)
        .values(pushed_modseq=modseq, failures=0)
    )
    ctx.conn.execute(
        t.update().where(t.c.id == subscription_id, t.c.failures != 0).values(failures=0)
    )


def record_refusal(ctx: WriteContext, subscription_id: int) -> int:
    """One more permanent refusal by the endpoint; returns how many in a row."""
    ctx.conn.execute(t.update().where(t.c.id == subscription_id).values(failures=t.c.failures + 1))
    count = ctx.conn.execute(sa.select(t.c.failures).where(t.c.id == subscription_id)).scalar()
    return int(count or 0)


def drop_subscription(ctx: WriteContext, subscription_id: int) -> None:
    """Remove a subscription whatever its account (expiry, an endpoint that is gone)."""
    ctx.conn.execute(t.delete().where(t.c.id == subscription_id))


def drop_expired(ctx: WriteContext, *, now: int) -> int:
    result = ctx.conn.execute(t.delete().where(t.c.expires_at <= now))
    return int(result.rowcount or 0)
