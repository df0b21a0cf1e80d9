"""The login gate seen by real clients, with the exact replies a client sees for each
refusal, on both backends:

- imaplib (IMAP over TLS, RFC 9051), poplib (POP3 over TLS, RFC 1939/5034), smtplib
  (submission over TLS, RFC 4954);
- httpx over HTTPS: HTTP Basic (RFC 7617) on a DAV PROPFIND of the principal (RFC 4918,
  RFC 5397), on the JMAP session resource at ``/.well-known/jmap`` (RFC 8620 §2.2) and on
  the JMAP API (§3.1), and the webmail's sign-in (``POST /api/session``).

The matrix is by client: ``jmap`` and ``jmap-api`` are two ways in for the one protocol
"jmap" (whose account switch is the web's, ``PROTOCOL_SWITCH``). An HTTP reply is shown
as its status, the headers a client acts on (WWW-Authenticate, Retry-After,
Content-Type) and its body, one per line.

The sync clients run in threads while the node serves on the loop.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import poplib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hirondelle import tls
from hirondelle.errors import Refused
from hirondelle.identity.app_passwords import CLIENT_PROTOCOLS
from hirondelle.identity.authentication import PROTOCOL_SWITCH
from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store.directory import Account
from tests.identity.conftest import (
    ALICE,
    PASSWORD,
    enrol_totp,
    make_account,
)

CLIENTS = ["imap", "pop3", "smtp", "dav", "jmap", "jmap-api", "web"]
HTTP_CLIENTS = frozenset({"dav", "jmap", "jmap-api", "web"})
# The protocol each client logs in with (audit rows, app passwords, switches).
PROTOCOL = {client: client for client in CLIENTS} | {"jmap-api": "jmap"}
LISTENER = {
    "imap": "imaps",
    "pop3": "pop3s",
    "smtp": "submissions",
    **dict.fromkeys(HTTP_CLIENTS, "https"),
}
# The client id of the audit log: IMAP ID, SMTP EHLO, HTTP User-Agent (POP3 has none).
CLIENT_ID = {
    "imap": "imaplib 3",
    "pop3": "",
    "smtp": "client.example.test",
    "dav": "DAVx5/4.4.3 (test)",
    "jmap": "jmapc-test/1.0",
    "jmap-api": "jmapc-test/1.0",
    "web": "Mozilla/5.0 (test) Firefox/130.0",
}
ATTACKER = "127.0.0.1"
REAL_USER = "127.0.0.2"

RETRY = r"\d+"
PLAIN = "content-type: text/plain; charset=utf-8"
JSON = "content-type: application/json"
BASIC_CHALLENGE = 'www-authenticate: Basic realm="Hirondelle", charset="UTF-8"'
HTTP_FAILED = (
    f"401\n{BASIC_CHALLENGE}\n{PLAIN}\nAuthentification requise. / Authentication required.\n"
)
HTTP_SWITCHED_OFF = (
    f"403\n{PLAIN}\nCe protocole est désactivé pour ce compte. / "
    "This protocol is disabled for this account.\n"
)
# The same number in the header and in the sentence.
HTTP_RATE_LIMITED = (
    rf"429\nretry-after: ({RETRY})\n{re.escape(PLAIN)}\nTrop de tentatives, réessayez dans "
    r"\1 secondes\. / Too many attempts, try again in \1 seconds\.\n"
)
HTTP_APP_PASSWORD_REQUIRED = (
    f"403\n{PLAIN}\nCe compte a un second facteur : utilisez un mot de passe "
    "d'application. / This account has a second factor: use an app password.\n"
)
WEB_FAILED = f'401\n{JSON}\n{{"error":"invalid-credentials"}}'

FAILED = {
    "imap": "[AUTHENTICATIONFAILED] Invalid credentials",
    "pop3": "-ERR [AUTH] authentication failed / echec de l'authentification",
    "smtp": "535 5.7.8 Authentication credentials invalid",
    "dav": HTTP_FAILED,
    "jmap": HTTP_FAILED,
    "jmap-api": HTTP_FAILED,
    "web": WEB_FAILED,
}
SWITCHED_OFF = {
    "imap": "[CONTACTADMIN] IMAP access is disabled for this account / l'accès IMAP est "
    "désactivé pour ce compte",
    "pop3": "-ERR [AUTH] POP3 is disabled for this account / POP3 est desactive pour ce compte",
    "smtp": "535 5.7.8 SMTP is switched off for this account",
    "dav": HTTP_SWITCHED_OFF,
    "jmap": HTTP_SWITCHED_OFF,
    "jmap-api": HTTP_SWITCHED_OFF,
    # The session API's contract: one answer for every wrong sign-in (docs/security.md).
    "web": WEB_FAILED,
}
RATE_LIMITED = {
    "imap": rf"\[UNAVAILABLE\] Too many failed logins, try again in ({RETRY}) seconds / trop "
    r"d'échecs de connexion, réessayez dans \1 secondes",
    "pop3": rf"-ERR \[SYS/TEMP\] too many failed logins, try again in ({RETRY}) seconds / trop "
    r"d'echecs de connexion, reessayez dans \1 secondes",
    "smtp": rf"454 4\.7\.0 Too many failed logins, try again in {RETRY} seconds",
    "dav": HTTP_RATE_LIMITED,
    "jmap": HTTP_RATE_LIMITED,
    "jmap-api": HTTP_RATE_LIMITED,
    # The same number in the header and in the body.
    "web": rf'429\nretry-after: ({RETRY})\n{JSON}\n\{{"error":"rate-limited","retryAfter":\1\}}',
}
APP_PASSWORD_REQUIRED = {
    "imap": "[AUTHENTICATIONFAILED] This account has a second factor: use an app password / "
    "ce compte a un second facteur : utilisez un mot de passe d'application",
    "pop3": "-ERR [AUTH] this account has a second factor: use an app password / ce compte a "
    "un second facteur : utilisez un mot de passe d'application",
    "smtp": "535 5.7.8 This account has a second factor: use an app password",
    "dav": HTTP_APP_PASSWORD_REQUIRED,
    "jmap": HTTP_APP_PASSWORD_REQUIRED,
    "jmap-api": HTTP_APP_PASSWORD_REQUIRED,
    # The web asks for the second factor instead (the pending token is random).
    "web": rf'200\n{JSON}\n\{{"status":"second-factor","methods":\["totp","recovery"\],'
    r'"pending":"[A-Za-z0-9_-]{43}"\}',
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


JMAP_ECHO = {
    "using": ["urn:ietf:params:jmap:core"],
    "methodCalls": [["Core/echo", {"hello": "hirondelle"}, "c0"]],
}


def shown(response: httpx.Response) -> str:
    """An HTTP reply as the matrix compares it: status, the headers a client acts on,
    then the body."""
    headers = [
        f"{name}: {response.headers[name]}"
        for name in ("www-authenticate", "retry-after", "content-type")
        if name in response.headers
    ]
    return "\n".join([str(response.status_code), *headers, response.text])


def succeeded(client: str, response: httpx.Response, user: str) -> bool:
    """Whether the reply is the resource a logged-in client asked for (not any 2xx)."""
    if client == "dav":
        principal = f"/dav/principals/{user}/"
        return response.status_code == 207 and f"<d:href>{principal}</d:href>" in response.text
    if response.status_code != 200 or response.headers["content-type"] != "application/json":
        return False
    body: Any = response.json()
    if client == "jmap":
        return isinstance(body, dict) and body.get("username") == user
    if client == "jmap-api":
        return isinstance(body, dict) and body.get("methodResponses") == JMAP_ECHO["methodCalls"]
    return (
        isinstance(body, dict)
        and body.get("status") == "signed-in"
        and body["account"]["address"] == user
    )


async def login_http(client: str, target: Target, user: str, secret: str, source: str) -> str:
    """One login by an HTTP client from ``source`` on a fresh TLS connection."""
    transport = httpx.AsyncHTTPTransport(verify=target.context, local_address=source)
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"https://127.0.0.1:{target.port}",
        headers={"User-Agent": CLIENT_ID[client]},
        timeout=10,
    ) as http:
        if client == "dav":
            response = await http.request(
                "PROPFIND",
                f"/dav/principals/{user}/",
                headers={"Depth": "0"},
                auth=(user, secret),
            )
        elif client == "jmap":
            response = await http.get("/.well-known/jmap", auth=(user, secret))
        elif client == "jmap-api":
            response = await http.post("/jmap/api", json=JMAP_ECHO, auth=(user, secret))
        else:
            response = await http.post("/api/session", json={"address": user, "password": secret})
            assert response.headers["cache-control"] == "no-store"
    return "OK" if succeeded(client, response, user) else shown(response)


async def login(
    client: str,
    target: Target,
    secret: str = PASSWORD,
    *,
    user: str = ALICE,
    source: str = REAL_USER,
    expect: str = "OK",
) -> str:
    """Log in with a real client; assert the exact reply (a regex for rate limits)."""
    if client in HTTP_CLIENTS:
        reply = await login_http(client, target, user, secret, source)
    else:
        reply = await asyncio.to_thread(login_sync, client, target, user, secret, source)
    assert reply == expect or re.fullmatch(expect, reply), reply
    return reply


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def protocol(client: str) -> str:
    return PROTOCOL[client]


@pytest.fixture
def target(node: Node, client: str, identity_settings: object) -> Target:
    port = next(x.port for x in node.listeners if x.name == LISTENER[client])
    assert node.services is not None
    cafile = node.services.settings.certificate_path()
    return Target(port, tls.client_context(cafile=cafile))


@pytest.fixture
async def alice(node_services: Services) -> Account:
    return await make_account(node_services)


async def test_right_password_logs_in(client: str, target: Target, alice: Account) -> None:
    assert await login(client, target) == "OK"


async def test_wrong_password_is_refused(client: str, target: Target, alice: Account) -> None:
    reply = await login(client, target, "wrong password", expect=FAILED[client])
    assert reply == FAILED[client]


async def test_unknown_account_gets_the_same_reply(
    client: str, target: Target, alice: Account
) -> None:
    unknown = await login(client, target, user="nobody@example.test", expect=FAILED[client])
    wrong = await login(client, target, "wrong password", expect=FAILED[client])
    assert unknown == wrong, "an unknown address must look like a wrong password"


async def test_disabled_account_gets_the_same_reply(
    client: str, target: Target, alice: Account, node_services: Services
) -> None:
    await node_services.accounts.update_account(ALICE, disabled=True)
    reply = await login(client, target, expect=FAILED[client])
    assert reply == FAILED[client]


async def test_protocol_switched_off_is_said_after_the_password(
    client: str, protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await node_services.accounts.update_account(ALICE, switches={PROTOCOL_SWITCH[protocol]: False})
    await login(client, target, expect=SWITCHED_OFF[client])
    await login(client, target, "wrong password", expect=FAILED[client])


async def test_locked_out_account_is_refused_with_a_temporary_code(
    client: str, target: Target, alice: Account
) -> None:
    for _ in range(5):
        await login(client, target, "wrong password", source=ATTACKER, expect=FAILED[client])
    reply = await login(client, target, source=ATTACKER, expect=RATE_LIMITED[client])
    assert re.fullmatch(RATE_LIMITED[client], reply)


async def test_app_password_is_accepted_only_for_its_protocols(
    client: str, protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    others = [p for p in CLIENT_PROTOCOLS if p != protocol]
    if protocol == "web":
        # App passwords are for the clients that cannot ask for a second factor; one
        # that opened the webmail would be a way around the second factor.
        with pytest.raises(Refused, match="unknown protocol web"):
            await node_services.app_passwords.add(ALICE, "Mine", [protocol])
    else:
        _, mine = await node_services.app_passwords.add(ALICE, "Mine", [protocol])
        await login(client, target, mine)
    _, other = await node_services.app_passwords.add(ALICE, "Other", others)
    reply = await login(client, target, other, expect=FAILED[client])
    assert reply == FAILED[client]
    (refused, *_) = await node_services.authenticator.attempts(address=ALICE)
    assert (refused.protocol, refused.outcome, refused.reason) == (
        protocol,
        "failed",
        "app-password-protocol",
    )


async def test_main_password_refused_when_a_second_factor_is_on(
    client: str, protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    _secret, codes = await enrol_totp(node_services, alice)
    await login(client, target, expect=APP_PASSWORD_REQUIRED[client])
    if protocol == "web":
        return  # the second step: test_the_web_asks_for_the_second_factor
    _, secret = await node_services.app_passwords.add(ALICE, "Phone", [protocol])
    await login(client, target, secret)
    # A recovery code is no password either.
    await login(client, target, codes[0], expect=FAILED[client])


async def complete_web_sign_in(target: Target, recovery_code: str) -> str:
    """Both steps of the web sign-in from the real user's address, the second with a
    recovery code; "OK" or the second step's reply."""
    reply = await login("web", target, source=REAL_USER, expect=APP_PASSWORD_REQUIRED["web"])
    pending = json.loads(reply.split("\n", 2)[2])["pending"]
    transport = httpx.AsyncHTTPTransport(verify=target.context, local_address=REAL_USER)
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"https://127.0.0.1:{target.port}",
        headers={"User-Agent": CLIENT_ID["web"]},
        timeout=10,
    ) as http:
        response = await http.post(
            "/api/session/second-factor", json={"pending": pending, "recoveryCode": recovery_code}
        )
    return "OK" if succeeded("web", response, ALICE) else shown(response)


