"""The mail store through the services: delivery, UIDs, keywords, expunge, quota,
threads and search, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hirondelle.errors import Reason, Refused
from hirondelle.services import Services
from hirondelle.store import emails, journal, mailboxes, schema, schema_blobs, search
from hirondelle.store.directory import Account
from tests.messages import simple_message

PASSWORD = "correct horse battery"


async def make_account(
    services: Services, address: str = "alice@example.test", **kwargs: object
) -> Account:
    domain = address.split("@", 1)[1]
    existing = [d.name for d, _ in await services.accounts.list_domains()]
    if domain not in existing:
        await services.accounts.add_domain(domain)
    return await services.accounts.add_account(address, password=PASSWORD, **kwargs)  # type: ignore[arg-type]


async def inbox_of(services: Services, account: Account) -> mailboxes.Mailbox:
    mailbox = await services.database.read(
        lambda c: mailboxes.get_mailbox_by_role(c, account.id, "inbox")
    )
    assert mailbox is not None
    return mailbox


async def test_new_account_has_the_six_standard_mailboxes(services: Services) -> None:
    account = await make_account(services)
    boxes = await services.database.read(lambda c: mailboxes.list_mailboxes(c, account.id))
    assert {(b.name, b.role) for b in boxes} == set(mailboxes.DEFAULT_MAILBOXES)
    assert len({b.uidvalidity for b in boxes}) == 6, "UIDVALIDITY must differ between mailboxes"
    assert all(b.uidnext == 1 for b in boxes)


def _blob_files(services: Services) -> list[Path]:
    return [p for p in services.blobs.root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


async def test_delivery_to_several_accounts_stores_the_blob_once(services: Services) -> None:
    """A small message is stored once, inline in SQL, and no file is written."""
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    raw = simple_message()
    assert len(raw) <= services.blobs.inline_limit
    outcomes = await services.mail.deliver(raw, [alice.id, bob.id])
    assert [o.refused for o in outcomes] == [None, None]
    blobs = await services.database.read(lambda c: c.execute(sa.select(schema.blobs)).all())
    assert len(blobs) == 1
    assert blobs[0].refcount == 2
    inline = await services.database.read(
        lambda c: c.execute(sa.select(schema_blobs.blob_inline)).all()
    )
    assert [(row.hash, bytes(row.data)) for row in inline] == [(blobs[0].hash, raw)]
    assert _blob_files(services) == []
    assert await services.blobs.get(blobs[0].hash) == raw
    for account in (alice, bob):
        inbox = await inbox_of(services, account)
        view = await services.database.read(lambda c, i=inbox.id: emails.list_messages(c, i))
        assert [m.uid for m in view] == [1]


async def test_delivery_of_a_big_message_stores_one_file(services: Services) -> None:
    """Above the inline limit the blob is a file, still stored once for two recipients."""
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    raw = simple_message(body="Une ligne de texte assez longue, encore et encore.\r\n" * 2000)
    assert len(raw) > services.blobs.inline_limit
    outcomes = await services.mail.deliver(raw, [alice.id, bob.id])
    assert [o.refused for o in outcomes] == [None, None]
    blobs = await services.database.read(lambda c: c.execute(sa.select(schema.blobs)).all())
    assert [(row.size, row.refcount) for row in blobs] == [(len(raw), 2)]
    inline = await services.database.read(
        lambda c: c.execute(sa.select(schema_blobs.blob_inline)).all()
    )
    assert inline == []
    files = _blob_files(services)
    assert len(files) == 1
    assert files[0].read_bytes() == raw
    for account in (alice, bob):
        inbox = await inbox_of(services, account)
        view = await services.database.read(lambda c, i=inbox.id: emails.list_messages(c, i))
        assert [m.uid for m in view] == [1]


async def test_uids_ascend_and_uidnext_follows(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    for _ in range(5):
        await services.mail.deliver(simple_message(), [alice.id])
    view = await services.database.read(lambda c: emails.list_messages(c, inbox.id))
    assert [m.uid for m in view] == [1, 2, 3, 4, 5]
    modseqs = [m.modseq for m in view]
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 5
    inbox_after = await inbox_of(services, alice)
    assert inbox_after.uidnext == 6
    assert inbox_after.highest_modseq == modseqs[-1]


async def test_expunged_uids_are_never_reused(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    for _ in range(3):
        await services.mail.deliver(simple_message(), [alice.id])
    removed = await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[3]
        )
    )
    assert removed == [3]
    await services.mail.deliver(simple_message(), [alice.id])
    view = await services.database.read(lambda c: emails.list_messages(c, inbox.id))
    assert [m.uid for m in view] == [1, 2, 4]


async def test_keywords_change_bumps_modseq_and_counts(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    (outcome,) = await services.mail.deliver(simple_message(), [alice.id])
    assert outcome.stored is not None
    email_id = outcome.stored.email_id
    counts = await services.database.read(lambda c: mailboxes.mailbox_counts(c, [inbox.id]))
    assert counts[inbox.id].messages == 1 and counts[inbox.id].unseen == 1
    changes = await services.database.write(
        lambda ctx: emails.set_keywords(
            ctx, account_id=alice.id, email_ids=[email_id], add=["$seen", "$flagged"]
        )
    )
    assert changes[0].keywords == {"$seen", "$flagged"}
    assert changes[0].modseq > outcome.stored.modseq
    # Setting what is already set changes nothing and does not bump the modseq.
    again = await services.database.write(
        lambda ctx: emails.set_keywords(
            ctx, account_id=alice.id, email_ids=[email_id], add=["$seen"]
        )
    )
    assert again == []
    view = await services.database.read(lambda c: emails.list_messages(c, inbox.id))
    assert view[0].keywords == "$flagged $seen"
    assert view[0].modseq == changes[0].modseq
    counts = await services.database.read(lambda c: mailboxes.mailbox_counts(c, [inbox.id]))
    assert counts[inbox.id].unseen == 0


async def test_keywords_of_another_account_cannot_be_changed(services: Services) -> None:
    alice = await make_account(services, "alice@example.test")
    mallory = await make_account(services, "mallory@example.test")
    (outcome,) = await services.mail.deliver(simple_message(), [alice.id])
    assert outcome.stored is not None
    changed = await services.database.write(
        lambda ctx: emails.set_keywords(
            ctx,
            account_id=mallory.id,
            email_ids=[outcome.stored.email_id],
            add=["$seen"],  # type: ignore[union-attr]
        )
    )
    assert changed == []


async def test_quota_refuses_one_recipient_and_not_the_other(services: Services) -> None:
    alice = await make_account(services, "alice@example.test", quota_bytes=100)
    bob = await make_account(services, "bob@example.test")
    raw = simple_message(body="x" * 500)
    outcomes = await services.mail.deliver(raw, [alice.id, bob.id])
    by_account = {o.account_id: o for o in outcomes}
    refused = by_account[alice.id].refused
    assert refused is not None and refused.reason is Reason.OVER_QUOTA
    assert by_account[bob.id].stored is not None
    alice_after = await services.accounts.get_account("alice@example.test")
    bob_after = await services.accounts.get_account("bob@example.test")
    assert alice_after.used_bytes == 0
    assert bob_after.used_bytes == len(raw)


async def test_expunging_the_last_copy_frees_quota_and_the_blob_reference(
    services: Services,
) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    raw = simple_message()
    await services.mail.deliver(raw, [alice.id])
    assert (await services.accounts.get_account(alice.address)).used_bytes == len(raw)
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[1]
        )
    )
    assert (await services.accounts.get_account(alice.address)).used_bytes == 0
    blob = await services.database.read(lambda c: c.execute(sa.select(schema.blobs)).one())
    assert blob.refcount == 0 and blob.unreferenced_since is not None


async def test_replies_join_the_thread_of_the_original(services: Services) -> None:
    alice = await make_account(services)
    (first,) = await services.mail.deliver(simple_message(message_id="root@x.test"), [alice.id])
    (reply,) = await services.mail.deliver(
        simple_message(subject="Re: Hello", message_id="reply@x.test", in_reply_to="root@x.test"),
        [alice.id],
    )
    (other,) = await services.mail.deliver(simple_message(subject="Other"), [alice.id])
    assert first.stored and reply.stored and other.stored
    assert reply.stored.thread_id == first.stored.thread_id
    assert other.stored.thread_id != first.stored.thread_id


async def test_full_text_search_finds_words_and_prefixes(services: Services) -> None:
    alice = await make_account(services)
    bob = await make_account(services, "bob@example.test")
    await services.mail.deliver(
        simple_message(subject="Quarterly budget", body="Réunion à Genève demain\r\n"), [alice.id]
    )
    await services.mail.deliver(
        simple_message(subject="Lunch", body="Pizza?\r\n"), [alice.id, bob.id]
    )

    async def subjects(
        account: Account, text: str, fields: frozenset[search.Field] | None = None
    ) -> set[str]:
        def query(conn: sa.Connection) -> set[str]:
            ids = search.matching_ids(conn, account_id=account.id, text=text, fields=fields)
            assert ids is not None
            return set(
                conn.execute(
                    sa.select(schema.emails.c.subject).where(schema.emails.c.id.in_(ids))
                ).scalars()
            )

        # New mail waits to be indexed (SQLite); readers of the index catch up first.
        await services.database.write(lambda ctx: search.index_waiting(ctx.conn, account.id))
        return await services.database.read(query)

    assert await subjects(alice, "budget") == {"Quarterly budget"}
    assert await subjects(alice, "quart") == {"Quarterly budget"}
    assert await subjects(alice, "geneve") == {"Quarterly budget"}, "diacritics are folded"
    assert await subjects(alice, "pizza") == {"Lunch"}
    assert await subjects(alice, "pizza", frozenset({search.Field.SUBJECT})) == set()
    assert await subjects(alice, "carol", frozenset({search.Field.PARTICIPANTS})) == {
        "Quarterly budget",
        "Lunch",
    }
    assert await subjects(bob, "budget") == set(), "another account's mail is never found"
    assert await subjects(alice, 'budget" OR "lunch') == set(), "user text is never FTS syntax"


async def test_removing_an_account_removes_its_mail(services: Services) -> None:
    alice = await make_account(services)
    await services.mail.deliver(simple_message(), [alice.id])
    await services.accounts.remove_account(alice.address)
    with pytest.raises(Refused) as refused:
        await services.accounts.get_account(alice.address)
    assert refused.value.reason is Reason.NOT_FOUND
    left = await services.database.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(schema.emails)).scalar()
    )
    assert left == 0


async def test_journal_records_the_delivery(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    before = (await services.accounts.get_account(alice.address)).modseq
    (outcome,) = await services.mail.deliver(simple_message(), [alice.id])
    assert outcome.stored is not None
    email_changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", before)
    )
    assert email_changes.created == [outcome.stored.email_id]
    uid_changes = await services.database.read(
        lambda c: journal.changes_since(
            c, alice.id, "MailboxMessage", before, container_id=inbox.id
        )
    )
    assert uid_changes.created == [1]


async def test_bare_line_feeds_are_stored_as_crlf(services: Services) -> None:
    """What is stored is what IMAP and POP3 send: CRLF line endings, and the size of the
    stored blob is the message's size (RFC 5322 §2.1)."""
    alice = await make_account(services)
    raw = simple_message(body="line one\r\nline two\r\n").replace(b"\r\n", b"\n")
    (outcome,) = await services.mail.deliver(raw, [alice.id])
    assert outcome.stored is not None
    row = await services.database.read(
        lambda c: emails.email_row(c, alice.id, outcome.stored.email_id)  # type: ignore[union-attr]
    )
    assert row is not None
    stored = await services.blobs.get(str(row["blob_hash"]))
    assert stored == raw.replace(b"\n", b"\r\n")
    assert row["size"] == len(stored)


async def test_search_splits_addresses_and_urls_into_words(services: Services) -> None:
    """Regression: PostgreSQL kept "carol@elsewhere.test" as one token, so searching
    "elsewhere" found nothing there while SQLite found it."""
    alice = await make_account(services)
    await services.mail.deliver(
        simple_message(
            subject="Links",
            body="Write to carol@elsewhere.test or see https://docs.example.org/page\r\n",
        ),
        [alice.id],
    )

    async def found(text: str) -> int:
        def query(conn: sa.Connection) -> int:
            ids = search.matching_ids(
                conn, account_id=alice.id, text=text, fields=frozenset({search.Field.BODY})
            )
            assert ids is not None
            return len(conn.execute(ids).all())

        await services.database.write(lambda ctx: search.index_waiting(ctx.conn, alice.id))
        return await services.database.read(query)

    for word in ("elsewhere", "carol", "docs", "example", "page"):
        assert await found(word) == 1, word
