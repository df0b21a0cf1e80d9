"""Incremental, sans-I/O IMAP command parser: bytes in, events out.

RFC 9051 §2.2 (commands are lines ending in CRLF; a literal's octets follow the line
that announces it), §4.3 (literals; "+" continuation before a synchronising literal;
a command refused before its literal is sent), §6.2.2 (AUTHENTICATE continuation
lines, "*" to cancel), §6.3.13 (IDLE ended by "DONE"), §7.5 (continuation requests);
RFC 7888 (LITERAL+ "{n+}" needs no continuation; LITERAL- allows it only up to 4096
octets); RFC 3516 §4.3 (literal8 "~{n}"); RFC 6855 §3 (UTF-8 once UTF8=ACCEPT).

Events (returned by :meth:`CommandParser.feed`, in order):

* a :class:`~hirondelle.imap.proto.commands.Command` subclass, fully parsed;
* :class:`NeedContinuation` -- send "+ Ready" so the client sends its literal;
* :class:`ParseError` -- answer BAD (tagged if ``tag``, else "* BAD"); the parser has
  already resynchronised: the rest of the line is skipped, and so is a literal the bad
  line announced as non-synchronising (its octets never become commands);
* :class:`LiteralTooLarge` -- answer "NO [TOOBIG]" (APPEND) or BAD [TOOBIG]; a
  synchronising literal is simply never asked for. A non-synchronising one (RFC 7888
  §3: the client sends it without waiting) is read and discarded when it is at most
  ``DISCARD_FACTOR`` times the limit, so the session goes on at the next command; a
  bigger one has ``close`` set: after the tagged answer the server says BYE and closes
  the connection (RFC 7888 §4 offers both, and reading gigabytes only to throw them
  away would let one client hold a connection and the bandwidth for nothing);
* :class:`LiteralStart`, :class:`LiteralChunk`, :class:`LiteralEnd` -- literal streaming
  (below);
* :class:`IdleDone`, :class:`SaslResponse` -- in the IDLE and AUTHENTICATE modes.

Literal streaming.  An APPEND message literal larger than ``literal_sink_threshold``
(or one that would take the command's buffered literals past it) is not kept: the
parser emits ``LiteralStart(tag, index, size, binary)``, then ``LiteralChunk(data)``
events as the octets arrive (no per-byte work: slices of the receive buffer), then
``LiteralEnd(index)``.  The finished :class:`~.commands.Append` carries a
:class:`~.reader.StreamedLiteral` with the same ``index`` in place of the bytes, so the
server writes chunks to a temporary blob and pairs it with the command by index.
If the command ends in a ParseError or LiteralTooLarge instead, the server discards
what it streamed for that command.  Memory per connection therefore stays below about
``max_line + 2 * literal_sink_threshold``.

Pausing.  After a command that changes how the following octets must be read -- IDLE,
AUTHENTICATE, STARTTLS, COMPRESS, ENABLE -- the parser stops (that command is the last
event of the batch) and keeps the rest of the input until the server calls one of
:meth:`~CommandParser.expect_idle_done`, :meth:`~CommandParser.expect_sasl_response`,
:meth:`~CommandParser.resume` or :meth:`~CommandParser.take_buffer` (after STARTTLS,
buffered plaintext must be discarded: RFC 9051 §6.2.1; after COMPRESS it must be
inflated and fed again: RFC 4978 §3), then calls ``feed(b"")`` for what is buffered.

Deliberate leniencies: a bare LF ends a line like CRLF; empty lines are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from . import commands as c
from .grammar import COMMAND_GRAMMAR, UID_GRAMMAR, decode_base64
from .reader import TAG_RE, Incomplete, Literal, Reader, StreamedLiteral, SyntaxFault

__all__ = [
    "CommandParser",
    "Event",
    "IdleDone",
    "LiteralChunk",
    "LiteralEnd",
    "LiteralStart",
    "LiteralTooLarge",
    "NeedContinuation",
    "ParseError",
    "SaslResponse",
    "StreamedLiteral",
]


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """RFC 9051 §4.3 / §7.5: send a continuation request ("+ Ready") now."""

    tag: str | None


@dataclass(frozen=True, slots=True)
class ParseError:
    """A syntax error: answer BAD (RFC 9051 §7.1.3) with ``message``.

    ``code`` is a response code to include (TOOBIG for over-long lines).  The one
    exception is ``BADCHARSET``: RFC 9051 §6.4.4 answers an unsupported search charset
    with ``NO [BADCHARSET (US-ASCII UTF-8)]``.
    """

    tag: str | None
    message: str
    code: str | None = None
    command: str | None = None


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal over the limit: answer NO [TOOBIG] (APPEND) or BAD [TOOBIG]; with
    ``close``, then BYE and close the connection (the literal is not read)."""

    tag: str | None
    size: int
    synchronizing: bool
    command: str | None = None
    close: bool = False


