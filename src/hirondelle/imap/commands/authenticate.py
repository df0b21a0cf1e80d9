"""Getting authenticated.

RFC 9051 §6.2.1 STARTTLS (buffered plaintext after the command is discarded),
§6.2.2 AUTHENTICATE with RFC 4616 PLAIN and the LOGIN mechanism
(draft-murchison-sasl-login), RFC 4959 SASL-IR, §6.2.3 LOGIN. Every attempt goes
through ``identity.authenticate`` (:meth:`Session.login`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hirondelle.identity.authentication import AuthResult, Outcome
from hirondelle.imap.commands import Bad, Done, No, State, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.parser import SaslResponse
from hirondelle.imap.proto.reader import SyntaxFault

if TYPE_CHECKING:
    from hirondelle.imap.session import Session

NOT_AUTHENTICATED = (State.NOT_AUTHENTICATED,)


def check_login(result: AuthResult) -> None:
    """RFC 9051 §7.1 response codes for a refused login (RFC 5530 UNAVAILABLE,
    AUTHENTICATIONFAILED, CONTACTADMIN); returns when the login succeeded."""
    if result.outcome is Outcome.RATE_LIMITED:
        raise No(
            f"Too many failed logins, try again in {result.retry_after} seconds / trop "
            f"d'échecs de connexion, réessayez dans {result.retry_after} secondes",
            "UNAVAILABLE",
        )
    if result.outcome is Outcome.UNAVAILABLE:
        raise No(
            "The account directory does not answer; try again later / l'annuaire des "
            "comptes ne répond pas ; réessayez plus tard",
            "UNAVAILABLE",
        )
    if result.outcome is Outcome.APP_PASSWORD_REQUIRED:
        raise No(
            "This account has a second factor: use an app password / ce compte a un "
            "second facteur : utilisez un mot de passe d'application",
            "AUTHENTICATIONFAILED",
        )
    if result.outcome is Outcome.PROTOCOL_DISABLED:
        raise No(
            "IMAP access is disabled for this account / l'accès IMAP est désactivé pour ce compte",
            "CONTACTADMIN",
        )
    if not result.ok or result.account is None:
        raise No("Invalid credentials", "AUTHENTICATIONFAILED")


@handles(c.StartTLS, NOT_AUTHENTICATED)
async def starttls(session: Session, command: c.StartTLS) -> Done:
    """RFC 9051 §6.2.1."""
    if session.secure:
        raise Bad("TLS is already active")
    if session.tls_context is None:
        raise No("TLS is not available on this server", "CANNOT")
    session.write(session.encoder.ok(command.tag, "Begin TLS negotiation now"))
    await session.connection.drain()
    session.parser.take_buffer()  # plaintext sent before TLS must not be acted on
    await session.connection.start_tls(session.tls_context)
    return Done(silent=True)


@handles(c.Login, NOT_AUTHENTICATED)
async def login(session: Session, command: c.Login) -> Done:
    """RFC 9051 §6.2.3."""
    return await session.login(command.username, command.password)


async def _sasl_step(session: Session, challenge: bytes) -> bytes:
    """Send a challenge, read one client response (RFC 9051 §6.2.2)."""
    session.write(session.encoder.challenge(challenge))
    await session.connection.drain()
    session.parser.expect_sasl_response()
    events = await session.next_events()
    if events is None:
        raise ConnectionError("connection closed during AUTHENTICATE")
    event = events[0]
    if len(events) > 1:  # pragma: no cover - the parser pauses after a SASL line
        session.pending_events.extend(events[1:])
    if not isinstance(event, SaslResponse):
        raise Bad("Invalid SASL response")
    if event.cancelled:
        raise Bad("AUTHENTICATE cancelled")
    try:
        return event.decode()
    except SyntaxFault:
        raise Bad("Invalid base64 in SASL response") from None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("SASL data must be UTF-8") from None


@handles(c.Authenticate, NOT_AUTHENTICATED)
async def authenticate(session: Session, command: c.Authenticate) -> Done:
    """RFC 9051 §6.2.2; RFC 4959 SASL-IR initial responses."""
    mechanism = command.mechanism.upper()
    if mechanism not in ("PLAIN", "LOGIN"):
        raise No(f"Unsupported authentication mechanism {mechanism}", "CANNOT")
    if not session.login_allowed:
        raise No("Use STARTTLS first", "PRIVACYREQUIRED")
    if mechanism == "PLAIN":
        data = command.initial_response
        if data is None:
            data = await _sasl_step(session, b"")
        fields = data.split(b"\x00")
        if len(fields) != 3:
            raise Bad("Invalid PLAIN response (RFC 4616: authzid NUL authcid NUL password)")
        authzid, username, password = (_text(f) for f in fields)
        if authzid and authzid.lower() != username.lower():
            raise No("Logging in as another user is not allowed", "AUTHORIZATIONFAILED")
    else:
        raw_user = command.initial_response
        if raw_user is None:
            raw_user = await _sasl_step(session, b"Username:")
        username = _text(raw_user)
        password = _text(await _sasl_step(session, b"Password:"))
    return await session.login(username, password)
