"""Typed IMAP commands, one dataclass per command, arguments fully parsed.

RFC 9051 §6 (IMAP4rev2 commands) and RFC 3501 §6 (IMAP4rev1: LSUB, CHECK, RECENT/NEW/OLD
search keys), with the extensions the server implements:
RFC 2177/9051 §6.3.13 IDLE, RFC 2971 ID, RFC 3502 MULTIAPPEND, RFC 3516 BINARY,
RFC 4731 ESEARCH, RFC 4959 SASL-IR, RFC 4978 COMPRESS, RFC 5032 WITHIN,
RFC 5161 ENABLE, RFC 5182 SEARCHRES, RFC 5256 SORT/THREAD, RFC 5258 LIST-EXTENDED,
RFC 5267 ESORT, RFC 5819 LIST-STATUS, RFC 5957 DISPLAY sort, RFC 6154 SPECIAL-USE and
CREATE-SPECIAL-USE, RFC 6851 MOVE, RFC 6855 UTF8=ACCEPT, RFC 7162 CONDSTORE/QRESYNC,
RFC 7888 LITERAL+/LITERAL-, RFC 8438 STATUS=SIZE, RFC 9208 QUOTA.

Commands carry their tag; ``name`` is the command's wire name ("UID FETCH" is a
:class:`Fetch` with ``uid=True``).  Whether a command is allowed in the session's state
is not decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import ClassVar

from .reader import StreamedLiteral
from .sequence_set import SequenceSet


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command: the client's tag."""

    name: ClassVar[str] = ""
    tag: str


# -- any state (RFC 9051 §6.1) ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability(Command):
    """RFC 9051 §6.1.1."""

    name: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    """RFC 9051 §6.1.2."""

    name: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout(Command):
    """RFC 9051 §6.1.3."""

    name: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Id(Command):
    """RFC 2971 §3.1: ``parameters`` is None for "ID NIL"."""

    name: ClassVar[str] = "ID"
    parameters: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Compress(Command):
    """RFC 4978 §3: COMPRESS DEFLATE (mechanism upper-cased)."""

    name: ClassVar[str] = "COMPRESS"
    mechanism: str


# -- not authenticated (RFC 9051 §6.2) -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLS(Command):
    """RFC 9051 §6.2.1."""

    name: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(Command):
    """RFC 9051 §6.2.2; RFC 4959 §3 SASL-IR: ``initial_response`` decoded, b"" for "="."""

    name: ClassVar[str] = "AUTHENTICATE"
    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Command):
    """RFC 9051 §6.2.3."""

    name: ClassVar[str] = "LOGIN"
    username: str
    password: str = field(repr=False)


# -- authenticated (RFC 9051 §6.3) -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable(Command):
    """RFC 9051 §6.3.1 / RFC 5161: capability names upper-cased."""

    name: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QResync:
    """RFC 7162 §3.2.5: QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    #: (known sequence numbers, the UIDs they had)
    sequence_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Select(Command):
    """RFC 9051 §6.3.2; RFC 7162 §3.1.8 (CONDSTORE) and §3.2.5 (QRESYNC) parameters."""

    name: ClassVar[str] = "SELECT"
    mailbox: str
    condstore: bool = False
    qresync: QResync | None = None

    @property
    def read_only(self) -> bool:
        """EXAMINE opens read-only (RFC 9051 §6.3.3)."""
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Examine(Select):
    """RFC 9051 §6.3.3."""

    name: ClassVar[str] = "EXAMINE"

    @property
    def read_only(self) -> bool:
        """EXAMINE opens read-only (RFC 9051 §6.3.3)."""
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Create(Command):
    """RFC 9051 §6.3.4; RFC 6154 §3 USE (special-use attributes, canonical case)."""

    name: ClassVar[str] = "CREATE"
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(Command):
    """RFC 9051 §6.3.5."""

    name: ClassVar[str] = "DELETE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(Command):
    """RFC 9051 §6.3.6."""

    name: ClassVar[str] = "RENAME"
    mailbox: str
    new_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Command):
    """RFC 9051 §6.3.7."""

    name: ClassVar[str] = "SUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(Command):
    """RFC 9051 §6.3.8."""

    name: ClassVar[str] = "UNSUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class List(Command):
    """RFC 9051 §6.3.9 and RFC 5258 LIST-EXTENDED, RFC 6154 §5, RFC 5819.

    ``selection``: SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE.
    ``return_options``: SUBSCRIBED CHILDREN SPECIAL-USE (and STATUS via ``status``).
    ``extended`` is true when the LIST-EXTENDED syntax was used (selection options,
    several patterns or RETURN), which changes the response rules (RFC 5258 §3).
    """

    name: ClassVar[str] = "LIST"
    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    return_options: frozenset[str] = frozenset()
    status: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Lsub(Command):
    """RFC 3501 §6.3.9 (removed from IMAP4rev2)."""

    name: ClassVar[str] = "LSUB"
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace(Command):
    """RFC 9051 §6.3.10."""

    name: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Command):
    """RFC 9051 §6.3.11; RFC 7162 §3.1.7 HIGHESTMODSEQ; RFC 8438 SIZE; RFC 7889."""

    name: ClassVar[str] = "STATUS"
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of RFC 9051 §6.3.12 APPEND / RFC 3502 MULTIAPPEND.

    ``content`` is the literal, or a :class:`StreamedLiteral` when the parser streamed
    it.  ``binary`` is RFC 3516 literal8 (~{n}); ``utf8`` is RFC 6855 §4 "UTF8 (~{n})".
    """

    content: bytes | StreamedLiteral = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    binary: bool = False
    utf8: bool = False

    @property
    def size(self) -> int:
        """The literal's size in octets."""
        content = self.content
        return content.size if isinstance(content, StreamedLiteral) else len(content)


