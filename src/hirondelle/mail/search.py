"""Search, sort and thread the messages of a mailbox: the rules, once, for IMAP and JMAP.

RFC 9051 §6.4.4 and RFC 3501 §6.4.4 (search keys), RFC 7162 §3.1.5 (MODSEQ), RFC 5032 §3
(OLDER/YOUNGER), RFC 5256 §3 (SORT) and §2.1/§2.2 (base subject, sent date, ORDEREDSUBJECT
and REFERENCES threading), RFC 5957 §3 (DISPLAYFROM/DISPLAYTO).

Protocol front ends translate their queries into the criteria below (``imap/search.py``
for IMAP; JMAP Email/query later) and never decide what "matches" means themselves.

How strings match (RFC 9051 §6.4.4: "a substring of the associated text", case
ignored): both sides are folded the way the full-text index folds them
(``store.search.fold``: lowercase, compatibility decomposition, diacritics dropped), so
``geneve`` finds « Genève » in IMAP as in the webmail. Deliberate deviations:

- Diacritics are ignored, which is more lenient than i;unicode-casemap (RFC 5051).
- BODY and TEXT (the body part) are answered by the full-text index first: every word of
  the string must begin a word of the body. The candidates are then checked for the
  exact substring in their decoded text, for messages up to :data:`BODY_SUBSTRING_LIMIT`
  octets; above that size the index's word-prefix answer stands (and a string without a
  letter or digit matches none of them). A string therefore has to start at the start of a
  word to match a body ("ell" does not find "hello").
- The header half of TEXT likewise: the index's header text (every field, "Name: value",
  decoded) names the candidates, whose headers are then read and checked for the
  substring; "rondelle" does not find "someone@hirondelle.example", "hirondelle.ex"
  does. A string without a letter or digit still reads every header.
- SENTBEFORE/SENTON/SENTSINCE compare the date written in the Date header (its own
  time zone, RFC 9051 §6.4.4 "disregarding time and timezone"); a message without a
  parseable Date matches none of them. BEFORE/ON/SINCE compare the internal date's day in
  the server's time zone.
- HEADER Message-ID (how clients such as Thunderbird find a message) only reads the
  headers of messages whose stored Message-ID contains the string (spaces and angle
  brackets aside): a string found only in garbage around the id is not found.
- MODSEQ with an entry name uses the message's one modseq (RFC 7162 §3.1.5 allows it: the
  server keeps no per-flag modseq).
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time as time_module
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.mime import parse_message
from hirondelle.mime.headers import decode_words, parse_date, parse_header_block, unfold
from hirondelle.store import message_queries as queries
from hirondelle.store.blobs import BlobNotFound, BlobStore
from hirondelle.store.database import Database
from hirondelle.store.message_queries import MessageRow
from hirondelle.store.search import (
    MAX_INDEXED_CHARS,
    Field,
    fold,
    has_waiting,
    index_headers,
    index_waiting,
    pending_headers,
    stored_bodies,
)

__all__ = [
    "BODY_SUBSTRING_LIMIT",
    "AllOf",
    "AnyOf",
    "ContainsText",
    "Criterion",
    "DateField",
    "DateIs",
    "DateRelation",
    "Everything",
    "HasKeyword",
    "HeaderContains",
    "MessageRow",
    "ModSeqAtLeast",
    "Not",
    "ReceivedWithin",
    "SizeIs",
    "SortKey",
    "SortOrder",
    "TextField",
    "ThreadAlgorithm",
    "ThreadBranch",
    "UidIn",
    "find_messages",
    "ordered_subject_threads",
    "reference_threads",
    "sort_messages",
    "thread_messages",
]

#: Messages up to this size get BODY/TEXT substring semantics (their decoded text is
#: checked); larger ones keep the full-text index's word-prefix answer.
BODY_SUBSTRING_LIMIT = 1024 * 1024
#: How much of a header block HEADER and TEXT read: real headers are a few KB; a message
#: whose header is larger is searched in its first 256 KB of header.
HEADER_READ_LIMIT = 256 * 1024
# Blob reads and re-parses in flight at once for one search.
_CONCURRENCY = 16


# -- criteria -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Everything:
    """Every message (IMAP ALL)."""


@dataclass(frozen=True, slots=True)
class HasKeyword:
    """A keyword in JMAP spelling (``$seen``; compared lowercased), present or absent."""

    keyword: str
    present: bool = True


class TextField(StrEnum):
    SUBJECT = "SUBJECT"
    FROM = "FROM"
    TO = "TO"
    CC = "CC"
    BCC = "BCC"
    BODY = "BODY"
    TEXT = "TEXT"  # header and body


@dataclass(frozen=True, slots=True)
class ContainsText:
    field: TextField
    text: str


@dataclass(frozen=True, slots=True)
class HeaderContains:
    """A header field ``name`` whose (decoded) value contains ``text``; "" = has the field."""

    name: str
    text: str


class DateField(StrEnum):
    RECEIVED = "received"  # the internal date
    SENT = "sent"  # the Date header


class DateRelation(StrEnum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


@dataclass(frozen=True, slots=True)
class DateIs:
    field: DateField
    relation: DateRelation
    day: date


@dataclass(frozen=True, slots=True)
class SizeIs:
    """Size strictly larger (``larger``) or strictly smaller than ``size`` octets."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class ReceivedWithin:
    """RFC 5032 §3: internal date older than ``seconds`` ago (``older``), or younger."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class UidIn:
    """UIDs in inclusive ranges (any order, may overlap)."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ModSeqAtLeast:
    modseq: int


