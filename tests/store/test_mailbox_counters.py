"""The mailbox counters (migration 0014) stay equal to a recount by scanning after any
sequence of deliver, append, copy, move, expunge, flag, unflag and mailbox delete, on
every backend. The sequences are random (seeded, so a failure replays) and mix threads:
replies join the thread of an earlier message, in any mailbox."""

from __future__ import annotations

import importlib
import random

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from hirondelle.mail.mailboxes import MailboxService
from hirondelle.mail.messages import MessageService
from hirondelle.services import Services
from hirondelle.store import emails, jmap_mailboxes, mailboxes, schema
from hirondelle.store.database import WriteContext
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.store.test_mail_store import make_account

KEYWORDS = ("$seen", "$draft", "$deleted", "$flagged")


def _recount(conn: Connection, account_id: int) -> dict[int, tuple[int, ...]]:
    """The counters by scanning every membership of the account: (messages, unseen,
    deleted, size, unread, threads, unread threads) per mailbox."""
    e, mm, mb = schema.emails, schema.mailbox_messages, schema.mailboxes
    unread_threads = {
        int(thread_id)
        for thread_id, text in conn.execute(
            sa.select(e.c.thread_id, e.c.keywords).where(e.c.account_id == account_id)
        )
        if not {"$seen", "$draft"} & set(str(text).split())
    }
    found: dict[int, list[int]] = {}
    threads: dict[int, set[int]] = {}
    for (mailbox_id,) in conn.execute(sa.select(mb.c.id).where(mb.c.account_id == account_id)):
        found[int(mailbox_id)] = [0] * 5
        threads[int(mailbox_id)] = set()
    rows = conn.execute(
        sa.select(mm.c.mailbox_id, e.c.keywords, e.c.size, e.c.thread_id)
        .join(e, e.c.id == mm.c.email_id)
        .where(e.c.account_id == account_id)
    )
    for mailbox_id, text, size, thread_id in rows:
        words = set(str(text).split())
        counts = found[int(mailbox_id)]
        counts[0] += 1
        counts[1] += "$seen" not in words
        counts[2] += "$deleted" in words
        counts[3] += int(size)
        counts[4] += not {"$seen", "$draft"} & words
        threads[int(mailbox_id)].add(int(thread_id))
    return {m: (*c, len(threads[m]), len(threads[m] & unread_threads)) for m, c in found.items()}


def _counters(conn: Connection, account_id: int) -> dict[int, tuple[int, ...]]:
    ids = [m.id for m in mailboxes.list_mailboxes(conn, account_id)]
    imap = mailboxes.mailbox_counts(conn, ids)
    jmap = jmap_mailboxes.counts(conn, account_id)
    result = {}
    for m in ids:
        i, j = imap[m], jmap[m]
        assert j.total_emails == i.messages
        result[m] = (
            i.messages,
            i.unseen,
            i.deleted,
            i.size,
            j.unread_emails,
            j.total_threads,
            j.unread_threads,
        )
    return result


async def _random_writes(services: Services, seed: int, *, check: bool) -> Account:
    """45 random writes to a new account (and deliveries to a second one); with
    ``check``, the counters are compared with a recount after each."""
    rng = random.Random(seed)
    account = await make_account(services)
    other = await make_account(services, "bob@example.test")
    messages = MessageService(services.database, services.mail)
    boxes = MailboxService(services.database)
    for n in range(2):
        await boxes.create(account.id, f"Folder{n}")
    message_ids: list[str] = []
    created = 2

    async def mailbox_ids() -> list[int]:
        found = await services.database.read(lambda c: mailboxes.list_mailboxes(c, account.id))
        return [m.id for m in found]

    async def uids_of(mailbox_id: int) -> list[int]:
        return await services.database.read(lambda c: mailboxes.message_uids(c, mailbox_id))

    for step in range(45):
        op = rng.choice(
            ["deliver", "deliver", "append", "copy", "move", "expunge", "flag", "flag", "delete"]
        )
        ids = await mailbox_ids()
        source = rng.choice(ids)
        uids = await uids_of(source)
        picked = rng.sample(uids, min(len(uids), rng.randint(1, 3))) if uids else []
        if op in ("deliver", "append"):
            message_id = f"m{seed}-{step}@x.test"
            parent = rng.choice(message_ids) if message_ids and rng.random() < 0.6 else None
            raw = simple_message(message_id=message_id, in_reply_to=parent)
            message_ids.append(message_id)
            if op == "deliver":
                # The other account gets it too: its counters must not move ours.
                await services.mail.deliver(raw, [account.id, other.id])
            else:
                keywords = rng.sample(KEYWORDS, rng.randint(0, 2))
                await services.mail.append(
                    account_id=account.id, mailbox_id=source, raw=raw, keywords=keywords
                )
        elif op in ("copy", "move") and picked:
            target = rng.choice(ids)
            if op == "copy":
                await messages.copy(account.id, source, picked, target)
            elif target != source:
                await messages.move(account.id, source, picked, target)
        elif op == "expunge" and picked:
            await messages.expunge(account.id, source, uids=picked)
        elif op == "flag" and picked:
            word = rng.choice(KEYWORDS)
            change = {"add": [word]} if rng.random() < 0.5 else {"remove": [word]}
            await messages.set_flags(account.id, source, picked, **change)  # type: ignore[arg-type]
        elif op == "delete":
            folders = await services.database.read(
                lambda c: [m for m in mailboxes.list_mailboxes(c, account.id) if m.role is None]
            )
            if folders and rng.random() < 0.5:
                await boxes.delete(account.id, rng.choice(folders).name)
            else:
                await boxes.create(account.id, f"Folder{created}")
                created += 1
        if check:
            kept = await services.database.read(lambda c: _counters(c, account.id))
            scanned = await services.database.read(lambda c: _recount(c, account.id))
            assert kept == scanned, f"seed {seed}, step {step}, after {op}"
    for account_id in (account.id, other.id):
        kept = await services.database.read(lambda c, a=account_id: _counters(c, a))
        assert kept == await services.database.read(lambda c, a=account_id: _recount(c, a))
    assert any(c[5] for c in kept.values()), "the sequence stored no message"
    return account


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counters_equal_a_recount_after_random_writes(services: Services, seed: int) -> None:
    await _random_writes(services, seed, check=True)


