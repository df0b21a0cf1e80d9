"""Submission (RFC 6409 on 587 with STARTTLS, RFC 8314 implicit TLS on 465): AUTH only
after TLS, the login gate with protocol "smtp", sender identity, added Message-ID and
Date, DKIM signatures, Sent copies, local delivery and queuing of remote recipients."""

from __future__ import annotations

import asyncio
import base64
import smtplib

import aiosmtplib
import dkim
import pytest

from hirondelle.mail import dkim as dkim_keys
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.queue import OutboundQueue
from hirondelle.services import Services
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.smtp.conftest import (
    MAX_AUTH_FAILURES,
    PASSWORD,
    RawClient,
    Servers,
    mailbox_messages,
    make_account,
)


async def submit_client(
    servers: Servers, *, implicit: bool = False, login: str = "alice@example.test"
) -> aiosmtplib.SMTP:
    """An authenticated aiosmtplib client on 465 (implicit) or 587 (STARTTLS)."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=servers.submissions if implicit else servers.submission,
        use_tls=implicit,
        start_tls=not implicit,
        tls_context=servers.client_tls(),
    )
    await client.connect()
    await client.login(login, PASSWORD)
    return client


@pytest.fixture
async def alice(services: Services) -> Account:
    return await make_account(services, "alice@example.test")


async def test_auth_is_not_offered_before_starttls(alice: Account, servers: Servers) -> None:
    client = await RawClient.connect(servers.submission)
    lines = await client.command("EHLO client.test", expect=250)
    assert "250-STARTTLS" in lines
    assert not any("AUTH" in line for line in lines)
    await client.command("AUTH PLAIN AGFsaWNlAHg=", expect=530)
    await client.command("MAIL FROM:<alice@example.test>", expect=530)
    await client.close()


async def test_auth_after_starttls_then_local_delivery(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    client = await submit_client(servers)
    try:
        assert "PLAIN" in client.esmtp_extensions["auth"]
        assert "LOGIN" in client.esmtp_extensions["auth"]
        raw = simple_message(sender="Alice <alice@example.test>", to="bob@example.test")
        errors, _ = await client.sendmail("alice@example.test", ["bob@example.test"], raw)
        assert errors == {}
    finally:
        await client.quit()
    [stored] = await mailbox_messages(services, bob)
    assert b"with ESMTPSA id" in stored


async def test_implicit_tls_submission_with_smtplib_login_mechanism(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    context = servers.client_tls()

    def send() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", servers.submissions, context=context) as client:
            client.ehlo("laptop.test")
            client.user, client.password = "alice@example.test", PASSWORD
            code, _ = client.auth("LOGIN", client.auth_login)
            assert code == 235
            raw = simple_message(sender="alice@example.test", to="bob@example.test")
            client.sendmail("alice@example.test", ["bob@example.test"], raw)

    await asyncio.to_thread(send)
    assert len(await mailbox_messages(services, bob)) == 1


async def test_wrong_password_is_535_and_the_connection_stays_usable(
    alice: Account, servers: Servers
) -> None:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=servers.submissions,
        use_tls=True,
        tls_context=servers.client_tls(),
    )
    await client.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await client.login("alice@example.test", "wrong password")
        assert refused.value.code == 535
        await client.login("alice@example.test", PASSWORD)
    finally:
        client.close()


async def test_smtp_switched_off_refuses_login(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test", switches={"smtp": False})
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await submit_client(servers)
    assert refused.value.code == 535
    assert "switched off" in refused.value.message


async def test_repeated_auth_failures_close_the_connection_with_421(
    alice: Account, servers: Servers
) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", servers.submissions, ssl=servers.client_tls(), server_hostname="localhost"
    )
    client = RawClient(reader, writer)
    await client.reply(expect=220)
    await client.command("EHLO laptop.test", expect=250)
    wrong = base64.b64encode(b"\0alice@example.test\0guess").decode()
    for _ in range(MAX_AUTH_FAILURES - 1):
        await client.command(f"AUTH PLAIN {wrong}", expect=535)
    lines = await client.command(f"AUTH PLAIN {wrong}", expect=421)
    assert lines[-1].startswith("421 4.7.0")
    assert await reader.read() == b"", "the server closes the connection"
    await client.close()


async def test_sender_must_be_one_of_the_accounts_addresses(
    alice: Account, servers: Servers
) -> None:
    client = await submit_client(servers)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("ceo@example.test")
        assert refused.value.code == 553
        assert refused.value.message.startswith("5.7.1")
    finally:
        client.close()


async def test_an_alias_of_the_account_may_be_the_sender(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    await services.aliases.add("sales@example.test", ["alice@example.test"])
    client = await submit_client(servers)
    try:
        raw = simple_message(sender="Sales <sales@example.test>", to="bob@example.test")
        await client.sendmail("sales@example.test", ["bob@example.test"], raw)
    finally:
        client.close()
    assert len(await mailbox_messages(services, bob)) == 1


async def test_from_header_of_someone_else_is_553(
    services: Services, alice: Account, servers: Servers
) -> None:
    await make_account(services, "bob@example.test")
    client = await submit_client(servers)
    try:
        raw = simple_message(sender="The Boss <boss@example.test>", to="bob@example.test")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail("alice@example.test", ["bob@example.test"], raw)
        assert refused.value.code == 553
        assert refused.value.message.startswith("5.7.1")
    finally:
        client.close()


async def test_message_id_and_date_are_added_when_missing(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    raw = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: bare\r\n\r\nHi\r\n"
    client = await submit_client(servers)
    try:
        await client.sendmail("alice@example.test", ["bob@example.test"], raw)
    finally:
        client.close()
    [stored] = await mailbox_messages(services, bob)
    head = stored.split(b"\r\n\r\n")[0]
    assert b"\r\nMessage-ID: <" in head and b"@mail.example.test>" in head
    assert b"\r\nDate: " in head


async def test_submitted_mail_is_dkim_signed_and_verifies(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    keys = await DkimService(services.database).generate("example.test", stamp="t1")
    records = dict(dkim_keys.dns_record(key) for key in keys)
    client = await submit_client(servers)
    try:
        raw = simple_message(sender="alice@example.test", to="bob@example.test")
        await client.sendmail("alice@example.test", ["bob@example.test"], raw)
    finally:
        client.close()
    [stored] = await mailbox_messages(services, bob)

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        record = records.get(name.decode().rstrip("."))
        return record.encode() if record else None

    signed = stored.split(b"\r\n", 1)[1]  # our Received field comes after signing
    signed = signed[signed.index(b"DKIM-Signature") :]
    verifier = dkim.DKIM(signed)
    assert verifier.verify(idx=0, dnsfunc=lookup), "Ed25519 signature"
    assert verifier.verify(idx=1, dnsfunc=lookup), "RSA signature"


async def test_sent_copy_only_when_the_account_asks(
    services: Services, alice: Account, servers: Servers
) -> None:
    await make_account(services, "bob@example.test")
    client = await submit_client(servers)
    raw = simple_message(sender="alice@example.test", to="bob@example.test")
    try:
        await client.sendmail("alice@example.test", ["bob@example.test"], raw)
    finally:
        client.close()
    assert await mailbox_messages(services, alice, "sent") == []
    await services.accounts.update_account(alice.address, save_sent_copy=True)
    client = await submit_client(servers)
    try:
        await client.sendmail("alice@example.test", ["bob@example.test"], raw)
    finally:
        client.close()
    assert len(await mailbox_messages(services, alice, "sent")) == 1


async def test_remote_recipients_are_queued_and_local_ones_delivered(
    services: Services, alice: Account, servers: Servers
) -> None:
    bob = await make_account(services, "bob@example.test")
    client = await submit_client(servers)
    try:
        raw = simple_message(sender="alice@example.test", to="bob@example.test, x@remote.test")
        await client.sendmail("alice@example.test", ["bob@example.test", "x@remote.test"], raw)
    finally:
        client.close()
    assert len(await mailbox_messages(services, bob)) == 1
    queued = await OutboundQueue(services.database, services.blobs).entries()
    assert [(q.address, q.mail_from, q.account_id) for q in queued] == [
        ("x@remote.test", "alice@example.test", alice.id)
    ]


async def test_mail_before_auth_is_530(alice: Account, servers: Servers) -> None:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=servers.submissions,
        use_tls=True,
        tls_context=servers.client_tls(),
    )
    await client.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("alice@example.test")
        assert refused.value.code == 530
    finally:
        client.close()