@dataclass(frozen=True, slots=True)
class Not:
    criterion: Criterion


@dataclass(frozen=True, slots=True)
class AnyOf:
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    criteria: tuple[Criterion, ...]


Criterion = (
    Everything
    | HasKeyword
    | ContainsText
    | HeaderContains
    | DateIs
    | SizeIs
    | ReceivedWithin
    | UidIn
    | ModSeqAtLeast
    | Not
    | AnyOf
    | AllOf
)


# -- finding --------------------------------------------------------------------------------


async def find_messages(
    database: Database,
    *,
    blobs: BlobStore,
    account_id: int,
    mailbox_id: int,
    criteria: Criterion,
    within: Collection[int] | None = None,
    zone: tzinfo | None = None,
    now: float | None = None,
) -> list[MessageRow]:
    """The messages of the mailbox that match ``criteria``, in UID order.

    ``within`` limits the answer to these UIDs (an IMAP session's view); ``zone`` is the
    server's time zone for BEFORE/ON/SINCE (None: the system's); ``now`` (seconds since the
    epoch) is for OLDER/YOUNGER. The mailbox's rows come in one query; criteria that need
    more data load it only for the messages still in question, cheapest criteria first.
    """
    allowed = within if within is None or isinstance(within, (set, frozenset)) else set(within)
    if allowed is not None and not allowed:
        return []
    rows = await _ROWS.rows(database, account_id=account_id, mailbox_id=mailbox_id)
    low, high = _uid_bounds(criteria)
    if low is not None or high is not None:
        low, high = low or 0, high if high is not None else 1 << 63
        rows = rows[
            bisect.bisect_left(rows, low, key=_uid) : bisect.bisect_right(rows, high, key=_uid)
        ]
    if allowed is not None:
        rows = [row for row in rows if row.uid in allowed]
    evaluator = _Evaluator(
        database,
        blobs,
        account_id=account_id,
        mailbox_id=mailbox_id,
        zone=zone,
        now=time_module.time() if now is None else now,
    )
    return await evaluator.select(criteria, rows)


def _uid(row: MessageRow) -> int:
    return row.uid


