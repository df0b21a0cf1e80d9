"""What a POP3 maildrop needs from the store: the inbox, listed once, and deletions.

RFC 1939 §4: the maildrop is fixed for the session. POP3 sees only the account's Inbox
(the mailbox with role ``inbox``); :func:`snapshot` lists it in UID order, with each
message's stored size and blob, in one query. Deletions at QUIT go through
:func:`hirondelle.store.emails.remove_from_mailbox`, the path IMAP EXPUNGE takes, so the
journal, quota and blob references stay right and IMAP sessions see VANISHED/EXPUNGE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import emails, schema
from hirondelle.store.database import WriteContext


@dataclass(frozen=True, slots=True)
class MaildropMessage:
    uid: int
    email_id: int
    size: int  # octets as stored (line endings as received)
    blob_hash: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    mailbox_id: int
    uidvalidity: int
    messages: tuple[MaildropMessage, ...]


def snapshot(conn: Connection, account_id: int) -> Snapshot | None:
    """The account's Inbox and its messages in UID order (one query); None without an
    Inbox."""
    mb, mm, e = schema.mailboxes, schema.mailbox_messages, schema.emails
    rows = conn.execute(
        sa.select(mb.c.id, mb.c.uidvalidity, mm.c.uid, mm.c.email_id, e.c.size, e.c.blob_hash)
        .select_from(
            mb.outerjoin(mm, mm.c.mailbox_id == mb.c.id).outerjoin(e, e.c.id == mm.c.email_id)
        )
        .where(mb.c.account_id == account_id, mb.c.role == "inbox")
        .order_by(mm.c.uid)
    ).all()
    if not rows:
        return None
    mailbox_id, uidvalidity = int(rows[0][0]), int(rows[0][1])
    messages = tuple(
        MaildropMessage(int(uid), int(email_id), int(size), str(blob_hash))
        for _, _, uid, email_id, size, blob_hash in rows
        if uid is not None
    )
    return Snapshot(mailbox_id, uidvalidity, messages)


def contains(conn: Connection, mailbox_id: int, uid: int) -> bool:
    """Whether the message is still in the mailbox (another session may have expunged
    it since the snapshot)."""
    mm = schema.mailbox_messages
    return (
        conn.execute(
            sa.select(mm.c.uid).where(mm.c.mailbox_id == mailbox_id, mm.c.uid == uid)
        ).first()
        is not None
    )


def remove(ctx: WriteContext, *, account_id: int, mailbox_id: int, uids: Iterable[int]) -> int:
    """RFC 1939 §6: remove the messages marked as deleted; returns how many were still
    there to remove (others may have been expunged by another session meanwhile)."""
    return len(
        emails.remove_from_mailbox(ctx, account_id=account_id, mailbox_id=mailbox_id, uids=uids)
    )