@pytest.mark.parametrize("client", ["web"])
async def test_the_web_asks_for_the_second_factor(
    target: Target, alice: Account, node_services: Services
) -> None:
    _secret, codes = await enrol_totp(node_services, alice)
    reply = await login("web", target, expect=APP_PASSWORD_REQUIRED["web"])
    pending = json.loads(reply.split("\n", 2)[2])["pending"]
    transport = httpx.AsyncHTTPTransport(verify=target.context, local_address=REAL_USER)
    async with httpx.AsyncClient(
        transport=transport, base_url=f"https://127.0.0.1:{target.port}", timeout=10
    ) as http:
        wrong = await http.post(
            "/api/session/second-factor", json={"pending": pending, "recoveryCode": "nope"}
        )
        assert shown(wrong) == WEB_FAILED
        right = await http.post(
            "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[0]}
        )
    assert succeeded("web", right, ALICE), shown(right)


@pytest.mark.parametrize("client", ["web"])
async def test_guessed_second_factors_are_slowed_and_each_is_audited(
    target: Target, alice: Account, node_services: Services
) -> None:
    """Regression: a second step turned away by the rate limits wrote no audit row, so
    the log showed 5 guesses where there had been 20."""
    _secret, codes = await enrol_totp(node_services, alice)
    assert await complete_web_sign_in(target, codes[0]) == "OK"
    transport = httpx.AsyncHTTPTransport(verify=target.context, local_address=ATTACKER)
    replies = []
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"https://127.0.0.1:{target.port}",
        headers={"User-Agent": CLIENT_ID["web"]},
        timeout=10,
    ) as http:
        # A pending sign-in takes at most 5 wrong factors: sign in again after those.
        for _ in range(4):
            reply = await login("web", target, source=ATTACKER, expect=APP_PASSWORD_REQUIRED["web"])
            pending = json.loads(reply.split("\n", 2)[2])["pending"]
            for n in range(5):
                response = await http.post(
                    "/api/session/second-factor", json={"pending": pending, "totp": f"{n:06d}"}
                )
                replies.append(shown(response))
    assert replies[:5] == [WEB_FAILED] * 5
    assert all(re.fullmatch(RATE_LIMITED["web"], reply) for reply in replies[5:]), replies
    rows = await node_services.authenticator.attempts(address=ALICE)
    steps = [
        (r.protocol, r.remote, r.client_id, r.outcome, r.reason)
        for r in reversed(rows)
        if r.reason.startswith("second-factor ") and r.remote == ATTACKER
    ]
    assert (
        steps
        == [("web", ATTACKER, CLIENT_ID["web"], "failed", "second-factor totp")] * 5
        + [("web", ATTACKER, CLIENT_ID["web"], "rate-limited", "second-factor totp")] * 15
    )
    # The real user still gets in from where she completed a second factor before.
    assert await complete_web_sign_in(target, codes[1]) == "OK"


