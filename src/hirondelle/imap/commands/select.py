"""Opening and closing a mailbox, and removing messages.

RFC 9051 §6.3.2 SELECT, §6.3.3 EXAMINE (RFC 7162 §3.1.8 CONDSTORE, §3.2.5 QRESYNC
parameters), §6.4.1 CLOSE, §6.4.2 UNSELECT (RFC 3691), §6.4.3 EXPUNGE, §6.4.9 UID
EXPUNGE (RFC 4315); RFC 3501 §7.3.2 RECENT for IMAP4rev1 clients (always 0: \\Recent is
not kept, as IMAP4rev2 allows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hirondelle.errors import Reason, Refused
from hirondelle.imap.commands import AUTHENTICATED, SELECTED, Bad, Done, No, State, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseCode
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.imap.selected import SelectedMailbox
from hirondelle.mail import keywords
from hirondelle.mail.messages import CannotCalculateChanges
from hirondelle.store.mailboxes import DELIMITER

if TYPE_CHECKING:
    from hirondelle.imap.session import Session


@handles(c.Select, AUTHENTICATED)
async def select(session: Session, command: c.Select) -> Done:
    """RFC 9051 §6.3.2 / §6.3.3, responses in the RFC's order."""
    from hirondelle.imap.session import SYSTEM_FLAGS

    if command.qresync is not None and not session.qresync:
        raise Bad("QRESYNC parameter given before ENABLE QRESYNC (RFC 7162 §3.2.5)")
    if session.selected is not None:
        session.deselect()
        if session.rev2 or session.qresync:
            session.write(
                session.encoder.ok(None, "Previous mailbox closed", ResponseCode.simple("CLOSED"))
            )
    try:
        # The mailbox's row, messages and keywords in one database read (one thread hop).
        snapshot = await session.messages.snapshot_named(
            session.account_id, command.mailbox, known=session.recent.known
        )
    except Refused as refused:
        if refused.reason is Reason.INVALID:
            raise No(refused.message, "NONEXISTENT") from None
        raise
    if command.condstore:
        session.enabled.add("CONDSTORE")
    view = SelectedMailbox(
        snapshot.mailbox, snapshot.messages, modseq=snapshot.modseq, read_only=command.read_only
    )
    session.recent.remember(view)
    encoder = session.encoder
    extra = {keywords.to_imap(k) for k in view.keywords_in_use} - set(SYSTEM_FLAGS)
    flags = [*SYSTEM_FLAGS, *sorted(extra)]
    session.write(encoder.flags(flags))
    session.write(encoder.exists(len(view)))
    if not session.rev2:
        session.write(encoder.recent(0))
    else:
        session.write(encoder.list([], DELIMITER, view.name))
    session.write(
        encoder.ok(None, "UIDs valid", ResponseCode.number("UIDVALIDITY", view.uidvalidity))
    )
    session.write(
        encoder.ok(None, "Predicted next UID", ResponseCode.number("UIDNEXT", view.uidnext))
    )
    permanent = [] if view.read_only else flags
    session.write(
        encoder.ok(
            None,
            "Flags permitted",
            ResponseCode.permanent_flags(permanent, new_keywords=not view.read_only),
        )
    )
    session.write(
        encoder.ok(None, "Highest", ResponseCode.number("HIGHESTMODSEQ", view.highest_modseq))
    )
    session.selected = view
    session.state = State.SELECTED
    if command.qresync is not None and command.qresync.uidvalidity == view.uidvalidity:
        await _qresync(session, view, command.qresync)
    code = "READ-ONLY" if view.read_only else "READ-WRITE"
    return Done("completed", ResponseCode.simple(code))


@handles(c.Examine, AUTHENTICATED)
async def examine(session: Session, command: c.Examine) -> Done:
    """RFC 9051 §6.3.3: SELECT, read-only."""
    return await select(session, command)


