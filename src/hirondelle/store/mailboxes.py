"""Mailboxes: hierarchy, SPECIAL-USE roles, UIDVALIDITY and UIDNEXT.

RFC 9051 §2.3.1.1 (UIDVALIDITY must change when UIDs of a name could be reused) and
RFC 6154 (SPECIAL-USE roles). Names are full paths with ``/`` as hierarchy delimiter;
the inbox is always ``INBOX``.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from hirondelle.errors import Reason, Refused
from hirondelle.store import schema
from hirondelle.store.database import WriteContext, now_us

DELIMITER = "/"
INBOX = "INBOX"

ROLES = ("inbox", "drafts", "sent", "trash", "junk", "archive")

# What every new account gets (DESIGN.md "Mail model"). Display names in the UI are
# localised from the role; these are the IMAP names, as most clients expect them.
DEFAULT_MAILBOXES: tuple[tuple[str, str], ...] = (
    (INBOX, "inbox"),
    ("Drafts", "drafts"),
    ("Sent", "sent"),
    ("Trash", "trash"),
    ("Junk", "junk"),
    ("Archive", "archive"),
)

MAX_NAME_LENGTH = 1000
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    parent_id: int | None
    role: str | None
    uidvalidity: int
    uidnext: int
    subscribed: bool
    sort_order: int
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MailboxCounts:
    messages: int
    unseen: int
    deleted: int
    size: int


def _mailbox(row: Row[tuple[object, ...]]) -> Mailbox:
    m = row._mapping
    return Mailbox(
        id=m["id"],
        account_id=m["account_id"],
        name=m["name"],
        parent_id=m["parent_id"],
        role=m["role"],
        uidvalidity=m["uidvalidity"],
        uidnext=m["uidnext"],
        subscribed=bool(m["subscribed"]),
        sort_order=m["sort_order"],
        highest_modseq=m["highest_modseq"],
    )


def normalize_name(name: str) -> str:
    """Validate a mailbox name and put it in canonical form (NFC; ``INBOX`` in any case
    is the inbox, RFC 9051 §5.1)."""
    name = unicodedata.normalize("NFC", name)
    parts = name.split(DELIMITER)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    if not name or any(not part for part in parts):
        raise Refused(Reason.INVALID, f"invalid mailbox name {name!r}: empty hierarchy level")
    if len(name) > MAX_NAME_LENGTH or len(parts) > MAX_DEPTH:
        raise Refused(Reason.INVALID, "mailbox name too long")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise Refused(Reason.INVALID, "mailbox name contains control characters")
    if any(c in "*%" for c in name):
        # RFC 9051 §5.1: names with list wildcards cannot be listed reliably.
        raise Refused(Reason.INVALID, "mailbox name contains a wildcard character")
    return DELIMITER.join(parts)


def _next_uidvalidity(ctx: WriteContext, account_id: int) -> int:
    last = ctx.conn.execute(
        sa.select(schema.accounts.c.last_uidvalidity).where(schema.accounts.c.id == account_id)
    ).scalar_one()
    value = max(int(time.time()), int(last) + 1) & 0xFFFFFFFF
    ctx.conn.execute(
        schema.accounts.update()
        .where(schema.accounts.c.id == account_id)
        .values(last_uidvalidity=value)
    )
    return value


def create_mailbox(
    ctx: WriteContext,
    account_id: int,
    name: str,
    *,
    role: str | None = None,
    subscribed: bool = True,
) -> Mailbox:
    """Create a mailbox and any missing superiors (RFC 9051 §6.3.4 SHOULD)."""
    name = normalize_name(name)
    if role is not None and role not in ROLES:
        raise Refused(Reason.INVALID, f"unknown mailbox role {role!r}")
    if get_mailbox(ctx.conn, account_id, name) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"mailbox {name} already exists")
    if role is not None and get_mailbox_by_role(ctx.conn, account_id, role) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"a mailbox already has the role {role}")
    parent_id: int | None = None
    parts = name.split(DELIMITER)
    for depth in range(1, len(parts)):
        superior = DELIMITER.join(parts[:depth])
        existing = get_mailbox(ctx.conn, account_id, superior)
        if existing is None:
            existing = _insert(
                ctx, account_id, superior, parent_id=parent_id, role=None, subscribed=subscribed
            )
        parent_id = existing.id
    return _insert(ctx, account_id, name, parent_id=parent_id, role=role, subscribed=subscribed)


def _insert(
    ctx: WriteContext,
    account_id: int,
    name: str,
    *,
    parent_id: int | None,
    role: str | None,
    subscribed: bool,
) -> Mailbox:
    modseq = ctx.next_modseq(account_id)
    mailbox_id = ctx.conn.execute(
        schema.mailboxes.insert()
        .values(
            account_id=account_id,
            name=name,
            parent_id=parent_id,
            role=role,
            uidvalidity=_next_uidvalidity(ctx, account_id),
            uidnext=1,
            subscribed=subscribed,
            sort_order=ROLES.index(role) + 1 if role in ROLES else 10,
            highest_modseq=modseq,
            created_at=now_us(),
        )
        .returning(schema.mailboxes.c.id)
    ).scalar_one()
    ctx.journal(account_id, "Mailbox", mailbox_id, "created")
    mailbox = get_mailbox_by_id(ctx.conn, account_id, mailbox_id)
    assert mailbox is not None
    return mailbox


def create_default_mailboxes(ctx: WriteContext, account_id: int) -> list[Mailbox]:
    return [create_mailbox(ctx, account_id, name, role=role) for name, role in DEFAULT_MAILBOXES]


def get_mailbox(conn: Connection, account_id: int, name: str) -> Mailbox | None:
    row = conn.execute(
        sa.select(schema.mailboxes).where(
            schema.mailboxes.c.account_id == account_id, schema.mailboxes.c.name == name
        )
    ).first()
    return _mailbox(row) if row is not None else None


def get_mailbox_by_id(conn: Connection, account_id: int, mailbox_id: int) -> Mailbox | None:
    """The mailbox, only if it belongs to ``account_id`` (no existence leak)."""
    row = conn.execute(
        sa.select(schema.mailboxes).where(
            schema.mailboxes.c.account_id == account_id, schema.mailboxes.c.id == mailbox_id
        )
    ).first()
    return _mailbox(row) if row is not None else None


def get_mailbox_by_role(conn: Connection, account_id: int, role: str) -> Mailbox | None:
    row = conn.execute(
        sa.select(schema.mailboxes).where(
            schema.mailboxes.c.account_id == account_id, schema.mailboxes.c.role == role
        )
    ).first()
    return _mailbox(row) if row is not None else None


def list_mailboxes(conn: Connection, account_id: int) -> list[Mailbox]:
    rows = conn.execute(
        sa.select(schema.mailboxes)
        .where(schema.mailboxes.c.account_id == account_id)
        .order_by(schema.mailboxes.c.name)
    )
    return [_mailbox(row) for row in rows]


def mailbox_counts(conn: Connection, mailbox_ids: list[int]) -> dict[int, MailboxCounts]:
    """Messages, unseen, \\Deleted and total size per mailbox (RFC 9051 §6.3.11 STATUS):
    the counters every write keeps (``store.emails.refresh_thread_counts``), no scan."""
    mb = schema.mailboxes
    counts = {mailbox_id: MailboxCounts(0, 0, 0, 0) for mailbox_id in mailbox_ids}
    for chunk_start in range(0, len(mailbox_ids), 500):
        rows = conn.execute(
            sa.select(
                mb.c.id, mb.c.total_emails, mb.c.unseen_emails, mb.c.deleted_emails, mb.c.total_size
            ).where(mb.c.id.in_(mailbox_ids[chunk_start : chunk_start + 500]))
        )
        for mailbox_id, messages, unseen, deleted, size in rows:
            counts[mailbox_id] = MailboxCounts(int(messages), int(unseen), int(deleted), int(size))
    return counts


def children(conn: Connection, account_id: int, mailbox_id: int) -> list[Mailbox]:
    rows = conn.execute(
        sa.select(schema.mailboxes).where(
            schema.mailboxes.c.account_id == account_id,
            schema.mailboxes.c.parent_id == mailbox_id,
        )
    )
    return [_mailbox(row) for row in rows]


def message_uids(conn: Connection, mailbox_id: int) -> list[int]:
    mm = schema.mailbox_messages
    return list(
        conn.execute(
            sa.select(mm.c.uid).where(mm.c.mailbox_id == mailbox_id).order_by(mm.c.uid)
        ).scalars()
    )


def delete_mailbox(ctx: WriteContext, account_id: int, mailbox_id: int) -> None:
    """Remove an empty mailbox without children (the caller empties it first)."""
    ctx.conn.execute(
        schema.mailboxes.delete().where(
            schema.mailboxes.c.account_id == account_id, schema.mailboxes.c.id == mailbox_id
        )
    )
    ctx.journal(account_id, "Mailbox", mailbox_id, "destroyed")


def rename_mailbox(ctx: WriteContext, account_id: int, mailbox_id: int, new_name: str) -> Mailbox:
    """Rename a mailbox and all its inferiors (RFC 9051 §6.3.6), creating missing
    superiors of the new name. UIDVALIDITY is kept: the UIDs stay valid under the new
    name (RFC 9051 §6.3.6 lets a server keep it since the name does not reuse UIDs)."""
    new_name = normalize_name(new_name)
    mailbox = get_mailbox_by_id(ctx.conn, account_id, mailbox_id)
    if mailbox is None:
        raise Refused(Reason.NOT_FOUND, "no such mailbox")
    if get_mailbox(ctx.conn, account_id, new_name) is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"mailbox {new_name} already exists")
    old_prefix = mailbox.name + DELIMITER
    if new_name.startswith(old_prefix):
        raise Refused(Reason.INVALID, "a mailbox cannot be moved under itself")
    parent_id: int | None = None
    parts = new_name.split(DELIMITER)
    for depth in range(1, len(parts)):
        superior = DELIMITER.join(parts[:depth])
        existing = get_mailbox(ctx.conn, account_id, superior)
        if existing is None:
            existing = _insert(
                ctx, account_id, superior, parent_id=parent_id, role=None, subscribed=True
            )
        parent_id = existing.id
    modseq = ctx.next_modseq(account_id)
    mb = schema.mailboxes
    descendants = [m for m in list_mailboxes(ctx.conn, account_id) if m.name.startswith(old_prefix)]
    ctx.conn.execute(
        mb.update()
        .where(mb.c.id == mailbox_id)
        .values(name=new_name, parent_id=parent_id, highest_modseq=modseq)
    )
    ctx.journal(account_id, "Mailbox", mailbox_id, "updated")
    for child in descendants:
        ctx.conn.execute(
            mb.update()
            .where(mb.c.id == child.id)
            .values(
                name=new_name + DELIMITER + child.name[len(old_prefix) :], highest_modseq=modseq
            )
        )
        ctx.journal(account_id, "Mailbox", child.id, "updated")
    renamed = get_mailbox_by_id(ctx.conn, account_id, mailbox_id)
    assert renamed is not None
    return renamed


def set_subscribed(ctx: WriteContext, account_id: int, mailbox_id: int, subscribed: bool) -> None:
    mb = schema.mailboxes
    ctx.conn.execute(
        mb.update()
        .where(mb.c.account_id == account_id, mb.c.id == mailbox_id)
        .values(subscribed=subscribed)
    )
    ctx.journal(account_id, "Mailbox", mailbox_id, "updated")
