"""Reading the change journal: "what changed since modseq N", for every sync protocol.

RFC 8620 §5.2 (Foo/changes) semantics, which the others are views of: an object created
and destroyed within the interval is not reported; created then updated is "created";
updated then destroyed is "destroyed". Paging never splits one modseq, so a state
string always names a consistent point. Asking from before the compaction horizon
(``accounts.journal_floor``) is answered with :class:`CannotCalculateChanges`, never
with a partial answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext


class CannotCalculateChanges(Exception):
    """The client's state is older than the journal keeps (or newer than the account)."""


@dataclass(frozen=True, slots=True)
class Changes:
    old_modseq: int
    new_modseq: int
    has_more: bool
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    destroyed: list[int] = field(default_factory=list)


def account_modseq(conn: Connection, account_id: int) -> tuple[int, int]:
    """(current modseq, journal floor) of an account."""
    row = conn.execute(
        sa.select(schema.accounts.c.modseq, schema.accounts.c.journal_floor).where(
            schema.accounts.c.id == account_id
        )
    ).one()
    return int(row[0]), int(row[1])


def changes_since(
    conn: Connection,
    account_id: int,
    kind: str,
    since: int,
    *,
    container_id: int | None = None,
    max_changes: int | None = None,
) -> Changes:
    """Changes of one kind (optionally inside one container) after modseq ``since``."""
    current, floor = account_modseq(conn, account_id)
    if since < floor or since > current:
        raise CannotCalculateChanges(f"state {since} is outside [{floor}, {current}]")
    j = schema.journal
    query = (
        sa.select(j.c.modseq, j.c.object_id, j.c.change)
        .where(j.c.account_id == account_id, j.c.kind == kind, j.c.modseq > since)
        .order_by(j.c.modseq, j.c.id)
    )
    if container_id is not None:
        query = query.where(j.c.container_id == container_id)
    rows = conn.execute(query).all()
    # First and last change per object, in journal order, cut at a modseq boundary.
    first: dict[int, str] = {}
    last: dict[int, str] = {}
    new_modseq = since
    has_more = False
    index = 0
    while index < len(rows):
        modseq = rows[index][0]
        end = index
        while end < len(rows) and rows[end][0] == modseq:
            end += 1
        group = rows[index:end]
        if max_changes is not None:
            would_be = len(first.keys() | {object_id for _, object_id, _ in group})
            if would_be > max_changes:
                if new_modseq == since:
                    raise CannotCalculateChanges(
                        f"more than {max_changes} changes in one state; ask for more at once"
                    )
                has_more = True
                break
        for _, object_id, change in group:
            first.setdefault(object_id, change)
            last[object_id] = change
        new_modseq = modseq
        index = end
    if not has_more:
        # Nothing left of this kind: the state is the account's current one, so a
        # client does not ask again for changes that concern other kinds only.
        new_modseq = current
    result = Changes(old_modseq=since, new_modseq=new_modseq, has_more=has_more)
    for object_id, first_change in first.items():
        final = last[object_id]
        if first_change == "created":
            if final != "destroyed":
                result.created.append(object_id)
        elif final == "destroyed":
            result.destroyed.append(object_id)
        else:
            result.updated.append(object_id)
    return result


def compact(ctx: WriteContext, account_id: int, *, up_to_modseq: int) -> int:
    """Drop journal rows at or below ``up_to_modseq``; raises the floor. Returns the
    number of rows removed."""
    j = schema.journal
    removed = ctx.conn.execute(
        j.delete().where(j.c.account_id == account_id, j.c.modseq <= up_to_modseq)
    ).rowcount
    ctx.conn.execute(
        schema.accounts.update()
        .where(schema.accounts.c.id == account_id, schema.accounts.c.journal_floor < up_to_modseq)
        .values(journal_floor=up_to_modseq)
    )
    return int(removed or 0)
