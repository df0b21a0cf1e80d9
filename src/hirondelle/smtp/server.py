"""The SMTP listeners: inbound MX (RFC 5321), LMTP (RFC 2033) and submission
(RFC 6409, STARTTLS on 587 and implicit TLS on 465 per RFC 8314), on aiosmtpd.

aiosmtpd parses the protocol (commands, DATA with dot-unstuffing, STARTTLS, AUTH
exchanges); this module adds what it lacks and holds the one handler core the three
listeners share:

- every reply gets its enhanced status code (RFC 2034) at one place, :meth:`push`;
- the null reverse-path ``MAIL FROM:<>`` (RFC 5321 §4.5.5), which aiosmtpd refuses, is
  accepted (bounces must reach us);
- AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) are answered asynchronously through the
  one login gate, :meth:`Authenticator.authenticate` with protocol ``smtp`` (argon2 runs
  off the loop), only after TLS (``530 5.7.0`` before), and a connection is closed with
  ``421 4.7.0`` after ``[smtp] max_auth_failures`` failures;
- per-connection state lives on the instance: aiosmtpd's class-level
  ``command_size_limits`` dictionary is replaced by one per connection (STYLE.md).

Not supported, because aiosmtpd does not parse them: CHUNKING/BDAT (RFC 3030), DSN
parameters (RFC 3461 NOTIFY/RET/ENVID), REQUIRETLS. Neither is advertised.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import email.utils
import logging
import re
import secrets
import ssl
import time
import weakref
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from hirondelle.errors import Refused
from hirondelle.identity.authentication import Outcome
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.queue import OutboundQueue
from hirondelle.mail.recipients import Resolution
from hirondelle.mail.submission import Routing, Transport, prepend_headers
from hirondelle.mail.verification import SystemDns, Verifier
from hirondelle.services import Services
from hirondelle.smtp.replies import refusal_reply, with_enhanced_code
from hirondelle.store.directory import Account

if TYPE_CHECKING:
    from hirondelle.node import Listener, ListenerContext

log = logging.getLogger(__name__)

# RFC 5321 §4.5.3.1.4 allows 512 octets per command; SMTPUTF8 and SIZE parameters push
# MAIL over it, so aiosmtpd's per-command allowance is kept.
COMMAND_SIZE_LIMIT = 512
_BARE_LF = re.compile(rb"(?<!\r)\n")


class Mode(StrEnum):
    MX = "mx"
    SUBMISSION = "submission"
    LMTP = "lmtp"


class ConnectionState(Session):
    """aiosmtpd's session with what Hirondelle keeps per connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.account: Account | None = None
        self.auth_failures = 0


