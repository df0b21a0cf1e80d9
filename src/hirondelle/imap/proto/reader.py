"""The lexical rules of IMAP commands, read from an assembled command.

RFC 9051 §4 (data formats) and §9 (formal syntax): atom, number, number64, nz-number,
quoted, literal, astring, nstring, string, flag, flag-list, date, date-time, mailbox,
sequence-set; RFC 3516 §4.3 (literal8 "~{n}"); RFC 7888 §3 (non-synchronising "{n+}");
RFC 6855 §3 and RFC 9051 §4.3 (UTF-8 in quoted strings).

A command arrives as its lines (CRLF removed, each ending in a literal announcement
except the last) and the literals between them.  :class:`Reader` walks them with a
cursor; when it needs a literal that has not arrived yet it raises :class:`Incomplete`,
which lets the framer check a command's prefix before it asks the client for the
literal (RFC 9051 §7.5: a command is refused before its literal is sent).

Deliberate leniency: UTF-8 is accepted in quoted strings whether or not UTF8=ACCEPT is
enabled (RFC 3501 allowed only 7-bit), because search strings and passwords from real
clients carry it.  Mailbox names remain strict (see mailbox_name.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from . import mailbox_name
from .sequence_set import SequenceSet

__all__ = [
    "Incomplete",
    "Reader",
    "StreamedLiteral",
    "SyntaxFault",
]

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials.
_ATOM_SPECIALS = b'(){ %*"\\]'
_ATOM_CLASS = b"".join(re.escape(bytes([c])) for c in range(0x21, 0x7F) if c not in _ATOM_SPECIALS)
ATOM_RE = re.compile(b"[" + _ATOM_CLASS + b"]+")
#: ASTRING-CHAR = ATOM-CHAR / resp-specials
ASTRING_RE = re.compile(b"[" + _ATOM_CLASS + rb"\]]+")
#: list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHARS_RE = re.compile(b"[" + _ATOM_CLASS + rb"%*\]]+")
#: tag = 1*<any ASTRING-CHAR except "+">
TAG_RE = re.compile(b"[" + _ATOM_CLASS.replace(b"\\+", b"") + rb"\]]+")
_QUOTED_RE = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}")
_NUMBER_RE = re.compile(rb"\d+")
_DATE_RE = re.compile(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_DATE_TIME_RE = re.compile(
    rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)
_UNESCAPE_RE = re.compile(rb"\\(.)")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
MONTHS = {
    b"JAN": 1, b"FEB": 2, b"MAR": 3, b"APR": 4, b"MAY": 5, b"JUN": 6,
    b"JUL": 7, b"AUG": 8, b"SEP": 9, b"OCT": 10, b"NOV": 11, b"DEC": 12,
}  # fmt: skip
MAX_NUMBER64 = (1 << 63) - 1
MAX_NUMBER = (1 << 32) - 1

SYSTEM_FLAGS = {
    "\\ANSWERED": "\\Answered",
    "\\FLAGGED": "\\Flagged",
    "\\DELETED": "\\Deleted",
    "\\SEEN": "\\Seen",
    "\\DRAFT": "\\Draft",
}


class SyntaxFault(Exception):
    """A syntax error; the message is fit for a BAD response."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Incomplete(Exception):
    """The command needs literal number ``index`` that has not arrived."""

    def __init__(self, purpose: str, *, binary: bool) -> None:
        super().__init__(purpose)
        self.purpose = purpose
        self.binary = binary


@dataclass(frozen=True, slots=True)
class StreamedLiteral:
    """A message literal the parser did not keep: its bytes went out as LiteralChunk
    events between LiteralStart(index=...) and LiteralEnd (see parser.py)."""

    index: int
    size: int
    binary: bool


Literal = bytes | StreamedLiteral


