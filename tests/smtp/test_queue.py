"""The outbound queue against a fake remote MX on loopback: delivery, connection reuse,
temporary failures retried, permanent failures returned as RFC 3464 notices, delay
warnings, restarts, the smarthost, and the `hirondelle queue` view of it."""

from __future__ import annotations

import asyncio
import email
import email.policy

import aiosmtplib

from hirondelle.config import Settings
from hirondelle.mail.queue import OutboundQueue, QueueWorker, Route, StaticRouter
from hirondelle.services import Services, open_services
from hirondelle.store import schema
from hirondelle.store.database import WriteContext, now_us
from tests.messages import simple_message
from tests.smtp.conftest import (
    PASSWORD,
    DnsTable,
    FakeMX,
    mailbox_messages,
    make_account,
    start_servers,
)


def worker_for(services: Services, fake: FakeMX, **settings: object) -> QueueWorker:
    configured = services.settings
    if settings:
        smtp = configured.smtp.model_copy(update=settings)
        configured = configured.model_copy(update={"smtp": smtp})
    return QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=configured,
        router=StaticRouter({"remote.test": [Route("127.0.0.1", fake.port)]}),
    )


async def queue_message(services: Services, *recipients: str) -> int:
    """Queue a message from alice@example.test, as submission does."""
    sender = await services.accounts.get_account("alice@example.test")
    raw = simple_message(sender=sender.address, to=", ".join(recipients))
    return await OutboundQueue(services.database, services.blobs).enqueue(
        raw, mail_from=sender.address, recipients=list(recipients), account_id=sender.id
    )


async def test_queued_message_reaches_the_remote_mx(services: Services, fake_mx: FakeMX) -> None:
    await make_account(services, "alice@example.test")
    await queue_message(services, "bob@remote.test")
    tried = await worker_for(services, fake_mx).run_once()
    assert tried == 1
    [envelope] = fake_mx.received
    assert envelope.mail_from == "alice@example.test"
    assert envelope.rcpt_tos == ["bob@remote.test"]
    assert await OutboundQueue(services.database, services.blobs).entries() == []


async def test_one_connection_carries_every_message_for_a_domain(
    services: Services, fake_mx: FakeMX
) -> None:
    await make_account(services, "alice@example.test")
    await queue_message(services, "bob@remote.test", "carl@remote.test")
    await queue_message(services, "dora@remote.test")
    await worker_for(services, fake_mx).run_once()
    assert fake_mx.connections == 1
    assert sorted(r for e in fake_mx.received for r in e.rcpt_tos) == [
        "bob@remote.test",
        "carl@remote.test",
        "dora@remote.test",
    ]
    assert len(fake_mx.received) == 2, "one transaction per message, several recipients each"


async def test_temporary_failure_is_retried_later(services: Services, fake_mx: FakeMX) -> None:
    await make_account(services, "alice@example.test")
    await queue_message(services, "bob@remote.test")
    fake_mx.replies.append("451 4.3.0 Try again later")
    worker = worker_for(services, fake_mx)
    await worker.run_once()
    [pending] = await worker.queue.entries()
    assert pending.attempts == 1 and "451 4.3.0" in pending.last_error
    wait = (pending.next_attempt_at - now_us()) / 1_000_000
    initial = services.settings.smtp.retry_initial_seconds
    assert initial - 5 < wait <= initial, "the first retry waits retry_initial_seconds"
    assert await worker.run_once() == 0, "not due before its back-off has passed"
    await worker.queue.retry()
    await worker.run_once()
    assert [e.rcpt_tos for e in fake_mx.received] == [["bob@remote.test"]]
    assert await worker.queue.entries() == []


