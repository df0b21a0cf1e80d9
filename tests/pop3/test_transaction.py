"""The TRANSACTION and UPDATE states on raw sockets: the snapshot, DELE/RSET/QUIT,
UIDL stability, sizes that match what RETR sends, TOP, messages expunged meanwhile,
bad input, pipelining, autologout and internal errors."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hirondelle import tls
from hirondelle.config import Endpoint, Settings
from hirondelle.mime import canonicalize_line_endings
from hirondelle.node import ListenerContext, Node, bind
from hirondelle.pop3 import proto, server
from hirondelle.pop3 import session as pop3_session
from hirondelle.services import Services
from hirondelle.store import emails, journal, maildrop
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.pop3.conftest import RawClient, client_tls, connect, deliver, protocol_level


async def inbox(services: Services, account: Account) -> maildrop.Snapshot:
    snap = await services.database.read(lambda c: maildrop.snapshot(c, account.id))
    assert snap is not None
    return snap


@pytest.fixture
async def three(services: Services, alice: Account) -> list[bytes]:
    """Three messages in alice's inbox."""
    raws = [simple_message(subject=f"message {i}") for i in range(1, 4)]
    for raw in raws:
        await deliver(services, alice, raw)
    return raws


@pytest.fixture
async def session(raw: RawClient, three: list[bytes]) -> RawClient:
    """A logged-in session on a maildrop of three messages."""
    await raw.login()
    return raw


async def retr(client: RawClient, number: int) -> tuple[int, bytes]:
    """RETR: the size its status line announces and the message octets."""
    await client.send(f"RETR {number}\r\n".encode())
    status = await client.line()
    match = re.fullmatch(rb"\+OK (\d+) octets\r\n", status)
    assert match, status
    data = b""
    while not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
        data += await client.line()
    return int(match.group(1)), proto.unstuff(data)


# -- STAT, LIST, UIDL, RETR ----------------------------------------------------------


async def test_stat_counts_messages_and_octets(session: RawClient, three: list[bytes]) -> None:
    assert await session.command("STAT") == f"+OK 3 {sum(map(len, three))}\r\n".encode()


async def test_list_gives_each_size(session: RawClient, three: list[bytes]) -> None:
    lines = await session.multiline("LIST")
    assert lines == [f"{n} {len(raw)}".encode() for n, raw in enumerate(three, 1)]
    assert await session.command("LIST 2") == f"+OK 2 {len(three[1])}\r\n".encode()


async def test_retr_sends_the_message_and_the_announced_size(
    session: RawClient, three: list[bytes]
) -> None:
    for number, raw in enumerate(three, 1):
        assert await retr(session, number) == (len(raw), raw)


@pytest.mark.parametrize(
    "raw_message",
    [
        b"Subject: bare LF\n\nline one\nline two\n",
        b"Subject: no final newline\r\n\r\nlast line",
        b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n",
        b"Subject: mixed\r\n\r\none\ntwo\r\nthree\rfour\n",
        b"Subject: empty body\r\n\r\n",
    ],
    ids=["bare-lf", "no-final-newline", "dots", "mixed", "empty-body"],
)
async def test_list_size_is_exactly_what_retr_sends(
    raw: RawClient, services: Services, alice: Account, raw_message: bytes
) -> None:
    await deliver(services, alice, raw_message)
    await raw.login()
    listed = int((await raw.command("LIST 1")).split()[2])
    announced, received = await retr(raw, 1)
    assert listed == announced == len(received)
    expected = canonicalize_line_endings(raw_message)
    assert received == (expected if expected.endswith(b"\r\n") else expected + b"\r\n")


async def test_retr_streams_a_large_message_intact(
    raw: RawClient, services: Services, alice: Account
) -> None:
    line = b"." + b"x" * 998 + b"\r\n"  # every line needs stuffing
    big = b"Subject: big\r\n\r\n" + line * 1100  # 1.1 MB: several blob chunks
    await deliver(services, alice, big)
    await raw.login()
    assert await retr(raw, 1) == (len(big), big)


async def test_uidl_is_unique_printable_and_short(session: RawClient) -> None:
    lines = await session.multiline("UIDL")
    ids = [line.split(b" ", 1)[1] for line in lines]
    assert len(set(ids)) == 3
    for unique_id in ids:
        assert re.fullmatch(rb"[\x21-\x7e]{1,70}", unique_id)
    assert await session.command("UIDL 2") == b"+OK 2 " + ids[1] + b"\r\n"


async def test_uidl_is_stable_across_sessions_and_deletions(
    node: Node, session: RawClient, cafile: Path, services: Services, alice: Account
) -> None:
    before = await session.multiline("UIDL")
    await session.command("DELE 1")
    await session.command("QUIT")
    await deliver(services, alice, simple_message(subject="later"))
    again = await connect(node, cafile)
    try:
        await again.login()
        after = await again.multiline("UIDL")
    finally:
        await again.close()
    ids_before = [line.split()[1] for line in before]
    ids_after = [line.split()[1] for line in after]
    assert ids_after[:2] == ids_before[1:]  # the same messages keep their ids
    assert ids_after[2] not in ids_before  # a new message never reuses one


