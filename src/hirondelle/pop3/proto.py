"""POP3 on the wire, without I/O: command lines to typed commands, responses to bytes.

RFCs: 1939 (POP3: §3 commands and responses, §4-§6 the commands, §3 byte-stuffing of
multi-line responses), 2449 (CAPA, response codes, line lengths §4), 3206 (SYS/AUTH
response codes), 2595 §4 (STLS), 5034 (SASL AUTH, §4 the exchange; PLAIN is RFC 4616).

Deliberate deviations, all on the lenient side:

- Keywords and arguments may be separated by more than one space (RFC 1939 §3 says one).
- Arguments are not limited to RFC 2449 §4's 40 characters (a USER address or an AUTH
  initial response is often longer); the 255-octet line limit bounds them.
- PASS takes the rest of the line as the password, spaces included (RFC 1939 §7 allows
  it), decoded as UTF-8.

:class:`MessageEncoder` turns a stored message (as received: line endings may be bare LF)
into the body of a RETR or TOP response: CRLF line endings, a final CRLF, dot-stuffing.
:func:`pop3_size` counts, from the same chunks, the octets the client will receive once
the dots are removed, so LIST announces exactly what RETR sends.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

# RFC 2449 §4: a command line is at most 255 octets including the keyword and CRLF.
MAX_COMMAND_LINE = 255
# RFC 2449 §4 limits arguments to 40 characters; a SASL response line (RFC 5034 §4) is
# not a command and may be longer: a PLAIN response with a 255-octet user name and a
# long password in base64 still fits here.
MAX_SASL_LINE = 4096
# Message numbers are at most this many digits (more would be beyond any maildrop).
_MAX_NUMBER_DIGITS = 9

_KEYWORD = re.compile(rb"[A-Za-z]{3,4}")
_PRINTABLE = re.compile(rb"[\x21-\x7e]+")


class CommandError(Exception):
    """A line that is not a valid command; ``message`` is the -ERR text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """RFC 1939 §7 USER name."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """RFC 1939 §7 PASS string."""

    secret: str


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 5034 §4 AUTH mechanism [initial-response]; no mechanism lists them (the
    RFC 1734 form that Outlook still sends)."""

    mechanism: str | None
    initial_response: str | None = None


@dataclass(frozen=True, slots=True)
class Apop:
    """RFC 1939 §7 APOP: recognised only to be refused (no shared secret is stored)."""


@dataclass(frozen=True, slots=True)
class Capa:
    """RFC 2449 §5 CAPA."""


@dataclass(frozen=True, slots=True)
class Stls:
    """RFC 2595 §4 STLS."""


@dataclass(frozen=True, slots=True)
class Quit:
    """RFC 1939 §5 and §6 QUIT."""


@dataclass(frozen=True, slots=True)
class Stat:
    """RFC 1939 §5 STAT."""


@dataclass(frozen=True, slots=True)
class List:
    """RFC 1939 §5 LIST [msg]."""

    number: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RFC 1939 §5 RETR msg."""

    number: int


@dataclass(frozen=True, slots=True)
class Dele:
    """RFC 1939 §5 DELE msg."""

    number: int


@dataclass(frozen=True, slots=True)
class Noop:
    """RFC 1939 §5 NOOP."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RFC 1939 §5 RSET."""


@dataclass(frozen=True, slots=True)
class Top:
    """RFC 1939 §7 TOP msg n."""

    number: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """RFC 1939 §7 UIDL [msg]."""

    number: int | None = None


Command = (
    (User | Pass | Auth | Apop | Capa | Stls | Quit | Stat | List | Retr | Dele | Noop | Rset)
    | Top
    | Uidl
)


def _message_number(text: str) -> int:
    """RFC 1939 §3: message numbers are decimal, starting at 1."""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_NUMBER_DIGITS:
        raise CommandError("invalid message number")
    number = int(text)
    if number < 1:
        raise CommandError("invalid message number")
    return number


def _line_count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise CommandError("invalid number of lines")
    # Any count beyond the message means "the whole body".
    return min(int(text), 10**18)


def _arguments(rest: bytes) -> list[str]:
    words = rest.split()
    for word in words:
        if not _PRINTABLE.fullmatch(word):
            raise CommandError("arguments must be printable ASCII")
    return [word.decode("ascii") for word in words]


