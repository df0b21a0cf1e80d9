"""Non-synchronising literals over raw sockets (RFC 7888, RFC 9051 §4.3).

The server advertises LITERAL+ (RFC 7888 §3): a client may send ``{n+}`` literals of any
size without waiting, up to the server's limits: ``[limits] max_message_size`` for an
APPEND message, ``[limits] max_command_length`` for any other literal (and for the sum of
a command's other literals). Over a limit, the command is refused with TOOBIG (RFC 9051
§7.1: NO for APPEND, BAD otherwise); the literal the client is already sending is read
and thrown away when it is at most twice the limit, so the session goes on at the next
command, and otherwise the server says BYE and closes the connection instead of reading
it (RFC 7888 §4 leaves the server those two choices).

An IMAP4rev2 client (RFC 9051 §4.3 makes LITERAL- part of the base protocol: at most
4096 octets without LITERAL+) still sees LITERAL+ advertised, so bigger
non-synchronising literals are accepted from it too."""

from __future__ import annotations

import pytest

from hirondelle.config import Settings
from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message

MESSAGE_LIMIT = 200_000
COMMAND_LIMIT = 8192


@pytest.fixture
def settings(settings: Settings) -> Settings:
    limits = settings.limits.model_copy(
        update={"max_message_size": MESSAGE_LIMIT, "max_command_length": COMMAND_LIMIT}
    )
    return settings.model_copy(update={"limits": limits})


def _message(size: int) -> bytes:
    head = simple_message(subject="sized")
    return head + b"x" * (size - len(head))


def _logged_in(imap: ImapServer) -> RawClient:
    raw = imap.raw()
    raw.login()
    return raw


def _closed(raw: RawClient) -> bool:
    """The server closed the connection (after what is already buffered)."""
    try:
        while True:
            raw.line()
    except (ConnectionError, OSError):
        return True


def test_non_synchronizing_literals_up_to_the_limits_are_accepted(imap: ImapServer) -> None:
    raw = _logged_in(imap)
    message = _message(MESSAGE_LIMIT)
    raw.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    lines = raw.until_tagged(b"a")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    raw.command("SELECT INBOX")
    assert raw.command("FETCH 1 RFC822.SIZE")[0] == b"* 1 FETCH (RFC822.SIZE %d)" % MESSAGE_LIMIT
    word = b"y" * COMMAND_LIMIT
    raw.send(b"b SEARCH TEXT {%d+}\r\n" % len(word) + word + b"\r\n")
    assert raw.until_tagged(b"b") == [b"* SEARCH", b"b OK SEARCH completed"]
    raw.close()


def test_over_the_limit_the_literal_is_swallowed_and_the_session_goes_on(
    imap: ImapServer,
) -> None:
    raw = _logged_in(imap)
    message = _message(MESSAGE_LIMIT + 1)
    # The literal's octets would be commands if the server did not skip them.
    message = message[:-20] + b"\r\nc LOGOUT\r\n" + b"z" * 8
    raw.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\nb NOOP\r\n")
    assert raw.until_tagged(b"a") == [b"a NO [TOOBIG] Literal too large"]
    assert raw.until_tagged(b"b") == [b"b OK NOOP completed"]
    word = b"y" * (COMMAND_LIMIT + 1)
    raw.send(b"d SEARCH TEXT {%d+}\r\n" % len(word) + word + b"\r\ne NOOP\r\n")
    assert raw.until_tagged(b"d") == [b"d BAD [TOOBIG] Literal too large"]
    assert raw.until_tagged(b"e") == [b"e OK NOOP completed"]
    # Literals each under the limit but adding up to more than 8 times it.
    part = b"w" * (COMMAND_LIMIT - 100)
    criteria = b"".join(b" OR TEXT {%d+}\r\n" % len(part) + part for _ in range(9))
    raw.send(b"f SEARCH" + criteria + b" ALL\r\ng NOOP\r\n")
    assert raw.until_tagged(b"f") == [b"f BAD [TOOBIG] Literal too large"]
    assert raw.until_tagged(b"g") == [b"g OK NOOP completed"]
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)"
    raw.close()


@pytest.mark.parametrize(
    ("command", "size", "answer"),
    [
        (b"APPEND INBOX", 2 * MESSAGE_LIMIT + 1, b"a NO [TOOBIG] Literal too large"),
        (b"SEARCH TEXT", 2 * COMMAND_LIMIT + 1, b"a BAD [TOOBIG] Literal too large"),
        (b"APPEND INBOX", 10**15, b"a NO [TOOBIG] Literal too large"),
    ],
)
def test_far_over_the_limit_the_server_answers_then_closes(
    imap: ImapServer, command: bytes, size: int, answer: bytes
) -> None:
    raw = _logged_in(imap)
    raw.send(b"a " + command + b" {%d+}\r\n" % size + b"x" * 1000)
    assert raw.line() == answer
    assert raw.line() == b"* BYE Literal too large; closing the connection"
    assert _closed(raw)
    # The listener is fine: the next client is served.
    other = _logged_in(imap)
    other.command("NOOP")
    other.close()


def test_synchronizing_literal_over_the_limit_is_never_asked_for(imap: ImapServer) -> None:
    raw = _logged_in(imap)
    raw.send(b"a APPEND INBOX {%d}\r\n" % (MESSAGE_LIMIT + 1))
    assert raw.line() == b"a NO [TOOBIG] Literal too large"
    raw.command("NOOP")
    raw.close()


def test_imap4rev2_client_may_send_non_synchronizing_literals_above_4096(
    imap: ImapServer,
) -> None:
    """RFC 9051 §4.3 limits non-synchronising literals to 4096 octets unless the server
    advertises LITERAL+, which this one does in every state."""
    raw = imap.raw()
    capabilities = raw.command("CAPABILITY")[0].split()
    assert b"LITERAL+" in capabilities and b"IMAP4rev2" in capabilities
    raw.login()
    raw.command("ENABLE IMAP4rev2")
    message = _message(5000)
    raw.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    assert raw.until_tagged(b"a")[-1].startswith(b"a OK [APPENDUID ")
    name = "L" + "i" * 4999
    raw.send(b"b CREATE {%d+}\r\n" % len(name) + name.encode() + b"\r\n")
    lines = raw.until_tagged(b"b")
    assert lines[-1].startswith(b"b "), lines
    assert not lines[-1].startswith(b"b BAD"), lines  # refused or not, it was read whole
    raw.command("NOOP")
    raw.close()
