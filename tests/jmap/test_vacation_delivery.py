"""Vacation replies at delivery (RFC 8621 §8 honoured by delivery; RFC 3834, RFC 5230 §4):
messages delivered over LMTP to an account whose VacationResponse is on, and what the
responder sent (the outbound queue for remote senders, the Inbox for local ones)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hirondelle.mail.queue import OutboundQueue
from hirondelle.services import Services
from hirondelle.store import vacation as vacation_store
from hirondelle.store.database import now_us
from hirondelle.store.directory import Account
from hirondelle.store.vacation import Vacation
from tests.messages import simple_message
from tests.smtp.conftest import (
    DnsTable,
    RawClient,
    Servers,
    mailbox_messages,
    make_account,
    start_servers,
)

DAY_US = 86_400 * 1_000_000


@pytest.fixture
async def servers(services: Services) -> AsyncIterator[Servers]:
    running, listeners = await start_servers(services, DnsTable())
    try:
        yield running
    finally:
        for listener in listeners:
            await listener.stop()


async def lmtp(servers: Servers, *, mail_from: str, rcpt: str, message: bytes) -> None:
    client = await RawClient.connect(servers.lmtp)
    await client.command("LHLO mta.example.test", expect=250)
    await client.command(f"MAIL FROM:<{mail_from}>", expect=250)
    await client.command(f"RCPT TO:<{rcpt}>", expect=250)
    await client.command("DATA", expect=354)
    await client.send(message + b".\r\n")
    await client.reply(expect=250)
    await client.command("QUIT", expect=221)
    await client.close()


async def enable(services: Services, account: Account, **values: object) -> None:
    fields: dict[str, object] = {
        "is_enabled": True,
        "subject": "Absent / Away",
        "text_body": "Back on Monday. De retour lundi.",
        **values,
    }
    settings = Vacation(**fields)  # type: ignore[arg-type]
    await services.database.write(lambda ctx: vacation_store.put(ctx, account.id, settings))


async def queued(services: Services) -> list[tuple[str, str, bytes]]:
    """(mail_from, recipient, content) of each queued recipient, once replies are done."""
    await services.vacation.idle()
    entries = await OutboundQueue(services.database, services.blobs).entries()
    return [(e.mail_from, e.address, await services.blobs.get(e.blob_hash)) for e in entries]


async def test_one_reply_per_sender_with_rfc3834_fields(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test", display_name="Alice")
    await enable(services, alice)
    original = simple_message(message_id="first@elsewhere.test", subject="Réunion")
    await lmtp(servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=original)
    [(mail_from, recipient, reply)] = await queued(services)
    assert (mail_from, recipient) == ("", "carol@elsewhere.test")
    headers = reply.split(b"\r\n\r\n", 1)[0]
    assert b"Auto-Submitted: auto-replied" in headers
    assert b"In-Reply-To: <first@elsewhere.test>" in headers
    assert b"From: Alice <alice@example.test>" in headers
    assert b"Subject: Absent / Away" in headers
    assert b"Message-ID: <" in headers
    assert b"Back on Monday" in reply
    # The same sender again within the interval: no second reply.
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    assert len(await queued(services)) == 1
    # Another sender is answered.
    await lmtp(
        servers, mail_from="dave@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    assert sorted(r for _, r, _ in await queued(services)) == [
        "carol@elsewhere.test",
        "dave@elsewhere.test",
    ]


async def test_changed_response_answers_again(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice)
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    # The reply runs after delivery, in a task of its own: let it read the first response
    # before the user changes it (it raced the change and answered under the new one).
    assert len(await queued(services)) == 1
    await enable(services, alice, subject="New dates")
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    assert len(await queued(services)) == 2


@pytest.mark.parametrize(
    ("mail_from", "extra_headers"),
    [
        ("news@elsewhere.test", "List-Id: News <news.elsewhere.test>\r\n"),
        ("news@elsewhere.test", "List-Unsubscribe: <mailto:leave@elsewhere.test>\r\n"),
        ("news@elsewhere.test", "Precedence: bulk\r\n"),
        ("news@elsewhere.test", "Precedence: junk\r\n"),
        ("robot@elsewhere.test", "Auto-Submitted: auto-generated\r\n"),
        ("robot@elsewhere.test", "Auto-Submitted: auto-replied\r\n"),
        ("MAILER-DAEMON@elsewhere.test", ""),
        ("owner-list@elsewhere.test", ""),
        ("list-request@elsewhere.test", ""),
    ],
)
async def test_no_reply_to_lists_bulk_or_robots(
    services: Services, servers: Servers, mail_from: str, extra_headers: str
) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice)
    message = simple_message(extra_headers=extra_headers)
    await lmtp(servers, mail_from=mail_from, rcpt=alice.address, message=message)
    assert len(await mailbox_messages(services, alice)) == 1
    assert await queued(services) == []


async def test_auto_submitted_no_is_answered(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice)
    message = simple_message(extra_headers="Auto-Submitted: no\r\n")
    await lmtp(servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=message)
    assert len(await queued(services)) == 1


async def test_null_sender_is_never_answered(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice)
    await lmtp(servers, mail_from="", rcpt=alice.address, message=simple_message())
    assert len(await mailbox_messages(services, alice)) == 1
    assert await queued(services) == []


async def test_not_answered_when_not_a_visible_recipient(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice)
    message = simple_message(to="team@elsewhere.test")
    await lmtp(servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=message)
    assert await queued(services) == []


@pytest.mark.parametrize(
    ("from_offset", "to_offset", "answered"),
    [(-DAY_US, DAY_US, True), (DAY_US, 2 * DAY_US, False), (-2 * DAY_US, -DAY_US, False)],
)
async def test_dates_bound_the_response(
    services: Services, servers: Servers, from_offset: int, to_offset: int, answered: bool
) -> None:
    alice = await make_account(services, "alice@example.test")
    now = now_us()
    await enable(services, alice, from_date=now + from_offset, to_date=now + to_offset)
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    assert len(await queued(services)) == (1 if answered else 0)


async def test_disabled_response_sends_nothing(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await enable(services, alice, is_enabled=False)
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    assert await queued(services) == []


async def test_local_sender_gets_the_reply_in_their_inbox(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    await enable(services, alice)
    message = simple_message(sender="bob@example.test", to="alice@example.test")
    await lmtp(servers, mail_from=bob.address, rcpt=alice.address, message=message)
    await services.vacation.idle()
    [reply] = await mailbox_messages(services, bob)
    assert b"Auto-Submitted: auto-replied" in reply
    # Alice's reply is not answered back by Bob's own vacation (null sender, auto-replied).
    await enable(services, bob)
    await lmtp(
        servers, mail_from="carol@elsewhere.test", rcpt=alice.address, message=simple_message()
    )
    await services.vacation.idle()
    assert len(await mailbox_messages(services, bob)) == 1