def _expect(arguments: list[str], least: int, most: int, usage: str) -> None:
    if not least <= len(arguments) <= most:
        raise CommandError(f"syntax: {usage}")


def parse_command(line: bytes) -> Command:
    """One command line (CRLF or LF already removed) to a typed command.

    Raises :class:`CommandError` with a precise message for anything else.
    """
    if len(line) + 2 > MAX_COMMAND_LINE:
        raise CommandError(f"line too long ({MAX_COMMAND_LINE} octets at most)")
    keyword, _, rest = line.partition(b" ")
    if not _KEYWORD.fullmatch(keyword):
        raise CommandError("unknown command" if keyword else "empty command")
    verb = keyword.decode("ascii").upper()
    if verb == "PASS":
        # RFC 1939 §7: the password is everything after "PASS ", spaces included.
        if not rest:
            raise CommandError("syntax: PASS password")
        try:
            secret = rest.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("password is not valid UTF-8") from None
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
            raise CommandError("password contains control characters")
        return Pass(secret)
    arguments = _arguments(rest)
    match verb:
        case "USER":
            _expect(arguments, 1, 1, "USER name")
            return User(arguments[0])
        case "AUTH":
            _expect(arguments, 0, 2, "AUTH mechanism [initial-response]")
            if not arguments:
                return Auth(None)
            return Auth(arguments[0].upper(), arguments[1] if len(arguments) > 1 else None)
        case "APOP":
            return Apop()
        case "CAPA" | "STLS" | "QUIT" | "STAT" | "NOOP" | "RSET":
            _expect(arguments, 0, 0, verb)
            return _SIMPLE[verb]
        case "LIST" | "UIDL":
            _expect(arguments, 0, 1, f"{verb} [msg]")
            number = _message_number(arguments[0]) if arguments else None
            return List(number) if verb == "LIST" else Uidl(number)
        case "RETR" | "DELE":
            _expect(arguments, 1, 1, f"{verb} msg")
            number = _message_number(arguments[0])
            return Retr(number) if verb == "RETR" else Dele(number)
        case "TOP":
            _expect(arguments, 2, 2, "TOP msg n")
            return Top(_message_number(arguments[0]), _line_count(arguments[1]))
    raise CommandError("unknown command")


_SIMPLE: dict[str, Command] = {
    "CAPA": Capa(),
    "STLS": Stls(),
    "QUIT": Quit(),
    "STAT": Stat(),
    "NOOP": Noop(),
    "RSET": Rset(),
}


# -- SASL ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    authzid: str
    authcid: str
    password: str


