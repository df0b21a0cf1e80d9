"""IMAP server responses to bytes.

RFC 9051 §7 (server responses) and §9 (formal syntax): status responses OK NO BAD
PREAUTH BYE with response codes (§7.1), continuation requests (§7.5), and the data
responses CAPABILITY ENABLED LIST NAMESPACE STATUS ESEARCH FLAGS EXISTS EXPUNGE FETCH;
RFC 3501 §7 (LSUB, SEARCH, RECENT); RFC 4731 (ESEARCH); RFC 5256 §4 (SORT, THREAD);
RFC 5258 §3.5 and RFC 9051 §7.3.1 (CHILDINFO, OLDNAME extended data); RFC 7162 §3.1.2,
§3.2.10 (HIGHESTMODSEQ, MODIFIED, NOMODSEQ, VANISHED, SEARCH ... (MODSEQ n));
RFC 9208 §5 (QUOTA, QUOTAROOT); RFC 2971 §3.2 (ID); RFC 4315 §3 (APPENDUID, COPYUID).

Strings are sent quoted when they can be (RFC 9051 §4.3: no CR, LF or NUL; 8-bit only
once UTF8=ACCEPT / IMAP4rev2 is enabled), as a literal otherwise; mailbox names are
modified UTF-7 (RFC 3501 §5.1.3) unless UTF-8 is enabled (RFC 6855 §3).

FETCH responses are built as pieces, ``bytes | LiteralRef``: a message body whose size
is known from stored metadata is announced ("{size}\\r\\n" is in the bytes before it)
and its content is a :class:`LiteralRef` the server streams from the blob store, so a
large body is never in memory whole.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from . import mailbox_name
from .parser import LiteralTooLarge, ParseError
from .reader import ASTRING_RE as _ATOM_RE
from .sequence_set import SequenceSet

__all__ = [
    "RESPONSE_CODES",
    "FetchResponse",
    "LiteralRef",
    "Piece",
    "ResponseCode",
    "ResponseEncoder",
    "ThreadNode",
    "render",
]

#: RFC 9051 §7.1 response codes and those of the extensions (RFC 4315, RFC 5182,
#: RFC 6154, RFC 7162, RFC 7888, RFC 3501 UNSEEN).
RESPONSE_CODES = frozenset(
    {
        "ALERT",
        "ALREADYEXISTS",
        "APPENDUID",
        "AUTHENTICATIONFAILED",
        "AUTHORIZATIONFAILED",
        "BADCHARSET",
        "CANNOT",
        "CAPABILITY",
        "CLIENTBUG",
        "CLOSED",
        "CONTACTADMIN",
        "COPYUID",
        "CORRUPTION",
        "EXPIRED",
        "EXPUNGEISSUED",
        "HASCHILDREN",
        "HIGHESTMODSEQ",
        "INUSE",
        "LIMIT",
        "MODIFIED",
        "NOMODSEQ",
        "NONEXISTENT",
        "NOPERM",
        "NOTSAVED",
        "OVERQUOTA",
        "PARSE",
        "PERMANENTFLAGS",
        "PRIVACYREQUIRED",
        "READ-ONLY",
        "READ-WRITE",
        "SERVERBUG",
        "TOOBIG",
        "TRYCREATE",
        "UIDNEXT",
        "UIDNOTSTICKY",
        "UIDVALIDITY",
        "UNAVAILABLE",
        "UNKNOWN-CTE",
        "UNSEEN",
        "USEATTR",
    }
)

_CRLF = b"\r\n"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Longest string sent quoted; longer ones go as literals.
MAX_QUOTED = 1024


@dataclass(frozen=True, slots=True)
class LiteralRef:
    """The content of a literal the server streams: exactly ``size`` octets read
    through ``handle`` (opaque here: a blob id and section, say).  The literal's
    announcement ("{size}\\r\\n" or "~{size}\\r\\n") is already in the preceding bytes."""

    size: int
    handle: object
    binary: bool = False


Piece = bytes | LiteralRef


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """RFC 9051 §7.1 resp-text-code: "[" NAME [SP data] "]"."""

    name: str
    data: bytes | None = None

    def encode(self) -> bytes:
        """The bracketed code."""
        head = self.name.encode("ascii")
        return b"[" + head + (b" " + self.data if self.data is not None else b"") + b"]"

    @classmethod
    def simple(cls, name: str) -> ResponseCode:
        """A code without data (ALERT, TRYCREATE, READ-ONLY, ...)."""
        return cls(name)

    @classmethod
    def number(cls, name: str, value: int) -> ResponseCode:
        """UIDNEXT, UIDVALIDITY, UNSEEN, HIGHESTMODSEQ."""
        return cls(name, str(value).encode())

    @classmethod
    def capability(cls, capabilities: Iterable[str]) -> ResponseCode:
        """RFC 9051 §7.1: CAPABILITY."""
        return cls("CAPABILITY", " ".join(capabilities).encode("ascii"))

    @classmethod
    def permanent_flags(cls, flags: Iterable[str], *, new_keywords: bool = True) -> ResponseCode:
        """RFC 9051 §7.1: PERMANENTFLAGS, with "\\*" when keywords may be created."""
        names = list(flags) + (["\\*"] if new_keywords else [])
        return cls("PERMANENTFLAGS", b"(" + " ".join(names).encode("ascii") + b")")

    @classmethod
    def appenduid(cls, uidvalidity: int, uids: SequenceSet) -> ResponseCode:
        """RFC 4315 §3 / RFC 9051 §7.1: APPENDUID uidvalidity uid-set."""
        return cls("APPENDUID", b"%d %s" % (uidvalidity, uids.encode()))

    @classmethod
    def copyuid(cls, uidvalidity: int, source: SequenceSet, target: SequenceSet) -> ResponseCode:
        """RFC 4315 §3 / RFC 9051 §7.1: COPYUID uidvalidity source-uids target-uids."""
        return cls("COPYUID", b"%d %s %s" % (uidvalidity, source.encode(), target.encode()))

    @classmethod
    def modified(cls, numbers: SequenceSet) -> ResponseCode:
        """RFC 7162 §3.1.3: MODIFIED sequence-set."""
        return cls("MODIFIED", numbers.encode())

    @classmethod
    def badcharset(cls, charsets: Iterable[str]) -> ResponseCode:
        """RFC 9051 §7.1: BADCHARSET (charset ...)."""
        names = [_astring_ascii(name) for name in charsets]
        return cls("BADCHARSET", b"(" + b" ".join(names) + b")" if names else None)


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """RFC 5256 §4 thread tree: a message (``number`` None for a missing parent)
    and its replies."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


