"""Changing messages of the selected mailbox.

RFC 9051 §6.4.6 STORE (RFC 7162 §3.1.3 UNCHANGEDSINCE and MODIFIED), §6.4.7 COPY,
§6.4.8 MOVE (RFC 6851), and their UID forms (§6.4.9); RFC 4315 COPYUID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hirondelle.imap.commands import SELECTED, Done, No, handles
from hirondelle.imap.commands.mailbox import _get
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseCode
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.mail import keywords
from hirondelle.mail.messages import Transfer

if TYPE_CHECKING:
    from hirondelle.imap.session import Session


@handles(c.Store, SELECTED)
async def store(session: Session, command: c.Store) -> Done:
    """RFC 9051 §6.4.6: FETCH FLAGS for each message unless .SILENT; with CONDSTORE
    the MODSEQ too (RFC 7162 §3.1.3 sends it even when .SILENT)."""
    view = session.require_selected()
    if view.read_only:
        raise No("The mailbox is read-only", "READ-ONLY")
    uids = session.uids_of(command.sequence_set, uid=command.uid)
    if command.unchanged_since is not None:
        session.enabled.add("CONDSTORE")
    flags = keywords.from_imap_many(command.flags)
    mode = command.mode
    outcome = await session.messages.set_flags(
        session.account_id,
        view.mailbox_id,
        uids,
        add=flags if mode is c.StoreMode.ADD else (),
        remove=flags if mode is c.StoreMode.REMOVE else (),
        replace=flags if mode is c.StoreMode.REPLACE else None,
        unchanged_since=command.unchanged_since,
    )
    for changed in outcome.changed:
        view.update(changed)
    modified = set(outcome.modified)
    changed_uids = {v.uid for v in outcome.changed}
    for current in outcome.current:
        if not command.silent:
            session.write_flags(current.uid, current.keywords)
        elif session.condstore and current.uid in changed_uids:
            session.write_flags(current.uid, None)
        await session.connection.maybe_drain()
    if modified:
        numbers = (
            sorted(modified)
            if command.uid
            else [n for n in (view.seq_of(u) for u in modified) if n is not None]
        )
        return Done(
            "completed with conditional failures",
            ResponseCode.modified(SequenceSet.of(*numbers)),
        )
    return Done()


def _copyuid(transfer: Transfer) -> ResponseCode | None:
    if not transfer.source_uids:
        return None
    return ResponseCode.copyuid(
        transfer.uidvalidity,
        SequenceSet.of(*transfer.source_uids),
        SequenceSet.of(*transfer.target_uids),
    )


@handles(c.Copy, SELECTED)
async def copy(session: Session, command: c.Copy) -> Done:
    """RFC 9051 §6.4.7; [TRYCREATE] for a missing target."""
    view = session.require_selected()
    uids = session.uids_of(command.sequence_set, uid=command.uid)
    target = await _get(session, command.mailbox, trycreate=True)
    if not uids:
        return Done()
    transfer = await session.messages.copy(session.account_id, view.mailbox_id, uids, target.id)
    return Done(code=_copyuid(transfer))


@handles(c.Move, SELECTED)
async def move(session: Session, command: c.Move) -> Done:
    """RFC 6851 §3.3: untagged OK [COPYUID], then EXPUNGE (or VANISHED), then OK."""
    view = session.require_selected()
    if view.read_only:
        raise No("The mailbox is read-only", "READ-ONLY")
    uids = session.uids_of(command.sequence_set, uid=command.uid)
    target = await _get(session, command.mailbox, trycreate=True)
    if not uids:
        return Done()
    transfer = await session.messages.move(session.account_id, view.mailbox_id, uids, target.id)
    code = _copyuid(transfer)
    if code is not None:
        session.write(session.encoder.ok(None, "Moved", code))
    session.announce_expunged(transfer.source_uids)
    return Done()
