"""SEARCH on flags in a 100,000-message mailbox is one small query and an in-memory pass
(DESIGN.md "Hot paths"), not a re-read of the mailbox per command."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hirondelle.imap import search as imap_search
from hirondelle.imap.proto import commands as c
from hirondelle.services import Services
from hirondelle.store import schema
from hirondelle.store.database import WriteContext

from .search_fixtures import Mailbox, build_message

COUNT = 100_000


async def fill(box: Mailbox) -> None:
    """COUNT messages written straight into the tables in SQL (the mail service would
    take minutes): copies of one real message's row with small stored parts, a third of
    them unseen. SQLite only."""
    await box.append(build_message(), flags=["\\Seen"])
    template = await box.email_id(1)
    replaced = {
        "keywords": "CASE WHEN n % 3 THEN '$seen' ELSE '' END",
        "envelope": "x''",
        "body_structure": "x''",
        "body": "x''",
        "structure": "'{}'",
    }
    columns = [column.name for column in schema.emails.c if column.name != "id"]
    copies = ", ".join(replaced.get(name, name) for name in columns)

    def write(ctx: WriteContext) -> None:
        ctx.conn.exec_driver_sql(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)"
            f" INSERT INTO emails ({', '.join(columns)})"
            f" SELECT {copies} FROM emails, seq WHERE emails.id = ?",
            (COUNT - 1, template),
        )
        ctx.conn.exec_driver_sql(
            "INSERT INTO mailbox_messages (mailbox_id, uid, email_id, modseq, keywords)"
            " SELECT ?, id - ? + 1, id, 1, keywords FROM emails WHERE id > ?",
            (box.mailbox_id, template, template),
        )
        ctx.conn.execute(
            schema.mailboxes.update()
            .where(schema.mailboxes.c.id == box.mailbox_id)
            .values(highest_modseq=ctx.next_modseq(box.account_id), uidnext=COUNT + 1)
        )

    await box.services.database.write(write)
    box.uids = list(range(1, COUNT + 1))


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_flag_search_on_100000_messages_is_one_query_and_fast(services: Services) -> None:
    box = await Mailbox.create(services)
    await fill(box)
    context = box.context()
    unseen = c.SearchFlag("\\Seen", present=False)
    first = await imap_search.search(services, context, unseen)  # loads the mailbox once
    assert len(first.uids) == sum(1 for n in range(1, COUNT) if n % 3 == 0)

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    engine = services.database.read_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        # Speed is measured in bench/imap.py; here the shape that makes it fast: no reload.
        for _ in range(3):
            result = await imap_search.search(services, context, unseen)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert result.uids == first.uids
    assert len(statements) == 3, "one small query (has the mailbox changed?) per SEARCH"


async def test_a_flag_change_is_seen_by_the_next_search(services: Services) -> None:
    box = await Mailbox.create(services)
    first = await box.append(build_message())
    second = await box.append(build_message())
    assert await box.search("UNSEEN") == [first, second]
    await box.set_flags(second, "\\Seen")
    assert await box.search("UNSEEN") == [first]
    third = await box.append(build_message())
    assert await box.search("UNSEEN") == [first, third]
    await box.expunge(first)
    assert await box.search("UNSEEN") == [third]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sort_and_subject_search_of_100000_messages_read_their_keys_in_one_scan(
    services: Services,
) -> None:
    box = await Mailbox.create(services)
    await fill(box)
    context = box.context()
    await imap_search.search(services, context, c.SearchAll())  # rows loaded and cached

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    engine = services.database.read_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        ordered = await imap_search.sort(
            services,
            context,
            [c.SortCriterion("SUBJECT"), c.SortCriterion("SIZE")],
            c.SearchAll(),
            charset="UTF-8",
        )
        sorting = len(statements)
        found = await imap_search.search(services, context, c.SearchText("SUBJECT", "hello"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert ordered == box.uids, "equal keys keep mailbox order"
    assert sorting == 2, statements
    assert found.uids == box.uids
    assert len(statements) == 4, statements