async def test_retr_of_unknown_numbers_is_refused(session: RawClient) -> None:
    await session.command("RETR 4", expect="-ERR no such message")
    await session.command("RETR 0", expect="-ERR invalid message number")
    await session.command("RETR x", expect="-ERR invalid message number")
    await session.command("RETR", expect="-ERR syntax: RETR msg")
    await session.command("LIST 99999999999", expect="-ERR invalid message number")
    await session.command("NOOP")


# -- TOP -------------------------------------------------------------------------------


async def test_top_sends_the_header_and_n_body_lines(
    raw: RawClient, services: Services, alice: Account
) -> None:
    message = b"Subject: top\r\nFrom: a@b.test\r\n\r\none\r\n.two\r\nthree\r\n"
    await deliver(services, alice, message)
    await raw.login()
    assert proto.unstuff(await raw.data("TOP 1 0")) == b"Subject: top\r\nFrom: a@b.test\r\n\r\n"
    assert proto.unstuff(await raw.data("TOP 1 2")) == (
        b"Subject: top\r\nFrom: a@b.test\r\n\r\none\r\n.two\r\n"
    )
    assert proto.unstuff(await raw.data("TOP 1 99")) == message
    await raw.command("TOP 1", expect="-ERR syntax: TOP msg n")
    await raw.command("TOP 1 -1", expect="-ERR invalid number of lines")


# -- DELE, RSET, QUIT ------------------------------------------------------------------


async def test_dele_takes_effect_only_at_quit(
    session: RawClient, services: Services, alice: Account
) -> None:
    await session.command("DELE 2")
    assert len((await inbox(services, alice)).messages) == 3
    await session.command("STAT", expect="+OK 2 ")
    await session.command("RETR 2", expect="-ERR message already deleted")
    await session.command("DELE 2", expect="-ERR message already deleted")
    await session.command("LIST 2", expect="-ERR message already deleted")
    assert [line.split()[0] for line in await session.multiline("LIST")] == [b"1", b"3"]
    assert await session.command("QUIT") == b"+OK bye, 1 message deleted\r\n"
    assert await session.closed()
    assert [m.uid for m in (await inbox(services, alice)).messages] == [1, 3]


async def test_rset_unmarks_deleted_messages(
    session: RawClient, services: Services, alice: Account
) -> None:
    await session.command("DELE 1")
    await session.command("DELE 3")
    await session.command("RSET", expect="+OK maildrop has 3 messages")
    await session.command("QUIT", expect="+OK bye\r\n")
    assert len((await inbox(services, alice)).messages) == 3


async def test_a_dropped_connection_deletes_nothing(
    node: Node, session: RawClient, services: Services, alice: Account, cafile: Path
) -> None:
    await session.command("DELE 1")
    await session.close()
    # Once the lock is free again the server has ended the session.
    again = await connect(node, cafile)
    try:
        for _ in range(100):
            await again.command("USER alice@example.test")
            if (await again.command("PASS correct horse battery", expect="")).startswith(b"+OK"):
                break
            await asyncio.sleep(0.02)
        await again.command("STAT", expect="+OK 3 ")
    finally:
        await again.close()


async def test_quit_deletes_through_the_journal(
    session: RawClient, services: Services, alice: Account
) -> None:
    """The same path as IMAP EXPUNGE: MailboxMessage destroyed rows are journaled."""
    before = (await services.accounts.get_account(alice.address)).modseq
    await session.command("DELE 1")
    await session.command("QUIT")
    assert await session.closed()
    snap = await inbox(services, alice)
    changes = await services.database.read(
        lambda c: journal.changes_since(c, alice.id, "MailboxMessage", before)
    )
    assert list(changes.destroyed) == [1]
    assert [m.uid for m in snap.messages] == [2, 3]


@protocol_level
async def test_quit_in_authorization_state_says_bye(raw: RawClient) -> None:
    await raw.command("QUIT", expect="+OK bye")
    assert await raw.closed()


# -- the snapshot and other sessions ---------------------------------------------------


async def test_mail_delivered_during_the_session_waits_for_the_next(
    node: Node, session: RawClient, services: Services, alice: Account, cafile: Path
) -> None:
    await deliver(services, alice, simple_message(subject="late"))
    await session.command("STAT", expect="+OK 3 ")
    await session.command("RETR 4", expect="-ERR no such message")
    await session.command("QUIT")
    assert await session.closed()
    again = await connect(node, cafile)
    try:
        await again.login()
        await again.command("STAT", expect="+OK 4 ")
    finally:
        await again.close()


