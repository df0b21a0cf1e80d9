"""One POP3 session: the AUTHORIZATION / TRANSACTION / UPDATE state machine.

RFCs: 1939 (§3 states and autologout, §4 AUTHORIZATION, §5 TRANSACTION, §6 UPDATE,
§7 optional commands TOP, UIDL, USER/PASS), 2449 (§5 CAPA, §6 capabilities, §8 response
codes IN-USE and AUTH), 3206 (SYS/TEMP, SYS/PERM), 2595 §4 (STLS; no USER, PASS or
AUTH before TLS on the plain port, in the spirit of its §2.1), 5034 (AUTH PLAIN with and
without an initial response).

Commands are dispatched through :data:`HANDLERS`, a table keyed by (state, command type)
that the :func:`command` decorator fills; a command that is valid but not in the current
state gets a precise -ERR. The session talks to the network only through a
:class:`Transport`, so the server decides about sockets and TLS.

Deliberate choices:

- The maildrop is the Inbox. Its snapshot is taken at login (RFC 1939 §4); messages that
  arrive later are seen at the next session. A message another session expunged meanwhile
  is answered with -ERR on RETR and TOP.
- DELE only marks; the messages are removed at QUIT (RFC 1939 §6), through the same
  store path as IMAP EXPUNGE. A connection that ends otherwise removes nothing.
- The lock that keeps a second session out is in-process (see
  :class:`hirondelle.pop3.maildrop.MaildropLocks`).
- Text is English: it is protocol text that clients show as is, and RFC 1939 responses
  are ASCII.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Protocol, TypeVar, cast

from hirondelle.errors import Reason, Refused
from hirondelle.identity.authentication import Outcome
from hirondelle.pop3 import proto
from hirondelle.pop3.maildrop import Maildrop, NodeMaildrops, NoSuchMessage
from hirondelle.services import Services
from hirondelle.store import maildrop as store_maildrop
from hirondelle.store.blobs import BlobNotFound

log = logging.getLogger(__name__)

# RFC 1939 §3: the autologout timer is at least 10 minutes.
IDLE_TIMEOUT_SECONDS = 600.0
# Bad commands (syntax, unknown, wrong state) a session may send before it is closed.
MAX_ERRORS = 10
# Failed logins in one session before it is closed.
MAX_FAILED_LOGINS = 3

IMPLEMENTATION = "Hirondelle"


class State(Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


class LineTooLong(Exception):
    """The transport discarded a line longer than the limit asked for."""


class Transport(Protocol):
    """What a session needs from its connection."""

    peer: str
    tls_active: bool
    tls_available: bool

    async def read_line(self, limit: int) -> bytes | None:
        """The next line without its CRLF (or LF); None at end of input. Raises
        :class:`LineTooLong` (the line is skipped) beyond ``limit`` octets."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def start_tls(self) -> None:
        """RFC 2595 §4: negotiate TLS; input received before it is discarded (a client
        must not pipeline after STLS, and such input could be injected in clear)."""


# Domain refusals as POP3 response codes (RFC 2449 §8, RFC 3206), mapped here only.
REFUSAL_CODES: dict[Reason, str | None] = {
    Reason.NOT_FOUND: None,
    Reason.ALREADY_EXISTS: None,
    Reason.INVALID: None,
    Reason.HAS_CHILDREN: None,
    Reason.IN_USE: "IN-USE",
    Reason.STATE_CHANGED: "SYS/TEMP",
    Reason.OVER_QUOTA: "SYS/PERM",
    Reason.TOO_LARGE: "SYS/PERM",
    Reason.FORBIDDEN: "SYS/PERM",
    Reason.CANNOT: "SYS/PERM",
}


def refusal(refused: Refused) -> bytes:
    return proto.err(refused.message, code=REFUSAL_CODES.get(refused.reason))


def both(english: str, french: str) -> str:
    """A reply text a person may read (a login refusal shown by the mail client), in
    English and French like IMAP's. French without accents: POP3 replies stay US-ASCII
    (RFC 1939 §3; UTF-8 only after RFC 6856's UTF8 command, not offered). The response
    code in brackets stays first (RFC 2449 §8, RFC 3206)."""
    return f"{english} / {french}"


AUTHENTICATION_FAILED = both("authentication failed", "echec de l'authentification")
AUTOLOGOUT = both(
    "autologout: idle for too long", "deconnexion automatique : inactif trop longtemps"
)


class CloseSession(Exception):
    """End the session after what was written."""