def decode_sasl_response(text: str) -> bytes:
    """RFC 5034 §4: a client response is BASE64; "=" is an empty initial response."""
    if text == "=":
        return b""
    if not text or len(text) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise CommandError("malformed base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CommandError("malformed base64") from None


def decode_plain(message: bytes) -> PlainCredentials:
    """RFC 4616 §2: [authzid] NUL authcid NUL passwd, UTF-8."""
    parts = message.split(b"\x00")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise CommandError("malformed PLAIN response")
    try:
        authzid, authcid, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise CommandError("PLAIN response is not valid UTF-8") from None
    return PlainCredentials(authzid, authcid, password)


# -- responses -------------------------------------------------------------------


def _text(text: str) -> bytes:
    """A status text on one line: no CR, LF or NUL can reach the wire."""
    cleaned = "".join(c if c >= " " and c != "\x7f" else " " for c in text)
    return cleaned.encode("utf-8")


def ok(text: str = "") -> bytes:
    """RFC 1939 §3: "+OK" and an optional text."""
    return b"+OK " + _text(text) + b"\r\n" if text else b"+OK\r\n"


def err(text: str, *, code: str | None = None) -> bytes:
    """RFC 1939 §3 "-ERR"; RFC 2449 §8 an extended response code in brackets."""
    prefix = b"-ERR [" + code.encode("ascii") + b"] " if code else b"-ERR "
    return prefix + _text(text) + b"\r\n"


def continuation(challenge: bytes = b"") -> bytes:
    """RFC 5034 §4: "+ " and the BASE64 challenge (empty for PLAIN)."""
    return b"+ " + base64.b64encode(challenge) + b"\r\n"


def multiline(first: bytes, lines: Iterable[str]) -> bytes:
    """A status line then RFC 1939 §3 multi-line data: each line dot-stuffed, ended by
    a line holding one dot."""
    out = [first]
    for line in lines:
        data = _text(line)
        out.append(b"." + data + b"\r\n" if data.startswith(b".") else data + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


TERMINATOR = b".\r\n"


# -- message bodies ---------------------------------------------------------------


class _LineEndings:
    """Bare LF to CRLF over a stream of chunks (lone CRs stay as they are, as in
    :func:`hirondelle.mime.canonicalize_line_endings`). A CR at the end of a chunk is held
    back until the next chunk tells whether an LF follows it."""

    def __init__(self) -> None:
        self._held_cr = False
        self.last = b""  # the last two octets emitted, to know whether a CRLF ends them

    def feed(self, chunk: bytes) -> bytes:
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._held_cr = True
        out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self._remember(out)
        return out

    def finish(self) -> bytes:
        """What is still held, plus the CRLF that ends the last line if it lacks one
        (RFC 5322 §2.1: every line ends with CRLF)."""
        out = b"\r" if self._held_cr else b""
        self._held_cr = False
        self._remember(out)
        if self.last and not self.last.endswith(b"\r\n"):
            out += b"\r\n"
            self._remember(b"\r\n")
        return out

    def _remember(self, out: bytes) -> None:
        if out:
            self.last = (self.last + out)[-2:]


def pop3_size(chunks: Iterable[bytes]) -> int:
    """The octets RETR sends for a message stored as ``chunks`` (before dot-stuffing):
    its length, plus one per bare LF (each becomes CRLF), plus two when the last line
    has no line ending (one is added)."""
    endings = _LineEndings()
    return sum(len(endings.feed(chunk)) for chunk in chunks) + len(endings.finish())


class SizeCounter:
    """:func:`pop3_size` fed chunk by chunk (for chunks that arrive asynchronously)."""

    def __init__(self) -> None:
        self._endings = _LineEndings()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(self._endings.feed(chunk))

    def finish(self) -> int:
        self.size += len(self._endings.finish())
        return self.size


class MessageEncoder:
    """A stored message to the data of a RETR or TOP response, chunk by chunk.

    RFC 1939 §3: lines end with CRLF and a line that starts with "." gets one more
    "."; :meth:`finish` adds the terminating ".CRLF". With ``body_lines`` set (TOP,
    RFC 1939 §7), only the header, the blank line and that many body lines are sent:
    :attr:`done` turns true once nothing more will be emitted, so the caller can stop
    reading the blob.
    """

    def __init__(self, *, body_lines: int | None = None) -> None:
        self._endings = _LineEndings()
        self._at_line_start = True
        self._body_lines = body_lines
        self._in_header = True
        self._line_length = 0  # octets of the current line so far (TOP only)
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            return b""
        data = self._endings.feed(chunk)
        if self._body_lines is not None:
            data = self._limit(data)
        return self._stuff(data)

    def finish(self) -> bytes:
        tail = b"" if self.done else self._stuff(self._endings.finish())
        self.done = True
        return tail + TERMINATOR

    def _stuff(self, data: bytes) -> bytes:
        if not data:
            return b""
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if self._at_line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        self._at_line_start = data.endswith(b"\n")
        return stuffed

    def _limit(self, data: bytes) -> bytes:
        """Keep the header, the blank line and the first ``body_lines`` lines."""
        assert self._body_lines is not None
        position = 0
        while position < len(data):
            if not self._in_header and self._body_lines <= 0:
                self.done = True
                return data[:position]
            newline = data.find(b"\n", position)
            if newline < 0:
                self._line_length += len(data) - position
                return data
            length = self._line_length + newline + 1 - position
            self._line_length = 0
            position = newline + 1
            if self._in_header:
                if length == 2:  # the empty line (CRLF) that ends the header
                    self._in_header = False
            else:
                self._body_lines -= 1
        if not self._in_header and self._body_lines <= 0:
            self.done = True
        return data


def unstuff(data: bytes) -> bytes:
    """The inverse of :class:`MessageEncoder` for tests and clients: the message octets
    of a multi-line response (terminator included in ``data``)."""
    if not data.endswith(TERMINATOR):
        raise ValueError("no terminator")
    body = data[: -len(TERMINATOR)]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