async def test_migration_fills_the_counters_from_existing_mail(
    services: Services, database_url: str
) -> None:
    """Migration 0014 run on a store that has mail (downgrade, then upgrade) computes the
    same counters as the writes kept."""
    account = await _random_writes(services, 4, check=False)
    kept = await services.database.read(lambda c: _counters(c, account.id))
    migration = importlib.import_module(
        "hirondelle.store.migrations.versions.0014_mailbox_counters"
    )
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            migration.downgrade()
            assert "total_emails" not in {
                c["name"] for c in sa.inspect(conn).get_columns("mailboxes")
            }
            migration.upgrade()
    finally:
        engine.dispose()
    assert await services.database.read(lambda c: _counters(c, account.id)) == kept


async def test_a_reply_in_another_mailbox_makes_the_thread_unread_there(
    services: Services,
) -> None:
    """RFC 8621 §2 unreadThreads: a thread is unread in a mailbox when it has an email
    there and an unread email anywhere."""
    account = await make_account(services)
    messages = MessageService(services.database, services.mail)
    folder = await MailboxService(services.database).create(account.id, "Archive/Old")
    await services.mail.append(
        account_id=account.id,
        mailbox_id=folder.id,
        raw=simple_message(message_id="root@x.test"),
        keywords=["$seen"],
    )
    counts = await services.database.read(lambda c: jmap_mailboxes.counts(c, account.id))
    assert (counts[folder.id].total_threads, counts[folder.id].unread_threads) == (1, 0)
    (reply,) = await services.mail.deliver(
        simple_message(message_id="reply@x.test", in_reply_to="root@x.test"), [account.id]
    )
    assert reply.stored is not None
    counts = await services.database.read(lambda c: jmap_mailboxes.counts(c, account.id))
    assert (counts[folder.id].unread_emails, counts[folder.id].unread_threads) == (0, 1)
    inbox = await services.database.read(
        lambda c: mailboxes.get_mailbox_by_role(c, account.id, "inbox")
    )
    assert inbox is not None
    await messages.set_flags(account.id, inbox.id, list(reply.stored.uids.values()), add=["$seen"])
    counts = await services.database.read(lambda c: jmap_mailboxes.counts(c, account.id))
    assert counts[folder.id].unread_threads == 0 and counts[inbox.id].unread_threads == 0
    assert counts[inbox.id].total_threads == 1 and counts[inbox.id].total_emails == 1


async def test_rebuild_recomputes_the_counters_of_one_account(services: Services) -> None:
    """emails.rebuild_counters (for bulk loaders) gives what the writes kept, and leaves
    other accounts alone."""
    account = await _random_writes(services, 5, check=False)
    kept = await services.database.read(lambda c: _counters(c, account.id))
    mb, mt = schema.mailboxes, schema.mailbox_threads

    def spoil_and_rebuild(ctx: WriteContext) -> None:
        ctx.conn.execute(mt.delete())
        ctx.conn.execute(mb.update().values(total_emails=99, unread_threads=7))
        emails.rebuild_counters(ctx.conn, account.id)

    await services.database.write(spoil_and_rebuild)
    assert await services.database.read(lambda c: _counters(c, account.id)) == kept
    others = await services.database.read(
        lambda c: (
            c.execute(sa.select(mb.c.total_emails).where(mb.c.account_id != account.id))
            .scalars()
            .all()
        )
    )
    assert others and set(others) == {99}
