"""Fixtures for the POP3 tests: a node with ``pop3`` and ``pop3s`` on free ports, a
fresh store per test on every backend, accounts with POP3 switched on, and a raw client
whose helpers assert the expected status by default."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hirondelle import tls
from hirondelle.config import ListenSettings, Settings
from hirondelle.identity import passwords
from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store.directory import Account

PASSWORD = "correct horse battery"
ADDRESS = "alice@example.test"


# For tests that are purely protocol-level (no store access beyond the node's start):
# they run on SQLite only, which keeps the suite fast.
protocol_level = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made in these tests use the cheapest argon2 parameters (verification reads
    them from the hash): the tests log in often, and the cost is not what they test."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def pop3_settings(settings: Settings) -> Settings:
    tls.generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="localhost")
    listen = ListenSettings.model_validate({"pop3": "127.0.0.1:0", "pop3s": "127.0.0.1:0"})
    return settings.model_copy(update={"listen": listen})


@pytest.fixture
async def node(pop3_settings: Settings) -> AsyncIterator[Node]:
    running = Node(pop3_settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def services(node: Node) -> Services:
    """The node's own services (the same store the listeners serve)."""
    assert node.services is not None
    return node.services


@pytest.fixture
def cafile(pop3_settings: Settings) -> Path:
    return pop3_settings.certificate_path()


def client_tls(cafile: Path) -> ssl.SSLContext:
    return tls.client_context(cafile=cafile)


def port(node: Node, name: str) -> int:
    return next(listener.port for listener in node.listeners if listener.name == name)


async def make_account(services: Services, address: str = ADDRESS, *, pop3: bool = True) -> Account:
    domain = address.split("@", 1)[1]
    if domain not in [d.name for d, _ in await services.accounts.list_domains()]:
        await services.accounts.add_domain(domain)
    await services.accounts.add_account(address, password=PASSWORD)
    return await services.accounts.update_account(address, switches={"pop3": pop3})


@pytest.fixture
async def alice(services: Services) -> Account:
    return await make_account(services)


async def deliver(services: Services, account: Account, raw: bytes) -> None:
    outcomes = await services.mail.deliver(raw, [account.id])
    assert outcomes[0].stored is not None, outcomes


@dataclass
class RawClient:
    """A POP3 client on a raw socket: exact lines in, exact lines out."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str | bytes, expect: str = "+OK") -> bytes:
        """Send one command; assert the reply starts with ``expect``; return it."""
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        reply = await self.line()
        assert reply.startswith(expect.encode()), (line, reply)
        return reply

    async def multiline(self, line: str) -> list[bytes]:
        """A command with a multi-line answer; the lines without CRLF (still stuffed)."""
        await self.command(line)
        lines = []
        while (data := await self.line()) != b".\r\n":
            assert data.endswith(b"\r\n"), data
            lines.append(data[:-2])
        return lines

    async def data(self, line: str) -> bytes:
        """A multi-line answer as raw bytes, terminator included."""
        await self.command(line)
        out = b""
        while not out.endswith(b"\r\n.\r\n") and out != b".\r\n":
            chunk = await self.line()
            assert chunk, "connection closed inside a multi-line response"
            out += chunk
        return out

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    async def starttls(self, cafile: Path) -> None:
        await self.command("STLS")
        await self.writer.start_tls(client_tls(cafile), server_hostname="localhost")

    async def login(self, address: str = ADDRESS, password: str = PASSWORD) -> None:
        await self.command(f"USER {address}")
        await self.command(f"PASS {password}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def connect(node: Node, cafile: Path, *, name: str = "pop3s") -> RawClient:
    """A raw client, greeted; over TLS for pop3s."""
    context = client_tls(cafile) if name == "pop3s" else None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        port(node, name),
        ssl=context,
        server_hostname="localhost" if context else None,
    )
    client = RawClient(reader, writer)
    greeting = await client.line()
    assert greeting.startswith(b"+OK "), greeting
    return client


@pytest.fixture
async def raw(node: Node, cafile: Path) -> AsyncIterator[RawClient]:
    client = await connect(node, cafile)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def plain(node: Node, cafile: Path) -> AsyncIterator[RawClient]:
    client = await connect(node, cafile, name="pop3")
    try:
        yield client
    finally:
        await client.close()