class _RowCache:
    """The rows of recently searched mailboxes, per database, reused while the
    mailbox's highest modseq is unchanged (DESIGN.md "Hot paths": a selected mailbox's
    view is built by one query; a flag SEARCH on 100,000 messages must not re-read them).
    Bounded by a total number of rows; least recently used mailboxes leave first."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._entries: weakref.WeakKeyDictionary[
            Database, OrderedDict[tuple[int, int], tuple[int, list[MessageRow]]]
        ] = weakref.WeakKeyDictionary()

    async def rows(
        self, database: Database, *, account_id: int, mailbox_id: int
    ) -> list[MessageRow]:
        entries = self._entries.setdefault(database, OrderedDict())
        key = (account_id, mailbox_id)
        cached = entries.get(key)
        known = cached[0] if cached is not None else None
        modseq, rows = await database.read(
            lambda conn: queries.mailbox_snapshot(
                conn, account_id=account_id, mailbox_id=mailbox_id, known_modseq=known
            )
        )
        if rows is None:
            assert cached is not None
            entries.move_to_end(key)
            return cached[1]
        entries[key] = (modseq, rows)
        entries.move_to_end(key)
        total = sum(len(entry[1]) for entry in entries.values())
        while total > self.max_rows and len(entries) > 1:
            _, (_, dropped) = entries.popitem(last=False)
            total -= len(dropped)
        return rows


#: About 120 bytes a row: at most ~60 MB of cached rows per database.
_ROWS = _RowCache(max_rows=500_000)


def _uid_bounds(criterion: Criterion) -> tuple[int | None, int | None]:
    """The UID range a criterion cannot match outside of (pushed into the query)."""
    if isinstance(criterion, UidIn):
        if not criterion.ranges:
            return 1, 0  # nothing
        return min(min(r) for r in criterion.ranges), max(max(r) for r in criterion.ranges)
    if isinstance(criterion, AllOf):
        low: int | None = None
        high: int | None = None
        for child in criterion.criteria:
            child_low, child_high = _uid_bounds(child)
            if child_low is not None:
                low = child_low if low is None else max(low, child_low)
            if child_high is not None:
                high = child_high if high is None else min(high, child_high)
        return low, high
    return None, None


def _cost(criterion: Criterion) -> int:
    """Rough cost of evaluating a criterion: AND and OR try cheap ones first, so the
    expensive ones (blob reads) see fewer messages."""
    if isinstance(criterion, (Not,)):
        return _cost(criterion.criterion)
    if isinstance(criterion, (AnyOf, AllOf)):
        return max((_cost(c) for c in criterion.criteria), default=0)
    if isinstance(criterion, ContainsText):
        if criterion.field is TextField.SUBJECT:
            return 1
        if criterion.field is TextField.BODY:
            return 3
        if criterion.field is TextField.TEXT:
            return 4
        return 2
    if isinstance(criterion, HeaderContains):
        return 4
    if isinstance(criterion, DateIs) and criterion.field is DateField.SENT:
        return 2
    return 0


def _uids(rows: Sequence[MessageRow]) -> set[int]:
    return {row.uid for row in rows}


def _day_start_us(day: date, zone: tzinfo | None) -> int:
    """Microseconds since the epoch at midnight starting ``day`` in ``zone`` (the system's
    zone when None). Days at the ends of the calendar, where the conversion overflows,
    give the smallest or largest instant, so BEFORE/ON/SINCE stay total."""
    try:
        if zone is None:
            moment = datetime.combine(day, time()).astimezone()
        else:
            moment = datetime.combine(day, time(), tzinfo=zone)
        return int(moment.timestamp()) * 1_000_000
    except (OverflowError, ValueError, OSError):
        return -(1 << 63) if day.year < 1970 else (1 << 63) - 1


def _next_day(day: date) -> date | None:
    return day + timedelta(days=1) if day < date.max else None


def _in_ranges(ranges: tuple[tuple[int, int], ...]) -> Callable[[int], bool]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted((min(r), max(r)) for r in ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    starts = [low for low, _ in merged]

    def contains(uid: int) -> bool:
        index = bisect.bisect_right(starts, uid) - 1
        return index >= 0 and uid <= merged[index][1]

    return contains


def written_date_time(envelope: bytes) -> datetime | None:
    """The Date header as written (with its own offset), from a stored ENVELOPE (RFC 9051
    §7.5.2: its first item is the Date field as an nstring); JMAP ``sentAt`` too."""
    raw = envelope[1:] if envelope.startswith(b"(") else envelope
    if raw.startswith(b'"'):
        out = bytearray()
        index = 1
        while index < len(raw):
            char = raw[index]
            if char == 0x5C and index + 1 < len(raw):  # backslash escape
                out.append(raw[index + 1])
                index += 2
                continue
            if char == 0x22:
                break
            out.append(char)
            index += 1
        value = bytes(out)
    elif raw.startswith(b"{"):
        match = re.match(rb"\{(\d+)\}\r\n", raw)
        if match is None:
            return None
        value = raw[match.end() : match.end() + int(match.group(1))]
    else:
        return None  # NIL
    return parse_date(value)


def written_date(envelope: bytes) -> date | None:
    """The day of the Date header as written (see :func:`written_date_time`)."""
    parsed = written_date_time(envelope)
    return parsed.date() if parsed is not None else None


def _address_text(addresses: list[dict[str, Any]]) -> str:
    """An address list as searched: "Name <mailbox@host>, ..."."""
    parts = []
    for address in addresses:
        name = address.get("name") or ""
        email = address.get("email") or ""
        parts.append(f"{name} <{email}>" if name else f"<{email}>")
    return ", ".join(parts)


_PLAIN_ID = re.compile(r"[^\s<>]+")

_ADDRESS_KEYS = {
    TextField.FROM: "from",
    TextField.TO: "to",
    TextField.CC: "cc",
    TextField.BCC: "bcc",
}


@dataclass
class _Evaluator:
    """Evaluates a criteria tree over shrinking sets of rows (set semantics, UID order)."""

    database: Database
    blobs: BlobStore
    account_id: int
    mailbox_id: int
    zone: tzinfo | None
    now: float
    _headers: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    _index_caught_up: bool = False

    async def select(self, criterion: Criterion, domain: list[MessageRow]) -> list[MessageRow]:
        """The rows of ``domain`` that match ``criterion``, in the order of ``domain``."""
        if not domain:
            return []
        if isinstance(criterion, AllOf):
            for child in sorted(criterion.criteria, key=_cost):
                domain = await self.select(child, domain)
            return domain
        if isinstance(criterion, AnyOf):
            matched: set[int] = set()
            remaining = domain
            for child in sorted(criterion.criteria, key=_cost):
                matched |= _uids(await self.select(child, remaining))
                remaining = [row for row in remaining if row.uid not in matched]
            return [row for row in domain if row.uid in matched]
        if isinstance(criterion, Not):
            excluded = _uids(await self.select(criterion.criterion, domain))
            return [row for row in domain if row.uid not in excluded]
        if isinstance(criterion, ContainsText):
            return await self._contains_text(criterion, domain)
        if isinstance(criterion, HeaderContains):
            return await self._header_contains(criterion, domain)
        if isinstance(criterion, DateIs) and criterion.field is DateField.SENT:
            return await self._sent_date(criterion, domain)
        if isinstance(criterion, HasKeyword):
            # Decide once per distinct keyword string (a mailbox has few of them).
            keyword, present = criterion.keyword.lower(), criterion.present
            verdicts = {
                text: (keyword in text.split()) is present for text in {r.keywords for r in domain}
            }
            return [row for row in domain if verdicts[row.keywords]]
        predicate = self._predicate(criterion)
        return [row for row in domain if predicate(row)]

    def _predicate(self, criterion: Criterion) -> Callable[[MessageRow], bool]:
        """Criteria decided by the mailbox rows alone."""
        if isinstance(criterion, Everything):
            return lambda row: True
        if isinstance(criterion, SizeIs):
            size = criterion.size
            if criterion.larger:
                return lambda row: row.size > size
            return lambda row: row.size < size
        if isinstance(criterion, ReceivedWithin):
            limit = int((self.now - criterion.seconds) * 1_000_000)
            if criterion.older:
                return lambda row: row.received_at < limit
            return lambda row: row.received_at >= limit
        if isinstance(criterion, UidIn):
            contains = _in_ranges(criterion.ranges)
            return lambda row: contains(row.uid)
        if isinstance(criterion, ModSeqAtLeast):
            modseq = criterion.modseq
            return lambda row: row.modseq >= modseq
        if isinstance(criterion, DateIs):
            start = _day_start_us(criterion.day, self.zone)
            following = _next_day(criterion.day)
            end = _day_start_us(following, self.zone) if following else (1 << 63) - 1
            if criterion.relation is DateRelation.BEFORE:
                return lambda row: row.received_at < start
            if criterion.relation is DateRelation.ON:
                return lambda row: start <= row.received_at < end
            return lambda row: row.received_at >= start
        raise TypeError(f"not a row criterion: {criterion!r}")

    async def _sent_date(self, criterion: DateIs, domain: list[MessageRow]) -> list[MessageRow]:
        ids = [row.email_id for row in domain]
        stored = await self.database.read(
            lambda conn: queries.envelopes(conn, ids, mailbox_id=self.mailbox_id)
        )
        day, relation = criterion.day, criterion.relation

        def matches(row: MessageRow) -> bool:
            written = written_date(stored.get(row.email_id, b""))
            if written is None:
                return False
            if relation is DateRelation.BEFORE:
                return written < day
            if relation is DateRelation.ON:
                return written == day
            return written >= day

        return [row for row in domain if matches(row)]

    async def _contains_text(
        self, criterion: ContainsText, domain: list[MessageRow]
    ) -> list[MessageRow]:
        needle = fold(criterion.text)
        ids = [row.email_id for row in domain]
        if criterion.field is TextField.SUBJECT:
            subjects = await self.database.read(
                lambda conn: queries.subjects(conn, ids, mailbox_id=self.mailbox_id)
            )
            return [row for row in domain if needle in fold(subjects.get(row.email_id, ""))]
        if criterion.field in _ADDRESS_KEYS:
            key = _ADDRESS_KEYS[criterion.field]
            lists = await self.database.read(
                lambda conn: queries.address_lists(conn, ids, key, mailbox_id=self.mailbox_id)
            )
            return [
                row for row in domain if needle in fold(_address_text(lists.get(row.email_id, [])))
            ]
        if criterion.field is TextField.BODY:
            return await self._body_contains(criterion.text, domain)
        # TEXT: the header or the body (RFC 9051 §6.4.4).
        in_header = await self._in_headers(criterion.text, domain)
        rest = [row for row in domain if row.uid not in in_header]
        in_body = _uids(await self._body_contains(criterion.text, rest))
        return [row for row in domain if row.uid in in_header or row.uid in in_body]

    async def _catch_up_index(self) -> None:
        """Index the account's search documents still waiting (``store.search``: new
        mail is indexed in batches), once per search, before the index is read: a
        search sees every message committed before it started."""
        if self._index_caught_up:
            return
        account_id = self.account_id
        if await self.database.read(lambda conn: has_waiting(conn, account_id)):
            await self.database.write(lambda ctx: index_waiting(ctx.conn, account_id))
        self._index_caught_up = True

    async def _in_headers(self, text: str, domain: list[MessageRow]) -> set[int]:
        """UIDs of the rows whose header text (every field, decoded) contains ``text``.

        The full-text index's ``headers`` column names the candidates (every word of
        ``text`` begins a word of the header, as for BODY); only their headers are read
        and checked for the substring. Emails stored before the index had headers
        (``search_headers_pending``) are all read, then indexed, once."""
        needle = fold(text)
        await self._catch_up_index()

        def read(conn: Connection) -> tuple[set[int] | None, set[int]]:
            indexed = queries.text_matches(
                conn,
                account_id=self.account_id,
                mailbox_id=self.mailbox_id,
                text=text,
                fields=frozenset({Field.HEADERS}),
            )
            return indexed, pending_headers(conn, self.mailbox_id)

        indexed, pending = await self.database.read(read)
        candidates = [
            row
            for row in domain
            if indexed is None or row.email_id in indexed or row.email_id in pending
        ]
        headers = await self._header_fields(candidates)
        texts = {
            row.email_id: "\n".join(f"{name}: {value}" for name, value in headers[row.email_id])
            for row in candidates
        }
        late = {email_id: texts[email_id] for email_id in pending if email_id in texts}
        if late:
            await self.database.write(lambda ctx: index_headers(ctx.conn, late))
        return {row.uid for row in candidates if needle in fold(texts[row.email_id])}

    async def _body_contains(self, text: str, domain: list[MessageRow]) -> list[MessageRow]:
        needle = fold(text)
        if not needle or not domain:
            return domain
        await self._catch_up_index()
        indexed = await self.database.read(
            lambda conn: queries.text_matches(
                conn,
                account_id=self.account_id,
                mailbox_id=self.mailbox_id,
                text=text,
                fields=frozenset({Field.BODY}),
            )
        )
        candidates = [row for row in domain if indexed is None or row.email_id in indexed]
        small = [row for row in candidates if row.size <= BODY_SUBSTRING_LIMIT]
        matched = {row.uid for row in candidates if row.size > BODY_SUBSTRING_LIMIT}
        if indexed is None:
            matched.clear()  # no word to ask the index about: large messages cannot match
        texts = await self._body_texts(small)
        matched.update(row.uid for row in small if needle in fold(texts.get(row.email_id, "")))
        return [row for row in domain if row.uid in matched]

    async def _body_texts(self, rows: list[MessageRow]) -> dict[int, str]:
        """Decoded body text of each message, as the index saw it: the stored copy on
        SQLite, a re-parse of the blob where the backend keeps no text."""
        if not rows:
            return {}
        ids = [row.email_id for row in rows]
        stored = await self.database.read(lambda conn: stored_bodies(conn, ids))
        if stored is not None:
            return stored
        locations = await self.database.read(
            lambda conn: queries.blob_locations(conn, ids, mailbox_id=self.mailbox_id)
        )
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(_CONCURRENCY)
        texts: dict[int, str] = {}

        async def derive(email_id: int) -> None:
            location = locations.get(email_id)
            if location is None:
                return
            async with gate:
                try:
                    raw = await self.blobs.get(location.blob_hash)
                except BlobNotFound:
                    return
                parsed = await loop.run_in_executor(None, parse_message, raw)
            texts[email_id] = parsed.search_text[:MAX_INDEXED_CHARS]

        await asyncio.gather(*(derive(email_id) for email_id in ids))
        return texts

    async def _header_fields(self, domain: list[MessageRow]) -> dict[int, list[tuple[str, str]]]:
        """Each message's header fields (name, unfolded RFC 2047-decoded value), read from
        the first bytes of its blob (at most :data:`HEADER_READ_LIMIT`)."""
        missing = [row.email_id for row in domain if row.email_id not in self._headers]
        if missing:
            locations = await self.database.read(
                lambda conn: queries.blob_locations(conn, missing, mailbox_id=self.mailbox_id)
            )
            gate = asyncio.Semaphore(_CONCURRENCY)

            async def read(email_id: int) -> None:
                location = locations.get(email_id)
                fields: list[tuple[str, str]] = []
                if location is not None:
                    async with gate:
                        try:
                            block = await self.blobs.read_range(
                                location.blob_hash, 0, min(location.header_end, HEADER_READ_LIMIT)
                            )
                        except BlobNotFound:
                            block = b""
                    fields = [
                        (f.name, decode_words(unfold(f.raw_value)))
                        for f in parse_header_block(block)
                    ]
                self._headers[email_id] = fields

            await asyncio.gather(*(read(email_id) for email_id in missing))
        return {row.email_id: self._headers[row.email_id] for row in domain}

    async def _header_contains(
        self, criterion: HeaderContains, domain: list[MessageRow]
    ) -> list[MessageRow]:
        name = criterion.name.lower()
        needle = fold(criterion.text)
        fragment = criterion.text.strip().strip("<>")
        if name == "message-id" and fragment.isascii() and _PLAIN_ID.fullmatch(fragment):
            # A substring of the field without spaces or brackets inside is a substring of
            # the id it holds: only messages whose stored id contains it need reading.
            holders = await self.database.read(
                lambda conn: queries.message_id_matches(
                    conn, mailbox_id=self.mailbox_id, fragment=fragment
                )
            )
            domain = [row for row in domain if row.email_id in holders]
        headers = await self._header_fields(domain)

        def matches(row: MessageRow) -> bool:
            return any(
                field_name.lower() == name and needle in fold(value)
                for field_name, value in headers[row.email_id]
            )

        return [row for row in domain if matches(row)]


# -- sorting ------------------------------------------------------------------------------


class SortKey(StrEnum):
    """RFC 5256 §3 sort keys and RFC 5957 DISPLAYFROM/DISPLAYTO."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True)
