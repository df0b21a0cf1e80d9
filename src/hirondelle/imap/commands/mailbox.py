"""Mailbox commands of the authenticated state.

RFC 9051 §6.3.4 CREATE (RFC 6154 §3 USE), §6.3.5 DELETE, §6.3.6 RENAME, §6.3.7
SUBSCRIBE, §6.3.8 UNSUBSCRIBE, §6.3.9 LIST (RFC 5258 LIST-EXTENDED, RFC 5819
LIST-STATUS, RFC 6154 SPECIAL-USE, RFC 3348 CHILDREN), RFC 3501 §6.3.9 LSUB,
§6.3.11 STATUS (RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 7889 APPENDLIMIT),
§6.3.12 APPEND (RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID, RFC 3516 literal8,
RFC 6855 UTF8), RFC 9208 GETQUOTA, GETQUOTAROOT, SETQUOTA (STORAGE).

MULTIAPPEND is all or nothing (RFC 3502 §6): the messages are filed in one transaction.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING, BinaryIO

from hirondelle.errors import Reason, Refused
from hirondelle.imap.commands import AUTHENTICATED, Bad, Done, No, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseCode
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.mail import keywords
from hirondelle.mail.mailboxes import MailboxStatus
from hirondelle.mail.messages import NewMessage
from hirondelle.store.mailboxes import DELIMITER, INBOX, Mailbox, normalize_name

if TYPE_CHECKING:
    from hirondelle.imap.session import Session

#: RFC 6154 §2 attributes <-> store roles.
SPECIAL_USE = {
    "drafts": "\\Drafts",
    "sent": "\\Sent",
    "trash": "\\Trash",
    "junk": "\\Junk",
    "archive": "\\Archive",
}
ROLE_OF_ATTRIBUTE = {attribute.upper(): role for role, attribute in SPECIAL_USE.items()}


def _name(raw: str) -> str:
    """RFC 9051 §6.3.4: a trailing delimiter only says inferiors may follow."""
    return raw[:-1] if raw.endswith(DELIMITER) and len(raw) > 1 else raw


async def _get(session: Session, name: str, *, trycreate: bool = False) -> Mailbox:
    try:
        return await session.mailboxes.get(session.account_id, name)
    except Refused as refused:
        if refused.reason is Reason.NOT_FOUND and trycreate:
            raise No("No such mailbox; create it first", "TRYCREATE") from None
        if refused.reason is Reason.INVALID:
            raise No(refused.message, "NONEXISTENT") from None
        raise


@handles(c.Create, AUTHENTICATED)
async def create(session: Session, command: c.Create) -> Done:
    """RFC 9051 §6.3.4; RFC 6154 §3 CREATE-SPECIAL-USE."""
    role = None
    if command.special_use:
        roles = [ROLE_OF_ATTRIBUTE.get(attribute.upper()) for attribute in command.special_use]
        if len(roles) > 1 or roles[0] is None:
            raise No("Unsupported special-use attribute(s)", "USEATTR")
        role = roles[0]
    name = _name(command.mailbox)
    try:
        await session.mailboxes.create(session.account_id, name, role=role)
    except Refused as refused:
        if role is not None and "role" in refused.message:
            raise No(refused.message, "USEATTR") from None
        raise
    return Done()


@handles(c.Delete, AUTHENTICATED)
async def delete(session: Session, command: c.Delete) -> Done:
    """RFC 9051 §6.3.5 (rules in mail.mailboxes)."""
    name = _name(command.mailbox)
    await session.mailboxes.delete(session.account_id, name)
    selected = session.selected
    if selected is not None and selected.name == normalize_name(name):
        # Deleting the selected mailbox ends its selection (RFC 9051 §7.1 CLOSED).
        session.write(session.encoder.ok(None, "Mailbox deleted", ResponseCode.simple("CLOSED")))
        session.deselect()
    return Done()


@handles(c.Rename, AUTHENTICATED)
async def rename(session: Session, command: c.Rename) -> Done:
    """RFC 9051 §6.3.6, INBOX included (its messages move, INBOX stays)."""
    renamed = await session.mailboxes.rename(
        session.account_id, _name(command.mailbox), _name(command.new_name)
    )
    selected = session.selected
    if selected is not None and selected.mailbox_id == renamed.id:
        selected.name = renamed.name
    return Done()


@handles(c.Subscribe, AUTHENTICATED)
async def subscribe(session: Session, command: c.Subscribe) -> Done:
    """RFC 9051 §6.3.7."""
    await session.mailboxes.subscribe(session.account_id, command.mailbox, subscribed=True)
    return Done()


@handles(c.Unsubscribe, AUTHENTICATED)
async def unsubscribe(session: Session, command: c.Unsubscribe) -> Done:
    """RFC 9051 §6.3.8."""
    await session.mailboxes.subscribe(session.account_id, command.mailbox, subscribed=False)
    return Done()


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: "*" matches anything, "%" anything but the delimiter; the
    reference is prefixed; INBOX matches in any case."""
    full = reference + pattern
    out = []
    for char in full:
        if char == "*":
            out.append(".*")
        elif char == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(char))
    regex = "".join(out)
    if full[:5].upper() == INBOX and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        regex = "(?i:" + "".join(out[:5]) + ")" + "".join(out[5:])
    return re.compile(regex, re.DOTALL)


