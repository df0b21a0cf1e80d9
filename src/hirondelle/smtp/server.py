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
  ``command_size_limits`` dictionary is replaced by one per connection (STYLE.md);
- DATA is read in blocks rather than aiosmtpd's one ``readuntil`` per line (which was
  about half of the event loop's time per message): the stream is cut at ``.\r\n``,
  the end is the first ``\r\n.\r\n`` (RFC 5321 §4.1.1.4) and the transparency dots
  of §4.5.2 go with one ``bytes.replace``;
- CHUNKING (RFC 3030): ``BDAT size [LAST]`` on every listener, LMTP included (RFC 3030
  §4.3 with RFC 2033: one reply per recipient after ``BDAT LAST``).

- DSN (RFC 3461): RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT are taken out of the
  parameters before aiosmtpd sees them (it upper-cases values, which xtext forbids, and
  refuses any RCPT parameter with 555); a malformed one gets ``501 5.5.4``.
- REQUIRETLS (RFC 8689 §2): advertised by the MX and submission listeners once the
  session uses TLS (STARTTLS or implicit TLS); ``MAIL FROM:<...> REQUIRETLS`` in a
  session without TLS gets ``530 5.7.10``. The message is then queued with the
  REQUIRETLS policy that the outbound queue enforces (``mail/queue.py``).

