"""Fixtures for the mail transport tests: the four SMTP listeners (MX, submission with
STARTTLS, submission over implicit TLS, LMTP) on free ports over a fresh store on every
backend, a DNS table for SPF/DKIM/DMARC, and a fake remote MX on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from hirondelle import tls
from hirondelle.config import Endpoint, Settings
from hirondelle.identity.passwords import hash_password_sync
from hirondelle.mail.verification import Verifier
from hirondelle.node import Listener, ListenerContext, bind
from hirondelle.services import Services
from hirondelle.smtp.server import Mode, start_listener
from hirondelle.store import directory, emails, mailboxes
from hirondelle.store.directory import Account

PASSWORD = "correct horse battery"
HOSTNAME = "mail.example.test"


class DnsTable:
    """A :class:`DnsLookup` from a dictionary: ``(name, type) -> records``."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}

    def add(self, name: str, kind: str, *values: str) -> None:
        self.records.setdefault((name.lower(), kind), []).extend(values)

    def txt(self, name: str) -> list[bytes]:
        return [value.encode() for value in self.records.get((name.lower(), "TXT"), [])]

    def addresses(self, name: str, family: str) -> list[str]:
        return list(self.records.get((name.lower(), family), []))

    def mx(self, name: str) -> list[tuple[int, str]]:
        found = self.records.get((name.lower(), "MX"), [])
        return [(int(v.split()[0]), v.split()[1]) for v in found]

    def ptr(self, address: str) -> list[str]:
        return []


@dataclass
class Servers:
    ports: dict[str, int]
    cafile: Path
    dns: DnsTable

    @property
    def mx(self) -> int:
        return self.ports["smtp"]

    @property
    def submission(self) -> int:
        return self.ports["submission"]

    @property
    def submissions(self) -> int:
        return self.ports["submissions"]

    @property
    def lmtp(self) -> int:
        return self.ports["lmtp"]

    def client_tls(self) -> ssl.SSLContext:
        return tls.client_context(cafile=self.cafile)


async def start_servers(services: Services, dns: DnsTable) -> tuple[Servers, list[Listener]]:
    settings = services.settings
    tls.generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="localhost")
    server_tls = tls.server_context_from_settings(settings)
    verifier = Verifier(dns, authserv_id=settings.server.hostname)
    listeners = []
    for name, mode, implicit in (
        ("smtp", Mode.MX, False),
        ("submission", Mode.SUBMISSION, False),
        ("submissions", Mode.SUBMISSION, True),
        ("lmtp", Mode.LMTP, False),
    ):
        sock = bind(Endpoint("127.0.0.1", 0))
        context = ListenerContext(
            name=name,
            sock=sock,
            services=services,
            tls=server_tls,
            implicit_tls=implicit,
            addresses={},
        )
        listeners.append(await start_listener(context, mode=mode, verifier=verifier))
    servers = Servers(
        ports={listener.name: listener.port for listener in listeners},
        cafile=settings.certificate_path(),
        dns=dns,
    )
    return servers, listeners


# Fewer allowed AUTH failures than the default 5: each failure costs an argon2 check.
MAX_AUTH_FAILURES = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    smtp = settings.smtp.model_copy(update={"max_auth_failures": MAX_AUTH_FAILURES})
    return settings.model_copy(update={"smtp": smtp})


@pytest.fixture
def dns_table() -> DnsTable:
    return DnsTable()


@pytest.fixture
async def servers(services: Services, dns_table: DnsTable) -> AsyncIterator[Servers]:
    running, listeners = await start_servers(services, dns_table)
    try:
        yield running
    finally:
        for listener in listeners:
            await listener.stop()


@functools.cache
def password_hash() -> str:
    # argon2 costs most of a second a hash; one for the whole run keeps the suite fast.
    return hash_password_sync(PASSWORD)


async def make_account(services: Services, address: str, **settings: object) -> Account:
    """An account whose password is ``PASSWORD``, with ``settings`` applied."""
    domain = address.split("@", 1)[1]
    if domain not in [d.name for d, _ in await services.accounts.list_domains()]:
        await services.accounts.add_domain(domain)
    await services.accounts.add_account(address, password=None)
    hashed = password_hash()
    account = await services.database.write(
        lambda ctx: directory.update_account(ctx, address, password_hash=hashed)
    )
    if settings:
        account = await services.accounts.update_account(address, **settings)  # type: ignore[arg-type]
    return account


async def mailbox_messages(
    services: Services, account: Account, role: str = "inbox"
) -> list[bytes]:
    """The raw messages in one of the account's mailboxes, in UID order."""
    mailbox = await services.database.read(
        lambda conn: mailboxes.get_mailbox_by_role(conn, account.id, role)
    )
    assert mailbox is not None
    view = await services.database.read(lambda conn: emails.list_messages(conn, mailbox.id))
    result = []
    for message in view:
        row = await services.database.read(
            lambda conn, m=message: emails.email_row(conn, account.id, m.email_id)
        )
        assert row is not None
        result.append(await services.blobs.get(str(row["blob_hash"])))
    return result


# -- a fake remote MX -----------------------------------------------------------------


@dataclass
class FakeMX:
    """An aiosmtpd server on loopback standing for another domain's MX. ``replies``
    are consumed one per DATA (e.g. ``["451 4.3.0 try later"]``), then 250."""

    port: int = 0
    received: list[Envelope] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.received.append(envelope)
        self.arrived.set()
        return "250 2.0.0 Queued"


@pytest.fixture
async def fake_mx() -> AsyncIterator[FakeMX]:
    fake = FakeMX()
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        fake.connections += 1
        return SMTP(fake, hostname="mx.remote.test", loop=loop)

    server = await loop.create_server(protocol, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()


# -- a raw client whose helpers assert the expected reply ----------------------------


class RawClient:
    """A line-level SMTP client for protocol tests: ``await client.command("RCPT
    TO:<x>", expect=550)`` returns the reply lines and fails the test on any other
    code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, greeting: int = 220) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        client = cls(reader, writer)
        await client.reply(expect=greeting)
        return client

    async def reply(self, *, expect: int) -> list[str]:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout=10)
            assert line, f"connection closed, expected {expect}"
            text = line.decode("utf-8").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        assert lines[-1].startswith(str(expect)), f"expected {expect}, got {lines}"
        return lines

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str, *, expect: int) -> list[str]:
        await self.send(line.encode("utf-8") + b"\r\n")
        return await self.reply(expect=expect)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
