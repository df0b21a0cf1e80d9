"""A mailbox filled through the mail service, searched through the IMAP search entry
points with search keys parsed by the real IMAP parser (tests of imap/search.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from hirondelle.imap import search as imap_search
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ThreadNode
from hirondelle.services import Services
from hirondelle.store import emails, schema
from tests.imap.helpers import command
from tests.store.test_mail_store import inbox_of


def build_message(
    *,
    subject: str = "Hello",
    sender: str = "Carol <carol@elsewhere.test>",
    to: str = "alice@example.test",
    cc: str | None = None,
    bcc: str | None = None,
    date: str | None = "Sun, 22 Nov 2026 10:00:00 +0100",
    body: str = "Just a short note.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A text/plain message with exactly the given header fields (CRLF line ends)."""
    headers = [("From", sender), ("To", to)]
    if cc is not None:
        headers.append(("Cc", cc))
    if bcc is not None:
        headers.append(("Bcc", bcc))
    headers.append(("Subject", subject))
    if date is not None:
        headers.append(("Date", date))
    if message_id is not None:
        headers.append(("Message-ID", f"<{message_id}>"))
    if in_reply_to is not None:
        headers.append(("In-Reply-To", f"<{in_reply_to}>"))
    if references is not None:
        headers.append(("References", references))
    headers.extend(extra)
    headers.append(("MIME-Version", "1.0"))
    headers.append(("Content-Type", "text/plain; charset=utf-8"))
    text = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n" + body + "\r\n"
    return text.encode("utf-8")


def us(moment: datetime) -> int:
    """An aware datetime as the store's microseconds since the epoch."""
    return int(moment.timestamp() * 1_000_000)


@dataclass
class Mailbox:
    """One account's inbox and the IMAP view of it."""

    services: Services
    account_id: int
    mailbox_id: int
    uids: list[int] = field(default_factory=list)

    @classmethod
    async def create(cls, services: Services) -> Mailbox:
        # No password: argon2 would only slow every test down.
        await services.accounts.add_domain("example.test")
        account = await services.accounts.add_account("alice@example.test", password=None)
        inbox = await inbox_of(services, account)
        return cls(services, account.id, inbox.id)

    async def append(
        self, raw: bytes, *, flags: Sequence[str] = (), received_at: int | None = None
    ) -> int:
        stored = await self.services.mail.append(
            account_id=self.account_id,
            mailbox_id=self.mailbox_id,
            raw=raw,
            keywords=[f.lower().replace("\\", "$") for f in flags],
            received_at=received_at,
        )
        uid = stored.uids[self.mailbox_id]
        self.uids.append(uid)
        return uid

    async def expunge(self, uid: int) -> None:
        await self.services.database.write(
            lambda ctx: emails.remove_from_mailbox(
                ctx, account_id=self.account_id, mailbox_id=self.mailbox_id, uids=[uid]
            )
        )
        self.uids.remove(uid)

    async def set_flags(self, uid: int, *flags: str) -> None:
        email_id = await self.email_id(uid)
        await self.services.database.write(
            lambda ctx: emails.set_keywords(
                ctx,
                account_id=self.account_id,
                email_ids=[email_id],
                add=[f.lower().replace("\\", "$") for f in flags],
            )
        )

    async def email_id(self, uid: int) -> int:
        mm = schema.mailbox_messages
        return int(
            await self.services.database.read(
                lambda conn: conn.execute(
                    sa.select(mm.c.email_id).where(
                        mm.c.mailbox_id == self.mailbox_id, mm.c.uid == uid
                    )
                ).scalar_one()
            )
        )

    async def modseqs(self) -> dict[int, int]:
        view = await self.services.database.read(
            lambda conn: emails.list_messages(conn, self.mailbox_id)
        )
        return {message.uid: message.modseq for message in view}

    def context(
        self,
        *,
        uids: Sequence[int] | None = None,
        saved: Sequence[int] | None = None,
        recent: Sequence[int] = (),
    ) -> imap_search.SearchContext:
        return imap_search.SearchContext(
            account_id=self.account_id,
            mailbox_id=self.mailbox_id,
            uids=list(self.uids if uids is None else uids),
            saved_uids=saved,
            recent_uids=frozenset(recent),
        )

    async def search_result(
        self, criteria: str | bytes, context: imap_search.SearchContext | None = None
    ) -> imap_search.SearchResult:
        """UID SEARCH with ``criteria`` as a client would send them (parsed by the real
        parser, which must accept them)."""
        line = criteria.encode() if isinstance(criteria, str) else criteria
        parsed = command(b"t UID SEARCH " + line + b"\r\n", c.Search)
        return await imap_search.search(
            self.services, context or self.context(), parsed.criteria, charset=parsed.charset
        )

    async def search(
        self, criteria: str | bytes, context: imap_search.SearchContext | None = None
    ) -> list[int]:
        return (await self.search_result(criteria, context)).uids

    async def sort(
        self, program: str, context: imap_search.SearchContext | None = None
    ) -> list[int]:
        """UID SORT (criteria) charset search-key..., e.g. "(REVERSE DATE) UTF-8 ALL"."""
        parsed = command(b"t UID SORT " + program.encode() + b"\r\n", c.Sort)
        return await imap_search.sort(
            self.services,
            context or self.context(),
            parsed.criteria,
            parsed.search,
            charset=parsed.charset,
        )

    async def thread(self, program: str) -> list[ThreadNode]:
        """UID THREAD algorithm charset search-key..., e.g. "REFERENCES UTF-8 ALL"."""
        parsed = command(b"t UID THREAD " + program.encode() + b"\r\n", c.Thread)
        return await imap_search.thread(
            self.services, self.context(), parsed.algorithm, parsed.search, charset=parsed.charset
        )