async def _qresync(session: Session, view: SelectedMailbox, qresync: c.QResync) -> None:
    """RFC 7162 §3.2.5.1: VANISHED (EARLIER) for what left since the client's modseq,
    then FETCH for messages changed since."""
    known = qresync.known_uids
    try:
        changes = await session.messages.changes(
            session.account_id, view.mailbox_id, qresync.modseq
        )
        vanished = [
            uid for uid in changes.destroyed if known is None or known.contains(uid, view.uidnext)
        ]
        ranges = SequenceSet.of(*vanished) if vanished else None
    except CannotCalculateChanges:
        # Older than the journal keeps: every UID the client may know that is gone.
        ranges = _gaps(view, known, _unchanged_up_to(view, qresync.sequence_match))
    if ranges is not None and ranges.ranges:
        session.write(session.encoder.vanished(ranges, earlier=True))
    changed = [view.uids[i] for i, modseq in enumerate(view.modseqs) if modseq > qresync.modseq]
    if changed:
        for current in await session.messages.views(view.mailbox_id, changed):
            session.write_flags(current.uid, current.keywords)


def _unchanged_up_to(
    view: SelectedMailbox, sequence_match: tuple[SequenceSet, SequenceSet] | None
) -> int:
    """RFC 7162 §3.2.5.2 seq-match-data: the highest UID below which nothing can have
    been expunged, or 0. If the client's sequence number n still has the UID it knew, no
    message with a lower UID went away (UIDs only grow, so nothing took a lower place);
    pairs are compared in ascending order up to the first that no longer holds."""
    if sequence_match is None:
        return 0
    numbers, uids = sequence_match
    count = len(view.uids)
    floor = 0
    pairs = zip(
        numbers.iter_numbers(count, limit=count + 1),
        uids.iter_numbers(max(view.uidnext - 1, 0)),
        strict=False,
    )
    for number, uid in pairs:
        if not 1 <= number <= count or view.uids[number - 1] != uid:
            break
        floor = uid
    return floor


def _gaps(view: SelectedMailbox, known: SequenceSet | None, floor: int = 0) -> SequenceSet | None:
    """UIDs the client may know that are not in the mailbox, above ``floor``."""
    largest = view.uidnext - 1
    if largest < 1:
        return None
    wanted = (known or SequenceSet(((1, largest),))).resolve(largest)
    present = list(view.uids)
    gaps: list[tuple[int, int]] = []
    index = 0
    for low, high in wanted:
        low = max(low, floor + 1, 1)
        if low > high:
            continue
        high = min(high, largest)
        cursor = low
        while index < len(present) and present[index] < low:
            index += 1
        j = index
        while j < len(present) and present[j] <= high:
            if present[j] > cursor:
                gaps.append((cursor, present[j] - 1))
            cursor = present[j] + 1
            j += 1
        if cursor <= high:
            gaps.append((cursor, high))
    return SequenceSet.from_ranges(gaps) if gaps else None


@handles(c.Close, SELECTED)
async def close(session: Session, command: c.Close) -> Done:
    """RFC 9051 §6.4.1: expunge silently (not when read-only), then deselect."""
    view = session.require_selected()
    if not view.read_only:
        await session.messages.expunge(session.account_id, view.mailbox_id)
    session.deselect()
    return Done()


@handles(c.Unselect, SELECTED)
async def unselect(session: Session, command: c.Unselect) -> Done:
    """RFC 9051 §6.4.2."""
    session.deselect()
    return Done()


@handles(c.Expunge, SELECTED)
async def expunge(session: Session, command: c.Expunge) -> Done:
    """RFC 9051 §6.4.3 and §6.4.9 UID EXPUNGE."""
    view = session.require_selected()
    if view.read_only:
        raise No("The mailbox is read-only", "READ-ONLY")
    uids = None
    if command.uids is not None:
        uids = session.uids_of(command.uids, uid=True)
        if not uids:
            return Done()
    removed = await session.messages.expunge(session.account_id, view.mailbox_id, uids=uids)
    session.announce_expunged(removed)
    return Done()
