"""Property and fuzz tests: the reply boundary (``smtp/replies.py``) and the listeners
under arbitrary input. Protocol-level, so on one backend (SQLite): whatever a client
sends, every reply is a well-formed SMTP reply, the server never answers with a
traceback, and it keeps serving new connections."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.config import Settings
from hirondelle.errors import Reason, Refused
from hirondelle.services import open_services
from hirondelle.smtp.replies import refusal_reply, with_enhanced_code
from tests.smtp.conftest import DnsTable, start_servers

T = TypeVar("T")

REPLY_LINE = re.compile(rb"^[2-5][0-9]{2}[ -]")
DETAIL = re.compile(r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")

codes = st.integers(min_value=200, max_value=599)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))


@given(codes, st.sampled_from([" ", "-"]), texts)
def test_enhanced_code_keeps_the_reply_code_and_adds_a_matching_detail(
    code: int, separator: str, text: str
) -> None:
    line = f"{code}{separator}{text}"
    result = with_enhanced_code(line)
    assert result[:4] == line[:4]
    detail = result[4:].split(" ", 1)[0]
    if code // 100 == 3 or code == 220:
        assert result == line, "RFC 3463: no detail on 3xx replies or the greeting"
    elif not text.startswith(detail):
        assert DETAIL.match(detail) and detail[0] == str(code)[0], result


@given(codes, texts)
def test_enhanced_code_is_idempotent(code: int, text: str) -> None:
    once = with_enhanced_code(f"{code} {text}")
    assert with_enhanced_code(once) == once


@given(st.sampled_from(list(Reason)), st.text(), st.sampled_from(["mail", "rcpt", "data"]))
def test_refusal_replies_are_one_well_formed_line(reason: Reason, message: str, stage: str) -> None:
    reply = refusal_reply(Refused(reason, message), stage=stage)  # type: ignore[arg-type]
    assert "\r" not in reply and "\n" not in reply
    code, detail = reply.split(" ")[:2]
    assert code[0] in "45" and DETAIL.match(detail) and detail[0] == code[0]


# -- the live listeners under random input ---------------------------------------------


class BackgroundServer:
    """The four listeners on an event loop of their own thread, so that hypothesis can
    drive them from plain synchronous sockets."""

    def __init__(self, tmp: Path) -> None:
        data = tmp / "data"
        data.mkdir()
        self.settings = Settings.model_validate(
            {"data_dir": data, "server": {"hostname": "mail.example.test"}}
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.services = open_services(self.settings)
        self.servers, self.listeners = self.call(start_servers(self.services, DnsTable()))

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        async def stop() -> None:
            for listener in self.listeners:
                await listener.stop()

        self.call(stop())
        self.services.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    server = BackgroundServer(tmp_path_factory.mktemp("fuzz"))
    try:
        yield server
    finally:
        server.close()


def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload`` after the greeting, then QUIT; everything the server said."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        received = b""
        while not received.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            assert chunk, "closed before the greeting"
            received += chunk
        sock.sendall(payload + b"\r\nQUIT\r\n")
        sock.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    return received


verbs = st.sampled_from(
    [b"EHLO", b"HELO", b"LHLO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP",
     b"AUTH", b"STARTTLS", b"VRFY", b"BDAT", b"HELP", b""]
)  # fmt: skip
command_lines = st.builds(
    lambda verb, argument: verb + b" " + argument if argument else verb,
    verbs,
    st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
payloads = st.lists(command_lines, min_size=1, max_size=12).map(b"\r\n".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, listener=st.sampled_from(["smtp", "lmtp", "submission"]))
def test_any_command_sequence_gets_well_formed_replies(
    background: BackgroundServer, payload: bytes, listener: str
) -> None:
    output = exchange(background.servers.ports[listener], payload)
    lines = output.split(b"\r\n")[:-1]
    assert lines, "no reply at all"
    for line in lines:
        assert REPLY_LINE.match(line), (payload, line)
        assert b"Traceback" not in line and b"Error: (" not in line, line


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=2000))
def test_random_bytes_never_take_the_listener_down(
    background: BackgroundServer, payload: bytes
) -> None:
    exchange(background.servers.mx, payload)
    # A fresh connection is still greeted.
    assert exchange(background.servers.mx, b"NOOP").startswith(b"220 ")
