"""A real node per test for JMAP: the HTTP listener and the IMAP listener on free ports,
a fresh store (on each backend), and one account.

The server runs its own event loop on a thread, so blocking clients (httpx, jmapc,
imaplib) are used directly from the test. :class:`JmapClient` asserts the HTTP status
and, for method calls, the response name by default: a test cannot pass on an error it
did not ask for.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from hirondelle import tls
from hirondelle.config import Endpoint, Settings
from hirondelle.identity import passwords
from hirondelle.imap import server as imap_server
from hirondelle.node import FRONT_ENDS, Listener, ListenerContext, bind
from hirondelle.services import Services, open_services
from hirondelle.store.directory import Account
from tests.threaded_node import ADDRESS, PASSWORD, LoopThreadNode

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def basic(address: str = ADDRESS, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{address}:{password}".encode()).decode()


class JmapClient:
    """httpx with the account's Basic credentials and JMAP helpers."""

    def __init__(self, node: JmapNode, account: Account, *, address: str = ADDRESS) -> None:
        self.node = node
        self.account = account
        self.account_id = f"A{account.id}"
        self.http = httpx.Client(
            base_url=node.base_url, headers={"Authorization": basic(address)}, timeout=30
        )

    def request(
        self,
        calls: list[list[Any]],
        *,
        using: list[str] | None = None,
        created_ids: dict[str, str] | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"using": using or USING, "methodCalls": calls}
        if created_ids is not None:
            body["createdIds"] = created_ids
        response = self.http.post("/jmap/api/", json=body)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    def call(
        self, name: str, args: dict[str, Any], *, expect: str | None = None, account: bool = True
    ) -> dict[str, Any]:
        """One method call; the response must be ``expect`` (the method name by default,
        or ``"error"``)."""
        if account:
            args = {"accountId": self.account_id, **args}
        answer = self.request([[name, args, "c0"]])
        responses = answer["methodResponses"]
        assert len(responses) >= 1
        got_name, got_args, call_id = responses[0]
        assert call_id == "c0"
        assert got_name == (expect or name), responses
        result: dict[str, Any] = got_args
        return result

    def error(self, name: str, args: dict[str, Any], kind: str) -> dict[str, Any]:
        result = self.call(name, args, expect="error")
        assert result["type"] == kind, result
        return result

    def mailbox_ids(self) -> dict[str, str]:
        """role or name -> mailbox id."""
        listed = self.call("Mailbox/get", {"ids": None})["list"]
        return {(m["role"] or m["name"]): m["id"] for m in listed}

    def close(self) -> None:
        self.http.close()


@dataclass
class JmapNode(LoopThreadNode):
    host: str
    http_port: int
    imap_port: int
    https_port: int
    cafile: Path
    services: Services
    loop: asyncio.AbstractEventLoop
    account: Account | None = None
    listeners: list[Listener] = field(default_factory=list)
    clients: list[JmapClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def client(self, account: Account | None = None, *, address: str = ADDRESS) -> JmapClient:
        owner = account or self.account
        assert owner is not None
        made = JmapClient(self, owner, address=address)
        self.clients.append(made)
        return made

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        return client


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def message(subject: str = "Hello", *, message_id: str = "", in_reply_to: str = "") -> bytes:
    headers = [
        "From: Bob <bob@example.net>",
        f"To: {ADDRESS}",
        f"Subject: {subject}",
        "Date: Sun, 22 Nov 2026 10:00:00 +0000",
    ]
    if message_id:
        headers.append(f"Message-ID: <{message_id}>")
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
        headers.append(f"References: <{in_reply_to}>")
    return ("\r\n".join(headers) + "\r\n\r\nBody of " + subject + "\r\n").encode()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One self-signed certificate for "localhost" for the run."""
    directory = tmp_path_factory.mktemp("jmap-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    tls.generate_self_signed(cert, key, hostname="localhost")
    return cert, key


@pytest.fixture
def jmap_settings(settings: Settings) -> Settings:
    # Plain HTTP on loopback, as a TLS-terminating proxy would speak to the node.
    return settings


@pytest.fixture
def node(
    jmap_settings: Settings, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[JmapNode]:
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="jmap-node", daemon=True)
    thread.start()
    services = open_services(jmap_settings)
    http_sock = bind(Endpoint.parse("127.0.0.1:0"))
    imap_sock = bind(Endpoint.parse("127.0.0.1:0"))
    https_sock = bind(Endpoint.parse("127.0.0.1:0"))
    addresses = {
        "http": "{}:{}".format(*http_sock.getsockname()[:2]),
        "imap": "{}:{}".format(*imap_sock.getsockname()[:2]),
        "https": "{}:{}".format(*https_sock.getsockname()[:2]),
    }
    server = JmapNode(
        host="127.0.0.1",
        http_port=http_sock.getsockname()[1],
        imap_port=imap_sock.getsockname()[1],
        https_port=https_sock.getsockname()[1],
        cafile=certificate[0],
        services=services,
        loop=loop,
    )

    server_tls = tls.server_context(*certificate)

    def context(name: str, sock: Any, *, secure: bool = False) -> ListenerContext:
        return ListenerContext(
            name=name,
            sock=sock,
            services=services,
            tls=server_tls if secure else None,
            implicit_tls=secure,
            addresses=addresses,
        )

    server.listeners.append(server.run(FRONT_ENDS["http"].start(context("http", http_sock))))
    server.listeners.append(server.run(imap_server.start(context("imap", imap_sock))))
    server.listeners.append(
        server.run(FRONT_ENDS["https"].start(context("https", https_sock, secure=True)))
    )
    server.account = server.add_account()
    errors = _ErrorLog()
    logging.getLogger("hirondelle").addHandler(errors)
    try:
        yield server
        # No exception escapes: a test passes only if the server logged no error.
        assert not errors.records, [r.getMessage() for r in errors.records]
    finally:
        logging.getLogger("hirondelle").removeHandler(errors)
        for made in server.clients:
            made.close()
        for listener in server.listeners:
            server.run(listener.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        services.close()


@pytest.fixture
def client(node: JmapNode) -> JmapClient:
    return node.client()