Not supported: BINARYMIME (RFC 3030 §3; a binary body would meet the NUL and bare-LF
refusals below, which guard the store and IMAP clients); it is not advertised.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import email.utils
import functools
import itertools
import logging
import re
import secrets
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from hirondelle.errors import Refused
from hirondelle.identity.authentication import Outcome
from hirondelle.mail import dsn
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
# A path whose mailbox is a dot-atom at a plain domain name (RFC 5321 §4.1.2), then the
# parameters.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)\Z", re.DOTALL
)
# Received ids (RFC 5321 §4.4): unique per process, no randomness needed per message.
_RECEIVED_IDS = itertools.count()
_RECEIVED_PREFIX = secrets.token_hex(4)


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
    """aiosmtpd's envelope with each accepted recipient's resolution, and the chunks
    of a message sent with BDAT (RFC 3030) so far."""

    def __init__(self) -> None:
        super().__init__()
        self.resolutions: list[Resolution] = []
        self.chunks: list[bytes] = []
        self.chunked_size = 0
        # RFC 3030 §2: after a failed BDAT the rest of the message is read and dropped.
        self.chunking_failed = False
        # RFC 3461: MAIL's RET/ENVID, and each accepted recipient's NOTIFY/ORCPT.
        self.dsn = dsn.MailParameters()
        self.recipient_dsn: list[dsn.RecipientParameters] = []
        # RFC 8689: MAIL FROM had the REQUIRETLS option.
        self.requiretls = False


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
        lines += ["250-PIPELINING", "250-CHUNKING", "250-DSN"]
        if server.uses_tls and self.listener.mode is not Mode.LMTP:
            # RFC 8689 §2: offered only in a session that uses TLS.
            lines.append("250-REQUIRETLS")
        lines.append("250 ENHANCEDSTATUSCODES")
        return lines

    async def handle_MAIL(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction,
        address: str, options: list[str],
    ) -> str:  # fmt: skip
        """RFC 5321 §4.1.1.2; RFC 6409 §6.1 for submission; RFC 3461 §4.3-4.4."""
        parsed = server.dsn_parameters
        if isinstance(parsed, dsn.ParameterError):
            return f"501 5.5.4 {parsed}"
        requiretls = server.requiretls
        if isinstance(requiretls, dsn.ParameterError):
            return f"501 5.5.4 {requiretls}"
        if requiretls and not server.uses_tls:
            return "530 5.7.10 REQUIRETLS needs a TLS session: STARTTLS first (RFC 8689 §2)"
        if self.listener.mode is Mode.SUBMISSION:
            assert session.account is not None  # auth_required: aiosmtpd checked
            try:
                address = await self.transport.check_sender(session.account, address)
            except Refused as refused:
                return refusal_reply(refused, stage="mail")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.requiretls = requiretls
        if isinstance(parsed, dsn.MailParameters):
            envelope.dsn = parsed
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction,
        address: str, options: list[str],
    ) -> str:  # fmt: skip
        """RFC 5321 §4.1.1.3, with the limits of §4.5.3.1.8; RFC 3461 §4.1-4.2."""
        parsed = server.dsn_parameters
        if isinstance(parsed, dsn.ParameterError):
            return f"501 5.5.4 {parsed}"
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
        envelope.recipient_dsn.append(
            parsed if isinstance(parsed, dsn.RecipientParameters) else dsn.RecipientParameters()
        )
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(
        self, server: SmtpServer, session: ConnectionState, envelope: Transaction
    ) -> str:
        """RFC 5321 §4.1.1.4: the reply comes only after the message is durable."""
        raw: bytes = envelope.original_content or b""
        # Every LF is part of a CRLF exactly when there are as many of each; two C
        # counts cost far less than a regex with a look-behind over the message.
        if raw.count(b"\n") != raw.count(b"\r\n"):
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
        quarantine = False
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
            quarantine = verdict.dmarc_quarantines
        fields.insert(0, ("Received", server.received_field(envelope)))
        prepared = prepend_headers(_without_forged_results(raw, server.hostname), fields)
        combined = Routing()
        for resolution in envelope.resolutions:
            combined.add(resolution)
        dispatched = await self.transport.dispatch(
            prepared,
            combined,
            mail_from=mail_from,
            mail_parameters=envelope.dsn,
            recipient_parameters=_remote_parameters(envelope),
            requiretls=envelope.requiretls,
            quarantine=quarantine,
        )
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
        await self.transport.return_delivered(
            prepared,
            mail_from=mail_from,
            delivered=_successes(envelope, set(failed)),
            mail_parameters=envelope.dsn,
            requiretls=envelope.requiretls,
        )
        if self.listener.mode is Mode.LMTP:
            # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
            return "\r\n".join(replies)
        if not refusals:
            return "250 2.0.0 Message accepted for delivery"
        if len(refusals) < len(replies):
            # Accepted for some recipients: one reply cannot refuse the others, so their
            # failure goes back to the sender as a notice.
            await self.transport.return_refusals(
                prepared, mail_from=mail_from, refusals=refusals, requiretls=envelope.requiretls
            )
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
            prepared,
            routing,
            mail_from=str(envelope.mail_from),
            account_id=account.id,
            mail_parameters=envelope.dsn,
            recipient_parameters=_remote_parameters(envelope),
            requiretls=envelope.requiretls,
        )
        refusals = dispatched.refused()
        if refusals and len(refusals) == len(routing.account_ids) and not routing.remote:
            first = refusals[0].refused
            assert first is not None
            return refusal_reply(first, stage="data")
        refused_ids = {o.account_id for o in refusals}
        await self.transport.return_delivered(
            prepared,
            mail_from=str(envelope.mail_from),
            delivered=_successes(envelope, refused_ids),
            mail_parameters=envelope.dsn,
            requiretls=envelope.requiretls,
        )
        if account.save_sent_copy:
            await self.transport.save_sent_copy(account, prepared)
        return "250 2.0.0 Message accepted for delivery"

    async def handle_exception(self, error: Exception) -> str:
        """STYLE.md: log with context, answer a generic error with a reference."""
        reference = secrets.token_hex(4)
        log.error("SMTP session error [%s]", reference, exc_info=error)
        return f"451 4.3.0 Internal error, reference {reference}"


def _expands(resolution: Resolution) -> bool:
    """An address that leads to several recipients (an alias or catch-all with several
    targets): its success is "expanded" (RFC 3464 §2.3.3)."""
    return len(resolution.local) + len(resolution.external) > 1


