"""Inbound MX (RFC 5321): delivery to local accounts, aliases, catch-all and subaddresses,
refusals with their codes, trace and Authentication-Results headers; aiosmtplib,
smtplib and swaks as clients."""

from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest

from hirondelle.mail.queue import OutboundQueue
from hirondelle.services import Services
from tests.messages import simple_message
from tests.smtp.conftest import Servers, mailbox_messages, make_account


async def send(
    port: int, mail_from: str, recipients: list[str], raw: bytes, *, expect: int = 250
) -> aiosmtplib.SMTPResponse | None:
    """Send with aiosmtplib; the whole transaction must end with ``expect``."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    try:
        if expect == 250:
            errors, message = await client.sendmail(mail_from, recipients, raw)
            assert errors == {}, errors
            assert message.startswith("2.0.0"), message
            return None
        with pytest.raises(aiosmtplib.SMTPResponseException) as raised:
            await client.sendmail(mail_from, recipients, raw)
        assert raised.value.code == expect, raised.value
        return None
    finally:
        client.close()


async def test_message_to_a_local_account_lands_in_its_inbox(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await send(servers.mx, "carol@elsewhere.test", ["alice@example.test"], simple_message())
    [stored] = await mailbox_messages(services, alice)
    assert b"Subject: Hello" in stored
    assert stored.startswith(b"Received: from ")


async def test_received_header_names_the_protocol_and_recipient(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await send(servers.mx, "carol@elsewhere.test", ["alice@example.test"], simple_message())
    [stored] = await mailbox_messages(services, alice)
    received = stored.split(b"\r\n\r\n")[0].decode()
    assert "by mail.example.test (Hirondelle) with ESMTP id" in received
    assert "for <alice@example.test>" in received


async def test_alias_delivers_to_each_target(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    await services.aliases.add("team@example.test", ["alice@example.test", "bob@example.test"])
    await send(servers.mx, "carol@elsewhere.test", ["team@example.test"], simple_message())
    assert len(await mailbox_messages(services, alice)) == 1
    assert len(await mailbox_messages(services, bob)) == 1


async def test_catch_all_receives_unknown_local_parts(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.aliases.add("@example.test", ["alice@example.test"])
    await send(servers.mx, "carol@elsewhere.test", ["whoever@example.test"], simple_message())
    assert len(await mailbox_messages(services, alice)) == 1


async def test_plus_address_goes_to_the_account(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await send(servers.mx, "carol@elsewhere.test", ["alice+news@example.test"], simple_message())
    assert len(await mailbox_messages(services, alice)) == 1


async def test_one_copy_per_account_when_two_recipients_lead_to_it(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.aliases.add("info@example.test", ["alice@example.test"])
    await send(
        servers.mx,
        "carol@elsewhere.test",
        ["alice@example.test", "info@example.test"],
        simple_message(),
    )
    assert len(await mailbox_messages(services, alice)) == 1


async def test_unknown_local_recipient_is_550_5_1_1(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.ehlo()
        await client.mail("carol@elsewhere.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("nobody@example.test")
        assert refused.value.code == 550
        assert refused.value.message.startswith("5.1.1")
    finally:
        client.close()


async def test_other_domains_are_relay_denied(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.ehlo()
        await client.mail("carol@elsewhere.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("someone@gmail.test")
        assert refused.value.code == 550
        assert refused.value.message == "5.7.1 relay denied"
    finally:
        client.close()


async def test_recipient_over_quota_is_452_4_2_2(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.mail.deliver(simple_message(), [alice.id])
    await services.accounts.update_account(alice.address, quota_bytes=10)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.ehlo()
        await client.mail("carol@elsewhere.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("alice@example.test")
        assert refused.value.code == 452
        assert refused.value.message.startswith("4.2.2")
    finally:
        client.close()


async def test_smtplib_client_delivers_with_starttls(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    context = servers.client_tls()

    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", servers.mx, timeout=10) as client:
            client.ehlo("client.elsewhere.test")
            assert client.has_extn("starttls") and client.has_extn("smtputf8")
            assert not client.has_extn("auth"), "an MX must not offer AUTH"
            client.starttls(context=context)
            client.ehlo("client.elsewhere.test")
            client.sendmail("carol@elsewhere.test", ["alice@example.test"], simple_message())

    await asyncio.to_thread(deliver)
    [stored] = await mailbox_messages(services, alice)
    assert b"with ESMTPS id" in stored


async def test_swaks_delivers_to_a_local_account(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    process = await asyncio.create_subprocess_exec(
        "swaks",
        "--server", "127.0.0.1",
        "--port", str(servers.mx),
        "--from", "carol@elsewhere.test",
        "--to", "alice@example.test",
        "--helo", "client.elsewhere.test",
        "--header", "Subject: from swaks",
        "--body", "Bonjour Alice",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    [stored] = await mailbox_messages(services, alice)
    assert b"Subject: from swaks" in stored


async def test_null_sender_is_accepted_for_bounces(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await send(servers.mx, "", ["alice@example.test"], simple_message())
    assert len(await mailbox_messages(services, alice)) == 1


async def test_ehlo_advertises_the_extensions(services: Services, servers: Servers) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.ehlo()
        for extension in ("8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
            assert client.supports_extension(extension), extension
        assert client.supports_extension("starttls")
        assert client.esmtp_extensions["size"] == str(services.settings.limits.max_message_size)
        assert client.supports_extension("chunking")
    finally:
        client.close()


async def test_recipient_full_at_delivery_gets_the_sender_a_notice(
    services: Services, servers: Servers
) -> None:
    """One SMTP reply for two recipients: the one whose mailbox filled up between RCPT
    and DATA is not silently lost; the (local) sender gets a notice."""
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    carol = await make_account(services, "carol@example.test")
    await services.mail.deliver(simple_message(), [bob.id])
    used = (await services.accounts.get_account(bob.address)).used_bytes
    await services.accounts.update_account(bob.address, quota_bytes=used + 10)
    await send(
        servers.mx,
        "carol@example.test",
        ["alice@example.test", "bob@example.test"],
        simple_message(),
    )
    assert len(await mailbox_messages(services, alice)) == 1
    [notice] = await mailbox_messages(services, carol)
    assert b"Final-Recipient: rfc822; bob@example.test" in notice
    assert b"Status: 5.2.2" in notice


async def test_smtputf8_addresses_and_8bit_content(services: Services, servers: Servers) -> None:
    josé = await make_account(services, "josé@exemple.test")
    raw = (
        "From: Zoë <zoë@ailleurs.test>\r\nTo: josé@exemple.test\r\nSubject: Été\r\n\r\nÇa va ?\r\n"
    )
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.sendmail(
            "zoë@ailleurs.test", ["josé@exemple.test"], raw.encode(), mail_options=["SMTPUTF8"]
        )
    finally:
        client.close()
    [stored] = await mailbox_messages(services, josé)
    assert "Subject: Été".encode() in stored


async def test_alias_to_a_remote_address_is_forwarded_through_the_queue(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.aliases.add("both@example.test", ["alice@example.test", "al@remote.test"])
    await send(servers.mx, "carol@elsewhere.test", ["both@example.test"], simple_message())
    assert len(await mailbox_messages(services, alice)) == 1
    [queued] = await OutboundQueue(services.database, services.blobs).entries()
    assert (queued.address, queued.mail_from) == ("al@remote.test", "carol@elsewhere.test")
