"""What JMAP Mailbox and Thread need from the store beyond store/mailboxes.py.

RFC 8621 §2 counts (totalEmails, unreadEmails, totalThreads, unreadThreads) in one
query per account, the JMAP-only mailbox properties (sortOrder, role changes), and the
emails of a thread (RFC 8621 §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.store import schema
from hirondelle.store.database import WriteContext
from hirondelle.store.mailboxes import ROLES, get_mailbox_by_role


@dataclass(frozen=True, slots=True)
class JmapCounts:
    total_emails: int = 0
    unread_emails: int = 0
    total_threads: int = 0
    unread_threads: int = 0


def counts(
    conn: Connection, account_id: int, mailbox_ids: list[int] | None = None
) -> dict[int, JmapCounts]:
    """The four RFC 8621 §2 counts of every mailbox of the account (or of ``mailbox_ids``).

    unreadThreads counts threads with an email in the mailbox and an unread email
    anywhere in the thread (§2: the unread email need not be in this mailbox). Read from
    the counters every write keeps (``store.emails.refresh_thread_counts``), no scan.
    """
    mb = schema.mailboxes
    query = sa.select(
        mb.c.id, mb.c.total_emails, mb.c.unread_emails, mb.c.total_threads, mb.c.unread_threads
    ).where(mb.c.account_id == account_id)
    if mailbox_ids is not None:
        query = query.where(mb.c.id.in_(mailbox_ids))
    return {
        int(mailbox_id): JmapCounts(int(total), int(unread), int(threads), int(unread_threads))
        for mailbox_id, total, unread, threads, unread_threads in conn.execute(query)
    }


def set_sort_order(ctx: WriteContext, account_id: int, mailbox_id: int, sort_order: int) -> None:
    mb = schema.mailboxes
    ctx.conn.execute(
        mb.update()
        .where(mb.c.account_id == account_id, mb.c.id == mailbox_id)
        .values(sort_order=sort_order)
    )
    ctx.journal(account_id, "Mailbox", mailbox_id, "updated")


def set_role(ctx: WriteContext, account_id: int, mailbox_id: int, role: str | None) -> None:
    """Give a mailbox a role (RFC 8621 §2: at most one mailbox per role) or take it away.
    The inbox keeps its role (RFC 9051 §5.1: INBOX always exists)."""
    if role is not None and role not in ROLES:
        raise Refused(Reason.INVALID, f"unknown mailbox role {role!r}")
    if role == "inbox":
        raise Refused(Reason.INVALID, "only INBOX has the inbox role")
    if role is not None:
        holder = get_mailbox_by_role(ctx.conn, account_id, role)
        if holder is not None and holder.id != mailbox_id:
            raise Refused(Reason.ALREADY_EXISTS, f"a mailbox already has the role {role}")
    mb = schema.mailboxes
    ctx.conn.execute(
        mb.update().where(mb.c.account_id == account_id, mb.c.id == mailbox_id).values(role=role)
    )
    ctx.journal(account_id, "Mailbox", mailbox_id, "updated")


def mailbox_has_email(conn: Connection, mailbox_id: int) -> bool:
    mm = schema.mailbox_messages
    return (
        conn.execute(sa.select(mm.c.uid).where(mm.c.mailbox_id == mailbox_id).limit(1)).first()
        is not None
    )


def thread_emails(conn: Connection, account_id: int, thread_ids: list[int]) -> dict[int, list[int]]:
    """RFC 8621 §3: the email ids of each thread, oldest receivedAt first."""
    e = schema.emails
    found: dict[int, list[int]] = {}
    for chunk_start in range(0, len(thread_ids), 500):
        chunk = thread_ids[chunk_start : chunk_start + 500]
        rows = conn.execute(
            sa.select(e.c.thread_id, e.c.id)
            .where(e.c.account_id == account_id, e.c.thread_id.in_(chunk))
            .order_by(e.c.thread_id, e.c.received_at, e.c.id)
        )
        for thread_id, email_id in rows:
            found.setdefault(int(thread_id), []).append(int(email_id))
    return found