class SortOrder:
    key: SortKey
    reverse: bool = False


def sent_date(row: MessageRow) -> int:
    """RFC 5256 §2.2 sent date: the Date header, else the internal date."""
    return row.sent_at if row.sent_at is not None else row.received_at


def _address_lists_reader(
    ids: list[int], address_field: str, mailbox_id: int | None
) -> Callable[[Connection], dict[int, list[dict[str, Any]]]]:
    return lambda conn: queries.address_lists(conn, ids, address_field, mailbox_id=mailbox_id)


def _display(addresses: list[dict[str, Any]]) -> str:
    """RFC 5957 §3: the first address's display name, else its addr-spec."""
    for address in addresses:
        name = (address.get("name") or "").strip()
        return (name or str(address.get("email") or "")).casefold()
    return ""


async def sort_messages(
    database: Database,
    *,
    rows: Sequence[MessageRow],
    order: Sequence[SortOrder],
    mailbox_id: int | None = None,
) -> list[MessageRow]:
    """RFC 5256 §3 SORT: ``rows`` (in mailbox order) sorted by each key in turn; messages
    equal on every key keep mailbox order (never reversed). Strings compare casefolded
    (an approximation of i;unicode-casemap, RFC 5051). ``mailbox_id`` (the rows'
    mailbox) lets a large sort read its keys in one scan."""
    ids = [row.email_id for row in rows]
    keys = {item.key for item in order}
    needs_fields = keys & {SortKey.CC, SortKey.FROM, SortKey.SUBJECT, SortKey.TO}
    fields = (
        await database.read(lambda conn: queries.sort_fields(conn, ids, mailbox_id=mailbox_id))
        if needs_fields
        else {}
    )
    display: dict[SortKey, dict[int, list[dict[str, Any]]]] = {}
    for key, address_field in ((SortKey.DISPLAYFROM, "from"), (SortKey.DISPLAYTO, "to")):
        if key in keys:
            display[key] = await database.read(
                _address_lists_reader(ids, address_field, mailbox_id)
            )
    empty = queries.SortFields("", "", "", "", "")

    def key_function(key: SortKey) -> Callable[[MessageRow], Any]:
        if key is SortKey.ARRIVAL:
            return lambda row: row.received_at
        if key is SortKey.DATE:
            return sent_date
        if key is SortKey.SIZE:
            return lambda row: row.size
        if key is SortKey.SUBJECT:
            return lambda row: fields.get(row.email_id, empty).sort_subject
        if key is SortKey.FROM:
            return lambda row: fields.get(row.email_id, empty).sort_from
        if key is SortKey.TO:
            return lambda row: fields.get(row.email_id, empty).sort_to
        if key is SortKey.CC:
            return lambda row: fields.get(row.email_id, empty).sort_cc
        lists = display[key]
        return lambda row: _display(lists.get(row.email_id, []))

    result = sorted(rows, key=lambda row: row.uid)
    # Stable sorts from the last key to the first: the first key decides, the next ones
    # break its ties, and the mailbox order breaks the rest.
    for item in reversed(order):
        result.sort(key=key_function(item.key), reverse=item.reverse)
    return result


