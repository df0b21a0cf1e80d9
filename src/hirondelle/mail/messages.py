"""Message rules every protocol shares: flags, copy, move, expunge, and the views a
client keeps in sync.

RFC 9051 §6.4.3 (EXPUNGE), §6.4.6 (STORE), §6.4.7 (COPY), §6.4.8 (MOVE, RFC 6851),
§6.4.9 (UID EXPUNGE); RFC 7162 §3.1.3 (STORE UNCHANGEDSINCE: the comparison happens in
the same transaction as the change, so no concurrent change slips between them);
RFC 4315 (the UIDs COPYUID/APPENDUID report). JMAP Email/set will call the same
functions. Keywords are in their stored (JMAP) spelling here; protocols map them with
:mod:`hirondelle.mail.keywords`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mail.delivery import MailService, MessageSource
from hirondelle.mail.keywords import DELETED
from hirondelle.store import emails, journal, mailboxes
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.emails import FetchRow, KnownColumns, MailboxColumns, MessageView
from hirondelle.store.journal import CannotCalculateChanges
from hirondelle.store.mailboxes import Mailbox

__all__ = [
    "CannotCalculateChanges",
    "FlagOutcome",
    "MailboxChanges",
    "MailboxSnapshot",
    "MessageService",
    "NewMessage",
    "Transfer",
]


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A mailbox and its messages at one account modseq (one read transaction)."""

    mailbox: Mailbox
    messages: MailboxColumns
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """What changed in a mailbox after a modseq: new or changed messages (current
    state) and the UIDs that left it."""

    modseq: int
    changed: list[MessageView]
    destroyed: list[int]
    mailbox: Mailbox | None


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    changed: list[MessageView] = field(default_factory=list)
    #: Every message of the request that was not refused, as it is after the change.
    current: list[MessageView] = field(default_factory=list)
    #: RFC 7162 §3.1.3: UIDs not changed because they were modified after UNCHANGEDSINCE.
    modified: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Transfer:
    """RFC 4315 COPYUID data: source UIDs and the target UIDs they became, in order."""

    uidvalidity: int
    source_uids: list[int]
    target_uids: list[int]