@dataclass(frozen=True, slots=True)
class LiteralStart:
    """A message literal is streamed: chunks follow, then LiteralEnd."""

    tag: str | None
    index: int
    size: int
    binary: bool


@dataclass(frozen=True, slots=True)
class LiteralChunk:
    """Octets of the literal being streamed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralEnd:
    """The streamed literal ``index`` is complete."""

    index: int


@dataclass(frozen=True, slots=True)
class IdleDone:
    """RFC 9051 §6.3.13: the client sent DONE."""


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """RFC 9051 §6.2.2: one client response line of an AUTHENTICATE exchange."""

    line: bytes

    @property
    def cancelled(self) -> bool:
        """The client answered "*" to abort the exchange."""
        return self.line == b"*"

    def decode(self) -> bytes:
        """The response's base64 decoded ("=" is an empty response, RFC 4959 §3).

        Raises SyntaxFault for invalid base64.
        """
        return decode_base64(self.line)


Event = (
    c.Command
    | NeedContinuation
    | ParseError
    | LiteralTooLarge
    | LiteralStart
    | LiteralChunk
    | LiteralEnd
    | IdleDone
    | SaslResponse
)


class _Mode(Enum):
    LINE = auto()
    LITERAL = auto()
    STREAM = auto()
    SKIP_LITERAL = auto()
    SKIP_LINE = auto()


class _LineMode(Enum):
    COMMAND = auto()
    IDLE = auto()
    SASL = auto()


_ANNOUNCEMENT_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}")
_HEAD_RE = re.compile(rb"[^ ]* ([A-Za-z]+)(?: ([A-Za-z]+))?")
_PAUSING = (c.Idle, c.Authenticate, c.StartTLS, c.Compress, c.Enable)
#: RFC 7888 §4: LITERAL- allows non-synchronising literals up to 4096 octets.
LITERAL_MINUS_MAX = 4096
#: An over-limit non-synchronising literal up to this many times the limit is read and
#: discarded (the session goes on); a bigger one closes the connection.
DISCARD_FACTOR = 2
#: Prefix checks re-read the command; beyond this many literals only the head is checked.
_PREFIX_CHECK_LITERALS = 64
_TAIL = 32


def _announcement(line: bytes) -> tuple[int, bool, bool] | None:
    """The literal announced at the end of ``line``: (size, synchronizing, binary)."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    if start > 0 and line[start - 1] == 0x7E:
        start -= 1
    match = _ANNOUNCEMENT_RE.fullmatch(line, start)
    if not match:
        return None
    return int(match.group(2)), not match.group(3), bool(match.group(1))