async def test_message_expunged_meanwhile_is_refused_cleanly(
    session: RawClient, services: Services, alice: Account, three: list[bytes]
) -> None:
    snap = await inbox(services, alice)
    await services.database.write(
        lambda ctx: emails.remove_from_mailbox(
            ctx, account_id=alice.id, mailbox_id=snap.mailbox_id, uids=[snap.messages[1].uid]
        )
    )
    await session.command("RETR 2", expect="-ERR message was removed by another session")
    await session.command("TOP 2 1", expect="-ERR message was removed by another session")
    assert (await retr(session, 1))[1] == three[0]  # the others are still served
    await session.command("DELE 2")  # marking it is harmless
    await session.command("DELE 3")
    await session.command("QUIT", expect="+OK bye")
    assert [m.uid for m in (await inbox(services, alice)).messages] == [snap.messages[0].uid]


# -- bad input ---------------------------------------------------------------------------


async def test_unknown_command_is_an_error_and_the_session_continues(
    session: RawClient,
) -> None:
    await session.command("FROB", expect="-ERR unknown command")
    await session.command("", expect="-ERR empty command")
    await session.command(b"\xff\xfe", expect="-ERR unknown command")
    await session.command("STAT")


async def test_commands_of_the_other_state_are_refused(raw: RawClient, alice: Account) -> None:
    await raw.command("STAT", expect="-ERR log in first")
    await raw.login()
    await raw.command("USER alice@example.test", expect="-ERR command not valid after login")
    await raw.command("STLS", expect="-ERR command not valid after login")
    await raw.command("NOOP")


async def test_over_long_lines_are_refused_and_the_session_continues(session: RawClient) -> None:
    await session.command("NOOP " + "x" * 300, expect="-ERR line too long")
    await session.command("NOOP " + "x" * 100_000, expect="-ERR line too long")
    await session.command("NOOP")


@protocol_level
async def test_a_line_that_never_ends_closes_the_connection(raw: RawClient) -> None:
    raw.writer.write(b"x" * (server.MAX_DISCARD + 2 * server.READ_SIZE))
    await raw.writer.drain()
    assert await raw.closed()


@protocol_level
async def test_too_many_errors_close_the_session(raw: RawClient) -> None:
    for _ in range(pop3_session.MAX_ERRORS - 1):
        await raw.command("BOGUS", expect="-ERR unknown command")
    await raw.command("BOGUS", expect="-ERR unknown command; too many errors, closing")
    assert await raw.closed()


async def test_pipelined_commands_are_answered_in_order(session: RawClient) -> None:
    await session.send(b"NOOP\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\n")
    replies = [await session.line() for _ in range(5)]
    assert replies[0] == b"+OK\r\n"
    assert replies[1].startswith(b"+OK 3 ")
    assert replies[2].startswith(b"+OK 1 ")
    assert replies[3].startswith(b"+OK 1 ")
    assert replies[4] == b"+OK\r\n"


async def test_internal_error_gets_a_reference_and_the_session_continues(
    session: RawClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object) -> dict[int, int]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("hirondelle.pop3.maildrop.Maildrop.sizes", broken)
    reply = await session.command("STAT", expect="-ERR [SYS/TEMP] internal error, reference ")
    assert b"fire" not in reply
    reference = reply.split()[-1].decode()
    assert any(reference in record.getMessage() for record in caplog.records)
    await session.command("UIDL 1")


# -- autologout ---------------------------------------------------------------------------


@pytest.fixture
async def quick_listener(node: Node, pop3_settings: Settings) -> AsyncIterator[int]:
    """A pop3s listener of the same node whose autologout is a fraction of a second."""
    assert node.services is not None
    context = ListenerContext(
        name="pop3s",
        sock=bind(Endpoint.parse("127.0.0.1:0")),
        services=node.services,
        tls=tls.server_context_from_settings(pop3_settings),
        implicit_tls=True,
        addresses={},
    )
    listener = await server.start(context, idle_timeout=0.3)
    try:
        yield listener.port
    finally:
        await listener.stop()


async def quick_client(port: int, cafile: Path, *, receive_buffer: int = 0) -> RawClient:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=client_tls(cafile), server_hostname="localhost"
    )
    client = RawClient(reader, writer)
    assert (await client.line()).startswith(b"+OK")
    return client


@protocol_level
async def test_idle_session_is_logged_out(quick_listener: int, cafile: Path) -> None:
    client = await quick_client(quick_listener, cafile)
    try:
        assert await client.line() == (
            b"-ERR autologout: idle for too long / deconnexion automatique : inactif trop"
            b" longtemps\r\n"
        )
        assert await client.closed()
    finally:
        await client.close()


async def test_client_that_stops_reading_is_dropped_and_the_lock_freed(
    quick_listener: int, cafile: Path, services: Services, alice: Account
) -> None:
    await deliver(services, alice, b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 4000)
    stalled = await quick_client(quick_listener, cafile, receive_buffer=4096)
    try:
        await stalled.login()
        await stalled.send(b"RETR 1\r\n")  # and never read the answer
        for _ in range(100):
            other = await quick_client(quick_listener, cafile)
            try:
                await other.command("USER alice@example.test")
                reply = await other.command("PASS correct horse battery", expect="")
            finally:
                await other.close()
            if reply.startswith(b"+OK"):
                break
            assert reply.startswith(b"-ERR [IN-USE]"), reply
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the stalled session kept the maildrop")
    finally:
        await stalled.close()