@dataclass(frozen=True, slots=True, kw_only=True)
class Append(Command):
    """RFC 9051 §6.3.12; RFC 3502 §6 (several messages)."""

    name: ClassVar[str] = "APPEND"
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle(Command):
    """RFC 9051 §6.3.13."""

    name: ClassVar[str] = "IDLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuota(Command):
    """RFC 9208 §4.2."""

    name: ClassVar[str] = "GETQUOTA"
    root: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuotaRoot(Command):
    """RFC 9208 §4.3."""

    name: ClassVar[str] = "GETQUOTAROOT"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuota(Command):
    """RFC 9208 §4.4: (resource name upper-cased, limit) pairs."""

    name: ClassVar[str] = "SETQUOTA"
    root: str
    limits: tuple[tuple[str, int], ...]


# -- selected (RFC 9051 §6.4) ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Check(Command):
    """RFC 3501 §6.4.1 (a NOOP in IMAP4rev2)."""

    name: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    """RFC 9051 §6.4.1."""

    name: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unselect(Command):
    """RFC 9051 §6.4.2 / RFC 3691."""

    name: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge(Command):
    """RFC 9051 §6.4.3; UID EXPUNGE (RFC 9051 §6.4.9) when ``uids`` is given."""

    name: ClassVar[str] = "EXPUNGE"
    uids: SequenceSet | None = None

    @property
    def uid(self) -> bool:
        """True for UID EXPUNGE."""
        return self.uids is not None


# Search keys: RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 §3.1.5, RFC 5032 §3.


@dataclass(frozen=True, slots=True)
class SearchAll:
    """ALL."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """ANSWERED DELETED DRAFT FLAGGED SEEN RECENT (and UN- forms, OLD = NOT RECENT)
    or KEYWORD / UNKEYWORD: messages with (``present``) or without the flag."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchNew:
    """RFC 3501 §6.4.4: NEW = RECENT UNSEEN."""


@dataclass(frozen=True, slots=True)
class SearchText:
    """BCC BODY CC FROM SUBJECT TEXT TO: substring in a field (``field`` upper-case)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """HEADER field-name string."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE ON SINCE (internal date) and SENTBEFORE SENTON SENTSINCE (Date header)."""

    key: str
    day: date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER n (``larger``) or SMALLER n."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchWithin:
    """RFC 5032 §3: OLDER n / YOUNGER n (seconds)."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A sequence set, or UID sequence-set (``uid``)."""

    numbers: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer."""

    modseq: int
    entry_flag: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    """NOT search-key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """OR search-key search-key."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised list, or the top-level list of keys (all must match)."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchNew
    | SearchText
    | SearchHeader
    | SearchDate
    | SearchSize
    | SearchWithin
    | SearchSet
    | SearchModSeq
    | SearchNot
    | SearchOr
    | SearchAnd
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Search(Command):
    """RFC 9051 §6.4.4; RFC 4731 / RFC 9051 RETURN options; RFC 5182 SAVE.

    ``return_options`` is None when no RETURN was given (IMAP4rev1 untagged SEARCH);
    an empty RETURN () means ALL (RFC 4731 §3.1).
    """

    name: ClassVar[str] = "SEARCH"
    uid: bool = False
    charset: str | None = None
    criteria: SearchKey
    return_options: tuple[str, ...] | None = None


class FetchAttribute(Enum):
    """RFC 9051 §6.4.5 fetch attributes without arguments."""

    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    ENVELOPE = "ENVELOPE"
    BODY = "BODY"
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_TEXT = "RFC822.TEXT"

    @property
    def response_name(self) -> str:
        """The name in the FETCH response."""
        return self.value


@dataclass(frozen=True, slots=True)
class Section:
    """RFC 9051 §6.4.5 section spec: part numbers, then HEADER, HEADER.FIELDS,
    HEADER.FIELDS.NOT, TEXT or MIME (``text``), with header field names."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def encode(self) -> str:
        """The section between the brackets, as it goes in the response."""
        parts = ".".join(str(n) for n in self.part)
        if self.text is None:
            return parts
        spec = self.text
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return f"{parts}.{spec}" if parts else spec