class Transaction(Envelope):
    """aiosmtpd's envelope with each accepted recipient's resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.resolutions: list[Resolution] = []


@dataclass(frozen=True)
class ListenerSettings:
    mode: Mode
    hostname: str
    implicit_tls: bool
    max_recipients: int
    max_auth_failures: int


class TransportHandler:
    """The handler core of every SMTP listener (aiosmtpd ``handle_*`` hooks)."""

    def __init__(
        self,
        services: Services,
        transport: Transport,
        listener: ListenerSettings,
        *,
        verifier: Verifier | None,
    ) -> None:
        self.services = services
        self.transport = transport
        self.listener = listener
        self.verifier = verifier

    async def handle_EHLO(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction,
        hostname: str, responses: list[str],
    ) -> list[str]:  # fmt: skip
        """RFC 5321 §4.1.1.1; advertises PIPELINING (RFC 2920) and ENHANCEDSTATUSCODES
        (RFC 2034), which aiosmtpd supports but does not announce."""
        session.host_name = hostname
        lines = [line for line in responses if line != "250 HELP"]
        if self.listener.mode is not Mode.SUBMISSION:
            lines = [line for line in lines if not line.startswith("250-AUTH")]
        lines += ["250-PIPELINING", "250 ENHANCEDSTATUSCODES"]
        return lines

    async def handle_MAIL(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction,
        address: str, options: list[str],
    ) -> str:  # fmt: skip
        """RFC 5321 §4.1.1.2; RFC 6409 §6.1 for submission."""
        if self.listener.mode is Mode.SUBMISSION:
            assert session.account is not None  # auth_required: aiosmtpd checked
            try:
                address = await self.transport.check_sender(session.account, address)
            except Refused as refused:
                return refusal_reply(refused, stage="mail")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction,
        address: str, options: list[str],
    ) -> str:  # fmt: skip
        """RFC 5321 §4.1.1.3, with the limits of §4.5.3.1.8."""
        if len(envelope.rcpt_tos) >= self.listener.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            resolution = await self.transport.check_recipient(
                address, may_relay=self.listener.mode is Mode.SUBMISSION
            )
        except Refused as refused:
            return refusal_reply(refused, stage="rcpt")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.resolutions.append(resolution)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction
    ) -> str:
        """RFC 5321 §4.1.1.4: the reply comes only after the message is durable."""
        raw: bytes = envelope.original_content or b""
        if _BARE_LF.search(raw):
            # RFC 5321 §2.3.8. A bare LF is how "SMTP smuggling" hides a second message
            # from one server and shows it to the next, so it is refused, as Postfix
            # does, rather than repaired (which would also break DKIM). A stray CR
            # inside a line ("\r\r\n", common from broken generators) cannot end
            # DATA here and is accepted.
            return _per_recipient(
                self.listener, envelope, "550 5.6.0 Bare LF in message (RFC 5321 §2.3.8)"
            )
        if b"\0" in raw:
            return _per_recipient(
                self.listener, envelope, "550 5.6.0 NUL character in message (RFC 5322 §3.5)"
            )
        if self.listener.mode is Mode.SUBMISSION:
            return await self._submit(server, session, envelope, raw)
        return await self._receive(server, session, envelope, raw)

    async def _receive(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction, raw: bytes
    ) -> str:
        mail_from = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        fields: list[tuple[str, str]] = []
        if self.verifier is not None and self.listener.mode is Mode.MX:
            verdict = await self.verifier.verify(
                raw, client_ip=server.client_ip, helo=session.host_name or "", mail_from=mail_from
            )
            if verdict.dmarc_rejects:
                return (
                    f"550 5.7.1 Rejected by the DMARC policy of {verdict.from_domain} "
                    "(RFC 7489 §6.6.2)"
                )
            fields.append(("Authentication-Results", verdict.header))
        fields.insert(0, ("Received", server.received_field(envelope)))
        prepared = prepend_headers(_without_forged_results(raw, server.hostname), fields)
        combined = Routing()
        for resolution in envelope.resolutions:
            combined.add(resolution)
        dispatched = await self.transport.dispatch(prepared, combined, mail_from=mail_from)
        failed = {o.account_id: o.refused for o in dispatched.refused()}
        # Each recipient's fate: refused when every account it leads to refused it.
        replies: list[str] = []
        refusals: list[tuple[str, Refused]] = []
        for address, resolution in zip(envelope.rcpt_tos, envelope.resolutions, strict=True):
            ids = [local.account_id for local in resolution.local]
            refused = [failed[i] for i in ids if failed.get(i) is not None]
            if ids and len(refused) == len(ids) and not resolution.external:
                assert refused[0] is not None
                replies.append(refusal_reply(refused[0], stage="data"))
                refusals.append((str(address), refused[0]))
            else:
                replies.append("250 2.0.0 Message accepted for delivery")
        if self.listener.mode is Mode.LMTP:
            # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
            return "\r\n".join(replies)
        if not refusals:
            return "250 2.0.0 Message accepted for delivery"
        if len(refusals) < len(replies):
            # Accepted for some recipients: one reply cannot refuse the others, so their
            # failure goes back to the sender as a notice.
            await self.transport.return_refusals(prepared, mail_from=mail_from, refusals=refusals)
            return "250 2.0.0 Message accepted for delivery"
        return replies[0]

    async def _submit(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction, raw: bytes
    ) -> str:
        account = session.account
        assert account is not None
        try:
            prepared = await self.transport.prepare_submission(account, raw)
        except Refused as refused:
            return refusal_reply(refused, stage="data")
        prepared = prepend_headers(prepared, [("Received", server.received_field(envelope))])
        routing = Routing()
        for resolution in envelope.resolutions:
            routing.add(resolution)
        dispatched = await self.transport.dispatch(
            prepared, routing, mail_from=str(envelope.mail_from), account_id=account.id
        )
        refusals = dispatched.refused()
        if refusals and len(refusals) == len(routing.account_ids) and not routing.remote:
            first = refusals[0].refused
            assert first is not None
            return refusal_reply(first, stage="data")
        if account.save_sent_copy:
            await self.transport.save_sent_copy(account, prepared)
        return "250 2.0.0 Message accepted for delivery"

    async def handle_exception(self, error: Exception) -> str:
        """STYLE.md: log with context, answer a generic error with a reference."""
        reference = secrets.token_hex(4)
        log.error("SMTP session error [%s]", reference, exc_info=error)
        return f"451 4.3.0 Internal error, reference {reference}"


def _per_recipient(listener: ListenerSettings, envelope: Transaction, reply: str) -> str:
    if listener.mode is Mode.LMTP:
        return "\r\n".join(reply for _ in envelope.rcpt_tos)
    return reply


def _without_forged_results(raw: bytes, authserv_id: str) -> bytes:
    """RFC 8601 §5: remove Authentication-Results fields that claim to be ours."""
    pattern = re.compile(
        rb"^Authentication-Results:[ \t]*" + re.escape(authserv_id.encode()) + rb"\b.*?\r\n"
        rb"(?:[ \t].*?\r\n)*",
        re.IGNORECASE | re.MULTILINE,
    )
    head, sep, body = raw.partition(b"\r\n\r\n")
    return pattern.sub(b"", head + b"\r\n")[:-2] + sep + body if sep else raw


class SmtpServer(SMTP):
    """One connection (aiosmtpd's protocol object), see the module docstring."""

    def __init__(
        self,
        handler: TransportHandler,
        *,
        tls_context: ssl.SSLContext | None,
        data_size_limit: int,
        line_length_limit: int,
    ) -> None:
        listener = handler.listener
        # Per-connection copies of what aiosmtpd keeps on the class.
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_SIZE_LIMIT)
        self.line_length_limit = line_length_limit
        self.listener = listener
        self._in_ehlo = False
        super().__init__(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=listener.hostname,
            ident="Hirondelle ESMTP",
            # Implicit TLS listeners never offer STARTTLS.
            tls_context=None if listener.implicit_tls else tls_context,
            timeout=300,
            auth_required=listener.mode is Mode.SUBMISSION,
            auth_require_tls=True,
            loop=asyncio.get_running_loop(),
        )
        if listener.implicit_tls:
            # The whole connection is TLS; aiosmtpd only knows about STARTTLS.
            self._auth_require_tls = False
        if listener.mode is not Mode.SUBMISSION:
            self._auth_methods = {}
        else:
            self._auth_methods = {
                name: method
                for name, method in self._auth_methods.items()
                if name in ("PLAIN", "LOGIN")
            }

    def _create_session(self) -> ConnectionState:
        return ConnectionState(self.loop)

    def _create_envelope(self) -> Transaction:
        return Transaction()

    def state(self) -> ConnectionState:
        # A method, not a property: aiosmtpd's __init__ reads every attribute
        # (inspect.getmembers) before a session exists.
        assert isinstance(self.session, ConnectionState)
        return self.session

    @property
    def client_ip(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    @property
    def uses_tls(self) -> bool:
        return self.listener.implicit_tls or self._tls_protocol is not None

    async def push(self, status: str | bytes) -> None:
        """Every reply passes here: enhanced status codes on each line (RFC 2034), except
        on the EHLO reply, whose lines are keywords (RFC 2034 §3)."""
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if not self._in_ehlo:
            text = "\r\n".join(with_enhanced_code(line) for line in text.split("\r\n"))
        await super().push(text)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # RFC 5321 §4.5.5: "MAIL FROM:<>" is the null reverse-path of notifications.
        stripped = arg.lstrip()
        if stripped.startswith("<>"):
            return "<>", stripped[2:].lstrip()
        address, rest = super()._getaddr(arg)
        return address, rest

    async def smtp_AUTH(self, arg: str) -> None:
        """RFC 4954; RFC 8314 §3.3 / DESIGN.md: no AUTH before TLS (``530 5.7.0``)."""
        if self.listener.mode is not Mode.SUBMISSION:
            await self.push("502 5.5.1 AUTH is not available on this port")
            return
        if not self.uses_tls:
            await self.push("530 5.7.0 Must issue a STARTTLS command first")
            return
        await super().smtp_AUTH(arg)

    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        """RFC 4616: ``authzid NUL authcid NUL passwd``; authzid empty or the user."""
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if blob is MISSING:
                return await self._failed(None)  # challenge_auth has answered
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                return await self._failed("501 5.5.2 Cannot decode base64")
        parts = bytes(blob).split(b"\0")
        if len(parts) != 3 or (parts[0] and parts[0] != parts[1]):
            return await self._failed("501 5.5.2 Malformed PLAIN response")
        return await self._login(parts[1], parts[2])

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        """The LOGIN mechanism (draft-murchison-sasl-login), which Outlook still uses."""
        if len(args) == 1:
            login = await self.challenge_auth("Username:")
            if login is MISSING:
                return await self._failed(None)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                return await self._failed("501 5.5.2 Cannot decode base64")
        password = await self.challenge_auth("Password:")
        if password is MISSING:
            return await self._failed(None)
        return await self._login(bytes(login), bytes(password))

    async def _login(self, login: bytes, password: bytes) -> AuthResult:
        handler: TransportHandler = self.event_handler
        try:
            result = await handler.services.authenticator.authenticate(
                login.decode("utf-8"),
                password.decode("utf-8"),
                protocol="smtp",
                remote=self.client_ip,
                client_id=self.state().host_name or "",
            )
        except UnicodeDecodeError:
            result = None
        if result is not None and result.ok:
            self.state().account = result.account
            return AuthResult(
                success=True,
                auth_data=result.account,
                message="235 2.7.0 Authentication successful",
            )
        if result is not None and result.outcome is Outcome.RATE_LIMITED:
            # RFC 4954 §6: 454 4.7.0, a temporary failure; not counted against the
            # connection's failures (the limiter already refuses without any work).
            return AuthResult(
                success=False,
                handled=False,
                message=f"454 4.7.0 Too many failed logins, try again in "
                f"{result.retry_after} seconds",
            )
        if result is not None and result.outcome is Outcome.APP_PASSWORD_REQUIRED:
            return await self._failed(
                "535 5.7.8 This account has a second factor: use an app password"
            )
        if result is not None and result.outcome is Outcome.PROTOCOL_DISABLED:
            return await self._failed("535 5.7.8 SMTP is switched off for this account")
        return await self._failed("535 5.7.8 Authentication credentials invalid")

    async def _failed(self, reply: str | None) -> AuthResult:
        """Every failed AUTH exchange counts, malformed ones too (they cost nothing to
        send); at ``max_auth_failures`` the connection is closed with ``421 4.7.0``.
        The full rate limiter belongs to the login gate (identity issue)."""
        session = self.state()
        session.auth_failures += 1
        if session.auth_failures >= self.listener.max_auth_failures:
            # One reply per command: the 421 replaces the failure's own reply.
            await self.push("421 4.7.0 Too many failed authentications, closing connection")
            if self.transport is not None:
                self.transport.close()
            return AuthResult(success=False, handled=True)
        if reply is None:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=reply)

    def received_field(self, envelope: Transaction) -> str:
        """RFC 5321 §4.4 trace field; protocol names of RFC 3848."""
        if self.listener.mode is Mode.LMTP:
            protocol = "LMTP"
        else:
            protocol = (
                "ESMTP"
                + ("S" if self.uses_tls else "")
                + ("A" if self.state().authenticated else "")
            )
        helo = _printable(self.state().host_name or "unknown")
        recipient = envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else ""
        target = f"\r\n\tfor <{_printable(recipient)}>" if recipient else ""
        return (
            f"from {helo} ([{self.client_ip}])\r\n\tby {self.hostname} (Hirondelle) "
            f"with {protocol} id {secrets.token_hex(6)}{target};\r\n\t"
            f"{email.utils.formatdate(time.time())}"
        )


