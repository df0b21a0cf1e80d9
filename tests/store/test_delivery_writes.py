"""What one delivery writes, after the delivery statements were merged (the quota check,
modseq bump and used bytes in one account update; the thread id chosen in the email's
insert; a new thread's counters written without a recount): counters, UIDs, modseqs,
quota and threads, after concurrent deliveries too, on every backend."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mime import parse_message
from hirondelle.services import Services
from hirondelle.store import emails, journal, schema, search
from hirondelle.store.database import WriteContext
from tests.messages import simple_message
from tests.store.test_mail_store import inbox_of, make_account
from tests.store.test_mailbox_counters import _counters, _recount


def _emails(conn: Connection, account_id: int) -> list[tuple[int, int, str | None]]:
    e = schema.emails
    rows = conn.execute(
        sa.select(e.c.id, e.c.thread_id, e.c.message_id)
        .where(e.c.account_id == account_id)
        .order_by(e.c.id)
    )
    return [(int(i), int(t), m) for i, t, m in rows]


async def test_concurrent_deliveries_keep_counters_uids_and_modseqs(services: Services) -> None:
    """48 deliveries at once to one account (on PostgreSQL concurrent transactions on
    one account row, on SQLite one group commit), a third of them replies: UIDs are
    1..48, modseqs distinct, counters equal to a recount, used bytes the sum of sizes."""
    alice = await make_account(services)
    raws = []
    for n in range(48):
        parent = f"root{n - n % 3}@x.test" if n % 3 else None
        raws.append(simple_message(message_id=f"root{n}@x.test", in_reply_to=parent))
    # The roots first, so that every reply finds its thread.
    roots = [raw for n, raw in enumerate(raws) if n % 3 == 0]
    replies = [raw for n, raw in enumerate(raws) if n % 3]
    first = await asyncio.gather(*(services.mail.deliver(raw, [alice.id]) for raw in roots))
    second = await asyncio.gather(*(services.mail.deliver(raw, [alice.id]) for raw in replies))
    stored = [outcome.stored for (outcome,) in [*first, *second]]
    assert all(s is not None for s in stored)
    inbox = await inbox_of(services, alice)
    uids = sorted(s.uids[inbox.id] for s in stored if s is not None)
    assert uids == list(range(1, 49))
    modseqs = [s.modseq for s in stored if s is not None]
    assert len(set(modseqs)) == 48
    modseq, _floor = await services.database.read(lambda c: journal.account_modseq(c, alice.id))
    assert modseq == max(modseqs)
    kept = await services.database.read(lambda c: _counters(c, alice.id))
    assert kept == await services.database.read(lambda c: _recount(c, alice.id))
    assert kept[inbox.id][0] == 48
    assert kept[inbox.id][5] == 16, "16 threads: each root and its two replies"
    used, _quota = await services.database.read(lambda c: emails.account_quota(c, alice.id))
    assert used == sum(len(raw) for raw in raws)
    rows = await services.database.read(lambda c: _emails(c, alice.id))
    thread_of = {message_id: thread for _id, thread, message_id in rows}
    for email_id, thread_id, message_id in rows:
        assert message_id is not None
        n = int(message_id.removeprefix("<").removeprefix("root").split("@")[0])
        if n % 3 == 0:
            assert thread_id == email_id, "a new thread is named by its first email"
        else:
            assert thread_id == thread_of[f"root{n - n % 3}@x.test"]


async def test_a_reply_joins_the_thread_and_moves_its_counters(services: Services) -> None:
    alice = await make_account(services)
    (first,) = await services.mail.deliver(simple_message(message_id="a@x.test"), [alice.id])
    (reply,) = await services.mail.deliver(
        simple_message(message_id="b@x.test", in_reply_to="a@x.test"), [alice.id]
    )
    (other,) = await services.mail.deliver(simple_message(message_id="c@x.test"), [alice.id])
    assert first.stored is not None and reply.stored is not None and other.stored is not None
    assert first.stored.thread_id == first.stored.email_id
    assert reply.stored.thread_id == first.stored.email_id
    assert other.stored.thread_id == other.stored.email_id != first.stored.thread_id
    inbox = await inbox_of(services, alice)
    kept = await services.database.read(lambda c: _counters(c, alice.id))
    assert kept == await services.database.read(lambda c: _recount(c, alice.id))
    assert kept[inbox.id][0] == 3 and kept[inbox.id][5] == 2


async def test_appends_with_keywords_count_as_the_counter_statements_do(
    services: Services,
) -> None:
    """A new thread's counters are computed in Python from the keywords: they must be
    what the SQL recount (rebuild_counters, the same LIKE tests) gives, whatever case
    the keywords are in (SQLite's LIKE ignores ASCII case, PostgreSQL's does not)."""
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    for keywords in ([], ["$seen"], ["$draft"], ["$deleted", "$flagged"], ["$SEEN"], ["$Draft"]):
        await services.mail.append(
            account_id=alice.id, mailbox_id=inbox.id, raw=simple_message(), keywords=keywords
        )
    kept = await services.database.read(lambda c: _counters(c, alice.id))
    await services.database.write(lambda ctx: emails.rebuild_counters(ctx.conn, alice.id))
    assert kept == await services.database.read(lambda c: _counters(c, alice.id))


async def test_a_refusal_over_quota_changes_nothing_of_the_account(services: Services) -> None:
    alice = await make_account(services, "alice@example.test", quota_bytes=100)
    bob = await make_account(services, "bob@example.test")
    before = await services.database.read(lambda c: journal.account_modseq(c, alice.id))
    outcomes = await services.mail.deliver(simple_message(), [alice.id, bob.id])
    assert outcomes[0].refused is not None and outcomes[0].refused.reason is Reason.OVER_QUOTA
    assert outcomes[1].stored is not None
    assert await services.database.read(lambda c: journal.account_modseq(c, alice.id)) == before
    assert await services.database.read(lambda c: emails.account_quota(c, alice.id)) == (0, 100)


async def test_two_emails_of_one_account_in_one_write(services: Services) -> None:
    """A second insert_email of the same account in one write reuses the write's modseq
    (the account row is not bumped twice) and still adds its bytes."""
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    raws = [simple_message(), simple_message()]
    blobs = [services.mail.blobs.stage(raw) for raw in raws]

    def write(ctx: WriteContext) -> list[emails.StoredEmail]:
        return [
            emails.insert_email(
                ctx,
                account_id=alice.id,
                mailbox_ids=[inbox.id],
                parsed=parse_message(raw),
                blob=blob,
            )
            for raw, blob in zip(raws, blobs, strict=True)
        ]

    before, _ = await services.database.read(lambda c: journal.account_modseq(c, alice.id))
    first, second = await services.database.write(write)
    assert first.modseq == second.modseq == before + 1
    assert [first.uids[inbox.id], second.uids[inbox.id]] == [1, 2]
    used, _quota = await services.database.read(lambda c: emails.account_quota(c, alice.id))
    assert used == sum(len(raw) for raw in raws)


async def test_an_unknown_account_is_not_found(services: Services) -> None:
    raw = simple_message()
    blob = services.mail.blobs.stage(raw)

    def write(ctx: WriteContext) -> object:
        return emails.insert_email(
            ctx, account_id=999_999, mailbox_ids=[1], parsed=parse_message(raw), blob=blob
        )

    with pytest.raises(Refused) as refused:
        await services.database.write(write)
    assert refused.value.reason is Reason.NOT_FOUND


async def test_search_tokens_made_by_the_parsing_side_index_alike(services: Services) -> None:
    """derived_forms(postgresql=True) carries the PostgreSQL index's words: the index
    rows are the same as when index_email makes them."""
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    raw = simple_message(
        subject="Réunion à Genève", body="Le budget révisé: carol@elsewhere.test\r\n"
    )
    parsed = parse_message(raw)
    blob = services.mail.blobs.stage(raw)
    ids = []
    for postgresql in (False, True):
        forms = emails.derived_forms(parsed, postgresql=postgresql)
        assert (forms.search.tokens is not None) is postgresql
        stored = await services.database.write(
            lambda ctx, f=forms: emails.insert_email(
                ctx, account_id=alice.id, mailbox_ids=[inbox.id], parsed=parsed, blob=blob, forms=f
            )
        )
        ids.append(stored.email_id)

    def index_rows(conn: Connection) -> list[tuple[object, ...]]:
        if conn.dialect.name == "sqlite":
            text = (
                "SELECT subject, participants, body, attachments, headers FROM email_search_fts"
                " WHERE rowid = ?"
            )
        else:
            text = "SELECT document::text, headers::text FROM email_search WHERE email_id = %s"
        return [tuple(conn.exec_driver_sql(text, (i,)).one()) for i in ids]

    await services.database.write(lambda ctx: search.index_waiting(ctx.conn, alice.id))
    first, second = await services.database.read(index_rows)
    assert first == second


async def test_an_email_id_is_never_given_twice(services: Services) -> None:
    """Regression (SQLite, migration 0025): the id was MAX(id) + 1, so the email after an
    expunged newest one got its id again, and JMAP Email/changes named one id for two
    messages (RFC 8620 §1.2). Also after an account and its mail are removed."""
    alice = await make_account(services)
    bob = await make_account(services, "bob@example.test")
    inbox = await inbox_of(services, alice)
    first = await services.mail.deliver(simple_message(subject="First"), [alice.id])
    newest = await services.mail.deliver(simple_message(subject="Newest"), [alice.id])
    newest_id = newest[0].stored.email_id  # type: ignore[union-attr]
    assert newest_id > first[0].stored.email_id  # type: ignore[union-attr]
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[2]
        )
    )
    after = await services.mail.deliver(simple_message(subject="After"), [alice.id])
    after_id = after[0].stored.email_id  # type: ignore[union-attr]
    assert after_id > newest_id
    await services.mail.deliver(simple_message(subject="Bob's last"), [bob.id])
    bobs_last = await services.database.read(
        lambda c: c.execute(sa.select(sa.func.max(schema.emails.c.id))).scalar_one()
    )
    await services.accounts.remove_account("bob@example.test")
    later = await services.mail.deliver(simple_message(subject="Later"), [alice.id])
    assert later[0].stored.email_id > bobs_last  # type: ignore[union-attr]