def _successes(
    envelope: Transaction, refused_ids: set[int]
) -> list[tuple[str, dsn.RecipientParameters, dsn.Action]]:
    """The RCPT addresses that were delivered (into at least one local mailbox) or
    expanded (accepted for several recipients, RFC 3464 §2.3.3), with their action."""
    found: list[tuple[str, dsn.RecipientParameters, dsn.Action]] = []
    for address, resolution, params in zip(
        envelope.rcpt_tos, envelope.resolutions, envelope.recipient_dsn, strict=True
    ):
        reached = any(local.account_id not in refused_ids for local in resolution.local)
        if _expands(resolution) and (reached or resolution.external):
            found.append((str(address), params, "expanded"))
        elif reached:
            found.append((str(address), params, "delivered"))
    return found


def _remote_parameters(envelope: Transaction) -> dict[str, dsn.RecipientParameters]:
    """Each remote address's RFC 3461 parameters: those of the RCPT that led to it (the
    first, when several did). An alias's target gets the RCPT address as its ORCPT when
    the client gave none (RFC 3461 §4.2), so that a notice names what the sender wrote.
    The targets of an expanded address do not ask for SUCCESS again: the "expanded"
    notice answered it, and only their failures and delays are still news."""
    parameters: dict[str, dsn.RecipientParameters] = {}
    for rcpt, resolution, params in zip(
        envelope.rcpt_tos, envelope.resolutions, envelope.recipient_dsn, strict=True
    ):
        if _expands(resolution) and params.wants("SUCCESS"):
            params = dataclasses.replace(params, notify=_without_success(params.notify))
        for address in resolution.external:
            given = params
            if not params.orcpt and address != rcpt and _plain_ascii(str(rcpt)):
                given = dataclasses.replace(params, orcpt=f"rfc822;{rcpt}")
            parameters.setdefault(address, given)
    return parameters


def _without_success(notify: str) -> str:
    kept = [keyword for keyword in notify.split(",") if keyword != "SUCCESS"]
    return ",".join(kept) if kept else "NEVER"


def _plain_ascii(address: str) -> bool:
    # ORCPT's rfc822 type holds an ASCII address (RFC 3461 §4.2); UTF-8 ones need the
    # utf-8 types of RFC 6533, not supported.
    return all(32 < ord(c) < 127 for c in address) and len(address) < dsn.ORCPT_LIMIT - 7


def _per_recipient(listener: ListenerSettings, envelope: Transaction, reply: str) -> str:
    if listener.mode is Mode.LMTP:
        return "\r\n".join(reply for _ in envelope.rcpt_tos)
    return reply


def _without_forged_results(raw: bytes, authserv_id: str) -> bytes:
    """RFC 8601 §5: remove Authentication-Results fields that claim to be ours."""
    end = raw.find(b"\r\n\r\n")
    # Most messages have no such field: one lower-cased copy of the header section and
    # a substring search say so, and the message is returned as it came (the pattern
    # below cannot match without that name and its colon).
    if end < 0 or b"authentication-results:" not in raw[:end].lower():
        return raw
    head, sep, body = raw.partition(b"\r\n\r\n")
    return _forged_results_pattern(authserv_id).sub(b"", head + b"\r\n")[:-2] + sep + body