C = TypeVar("C", bound=proto.Command)
Handler = Callable[["Session", proto.Command], Awaitable[None]]

HANDLERS: dict[tuple[State, type[object]], Handler] = {}


def command(
    kind: type[C], *states: State
) -> Callable[[Callable[[Session, C], Awaitable[None]]], Callable[[Session, C], Awaitable[None]]]:
    """Register a handler for ``kind`` in each of ``states``."""

    def register(
        handler: Callable[[Session, C], Awaitable[None]],
    ) -> Callable[[Session, C], Awaitable[None]]:
        for state in states:
            HANDLERS[(state, kind)] = cast(Handler, handler)
        return handler

    return register


AUTHORIZATION, TRANSACTION = State.AUTHORIZATION, State.TRANSACTION


class Session:
    def __init__(
        self,
        transport: Transport,
        services: Services,
        *,
        shared: NodeMaildrops,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self.transport = transport
        self.services = services
        self.shared = shared
        self.idle_timeout = idle_timeout
        self.state = State.AUTHORIZATION
        self.user: str | None = None  # the name given by USER, waiting for PASS
        self.maildrop: Maildrop | None = None
        self.errors = 0
        self.failed_logins = 0

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        hostname = self.services.settings.server.hostname
        try:
            self.transport.write(proto.ok(f"{hostname} {IMPLEMENTATION} POP3 server ready"))
            await self.drain()
            while await self._one_command():
                pass
        except CloseSession:
            pass
        finally:
            if self.maildrop is not None:
                self.shared.locks.release(self.maildrop.account_id)
                self.maildrop = None
        with contextlib.suppress(ConnectionError, CloseSession):
            await self.drain()

    async def _one_command(self) -> bool:
        """Read, parse and answer one command; False when the session is over."""
        try:
            async with asyncio.timeout(self.idle_timeout):
                line = await self.transport.read_line(proto.MAX_SASL_LINE)
        except TimeoutError:
            # RFC 1939 §3: autologout, without entering the UPDATE state.
            self.transport.write(proto.err(AUTOLOGOUT))
            return False
        except LineTooLong:
            await self._error(f"line too long ({proto.MAX_COMMAND_LINE} octets at most)")
            return True
        if line is None:
            return False
        try:
            parsed = proto.parse_command(line)
        except proto.CommandError as error:
            await self._error(error.message)
            return True
        handler = HANDLERS.get((self.state, type(parsed)))
        if handler is None:
            if self.state is State.AUTHORIZATION:
                await self._error("log in first (USER and PASS, or AUTH)")
            else:
                await self._error("command not valid after login")
            return True
        if not isinstance(parsed, proto.User | proto.Pass):
            self.user = None  # RFC 1939 §7: PASS must come right after USER
        try:
            await handler(self, parsed)
        except (CloseSession, ConnectionError, asyncio.CancelledError):
            raise
        except Refused as refused:
            self.transport.write(refusal(refused))
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception(
                "pop3 internal error %s (peer %s, state %s, command %s)",
                reference,
                self.transport.peer,
                self.state.value,
                type(parsed).__name__,
            )
            self.transport.write(
                proto.err(
                    both(
                        f"internal error, reference {reference}",
                        f"erreur interne, reference {reference}",
                    ),
                    code="SYS/TEMP",
                )
            )
        await self.drain()
        return self.state is not State.UPDATE

    async def _error(self, text: str) -> None:
        """A bad command: -ERR and go on, until too many."""
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.transport.write(proto.err(f"{text}; too many errors, closing"))
            raise CloseSession
        self.transport.write(proto.err(text))
        await self.drain()

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken what was written; a client that stops
        reading (in the middle of a RETR, say) is dropped after the idle timeout."""
        try:
            async with asyncio.timeout(self.idle_timeout):
                await self.transport.drain()
        except TimeoutError:
            log.info("pop3: %s stopped reading; closing", self.transport.peer)
            raise CloseSession from None

    # -- authorization ---------------------------------------------------------------

    def login_refusal(self) -> bytes | None:
        """No credentials in clear: before STLS, USER/PASS/AUTH are refused."""
        if self.transport.tls_active:
            return None
        if self.transport.tls_available:
            return proto.err(
                both(
                    "log in only after STLS (TLS is required)",
                    "connexion seulement apres STLS (TLS est obligatoire)",
                ),
                code="SYS/PERM",
            )
        # No certificate could be loaded: the node runs no pop3s listener either.
        return proto.err(
            both(
                "log in only over TLS, which is not configured on this server",
                "connexion seulement par TLS, qui n'est pas configure sur ce serveur",
            ),
            code="SYS/PERM",
        )

    def capabilities(self) -> list[str]:
        """RFC 2449 §6 (SASL and USER only where a login would be accepted)."""
        lines = [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            # Messages stay until the user deletes them.
            "EXPIRE NEVER",
        ]
        if self.state is State.AUTHORIZATION:
            if self.transport.tls_active:
                lines += ["USER", "SASL PLAIN"]
            elif self.transport.tls_available:
                lines.append("STLS")
        lines.append(f"IMPLEMENTATION {IMPLEMENTATION}")
        return lines

    async def login(self, address: str, secret: str) -> None:
        result = await self.services.authenticator.authenticate(
            address, secret, protocol="pop3", remote=self.transport.peer
        )
        if result.outcome is Outcome.RATE_LIMITED:
            # RFC 3206 §4: SYS/TEMP, a passing condition; the client may retry later.
            self.write(
                proto.err(
                    both(
                        f"too many failed logins, try again in {result.retry_after} seconds",
                        f"trop d'echecs de connexion, reessayez dans {result.retry_after} secondes",
                    ),
                    code="SYS/TEMP",
                )
            )
            return
        if result.outcome is Outcome.UNAVAILABLE:
            # RFC 3206 §4: SYS/TEMP; the account directory does not answer (ASCII, as
            # every POP3 reply here).
            self.write(
                proto.err(
                    "the account directory does not answer; try again later / "
                    "l'annuaire des comptes ne repond pas ; reessayez plus tard",
                    code="SYS/TEMP",
                )
            )
            return
        if result.outcome is Outcome.APP_PASSWORD_REQUIRED:
            self.write(
                proto.err(
                    "this account has a second factor: use an app password / ce compte a "
                    "un second facteur : utilisez un mot de passe d'application",
                    code="AUTH",
                )
            )
            return
        if result.outcome is Outcome.PROTOCOL_DISABLED:
            self.write(
                proto.err(
                    both("POP3 is disabled for this account", "POP3 est desactive pour ce compte"),
                    code="AUTH",
                )
            )
            return
        if not result.ok or result.account is None:
            self.failed_logins += 1
            if self.failed_logins >= MAX_FAILED_LOGINS:
                self.write(
                    proto.err(
                        both(
                            "authentication failed; closing",
                            "echec de l'authentification ; fermeture",
                        ),
                        code="AUTH",
                    )
                )
                raise CloseSession
            self.write(proto.err(AUTHENTICATION_FAILED, code="AUTH"))
            return
        account_id = result.account.id
        # RFC 1939 §4 / RFC 2449 §8.1.2: one session per maildrop.
        if not self.shared.locks.acquire(account_id):
            self.write(
                proto.err(
                    both(
                        "maildrop already in use by another session",
                        "boite aux lettres deja utilisee par une autre session",
                    ),
                    code="IN-USE",
                )
            )
            return
        try:
            snapshot = await self.services.database.read(
                lambda conn: store_maildrop.snapshot(conn, account_id)
            )
        except BaseException:
            self.shared.locks.release(account_id)
            raise
        if snapshot is None:
            self.shared.locks.release(account_id)
            self.write(
                proto.err(
                    both("this account has no inbox", "ce compte n'a pas de boite de reception"),
                    code="SYS/PERM",
                )
            )
            return
        self.maildrop = Maildrop(account_id, snapshot, self.services.blobs, self.shared.sizes)
        self.state = State.TRANSACTION
        count = len(snapshot.messages)
        self.write(proto.ok(f"logged in, {count} message{'s' if count != 1 else ''}"))

    def current(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop


# -- both states ----------------------------------------------------------------------


@command(proto.Capa, AUTHORIZATION, TRANSACTION)
async def capa(session: Session, _command: proto.Capa) -> None:
    """RFC 2449 §5 CAPA."""
    session.write(proto.multiline(proto.ok("capability list follows"), session.capabilities()))


@command(proto.Quit, AUTHORIZATION, TRANSACTION)
async def quit_(session: Session, _command: proto.Quit) -> None:
    """RFC 1939 §4 QUIT (nothing to do) and §6 QUIT (the UPDATE state)."""
    if session.state is State.AUTHORIZATION:
        session.write(proto.ok("bye"))
        raise CloseSession
    maildrop = session.current()
    session.state = State.UPDATE
    uids = [maildrop.messages[n - 1].uid for n in sorted(maildrop.deleted)]
    if not uids:
        session.write(proto.ok("bye"))
        raise CloseSession
    try:
        removed = await session.services.database.write(
            lambda ctx: store_maildrop.remove(
                ctx, account_id=maildrop.account_id, mailbox_id=maildrop.mailbox_id, uids=uids
            )
        )
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("pop3 update failed %s (account %s)", reference, maildrop.account_id)
        session.write(
            proto.err(
                both(
                    f"some deleted messages not removed, reference {reference}",
                    f"des messages effaces n'ont pas ete supprimes, reference {reference}",
                ),
                code="SYS/TEMP",
            )
        )
        raise CloseSession from None
    # Messages another session expunged meanwhile are gone too, but not counted here.
    session.write(proto.ok(f"bye, {_plural(removed, 'message')} deleted"))
    raise CloseSession


@command(proto.Noop, TRANSACTION)
async def noop(session: Session, _command: proto.Noop) -> None:
    """RFC 1939 §5 NOOP."""
    session.write(proto.ok())


# -- authorization state ----------------------------------------------------------------


@command(proto.Stls, AUTHORIZATION)
async def stls(session: Session, _command: proto.Stls) -> None:
    """RFC 2595 §4 STLS."""
    if session.transport.tls_active:
        session.write(proto.err("TLS is already active"))
        return
    if not session.transport.tls_available:
        session.write(proto.err("STLS is not available on this server", code="SYS/PERM"))
        return
    session.write(proto.ok("begin TLS negotiation"))
    try:
        await session.transport.start_tls()
    except (OSError, TimeoutError) as error:
        log.info("pop3 STLS handshake with %s failed: %s", session.transport.peer, error)
        raise CloseSession from None


@command(proto.User, AUTHORIZATION)
async def user(session: Session, command_: proto.User) -> None:
    """RFC 1939 §7 USER. Always +OK: whether the name exists is not revealed."""
    refusal = session.login_refusal()
    if refusal is not None:
        session.write(refusal)
        return
    session.user = command_.name
    session.write(proto.ok("send PASS"))


@command(proto.Pass, AUTHORIZATION)
async def pass_(session: Session, command_: proto.Pass) -> None:
    """RFC 1939 §7 PASS, right after USER."""
    refusal = session.login_refusal()
    if refusal is not None:
        session.write(refusal)
        return
    name, session.user = session.user, None
    if name is None:
        session.write(proto.err("send USER first"))
        return
    await session.login(name, command_.secret)


@command(proto.Apop, AUTHORIZATION)
async def apop(session: Session, _command: proto.Apop) -> None:
    """RFC 1939 §7 APOP needs the password in clear on the server: not offered."""
    session.write(proto.err("APOP is not supported: use USER and PASS, or AUTH PLAIN"))


@command(proto.Auth, AUTHORIZATION)
async def auth(session: Session, command_: proto.Auth) -> None:
    """RFC 5034 §4 AUTH with the PLAIN mechanism (RFC 4616)."""
    refusal = session.login_refusal()
    if refusal is not None:
        session.write(refusal)
        return
    if command_.mechanism is None:
        session.write(proto.multiline(proto.ok("mechanisms follow"), ["PLAIN"]))
        return
    if command_.mechanism != "PLAIN":
        session.write(proto.err("unsupported mechanism: use PLAIN"))
        return
    response = command_.initial_response
    if response is None:
        session.write(proto.continuation())
        await session.drain()
        try:
            async with asyncio.timeout(session.idle_timeout):
                line = await session.transport.read_line(proto.MAX_SASL_LINE)
        except TimeoutError:
            session.write(proto.err(AUTOLOGOUT))
            raise CloseSession from None
        except LineTooLong:
            session.write(proto.err("authentication response too long"))
            return
        if line is None:
            raise CloseSession
        if line == b"*":
            session.write(proto.err("authentication cancelled"))
            return
        response = line.decode("ascii", errors="replace")
    try:
        credentials = proto.decode_plain(proto.decode_sasl_response(response))
    except proto.CommandError as error:
        session.write(proto.err(error.message))
        return
    if credentials.authzid and credentials.authzid != credentials.authcid:
        # Acting as another user is not supported: the same answer as a wrong password.
        session.write(proto.err(AUTHENTICATION_FAILED, code="AUTH"))
        return
    await session.login(credentials.authcid, credentials.password)


# -- transaction state --------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@command(proto.Stat, TRANSACTION)
async def stat(session: Session, _command: proto.Stat) -> None:
    """RFC 1939 §5 STAT: messages not marked as deleted, and their size."""
    maildrop = session.current()
    sizes = await maildrop.sizes(maildrop.live_numbers())
    session.write(proto.ok(f"{len(sizes)} {sum(sizes.values())}"))


@command(proto.List, TRANSACTION)
async def list_(session: Session, command_: proto.List) -> None:
    """RFC 1939 §5 LIST [msg]."""
    maildrop = session.current()
    if command_.number is not None:
        try:
            message = maildrop.message(command_.number)
        except NoSuchMessage as error:
            session.write(proto.err(error.message))
            return
        session.write(proto.ok(f"{command_.number} {await maildrop.size(message)}"))
        return
    sizes = await maildrop.sizes(maildrop.live_numbers())
    session.write(
        proto.multiline(
            proto.ok(_plural(len(sizes), "message")),
            [f"{number} {size}" for number, size in sizes.items()],
        )
    )


@command(proto.Uidl, TRANSACTION)
async def uidl(session: Session, command_: proto.Uidl) -> None:
    """RFC 1939 §7 UIDL [msg] (unique-ids: see maildrop.unique_id)."""
    maildrop = session.current()
    if command_.number is not None:
        try:
            unique_id = maildrop.unique_id(command_.number)
        except NoSuchMessage as error:
            session.write(proto.err(error.message))
            return
        session.write(proto.ok(f"{command_.number} {unique_id}"))
        return
    session.write(
        proto.multiline(
            proto.ok("unique-id listing follows"),
            [f"{n} {maildrop.unique_id(n)}" for n in maildrop.live_numbers()],
        )
    )


@command(proto.Dele, TRANSACTION)
async def dele(session: Session, command_: proto.Dele) -> None:
    """RFC 1939 §5 DELE: marked now, removed at QUIT."""
    maildrop = session.current()
    try:
        maildrop.message(command_.number)
    except NoSuchMessage as error:
        session.write(proto.err(error.message))
        return
    maildrop.deleted.add(command_.number)
    session.write(proto.ok(f"message {command_.number} deleted"))


@command(proto.Rset, TRANSACTION)
async def rset(session: Session, _command: proto.Rset) -> None:
    """RFC 1939 §5 RSET: unmark every message."""
    maildrop = session.current()
    maildrop.deleted.clear()
    session.write(proto.ok(f"maildrop has {_plural(len(maildrop.messages), 'message')}"))


@command(proto.Retr, TRANSACTION)
async def retr(session: Session, command_: proto.Retr) -> None:
    """RFC 1939 §5 RETR: the whole message, streamed from its blob."""
    await _send_message(session, command_.number, body_lines=None)


@command(proto.Top, TRANSACTION)
async def top(session: Session, command_: proto.Top) -> None:
    """RFC 1939 §7 TOP: the header, the blank line and the first n body lines."""
    await _send_message(session, command_.number, body_lines=command_.lines)


async def _send_message(session: Session, number: int, *, body_lines: int | None) -> None:
    """Stream a message in chunks, never whole in memory. The status line is sent only
    once the first chunk is read, so a message gone meanwhile gets a clean -ERR."""
    maildrop = session.current()
    try:
        message = maildrop.message(number)
    except NoSuchMessage as error:
        session.write(proto.err(error.message))
        return
    gone = proto.err(
        both(
            "message was removed by another session",
            "le message a ete supprime par une autre session",
        )
    )
    present = await session.services.database.read(
        lambda conn: store_maildrop.contains(conn, maildrop.mailbox_id, message.uid)
    )
    if not present:
        session.write(gone)
        return
    size = await maildrop.size(message) if body_lines is None else None
    encoder = proto.MessageEncoder(body_lines=body_lines)
    # Leaving the loop early (TOP) leaves the generator to asyncio's finaliser; it holds
    # no file open between chunks.
    chunks = session.services.blobs.stream(message.blob_hash)
    try:
        first = await anext(chunks, b"")
    except BlobNotFound:
        session.write(gone)
        return
    session.write(proto.ok(f"{size} octets" if size is not None else "top of message follows"))
    session.write(encoder.feed(first))
    try:
        async for chunk in chunks:
            if encoder.done:
                break
            session.write(encoder.feed(chunk))
            await session.drain()
    except BlobNotFound:
        # Half a message is out: there is no way to say -ERR now.
        log.warning("pop3: blob %s vanished while being sent", message.blob_hash)
        raise CloseSession from None
    session.write(encoder.finish())