def _attributes(mailbox: Mailbox, parents: set[str], *, subscribed: bool) -> list[str]:
    attributes = ["\\HasChildren" if mailbox.name in parents else "\\HasNoChildren"]
    if mailbox.role in SPECIAL_USE:
        attributes.append(SPECIAL_USE[mailbox.role])
    if subscribed and mailbox.subscribed:
        attributes.append("\\Subscribed")
    return attributes


@handles(c.List, AUTHENTICATED)
async def list_(session: Session, command: c.List) -> Done:
    """RFC 9051 §6.3.9, RFC 5258 selection and return options, RFC 5819 STATUS."""
    encoder = session.encoder
    if command.patterns == ("",) and not command.extended:
        # RFC 9051 §6.3.9: the delimiter and root name.
        session.write(encoder.list(["\\Noselect"], DELIMITER, ""))
        return Done()
    boxes = await session.mailboxes.all(session.account_id)
    parents = {m.name.rsplit(DELIMITER, 1)[0] for m in boxes if DELIMITER in m.name}
    regexes = [pattern_regex(command.reference, p) for p in command.patterns if p]
    selection = command.selection
    want_subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in command.return_options
    matched: list[tuple[Mailbox, list[str]]] = []
    for mailbox in boxes:
        if not any(r.fullmatch(mailbox.name) for r in regexes):
            continue
        childinfo: list[str] = []
        if "SUBSCRIBED" in selection and not mailbox.subscribed:
            if "RECURSIVEMATCH" not in selection:
                continue
            prefix = mailbox.name + DELIMITER
            if not any(m.subscribed and m.name.startswith(prefix) for m in boxes):
                continue
            childinfo = ["SUBSCRIBED"]
        if "SPECIAL-USE" in selection and mailbox.role not in SPECIAL_USE:
            continue
        matched.append((mailbox, childinfo))
    statuses: dict[str, MailboxStatus] = {}
    if command.status:
        found = await session.mailboxes.status(session.account_id, [m.name for m, _ in matched])
        statuses = {s.mailbox.name: s for s in found}
    for mailbox, childinfo in matched:
        attributes = _attributes(mailbox, parents, subscribed=want_subscribed)
        session.write(encoder.list(attributes, DELIMITER, mailbox.name, childinfo=childinfo))
        if command.status and mailbox.name in statuses:
            session.write(
                encoder.status_data(
                    mailbox.name, status_items(session, statuses[mailbox.name], command.status)
                )
            )
    return Done()


@handles(c.Lsub, AUTHENTICATED)
async def lsub(session: Session, command: c.Lsub) -> Done:
    """RFC 3501 §6.3.9 LSUB, for IMAP4rev1 clients."""
    boxes = await session.mailboxes.all(session.account_id)
    if command.pattern == "":
        session.write(session.encoder.lsub(["\\Noselect"], DELIMITER, ""))
        return Done()
    regex = pattern_regex(command.reference, command.pattern)
    for mailbox in boxes:
        if mailbox.subscribed and regex.fullmatch(mailbox.name):
            session.write(session.encoder.lsub([], DELIMITER, mailbox.name))
    return Done()


