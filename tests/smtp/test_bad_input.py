"""Bad input and limits on the SMTP listeners: each gets its reply code, the connection
(or the server) keeps working, and nothing half-written reaches a mailbox."""

from __future__ import annotations

import asyncio
import base64

import pytest

from hirondelle.config import Endpoint
from hirondelle.mail.verification import Verdict, Verifier
from hirondelle.node import ListenerContext, bind
from hirondelle.services import Services
from hirondelle.smtp.server import Mode, start_listener
from tests.messages import simple_message
from tests.smtp.conftest import (
    MAX_AUTH_FAILURES,
    DnsTable,
    RawClient,
    Servers,
    mailbox_messages,
    make_account,
)


async def start_transaction(port: int, recipient: str = "alice@example.test") -> RawClient:
    client = await RawClient.connect(port)
    await client.command("EHLO client.test", expect=250)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    await client.command(f"RCPT TO:<{recipient}>", expect=250)
    return client


async def test_too_many_recipients_is_452_4_5_3(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")
    await services.aliases.add("@example.test", ["alice@example.test"])
    limit = services.settings.limits.max_recipients
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    # Pipelined (RFC 2920): every RCPT in one write, then each reply in order.
    await client.send(b"".join(b"RCPT TO:<r%d@example.test>\r\n" % i for i in range(limit + 1)))
    for _ in range(limit):
        await client.reply(expect=250)
    lines = await client.reply(expect=452)
    assert lines[-1].startswith("452 4.5.3")
    await client.close()


async def test_malformed_addresses_are_refused(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    for bad in ("RCPT TO:<@@example.test>", "RCPT TO:<a b@example.test>", "RCPT TO:<>"):
        lines = await client.command(bad, expect=553)
        assert lines[-1].startswith("553 5.1.3"), lines
    await client.command("RCPT TO:<alice@example.test>", expect=250)
    await client.close()


async def test_message_over_the_size_limit_is_552_5_3_4(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    limit = services.settings.limits.max_message_size
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1024
    sent = 0
    while sent <= limit:
        await client.send(chunk)
        sent += len(chunk)
    await client.send(b".\r\n")
    lines = await client.reply(expect=552)
    assert lines[-1].startswith("552 5.3.4")
    # The same connection goes on working.
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    await client.close()
    assert await mailbox_messages(services, alice) == []


async def test_declared_size_over_the_limit_is_refused_at_mail(
    services: Services, servers: Servers
) -> None:
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    too_big = services.settings.limits.max_message_size + 1
    lines = await client.command(f"MAIL FROM:<carol@elsewhere.test> SIZE={too_big}", expect=552)
    assert lines[-1].startswith("552 5.3.4")
    await client.close()


async def test_bare_lf_in_data_is_refused(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(b"Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<x@y.test>\r\n.\r\n")
    lines = await client.reply(expect=550)
    assert lines[-1].startswith("550 5.6.0")
    await client.close()
    assert await mailbox_messages(services, alice) == []


async def test_stray_cr_inside_a_line_is_accepted(services: Services, servers: Servers) -> None:
    """Broken generators write "\\r\\r\\n"; it cannot end DATA, so it is kept as sent."""
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(b"Subject: cr\r\n\r\n<html>\r\r\n</html>\r\n.\r\n")
    await client.reply(expect=250)
    await client.close()
    [stored] = await mailbox_messages(services, alice)
    assert stored.endswith(b"<html>\r\r\n</html>\r\n")


async def test_nul_byte_in_data_is_refused(services: Services, servers: Servers) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(b"Subject: nul\r\n\r\nbad\x00byte\r\n.\r\n")
    await client.reply(expect=550)
    await client.close()
    assert await mailbox_messages(services, alice) == []


async def test_overlong_command_line_is_500_and_the_session_continues(
    services: Services, servers: Servers
) -> None:
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO " + "a" * 5000, expect=500)
    await client.command("NOOP", expect=250)
    await client.close()


async def test_pipelined_garbage_gets_errors_then_the_connection_closes(
    services: Services, servers: Servers
) -> None:
    client = await RawClient.connect(servers.mx)
    await client.send(b"".join(b"GARBAGE%d\r\n" % i for i in range(5)))
    for _ in range(4):
        await client.reply(expect=500)
    await client.reply(expect=502)
    assert await client.reader.read() == b""
    await client.close()
    # The listener itself is fine.
    other = await RawClient.connect(servers.mx)
    await other.command("EHLO client.test", expect=250)
    await other.close()


async def test_client_that_stops_mid_data_leaves_nothing_behind(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(simple_message()[:60])
    client.writer.close()
    await client.writer.wait_closed()
    # A second session delivers normally: the first one left no trace.
    second = await start_transaction(servers.mx)
    await second.command("DATA", expect=354)
    await second.send(simple_message() + b".\r\n")
    await second.reply(expect=250)
    await second.close()
    assert len(await mailbox_messages(services, alice)) == 1


async def test_commands_out_of_order_get_503(services: Services, servers: Servers) -> None:
    client = await RawClient.connect(servers.mx)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=503)
    await client.command("EHLO client.test", expect=250)
    await client.command("RCPT TO:<alice@example.test>", expect=503)
    lines = await client.command("DATA", expect=503)
    assert lines[-1].startswith("503 5.5.1")
    await client.close()


async def test_auth_on_the_mx_is_not_available(services: Services, servers: Servers) -> None:
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    await client.command("AUTH PLAIN AGFsaWNlAHg=", expect=502)
    await client.close()


async def test_failed_logins_do_not_hold_up_other_sessions(
    services: Services, servers: Servers
) -> None:
    """Password checks run off the event loop: while a guesser burns through its
    attempts, another session's commands are answered at once."""
    await make_account(services, "alice@example.test")
    wrong = base64.b64encode(b"\0alice@example.test\0guess").decode()

    async def guess() -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", servers.submissions, ssl=servers.client_tls(), server_hostname="localhost"
        )
        client = RawClient(reader, writer)
        await client.reply(expect=220)
        await client.command("EHLO guesser.test", expect=250)
        for _ in range(MAX_AUTH_FAILURES - 1):
            await client.command(f"AUTH PLAIN {wrong}", expect=535)
        await client.command(f"AUTH PLAIN {wrong}", expect=421)
        await client.close()

    other = await RawClient.connect(servers.mx)
    await other.command("EHLO other.test", expect=250)
    guessers = asyncio.ensure_future(guess())
    loop = asyncio.get_running_loop()
    slowest = 0.0
    while not guessers.done():
        started = loop.time()
        await other.command("NOOP", expect=250)
        slowest = max(slowest, loop.time() - started)
    await guessers
    assert slowest < 0.5, f"a NOOP took {slowest:.2f}s while logins were being checked"
    await other.close()


async def test_overlong_data_line_is_500_after_the_data_and_nothing_is_stored(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    limit = services.settings.limits.max_command_length
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(b"Subject: long\r\n\r\n" + b"y" * (limit + 10) + b"\r\n.\r\n")
    lines = await client.reply(expect=500)
    assert lines[-1].startswith("500 5.5.2")
    await client.command("NOOP", expect=250)
    await client.close()
    assert await mailbox_messages(services, alice) == []


class BrokenVerifier(Verifier):
    async def verify(self, raw: bytes, *, client_ip: str, helo: str, mail_from: str) -> Verdict:
        raise RuntimeError("simulated bug with a secret detail")


async def test_unexpected_error_is_451_with_a_reference_and_the_session_goes_on(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await make_account(services, "alice@example.test")
    context = ListenerContext(
        name="smtp",
        sock=bind(Endpoint("127.0.0.1", 0)),
        services=services,
        tls=None,
        implicit_tls=False,
        addresses={},
    )
    broken = BrokenVerifier(DnsTable(), authserv_id="mail.example.test")
    listener = await start_listener(context, mode=Mode.MX, verifier=broken)
    try:
        client = await start_transaction(listener.port)
        await client.command("DATA", expect=354)
        await client.send(simple_message() + b".\r\n")
        lines = await client.reply(expect=451)
        assert lines[-1].startswith("451 4.3.0 Internal error, reference ")
        assert "secret" not in lines[-1]
        reference = lines[-1].rsplit(" ", 1)[1]
        assert reference in caplog.text and "simulated bug" in caplog.text
        await client.command("RSET", expect=250)
        await client.close()
    finally:
        await listener.stop()
    assert await mailbox_messages(services, alice) == []


async def test_a_thousand_failed_auth_attempts_each_get_a_reply_and_others_are_served(
    services: Services, servers: Servers
) -> None:
    """1,000 malformed AUTH exchanges over many connections (they cost the server no
    password check, so a client could send them for free): each gets 501 or the
    closing 421, and a normal session on the side is served throughout."""
    bystander = await RawClient.connect(servers.mx)
    await bystander.command("EHLO bystander.test", expect=250)
    attempts = 0
    while attempts < 1000:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", servers.submissions, ssl=servers.client_tls(), server_hostname="localhost"
        )
        client = RawClient(reader, writer)
        await client.reply(expect=220)
        await client.command("EHLO guesser.test", expect=250)
        for _ in range(MAX_AUTH_FAILURES - 1):
            await client.command("AUTH PLAIN !!!not-base64", expect=501)
        await client.command("AUTH PLAIN !!!not-base64", expect=421)
        attempts += MAX_AUTH_FAILURES
        await client.close()
        if attempts % 300 == 0:
            await bystander.command("NOOP", expect=250)
    await bystander.command("NOOP", expect=250)
    await bystander.close()