def _astring_ascii(value: str) -> bytes:
    raw = value.encode("ascii")
    if _ATOM_RE.fullmatch(raw):
        return raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _text(text: str) -> bytes:
    """RFC 9051 §9 text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4): no CR, LF, NUL."""
    raw = text.encode("utf-8")
    if b"\r" in raw or b"\n" in raw or b"\x00" in raw:
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\x00", b" ")
    return raw or b"."


def format_date_time(moment: datetime) -> bytes:
    """RFC 9051 §9 date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP
    time SP zone DQUOTE."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} '
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    ).encode("ascii")


class ResponseEncoder:
    """Serialises responses for one connection.

    ``utf8`` is set once the client enabled UTF8=ACCEPT (RFC 6855) or IMAP4rev2
    (RFC 9051 §6.3.1): quoted strings may then carry UTF-8 and mailbox names are sent
    as UTF-8 instead of modified UTF-7.
    """

    __slots__ = ("utf8",)

    def __init__(self, *, utf8: bool = False) -> None:
        self.utf8 = utf8

    # -- strings -------------------------------------------------------------------

    def string(self, value: str | bytes) -> bytes:
        """RFC 9051 §4.3 string: quoted if possible, else a literal."""
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if self._quotable(raw):
            return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        if b"\x00" in raw:
            raise ValueError("NUL cannot be sent in a string (RFC 9051 §4.3)")
        return b"{%d}\r\n" % len(raw) + raw

    def _quotable(self, raw: bytes) -> bool:
        if len(raw) > MAX_QUOTED or b"\r" in raw or b"\n" in raw or b"\x00" in raw:
            return False
        if raw.isascii():
            return True
        if not self.utf8:
            return False
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def nstring(self, value: str | bytes | None) -> bytes:
        """RFC 9051 §9 nstring = string / nil."""
        return b"NIL" if value is None else self.string(value)

    def astring(self, value: str | bytes) -> bytes:
        """RFC 9051 §9 astring: an atom when possible (never the atom NIL)."""
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if _ATOM_RE.fullmatch(raw) and raw.upper() != b"NIL":
            return raw
        return self.string(raw)

    def mailbox(self, name: str) -> bytes:
        """RFC 9051 §9 mailbox; RFC 3501 §5.1.3 modified UTF-7 unless UTF-8 is on."""
        if name.upper() == "INBOX":
            return b"INBOX"
        return self.astring(name if self.utf8 else mailbox_name.encode(name))

    # -- status responses ----------------------------------------------------------

    def status(
        self,
        tag: str | None,
        status: str,
        text: str,
        code: ResponseCode | None = None,
    ) -> bytes:
        """RFC 9051 §7.1: [tag | "*"] SP ("OK" / "NO" / "BAD" / "PREAUTH" / "BYE")
        SP resp-text; resp-text = ["[" resp-text-code "]" SP] text."""
        if status not in ("OK", "NO", "BAD", "PREAUTH", "BYE"):
            raise ValueError(f"not a status response: {status}")
        head = (tag.encode("ascii") if tag is not None else b"*") + b" " + status.encode()
        if code is not None:
            return head + b" " + code.encode() + b" " + _text(text) + _CRLF
        return head + b" " + _text(text) + _CRLF

    def ok(self, tag: str | None, text: str, code: ResponseCode | None = None) -> bytes:
        """RFC 9051 §7.1.1 OK."""
        return self.status(tag, "OK", text, code)

    def no(self, tag: str | None, text: str, code: ResponseCode | None = None) -> bytes:
        """RFC 9051 §7.1.2 NO."""
        return self.status(tag, "NO", text, code)

    def bad(self, tag: str | None, text: str, code: ResponseCode | None = None) -> bytes:
        """RFC 9051 §7.1.3 BAD."""
        return self.status(tag, "BAD", text, code)

    def refusal(
        self,
        event: ParseError | LiteralTooLarge,
        *,
        charsets: Iterable[str] = ("US-ASCII", "UTF-8"),
    ) -> bytes:
        """The answer to a parser error event, one rule for the whole server:
        BAD (RFC 9051 §7.1.3), NO [BADCHARSET (...)] for an unknown search charset
        (RFC 9051 §6.4.4), NO [TOOBIG] for an APPEND literal over the limit and
        BAD [TOOBIG] for other literals (RFC 7888 §4, RFC 9051 §7.1)."""
        if isinstance(event, LiteralTooLarge):
            status = "NO" if event.command == "APPEND" else "BAD"
            return self.status(
                event.tag, status, "Literal too large", ResponseCode.simple("TOOBIG")
            )
        if event.code == "BADCHARSET":
            return self.no(event.tag, event.message, ResponseCode.badcharset(charsets))
        code = ResponseCode.simple(event.code) if event.code else None
        return self.bad(event.tag, event.message, code)

    def bye(self, text: str, code: ResponseCode | None = None) -> bytes:
        """RFC 9051 §7.1.5 BYE."""
        return self.status(None, "BYE", text, code)

    def continuation(self, text: str = "Ready") -> bytes:
        """RFC 9051 §7.5 continue-req = "+" SP (resp-text / base64) CRLF."""
        return b"+ " + _text(text) + _CRLF

    def challenge(self, data: bytes) -> bytes:
        """RFC 9051 §6.2.2: a SASL challenge, base64 ("+ " alone when empty)."""
        return b"+ " + base64.b64encode(data) + _CRLF

    # -- data responses -------------------------------------------------------------

    def capability(self, capabilities: Iterable[str]) -> bytes:
        """RFC 9051 §7.2.2 CAPABILITY."""
        return b"* CAPABILITY " + " ".join(capabilities).encode("ascii") + _CRLF

    def enabled(self, capabilities: Iterable[str]) -> bytes:
        """RFC 9051 §7.2.1 / RFC 5161 §3.2 ENABLED (possibly empty)."""
        names = " ".join(capabilities).encode("ascii")
        return b"* ENABLED" + (b" " + names if names else b"") + _CRLF

    def list(
        self,
        attributes: Iterable[str],
        delimiter: str | None,
        name: str,
        *,
        childinfo: Sequence[str] = (),
        oldname: str | None = None,
        command: str = "LIST",
    ) -> bytes:
        """RFC 9051 §7.3.1 mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE
        QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended];
        RFC 5258 §3.5 CHILDINFO; RFC 9051 §6.3.6 OLDNAME."""
        parts = [
            b"* " + command.encode("ascii") + b" (" + " ".join(attributes).encode("ascii") + b")",
            self._delimiter(delimiter),
            self.mailbox(name),
        ]
        extended: list[bytes] = []
        if childinfo:
            extended.append(b'"CHILDINFO" (' + b" ".join(self.string(c) for c in childinfo) + b")")
        if oldname is not None:
            extended.append(b'"OLDNAME" (' + self.mailbox(oldname) + b")")
        if extended:
            parts.append(b"(" + b" ".join(extended) + b")")
        return b" ".join(parts) + _CRLF

    def lsub(self, attributes: Iterable[str], delimiter: str | None, name: str) -> bytes:
        """RFC 3501 §7.2.3 LSUB."""
        return self.list(attributes, delimiter, name, command="LSUB")

    @staticmethod
    def _delimiter(delimiter: str | None) -> bytes:
        if delimiter is None:
            return b"NIL"
        if delimiter in ("\\", '"'):
            return b'"\\' + delimiter.encode() + b'"'
        return b'"' + delimiter.encode("ascii") + b'"'

    def namespace(
        self,
        personal: Sequence[tuple[str, str | None]] | None,
        other: Sequence[tuple[str, str | None]] | None,
        shared: Sequence[tuple[str, str | None]] | None,
    ) -> bytes:
        """RFC 9051 §7.3.2 namespace-response = "NAMESPACE" SP namespace SP namespace SP
        namespace; namespace = nil / "(" 1*namespace-descr ")"."""

        def one(descriptions: Sequence[tuple[str, str | None]] | None) -> bytes:
            if not descriptions:
                return b"NIL"
            return (
                b"("
                + b"".join(
                    b"(" + self.mailbox_prefix(prefix) + b" " + self._delimiter(delim) + b")"
                    for prefix, delim in descriptions
                )
                + b")"
            )

        return b"* NAMESPACE " + one(personal) + b" " + one(other) + b" " + one(shared) + _CRLF

    def mailbox_prefix(self, prefix: str) -> bytes:
        """A namespace prefix: a string in the mailbox name encoding."""
        return self.string(prefix if self.utf8 else mailbox_name.encode(prefix))

    def status_data(self, mailbox: str, items: Iterable[tuple[str, int]]) -> bytes:
        """RFC 9051 §7.3.4 STATUS mailbox (status-att-val *(SP status-att-val))."""
        values = " ".join(f"{name} {value}" for name, value in items).encode("ascii")
        return b"* STATUS " + self.mailbox(mailbox) + b" (" + values + b")" + _CRLF

    def flags(self, flags: Iterable[str]) -> bytes:
        """RFC 9051 §7.3.5 FLAGS."""
        return b"* FLAGS (" + " ".join(flags).encode("ascii") + b")" + _CRLF

    def exists(self, count: int) -> bytes:
        """RFC 9051 §7.4.1 EXISTS."""
        return b"* %d EXISTS\r\n" % count

    def recent(self, count: int) -> bytes:
        """RFC 3501 §7.3.2 RECENT."""
        return b"* %d RECENT\r\n" % count

    def expunge(self, number: int) -> bytes:
        """RFC 9051 §7.5.1 EXPUNGE."""
        return b"* %d EXPUNGE\r\n" % number

    def vanished(self, uids: SequenceSet, *, earlier: bool = False) -> bytes:
        """RFC 7162 §3.2.10 VANISHED [(EARLIER)] known-uids."""
        return b"* VANISHED " + (b"(EARLIER) " if earlier else b"") + uids.encode() + _CRLF

    def search(self, numbers: Iterable[int], *, modseq: int | None = None) -> bytes:
        """RFC 3501 §7.2.5 SEARCH; RFC 7162 §3.1.5 "(MODSEQ n)" after the numbers."""
        return self._number_list(b"* SEARCH", numbers, modseq)

    def sort(self, numbers: Iterable[int], *, modseq: int | None = None) -> bytes:
        """RFC 5256 §4 SORT; RFC 7162 §3.1.5 for the MODSEQ."""
        return self._number_list(b"* SORT", numbers, modseq)

    @staticmethod
    def _number_list(head: bytes, numbers: Iterable[int], modseq: int | None) -> bytes:
        body = " ".join(map(str, numbers)).encode("ascii")
        out = head + (b" " + body if body else b"")
        if modseq is not None and body:
            out += b" (MODSEQ %d)" % modseq
        return out + _CRLF

    def esearch(
        self,
        tag: str | None,
        *,
        uid: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
        numbers: SequenceSet | None = None,
        count: int | None = None,
        modseq: int | None = None,
    ) -> bytes:
        """RFC 9051 §7.3.4 / RFC 4731 §3.1 esearch-response = "ESEARCH" [search-correlator]
        [SP "UID"] *(SP search-return-data); RFC 7162 §3.1.5 MODSEQ.

        ``numbers`` is the ALL data (omitted when empty, RFC 4731 §3.1)."""
        out = b"* ESEARCH"
        if tag is not None:
            out += b' (TAG "' + tag.encode("ascii") + b'")'
        if uid:
            out += b" UID"
        if minimum is not None:
            out += b" MIN %d" % minimum
        if maximum is not None:
            out += b" MAX %d" % maximum
        if numbers is not None and (numbers.ranges or numbers.saved):
            out += b" ALL " + numbers.encode()
        if count is not None:
            out += b" COUNT %d" % count
        if modseq is not None:
            out += b" MODSEQ %d" % modseq
        return out + _CRLF

    def thread(self, threads: Iterable[ThreadNode]) -> bytes:
        """RFC 5256 §4 thread-data = "THREAD" [SP 1*thread-list]."""
        body = "".join(f"({_thread_members(node)})" for node in threads).encode("ascii")
        return b"* THREAD" + (b" " + body if body else b"") + _CRLF

    def quota(self, root: str, resources: Iterable[tuple[str, int, int]]) -> bytes:
        """RFC 9208 §5.1 quota-response = "QUOTA" SP quota-root-name SP quota-list;
        quota-resource = resource-name SP resource-usage SP resource-limit."""
        items = " ".join(f"{name} {usage} {limit}" for name, usage, limit in resources)
        return b"* QUOTA " + self.astring(root) + b" (" + items.encode("ascii") + b")" + _CRLF

    def quotaroot(self, mailbox: str, roots: Iterable[str]) -> bytes:
        """RFC 9208 §5.2 quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)."""
        out = b"* QUOTAROOT " + self.mailbox(mailbox)
        for root in roots:
            out += b" " + self.string(root)
        return out + _CRLF

    def id(self, parameters: Sequence[tuple[str, str | None]] | None) -> bytes:
        """RFC 2971 §3.2 id-response = "ID" SP id-params-list."""
        if not parameters:
            return b"* ID NIL\r\n"
        body = b" ".join(self.string(k) + b" " + self.nstring(v) for k, v in parameters)
        return b"* ID (" + body + b")" + _CRLF

    def fetch(self, number: int) -> FetchResponse:
        """RFC 9051 §7.5.2: start a FETCH response for message ``number``."""
        return FetchResponse(self, number)


def _thread_members(node: ThreadNode) -> str:
    """RFC 5256 §4 thread-members = nz-number *(SP nz-number) [SP thread-nested];
    thread-nested = 2*thread-list."""
    members: list[str] = []
    current = node
    while True:
        if current.number is not None:
            members.append(str(current.number))
        if len(current.children) == 1:
            current = current.children[0]
            continue
        break
    nested = "".join(f"({_thread_members(child)})" for child in current.children)
    if members and nested:
        return " ".join(members) + " " + nested
    return " ".join(members) or nested


class FetchResponse:
    """RFC 9051 §7.5.2 "*" SP nz-number SP "FETCH" SP msg-att, built item by item.

    Item names come from the fetch item (``FetchBody.response_name`` etc.).
    :meth:`pieces` returns ``bytes | LiteralRef`` with adjacent bytes joined.
    """

    __slots__ = ("_encoder", "_first", "_parts")

    def __init__(self, encoder: ResponseEncoder, number: int) -> None:
        self._encoder = encoder
        self._parts: list[Piece] = [b"* %d FETCH (" % number]
        self._first = True

    def _name(self, name: str) -> None:
        head = name.encode("ascii") + b" "
        if self._first:
            self._first = False
            self._parts.append(head)
        else:
            self._parts.append(b" " + head)

    def raw(self, name: str, data: bytes) -> FetchResponse:
        """An item rendered in advance (ENVELOPE, BODYSTRUCTURE, BODY from ingest)."""
        self._name(name)
        self._parts.append(data)
        return self

    def number(self, name: str, value: int) -> FetchResponse:
        """UID, RFC822.SIZE, BINARY.SIZE[...]."""
        return self.raw(name, str(value).encode("ascii"))

    def uid(self, uid: int) -> FetchResponse:
        """RFC 9051 §7.5.2 UID."""
        return self.number("UID", uid)

    def size(self, size: int) -> FetchResponse:
        """RFC 9051 §7.5.2 RFC822.SIZE."""
        return self.number("RFC822.SIZE", size)

    def modseq(self, modseq: int) -> FetchResponse:
        """RFC 7162 §3.1.4.1 MODSEQ (permsg-modsequence)."""
        return self.raw("MODSEQ", b"(%d)" % modseq)

    def flags(self, flags: Iterable[str]) -> FetchResponse:
        """RFC 9051 §7.5.2 FLAGS."""
        return self.raw("FLAGS", b"(" + " ".join(flags).encode("ascii") + b")")

    def internal_date(self, moment: datetime) -> FetchResponse:
        """RFC 9051 §7.5.2 INTERNALDATE date-time."""
        return self.raw("INTERNALDATE", format_date_time(moment))

    def literal(self, name: str, data: bytes | None, *, binary: bool = False) -> FetchResponse:
        """A body in memory: a literal (literal8 for BINARY with NUL), or NIL."""
        self._name(name)
        if data is None:
            self._parts.append(b"NIL")
        elif binary and b"\x00" in data:
            self._parts.append(b"~{%d}\r\n" % len(data) + data)
        else:
            self._parts.append(b"{%d}\r\n" % len(data) + data)
        return self

    def stream(
        self, name: str, size: int, handle: object, *, binary: bool = False
    ) -> FetchResponse:
        """A body streamed later: announced now, its ``size`` octets from ``handle``.

        ``binary`` announces a literal8 (RFC 3516 §4.2: BINARY content may hold NUL).
        """
        self._name(name)
        self._parts.append((b"~{%d}\r\n" if binary else b"{%d}\r\n") % size)
        if size:
            self._parts.append(LiteralRef(size, handle, binary))
        return self

    def pieces(self) -> list[Piece]:
        """The response: bytes and LiteralRef pieces, adjacent bytes joined."""
        out: list[Piece] = []
        pending: list[bytes] = []
        for part in [*self._parts, b")\r\n"]:
            if isinstance(part, bytes):
                pending.append(part)
            else:
                out.append(b"".join(pending))
                pending = []
                out.append(part)
        out.append(b"".join(pending))
        return out

    def to_bytes(self) -> bytes:
        """The whole response when no piece is streamed."""
        pieces = self.pieces()
        if len(pieces) != 1 or not isinstance(pieces[0], bytes):
            raise ValueError("the response has streamed literals; use pieces()")
        return pieces[0]


def render(pieces: Iterable[Piece], read: Callable[[LiteralRef], bytes]) -> bytes:
    """Join pieces, reading each LiteralRef with ``read`` (tests, small bodies).

    Raises ValueError if ``read`` returns a different size than announced.
    """
    out = bytearray()
    for piece in pieces:
        if isinstance(piece, LiteralRef):
            data = read(piece)
            if len(data) != piece.size:
                raise ValueError(f"literal announced {piece.size} octets, got {len(data)}")
            out += data
        else:
            out += piece
    return bytes(out)
