"""The change journal: changes since modseq N, per kind and per container, RFC 8620
/changes collapsing, paging at modseq boundaries, and compaction."""

from __future__ import annotations

import pytest

from hirondelle.services import Services
from hirondelle.store import emails, journal, mailboxes
from hirondelle.store.database import WriteContext
from tests.messages import simple_message
from tests.store.test_mail_store import inbox_of, make_account


async def modseq_of(services: Services, address: str) -> int:
    return (await services.accounts.get_account(address)).modseq


async def test_changes_per_kind(services: Services) -> None:
    alice = await make_account(services)
    start = await modseq_of(services, alice.address)
    (delivered,) = await services.mail.deliver(simple_message(), [alice.id])
    assert delivered.stored is not None
    mailbox = await services.database.write(
        lambda ctx: mailboxes.create_mailbox(ctx, alice.id, "Projects")
    )
    mailbox_changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Mailbox", start)
    )
    assert mailbox_changes.created == [mailbox.id]
    inbox = await inbox_of(services, alice)
    assert mailbox_changes.updated == [inbox.id], "the inbox's counts changed"
    email_changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", start)
    )
    assert email_changes.created == [delivered.stored.email_id]
    assert email_changes.new_modseq == await modseq_of(services, alice.address)
    assert not email_changes.has_more


async def test_changes_per_container(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    projects = await services.database.write(
        lambda ctx: mailboxes.create_mailbox(ctx, alice.id, "Projects")
    )
    start = await modseq_of(services, alice.address)
    await services.mail.deliver(simple_message(), [alice.id])
    await services.mail.append(account_id=alice.id, mailbox_id=projects.id, raw=simple_message())
    await services.mail.append(account_id=alice.id, mailbox_id=projects.id, raw=simple_message())
    in_inbox = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "MailboxMessage", start, container_id=inbox.id)
    )
    in_projects = await services.database.read(
        lambda c: journal.changes_since(
            c, alice.id, "MailboxMessage", start, container_id=projects.id
        )
    )
    assert in_inbox.created == [1]
    assert in_projects.created == [1, 2]


async def test_created_then_destroyed_is_not_reported(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    start = await modseq_of(services, alice.address)
    (kept,) = await services.mail.deliver(simple_message(), [alice.id])
    (gone,) = await services.mail.deliver(simple_message(), [alice.id])
    assert kept.stored and gone.stored
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[2]
        )
    )
    changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", start)
    )
    assert changes.created == [kept.stored.email_id]
    assert changes.destroyed == []
    assert changes.updated == []


async def test_updated_then_destroyed_is_destroyed(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    (delivered,) = await services.mail.deliver(simple_message(), [alice.id])
    assert delivered.stored
    email_id = delivered.stored.email_id
    start = await modseq_of(services, alice.address)
    await services.database.write(
        lambda ctx: emails.set_keywords(
            ctx, account_id=alice.id, email_ids=[email_id], add=["$seen"]
        )
    )
    middle = await modseq_of(services, alice.address)
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[1]
        )
    )
    changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", start)
    )
    assert (changes.created, changes.updated, changes.destroyed) == ([], [], [email_id])
    since_middle = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", middle)
    )
    assert since_middle.destroyed == [email_id]
    uid_changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "MailboxMessage", start, container_id=inbox.id)
    )
    assert uid_changes.destroyed == [1], "QRESYNC VANISHED reads expunged UIDs from here"


async def test_paging_never_splits_a_modseq(services: Services) -> None:
    alice = await make_account(services)
    start = await modseq_of(services, alice.address)
    for _ in range(5):
        await services.mail.deliver(simple_message(), [alice.id])
    seen: list[int] = []
    state = start
    pages = 0
    while True:
        page = await services.database.read(
            lambda c, s=state: journal.changes_since(c, alice.id, "Email", s, max_changes=2)
        )
        assert len(page.created) <= 2
        seen.extend(page.created)
        state = page.new_modseq
        pages += 1
        if not page.has_more:
            break
    assert pages == 3
    assert len(seen) == 5 and len(set(seen)) == 5
    assert state == await modseq_of(services, alice.address)


async def test_one_state_bigger_than_max_changes_cannot_be_paged(services: Services) -> None:
    alice = await make_account(services)
    inbox = await inbox_of(services, alice)
    for _ in range(3):
        await services.mail.deliver(simple_message(), [alice.id])
    start = await modseq_of(services, alice.address)
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=inbox.id, uids=[1, 2, 3]
        )
    )
    with pytest.raises(journal.CannotCalculateChanges):
        await services.database.read(
            lambda c: journal.changes_since(c, alice.id, "Email", start, max_changes=2)
        )


async def test_compaction_makes_old_states_unanswerable(services: Services) -> None:
    alice = await make_account(services)
    old = await modseq_of(services, alice.address)
    await services.mail.deliver(simple_message(), [alice.id])
    horizon = await modseq_of(services, alice.address)
    (late,) = await services.mail.deliver(simple_message(), [alice.id])
    assert late.stored

    def compact(ctx: WriteContext) -> int:
        return journal.compact(ctx, alice.id, up_to_modseq=horizon)

    assert await services.database.write(compact) > 0
    with pytest.raises(journal.CannotCalculateChanges):
        await services.database.read(lambda c: journal.changes_since(c, alice.id, "Email", old))
    recent = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "Email", horizon)
    )
    assert recent.created == [late.stored.email_id]


async def test_a_state_from_the_future_is_refused(services: Services) -> None:
    alice = await make_account(services)
    current = await modseq_of(services, alice.address)
    with pytest.raises(journal.CannotCalculateChanges):
        await services.database.read(
            lambda c: journal.changes_since(c, alice.id, "Email", current + 10)
        )


async def test_notifications_follow_commits(services: Services) -> None:
    alice = await make_account(services)
    async with services.bus.subscribe(alice.id) as subscription:
        (delivered,) = await services.mail.deliver(simple_message(), [alice.id])
        assert delivered.stored
        change = await subscription.wait()
    assert change.modseq == delivered.stored.modseq
    assert {"Email", "Mailbox", "MailboxMessage", "Thread"} <= change.kinds
