"""Real MX resolution (RFC 5321 §5.1, RFC 7505) against a DNS server on loopback that
the test starts, and the smarthost with AUTH over STARTTLS (RFC 3207, RFC 4954)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from hirondelle import tls
from hirondelle.config import Settings
from hirondelle.mail.queue import (
    MxRouter,
    OutboundQueue,
    PermanentFailure,
    QueueWorker,
    Route,
    TemporaryFailure,
)
from hirondelle.services import Services
from tests.messages import simple_message
from tests.smtp.conftest import FakeMX, mailbox_messages, make_account
from tests.smtp.dns_server import DnsServer, Zone, start_dns_server


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    server = await start_dns_server(Zone())
    try:
        yield server
    finally:
        await server.close()


def mx_worker(services: Services, dns_server: DnsServer, port: int) -> QueueWorker:
    return QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
        router=MxRouter(resolver=dns_server.resolver(), port=port, timeout=5),
        connect_timeout=5,
    )


async def queue_to(services: Services, recipient: str) -> None:
    sender = await services.accounts.get_account("alice@example.test")
    raw = simple_message(sender=sender.address, to=recipient)
    await OutboundQueue(services.database, services.blobs).enqueue(
        raw, mail_from=sender.address, recipients=[recipient], account_id=sender.id
    )


def notice_status(notice: bytes) -> str:
    message = email.message_from_bytes(notice, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    _, status, _ = message.iter_parts()
    return status.as_bytes().decode()


async def test_mx_records_come_in_preference_order_with_their_addresses(
    dns_server: DnsServer,
) -> None:
    zone = dns_server.zone
    zone.add("remote.test", "MX", "20 mx2.remote.test.", "10 mx1.remote.test.")
    zone.add("mx1.remote.test", "A", "127.0.0.1")
    zone.add("mx2.remote.test", "A", "127.0.0.2")
    zone.add("mx2.remote.test", "AAAA", "::1")
    routes = await MxRouter(resolver=dns_server.resolver(), port=2525).routes("remote.test")
    assert routes == [
        Route("127.0.0.1", 2525, "mx1.remote.test"),
        Route("127.0.0.2", 2525, "mx2.remote.test"),
        Route("::1", 2525, "mx2.remote.test"),
    ]
    assert ("remote.test", "MX", "udp") in zone.queries


async def test_unreachable_first_mx_falls_back_to_the_next(
    services: Services, dns_server: DnsServer, fake_mx: FakeMX
) -> None:
    await make_account(services, "alice@example.test")
    zone = dns_server.zone
    # 127.0.0.9 has nothing listening on the port: connection refused, then MX 20.
    zone.add("remote.test", "MX", "10 down.remote.test.", "20 up.remote.test.")
    zone.add("down.remote.test", "A", "127.0.0.9")
    zone.add("up.remote.test", "A", "127.0.0.1")
    await queue_to(services, "bob@remote.test")
    assert await mx_worker(services, dns_server, fake_mx.port).run_once() == 1
    assert [e.rcpt_tos for e in fake_mx.received] == [["bob@remote.test"]]
    assert await OutboundQueue(services.database, services.blobs).entries() == []


async def test_domain_without_mx_is_its_own_mail_server(
    services: Services, dns_server: DnsServer, fake_mx: FakeMX
) -> None:
    await make_account(services, "alice@example.test")
    dns_server.zone.add("plain.test", "A", "127.0.0.1")
    await queue_to(services, "bob@plain.test")
    await mx_worker(services, dns_server, fake_mx.port).run_once()
    assert [e.rcpt_tos for e in fake_mx.received] == [["bob@plain.test"]]
    assert ("plain.test", "A", "udp") in dns_server.zone.queries


async def test_null_mx_is_a_permanent_failure_returned_to_the_sender(
    services: Services, dns_server: DnsServer, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    dns_server.zone.add("nomail.test", "MX", "0 .")
    dns_server.zone.add("nomail.test", "A", "127.0.0.1")  # not used: the null MX wins
    with pytest.raises(PermanentFailure):
        await MxRouter(resolver=dns_server.resolver()).routes("nomail.test")
    await queue_to(services, "bob@nomail.test")
    await mx_worker(services, dns_server, fake_mx.port).run_once()
    assert fake_mx.received == [] and fake_mx.connections == 0
    [notice] = await mailbox_messages(services, alice)
    status = notice_status(notice)
    assert "Final-Recipient: rfc822; bob@nomail.test" in status
    assert "Status: 5.1.10" in status
    assert await OutboundQueue(services.database, services.blobs).entries() == []


async def test_unknown_domain_is_permanent_and_a_failing_server_is_temporary(
    services: Services, dns_server: DnsServer, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    dns_server.zone.failing.add("flaky.test")
    router = MxRouter(resolver=dns_server.resolver(), timeout=2)
    with pytest.raises(PermanentFailure) as nxdomain:
        await router.routes("nowhere.test")
    assert nxdomain.value.status == "5.1.2"
    with pytest.raises(TemporaryFailure):
        await router.routes("flaky.test")
    # Through the worker: the SERVFAIL recipient stays queued for a retry, no notice.
    await queue_to(services, "bob@flaky.test")
    await mx_worker(services, dns_server, fake_mx.port).run_once()
    [entry] = await OutboundQueue(services.database, services.blobs).entries()
    assert entry.address == "bob@flaky.test" and entry.attempts == 1
    assert await mailbox_messages(services, alice) == []


async def test_mx_hosts_without_any_address_fail_permanently(dns_server: DnsServer) -> None:
    dns_server.zone.add("lame.test", "MX", "10 gone.lame.test.")
    with pytest.raises(PermanentFailure) as failure:
        await MxRouter(resolver=dns_server.resolver()).routes("lame.test")
    assert failure.value.status == "5.4.4"


async def test_a_large_mx_set_is_read_over_tcp(dns_server: DnsServer) -> None:
    zone = dns_server.zone
    names = [f"a-rather-long-mail-exchanger-name-{n:02}.big.test" for n in range(50)]
    zone.add("big.test", "MX", *(f"{10 + n} {name}." for n, name in enumerate(names)))
    zone.add(names[0], "A", "127.0.0.1")
    routes = await MxRouter(resolver=dns_server.resolver()).routes("big.test")
    assert routes == [Route("127.0.0.1", 25, names[0])]
    # The UDP answer did not fit: truncated, and asked again over TCP.
    assert ("big.test", "MX", "tcp") in zone.queries


# -- the smarthost with AUTH over STARTTLS ---------------------------------------------


class Submission:
    """A fake submission server: STARTTLS required before anything, then AUTH."""

    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []
        self.received: list[tuple[str, list[str]]] = []

    def authenticate(
        self, server: SMTP, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"relay secret")

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 2.0.0 Relayed"


async def test_smarthost_with_auth_over_starttls(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_account(services, "alice@example.test")
    certificate, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    tls.generate_self_signed(certificate, key, hostname="localhost")
    # The relay gets our password, so its certificate is checked: trust this one.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    context = tls.server_context(certificate, key)
    fake = Submission()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            fake,
            hostname="relay.test",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=fake.authenticate,
            loop=loop,
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:

        def worker(password: str) -> QueueWorker:
            smtp = services.settings.smtp.model_copy(
                update={
                    "relay": f"localhost:{port}",
                    "relay_username": "hirondelle",
                    "relay_password": password,
                }
            )
            configured = Settings.model_validate(
                services.settings.model_copy(update={"smtp": smtp}).model_dump()
            )
            return QueueWorker(
                database=services.database,
                blobs=services.blobs,
                mail=services.mail,
                settings=configured,
                connect_timeout=5,
            )

        await queue_to(services, "someone@anywhere.test")
        # A wrong password: nothing is sent, the recipient stays queued (temporary).
        await worker("wrong").run_once()
        assert fake.received == []
        [entry] = await OutboundQueue(services.database, services.blobs).entries()
        assert entry.attempts == 1
        await OutboundQueue(services.database, services.blobs).retry()
        await worker("relay secret").run_once()
    finally:
        server.close()
        await server.wait_closed()
    assert fake.logins == [(b"hirondelle", b"wrong"), (b"hirondelle", b"relay secret")]
    assert fake.received == [("alice@example.test", ["someone@anywhere.test"])]
    assert await OutboundQueue(services.database, services.blobs).entries() == []
    assert await mailbox_messages(services, alice) == []