async def test_brute_force_is_slowed_and_the_real_user_still_gets_in(
    client: str, target: Target, alice: Account, node_services: Services
) -> None:
    await login(client, target, source=REAL_USER)
    replies = [
        await login(client, target, f"guess {n}", source=ATTACKER, expect="(?s:.*)")
        for n in range(200)
    ]
    # Only the first guesses are checked at all; every later one is refused unseen.
    assert replies[:5] == [FAILED[client]] * 5
    assert all(re.fullmatch(RATE_LIMITED[client], reply) for reply in replies[5:])
    await login(client, target, source=REAL_USER)
    await login(client, target, source=ATTACKER, expect=RATE_LIMITED[client])


async def test_audit_records_remote_address_and_client_id(
    client: str, protocol: str, target: Target, alice: Account, node_services: Services
) -> None:
    await login(client, target, source=REAL_USER)
    await login(client, target, "wrong password", source=ATTACKER, expect=FAILED[client])
    rows = await node_services.authenticator.attempts(address=ALICE)
    assert [(r.protocol, r.remote, r.client_id, r.outcome, r.reason) for r in rows] == [
        (protocol, ATTACKER, CLIENT_ID[client], "failed", "bad-password"),
        (protocol, REAL_USER, CLIENT_ID[client], "success", ""),
    ]


@pytest.mark.parametrize("client", ["smtp"])
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
