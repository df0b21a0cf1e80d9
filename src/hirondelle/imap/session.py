"""One IMAP connection's state machine.

RFC 9051 §3 (states NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT), §5.1.2 and
§5.5 (untagged updates: sent with any command, EXPUNGE never during FETCH, STORE or
SEARCH), §5.4 (autologout timer, at least 30 minutes), §7.1 (tagged OK/NO/BAD), RFC 3501
for IMAP4rev1 clients (RECENT, LSUB), RFC 5161 ENABLE, RFC 7162 §3.2.3 (QRESYNC: VANISHED
instead of EXPUNGE), RFC 6855 (UTF8=ACCEPT), RFC 4978 (COMPRESS=DEFLATE).

The session reads events from the sans-I/O parser, looks each command up in the
dispatch table by ``(state, command type)``, and maps the three kinds of failure at
this one boundary: a syntax error is BAD, a :class:`~hirondelle.errors.Refused` is
NO with a response code, anything else is logged with its context and answered
``NO [SERVERBUG]`` with an id, the session going on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import uuid
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, BinaryIO, cast

from hirondelle.errors import Reason, Refused
from hirondelle.imap.commands import DISPATCH, Bad, Done, No, State
from hirondelle.imap.commands.authenticate import check_login
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.parser import (
    CommandParser,
    Event,
    IdleDone,
    LiteralChunk,
    LiteralEnd,
    LiteralStart,
    LiteralTooLarge,
    NeedContinuation,
    ParseError,
    SaslResponse,
)
from hirondelle.imap.proto.response import ResponseCode, ResponseEncoder
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.imap.selected import RecentColumns, SelectedMailbox
from hirondelle.mail import keywords
from hirondelle.mail.mailboxes import MailboxService
from hirondelle.mail.messages import CannotCalculateChanges, MessageService
from hirondelle.services import Services
from hirondelle.store.directory import Account
from hirondelle.store.notifications import Subscription

if TYPE_CHECKING:
    from hirondelle.imap.server import Connection

log = logging.getLogger(__name__)

#: RFC 9051 §6.4.4 SEARCH charsets (BADCHARSET lists them).
CHARSETS = ("US-ASCII", "UTF-8")

#: Refusal reasons -> RFC 9051 §7.1 / RFC 5530 response codes: the one mapping.
REFUSAL_CODES = {
    Reason.NOT_FOUND: "NONEXISTENT",
    Reason.ALREADY_EXISTS: "ALREADYEXISTS",
    Reason.INVALID: "CANNOT",
    Reason.HAS_CHILDREN: "HASCHILDREN",
    Reason.IN_USE: "INUSE",
    Reason.OVER_QUOTA: "OVERQUOTA",
    Reason.TOO_LARGE: "TOOBIG",
    Reason.FORBIDDEN: "NOPERM",
    Reason.CANNOT: "CANNOT",
    Reason.STATE_CHANGED: "CANNOT",
}

#: An APPEND literal streamed by the parser stays in memory up to this size, then goes
#: to a temporary file: a 30 MB APPEND is never held whole in memory.
SPOOL_MEMORY = 1 << 20

#: Seconds a connection may stay idle before it has logged in.
PRE_AUTH_TIMEOUT = 120.0

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class Session:
    """One client connection (per-connection state lives here, never on the class)."""

    # No per-instance __dict__: one of these per connection (2,000 idle sessions).
    __slots__ = (
        "_stream_index",
        "_subscription",
        "_subscription_cm",
        "account",
        "client_id",
        "compressed",
        "connection",
        "enabled",
        "encoder",
        "mailboxes",
        "max_message_size",
        "messages",
        "parser",
        "pending_events",
        "recent",
        "remote",
        "saved_uids",
        "selected",
        "services",
        "state",
        "streams",
        "timeout",
        "tls_context",
    )

    def __init__(
        self,
        services: Services,
        connection: Connection,
        *,
        tls: ssl.SSLContext | None,
        remote: str,
        mailboxes: MailboxService,
        messages: MessageService,
        recent: RecentColumns | None = None,
    ) -> None:
        self.services = services
        self.connection = connection
        self.tls_context = tls
        self.remote = remote
        self.mailboxes = mailboxes
        self.messages = messages
        #: The listener's recently opened mailboxes (SELECT without reading rows again).
        self.recent = recent if recent is not None else RecentColumns()
        limits = services.settings.limits
        self.timeout = float(limits.imap_idle_timeout_seconds)
        self.max_message_size = limits.max_message_size
        self.parser = CommandParser(
            max_line=limits.max_command_length,
            max_literal=limits.max_message_size,
        )
        self.encoder = ResponseEncoder()
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.client_id = ""
        #: RFC 5182 SEARCHRES: UIDs saved by SEARCH RETURN (SAVE), for "$".
        self.saved_uids: list[int] | None = None
        self.compressed = False
        #: APPEND literals the parser streams (above its sink threshold), by index: each
        #: in a spooled temporary file (memory up to SPOOL_MEMORY, then a file in the
        #: blob store's tmp directory), handed as is to the mail service.
        self.streams: dict[int, BinaryIO] = {}
        #: Events parsed ahead of their turn (input inflated when COMPRESS started).
        self.pending_events: list[Event] = []
        self._stream_index: int | None = None
        self._subscription: Subscription | None = None
        self._subscription_cm: AbstractAsyncContextManager[Subscription] | None = None

    # -- what the client sees -----------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self.connection.secure

    @property
    def login_allowed(self) -> bool:
        """DESIGN.md: on a plain port, authentication waits for STARTTLS (RFC 9051
        §6.2.3 LOGINDISABLED). Without any certificate STARTTLS cannot be offered, and
        refusing every login would leave the listener useless: the node warns then."""
        return self.secure or self.tls_context is None

    def capabilities(self) -> list[str]:
        """RFC 9051 §6.1.1: what the server offers in the current state."""
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "ID", "ENABLE", "IDLE", "SASL-IR"]
        if self.state is State.NOT_AUTHENTICATED:
            if not self.secure and self.tls_context is not None:
                caps += ["STARTTLS", "LOGINDISABLED"]
            else:
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            return caps
        caps += [
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "SEARCHRES",
            "SORT",
            "ESORT",
            "THREAD=REFERENCES",
            "THREAD=ORDEREDSUBJECT",
            "WITHIN",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "STATUS=SIZE",
            f"APPENDLIMIT={self.max_message_size}",
            "MULTIAPPEND",
            "BINARY",
            "UTF8=ACCEPT",
        ]
        if not self.compressed:
            caps.append("COMPRESS=DEFLATE")
        return caps

    @property
    def ended(self) -> bool:
        return self.state is State.LOGOUT

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    def write(self, data: bytes) -> None:
        self.connection.write(data)

    def flags_of(self, stored: str) -> list[str]:
        """Stored keywords -> IMAP flags (RFC 8621 §4.1.1 mapping)."""
        return [keywords.to_imap(k) for k in stored.split()]

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.write(self.encoder.ok(None, "Hirondelle ready", self._capability_code()))
            await self.connection.drain()
            while not self.ended:
                events = await self.next_events()
                if events is None:
                    break
                for event in events:
                    await self.handle_event(event)
                    if self.ended:
                        break
                await self.connection.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.discard_streams()
            await self._unsubscribe()

    async def next_events(self) -> list[Event] | None:
        """The parser's next events, reading when it needs more; None at end of input
        or after the autologout timer (RFC 9051 §5.4), which has then said BYE."""
        while True:
            if self.pending_events:
                events, self.pending_events = self.pending_events, []
                return events
            if self.parser.pending:
                events = self.parser.feed(b"")
                if events:
                    return events
            data = await self.read()
            if data is None:
                return None
            events = self.parser.feed(data)
            if events:
                return events

    async def read(self) -> bytes | None:
        # RFC 9051 §5.4: at least 30 minutes once authenticated; before that a shorter
        # timer, so idle unauthenticated connections cannot pile up.
        timeout = self.timeout
        if self.state is State.NOT_AUTHENTICATED:
            timeout = min(timeout, PRE_AUTH_TIMEOUT)
        try:
            data = await asyncio.wait_for(self.connection.read(), timeout)
        except TimeoutError:
            self.write(self.encoder.bye("Autologout; idle for too long"))
            await self.connection.drain()
            self.state = State.LOGOUT
            return None
        return data or None

    async def handle_event(self, event: Event) -> None:
        if isinstance(event, c.Command):
            await self.execute(event)
            if self.parser.paused:
                self.parser.resume()
        elif isinstance(event, NeedContinuation):
            self.write(self.encoder.continuation("Ready for literal data"))
            await self.connection.drain()
        elif isinstance(event, ParseError | LiteralTooLarge):
            self.discard_streams()
            self._stream_index = None
            self.write(self.encoder.refusal(event, charsets=CHARSETS))
            if isinstance(event, LiteralTooLarge) and event.close:
                # RFC 7888 §4: rather than read and discard a huge literal the client
                # is already sending, close the connection.
                await self._end_session("Literal too large; closing the connection")
        elif isinstance(event, LiteralStart):
            self.streams[event.index] = self._spool()
            self._stream_index = event.index
        elif isinstance(event, LiteralChunk):
            if self._stream_index is not None:
                # A write into the page cache (or memory below SPOOL_MEMORY): no fsync,
                # no wait worth a thread hop per chunk.
                self.streams[self._stream_index].write(event.data)
        elif isinstance(event, LiteralEnd):
            self._stream_index = None
        elif isinstance(event, IdleDone | SaslResponse):  # pragma: no cover - modes end first
            self.write(self.encoder.bad(None, "Unexpected continuation line"))

    def _spool(self) -> BinaryIO:
        directory = self.services.settings.blob_dir() / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return cast(
            BinaryIO,
            tempfile.SpooledTemporaryFile(
                max_size=SPOOL_MEMORY, mode="w+b", dir=str(directory), prefix="imap-append-"
            ),
        )

    def discard_streams(self) -> None:
        """Close (and so delete) the spooled literals of the command that ended."""
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.close()

    async def execute(self, command: c.Command) -> None:
        handler = DISPATCH.get((self.state, type(command)))
        tag = command.tag
        if handler is None:
            allowed = [s.value for s in State if (s, type(command)) in DISPATCH]
            if allowed:
                self.write(
                    self.encoder.bad(
                        tag, f"{command.name} is not allowed now (only when {' or '.join(allowed)})"
                    )
                )
            else:
                self.write(self.encoder.bad(tag, f"{command.name} is not supported"))
            return
        done: Done | None = None
        try:
            if self.state is State.SELECTED and not isinstance(command, c.Select | c.Idle):
                # The command sees the mailbox as it is now (CHANGEDSINCE, UNCHANGEDSINCE,
                # sequence numbers of new messages); untagged data may precede its own.
                await self._sync_after(command)
            done = await handler(self, command)
        except No as refusal:
            await self._sync_after(command)
            self.write(self.encoder.no(tag, refusal.text, refusal.code))
        except Bad as error:
            self.write(self.encoder.bad(tag, error.text, error.code))
        except Refused as refused:
            await self._sync_after(command)
            code = ResponseCode.simple(REFUSAL_CODES[refused.reason])
            self.write(self.encoder.no(tag, refused.message, code))
        except (ConnectionError, ssl.SSLError):
            raise
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception(
                "IMAP %s failed (error id %s, account %s, remote %s)",
                command.name,
                error_id,
                self.account.address if self.account else "-",
                self.remote,
            )
            self.write(
                self.encoder.no(
                    tag,
                    f"Internal error; refer to the server log (id {error_id})",
                    ResponseCode.simple("SERVERBUG"),
                )
            )
        finally:
            if self._stream_index is None and isinstance(command, c.Append):
                self.discard_streams()
        if done is not None and not done.silent:
            await self._sync_after(command)
            self.write(self.encoder.ok(tag, f"{command.name} {done.text}", done.code))

    async def _sync_after(self, command: c.Command) -> None:
        """Untagged updates before a command runs and before its tagged response
        (RFC 9051 §5.5, §7.5.1: no EXPUNGE around FETCH, STORE and SEARCH)."""
        if self.state is not State.SELECTED or self.selected is None:
            return
        quiet = isinstance(command, c.Fetch | c.Store | c.Search) and not getattr(
            command, "uid", False
        )
        try:
            await self.sync(allow_expunge=not quiet)
        except (ConnectionError, ssl.SSLError):
            raise
        except Exception:
            log.exception("IMAP sync of %s failed", self.selected.name if self.selected else "-")

    # -- authentication -----------------------------------------------------------------

    def _capability_code(self) -> ResponseCode:
        return ResponseCode.capability(self.capabilities())

    async def login(self, username: str, password: str) -> Done:
        """The one login path (LOGIN and AUTHENTICATE): identity.authenticate."""
        if not self.login_allowed:
            raise No("Use STARTTLS first", "PRIVACYREQUIRED")
        result = await self.services.authenticator.authenticate(
            username, password, protocol="imap", remote=self.remote, client_id=self.client_id
        )
        check_login(result)  # raises No with the refusal's response code
        assert result.account is not None
        self.account = result.account
        self.state = State.AUTHENTICATED
        await self._subscribe(result.account.id)
        return Done("completed", self._capability_code())

    async def _subscribe(self, account_id: int) -> None:
        self._subscription_cm = self.services.bus.subscribe(account_id)
        self._subscription = await self._subscription_cm.__aenter__()

    async def _unsubscribe(self) -> None:
        if self._subscription_cm is not None:
            cm, self._subscription_cm, self._subscription = self._subscription_cm, None, None
            await cm.__aexit__(None, None, None)

    @property
    def subscription(self) -> Subscription | None:
        return self._subscription

    @property
    def account_id(self) -> int:
        assert self.account is not None
        return self.account.id

    # -- the selected mailbox ---------------------------------------------------------

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:  # pragma: no cover - dispatch checks the state
            raise Bad("No mailbox selected")
        return self.selected

    def uids_of(self, numbers: SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a command's set names: RFC 5182 "$" is the saved search result;
        a message sequence number beyond the mailbox is BAD (RFC 9051 §6.4.8 does not
        allow it, "*" excepted)."""
        selected = self.require_selected()
        if numbers.saved:
            saved = self.saved_uids or []
            return [u for u in saved if selected.index_of(u) is not None]
        if not uid and not selected.valid_sequence(numbers):
            raise Bad("Invalid message sequence number (beyond the last message)")
        return selected.resolve(numbers, uid=uid)

    def deselect(self) -> None:
        self.saved_uids = None
        self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def sync(self, *, allow_expunge: bool, force: bool = False) -> None:
        """Bring the view up to date from the journal and tell the client: FETCH for
        changed flags, EXPUNGE/VANISHED when allowed, EXISTS for new messages."""
        selected = self.selected
        subscription = self._subscription
        if selected is None:
            return
        if force or (subscription is not None and subscription.pending()):
            if subscription is not None and subscription.pending():
                await subscription.wait()
            try:
                changes = await self.messages.changes(
                    self.account_id, selected.mailbox_id, selected.modseq
                )
            except CannotCalculateChanges:
                await self._end_session("The mailbox changed too much; select it again")
                return
            if changes.mailbox is None:
                await self._end_session("The selected mailbox was deleted")
                return
            if self.selected is not selected:
                return  # the client selected another mailbox meanwhile
            selected.name = changes.mailbox.name  # renamed by another session
            applied = selected.apply(changes.changed, changes.destroyed, changes.modseq)
            selected.highest_modseq = max(selected.highest_modseq, changes.mailbox.highest_modseq)
            for view in applied.flag_changes:
                self.write_flags(view.uid, view.keywords)
            if allow_expunge and selected.pending_expunge:
                self.announce_expunged(sorted(selected.pending_expunge))
            if applied.new_messages:
                self.write(self.encoder.exists(len(selected)))
        elif allow_expunge and selected.pending_expunge:
            self.announce_expunged(sorted(selected.pending_expunge))

    async def _end_session(self, text: str) -> None:
        self.write(self.encoder.bye(text))
        await self.connection.drain()
        self.deselect()
        self.state = State.LOGOUT

    def write_flags(self, uid: int, keywords: str | None) -> None:
        """An untagged FETCH with FLAGS (unless ``keywords`` is None), UID, and MODSEQ
        under CONDSTORE."""
        selected = self.require_selected()
        i = selected.index_of(uid)
        if i is None:
            return
        response = self.encoder.fetch(i + 1)
        if keywords is not None:
            response.flags(self.flags_of(keywords))
        response.uid(uid)
        if self.condstore:
            response.modseq(selected.modseqs[i])
        self.write(response.to_bytes())

    def announce_expunged(self, uids: list[int]) -> None:
        """RFC 9051 §7.5.1 EXPUNGE (descending, each valid after the previous) or
        RFC 7162 §3.2.10 VANISHED once QRESYNC is enabled."""
        selected = self.require_selected()
        present = [u for u in uids if selected.index_of(u) is not None]
        numbers = selected.remove(present)
        if not present:
            return
        if self.qresync:
            self.write(self.encoder.vanished(selected.uid_set(present)))
        else:
            for number in numbers:
                self.write(self.encoder.expunge(number))
