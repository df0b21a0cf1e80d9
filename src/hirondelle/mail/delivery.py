"""Putting messages into mailboxes: the one path every way of arrival takes.

SMTP and LMTP delivery, IMAP APPEND, JMAP Email/import and the webmail's drafts all end
here: the message is parsed once (on a worker thread), its blob is written and fsynced,
then one transaction files it. The caller's ``await`` returns after that transaction is
durable, so a protocol may answer "stored" as soon as it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

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


def _canonical_parse(raw: bytes) -> tuple[bytes, ParsedMessage]:
    canonical = canonicalize_line_endings(raw)
    return canonical, parse_message(canonical)


class MailService:
    def __init__(self, database: Database, blobs: FileBlobStore, *, parse_workers: int = 2) -> None:
        self.database = database
        self.blobs = blobs
        self._parse_pool = ThreadPoolExecutor(max_workers=parse_workers, thread_name_prefix="mime")
        # Set by the services once scheduling exists (it is built after mail).
        self.calendar_mail: CalendarMail | None = None
        #: Set by open_services: auto-replies (RFC 8621 §8) after a durable delivery.
        self.observer: DeliveryObserver | None = None

    async def ingest(self, raw: bytes) -> Ingested:
        """Parse once and store the content durably; nothing is filed yet.

        Line endings are made canonical first (bare LF -> CRLF, RFC 5322 §2.1): what is
        stored is what IMAP FETCH and POP3 RETR send, byte for byte, so RFC822.SIZE and
        LIST sizes are the blob's size. (DKIM and the other checks on the message as
        received run before ingest, on the original bytes.)
        """
        loop = asyncio.get_running_loop()
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

    async def deliver(
        self, raw: bytes, account_ids: Sequence[int], *, mail_from: str | None = None
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
            await self._tell_calendar(self.calendar_mail, raw, outcomes)
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
        raw: bytes,
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