@functools.lru_cache(maxsize=16)
def _forged_results_pattern(authserv_id: str) -> re.Pattern[bytes]:
    return re.compile(
        rb"^Authentication-Results:[ \t]*" + re.escape(authserv_id.encode()) + rb"\b.*?\r\n"
        rb"(?:[ \t].*?\r\n)*",
        re.IGNORECASE | re.MULTILINE,
    )


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
        # The inactivity deadline (loop time) that _reset_timeout keeps.
        self._timeout_at = 0.0
        self._grouping = False
        self._held: list[bytes] = []
        # The command whose path _getaddr reads, and the DSN parameters it took out.
        self._dsn_command = ""
        self.dsn_parameters: (
            dsn.MailParameters | dsn.RecipientParameters | dsn.ParameterError | None
        ) = None
        # RFC 8689: whether the MAIL command being read had REQUIRETLS (or its error).
        self.requiretls: bool | dsn.ParameterError = False
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

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's inactivity timeout, restarted by every command, without a new
        timer (a TimerHandle and its heap operations) per command: the deadline moves
        and the one timer is set again only when it would fire too late, or has fired;
        firing before the deadline, it sets itself for the deadline (_timeout_cb)."""
        now = self.loop.time()
        self._timeout_at = now + (duration or self._timeout_duration)
        handle = self._timeout_handle
        if (
            handle is None
            or handle.cancelled()
            or handle.when() > self._timeout_at
            or handle.when() <= now
        ):
            if handle is not None:
                handle.cancel()
            self._timeout_handle = self.loop.call_at(self._timeout_at, self._timeout_cb)

    def _timeout_cb(self) -> None:
        handle = self._timeout_handle
        if handle is not None and self._timeout_at > handle.when():
            # A command came since this timer was set: wait for the new deadline.
            self._timeout_handle = self.loop.call_at(self._timeout_at, self._timeout_cb)
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]

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
        data = text.encode("utf-8") + b"\r\n" if self._in_ehlo else _reply_bytes(text)
        if self._grouping and self._command_waiting():
            # RFC 2920 §3.2 (8): replies to grouped RSET, MAIL and RCPT are kept and
            # sent as a unit with the next reply (one send instead of three per
            # pipelined transaction); a command is waiting, so a reply will follow.
            self._held.append(data)
            return
        if self._held:
            data = b"".join(self._held) + data
            self._held.clear()
        self._writer.write(data)
        await self._writer.drain()

    def _buffered(self) -> bytearray:
        # What the client has sent and no command has read yet. StreamReader has no
        # public peek; aiosmtpd itself reaches into ``_buffer`` (on STARTTLS).
        buffered: bytearray = getattr(self._reader, "_buffer", bytearray())
        return buffered

    def _command_waiting(self) -> bool:
        # A whole line is already in the reader's buffer.
        return b"\n" in self._buffered()

    async def _grouped(self, command: Callable[[str], Awaitable[None]], arg: str) -> None:
        self._grouping = True
        try:
            await command(arg)
        finally:
            self._grouping = False

    async def smtp_MAIL(self, arg: str) -> None:
        self._dsn_command, self.dsn_parameters, self.requiretls = "MAIL", None, False
        try:
            await self._grouped(super().smtp_MAIL, arg)
        finally:
            self._dsn_command, self.dsn_parameters, self.requiretls = "", None, False

    async def smtp_RCPT(self, arg: str) -> None:
        self._dsn_command, self.dsn_parameters = "RCPT", None
        try:
            await self._grouped(super().smtp_RCPT, arg)
        finally:
            self._dsn_command, self.dsn_parameters = "", None

    async def smtp_RSET(self, arg: str) -> None:
        await self._grouped(super().smtp_RSET, arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 §4.1.1.4, read in blocks (see the module docstring). Replies as
        aiosmtpd's: the size and line-length errors come after the whole message."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.transaction()
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        if envelope.chunks or envelope.chunking_failed:
            await self.push("503 5.5.1 DATA cannot follow BDAT (RFC 3030 §2)")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self._read_dot_terminated()
        if content is None:
            self._set_post_data_state()
            return
        await self._deliver(unstuffed(content))

    async def _read_dot_terminated(self) -> bytes | None:
        """The DATA stream up to (not including) the ``.\\r\\n`` that ends it, still
        dot-stuffed; ``None`` after the error reply (too big, line too long)."""
        reader = self._reader
        limit = self.data_size_limit
        parts: list[bytes] = []
        size = 0
        too_much = False
        tail = b"\r\n"  # the DATA command ended a line: a first ".\r\n" ends at once
        while True:
            try:
                block = await reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as overrun:
                # No ".\r\n" in the buffer: take all of it but what could start one.
                block = await reader.read(overrun.consumed)
            except asyncio.IncompleteReadError:
                # The client went away mid-message: nothing of it is kept.
                self._writer.close()
                return None
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            end = block[-5:] if len(block) >= 5 else (tail + block)[-5:]
            tail = block[-2:] if len(block) >= 2 else (tail + block)[-2:]
            last = end == b"\r\n.\r\n"
            if last:
                block = block[:-3]
            size += len(block)
            if limit and size > limit:
                # Read to the end and then refuse (RFC 5321 §4.2.5); nothing is kept.
                too_much = True
                parts.clear()
            elif not too_much:
                parts.append(block)
            if last:
                break
        if too_much:
            await self.push("552 Error: Too much mail data")
            return None
        content = b"".join(parts)
        if len(content) > self.line_length_limit and _longest_line(content) > (
            self.line_length_limit
        ):
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            return None
        return content

    async def smtp_BDAT(self, arg: str | None) -> None:
        """RFC 3030 §2-3: ``BDAT size [LAST]``. The chunk is read before any check, as
        a pipelining client has already sent it; a failed chunk fails the transaction
        and later chunks are read and dropped until ``LAST`` (RFC 3030 §2)."""
        words = (arg or "").split()
        last = len(words) == 2 and words[1].upper() == "LAST"
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and not last)
            or not (words[0].isascii() and words[0].isdigit() and len(words[0]) <= 18)
        ):
            # The chunk's length is unknown, so the stream cannot be followed.
            await self.push("501 5.5.4 Syntax: BDAT chunk-size [LAST], closing connection")
            self._writer.close()
            return
        size = int(words[0])
        limit = self.data_size_limit
        envelope = self.transaction()
        keep = not envelope.chunking_failed and not (limit and envelope.chunked_size + size > limit)
        if self._held and len(self._buffered()) < size:
            # The chunk is not all here yet: the held replies go now, so that a client
            # waiting for them before it sends the rest does not wait on us.
            data = b"".join(self._held)
            self._held.clear()
            self._writer.write(data)
            await self._writer.drain()
        chunk = await self._read_chunk(size, keep=keep)
        if chunk is None:
            return
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        if envelope.chunking_failed:
            if last:
                self._set_post_data_state()
            await self.push("503 5.5.1 Transaction failed earlier, chunk dropped")
            return
        if not envelope.rcpt_tos:
            envelope.chunking_failed = not last
            await self.push(
                "503 Error: need MAIL command"
                if not envelope.mail_from
                else "503 Error: need RCPT command"
            )
            return
        if not keep:
            envelope.chunks.clear()
            envelope.chunking_failed = not last
            if last:
                self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        envelope.chunks.append(chunk)
        envelope.chunked_size += size
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        content = b"".join(envelope.chunks)
        envelope.chunks.clear()
        if len(content) > self.line_length_limit and _longest_line(content) > (
            self.line_length_limit
        ):
            self._set_post_data_state()
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            return
        await self._deliver(content)

    async def _read_chunk(self, size: int, *, keep: bool) -> bytes | None:
        """``size`` octets of a BDAT chunk, read in pieces (no more than the size
        limit is ever held); ``b""`` when not kept, ``None`` if the client left."""
        reader = self._reader
        pieces: list[bytes] = []
        remaining = size
        try:
            while remaining:
                piece = await reader.read(min(remaining, 1 << 20))
                if not piece:
                    self._writer.close()
                    return None
                remaining -= len(piece)
                if keep:
                    pieces.append(piece)
        except asyncio.CancelledError:
            log.info("Connection lost during BDAT")
            self._writer.close()
            raise
        return b"".join(pieces)

    async def _deliver(self, content: bytes) -> None:
        """The message is complete: the handler's DATA hook answers (as aiosmtpd's
        ``smtp_DATA`` does after reading)."""
        envelope = self.transaction()
        envelope.content = content
        envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _set_post_data_state(self) -> None:
        # aiosmtpd's, typed: the transaction is over, a new envelope starts.
        self.envelope = self._create_envelope()

    def transaction(self) -> Transaction:
        assert isinstance(self.envelope, Transaction)
        return self.envelope

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        address, rest = self._path(arg)
        # RFC 1869: parameters only after EHLO; aiosmtpd refuses them after HELO.
        if rest and self._dsn_command and self.state().extended_smtp:
            rest = self._take_dsn_parameters(rest)
        return address, rest

    def _take_dsn_parameters(self, rest: str) -> str:
        """RFC 3461 §4: the DSN parameters out of ``rest``, into ``dsn_parameters``
        (or the error), with their case kept; the others are left to aiosmtpd."""
        words = rest.split()
        try:
            if self._dsn_command == "MAIL":
                if self.listener.mode is not Mode.LMTP:
                    words = self._take_requiretls(words)
                mail, others = dsn.split_mail_parameters(words)
                self.dsn_parameters = mail
            else:
                recipient, others = dsn.split_recipient_parameters(words)
                self.dsn_parameters = recipient
        except dsn.ParameterError as error:
            self.dsn_parameters = error
            return ""
        return " ".join(others)

    def _take_requiretls(self, words: list[str]) -> list[str]:
        try:
            self.requiretls, others = split_requiretls(words)
        except dsn.ParameterError as error:
            self.requiretls = error
            return [word for word in words if word.partition("=")[0].upper() != "REQUIRETLS"]
        return others

    def _path(self, arg: str) -> tuple[str | None, str | None]:
        # RFC 5321 §4.5.5: "MAIL FROM:<>" is the null reverse-path of notifications.
        stripped = arg.lstrip()
        if stripped.startswith("<>"):
            return "<>", stripped[2:].lstrip()
        simple = simple_path(arg)
        if simple is not None:
            # The usual <local@domain>: what aiosmtpd's RFC 5322 parser (about half a
            # millisecond per call) would return, without it.
            local = simple[0].rpartition("@")[0]
            if self.local_part_limit and len(local) > self.local_part_limit:
                return None, None
            return simple
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
        if result is not None and result.outcome is Outcome.UNAVAILABLE:
            # RFC 4954 §6: 454 4.7.0 temporary authentication failure (the directory).
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 The account directory does not answer, try again later",
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
            f"with {protocol} id {_RECEIVED_PREFIX}{next(_RECEIVED_IDS):x}{target};\r\n\t"
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


def split_requiretls(words: list[str]) -> tuple[bool, list[str]]:
    """RFC 8689 §2: whether MAIL's parameters hold the REQUIRETLS option (without a
    value, at most once: ParameterError otherwise), and the other words."""
    given = [word for word in words if word.partition("=")[0].upper() == "REQUIRETLS"]
    if len(given) > 1 or any("=" in word for word in given):
        raise dsn.ParameterError("REQUIRETLS takes no value, once (RFC 8689 §2)")
    return bool(given), [word for word in words if word not in given]


def simple_path(arg: str) -> tuple[str, str] | None:
    """``<local@domain> params`` -> (mailbox, params) for the plain case (see
    ``_SIMPLE_PATH``); None for anything else, left to aiosmtpd's full parser."""
    match = _SIMPLE_PATH.match(arg)
    if match is None:
        return None
    # RFC 5322 CFWS after the ">" belongs to the path, as aiosmtpd's parser reads it;
    # a comment there is left to that parser.
    rest = match.group(2).lstrip(" \t")
    return None if rest.startswith("(") else (match.group(1), rest)


def unstuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line's leading dot was added by the client; remove it."""
    data = data.replace(b"\r\n.", b"\r\n")
    return data[1:] if data.startswith(b".") else data


def _longest_line(data: bytes) -> int:
    """The longest line with its CRLF, as aiosmtpd's per-line check counted it."""
    return max(map(len, data.split(b"\r\n"))) + 2


@functools.lru_cache(maxsize=1024)
def _reply_bytes(text: str) -> bytes:
    """A reply's lines with their enhanced status codes (RFC 2034), as sent. Memoized:
    most replies are the same few texts (``250 2.1.5 Recipient OK``...)."""
    return "\r\n".join(with_enhanced_code(line) for line in text.split("\r\n")).encode() + b"\r\n"


def _printable(text: str) -> str:
    if text.isprintable() and not any(c in text for c in "<>()"):
        return text[:255]  # the usual host name or address: every character is kept
    return "".join(c for c in text if c.isprintable() and c not in "<>()")[:255]


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
        services.transport,
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
