"""The session state machine fed random lines (valid commands mixed with noise), on
every backend: it never raises, never answers with an internal error, always frames its
output in CRLF lines, ends, and leaves the maildrop unlocked."""

from __future__ import annotations

import asyncio
import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.errors import Reason, Refused
from hirondelle.pop3 import proto
from hirondelle.pop3.maildrop import node_maildrops
from hirondelle.pop3.session import REFUSAL_CODES, LineTooLong, Session, refusal
from hirondelle.services import Services
from hirondelle.store import maildrop
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.pop3.conftest import ADDRESS, PASSWORD, deliver


class FakeTransport:
    """Lines in, bytes out; TLS is pretended (the session only reads the flags)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = list(lines)
        self.output = bytearray()
        self.peer = "192.0.2.1"
        self.tls_active = True
        self.tls_available = True

    async def read_line(self, limit: int) -> bytes | None:
        if not self.lines:
            return None
        line = self.lines.pop(0)
        if len(line) + 2 > limit:
            raise LineTooLong
        return line

    def write(self, data: bytes) -> None:
        self.output += data

    async def drain(self) -> None:
        await asyncio.sleep(0)

    async def start_tls(self) -> None:
        self.tls_active = True


PLAIN = base64.b64encode(f"\0{ADDRESS}\0{PASSWORD}".encode())
VALID = [
    f"USER {ADDRESS}".encode(),
    f"PASS {PASSWORD}".encode(),
    b"PASS wrong",
    b"AUTH PLAIN " + PLAIN,
    b"AUTH PLAIN",
    PLAIN,
    b"*",
    b"AUTH",
    b"CAPA",
    b"STLS",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"LIST 9",
    b"UIDL",
    b"UIDL 2",
    b"RETR 1",
    b"RETR 3",
    b"TOP 2 0",
    b"TOP 1 3",
    b"DELE 1",
    b"DELE 2",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"APOP x y",
]
noise = st.binary(max_size=300).map(lambda data: data.replace(b"\n", b" "))
lines = st.lists(st.sampled_from(VALID) | noise, max_size=25)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=lines)
async def test_random_sessions_never_break(
    services: Services, alice: Account, script: list[bytes]
) -> None:
    snap = await services.database.read(lambda c: maildrop.snapshot(c, alice.id))
    assert snap is not None
    for _ in range(3 - len(snap.messages)):
        await deliver(services, alice, simple_message(body=".dot line\r\nmore\r\n"))
    transport = FakeTransport(script)
    shared = node_maildrops(services.database)
    session = Session(transport, services, shared=shared)
    await asyncio.wait_for(session.run(), 30)
    output = bytes(transport.output)
    assert b"internal error" not in output
    assert output.endswith(b"\r\n")
    assert all(b"\n" not in piece and b"\r" not in piece for piece in output.split(b"\r\n"))
    for line in output.split(b"\r\n"):
        if line.startswith(b"-ERR"):
            assert len(line) > len(b"-ERR ")  # every error says what is wrong
    assert shared.locks.acquire(alice.id), "the maildrop stayed locked"
    shared.locks.release(alice.id)


async def test_fake_transport_is_faithful(services: Services, alice: Account) -> None:
    """The fuzz harness itself: a scripted session gives the expected exchange."""
    transport = FakeTransport([f"USER {ADDRESS}".encode(), f"PASS {PASSWORD}".encode(), b"QUIT"])
    session = Session(transport, services, shared=node_maildrops(services.database))
    await session.run()
    assert bytes(transport.output).splitlines()[1:] == [
        b"+OK send PASS",
        b"+OK logged in, 0 messages",
        b"+OK bye",
    ]
    assert proto.ok("x") == b"+OK x\r\n"


def test_domain_refusals_map_to_response_codes() -> None:
    assert refusal(Refused(Reason.IN_USE, "busy")) == b"-ERR [IN-USE] busy\r\n"
    assert refusal(Refused(Reason.NOT_FOUND, "no such mailbox")) == b"-ERR no such mailbox\r\n"
    assert set(REFUSAL_CODES) == set(Reason), "every reason has its POP3 answer"


async def test_without_tls_no_login_is_possible_and_capa_says_so(
    services: Services, alice: Account
) -> None:
    transport = FakeTransport([b"CAPA", f"USER {ADDRESS}".encode(), b"STLS"])
    transport.tls_active = transport.tls_available = False
    await Session(transport, services, shared=node_maildrops(services.database)).run()
    lines = bytes(transport.output).splitlines()
    assert b"STLS" not in lines and b"USER" not in lines
    assert lines[-2] == (
        b"-ERR [SYS/PERM] log in only over TLS, which is not configured on this server"
        b" / connexion seulement par TLS, qui n'est pas configure sur ce serveur"
    )
    assert lines[-1] == b"-ERR [SYS/PERM] STLS is not available on this server"