# -- threading ----------------------------------------------------------------------------


class ThreadAlgorithm(StrEnum):
    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


@dataclass(frozen=True, slots=True)
class ThreadBranch:
    """A message (``uid`` None for a missing parent, RFC 5256 "dummy") and its replies."""

    uid: int | None
    children: tuple[ThreadBranch, ...] = ()


_REPLY_LEADER = re.compile(r"^\s*(?:\[[^\[\]]*\]\s*)*(?:re|fwd?)\s*(?:\[[^\[\]]*\])?\s*:", re.I)
_FWD_TRAILER = re.compile(r"\(fwd\)\s*$", re.I)
_FWD_WRAPPER = re.compile(r"^\s*(?:\[[^\[\]]*\]\s*)*\[fwd:", re.I)


def is_reply_or_forward(subject: str) -> bool:
    """RFC 5256 §2.1: base subject extraction removed a subj-leader ("Re:", "Fwd:"), a
    "(fwd)" trailer or a "[fwd: ...]" wrapper."""
    return bool(
        _REPLY_LEADER.search(subject)
        or _FWD_TRAILER.search(subject)
        or _FWD_WRAPPER.search(subject)
    )


@dataclass(eq=False)
class _Container:
    """RFC 5256 §2.2 REFERENCES: a message, or a dummy for a referenced missing one."""

    position: int = -1
    uid: int | None = None
    date: int = 0
    subject: str = ""
    reply: bool = False
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)

    @property
    def dummy(self) -> bool:
        return self.uid is None

    def adopt(self, child: _Container) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def descends_from(self, other: _Container) -> bool:
        node: _Container | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def sort_key(self) -> tuple[int, int]:
        """RFC 5256 §2.2 step 4/6: a dummy sorts as its first child."""
        if self.dummy:
            return self.children[0].sort_key() if self.children else (0, -1)
        return (self.date, self.position)

    def thread_subject(self) -> str:
        if self.dummy:
            return self.children[0].subject if self.children else ""
        return self.subject

    def branch(self) -> ThreadBranch:
        return ThreadBranch(self.uid, tuple(child.branch() for child in self.children))