class LmtpServer(SmtpServer):
    """RFC 2033: LHLO replaces HELO and EHLO; the rest is the SMTP server's."""

    async def smtp_LHLO(self, arg: str) -> None:
        await SmtpServer.smtp_EHLO(self, arg)

    async def smtp_HELO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "HELO" not recognized (LMTP, use LHLO)')

    async def smtp_EHLO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "EHLO" not recognized (LMTP, use LHLO)')


def _printable(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in "<>()")[:255]


def _build_transport(services: Services) -> Transport:
    return Transport(
        database=services.database,
        mail=services.mail,
        queue=OutboundQueue(services.database, services.blobs),
        dkim=DkimService(services.database),
        hostname=services.settings.server.hostname,
    )


async def start_listener(
    context: ListenerContext, *, mode: Mode, verifier: Verifier | None = None
) -> Listener:
    """Serve ``mode`` on the context's socket. ``verifier`` replaces the default SPF/
    DKIM/DMARC verifier (system DNS) of an MX listener, e.g. with a DNS table in tests."""
    from hirondelle.node import Listener  # node imports this module for FRONT_ENDS

    services = context.services
    settings = services.settings
    listener_settings = ListenerSettings(
        mode=mode,
        hostname=settings.server.hostname,
        implicit_tls=context.implicit_tls,
        max_recipients=settings.limits.max_recipients,
        max_auth_failures=settings.smtp.max_auth_failures,
    )
    if mode is Mode.MX and verifier is None and settings.smtp.verify_inbound:
        verifier = Verifier(SystemDns(), authserv_id=settings.server.hostname)
    handler = TransportHandler(
        services,
        _build_transport(services),
        listener_settings,
        verifier=verifier if mode is Mode.MX else None,
    )
    server_class = LmtpServer if mode is Mode.LMTP else SmtpServer
    loop = asyncio.get_running_loop()

    connections: weakref.WeakSet[SmtpServer] = weakref.WeakSet()

    def protocol() -> SmtpServer:
        connection = server_class(
            handler,
            tls_context=context.tls,
            data_size_limit=settings.limits.max_message_size,
            line_length_limit=settings.limits.max_command_length,
        )
        connections.add(connection)
        return connection

    server = await loop.create_server(
        protocol,
        sock=context.sock,
        ssl=context.tls if context.implicit_tls else None,
    )

    async def stop() -> None:
        server.close()
        for connection in list(connections):
            if connection.transport is not None:
                connection.transport.close()
        await server.wait_closed()

    host, port = context.sock.getsockname()[:2]
    return Listener(name=context.name, host=host, port=port, stop=stop)


async def start_smtp(context: ListenerContext) -> Listener:
    return await start_listener(context, mode=Mode.MX)


async def start_submission(context: ListenerContext) -> Listener:
    return await start_listener(context, mode=Mode.SUBMISSION)


async def start_lmtp(context: ListenerContext) -> Listener:
    return await start_listener(context, mode=Mode.LMTP)
