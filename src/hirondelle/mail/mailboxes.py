"""Mailbox rules every protocol shares: create, rename, delete, subscribe.

RFC 9051 §6.3.4-§6.3.8 for IMAP; JMAP Mailbox/set (RFC 8621 §2.5) will call the same
functions. Decisions, written down once:

- Deleting a mailbox that has children is refused (``Reason.HAS_CHILDREN``, IMAP
  ``NO [HASCHILDREN]``, JMAP ``mailboxHasChild``): there is no \\Noselect placeholder
  mailbox in this store, so the RFC 9051 §6.3.5 alternative (keep the name as
  \\Noselect) is not taken.
- INBOX cannot be deleted (RFC 9051 §6.3.5). Renaming INBOX moves its messages to a new
  mailbox of that name and leaves INBOX, empty, in place (RFC 9051 §6.3.6).
- A mailbox's messages go when it is deleted; an email left in no mailbox is destroyed.
- Subscriptions are a property of existing mailboxes: subscribing to a name that does
  not exist is refused with ``NOT_FOUND``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.store import emails, mailboxes
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.mailboxes import INBOX, Mailbox, MailboxCounts


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    mailbox: Mailbox
    counts: MailboxCounts


class MailboxService:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def all(self, account_id: int) -> list[Mailbox]:
        return await self.database.read(lambda conn: mailboxes.list_mailboxes(conn, account_id))

    async def get(self, account_id: int, name: str) -> Mailbox:
        """The named mailbox, or Refused(NOT_FOUND)."""
        canonical = mailboxes.normalize_name(name)
        found = await self.database.read(
            lambda conn: mailboxes.get_mailbox(conn, account_id, canonical)
        )
        if found is None:
            raise Refused(Reason.NOT_FOUND, "no such mailbox")
        return found

    async def create(self, account_id: int, name: str, *, role: str | None = None) -> Mailbox:
        """RFC 9051 §6.3.4 CREATE; RFC 6154 §3 CREATE-SPECIAL-USE (``role``)."""
        return await self.database.write(
            lambda ctx: mailboxes.create_mailbox(ctx, account_id, name, role=role)
        )

    async def delete(self, account_id: int, name: str) -> None:
        """RFC 9051 §6.3.5 DELETE (see the module docstring for the rules)."""
        canonical = mailboxes.normalize_name(name)

        def write(ctx: WriteContext) -> None:
            mailbox = mailboxes.get_mailbox(ctx.conn, account_id, canonical)
            if mailbox is None:
                raise Refused(Reason.NOT_FOUND, "no such mailbox")
            delete_in(ctx, account_id, mailbox)

        await self.database.write(write)

    async def rename(self, account_id: int, name: str, new_name: str) -> Mailbox:
        """RFC 9051 §6.3.6 RENAME, with the INBOX rule."""
        canonical = mailboxes.normalize_name(name)

        def write(ctx: WriteContext) -> Mailbox:
            mailbox = mailboxes.get_mailbox(ctx.conn, account_id, canonical)
            if mailbox is None:
                raise Refused(Reason.NOT_FOUND, "no such mailbox")
            if mailbox.name != INBOX:
                return mailboxes.rename_mailbox(ctx, account_id, mailbox.id, new_name)
            target = mailboxes.create_mailbox(ctx, account_id, new_name)
            uids = mailboxes.message_uids(ctx.conn, mailbox.id)
            views = emails.message_views(ctx.conn, mailbox.id, uids)
            emails.copy_to_mailbox(
                ctx,
                account_id=account_id,
                mailbox_id=target.id,
                email_ids=[view.email_id for view in views],
            )
            emails.remove_from_mailbox(ctx, account_id=account_id, mailbox_id=mailbox.id, uids=uids)
            renamed = mailboxes.get_mailbox_by_id(ctx.conn, account_id, target.id)
            assert renamed is not None
            return renamed

        return await self.database.write(write)

    async def subscribe(self, account_id: int, name: str, *, subscribed: bool) -> None:
        """RFC 9051 §6.3.7 SUBSCRIBE / §6.3.8 UNSUBSCRIBE."""
        canonical = mailboxes.normalize_name(name)

        def write(ctx: WriteContext) -> None:
            mailbox = mailboxes.get_mailbox(ctx.conn, account_id, canonical)
            if mailbox is None:
                raise Refused(Reason.NOT_FOUND, "no such mailbox")
            mailboxes.set_subscribed(ctx, account_id, mailbox.id, subscribed)

        await self.database.write(write)

    async def status(self, account_id: int, names: list[str]) -> list[MailboxStatus]:
        """Counts of several mailboxes in one read (STATUS, LIST-STATUS)."""

        def read(conn: Connection) -> list[MailboxStatus]:
            found = [mailboxes.get_mailbox(conn, account_id, n) for n in names]
            present = [m for m in found if m is not None]
            counts = mailboxes.mailbox_counts(conn, [m.id for m in present])
            return [MailboxStatus(m, counts[m.id]) for m in present]

        return await self.database.read(read)

    async def quota(self, account_id: int) -> tuple[int, int | None]:
        """RFC 9208 STORAGE: (used bytes, limit bytes or None)."""
        return await self.database.read(lambda conn: emails.account_quota(conn, account_id))


def delete_in(ctx: WriteContext, account_id: int, mailbox: Mailbox) -> None:
    """Delete ``mailbox`` inside a write, with the rules of the module docstring (IMAP
    DELETE; JMAP Mailbox/set destroy, which checks its own mailboxHasEmail first)."""
    if mailbox.name == INBOX:
        raise Refused(Reason.CANNOT, "INBOX cannot be deleted")
    if mailboxes.children(ctx.conn, account_id, mailbox.id):
        raise Refused(Reason.HAS_CHILDREN, "mailbox has children; delete them first")
    uids = mailboxes.message_uids(ctx.conn, mailbox.id)
    emails.remove_from_mailbox(ctx, account_id=account_id, mailbox_id=mailbox.id, uids=uids)
    mailboxes.delete_mailbox(ctx, account_id, mailbox.id)
