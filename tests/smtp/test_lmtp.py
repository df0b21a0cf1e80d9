"""LMTP (RFC 2033): LHLO, one reply per recipient after DATA, through aiosmtplib's
LMTP-capable low-level commands and a raw client."""

from __future__ import annotations

from hirondelle.services import Services
from tests.messages import simple_message
from tests.smtp.conftest import RawClient, Servers, mailbox_messages, make_account


async def lmtp_transaction(port: int, recipients: list[str], *, expect: list[int]) -> list[str]:
    client = await RawClient.connect(port)
    await client.command("LHLO mta.example.test", expect=250)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    for recipient in recipients:
        await client.command(f"RCPT TO:<{recipient}>", expect=250)
    await client.command("DATA", expect=354)
    await client.send(simple_message() + b".\r\n")
    replies = [(await client.reply(expect=code))[-1] for code in expect]
    await client.command("QUIT", expect=221)
    await client.close()
    return replies


async def test_lmtp_gives_one_reply_per_recipient(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    replies = await lmtp_transaction(
        servers.lmtp, ["alice@example.test", "bob@example.test"], expect=[250, 250]
    )
    assert all(reply.startswith("250 2.0.0") for reply in replies)
    assert len(await mailbox_messages(services, alice)) == 1
    assert len(await mailbox_messages(services, bob)) == 1


async def test_lmtp_recipient_that_fills_up_gets_its_own_452(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    await services.mail.deliver(simple_message(body="x" * 50), [bob.id])
    # Bob's quota is filled between RCPT (checked) and DATA (checked again).
    used = (await services.accounts.get_account(bob.address)).used_bytes
    await services.accounts.update_account(bob.address, quota_bytes=used + 10)
    replies = await lmtp_transaction(
        servers.lmtp, ["alice@example.test", "bob@example.test"], expect=[250, 452]
    )
    assert replies[1].startswith("452 4.2.2")
    assert len(await mailbox_messages(services, alice)) == 1
    assert len(await mailbox_messages(services, bob)) == 1


async def test_lmtp_refuses_helo_and_ehlo(services: Services, servers: Servers) -> None:
    client = await RawClient.connect(servers.lmtp)
    await client.command("HELO mta.example.test", expect=500)
    await client.command("EHLO mta.example.test", expect=500)
    lines = await client.command("LHLO mta.example.test", expect=250)
    assert "250 ENHANCEDSTATUSCODES" in lines
    await client.close()


async def test_lmtp_received_field_says_lmtp(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    await lmtp_transaction(servers.lmtp, ["alice@example.test"], expect=[250])
    [stored] = await mailbox_messages(services, alice)
    assert b"with LMTP id" in stored