async def test_permanent_failure_puts_a_notice_in_the_senders_inbox(
    services: Services, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await queue_message(services, "ghost@remote.test")
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    await worker_for(services, fake_mx).run_once()
    [notice] = await mailbox_messages(services, alice)
    message = email.message_from_bytes(notice, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    human, status, headers = message.iter_parts()
    text = human.get_content()
    assert "n'a pas pu être remis" in text and "could not be delivered" in text
    status_text = status.as_bytes().decode()
    assert "Final-Recipient: rfc822; ghost@remote.test" in status_text
    assert "Action: failed" in status_text and "Status: 5.1.1" in status_text
    assert headers.get_content_type() == "text/rfc822-headers"
    assert await OutboundQueue(services.database, services.blobs).entries() == []


async def test_expired_message_is_returned_after_its_lifetime(
    services: Services, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await queue_message(services, "bob@remote.test")
    fake_mx.replies.append("451 4.3.0 Still busy")
    worker = worker_for(services, fake_mx, queue_lifetime_seconds=60)
    await _age_queue(services, seconds=120)
    await worker.run_once()
    [notice] = await mailbox_messages(services, alice)
    assert b"Action: failed" in notice and b"Status: 5.4.7" in notice
    assert await worker.queue.entries() == []


async def test_delay_warning_is_sent_once(services: Services, fake_mx: FakeMX) -> None:
    alice = await make_account(services, "alice@example.test")
    await queue_message(services, "bob@remote.test")
    fake_mx.replies += ["451 4.3.0 Busy", "451 4.3.0 Busy"]
    worker = worker_for(services, fake_mx, delay_warning_seconds=60)
    await _age_queue(services, seconds=120)
    await worker.run_once()
    await worker.queue.retry()
    await worker.run_once()
    [notice] = await mailbox_messages(services, alice)
    assert b"Action: delayed" in notice
    [pending] = await worker.queue.entries()
    assert pending.delay_warned


async def test_restart_during_a_retry_delivers_exactly_once(
    settings: Settings, fake_mx: FakeMX
) -> None:
    first = open_services(settings)
    try:
        await make_account(first, "alice@example.test")
        await queue_message(first, "bob@remote.test")
        fake_mx.replies.append("421 4.3.2 Shutting down")
        await worker_for(first, fake_mx).run_once()
        [pending] = await OutboundQueue(first.database, first.blobs).entries()
        assert pending.attempts == 1
    finally:
        first.close()
    second = open_services(settings)
    try:
        worker = worker_for(second, fake_mx)
        await worker.queue.retry()
        await worker.run_once()
        await worker.queue.retry()
        assert await worker.run_once() == 0
    finally:
        second.close()
    assert [e.rcpt_tos for e in fake_mx.received] == [["bob@remote.test"]]


async def test_smarthost_receives_mail_for_every_domain(
    services: Services, fake_mx: FakeMX
) -> None:
    await make_account(services, "alice@example.test")
    await queue_message(services, "someone@anywhere.test")
    relay = services.settings.smtp.model_copy(update={"relay": f"127.0.0.1:{fake_mx.port}"})
    configured = services.settings.model_copy(update={"smtp": relay})
    configured = Settings.model_validate(configured.model_dump())
    worker = QueueWorker(
        database=services.database, blobs=services.blobs, mail=services.mail, settings=configured
    )
    await worker.run_once()
    assert [e.rcpt_tos for e in fake_mx.received] == [["someone@anywhere.test"]]


async def test_accepted_submission_goes_out_through_the_worker(
    services: Services, fake_mx: FakeMX
) -> None:
    """The whole outbound path: submission -> queue row -> worker -> remote MX."""
    await make_account(services, "alice@example.test")
    servers, listeners = await start_servers(services, DnsTable())
    try:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=servers.submissions,
            use_tls=True,
            tls_context=servers.client_tls(),
        )
        await client.connect()
        await client.login("alice@example.test", PASSWORD)
        raw = simple_message(sender="alice@example.test", to="bob@remote.test")
        await client.sendmail("alice@example.test", ["bob@remote.test"], raw)
        client.close()
    finally:
        for listener in listeners:
            await listener.stop()
    await worker_for(services, fake_mx).run_once()
    [envelope] = fake_mx.received
    assert b"Subject: Hello" in envelope.original_content


async def _age_queue(services: Services, *, seconds: int) -> None:
    """Pretend the queued messages arrived ``seconds`` ago."""

    def write(ctx: WriteContext) -> None:
        ctx.conn.execute(
            schema.queue_messages.update().values(
                created_at=schema.queue_messages.c.created_at - seconds * 1_000_000
            )
        )

    await services.database.write(write)


async def test_two_workers_never_send_the_same_recipient(
    services: Services, fake_mx: FakeMX
) -> None:
    """Claims are exclusive (SKIP LOCKED on PostgreSQL, one writer on SQLite): two nodes
    working on one queue deliver each recipient once."""
    await make_account(services, "alice@example.test")
    for number in range(6):
        await queue_message(services, f"user{number}@remote.test")
    first, second = worker_for(services, fake_mx), worker_for(services, fake_mx)
    tried = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(tried) == 6
    delivered = sorted(r for envelope in fake_mx.received for r in envelope.rcpt_tos)
    assert delivered == sorted(f"user{n}@remote.test" for n in range(6))


async def test_failure_for_a_remote_sender_queues_a_null_sender_notice(
    services: Services, fake_mx: FakeMX
) -> None:
    """Mail forwarded by an alias from a remote sender: the notice goes back by mail,
    from the null reverse-path so that it can never cause another notice."""
    queue = OutboundQueue(services.database, services.blobs)
    await queue.enqueue(
        simple_message(), mail_from="dan@remote.test", recipients=["ghost@remote.test"]
    )
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user"
    await worker_for(services, fake_mx).run_once()
    [notice] = await queue.entries()
    assert (notice.mail_from, notice.address) == ("", "dan@remote.test")


async def test_international_address_to_a_server_without_smtputf8_is_returned(
    services: Services, fake_mx: FakeMX
) -> None:
    """RFC 6531 §3.5: the fake MX does not offer SMTPUTF8, so this can never succeed."""
    alice = await make_account(services, "alice@example.test")
    await queue_message(services, "josé@remote.test")
    await worker_for(services, fake_mx).run_once()
    [notice] = await mailbox_messages(services, alice)
    assert b"Status: 5.6.7" in notice
    assert fake_mx.received == []