class Reader:
    """A cursor over one command's lines and literals (RFC 9051 §9 lexical rules)."""

    __slots__ = (
        "_index",
        "_lines",
        "_literals",
        "_used",
        "last_literal_binary",
        "line",
        "pos",
        "utf8_names",
    )

    def __init__(
        self, lines: list[bytes], literals: list[Literal], *, utf8_names: bool = False
    ) -> None:
        self._lines = lines
        self._literals = literals
        self._index = 0
        self._used = 0
        self.line = lines[0]
        self.pos = 0
        self.utf8_names = utf8_names
        #: Whether the literal read last was a literal8 (RFC 3516 "~{n}").
        self.last_literal_binary = False

    # -- cursor -----------------------------------------------------------------------

    def at_end(self) -> bool:
        """True at the end of the last line."""
        return self.pos >= len(self.line) and self._index == len(self._lines) - 1

    def peek(self) -> int:
        """The next octet, or -1 at the end of a line."""
        return self.line[self.pos] if self.pos < len(self.line) else -1

    def peek_is(self, char: bytes) -> bool:
        """Whether the next octets are ``char``."""
        return self.line.startswith(char, self.pos)

    def context(self) -> str:
        """A short excerpt of what follows, for error messages."""
        rest = self.line[self.pos : self.pos + 24]
        return rest.decode("utf-8", "replace") if rest else "end of line"

    def fail(self, message: str, code: str | None = None) -> SyntaxFault:
        """Build the error to raise."""
        return SyntaxFault(message, code)

    def expect(self, char: bytes, what: str | None = None) -> None:
        """Consume ``char`` exactly."""
        if not self.line.startswith(char, self.pos):
            if char == b" ":
                raise self.fail(f"Missing space before {what}" if what else "Expected space")
            raise self.fail(f"Expected {char.decode()!r} {what or ''}".rstrip())
        self.pos += len(char)

    def sp(self, what: str | None = None) -> None:
        """RFC 9051 §9: SP, exactly one space."""
        if self.pos < len(self.line) and self.line[self.pos] == 0x20:
            self.pos += 1
            return
        if self.pos >= len(self.line) and self._index == len(self._lines) - 1:
            raise self.fail(f"Missing argument: {what}" if what else "Missing argument")
        raise self.fail(f"Expected space before {what}" if what else "Expected space")

    def try_sp(self) -> bool:
        """Consume one space if present."""
        if self.pos < len(self.line) and self.line[self.pos] == 0x20:
            self.pos += 1
            return True
        return False

    def end(self) -> None:
        """The command must end here (RFC 9051 §9: command ends with CRLF)."""
        if not self.at_end():
            raise self.fail(f"Unexpected characters at end of command: {self.context()!r}")

    def rest_of_line(self) -> bytes:
        """All that remains of the current line."""
        rest = self.line[self.pos :]
        self.pos = len(self.line)
        return rest

    # -- atoms and numbers ------------------------------------------------------------

    def atom(self, what: str = "atom") -> str:
        """RFC 9051 §9: atom = 1*ATOM-CHAR."""
        match = ATOM_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Expected {what}, got {self.context()!r}")
        self.pos = match.end()
        return match.group().decode("ascii")

    def keyword(self) -> str:
        """An atom, upper-cased (keywords of the grammar are case-insensitive)."""
        return self.atom("keyword").upper()

    def number(self, what: str = "number", *, limit: int = MAX_NUMBER) -> int:
        """RFC 9051 §9: number (32-bit unsigned) or number64 with ``limit``."""
        match = _NUMBER_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Expected {what}, got {self.context()!r}")
        digits = match.group()
        if len(digits) > 20 or int(digits) > limit:
            raise self.fail(f"{what.capitalize()} out of range: {digits.decode()}")
        self.pos = match.end()
        return int(digits)

    def nz_number(self, what: str = "number", *, limit: int = MAX_NUMBER) -> int:
        """RFC 9051 §9: nz-number / nz-number64."""
        value = self.number(what, limit=limit)
        if value == 0:
            raise self.fail(f"{what.capitalize()} must not be zero")
        return value

    def number64(self, what: str = "number") -> int:
        """RFC 9051 §9: number64 (63-bit)."""
        return self.number(what, limit=MAX_NUMBER64)

    def sequence_set(self, *, allow_saved: bool = True) -> SequenceSet:
        """RFC 9051 §9 sequence-set; RFC 5182 "$"."""
        start = self.pos
        line = self.line
        end = start
        length = len(line)
        while end < length and line[end] in b"0123456789:,*$":
            end += 1
        if end == start:
            raise self.fail(f"Expected sequence set, got {self.context()!r}")
        raw = line[start:end]
        if raw == b"$" and not allow_saved:
            raise self.fail("$ is not allowed here")
        try:
            result = SequenceSet.parse(raw)
        except ValueError as exc:
            raise self.fail(str(exc)) from exc
        self.pos = end
        return result

    # -- strings ----------------------------------------------------------------------

    def literal(self, purpose: str = "string", *, allow_binary: bool = False) -> Literal:
        """RFC 9051 §4.3 literal, RFC 7888 "{n+}", RFC 3516 literal8 "~{n}"."""
        match = _LITERAL_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Expected literal, got {self.context()!r}")
        if match.end() != len(self.line):
            raise self.fail("A literal announcement must end the line")
        binary = bool(match.group(1))
        if binary and not allow_binary:
            raise self.fail("literal8 (~{n}) is not allowed here")
        if self._used >= len(self._literals):
            raise Incomplete(purpose, binary=binary)
        value = self._literals[self._used]
        self.last_literal_binary = binary
        self._used += 1
        self._index += 1
        self.line = self._lines[self._index]
        self.pos = 0
        if not binary and isinstance(value, bytes) and b"\x00" in value:
            # RFC 9051 §4.3: a literal is CHAR8, NUL is only allowed in literal8.
            raise self.fail("NUL octet in a literal")
        return value

    def quoted(self) -> bytes:
        """RFC 9051 §4.3: quoted string with \\ and \" escapes."""
        match = _QUOTED_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Invalid quoted string at {self.context()!r}")
        self.pos = match.end()
        body = match.group(1)
        if b"\\" in body:
            body = _UNESCAPE_RE.sub(rb"\1", body)
        return body

    def string(self, what: str = "string") -> bytes:
        """RFC 9051 §9: string = quoted / literal."""
        char = self.peek()
        if char == 0x22:
            return self.quoted()
        if char == 0x7B:
            value = self.literal()
            if not isinstance(value, bytes):  # only message literals are streamed
                raise self.fail(f"Expected {what}, got a message literal")
            return value
        raise self.fail(f"Expected {what} (quoted string or literal), got {self.context()!r}")

    def astring(self, what: str = "string") -> bytes:
        """RFC 9051 §9: astring = 1*ASTRING-CHAR / string."""
        char = self.peek()
        if char == 0x22 or char == 0x7B:
            return self.string(what)
        match = ASTRING_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Expected {what}, got {self.context()!r}")
        self.pos = match.end()
        return match.group()

    def nstring(self, what: str = "string") -> bytes | None:
        """RFC 9051 §9: nstring = string / nil."""
        if self.line[self.pos : self.pos + 3].upper() == b"NIL":
            after = self.pos + 3
            if after == len(self.line) or not ATOM_RE.match(self.line, after):
                self.pos = after
                return None
        return self.string(what)

    def text(self, raw: bytes, what: str) -> str:
        """Decode a string argument as UTF-8 (RFC 9051 §4.3, RFC 6855 §3)."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what.capitalize()} is not valid UTF-8") from exc

    def astring_text(self, what: str = "string") -> str:
        """An astring decoded as UTF-8."""
        return self.text(self.astring(what), what)

    def nil(self) -> bool:
        """Consume NIL if it is next."""
        if self.line[self.pos : self.pos + 3].upper() == b"NIL":
            after = self.pos + 3
            if after == len(self.line) or not ATOM_RE.match(self.line, after):
                self.pos = after
                return True
        return False

    # -- mailbox names ----------------------------------------------------------------

    def mailbox(self, what: str = "mailbox name") -> str:
        """RFC 9051 §9: mailbox = "INBOX" / astring; §5.1.3 modified UTF-7."""
        return self.decode_mailbox(self.astring(what), what)

    def decode_mailbox(self, raw: bytes, what: str = "mailbox name") -> str:
        """Mailbox name bytes to text: UTF-8 once enabled (RFC 6855 §3), else mUTF-7."""
        if self.utf8_names:
            name = self.text(raw, what)
            if _CONTROL_RE.search(name):
                # RFC 6855 §3 / RFC 5198: Net-Unicode, no control characters.
                raise self.fail(f"{what.capitalize()} contains a control character")
        else:
            try:
                name = mailbox_name.decode(raw.decode("ascii"))
            except (UnicodeDecodeError, mailbox_name.InvalidMailboxName) as exc:
                raise self.fail(f"{what.capitalize()} is not valid modified UTF-7") from exc
        return mailbox_name.normalize_inbox(name)

    def list_mailbox(self) -> str:
        """RFC 9051 §9: list-mailbox = 1*list-char / string."""
        char = self.peek()
        if char == 0x22 or char == 0x7B:
            raw = self.string("mailbox pattern")
        else:
            match = LIST_CHARS_RE.match(self.line, self.pos)
            if not match:
                raise self.fail(f"Expected mailbox pattern, got {self.context()!r}")
            self.pos = match.end()
            raw = match.group()
        return self.decode_mailbox(raw, "mailbox pattern")

    # -- flags ------------------------------------------------------------------------

    def flag(self, *, storable: bool = True) -> str:
        """RFC 9051 §9: flag = "\\Answered" / ... / flag-keyword / flag-extension.

        System flags come back in their canonical case.  With ``storable``,
        RFC 3501 §2.3.2 "\\Recent" and unknown system flags are refused.
        """
        if self.peek() == 0x5C:  # backslash
            self.pos += 1
            name = "\\" + self.atom("flag")
            canonical = SYSTEM_FLAGS.get(name.upper())
            if canonical:
                return canonical
            if name.upper() == "\\RECENT":
                if storable:
                    raise self.fail("\\Recent flag cannot be set by the client")
                return "\\Recent"
            if storable:
                raise self.fail(f"Invalid system flag {name}")
            return name
        return self.atom("flag")

    def flag_list(self, *, storable: bool = True) -> tuple[str, ...]:
        """RFC 9051 §9: flag-list = "(" [flag *(SP flag)] ")"."""
        self.expect(b"(", "to open the flag list")
        flags: list[str] = []
        if self.peek() != 0x29:
            flags.append(self.flag(storable=storable))
            while self.try_sp():
                flags.append(self.flag(storable=storable))
        self.expect(b")", "to close the flag list")
        return tuple(dict.fromkeys(flags))

    # -- dates ------------------------------------------------------------------------

    def date(self) -> date:
        """RFC 9051 §9: date = date-text / DQUOTE date-text DQUOTE."""
        quoted = self.peek() == 0x22
        if quoted:
            self.pos += 1
        match = _DATE_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Invalid date {self.context()!r}")
        self.pos = match.end()
        if quoted:
            self.expect(b'"', "to close the date")
        day, month_name, year = match.groups()
        month = MONTHS.get(month_name.upper())
        if month is None:
            raise self.fail(f"Invalid month in date {match.group().decode()!r}")
        try:
            return date(int(year), month, int(day))
        except ValueError as exc:
            raise self.fail(f"Invalid date {match.group().decode()!r}") from exc

    def date_time(self) -> datetime:
        """RFC 9051 §9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
        SP time SP zone DQUOTE."""
        match = _DATE_TIME_RE.match(self.line, self.pos)
        if not match:
            raise self.fail(f"Invalid date-time {self.context()!r}")
        self.pos = match.end()
        day, month_name, year, hour, minute, second, sign, zh, zm = match.groups()
        month = MONTHS.get(month_name.upper())
        if month is None:
            raise self.fail(f"Invalid month in date-time {match.group().decode()!r}")
        offset = timedelta(hours=int(zh), minutes=int(zm))
        if int(zm) >= 60 or offset >= timedelta(hours=24):
            raise self.fail("Invalid time zone in date-time")
        if sign == b"-":
            offset = -offset
        try:
            return datetime(
                int(year),
                month,
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=timezone(offset) if offset else UTC,
            )
        except ValueError as exc:
            raise self.fail(f"Invalid date-time {match.group().decode()!r}") from exc
