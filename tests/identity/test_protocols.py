"""The login gate seen by real clients: imaplib (IMAP over TLS, RFC 9051), poplib (POP3
over TLS, RFC 1939/5034) and smtplib (submission over TLS, RFC 4954), with the exact
replies a client sees for each refusal, on both backends.

The clients are synchronous; they run in threads while the node serves on the loop.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

import pytest

from hirondelle import tls
from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store.directory import Account
from tests.identity.conftest import ALICE, PASSWORD, add_second_factor, make_account

PROTOCOLS = ["imap", "pop3", "smtp"]
LISTENER = {"imap": "imaps", "pop3": "pop3s", "smtp": "submissions"}
ATTACKER = "127.0.0.1"
REAL_USER = "127.0.0.2"

RETRY = r"\d+"
FAILED = {
    "imap": "[AUTHENTICATIONFAILED] Invalid credentials",
    "pop3": "-ERR [AUTH] authentication failed",
    "smtp": "535 5.7.8 Authentication credentials invalid",
}
SWITCHED_OFF = {
    "imap": "[CONTACTADMIN] IMAP access is disabled for this account / l'accès IMAP est "
    "désactivé pour ce compte",
    "pop3": "-ERR [AUTH] POP3 is disabled for this account",
    "smtp": "535 5.7.8 SMTP is switched off for this account",
}
RATE_LIMITED = {
    "imap": rf"\[UNAVAILABLE\] Too many failed logins, try again in {RETRY} seconds / trop "
    rf"d'échecs de connexion, réessayez dans {RETRY} secondes",
    "pop3": rf"-ERR \[SYS/TEMP\] too many failed logins, try again in {RETRY} seconds",
    "smtp": rf"454 4\.7\.0 Too many failed logins, try again in {RETRY} seconds",
}
APP_PASSWORD_REQUIRED = {
    "imap": "[AUTHENTICATIONFAILED] This account has a second factor: use an app password / "
    "ce compte a un second facteur : utilisez un mot de passe d'application",
    "pop3": "-ERR [AUTH] this account has a second factor: use an app password / ce compte a "
    "un second facteur : utilisez un mot de passe d'application",
    "smtp": "535 5.7.8 This account has a second factor: use an app password",
}


@dataclass(frozen=True)
class Target:
    port: int
    context: ssl.SSLContext


def _connect(target: Target, source: str) -> socket.socket:
    raw = socket.create_connection(
        ("127.0.0.1", target.port), timeout=10, source_address=(source, 0)
    )
    return target.context.wrap_socket(raw, server_hostname="localhost")


class _IMAP(imaplib.IMAP4_SSL):
    def __init__(self, target: Target, source: str) -> None:
        self._target, self._source = target, source
        super().__init__("localhost", target.port, ssl_context=target.context, timeout=10)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _connect(self._target, self._source)


class _POP3(poplib.POP3_SSL):
    def __init__(self, target: Target, source: str) -> None:
        self._target, self._source = target, source
        super().__init__("localhost", target.port, context=target.context, timeout=10)

    def _create_socket(self, timeout: float) -> socket.socket:
        return _connect(self._target, self._source)


def login_sync(protocol: str, target: Target, user: str, secret: str, source: str) -> str:
    """One login on a fresh connection; "OK" or the refusal exactly as the client got it.
    IMAP sends ID (RFC 2971) first and SMTP says EHLO: the client ids of the audit log."""
    if protocol == "imap":
        with _IMAP(target, source) as imap:
            imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
            imap._simple_command("ID", '("name" "imaplib" "version" "3")')
            try:
                imap.login(user, secret)
            except imaplib.IMAP4.error as error:
                reply = error.args[0]
                return reply.decode() if isinstance(reply, bytes) else str(reply)
            imap.logout()
            return "OK"
    if protocol == "pop3":
        pop = _POP3(target, source)
        try:
            pop.user(user)
            pop.pass_(secret)
        except poplib.error_proto as error:
            return bytes(error.args[0]).decode()
        finally:
            pop.close()
        return "OK"
    with smtplib.SMTP_SSL(
        "localhost", target.port, context=target.context, source_address=(source, 0), timeout=10
    ) as smtp:
        smtp.ehlo("client.example.test")
        smtp.user, smtp.password = user, secret
        try:
            smtp.auth("PLAIN", smtp.auth_plain)
        except smtplib.SMTPAuthenticationError as error:
            return f"{error.smtp_code} {error.smtp_error.decode()}"
        return "OK"


async def login(
    protocol: str,
    target: Target,
    secret: str = PASSWORD,
    *,
    user: str = ALICE,
    source: str = REAL_USER,
    expect: str = "OK",
) -> str:
    """Log in with a real client; assert the exact reply (a regex for rate limits)."""
    reply = await asyncio.to_thread(login_sync, protocol, target, user, secret, source)
    assert reply == expect or re.fullmatch(expect, reply), reply
    return reply


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(node: Node, protocol: str, identity_settings: object) -> Target:
    port = next(x.port for x in node.listeners if x.name == LISTENER[protocol])
    assert node.services is not None
    cafile = node.services.settings.certificate_path()
    return Target(port, tls.client_context(cafile=cafile))


@pytest.fixture
async def alice(node_services: Services) -> Account:
    return await make_account(node_services)


async def test_right_password_logs_in(protocol: str, target: Target, alice: Account) -> None:
    assert await login(protocol, target) == "OK"


async def test_wrong_password_is_refused(protocol: str, target: Target, alice: Account) -> None:
    reply = await login(protocol, target, "wrong password", expect=FAILED[protocol])
    assert reply == FAILED[protocol]


async def test_unknown_account_gets_the_same_reply(
    protocol: str, target: Target, alice: Account
) -> None:
    unknown = await login(protocol, target, user="nobody@example.test", expect=FAILED[protocol])
    wrong = await login(protocol, target, "wrong password", expect=FAILED[protocol])
    assert unknown == wrong, "an unknown address must look like a wrong password"


async def test_disabled_account_gets_the_same_reply(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await node_services.accounts.update_account(ALICE, disabled=True)
    await login(protocol, target, expect=FAILED[protocol])


async def test_protocol_switched_off_is_said_after_the_password(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await node_services.accounts.update_account(ALICE, switches={protocol: False})
    await login(protocol, target, expect=SWITCHED_OFF[protocol])
    await login(protocol, target, "wrong password", expect=FAILED[protocol])


async def test_locked_out_account_is_refused_with_a_temporary_code(
    protocol: str, target: Target, alice: Account
) -> None:
    for _ in range(5):
        await login(protocol, target, "wrong password", source=ATTACKER, expect=FAILED[protocol])
    await login(protocol, target, source=ATTACKER, expect=RATE_LIMITED[protocol])


async def test_app_password_is_accepted_only_for_its_protocols(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    _, mine = await node_services.app_passwords.add(ALICE, "Mine", [protocol])
    others = [p for p in ("imap", "pop3", "smtp", "dav") if p != protocol]
    _, other = await node_services.app_passwords.add(ALICE, "Other", others)
    await login(protocol, target, mine)
    await login(protocol, target, other, expect=FAILED[protocol])


async def test_main_password_refused_when_a_second_factor_is_on(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await add_second_factor(node_services, alice)
    await login(protocol, target, expect=APP_PASSWORD_REQUIRED[protocol])
    _, secret = await node_services.app_passwords.add(ALICE, "Phone", [protocol])
    await login(protocol, target, secret)


async def test_brute_force_is_slowed_and_the_real_user_still_gets_in(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await login(protocol, target, source=REAL_USER)
    replies = [
        await login(protocol, target, f"guess {n}", source=ATTACKER, expect=".*")
        for n in range(200)
    ]
    # Only the first guesses are checked at all; every later one is refused unseen.
    assert replies[:5] == [FAILED[protocol]] * 5
    assert all(re.fullmatch(RATE_LIMITED[protocol], reply) for reply in replies[5:])
    await login(protocol, target, source=REAL_USER)
    await login(protocol, target, source=ATTACKER, expect=RATE_LIMITED[protocol])


async def test_audit_records_remote_address_and_client_id(
    protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await login(protocol, target, source=REAL_USER)
    await login(protocol, target, "wrong password", source=ATTACKER, expect=FAILED[protocol])
    rows = await node_services.authenticator.attempts(address=ALICE)
    client = {"imap": "imaplib 3", "pop3": "", "smtp": "client.example.test"}[protocol]
    assert [(r.protocol, r.remote, r.client_id, r.outcome, r.reason) for r in rows] == [
        (protocol, ATTACKER, client, "failed", "bad-password"),
        (protocol, REAL_USER, client, "success", ""),
    ]


@pytest.mark.parametrize("protocol", ["smtp"])
async def test_smtp_auth_login_with_nul_in_the_user_name_is_a_plain_failure(
    target: Target, alice: Account
) -> None:
    """AUTH LOGIN carries the user name in base64, so it may hold any byte."""

    def attempt() -> str:
        with smtplib.SMTP_SSL("localhost", target.port, context=target.context, timeout=10) as smtp:
            smtp.ehlo("client.example.test")
            smtp.user, smtp.password = "alice\x00@example.test", PASSWORD
            try:
                smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
            except smtplib.SMTPAuthenticationError as error:
                return f"{error.smtp_code} {error.smtp_error.decode()}"
            return "OK"

    assert await asyncio.to_thread(attempt) == FAILED["smtp"]
