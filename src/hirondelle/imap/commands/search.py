"""SEARCH, SORT and THREAD: the IMAP side of the search engine.

RFC 9051 §6.4.4 SEARCH (and §7.3.4 ESEARCH; RFC 4731 RETURN MIN MAX ALL COUNT),
RFC 5182 SEARCHRES (SAVE and "$"), RFC 7162 §3.1.5 (MODSEQ in the result), RFC 5256
SORT and THREAD (REFERENCES, ORDEREDSUBJECT), RFC 3501 §6.4.4 untagged SEARCH for
IMAP4rev1 clients. The engine (:mod:`hirondelle.imap.search`) evaluates the keys and
returns UIDs; this module turns them into sequence numbers or UIDs, ESEARCH data and
the saved result.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from hirondelle.imap import search as engine
from hirondelle.imap.commands import SELECTED, Bad, Done, No, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseCode, ThreadNode
from hirondelle.imap.proto.sequence_set import SequenceSet

if TYPE_CHECKING:
    from hirondelle.imap.session import Session

T = TypeVar("T")

#: RFC 9051 §6.4.4 charsets answered in BADCHARSET.
CHARSETS = ("US-ASCII", "UTF-8")


def _context(session: Session) -> engine.SearchContext:
    view = session.require_selected()
    return engine.SearchContext(
        account_id=session.account_id,
        mailbox_id=view.mailbox_id,
        uids=list(view.uids),
        saved_uids=session.saved_uids,
        recent_uids=frozenset(),
    )


def _numbers(session: Session, uids: list[int], *, uid: bool) -> list[int]:
    if uid:
        return uids
    view = session.require_selected()
    return [n for n in (view.seq_of(u) for u in uids) if n is not None]


async def _run(call: Awaitable[T]) -> T:
    """The engine's refusals mapped at this one place."""
    try:
        return await call
    except engine.UnsupportedCharset:
        raise No("Unsupported charset", ResponseCode.badcharset(CHARSETS)) from None
    except engine.UnsupportedSortKey as error:
        raise Bad(f"Unsupported sort key {error}") from None
    except engine.UnsupportedThreadAlgorithm as error:
        raise Bad(f"Unsupported threading algorithm {error}") from None


def _esearch(
    session: Session,
    tag: str,
    uids: list[int],
    options: tuple[str, ...],
    *,
    uid: bool,
    modseq: int | None,
) -> None:
    """RFC 4731 §3.1 ESEARCH data; RFC 5182 §2.4 what SAVE keeps."""
    wanted = set(options) or {"ALL"}
    numbers = _numbers(session, uids, uid=uid)
    if "SAVE" in wanted:
        saved = uids
        if not wanted & {"ALL", "COUNT"} and wanted & {"MIN", "MAX"}:
            saved = []
            if uids and "MIN" in wanted:
                saved.append(uids[0])
            if uids and "MAX" in wanted and uids[-1] not in saved:
                saved.append(uids[-1])
        session.saved_uids = list(saved)
        if wanted == {"SAVE"}:
            return
    session.write(
        session.encoder.esearch(
            tag,
            uid=uid,
            minimum=min(numbers) if "MIN" in wanted and numbers else None,
            maximum=max(numbers) if "MAX" in wanted and numbers else None,
            numbers=SequenceSet.of(*numbers) if "ALL" in wanted and numbers else None,
            count=len(numbers) if "COUNT" in wanted else None,
            modseq=modseq if numbers else None,
        )
    )


@handles(c.Search, SELECTED)
async def search(session: Session, command: c.Search) -> Done:
    """RFC 9051 §6.4.4."""
    result = await _run(
        engine.search(
            session.services, _context(session), command.criteria, charset=command.charset
        )
    )
    uids = list(result.uids)
    modseq = result.highest_modseq
    if modseq is not None:
        session.enabled.add("CONDSTORE")  # RFC 7162 §3.1: SEARCH MODSEQ enables it
    if command.return_options is None:
        numbers = _numbers(session, uids, uid=command.uid)
        session.write(session.encoder.search(numbers, modseq=modseq))
    else:
        _esearch(session, command.tag, uids, command.return_options, uid=command.uid, modseq=modseq)
    return Done()


@handles(c.Sort, SELECTED)
async def sort(session: Session, command: c.Sort) -> Done:
    """RFC 5256 §3 SORT; RFC 5267 §3.2 ESORT (RETURN options)."""
    uids = await _run(
        engine.sort(
            session.services,
            _context(session),
            command.criteria,
            command.search,
            charset=command.charset,
        )
    )
    numbers = _numbers(session, uids, uid=command.uid)
    if command.return_options is None:
        session.write(session.encoder.sort(numbers))
        return Done()
    _esort(session, command.tag, uids, numbers, command.return_options, uid=command.uid)
    return Done()


def _esort(
    session: Session,
    tag: str,
    uids: list[int],
    numbers: list[int],
    options: tuple[str, ...],
    *,
    uid: bool,
) -> None:
    """RFC 5267 §3.2 ESORT: SORT RETURN answers with ESEARCH, in the sort order: MIN is
    the first message of the sorted result and MAX the last, ALL lists every message in
    sorted order (each number on its own: a range "n:m" would say nothing of the order
    inside it), COUNT as for SEARCH; SAVE (RFC 5182) keeps the result, in that order."""
    wanted = set(options) or {"ALL"}
    if "SAVE" in wanted:
        session.saved_uids = list(uids)
        if wanted == {"SAVE"}:
            return
    session.write(
        session.encoder.esearch(
            tag,
            uid=uid,
            minimum=numbers[0] if "MIN" in wanted and numbers else None,
            maximum=numbers[-1] if "MAX" in wanted and numbers else None,
            numbers=SequenceSet(tuple((n, n) for n in numbers))
            if "ALL" in wanted and numbers
            else None,
            count=len(numbers) if "COUNT" in wanted else None,
        )
    )


def _renumber(session: Session, node: ThreadNode, *, uid: bool) -> ThreadNode:
    number = node.number
    if number is not None and not uid:
        number = session.require_selected().seq_of(number)
    return ThreadNode(number, tuple(_renumber(session, child, uid=uid) for child in node.children))


@handles(c.Thread, SELECTED)
async def thread(session: Session, command: c.Thread) -> Done:
    """RFC 5256 §3 THREAD."""
    nodes = await _run(
        engine.thread(
            session.services,
            _context(session),
            command.algorithm,
            command.search,
            charset=command.charset,
        )
    )
    session.write(session.encoder.thread([_renumber(session, n, uid=command.uid) for n in nodes]))
    return Done()