def _target(conn: Connection, account_id: int, mailbox_id: int) -> Mailbox:
    mailbox = mailboxes.get_mailbox_by_id(conn, account_id, mailbox_id)
    if mailbox is None:
        raise Refused(Reason.NOT_FOUND, "no such mailbox")
    return mailbox


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message to append: raw bytes or a file object (read from offset 0 on a
    worker thread, closed by the caller after ``append`` returns: a big IMAP literal
    is never held whole in memory), stored keywords, internal date (µs) or None."""

    raw: MessageSource
    keywords: frozenset[str] = frozenset()
    received_at: int | None = None


class MessageService:
    def __init__(self, database: Database, mail: MailService) -> None:
        self.database = database
        self.mail = mail

    async def append(
        self, account_id: int, mailbox_id: int, messages: Sequence[NewMessage]
    ) -> list[int]:
        """RFC 9051 §6.3.12 APPEND and RFC 3502 MULTIAPPEND: every message is parsed and
        its blob made durable first, then one transaction files them all or none; the
        new UIDs, in order. Returns after commit (OK only once durable)."""
        ingested = [await self.mail.ingest(message.raw) for message in messages]

        def write(ctx: WriteContext) -> list[int]:
            uids = []
            for message, item in zip(messages, ingested, strict=True):
                stored = emails.insert_email(
                    ctx,
                    account_id=account_id,
                    mailbox_ids=[mailbox_id],
                    parsed=item.parsed,
                    blob=item.blob,
                    keywords=message.keywords,
                    received_at=message.received_at,
                )
                uids.append(stored.uids[mailbox_id])
            return uids

        return await self.database.write(write)

    async def snapshot(self, account_id: int, mailbox_id: int) -> MailboxSnapshot:
        """The mailbox's messages and the account modseq they are current at."""

        def read(conn: Connection) -> MailboxSnapshot:
            mailbox = _target(conn, account_id, mailbox_id)
            modseq, _floor = journal.account_modseq(conn, account_id)
            return MailboxSnapshot(mailbox, emails.mailbox_columns(conn, mailbox_id), modseq)

        return await self.database.read(read)

    async def snapshot_named(
        self,
        account_id: int,
        name: str,
        *,
        known: Callable[[int, int], KnownColumns | None] | None = None,
    ) -> MailboxSnapshot:
        """:meth:`snapshot` of the mailbox called ``name`` (IMAP SELECT), in the same
        single read: one trip to a database thread instead of two. Refused(NOT_FOUND)
        when there is no such mailbox.

        ``known(mailbox_id, account_modseq)`` may return the mailbox's UID and modseq
        columns as the caller already holds them, read at that account modseq or an
        earlier one: they are not read again, only brought up to date from the journal
        (``emails.mailbox_columns``). It runs on the database thread."""
        canonical = mailboxes.normalize_name(name)

        def read(conn: Connection) -> MailboxSnapshot:
            mailbox = mailboxes.get_mailbox(conn, account_id, canonical)
            if mailbox is None:
                raise Refused(Reason.NOT_FOUND, "no such mailbox")
            modseq, _floor = journal.account_modseq(conn, account_id)
            held = known(mailbox.id, modseq) if known is not None else None
            columns = emails.mailbox_columns(conn, mailbox.id, known=held, account_id=account_id)
            return MailboxSnapshot(mailbox, columns, modseq)

        return await self.database.read(read)

    async def changes(self, account_id: int, mailbox_id: int, since: int) -> MailboxChanges:
        """Messages created, changed or removed after ``since``, from the journal.

        Raises CannotCalculateChanges when ``since`` is older than the journal keeps.
        """

        def read(conn: Connection) -> MailboxChanges:
            found = journal.changes_since(
                conn, account_id, "MailboxMessage", since, container_id=mailbox_id
            )
            touched = found.created + found.updated
            changed = emails.message_views(conn, mailbox_id, touched) if touched else []
            mailbox = mailboxes.get_mailbox_by_id(conn, account_id, mailbox_id)
            return MailboxChanges(found.new_modseq, changed, sorted(found.destroyed), mailbox)

        return await self.database.read(read)

    async def views(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageView]:
        """UID, modseq and keywords of some messages (FETCH FLAGS, QRESYNC)."""
        return await self.database.read(lambda conn: emails.message_views(conn, mailbox_id, uids))

    async def keywords_of(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, str]:
        """UID -> stored keywords (FETCH FLAGS without message data)."""
        return await self.database.read(lambda conn: emails.keywords_of(conn, mailbox_id, uids))

    async def stored_items(
        self, mailbox_id: int, uids: Sequence[int], names: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """(UID, *stored values) for FETCH items prepared at ingest."""
        return await self.database.read(
            lambda conn: emails.stored_items(conn, mailbox_id, uids, names)
        )

    async def fetch_rows(
        self, mailbox_id: int, uids: Sequence[int], *, with_structure: bool
    ) -> list[FetchRow]:
        return await self.database.read(
            lambda conn: emails.fetch_rows(conn, mailbox_id, uids, with_structure=with_structure)
        )

    async def set_flags(
        self,
        account_id: int,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
        unchanged_since: int | None = None,
    ) -> FlagOutcome:
        """Change keywords of messages of a mailbox (RFC 9051 §6.4.6), with the RFC 7162
        §3.1.3 UNCHANGEDSINCE test in the same transaction."""
        add_list, remove_list = list(add), list(remove)
        replace_list = list(replace) if replace is not None else None

        def write(ctx: WriteContext) -> FlagOutcome:
            views = emails.message_views(ctx.conn, mailbox_id, uids)
            modified: list[int] = []
            if unchanged_since is not None:
                modified = [v.uid for v in views if v.modseq > unchanged_since]
                views = [v for v in views if v.modseq <= unchanged_since]
            changes = emails.set_keywords(
                ctx,
                account_id=account_id,
                email_ids=[v.email_id for v in views],
                add=add_list,
                remove=remove_list,
                replace=replace_list,
            )
            by_email = {change.email_id: change for change in changes}
            current = [
                MessageView(
                    v.uid,
                    by_email[v.email_id].modseq,
                    v.email_id,
                    emails.serialize_keywords(by_email[v.email_id].keywords),
                )
                if v.email_id in by_email
                else v
                for v in views
            ]
            changed = [v for v in current if v.email_id in by_email]
            return FlagOutcome(changed, current, modified)

        return await self.database.write(write)

    async def copy(
        self, account_id: int, mailbox_id: int, uids: Sequence[int], target_id: int
    ) -> Transfer:
        """RFC 9051 §6.4.7 COPY: new messages in the target, flags and internal date kept."""

        def write(ctx: WriteContext) -> Transfer:
            target = _target(ctx.conn, account_id, target_id)
            views = emails.message_views(ctx.conn, mailbox_id, uids)
            new_uids = emails.copy_to_mailbox(
                ctx,
                account_id=account_id,
                mailbox_id=target_id,
                email_ids=[v.email_id for v in views],
            )
            return Transfer(target.uidvalidity, [v.uid for v in views], new_uids)

        return await self.database.write(write)

    async def move(
        self, account_id: int, mailbox_id: int, uids: Sequence[int], target_id: int
    ) -> Transfer:
        """RFC 6851 / RFC 9051 §6.4.8 MOVE: copy and expunge in one transaction, so a
        message is never in both mailboxes, nor in neither, for another client."""

        def write(ctx: WriteContext) -> Transfer:
            target = _target(ctx.conn, account_id, target_id)
            if target_id == mailbox_id:
                raise Refused(Reason.CANNOT, "source and target mailbox are the same")
            views = emails.message_views(ctx.conn, mailbox_id, uids)
            new_uids = emails.copy_to_mailbox(
                ctx,
                account_id=account_id,
                mailbox_id=target_id,
                email_ids=[v.email_id for v in views],
            )
            emails.remove_from_mailbox(
                ctx, account_id=account_id, mailbox_id=mailbox_id, uids=[v.uid for v in views]
            )
            return Transfer(target.uidvalidity, [v.uid for v in views], new_uids)

        return await self.database.write(write)

    async def expunge(
        self, account_id: int, mailbox_id: int, *, uids: Sequence[int] | None = None
    ) -> list[int]:
        """RFC 9051 §6.4.3 EXPUNGE (every \\Deleted message) and §6.4.9 UID EXPUNGE
        (only those of ``uids``); the \\Deleted test happens in the transaction."""

        def write(ctx: WriteContext) -> list[int]:
            candidates = uids if uids is not None else mailboxes.message_uids(ctx.conn, mailbox_id)
            views = emails.message_views(ctx.conn, mailbox_id, candidates)
            doomed = [v.uid for v in views if DELETED in emails.parse_keywords(v.keywords)]
            return emails.remove_from_mailbox(
                ctx, account_id=account_id, mailbox_id=mailbox_id, uids=doomed
            )

        return await self.database.write(write)
