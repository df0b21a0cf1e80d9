"""Putting messages into mailboxes: the one path every way of arrival takes.

SMTP and LMTP delivery, IMAP APPEND, JMAP Email/import and the webmail's drafts all end
here: the message is parsed once (on a worker thread), its blob is written and fsynced,
then one transaction files it. The caller's ``await`` returns after that transaction is
durable, so a protocol may answer "stored" as soon as it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hirondelle.errors import Reason, Refused
from hirondelle.mime import ParsedMessage, canonicalize_line_endings, parse_message
from hirondelle.store import emails
from hirondelle.store.blobs import BlobRef, FileBlobStore
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.emails import StoredEmail


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


def _canonical_parse(raw: bytes) -> tuple[bytes, ParsedMessage]:
    canonical = canonicalize_line_endings(raw)
    return canonical, parse_message(canonical)


class MailService:
    def __init__(self, database: Database, blobs: FileBlobStore, *, parse_workers: int = 2) -> None:
        self.database = database
        self.blobs = blobs
        self._parse_pool = ThreadPoolExecutor(max_workers=parse_workers, thread_name_prefix="mime")

    async def ingest(self, raw: bytes) -> Ingested:
        """Parse once and store the content durably; nothing is filed yet.

        Line endings are made canonical first (bare LF -> CRLF, RFC 5322 §2.1): what is
        stored is what IMAP FETCH and POP3 RETR send, byte for byte, so RFC822.SIZE and
        LIST sizes are the blob's size. (DKIM and the other checks on the message as
        received run before ingest, on the original bytes.)
        """
        loop = asyncio.get_running_loop()
        canonical, parsed = await loop.run_in_executor(self._parse_pool, _canonical_parse, raw)
        blob = await self.blobs.put(canonical)
        return Ingested(parsed, blob)

    async def deliver(self, raw: bytes, account_ids: Sequence[int]) -> list[DeliveryOutcome]:
        """Deliver one message into the Inbox of each account (DESIGN.md: stored once,
        whatever the number of recipients). One recipient over quota does not stop the
        others; each gets its own outcome."""
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
                    outcomes.append(DeliveryOutcome(account_id, stored=stored))
            return outcomes

        return await self.database.write(write)

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
