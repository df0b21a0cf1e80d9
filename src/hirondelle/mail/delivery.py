"""Putting messages into mailboxes: the one path every way of arrival takes.

SMTP and LMTP delivery, IMAP APPEND, JMAP Email/import and the webmail's drafts all end
here: the message is parsed once (on a worker thread), its blob is written and fsynced,
then one transaction files it. The caller's ``await`` returns after that transaction is
durable, so a protocol may answer "stored" as soon as it returns.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from hirondelle.errors import Reason, Refused
from hirondelle.mime import ParsedMessage, canonicalize_line_endings, parse_message
from hirondelle.store import emails
from hirondelle.store.blobs import BlobRef, FileBlobStore
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.emails import StoredEmail

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ingested:
    parsed: ParsedMessage
    blob: BlobRef


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened for one account: stored, or refused with a reason."""

    account_id: int
    stored: StoredEmail | None = None
    refused: Refused | None = None


class DeliveryObserver(Protocol):
    """Told of every message delivered from a sender (the vacation responder)."""

    def delivered(
        self, parsed: ParsedMessage, account_ids: list[int], *, mail_from: str
    ) -> None: ...


class CalendarMail(Protocol):
    """The scheduling service's interest in delivered mail (RFC 6047 iMIP): told about
    each delivered message that has a text/calendar part, after it is stored."""

    async def received(self, raw: bytes, account_ids: Sequence[int]) -> None: ...


#: What a message may be handed over as: bytes, or a readable binary file object (a
#: spooled temporary file for a big IMAP literal), read from offset 0 to its end on a
#: worker thread and never closed here: the caller closes it after the call returns.
MessageSource = bytes | BinaryIO


def _canonical_parse(raw: bytes) -> tuple[bytes, ParsedMessage]:
    canonical = canonicalize_line_endings(raw)
    return canonical, parse_message(canonical)


def _ingest_small(blobs: FileBlobStore, raw: bytes) -> Ingested:
    """Parse and stage a message small enough to live inline in SQL: one worker-thread
    hop, no file I/O (the referencing transaction writes it)."""
    canonical = canonicalize_line_endings(raw)
    return Ingested(parse_message(canonical), blobs.stage(canonical))


class MappedMessage(mmap.mmap):
    """A read-only mapping of a stored message with the ``bytes`` methods the MIME parser
    uses on the whole message that ``mmap`` lacks (``startswith``, and ``count`` of one
    byte), done without copying the mapping."""

    _WINDOW = 1 << 20

    def startswith(self, prefix: bytes, start: int = 0) -> bool:
        return self[start : start + len(prefix)] == prefix

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        if len(sub) != 1:  # the parser counts single bytes only (line ends, "=")
            raise ValueError("MappedMessage.count counts one byte")
        stop = len(self) if end is None else min(end, len(self))
        total = 0
        for position in range(max(0, start), stop, self._WINDOW):
            total += self[position : min(stop, position + self._WINDOW)].count(sub)
        return total


def _source_size(source: BinaryIO) -> int:
    source.seek(0, os.SEEK_END)
    return source.tell()


def _read_source(source: BinaryIO) -> bytes:
    source.seek(0)
    return source.read()


