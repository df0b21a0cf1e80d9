"""Connection, authentication and session-wide commands, with imaplib and raw lines.

Protocol-level tests that never touch stored mail still use the ``imap`` fixture (an
account must exist to log in), so they run on both backends.
"""

from __future__ import annotations

import base64
import imaplib
import socket

import pytest

from tests.imap.conftest import ADDRESS, PASSWORD, ImapServer


def test_greeting_over_implicit_tls_lists_capabilities(imap: ImapServer) -> None:
    raw = imap.raw()
    assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=PLAIN" in raw.greeting
    raw.close()


def test_plain_port_offers_starttls_and_refuses_login_before_it(imap: ImapServer) -> None:
    raw = imap.raw(tls_wrap=False)
    assert b"STARTTLS" in raw.greeting and b"LOGINDISABLED" in raw.greeting
    lines = raw.command(f'LOGIN {ADDRESS} "{PASSWORD}"', expect="NO")
    assert b"[PRIVACYREQUIRED]" in lines[-1]
    raw.command("AUTHENTICATE PLAIN", expect="NO")
    raw.close()


def test_imaplib_starttls_then_login(imap: ImapServer) -> None:
    client = imaplib.IMAP4(imap.host, imap.port, timeout=30)
    assert "LOGINDISABLED" in client.capabilities
    client.starttls(ssl_context=imap.client_context())
    assert "AUTH=PLAIN" in client.capabilities
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    client.logout()


def test_starttls_discards_plaintext_sent_after_it(imap: ImapServer) -> None:
    sock = socket.create_connection((imap.host, imap.port), 30)
    sock.recv(4096)
    sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")  # "b" is injected plaintext
    reply = b""
    while b"\r\n" not in reply:
        reply += sock.recv(4096)
    assert reply.startswith(b"a OK")
    wrapped = imap.client_context().wrap_socket(sock)
    wrapped.sendall(b"c NOOP\r\n")
    data = b""
    while b"c OK" not in data:
        data += wrapped.recv(4096)
    assert b"b " not in data
    wrapped.close()


def test_login_with_wrong_password_is_authenticationfailed(imap: ImapServer) -> None:
    raw = imap.raw()
    lines = raw.command(f'LOGIN {ADDRESS} "wrong"', expect="NO")
    assert b"[AUTHENTICATIONFAILED]" in lines[-1]
    raw.login()  # the session goes on
    raw.close()


def test_login_refused_when_imap_is_switched_off(imap: ImapServer) -> None:
    imap.run(imap.services.accounts.update_account(ADDRESS, switches={"imap": False}))
    raw = imap.raw()
    lines = raw.command(f'LOGIN {ADDRESS} "{PASSWORD}"', expect="NO")
    assert b"[CONTACTADMIN]" in lines[-1]
    raw.close()


def test_authenticate_plain_with_initial_response(imap: ImapServer) -> None:
    raw = imap.raw()
    token = base64.b64encode(f"\0{ADDRESS}\0{PASSWORD}".encode()).decode()
    lines = raw.command(f"AUTHENTICATE PLAIN {token}")
    assert b"[CAPABILITY" in lines[-1] and b"MOVE" in lines[-1]
    raw.close()


def test_authenticate_plain_with_continuation(imap: ImapServer) -> None:
    client = imap.imaplib(login=False)
    result = client.imap.authenticate(
        "PLAIN", lambda _challenge: f"\0{ADDRESS}\0{PASSWORD}".encode()
    )
    assert result[0] == "OK"
    client.close()


def test_authenticate_login_mechanism(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.send(b"a AUTHENTICATE LOGIN\r\n")
    assert raw.line() == b"+ " + base64.b64encode(b"Username:")
    raw.send(base64.b64encode(ADDRESS.encode()) + b"\r\n")
    assert raw.line() == b"+ " + base64.b64encode(b"Password:")
    raw.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert raw.until_tagged(b"a")[-1].startswith(b"a OK")
    raw.close()


def test_authenticate_cancelled_is_bad_and_session_continues(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.send(b"a AUTHENTICATE PLAIN\r\n")
    assert raw.line().startswith(b"+")
    raw.send(b"*\r\n")
    assert raw.until_tagged(b"a")[-1].startswith(b"a BAD")
    raw.login()
    raw.close()


def test_unknown_mechanism_is_refused(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.command("AUTHENTICATE CRAM-MD5", expect="NO")
    raw.close()


def test_commands_of_another_state_are_bad(imap: ImapServer) -> None:
    raw = imap.raw()
    lines = raw.command("SELECT INBOX", expect="BAD")
    assert b"not allowed now" in lines[-1]
    raw.login()
    raw.command("FETCH 1 FLAGS", expect="BAD")
    raw.command(f'LOGIN {ADDRESS} "{PASSWORD}"', expect="BAD")
    raw.close()


def test_malformed_command_gets_bad_with_text(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    lines = raw.command("SELECT", expect="BAD")
    assert b"SELECT" in lines[-1]
    lines = raw.command("FROBNICATE now", expect="BAD")
    assert b"Unknown command" in lines[-1]
    raw.command("NOOP")
    raw.close()


def test_id_namespace_enable(imap: ImapServer) -> None:
    raw = imap.raw()
    lines = raw.command('ID ("name" "pytest" "version" "1")')
    assert lines[0].startswith(b'* ID ("name" "Hirondelle"')
    raw.login()
    assert raw.command("NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL'
    assert raw.command("ENABLE CONDSTORE X-UNKNOWN")[0] == b"* ENABLED CONDSTORE"
    assert raw.command("ENABLE CONDSTORE")[0] == b"* ENABLED"
    assert raw.command("ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2"
    raw.close()


def test_logout_says_bye_then_ok(imap: ImapServer) -> None:
    raw = imap.raw()
    lines = raw.command("LOGOUT")
    assert lines[0].startswith(b"* BYE")
    raw.close()


def test_capability_after_login_lists_extensions(imap: ImapServer) -> None:
    client = imap.imaplib()
    data = client.ok(client.imap.capability())
    caps = data[0].decode().split()
    for name in (
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "ESEARCH",
        "QUOTA",
        "LIST-STATUS",
        "SPECIAL-USE",
        "COMPRESS=DEFLATE",
        "UTF8=ACCEPT",
        "BINARY",
    ):
        assert name in caps
    assert any(c.startswith("APPENDLIMIT=") for c in caps)
    client.close()


@pytest.mark.parametrize("line", [b"a" * 70000, b"x LOGIN {99999999}"])
def test_oversized_input_is_refused_and_the_session_continues(
    imap: ImapServer, line: bytes
) -> None:
    raw = imap.raw()
    raw.send(line + b"\r\n")
    response = raw.line()
    assert b"BAD" in response or b"NO" in response
    raw.command("NOOP")
    raw.close()
