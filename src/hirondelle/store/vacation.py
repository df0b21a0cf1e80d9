"""SQL of VacationResponse (RFC 8621 §8) and of its reply log (RFC 3834 §2)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hirondelle.store.database import DriverStatement, WriteContext, driver_cursor
from hirondelle.store.schema_vacation import vacation_log, vacation_responses

#: The journal kind of the singleton; its object id is always this.
KIND = "VacationResponse"
SINGLETON_OBJECT_ID = 0


@dataclass(frozen=True, slots=True)
class Vacation:
    is_enabled: bool = False
    from_date: int | None = None  # microseconds since the epoch, UTC
    to_date: int | None = None
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None
    generation: int = 0


def get(conn: Connection, account_id: int) -> Vacation:
    row = conn.execute(
        sa.select(vacation_responses).where(vacation_responses.c.account_id == account_id)
    ).first()
    if row is None:
        return Vacation()
    return Vacation(
        is_enabled=bool(row.is_enabled),
        from_date=row.from_date,
        to_date=row.to_date,
        subject=row.subject,
        text_body=row.text_body,
        html_body=row.html_body,
        generation=int(row.generation),
    )


def put(ctx: WriteContext, account_id: int, vacation: Vacation) -> Vacation:
    """Store the new settings (one more generation, so everyone may be answered again)
    and journal the change."""
    current = get(ctx.conn, account_id)
    stored = Vacation(
        is_enabled=vacation.is_enabled,
        from_date=vacation.from_date,
        to_date=vacation.to_date,
        subject=vacation.subject,
        text_body=vacation.text_body,
        html_body=vacation.html_body,
        generation=current.generation + 1,
    )
    values = {
        "is_enabled": stored.is_enabled,
        "from_date": stored.from_date,
        "to_date": stored.to_date,
        "subject": stored.subject,
        "text_body": stored.text_body,
        "html_body": stored.html_body,
        "generation": stored.generation,
    }
    updated = ctx.conn.execute(
        vacation_responses.update()
        .where(vacation_responses.c.account_id == account_id)
        .values(**values)
    ).rowcount
    if not updated:
        ctx.conn.execute(vacation_responses.insert().values(account_id=account_id, **values))
    ctx.journal(account_id, KIND, SINGLETON_OBJECT_ID, "updated")
    return stored


def enabled_among(conn: Connection, account_ids: list[int]) -> dict[int, Vacation]:
    """The enabled responses of ``account_ids`` (one query for a whole delivery)."""
    if not account_ids:
        return {}
    # Every delivery asks, and almost always gets no row: one driver statement, not a
    # Core select compiled for its expanding IN each time.
    cursor = driver_cursor(conn)
    cursor.execute(
        _enabled_among_statement(len(account_ids)).text(conn.dialect.name), (True, *account_ids)
    )
    rows = [int(row[0]) for row in cursor.fetchall()]
    cursor.close()
    return {account_id: get(conn, account_id) for account_id in rows}


@functools.lru_cache(maxsize=32)
def _enabled_among_statement(count: int) -> DriverStatement:
    return DriverStatement(
        "SELECT account_id FROM vacation_responses WHERE is_enabled = ? AND account_id IN ("
        + ", ".join("?" * count)
        + ")"
    )


def claim_reply(
    ctx: WriteContext,
    *,
    account_id: int,
    sender: str,
    generation: int,
    now: int,
    interval_us: int,
) -> bool:
    """RFC 3834 §2: record that ``sender`` is answered now, unless they already were
    within the interval under the same response; True when a reply should go.

    Both statements decide atomically (an insert that ignores a conflict, an update whose
    condition is re-checked on the locked row), so two deliveries at once on PostgreSQL
    still send one reply.
    """
    conn = ctx.conn
    values = {
        "account_id": account_id,
        "sender": sender,
        "generation": generation,
        "replied_at": now,
    }
    insert = (
        sqlite_insert(vacation_log) if conn.dialect.name == "sqlite" else pg_insert(vacation_log)
    )
    inserted = conn.execute(
        insert.values(**values).on_conflict_do_nothing().returning(vacation_log.c.account_id)
    ).first()
    if inserted is not None:
        return True
    updated = conn.execute(
        vacation_log.update()
        .where(
            vacation_log.c.account_id == account_id,
            vacation_log.c.sender == sender,
            sa.or_(
                vacation_log.c.generation != generation,
                vacation_log.c.replied_at <= now - interval_us,
            ),
        )
        .values(generation=generation, replied_at=now)
    ).rowcount
    return bool(updated == 1)
