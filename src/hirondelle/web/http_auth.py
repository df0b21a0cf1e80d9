"""HTTP Basic authentication (RFC 7617) for the APIs that clients call with credentials on
every request: WebDAV/CalDAV/CardDAV (protocol ``"dav"``) and JMAP (``"jmap"``).

Every check goes through :meth:`hirondelle.identity.authentication.Authenticator.authenticate`
(rate limits, app passwords, second-factor rule, the account's protocol switch, audit),
whose verification cache makes the per-request check cheap.

Answers:

- no or malformed credentials, or wrong ones: ``401`` with
  ``WWW-Authenticate: Basic realm="Hirondelle", charset="UTF-8"`` (RFC 7617 §2, §2.1);
  a wrong password, an unknown address and a disabled account look the same;
- rate limited: ``429`` with ``Retry-After`` (RFC 6585 §4), the same number of seconds
  in the sentence;
- right password but protocol switched off, or an app password needed: ``403`` with a
  sentence in French and English (said only to someone who proved the password);
- over plain HTTP: ``403`` before the credentials are even looked at, unless the
  connection is local (see :func:`is_secure`).

Plain HTTP rule: a password must never cross a network in clear (RFC 7617 §4). A
request is accepted when it came over TLS, or when both ends of its TCP connection are
on this machine (the server's socket address is a loopback address: a TLS-terminating
proxy on the same host, or a local test). A listener on a private address behind a
proxy on another machine must use ``https``; a configuration switch can be added for
that case, it is not needed by the embedded default.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

from hirondelle.identity.authentication import Authenticator, Outcome
from hirondelle.store.directory import Account

REALM = "Hirondelle"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
# Credentials longer than this are refused without any work (an address is at most 320
# characters; passwords and app passwords are far shorter).
MAX_CREDENTIALS = 4096

_MESSAGES = {
    401: "Authentification requise. / Authentication required.\n",
    "plain": ("Connexion non chiffrée : utilisez https. / Unencrypted connection: use https.\n"),
    Outcome.PROTOCOL_DISABLED: (
        "Ce protocole est désactivé pour ce compte. / This protocol is disabled for this account.\n"
    ),
    Outcome.APP_PASSWORD_REQUIRED: (
        "Ce compte a un second facteur : utilisez un mot de passe d'application. / "
        "This account has a second factor: use an app password.\n"
    ),
    # The delay is in Retry-After; the sentence repeats it for a person reading it.
    429: (
        "Trop de tentatives, réessayez dans {seconds} secondes. / "
        "Too many attempts, try again in {seconds} seconds.\n"
    ),
    503: (
        "L'annuaire des comptes ne répond pas, réessayez plus tard. / "
        "The account directory does not answer, try again later.\n"
    ),
}


def is_secure(connection: HTTPConnection) -> bool:
    """True when credentials may be read from this request: TLS, or a loopback socket."""
    if connection.url.scheme in ("https", "wss"):
        return True
    server = connection.scope.get("server")
    if not server:
        return False
    try:
        return ipaddress.ip_address(str(server[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def parse_basic(header: str) -> tuple[str, str] | None:
    """RFC 7617 §2: ``Basic base64(user-id ":" password)``, UTF-8 (§2.1); None if malformed."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value or len(value) > MAX_CREDENTIALS:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        return None
    return user, password


def challenge() -> Response:
    """401 with the Basic challenge."""
    return PlainTextResponse(
        _MESSAGES[401], status_code=401, headers={"WWW-Authenticate": CHALLENGE}
    )


async def authenticate(
    connection: HTTPConnection, authenticator: Authenticator, *, protocol: str
) -> Account | Response:
    """The account the request's credentials prove, or the response to send instead."""
    if not is_secure(connection):
        return PlainTextResponse(_MESSAGES["plain"], status_code=403)
    header = connection.headers.get("authorization")
    if header is None:
        return challenge()
    credentials = parse_basic(header)
    if credentials is None:
        return challenge()
    address, password = credentials
    remote = connection.client.host if connection.client else ""
    result = await authenticator.authenticate(
        address,
        password,
        protocol=protocol,
        remote=remote,
        client_id=connection.headers.get("user-agent", "")[:200],
    )
    if result.ok:
        assert result.account is not None
        return result.account
    if result.outcome is Outcome.RATE_LIMITED:
        return PlainTextResponse(
            _MESSAGES[429].format(seconds=result.retry_after),
            status_code=429,
            headers={"Retry-After": str(result.retry_after)},
        )
    if result.outcome is Outcome.UNAVAILABLE:
        # RFC 9110 §15.6.4: 503 with Retry-After, a passing condition.
        return PlainTextResponse(
            _MESSAGES[503], status_code=503, headers={"Retry-After": str(result.retry_after)}
        )
    if result.outcome in (Outcome.PROTOCOL_DISABLED, Outcome.APP_PASSWORD_REQUIRED):
        return PlainTextResponse(_MESSAGES[result.outcome], status_code=403)
    return challenge()