@dataclass(frozen=True, slots=True)
class FetchBody:
    """RFC 9051 §6.4.5 BODY[section]<partial> and BODY.PEEK."""

    section: Section
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def response_name(self) -> str:
        """RFC 9051 §7.5.2: BODY[section]<origin> (PEEK and the length dropped)."""
        name = f"BODY[{self.section.encode()}]"
        return name if self.partial is None else f"{name}<{self.partial[0]}>"


@dataclass(frozen=True, slots=True)
class FetchBinary:
    """RFC 3516 §4.1 / RFC 9051 §6.4.5 BINARY[part]<partial> and BINARY.PEEK."""

    part: tuple[int, ...]
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def response_name(self) -> str:
        """RFC 9051 §7.5.2: BINARY[part]<origin>."""
        name = "BINARY[" + ".".join(str(n) for n in self.part) + "]"
        return name if self.partial is None else f"{name}<{self.partial[0]}>"


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """RFC 3516 §4.2 / RFC 9051 §6.4.5 BINARY.SIZE[part]."""

    part: tuple[int, ...]

    @property
    def response_name(self) -> str:
        """BINARY.SIZE[part]."""
        return "BINARY.SIZE[" + ".".join(str(n) for n in self.part) + "]"


FetchItem = FetchAttribute | FetchBody | FetchBinary | FetchBinarySize

#: RFC 9051 §6.4.5 macros.
FETCH_MACROS: dict[str, tuple[FetchAttribute, ...]] = {
    "ALL": (
        FetchAttribute.FLAGS,
        FetchAttribute.INTERNALDATE,
        FetchAttribute.RFC822_SIZE,
        FetchAttribute.ENVELOPE,
    ),
    "FAST": (FetchAttribute.FLAGS, FetchAttribute.INTERNALDATE, FetchAttribute.RFC822_SIZE),
    "FULL": (
        FetchAttribute.FLAGS,
        FetchAttribute.INTERNALDATE,
        FetchAttribute.RFC822_SIZE,
        FetchAttribute.ENVELOPE,
        FetchAttribute.BODY,
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(Command):
    """RFC 9051 §6.4.5; RFC 7162 §3.1.4 CHANGEDSINCE, §3.2.6 VANISHED."""

    name: ClassVar[str] = "FETCH"
    uid: bool = False
    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    macro: str | None = None
    changed_since: int | None = None
    vanished: bool = False


class StoreMode(Enum):
    """RFC 9051 §6.4.6: FLAGS replaces, +FLAGS adds, -FLAGS removes."""

    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Store(Command):
    """RFC 9051 §6.4.6; RFC 7162 §3.1.3 UNCHANGEDSINCE."""

    name: ClassVar[str] = "STORE"
    uid: bool = False
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool = False
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Command):
    """RFC 9051 §6.4.7."""

    name: ClassVar[str] = "COPY"
    uid: bool = False
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Move(Command):
    """RFC 9051 §6.4.8 / RFC 6851."""

    name: ClassVar[str] = "MOVE"
    uid: bool = False
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """RFC 5256 §3 sort-criterion; RFC 5957 DISPLAYFROM DISPLAYTO."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Sort(Command):
    """RFC 5256 §3 SORT; RFC 5267 §3.2 ESORT RETURN options."""

    name: ClassVar[str] = "SORT"
    uid: bool = False
    criteria: tuple[SortCriterion, ...]
    charset: str
    search: SearchKey
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread(Command):
    """RFC 5256 §3 THREAD (REFERENCES, ORDEREDSUBJECT)."""

    name: ClassVar[str] = "THREAD"
    uid: bool = False
    algorithm: str
    charset: str
    search: SearchKey
