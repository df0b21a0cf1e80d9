"""FETCH, served from data prepared at ingest.

RFC 9051 §6.4.5 FETCH and §7.5.2 (FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY,
BODYSTRUCTURE, BODY[section]<partial>, BODY.PEEK, BINARY, BINARY.PEEK, BINARY.SIZE,
UID; the RFC 3501 RFC822, RFC822.HEADER and RFC822.TEXT forms); RFC 3516 BINARY;
RFC 7162 §3.1.4 MODSEQ and CHANGEDSINCE, §3.2.6 VANISHED.

DESIGN.md "Hot paths": ENVELOPE and BODYSTRUCTURE are stored rendered, so ``FETCH 1:*
(FLAGS ENVELOPE)`` is one query and a join of byte strings; UID/FLAGS/MODSEQ alone come
from the selected view without any query. Sections are located with the stored part
map and streamed from the blob store; only HEADER.FIELDS and BINARY read bytes into
memory (BINARY decodes on a worker thread when the part is large).

\\Seen side effect (RFC 9051 §6.4.5): BODY[...], BINARY[...], RFC822 and RFC822.TEXT
set \\Seen unless the mailbox is read-only; the FETCH response then carries FLAGS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hirondelle.imap.commands import SELECTED, Done, No, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.commands import FetchAttribute as A
from hirondelle.imap.proto.response import FetchResponse, LiteralRef, format_date_time
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.mail.keywords import SEEN
from hirondelle.store.emails import FetchRow

if TYPE_CHECKING:
    from hirondelle.imap.session import Session

#: Items the selected view answers without a query.
_FROM_VIEW = frozenset({A.UID, A.FLAGS, A.MODSEQ})
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
#: Parts larger than this are decoded (BINARY) on a worker thread.
_DECODE_INLINE = 64 * 1024
#: Literals up to this size are read whole and sent with the rest of the response in
#: one write; larger ones are streamed in the blob store's chunks.
_READ_WHOLE = 256 * 1024

# Part map entries (store.emails.structure_document): section, header_start,
# body_start, end, content_type, transfer_encoding, is_multipart, is_message.
Part = list[object]


def _sets_seen(item: c.FetchItem) -> bool:
    if isinstance(item, c.FetchBody | c.FetchBinary):
        return not item.peek
    return item in (A.RFC822, A.RFC822_TEXT)


def _needs_structure(item: c.FetchItem) -> bool:
    if isinstance(item, c.FetchBody):
        return bool(item.section.part)
    return isinstance(item, c.FetchBinary | c.FetchBinarySize)


@handles(c.Fetch, SELECTED)
async def fetch(session: Session, command: c.Fetch) -> Done:
    """RFC 9051 §6.4.5."""
    view = session.require_selected()
    uids = session.uids_of(command.sequence_set, uid=command.uid)
    items = list(command.items)
    if command.uid and A.UID not in items:
        items.insert(0, A.UID)  # RFC 9051 §6.4.9: UID FETCH always returns the UID
    if command.changed_since is not None or A.MODSEQ in items:
        session.enabled.add("CONDSTORE")  # RFC 7162 §3.1: CONDSTORE-enabling
    if command.changed_since is not None:
        if A.MODSEQ not in items:
            items.append(A.MODSEQ)
        since = command.changed_since
        uids = [u for u in uids if view.modseqs[view.index_of(u) or 0] > since]
        if command.vanished:
            await _vanished(session, command, since)
    seen_changed: set[int] = set()
    if uids and not view.read_only and any(_sets_seen(item) for item in items):
        outcome = await session.messages.set_flags(
            session.account_id, view.mailbox_id, uids, add=[SEEN]
        )
        for changed in outcome.changed:
            view.update(changed)
        seen_changed = {v.uid for v in outcome.changed}
    if seen_changed and A.FLAGS not in items:
        items.append(A.FLAGS)
    if all(isinstance(item, A) and item in _FROM_VIEW for item in items):
        await _fetch_light(session, uids, items)
        return Done()
    if all(isinstance(item, A) and item in _STORED for item in items):
        await _fetch_stored(session, uids, items)
        return Done()
    with_structure = any(_needs_structure(item) for item in items)
    for start in range(0, len(uids), 2000):
        batch = uids[start : start + 2000]
        rows = await session.messages.fetch_rows(
            view.mailbox_id, batch, with_structure=with_structure
        )
        for row in rows:
            index = view.index_of(row.uid)
            if index is None:
                continue
            response = session.encoder.fetch(index + 1)
            parts = _parts(row) if with_structure else {}
            for item in items:
                await _item(session, response, row, item, parts, index)
            await _send(session, response)
    return Done()


async def _vanished(session: Session, command: c.Fetch, since: int) -> None:
    """RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED)."""
    view = session.require_selected()
    if not command.uid or not session.qresync:
        raise No("VANISHED needs UID FETCH and ENABLE QRESYNC", "CLIENTBUG")
    try:
        changes = await session.messages.changes(session.account_id, view.mailbox_id, since)
    except Exception:  # older than the journal: nothing precise to say
        return
    largest = max(view.uidnext - 1, 1)
    gone = [u for u in changes.destroyed if command.sequence_set.contains(u, largest)]
    if gone:
        session.write(session.encoder.vanished(SequenceSet.of(*gone), earlier=True))


#: Items answered from columns stored at ingest, without reading a blob.
_STORED = frozenset(
    {
        A.UID,
        A.FLAGS,
        A.MODSEQ,
        A.INTERNALDATE,
        A.RFC822_SIZE,
        A.ENVELOPE,
        A.BODY,
        A.BODYSTRUCTURE,
    }
)


async def _fetch_stored(session: Session, uids: list[int], items: list[c.FetchItem]) -> None:
    """FETCH of stored items only (the ``ALL``/``FAST``/``FULL`` macros, a message
    list's ``FLAGS ENVELOPE``): one query per batch, lines formatted directly."""
    view = session.require_selected()
    names = [item.value for item in items if isinstance(item, A) and item is not A.UID]
    position = {name: i + 1 for i, name in enumerate(names)}
    # Enum attribute lookups cost a quarter of this loop's time when made per message:
    # each item's column and prefix are worked out once.
    plan = [
        (item, position.get(item.value, 0), item.value.encode("ascii") + b" ")  # type: ignore[union-attr]
        for item in items
    ]
    rendered: dict[str, bytes] = {}
    dates: dict[int, bytes] = {}
    for start in range(0, len(uids), 5000):
        batch = uids[start : start + 5000]
        rows = await session.messages.stored_items(view.mailbox_id, batch, names)
        out: list[bytes] = []
        for row in rows:
            uid = row[0]
            index = view.index_of(uid)
            if index is None:
                continue
            parts: list[bytes] = []
            for item, column, prefix in plan:
                if item is A.UID:
                    parts.append(b"UID %d" % uid)
                    continue
                value = row[column]
                if item is A.FLAGS:
                    flags = rendered.get(value)
                    if flags is None:
                        flags = " ".join(session.flags_of(value)).encode("ascii")
                        rendered[value] = flags
                    parts.append(b"FLAGS (" + flags + b")")
                elif item is A.MODSEQ:
                    parts.append(b"MODSEQ (%d)" % max(value, view.modseqs[index]))
                elif item is A.INTERNALDATE:
                    date = dates.get(value)
                    if date is None:
                        moment = datetime.fromtimestamp(value / 1_000_000, UTC)
                        date = format_date_time(moment)
                        dates[value] = date
                    parts.append(b"INTERNALDATE " + date)
                elif item is A.RFC822_SIZE:
                    parts.append(b"RFC822.SIZE %d" % value)
                else:
                    parts.append(prefix + bytes(value))
            out.append(b"* %d FETCH (" % (index + 1) + b" ".join(parts) + b")\r\n")
            if len(out) >= 256:
                session.write(b"".join(out))
                out.clear()
                await session.connection.maybe_drain()
        if out:
            session.write(b"".join(out))
        await session.connection.maybe_drain()


async def _fetch_light(session: Session, uids: list[int], items: list[c.FetchItem]) -> None:
    """UID, MODSEQ from the view; FLAGS with one narrow query (no message data)."""
    view = session.require_selected()
    keywords: dict[int, str] = {}
    if A.FLAGS in items:
        for start in range(0, len(uids), 20000):
            batch = uids[start : start + 20000]
            keywords = await session.messages.keywords_of(view.mailbox_id, batch)
            await _write_light(session, batch, items, keywords)
        return
    await _write_light(session, uids, items, keywords)


async def _write_light(
    session: Session, uids: list[int], items: list[c.FetchItem], keywords: dict[int, str]
) -> None:
    """The same bytes FetchResponse would build, formatted directly: this loop runs for
    every message of ``FETCH 1:* (UID FLAGS)``, which sync clients send on each run."""
    view = session.require_selected()
    rendered: dict[str, bytes] = {}  # a mailbox has few distinct keyword sets
    out: list[bytes] = []
    for uid in uids:
        index = view.index_of(uid)
        if index is None or (A.FLAGS in items and uid not in keywords):
            continue  # expunged meanwhile
        parts: list[bytes] = []
        for item in items:
            if item is A.UID:
                parts.append(b"UID %d" % uid)
            elif item is A.FLAGS:
                text = keywords[uid]
                flags = rendered.get(text)
                if flags is None:
                    flags = " ".join(session.flags_of(text)).encode("ascii")
                    rendered[text] = flags
                parts.append(b"FLAGS (" + flags + b")")
            elif item is A.MODSEQ:
                parts.append(b"MODSEQ (%d)" % view.modseqs[index])
        out.append(b"* %d FETCH (" % (index + 1) + b" ".join(parts) + b")\r\n")
        if len(out) >= 512:
            session.write(b"".join(out))
            out.clear()
            await session.connection.maybe_drain()
    if out:
        session.write(b"".join(out))


def _parts(row: FetchRow) -> dict[str, Part]:
    if row.structure is None:
        return {}
    document = json.loads(row.structure)
    return {str(part[0]): part for part in document.get("parts", [])}


async def _item(
    session: Session,
    response: FetchResponse,
    row: FetchRow,
    item: c.FetchItem,
    parts: dict[str, Part],
    index: int,
) -> None:
    view = session.require_selected()
    if isinstance(item, A):
        if item is A.UID:
            response.uid(row.uid)
        elif item is A.FLAGS:
            response.flags(session.flags_of(row.keywords))
        elif item is A.MODSEQ:
            response.modseq(max(view.modseqs[index], row.modseq))
        elif item is A.INTERNALDATE:
            response.internal_date(datetime.fromtimestamp(row.received_at / 1_000_000, UTC))
        elif item is A.RFC822_SIZE:
            response.size(row.size)
        elif item is A.ENVELOPE:
            response.raw("ENVELOPE", row.envelope)
        elif item is A.BODY:
            response.raw("BODY", row.body)
        elif item is A.BODYSTRUCTURE:
            response.raw("BODYSTRUCTURE", row.body_structure)
        elif item is A.RFC822:
            response.stream("RFC822", row.size, (row.blob_hash, 0, row.size))
        elif item is A.RFC822_HEADER:
            response.stream("RFC822.HEADER", row.header_end, (row.blob_hash, 0, row.header_end))
        elif item is A.RFC822_TEXT:
            length = row.size - row.header_end
            response.stream("RFC822.TEXT", length, (row.blob_hash, row.header_end, row.size))
        return
    if isinstance(item, c.FetchBody):
        await _body(session, response, row, item, parts)
    elif isinstance(item, c.FetchBinary):
        data = await _binary(session, row, item.part, parts)
        if item.partial is not None:
            origin, length = item.partial
            data = data[origin : origin + length]
        response.literal(item.response_name, data, binary=True)
    else:
        data = await _binary(session, row, item.part, parts)
        response.number(item.response_name, len(data))


def _range(
    row: FetchRow, section: c.Section, parts: dict[str, Part]
) -> tuple[int, int] | tuple[int, int, str] | None:
    """Where a section's bytes are in the blob: (start, end), or (start, end, "fields")
    when header fields must be filtered, or (start, end, "message-header"/"message-text")
    for an encapsulated message's header or text. None: no such part."""
    text = section.text
    if not section.part:
        if text is None:
            return (0, row.size)
        if text == "TEXT":
            return (row.header_end, row.size)
        if text == "HEADER":
            return (0, row.header_end)
        return (0, row.header_end, "fields")
    key = ".".join(str(n) for n in section.part)
    part = parts.get(key)
    if part is None:
        return None
    header_start, body_start, end = int(part[1]), int(part[2]), int(part[3])  # type: ignore[call-overload]
    is_message = bool(part[7])
    if text is None:
        return (body_start, end)
    if text == "MIME":
        return (header_start, body_start)
    if not is_message:
        return None
    if text == "HEADER":
        return (body_start, end, "message-header")
    if text == "TEXT":
        return (body_start, end, "message-text")
    return (body_start, end, "message-fields")


def _header_end(data: bytes) -> int:
    for separator in (b"\r\n\r\n", b"\n\n"):
        position = data.find(separator)
        if position >= 0:
            return position + len(separator)
    return len(data)


def filter_header(header: bytes, names: tuple[str, ...], *, exclude: bool) -> bytes:
    """RFC 9051 §6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: the matching fields, with
    their folded lines, then the blank line."""
    wanted = {name.upper() for name in names}
    out: list[bytes] = []
    keep = False
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").upper()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(out) + b"\r\n"


async def _body(
    session: Session,
    response: FetchResponse,
    row: FetchRow,
    item: c.FetchBody,
    parts: dict[str, Part],
) -> None:
    """BODY[section]<partial>: streamed from the blob when it is a plain byte range."""
    located = _range(row, item.section, parts)
    blobs = session.services.blobs
    if located is None:
        response.literal(item.response_name, b"")
        return
    start, end = located[0], located[1]
    data: bytes | None = None
    if len(located) == 3:
        kind = located[2]
        if kind == "fields":
            header = await blobs.read_range(row.blob_hash, start, end)
            data = filter_header(
                header, item.section.fields, exclude=item.section.text == "HEADER.FIELDS.NOT"
            )
        else:
            inner = await blobs.read_range(row.blob_hash, start, end)
            split = _header_end(inner)
            if kind == "message-header":
                data = inner[:split]
            elif kind == "message-text":
                data = inner[split:]
            else:
                data = filter_header(
                    inner[:split],
                    item.section.fields,
                    exclude=item.section.text == "HEADER.FIELDS.NOT",
                )
    if data is not None:
        if item.partial is not None:
            origin, length = item.partial
            data = data[origin : origin + length]
        response.literal(item.response_name, data)
        return
    if item.partial is not None:
        origin, length = item.partial
        start, end = min(start + origin, end), min(start + origin + length, end)
    response.stream(item.response_name, end - start, (row.blob_hash, start, end))


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """RFC 3516 §4.2: the part with its Content-Transfer-Encoding removed.

    Raises LookupError for an encoding this server does not know (UNKNOWN-CTE)."""
    encoding = encoding.lower()
    if encoding in ("", "7bit", "8bit", "binary"):
        return data
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    if encoding == "base64":
        # RFC 2045 §6.8: characters outside the alphabet are ignored; a dangling
        # single character (corrupt input) is dropped rather than failing the FETCH.
        cleaned = _NOT_BASE64.sub(b"", data)
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
    raise LookupError(encoding)


async def _binary(
    session: Session, row: FetchRow, part_numbers: tuple[int, ...], parts: dict[str, Part]
) -> bytes:
    blobs = session.services.blobs
    if not part_numbers:
        return await blobs.read_range(row.blob_hash, 0, row.size)
    part = parts.get(".".join(str(n) for n in part_numbers))
    if part is None:
        raise No("No such message part", "NONEXISTENT")
    body_start, end = int(part[2]), int(part[3])  # type: ignore[call-overload]
    encoding = str(part[5] or "")
    data = await blobs.read_range(row.blob_hash, body_start, end)
    if bool(part[6]):
        return data
    try:
        if len(data) > _DECODE_INLINE:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, decode_transfer, data, encoding)
        return decode_transfer(data, encoding)
    except LookupError:
        raise No(f"Unknown Content-Transfer-Encoding {encoding}", "UNKNOWN-CTE") from None


async def _send(session: Session, response: FetchResponse) -> None:
    """Write a FETCH response. A literal up to :data:`_READ_WHOLE` is read in one blob
    read and the response leaves in one write (``UID FETCH n BODY.PEEK[]`` of a usual
    message: one thread hop, one send); larger ones are streamed in chunks, never whole
    in memory."""
    connection = session.connection
    blobs = session.services.blobs
    pending: list[bytes] = []
    for piece in response.pieces():
        if isinstance(piece, LiteralRef):
            handle: tuple[str, int, int] = piece.handle  # type: ignore[assignment]
            blob_hash, start, end = handle
            if end - start <= _READ_WHOLE:
                pending.append(await blobs.read_range(blob_hash, start, end))
                continue
            if pending:
                connection.write(b"".join(pending))
                pending.clear()
            async for chunk in blobs.stream(blob_hash, start, end):
                connection.write(chunk)
                await connection.maybe_drain()
        else:
            pending.append(piece)
    if pending:
        connection.write(b"".join(pending))
    await connection.maybe_drain()