class CommandParser:
    """RFC 9051 §2.2 incremental command parser (see the module docstring).

    ``max_line`` bounds a line (and what is buffered while waiting for its end);
    ``max_command`` the text of one command outside its literals, and separately the
    sum of its literals other than APPEND messages; ``max_literal`` an APPEND message
    literal; each other literal is bounded by ``max_line``.
    ``literal_minus`` is set when the server advertises LITERAL- rather than LITERAL+.
    ``utf8_names`` (after ENABLE UTF8=ACCEPT or IMAP4rev2) reads mailbox names as
    UTF-8 instead of modified UTF-7.
    """

    # No per-instance __dict__: one of these per connection (2,000 idle sessions).
    __slots__ = (
        "_buf",
        "_buffered",
        "_line_mode",
        "_lines",
        "_literal_binary",
        "_literals",
        "_mode",
        "_name",
        "_paused",
        "_remaining",
        "_scan",
        "_tag",
        "_tail",
        "_text_size",
        "literal_minus",
        "literal_sink_threshold",
        "max_command",
        "max_line",
        "max_literal",
        "utf8_names",
    )

    def __init__(
        self,
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        literal_sink_threshold: int = 1 << 20,
        *,
        max_command: int | None = None,
        literal_minus: bool = False,
        utf8_names: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.literal_sink_threshold = literal_sink_threshold
        self.max_command = max_command if max_command is not None else 8 * max_line
        self.literal_minus = literal_minus
        self.utf8_names = utf8_names
        self._buf = bytearray()
        self._scan = 0
        self._mode = _Mode.LINE
        self._line_mode = _LineMode.COMMAND
        self._paused = False
        self._remaining = 0
        self._literal_binary = False
        self._tail = b""
        self._lines: list[bytes] = []
        self._literals: list[Literal] = []
        self._text_size = 0
        self._buffered = 0
        self._tag: str | None = None
        self._name: str | None = None

    # -- public API --------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        """True after a pausing command until the server resumes the parser."""
        return self._paused

    @property
    def pending(self) -> bool:
        """Whether ``feed(b"")`` may produce events from buffered input."""
        return not self._paused and bool(self._buf)

    @property
    def buffered(self) -> int:
        """Octets held in the receive buffer."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Add received octets; return the events they complete."""
        if data:
            self._buf += data
        events: list[Event] = []
        while not self._paused and self._step(events):
            pass
        return events

    def resume(self) -> None:
        """Continue reading commands after a pausing command."""
        self._paused = False
        self._line_mode = _LineMode.COMMAND

    def expect_idle_done(self) -> None:
        """RFC 9051 §6.3.13: the next line must be DONE (emitted as IdleDone)."""
        self._paused = False
        self._line_mode = _LineMode.IDLE

    def expect_sasl_response(self) -> None:
        """RFC 9051 §6.2.2: the next line is a SASL response (emitted as SaslResponse);
        the parser pauses again after it."""
        self._paused = False
        self._line_mode = _LineMode.SASL

    def take_buffer(self) -> bytes:
        """Remove and return the buffered, unparsed octets and resume at a command.

        After STARTTLS these must be discarded (RFC 9051 §6.2.1: no plaintext
        injection); after COMPRESS they are compressed data to inflate and feed.
        """
        data = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        self._mode = _Mode.LINE
        self._reset_command()
        self.resume()
        return data

    # -- framing -----------------------------------------------------------------------

    def _step(self, events: list[Event]) -> bool:
        mode = self._mode
        if mode is _Mode.LINE:
            return self._step_line(events)
        if mode is _Mode.LITERAL:
            return self._step_literal()
        if mode is _Mode.STREAM:
            return self._step_stream(events)
        if mode is _Mode.SKIP_LITERAL:
            return self._step_skip_literal()
        return self._step_skip_line()

    def _step_line(self, events: list[Event]) -> bool:
        buf = self._buf
        newline = buf.find(b"\n", self._scan)
        if newline < 0:
            self._scan = len(buf)
            if len(buf) > self.max_line + 1:
                self._line_too_long(events, bytes(buf[:80]))
                self._tail = bytes(buf[-_TAIL:])
                buf.clear()
                self._scan = 0
                self._mode = _Mode.SKIP_LINE
                return True
            return False
        end = newline - 1 if newline and buf[newline - 1] == 0x0D else newline
        line = bytes(buf[:end])
        del buf[: newline + 1]
        self._scan = 0
        if len(line) > self.max_line:
            self._line_too_long(events, line[:80])
            self._skip_after(line)
            return True
        if self._line_mode is _LineMode.IDLE:
            self._line_mode = _LineMode.COMMAND
            if line.upper() == b"DONE":
                events.append(IdleDone())
            else:
                events.append(ParseError(None, "Expected DONE to end IDLE"))
                self._skip_after(line)
            return True
        if self._line_mode is _LineMode.SASL:
            self._line_mode = _LineMode.COMMAND
            self._paused = True
            events.append(SaslResponse(line))
            return True
        self._command_line(line, events)
        return True

    def _line_too_long(self, events: list[Event], head: bytes) -> None:
        if self._line_mode is _LineMode.SASL:
            self._paused = True  # the server ends the AUTHENTICATE exchange
        self._line_mode = _LineMode.COMMAND
        tag = self._tag
        name = self._name
        if not self._lines:
            tag, name = _head(head)
        self._reset_command()
        events.append(ParseError(tag, "Line too long", "TOOBIG", name))

    def _skip_after(self, line: bytes) -> None:
        """Resynchronise after a rejected line: skip the literal it announced as
        non-synchronising, and the rest of the command after it."""
        announced = _announcement(line)
        if announced is not None and not announced[1]:
            self._remaining = announced[0]
            self._mode = _Mode.SKIP_LITERAL
        else:
            self._mode = _Mode.LINE

    def _command_line(self, line: bytes, events: list[Event]) -> None:
        if not self._lines:
            if not line:
                return  # an empty line between commands is ignored
            self._tag, self._name = _head(line)
        self._lines.append(line)
        self._text_size += len(line)
        if self._text_size > self.max_command:
            tag, name = self._tag, self._name
            self._reset_command()
            events.append(ParseError(tag, "Command too long", "TOOBIG", name))
            self._skip_after(line)
            return
        announced = _announcement(line)
        if announced is None:
            self._complete(events)
            return
        size, synchronizing, binary = announced
        purpose = self._check_prefix(events, synchronizing=synchronizing, size=size)
        if purpose is None:
            return
        message = purpose == "message"
        limit = self.max_literal if message else self.max_line
        too_big = size > limit or (
            self.literal_minus and not synchronizing and size > LITERAL_MINUS_MAX
        )
        if not message and self._buffered + size > self.max_command:
            # Many literals, each under max_line, must not add up to unbounded memory.
            too_big = True
        if too_big:
            tag, name = self._tag, self._name
            self._reset_command()
            if not synchronizing and size > DISCARD_FACTOR * limit:
                events.append(LiteralTooLarge(tag, size, synchronizing, name, close=True))
                self._paused = True  # the server closes the connection; nothing more
                return
            events.append(LiteralTooLarge(tag, size, synchronizing, name))
            self._skip_after(line)
            return
        if synchronizing:
            events.append(NeedContinuation(self._tag))
        self._remaining = size
        self._literal_binary = binary
        if message and (
            size > self.literal_sink_threshold
            or self._buffered + size > self.literal_sink_threshold
        ):
            index = len(self._literals)
            events.append(LiteralStart(self._tag, index, size, binary))
            self._mode = _Mode.STREAM
            if size == 0:  # pragma: no cover - a 0 literal never exceeds the threshold
                self._finish_stream(events)
        else:
            self._mode = _Mode.LITERAL

    def _check_prefix(self, events: list[Event], *, synchronizing: bool, size: int) -> str | None:
        """RFC 9051 §4.3: refuse a bad command before its literal is sent.

        Returns what the literal is for ("message" for APPEND data, else "string"),
        or None after emitting a ParseError.
        """
        if len(self._literals) >= _PREFIX_CHECK_LITERALS:
            return "message" if self._name == "APPEND" else "string"
        try:
            self._parse()
        except Incomplete as incomplete:
            return incomplete.purpose
        except SyntaxFault as fault:
            self._fail(events, fault, synchronizing=synchronizing, size=size)
            return None
        self._fail(
            events,
            SyntaxFault("Unexpected literal"),
            synchronizing=synchronizing,
            size=size,
        )
        return None

    def _fail(
        self, events: list[Event], fault: SyntaxFault, *, synchronizing: bool, size: int
    ) -> None:
        tag, name = self._tag, self._name
        self._reset_command()
        events.append(_error(tag, name, fault))
        if not synchronizing:
            self._remaining = size
            self._mode = _Mode.SKIP_LITERAL

    def _step_literal(self) -> bool:
        buf = self._buf
        size = self._remaining
        if len(buf) < size:
            return False
        self._literals.append(bytes(buf[:size]))
        del buf[:size]
        self._buffered += size
        self._mode = _Mode.LINE
        self._scan = 0
        return True

    def _step_stream(self, events: list[Event]) -> bool:
        buf = self._buf
        if not buf:
            return False
        take = min(len(buf), self._remaining)
        if take == len(buf):
            events.append(LiteralChunk(bytes(buf)))
            buf.clear()
        else:
            events.append(LiteralChunk(bytes(buf[:take])))
            del buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._finish_stream(events)
        return True

    def _finish_stream(self, events: list[Event]) -> None:
        index = len(self._literals)
        size = self._size_of_announced()
        self._literals.append(StreamedLiteral(index, size, self._literal_binary))
        events.append(LiteralEnd(index))
        self._mode = _Mode.LINE
        self._scan = 0

    def _size_of_announced(self) -> int:
        announced = _announcement(self._lines[-1])
        return announced[0] if announced else 0

    def _step_skip_literal(self) -> bool:
        buf = self._buf
        if not buf:
            return False
        take = min(len(buf), self._remaining)
        del buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._mode = _Mode.SKIP_LINE
            self._tail = b""
        return True

    def _step_skip_line(self) -> bool:
        buf = self._buf
        newline = buf.find(b"\n")
        if newline < 0:
            if not buf:
                return False
            self._tail = (self._tail + bytes(buf[-_TAIL:]))[-_TAIL:]
            buf.clear()
            return False
        end = newline - 1 if newline and buf[newline - 1] == 0x0D else newline
        if newline == 0 and self._tail.endswith(b"\r"):
            tail = self._tail[:-1]
        else:
            tail = (self._tail + bytes(buf[max(0, end - _TAIL) : end]))[-_TAIL:]
        del buf[: newline + 1]
        self._tail = b""
        self._scan = 0
        self._skip_after(tail)
        return True

    # -- parsing -----------------------------------------------------------------------

    def _complete(self, events: list[Event]) -> None:
        tag, name = self._tag, self._name
        try:
            command = self._parse()
        except Incomplete:  # pragma: no cover - every announced literal has arrived
            events.append(ParseError(tag, "Missing literal", None, name))
        except SyntaxFault as fault:
            events.append(_error(tag, name, fault))
        else:
            events.append(command)
            if isinstance(command, _PAUSING):
                self._paused = True
        self._reset_command()

    def _parse(self) -> c.Command:
        """RFC 9051 §9: command = tag SP (command-any / command-auth /
        command-nonauth / command-select) CRLF."""
        reader = Reader(self._lines, self._literals, utf8_names=self.utf8_names)
        match = TAG_RE.match(reader.line)
        if not match:
            raise SyntaxFault("Invalid tag")
        tag = match.group().decode("ascii")
        reader.pos = match.end()
        if reader.at_end():
            raise SyntaxFault("Missing command")
        reader.sp("command")
        name = reader.atom("command name").upper()
        if name == "UID":
            reader.sp("UID command")
            sub = reader.atom("command name").upper()
            grammar = UID_GRAMMAR.get(sub)
            if grammar is None:
                raise SyntaxFault(f"Unknown command UID {sub}")
        else:
            grammar = COMMAND_GRAMMAR.get(name)
            if grammar is None:
                raise SyntaxFault(f"Unknown command {name}")
        return grammar(reader, tag)

    def _reset_command(self) -> None:
        self._lines = []
        self._literals = []
        self._text_size = 0
        self._buffered = 0
        self._tag = None
        self._name = None


def _head(line: bytes) -> tuple[str | None, str | None]:
    """The tag and command name of a command's first line, if they look valid."""
    match = TAG_RE.match(line)
    if not match:
        return None, None
    tag = match.group().decode("ascii")
    head = _HEAD_RE.match(line, match.start())
    if not head or not line.startswith(b" ", match.end()):
        return tag, None
    name = head.group(1).decode("ascii").upper()
    if name == "UID" and head.group(2):
        name = "UID " + head.group(2).decode("ascii").upper()
    return tag, name


def _error(tag: str | None, name: str | None, fault: SyntaxFault) -> ParseError:
    """RFC 9051 §7.1.3 BAD text: name the command when it is known."""
    known = name is not None and (
        name in COMMAND_GRAMMAR or (name.startswith("UID ") and name[4:] in UID_GRAMMAR)
    )
    message = f"Error in IMAP command {name}: {fault.message}" if known else fault.message
    return ParseError(tag, message, fault.code, name if known else None)