class MailService:
    def __init__(self, database: Database, blobs: FileBlobStore, *, parse_workers: int = 2) -> None:
        self.database = database
        self.blobs = blobs
        self._parse_pool = ThreadPoolExecutor(max_workers=parse_workers, thread_name_prefix="mime")
        # Set by the services once scheduling exists (it is built after mail).
        self.calendar_mail: CalendarMail | None = None
        #: Set by open_services: auto-replies (RFC 8621 §8) after a durable delivery.
        self.observer: DeliveryObserver | None = None

    async def ingest(self, raw: MessageSource) -> Ingested:
        """Parse once and stage the content; nothing is filed yet.

        Line endings are made canonical first (bare LF -> CRLF, RFC 5322 §2.1): what is
        stored is what IMAP FETCH and POP3 RETR send, byte for byte, so RFC822.SIZE and
        LIST sizes are the blob's size. (DKIM and the other checks on the message as
        received run before ingest, on the original bytes.)

        A small message (up to the blob store's inline limit) is only hashed: its
        content travels in the returned blob ref and is written, durably, by the
        transaction that files it (:func:`hirondelle.store.emails.reference_blob`); so
        the caller must file it with ``emails.insert_email`` before answering "stored".
        A bigger one is a file, fsynced before this returns. A file object ``raw`` is
        copied to the blob store chunk by chunk (:meth:`FileBlobStore.put_file`).
        """
        loop = asyncio.get_running_loop()
        if not isinstance(raw, bytes):
            size = await loop.run_in_executor(self._parse_pool, _source_size, raw)
            if size > self.blobs.inline_limit:
                return await self._ingest_file(raw)
            raw = await loop.run_in_executor(self._parse_pool, _read_source, raw)
        if len(raw) <= self.blobs.inline_limit:
            return await loop.run_in_executor(self._parse_pool, _ingest_small, self.blobs, raw)
        if raw.count(b"\n") == raw.count(b"\r\n"):
            # Already canonical (every LF is in a CRLF; all SMTP mail, which refuses bare
            # LF): the blob's write and fsyncs need not wait for the parse, so the two
            # overlap (the fsyncs release the GIL).
            parsed, blob = await asyncio.gather(
                loop.run_in_executor(self._parse_pool, parse_message, raw), self.blobs.put(raw)
            )
            return Ingested(parsed, blob)
        canonical, parsed = await loop.run_in_executor(self._parse_pool, _canonical_parse, raw)
        blob = await self.blobs.put(canonical)
        return Ingested(parsed, blob)

    async def _ingest_file(self, source: BinaryIO) -> Ingested:
        """A big message handed over as a file: its blob is written from the file in
        chunks (canonical line endings made on the way), then parsed from the stored
        blob on a worker thread."""
        blob = await self.blobs.put_file(source, canonical_line_endings=True)
        loop = asyncio.get_running_loop()
        parsed = await loop.run_in_executor(self._parse_pool, self._parse_stored, blob)
        return Ingested(parsed, blob)

    def _parse_stored(self, blob: BlobRef) -> ParsedMessage:
        """Parse a stored blob file through a read-only mapping: the pages the parser
        touches come from the page cache and leave the process when it is unmapped, so a
        30 MB message is never copied whole into the process's memory."""
        if blob.size == 0:
            return parse_message(b"")  # an empty file cannot be mapped
        with (
            self.blobs.path(blob.hash).open("rb") as file,
            MappedMessage(file.fileno(), 0, access=mmap.ACCESS_READ) as view,
        ):
            # The parser is written for bytes; the mapping offers the few bytes methods it
            # calls on the whole message (slices are bytes). tests/store/test_streamed.py
            # checks that it gives the same result as on bytes.
            return parse_message(view)  # type: ignore[arg-type]

    async def deliver(
        self, raw: MessageSource, account_ids: Sequence[int], *, mail_from: str | None = None
    ) -> list[DeliveryOutcome]:
        """Deliver one message into the Inbox of each account (DESIGN.md: stored once,
        whatever the number of recipients). One recipient over quota does not stop the
        others; each gets its own outcome. ``mail_from``, the envelope sender, is what
        an auto-reply answers (None: not mail from a sender, e.g. a bounce we made)."""
        ingested = await self.ingest(raw)
        unique = list(dict.fromkeys(account_ids))

        def write(ctx: WriteContext) -> list[DeliveryOutcome]:
            outcomes = []
            for account_id in unique:
                inbox = emails.inbox_id(ctx.conn, account_id)
                if inbox is None:
                    outcomes.append(
                        DeliveryOutcome(account_id, refused=Refused(Reason.NOT_FOUND, "no inbox"))
                    )
                    continue
                try:
                    stored = emails.insert_email(
                        ctx,
                        account_id=account_id,
                        mailbox_ids=[inbox],
                        parsed=ingested.parsed,
                        blob=ingested.blob,
                    )
                except Refused as refused:
                    outcomes.append(DeliveryOutcome(account_id, refused=refused))
                else:
                    # RFC 8621 §1.5: EmailDelivery is pushed for delivered mail only (not
                    # APPEND, import or Email/set), so delivery journals a kind of its own.
                    ctx.journal(account_id, "EmailDelivery", stored.email_id, "created")
                    outcomes.append(DeliveryOutcome(account_id, stored=stored))
            return outcomes

        outcomes = await self.database.write(write)
        if self.observer is not None and mail_from is not None:
            stored = [o.account_id for o in outcomes if o.stored is not None]
            self.observer.delivered(ingested.parsed, stored, mail_from=mail_from)
        if self.calendar_mail is not None and any(
            part.content_type == "text/calendar" for part in ingested.parsed.parts
        ):
            content = raw if isinstance(raw, bytes) else await self.blobs.get(ingested.blob.hash)
            await self._tell_calendar(self.calendar_mail, content, outcomes)
        return outcomes

    async def _tell_calendar(
        self, calendar_mail: CalendarMail, raw: bytes, outcomes: Sequence[DeliveryOutcome]
    ) -> None:
        """The message is stored whatever happens here: an iMIP message that cannot be
        applied stays in the Inbox for the user, and the error is logged."""
        delivered = [o.account_id for o in outcomes if o.stored is not None]
        if not delivered:
            return
        try:
            await calendar_mail.received(raw, delivered)
        except Exception:
            log.exception("iMIP processing failed for accounts %s", delivered)

    async def append(
        self,
        *,
        account_id: int,
        mailbox_id: int,
        raw: MessageSource,
        keywords: Iterable[str] = (),
        received_at: int | None = None,
    ) -> StoredEmail:
        """File a message in one mailbox (IMAP APPEND, JMAP import)."""
        ingested = await self.ingest(raw)
        keyword_list = list(keywords)

        def write(ctx: WriteContext) -> StoredEmail:
            return emails.insert_email(
                ctx,
                account_id=account_id,
                mailbox_ids=[mailbox_id],
                parsed=ingested.parsed,
                blob=ingested.blob,
                keywords=keyword_list,
                received_at=received_at,
            )

        return await self.database.write(write)

    def close(self) -> None:
        self._parse_pool.shutdown(wait=True)