async def thread_messages(
    database: Database,
    *,
    rows: Sequence[MessageRow],
    algorithm: ThreadAlgorithm,
    mailbox_id: int | None = None,
) -> list[ThreadBranch]:
    """RFC 5256 §3 THREAD over ``rows`` (in mailbox order): ORDEREDSUBJECT or REFERENCES."""
    ordered = sorted(rows, key=lambda row: row.uid)
    ids = [row.email_id for row in ordered]
    fields = await database.read(lambda conn: queries.sort_fields(conn, ids, mailbox_id=mailbox_id))
    empty = queries.SortFields("", "", "", "", "")
    if algorithm is ThreadAlgorithm.ORDEREDSUBJECT:
        return ordered_subject_threads(ordered, {i: fields.get(i, empty).sort_subject for i in ids})
    references = await database.read(
        lambda conn: queries.thread_fields(conn, ids, mailbox_id=mailbox_id)
    )
    return reference_threads(ordered, fields, references)


def ordered_subject_threads(rows: list[MessageRow], subjects: dict[int, str]) -> list[ThreadBranch]:
    """RFC 5256 §3 ORDEREDSUBJECT: group by base subject; in each group, by sent date, the
    first message is the parent of all others; threads by the first message's sent date."""
    groups: dict[str, list[tuple[int, int, MessageRow]]] = {}
    for position, row in enumerate(rows):
        groups.setdefault(subjects[row.email_id], []).append((sent_date(row), position, row))
    threads: list[tuple[tuple[int, int], ThreadBranch]] = []
    for members in groups.values():
        members.sort(key=lambda item: (item[0], item[1]))
        first = members[0]
        branch = ThreadBranch(first[2].uid, tuple(ThreadBranch(m[2].uid) for m in members[1:]))
        threads.append(((first[0], first[1]), branch))
    threads.sort(key=lambda item: item[0])
    return [branch for _, branch in threads]


