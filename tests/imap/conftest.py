"""A real IMAP server per test: both listeners on free ports, a fresh data directory and
store (on each backend), a self-signed certificate, and one account.

The server runs its own event loop on a thread, so blocking clients (imaplib,
imap-tools, mbsync) can be used directly from the test; store setup goes through the
services on that loop with :meth:`ImapServer.run`. Helpers assert the expected status
by default, so a test cannot pass on a refusal it did not ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from hirondelle import tls
from hirondelle.config import Endpoint, Settings
from hirondelle.identity import passwords
from hirondelle.imap import server as imap_server
from hirondelle.node import Listener, ListenerContext, bind
from hirondelle.services import Services, open_services
from hirondelle.store.directory import Account
from tests.threaded_node import ADDRESS, PASSWORD, LoopThreadNode


@dataclass
class ImapServer(LoopThreadNode):
    host: str
    port: int  # "imap": plain, STARTTLS
    tls_port: int  # "imaps": implicit TLS
    cafile: Path
    services: Services
    loop: asyncio.AbstractEventLoop
    account: Account | None = None
    listeners: list[Listener] = field(default_factory=list)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.check_hostname = False
        return context

    def append(self, mailbox: str, raw: bytes, *, flags: tuple[str, ...] = ()) -> int:
        assert self.account is not None
        target = self.mailbox(mailbox)
        stored = self.run(
            self.services.mail.append(
                account_id=self.account.id, mailbox_id=target.id, raw=raw, keywords=flags
            )
        )
        return stored.uids[target.id]

    # -- clients -----------------------------------------------------------------------

    def imaplib(self, *, login: bool = True) -> Client:
        """An imaplib client over implicit TLS, logged in unless told otherwise."""
        connection = imaplib.IMAP4_SSL(
            self.host, self.tls_port, ssl_context=self.client_context(), timeout=30
        )
        client = Client(connection)
        if login:
            client.ok(connection.login(ADDRESS, PASSWORD))
        return client

    def raw(self, *, tls_wrap: bool = True) -> RawClient:
        return RawClient(self, tls_wrap=tls_wrap)


class Client:
    """imaplib with status checks: ``ok(result)`` fails the test unless OK."""

    def __init__(self, connection: imaplib.IMAP4) -> None:
        self.imap = connection

    @staticmethod
    def ok(result: tuple[str, list[Any]]) -> list[Any]:
        status, data = result
        assert status == "OK", (status, data)
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()


class RawClient:
    """Exact protocol lines over a socket: ``command`` sends a tagged line and returns
    every line up to the tagged response, asserting its status."""

    def __init__(self, server: ImapServer, *, tls_wrap: bool) -> None:
        sock = socket.create_connection(
            (server.host, server.tls_port if tls_wrap else server.port), 30
        )
        if tls_wrap:
            sock = server.client_context().wrap_socket(sock)
        self.sock = sock
        self.server = server
        self.buffer = b""
        self.counter = 0
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            while line.endswith(b"}") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1 : -1].rstrip(b"+"))
                line += b"\r\n" + self.read_exact(size)
                line += self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def command(self, text: str | bytes, expect: str = "OK") -> list[bytes]:
        self.counter += 1
        tag = b"t%d" % self.counter
        raw = text.encode() if isinstance(text, str) else text
        self.send(tag + b" " + raw + b"\r\n")
        lines = self.until_tagged(tag)
        status = lines[-1].split(b" ", 2)[1].decode()
        assert status == expect, lines
        return lines

    def login(self) -> None:
        self.command(f'LOGIN {ADDRESS} "{PASSWORD}"')

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One self-signed certificate for the run (generating a key is the slow part)."""
    directory = tmp_path_factory.mktemp("imap-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    tls.generate_self_signed(cert, key, hostname="localhost")
    return cert, key


@pytest.fixture
def imap(
    settings: Settings, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImapServer]:
    # argon2 at production cost (64 MiB, t=3) is most of a login's time; these tests are
    # about IMAP, so the test account's hash is made cheap (verification reads the
    # parameters from the hash itself).
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    cert, key = certificate
    context = tls.server_context(cert, key)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="imap-server", daemon=True)
    thread.start()
    services = open_services(settings)
    plain = bind(Endpoint.parse("127.0.0.1:0"))
    secure = bind(Endpoint.parse("127.0.0.1:0"))
    addresses = {
        "imap": "{}:{}".format(*plain.getsockname()[:2]),
        "imaps": "{}:{}".format(*secure.getsockname()[:2]),
    }
    server = ImapServer(
        host="127.0.0.1",
        port=plain.getsockname()[1],
        tls_port=secure.getsockname()[1],
        cafile=cert,
        services=services,
        loop=loop,
    )
    for name, sock, implicit in (("imap", plain, False), ("imaps", secure, True)):
        listener = server.run(
            imap_server.start(
                ListenerContext(
                    name=name,
                    sock=sock,
                    services=services,
                    tls=context,
                    implicit_tls=implicit,
                    addresses=addresses,
                )
            )
        )
        server.listeners.append(listener)
    server.account = server.add_account()
    errors = _ErrorLog()
    logging.getLogger("hirondelle.imap").addHandler(errors)
    try:
        yield server
        # "No exception escapes": a test passes only if the server logged no error.
        assert not errors.records, [r.getMessage() for r in errors.records]
    finally:
        logging.getLogger("hirondelle.imap").removeHandler(errors)
        for listener in server.listeners:
            server.run(listener.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        services.close()
