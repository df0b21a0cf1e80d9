"""DATA read in blocks and CHUNKING/BDAT (RFC 3030) on the MX, LMTP and submission
listeners, with raw sockets (swaks and aiosmtplib do not send BDAT; smtplib only
passes raw bytes through)."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email._header_value_parser import get_angle_addr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.services import Services
from hirondelle.smtp.server import simple_path, unstuffed
from tests.messages import simple_message
from tests.smtp.conftest import PASSWORD, RawClient, Servers, mailbox_messages, make_account


def stuffed(raw: bytes) -> bytes:
    """RFC 5321 §4.5.2 as a client does it, line by line."""
    lines = raw.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def delivered_body(stored: bytes) -> bytes:
    """The stored message without the trace fields the MX prepends."""
    return stored[stored.index(b"From: ") :]


DOTTY = (
    b"From: Carol <carol@elsewhere.test>\r\nTo: alice@example.test\r\n"
    b"Subject: dots\r\nMessage-ID: <dots@elsewhere.test>\r\n\r\n"
    b".\r\n..\r\n.leading\r\nends with a dot.\r\n\r\n.\r\n. \r\nx.\r\n.\r\n"
)


@given(st.lists(st.sampled_from([b"", b".", b"..", b".x", b"x.", b"a.b", b"\r", b" ."])))
def test_unstuffing_undoes_the_client_stuffing(lines: list[bytes]) -> None:
    raw = b"".join(line + b"\r\n" for line in lines)
    assert unstuffed(stuffed(raw)) == raw


async def start_transaction(
    port: int, recipients: tuple[str, ...] = ("alice@example.test",), *, greet: str = "EHLO"
) -> RawClient:
    client = await RawClient.connect(port)
    await client.command(f"{greet} client.test", expect=250)
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    for recipient in recipients:
        await client.command(f"RCPT TO:<{recipient}>", expect=250)
    return client


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 4096])
async def test_data_in_any_fragments_is_stored_exactly(
    services: Services, servers: Servers, piece: int
) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    wire = stuffed(DOTTY) + b".\r\n"
    for start in range(0, len(wire), piece):
        await client.send(wire[start : start + piece])
        if piece < 8:
            await asyncio.sleep(0)  # separate reads on the server's side
    await client.reply(expect=250)
    await client.command("QUIT", expect=221)
    await client.close()
    [stored] = await mailbox_messages(services, alice)
    assert delivered_body(stored) == DOTTY


async def test_pipelined_commands_after_the_final_dot_are_kept(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    # The end of one message and the whole next transaction in one write (RFC 2920).
    first, second = simple_message(subject="one"), simple_message(subject="two")
    await client.send(
        first + b".\r\nMAIL FROM:<carol@elsewhere.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    )
    for code in (250, 250, 250, 354):
        await client.reply(expect=code)
    await client.send(second + b".\r\n")
    await client.reply(expect=250)
    await client.close()
    stored = await mailbox_messages(services, alice)
    assert [delivered_body(m) for m in stored] == [first, second]


async def test_empty_data_is_accepted_as_an_empty_message(
    services: Services, servers: Servers
) -> None:
    await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    await client.command("DATA", expect=354)
    await client.send(b".\r\n")
    # Whatever the store makes of an empty message, one reply comes and the session
    # stays in step.
    line = await asyncio.wait_for(client.reader.readline(), timeout=10)
    assert re.match(rb"(250|5[0-9][0-9]) [25]\.[0-9]+\.[0-9]+ ", line), line
    await client.command("NOOP", expect=250)
    await client.close()


async def test_bdat_chunks_are_joined_without_unstuffing(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await start_transaction(servers.mx)
    half = len(DOTTY) // 2
    # Pipelined: both chunks in one write, then the two replies.
    await client.send(
        f"BDAT {half}\r\n".encode()
        + DOTTY[:half]
        + f"BDAT {len(DOTTY) - half} LAST\r\n".encode()
        + DOTTY[half:]
    )
    first = await client.reply(expect=250)
    assert first[-1] == f"250 2.0.0 {half} octets received"
    await client.reply(expect=250)
    await client.command("QUIT", expect=221)
    await client.close()
    [stored] = await mailbox_messages(services, alice)
    assert delivered_body(stored) == DOTTY


async def test_lmtp_bdat_last_gets_one_reply_per_recipient(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    client = await start_transaction(
        servers.lmtp, ("alice@example.test", "bob@example.test"), greet="LHLO"
    )
    raw = simple_message()
    await client.send(f"BDAT 0\r\nBDAT {len(raw)} LAST\r\n".encode() + raw)
    await client.reply(expect=250)  # the empty chunk
    for _ in range(2):
        lines = await client.reply(expect=250)
        assert lines[-1].startswith("250 2.0.0")
    await client.command("NOOP", expect=250)
    await client.close()
    assert len(await mailbox_messages(services, alice)) == 1
    assert len(await mailbox_messages(services, bob)) == 1


async def test_bdat_on_submission_after_starttls_and_auth(
    services: Services, servers: Servers
) -> None:
    await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    context = servers.client_tls()
    raw = simple_message(sender="alice@example.test", to="bob@example.test")

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", servers.submission) as client:
            client.starttls(context=context)
            client.login("alice@example.test", PASSWORD)
            assert client.has_extn("chunking")
            assert client.mail("alice@example.test")[0] == 250
            assert client.rcpt("bob@example.test")[0] == 250
            client.send(f"BDAT {len(raw)} LAST\r\n".encode() + raw)
            return client.getreply()

    code, text = await asyncio.to_thread(send)
    assert code == 250, text
    [stored] = await mailbox_messages(services, bob)
    assert b"with ESMTPSA id" in stored


async def test_bdat_over_the_size_limit_fails_the_transaction_and_drops_the_rest(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    limit = services.settings.limits.max_message_size
    client = await start_transaction(servers.mx)
    await client.send(b"BDAT 10\r\nSubject: x")
    await client.reply(expect=250)
    # Declared over the limit: read in full, refused, nothing kept in memory.
    block = b"x" * (1 << 20)
    await client.send(f"BDAT {limit}\r\n".encode())
    for _ in range(limit // len(block)):
        await client.send(block)
    await client.send(block[: limit % len(block)])
    lines = await client.reply(expect=552)
    assert lines[-1].startswith("552 5.3.4")
    # RFC 3030 §2: the client may have pipelined more chunks; they are dropped.
    await client.send(b"BDAT 3 LAST\r\nabc")
    lines = await client.reply(expect=503)
    assert lines[-1].startswith("503 5.5.1")
    # The transaction is over; the next one is delivered.
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    await client.command("RCPT TO:<alice@example.test>", expect=250)
    raw = simple_message()
    await client.send(f"BDAT {len(raw)} LAST\r\n".encode() + raw)
    await client.reply(expect=250)
    await client.close()
    [stored] = await mailbox_messages(services, alice)
    assert delivered_body(stored) == raw


async def test_bdat_out_of_order_is_503_and_the_chunk_is_still_read(
    services: Services, servers: Servers
) -> None:
    await make_account(services, "alice@example.test")
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    # No MAIL yet: the 5 octets "NOOP\n" must not be taken for a command.
    await client.send(b"BDAT 5\r\nNOOP\n")
    lines = await client.reply(expect=503)
    assert lines[-1].startswith("503 5.5.1")
    await client.command("RSET", expect=250)
    # DATA after BDAT is refused (RFC 3030 §2), and RSET forgets the chunks.
    await client.command("MAIL FROM:<carol@elsewhere.test>", expect=250)
    await client.command("RCPT TO:<alice@example.test>", expect=250)
    await client.send(b"BDAT 4\r\nabcd")
    await client.reply(expect=250)
    lines = await client.command("DATA", expect=503)
    assert lines[-1].startswith("503 5.5.1")
    await client.command("RSET", expect=250)
    await client.command("NOOP", expect=250)
    await client.close()


@pytest.mark.parametrize("arguments", ["", "x", "-1", "10 NOTLAST", "1 LAST extra", "１"])
async def test_malformed_bdat_is_501_and_the_connection_closes(
    services: Services, servers: Servers, arguments: str
) -> None:
    client = await start_transaction(servers.mx, ())
    lines = await client.command(f"BDAT {arguments}".rstrip(), expect=501)
    assert re.match(r"501 5\.5\.4 ", lines[-1])
    assert await asyncio.wait_for(client.reader.read(), timeout=10) == b""
    await client.close()
    # Others are served.
    other = await RawClient.connect(servers.mx)
    await other.command("EHLO client.test", expect=250)
    await other.close()


@given(
    st.sampled_from(["", " ", "\t", " \t"]),
    st.text(st.sampled_from(list("ab.-+'\"\\ ()é@")), max_size=12),
    st.text(st.sampled_from(list("ab9.-[]é_ ")), max_size=12),
    st.text(st.sampled_from(list(" \t=SIZEé<>()")), max_size=8),
)
def test_the_fast_path_parser_agrees_with_aiosmtpd(
    space: str, local: str, domain: str, rest: str
) -> None:
    """Whatever the fast path accepts, aiosmtpd's RFC 5322 parser reads the same."""
    arg = f"{space}<{local}@{domain}>{rest}"
    fast = simple_path(arg)
    if fast is None:
        return
    address, remainder = get_angle_addr(arg)
    assert (address.addr_spec, remainder) == fast


@pytest.mark.parametrize(
    "arg",
    ["<alice@example.test>", " <a.b+c@x-y.example> SIZE=10 BODY=8BITMIME", "<o'hara@x.test>"],
)
def test_the_fast_path_takes_plain_addresses(arg: str) -> None:
    assert simple_path(arg) is not None


async def test_held_replies_are_sent_before_waiting_for_a_chunk(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    client = await RawClient.connect(servers.mx)
    await client.command("EHLO client.test", expect=250)
    raw = simple_message()
    # MAIL and RCPT replies are grouped with the next reply; with the chunk not sent
    # yet, they must still come (a client may wait for them before sending the data).
    await client.send(
        b"MAIL FROM:<carol@elsewhere.test>\r\nRCPT TO:<alice@example.test>\r\n"
        + f"BDAT {len(raw)} LAST\r\n".encode()
    )
    await client.reply(expect=250)
    await client.reply(expect=250)
    await client.send(raw)
    await client.reply(expect=250)
    await client.close()
    assert [delivered_body(m) for m in await mailbox_messages(services, alice)] == [raw]