def reference_threads(
    rows: list[MessageRow],
    fields: dict[int, queries.SortFields],
    references: dict[int, queries.ThreadFields],
) -> list[ThreadBranch]:
    """RFC 5256 §2.2 REFERENCES, its six steps, over ``rows`` in mailbox order (a pure
    function of the rows, their subjects and their message IDs)."""
    empty_fields = queries.SortFields("", "", "", "", "")
    no_references = queries.ThreadFields([], [], [])
    table: dict[str, _Container] = {}
    containers: list[_Container] = []

    def container_for(message_id: str) -> _Container:
        found = table.get(message_id)
        if found is None:
            found = table[message_id] = _Container()
            containers.append(found)
        return found

    # (1) Link messages through their references (message IDs compared exactly).
    for position, row in enumerate(rows):
        sort_fields = fields.get(row.email_id, empty_fields)
        ids = references.get(row.email_id, no_references)
        own_id = next((i for i in ids.message_ids if i), None)
        if own_id is None or (own_id in table and not table[own_id].dummy):
            # No Message-ID, or a duplicate of an earlier message's: a unique one.
            message = _Container()
            containers.append(message)
        else:
            message = container_for(own_id)
        message.position = position
        message.uid = row.uid
        message.date = sent_date(row)
        message.subject = sort_fields.sort_subject
        message.reply = is_reply_or_forward(sort_fields.subject)
        chain = [i for i in ids.references if i]
        if not chain:
            chain = [i for i in ids.in_reply_to if i][:1]
        # (1A) Each reference is the parent of the next, unless the child already has a
        # parent or the link would make a loop.
        previous: _Container | None = None
        for reference in chain:
            current = container_for(reference) if reference != own_id else message
            if (
                previous is not None
                and current.parent is None
                and current is not previous
                and not previous.descends_from(current)
            ):
                previous.adopt(current)
            previous = current
        # (1B) The last reference is the message's parent (replacing any earlier link),
        # unless that would make a loop; no reference: no parent.
        if message.parent is not None:
            message.parent.children.remove(message)
            message.parent = None
        if previous is not None and previous is not message and not previous.descends_from(message):
            previous.adopt(message)

    # (2) The root set: containers without a parent (the ID table is no longer used).
    root = [container for container in containers if container.parent is None]

    # (3) Prune dummies: drop childless ones, splice the children of the others into their
    # parent's level, but at the root only when there is a single child.
    def prune(siblings: list[_Container], at_root: bool) -> list[_Container]:
        kept: list[_Container] = []
        for container in siblings:
            container.children = prune(container.children, False)
            for child in container.children:
                child.parent = container
            if container.dummy:
                if not container.children:
                    continue
                if not at_root or len(container.children) == 1:
                    kept.extend(container.children)
                    continue
            kept.append(container)
        return kept

    root = prune(root, True)
    for container in root:
        container.parent = None

    # (4) Sort the root set by sent date (a dummy by its first child, once its children
    # are sorted).
    for container in root:
        if container.dummy:
            container.children.sort(key=_Container.sort_key)
    root.sort(key=_Container.sort_key)

    # (5) Gather threads whose thread subject (base subject) is the same.
    subject_table: dict[str, _Container] = {}
    for container in root:
        subject = container.thread_subject()
        if not subject:
            continue
        held = subject_table.get(subject)
        if (
            held is None
            or (not held.dummy and container.dummy)
            or (not held.dummy and held.reply and not container.reply)
        ):
            subject_table[subject] = container
    absorbed: set[int] = set()
    new_dummies: list[_Container] = []
    for container in list(root):
        if id(container) in absorbed:
            continue
        subject = container.thread_subject()
        if not subject:
            continue
        held = subject_table[subject]
        if held is container:
            continue
        if held.dummy and container.dummy:
            for child in list(container.children):
                held.adopt(child)
            absorbed.add(id(container))
        elif held.dummy or (container.reply and not held.reply):
            held.adopt(container)
            absorbed.add(id(container))
        else:
            dummy = _Container()
            dummy.adopt(held)
            dummy.adopt(container)
            subject_table[subject] = dummy
            absorbed.update((id(held), id(container)))
            new_dummies.append(dummy)
    root = [c for c in root if id(c) not in absorbed] + new_dummies

    # (6) Sort every set of siblings by sent date, the deepest first (a dummy sorts as
    # its first child).
    def sort_tree(siblings: list[_Container]) -> None:
        for container in siblings:
            sort_tree(container.children)
        siblings.sort(key=_Container.sort_key)

    sort_tree(root)
    return [container.branch() for container in root]