def status_items(
    session: Session, status: MailboxStatus, items: tuple[str, ...]
) -> list[tuple[str, int]]:
    """RFC 9051 §6.3.11 status attributes, with RFC 7162, RFC 8438 and RFC 7889."""
    mailbox, counts = status.mailbox, status.counts
    values = {
        "MESSAGES": counts.messages,
        "UIDNEXT": mailbox.uidnext,
        "UIDVALIDITY": mailbox.uidvalidity,
        "UNSEEN": counts.unseen,
        "DELETED": counts.deleted,
        "SIZE": counts.size,
        "RECENT": 0,
        "HIGHESTMODSEQ": mailbox.highest_modseq,
        "APPENDLIMIT": session.max_message_size,
    }
    return [(item, values[item]) for item in items if item in values]


@handles(c.Status, AUTHENTICATED)
async def status(session: Session, command: c.Status) -> Done:
    """RFC 9051 §6.3.11."""
    mailbox = await _get(session, command.mailbox)
    found = await session.mailboxes.status(session.account_id, [mailbox.name])
    if not found:
        raise No("No such mailbox", "NONEXISTENT")
    if "HIGHESTMODSEQ" in command.items:
        session.enabled.add("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE-enabling command
    session.write(
        session.encoder.status_data(mailbox.name, status_items(session, found[0], command.items))
    )
    return Done()


@handles(c.Append, AUTHENTICATED)
async def append(session: Session, command: c.Append) -> Done:
    """RFC 9051 §6.3.12; OK only after each message is durable (services.mail.append)."""
    target = await _get(session, command.mailbox, trycreate=True)
    new: list[NewMessage] = []
    for message in command.messages:
        content = message.content
        raw: bytes | BinaryIO
        if isinstance(content, bytes):
            raw, size = content, len(content)
        else:
            # A big literal: the spooled file itself goes to the mail service, which
            # reads it in chunks; the session closes it after the command.
            spooled = session.streams.get(content.index)
            if spooled is None:  # pragma: no cover - the parser streamed it
                raise Bad("Literal data missing")
            raw, size = spooled, spooled.tell()
        if not size:
            raise No("Cannot store an empty message", "CANNOT")
        if size > session.max_message_size:
            raise No("Message too large", "TOOBIG")
        flags = keywords.from_imap_many(f for f in message.flags if f.upper() != "\\RECENT")
        received_at = None
        if message.internal_date is not None:
            moment = message.internal_date
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            received_at = int(moment.timestamp() * 1_000_000)
        new.append(NewMessage(raw, frozenset(flags), received_at))
    try:
        uids = await session.messages.append(session.account_id, target.id, new)
    except Refused as refused:
        if refused.reason is Reason.NOT_FOUND:
            raise No("No such mailbox; create it first", "TRYCREATE") from None
        raise
    uidvalidity = target.uidvalidity
    return Done(code=ResponseCode.appenduid(uidvalidity, SequenceSet.of(*uids)))


@handles(c.GetQuotaRoot, AUTHENTICATED)
async def getquotaroot(session: Session, command: c.GetQuotaRoot) -> Done:
    """RFC 9208 §4.3: one quota root, "", for the whole account."""
    mailbox = await _get(session, command.mailbox)
    used, limit = await session.mailboxes.quota(session.account_id)
    session.write(session.encoder.quotaroot(mailbox.name, [""] if limit is not None else []))
    if limit is not None:
        session.write(session.encoder.quota("", [("STORAGE", used // 1024, limit // 1024)]))
    return Done()


@handles(c.GetQuota, AUTHENTICATED)
async def getquota(session: Session, command: c.GetQuota) -> Done:
    """RFC 9208 §4.2: STORAGE in units of 1024 octets."""
    used, limit = await session.mailboxes.quota(session.account_id)
    if command.root != "" or limit is None:
        raise No("No such quota root", "NONEXISTENT")
    session.write(session.encoder.quota("", [("STORAGE", used // 1024, limit // 1024)]))
    return Done()


@handles(c.SetQuota, AUTHENTICATED)
async def setquota(session: Session, command: c.SetQuota) -> Done:
    """RFC 9208 §4.4: quotas are set by the administrator, not by users."""
    raise No("Quotas are set by the administrator", "NOPERM")
