"""New mail's search documents wait and are indexed in batches (SQLite, migration 0024);
searches catch up first, so they never miss committed mail. And the writer's deferred
work (WriteContext.defer) that does it: after commit only, repeated while it says so,
survives its own failure, finished at close."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from hirondelle.config import Settings
from hirondelle.mail import search as mail_search
from hirondelle.services import Services, open_services
from hirondelle.store import database as database_module
from hirondelle.store import emails, schema, search
from hirondelle.store.database import Database, WriteContext
from tests.messages import simple_message
from tests.store.test_mail_store import inbox_of, make_account


@pytest.fixture
def deferral_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer runs no deferred work by itself during the test (only at close)."""
    monkeypatch.setattr(database_module, "DEFERRED_IDLE_S", 3600.0)
    monkeypatch.setattr(database_module, "DEFERRED_MAX_DELAY_S", 3600.0)


def _waiting(conn: sa.Connection) -> list[int]:
    if conn.dialect.name != "sqlite":
        return []
    return [
        int(i) for i in conn.exec_driver_sql("SELECT email_id FROM email_search_waiting").scalars()
    ]


def _indexed(conn: sa.Connection) -> list[int]:
    if conn.dialect.name == "sqlite":
        text = "SELECT rowid FROM email_search_fts ORDER BY rowid"
    else:
        text = "SELECT email_id FROM email_search ORDER BY email_id"
    return [int(i) for i in conn.exec_driver_sql(text).scalars()]


async def _find_body(services: Services, account_id: int, mailbox_id: int, text: str) -> list[int]:
    rows = await mail_search.find_messages(
        services.database,
        blobs=services.mail.blobs,
        account_id=account_id,
        mailbox_id=mailbox_id,
        criteria=mail_search.ContainsText(mail_search.TextField.BODY, text),
    )
    return [row.uid for row in rows]


async def test_a_search_right_after_delivery_finds_the_waiting_mail(
    services: Services, deferral_held: None
) -> None:
    alice = await make_account(services)
    bob = await make_account(services, "bob@example.test")
    inbox = await inbox_of(services, alice)
    await services.mail.deliver(simple_message(body="Le pélican de Genève\r\n"), [alice.id])
    await services.mail.deliver(simple_message(body="Un pélican chez Bob\r\n"), [bob.id])
    waiting = await services.database.read(_waiting)
    if services.database.dialect == "sqlite":
        assert len(waiting) == 2  # nothing indexed yet: the catch-up below is exercised
        assert await services.database.read(lambda c: search.has_waiting(c, alice.id))
    assert await _find_body(services, alice.id, inbox.id, "pelican") == [1]
    assert await _find_body(services, alice.id, inbox.id, "geneve") == [1]
    # Alice's search indexed Alice's mail only; Bob's still waits for the writer.
    if services.database.dialect == "sqlite":
        remaining = await services.database.read(_waiting)
        assert len(remaining) == 1
        assert not await services.database.read(lambda c: search.has_waiting(c, alice.id))
        assert await services.database.read(lambda c: search.has_waiting(c, bob.id))


async def test_the_writer_indexes_waiting_mail_when_idle(services: Services) -> None:
    alice = await make_account(services)
    for n in range(5):
        await services.mail.deliver(simple_message(subject=f"Note {n}"), [alice.id])
    deadline = time.monotonic() + 10
    while await services.database.read(_waiting):
        assert time.monotonic() < deadline, "the waiting documents were never indexed"
        await asyncio.sleep(0.02)
    assert len(await services.database.read(_indexed)) == 5


async def test_destroyed_before_indexing_never_reaches_the_index(
    services: Services, deferral_held: None
) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    await services.mail.deliver(simple_message(body="ephemeral words\r\n"), [alice.id])
    await services.mail.deliver(simple_message(body="lasting words\r\n"), [alice.id])
    first = await services.database.read(
        lambda c: min(c.execute(sa.select(schema.emails.c.id)).scalars())
    )
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[1]
        )
    )
    assert await services.database.read(_waiting) in ([], [first + 1])
    assert await _find_body(services, alice.id, inbox.id, "words") == [2]
    assert first not in await services.database.read(_indexed)


async def test_close_indexes_what_still_waits(settings: Settings, deferral_held: None) -> None:
    services = open_services(settings)
    try:
        alice = await make_account(services)
        for n in range(3):
            await services.mail.deliver(simple_message(subject=f"Late {n}"), [alice.id])
    finally:
        services.close()
    database = Database(settings.store.database)
    try:
        assert database.read_sync(_waiting) == []
        assert len(database.read_sync(_indexed)) == 3
    finally:
        database.close()


async def test_batches_are_bounded_and_in_email_order(
    services: Services, deferral_held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if services.database.dialect != "sqlite":
        pytest.skip("the waiting table is SQLite's")
    monkeypatch.setattr(search, "WAITING_BATCH", 2)
    alice = await make_account(services)
    for n in range(5):
        await services.mail.deliver(simple_message(subject=f"Batch {n}"), [alice.id])
    steps = []
    while True:
        more = await services.database.write(search.index_waiting_batch)
        steps.append((more, len(await services.database.read(_indexed))))
        if not more:
            break
    assert steps == [(True, 2), (True, 4), (False, 5)]


# -- the writer's deferred work, on its own ---------------------------------------------


def _counting_step(runs: list[int], more_times: int) -> Callable[[WriteContext], bool]:
    def step(ctx: WriteContext) -> bool:
        ctx.conn.exec_driver_sql("SELECT 1")
        runs.append(1)
        return len(runs) <= more_times

    return step


async def test_deferred_work_runs_after_commit_and_repeats(settings: Settings) -> None:
    database = Database(settings.store.database)
    try:
        runs: list[int] = []
        step = _counting_step(runs, more_times=2)

        def write(ctx: WriteContext) -> str:
            ctx.defer(step)
            ctx.defer(step)  # deferred once however often it is asked for
            return "done"

        assert await database.write(write) == "done"
        deadline = time.monotonic() + 10
        while len(runs) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert len(runs) == 3  # twice "more", then done
    finally:
        database.close()


async def test_deferred_work_of_a_failed_write_never_runs(settings: Settings) -> None:
    database = Database(settings.store.database)
    runs: list[int] = []
    try:

        def failing(ctx: WriteContext) -> None:
            ctx.defer(_counting_step(runs, more_times=0))
            raise ValueError("refused")

        with pytest.raises(ValueError):
            await database.write(failing)
    finally:
        database.close()  # close runs whatever was deferred: nothing
    assert runs == []


async def test_a_failing_deferred_step_is_logged_and_the_writer_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(settings.store.database)
    try:

        def broken(ctx: WriteContext) -> bool:
            raise RuntimeError("broken step")

        with caplog.at_level(logging.ERROR, logger="hirondelle.store.database"):
            await database.write(lambda ctx: ctx.defer(broken))
            deadline = time.monotonic() + 10
            while "deferred store work failed" not in caplog.text:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        assert await database.write(lambda ctx: 42) == 42
    finally:
        database.close()


async def test_words_with_underscores_are_searched_without_positions(
    services: Services,
) -> None:
    """Regression (migration 0024, detail = column): "_" is a word character for Python
    but a separator for FTS5, and a quoted "config_file" was a two-token phrase, which an
    index without positions refuses. Each part is now asked for on its own, and the IMAP
    substring check keeps the answer exact."""
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    await services.mail.deliver(simple_message(body="set config_file to /etc/x\r\n"), [alice.id])
    await services.mail.deliver(simple_message(body="the file of config\r\n"), [alice.id])
    assert await _find_body(services, alice.id, inbox.id, "config_file") == [1]
    assert await _find_body(services, alice.id, inbox.id, "config_fi") == [1]
    assert await _find_body(services, alice.id, inbox.id, "config") == [1, 2]
    assert await _find_body(services, alice.id, inbox.id, "___") == []
