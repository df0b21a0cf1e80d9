"""IMAP SEARCH, SORT and THREAD on top of the mail search service.

RFC 9051 §6.4.4 SEARCH (and RFC 3501 §6.4.4: RECENT, NEW, OLD), RFC 4731 ESEARCH (the
server encodes the result), RFC 5182 SEARCHRES ("$"), RFC 7162 §3.1.5 MODSEQ, RFC 5032
WITHIN, RFC 5256 SORT and THREAD, RFC 5957 DISPLAYFROM/DISPLAYTO.

This module only translates: sequence numbers become UIDs through the session's view,
"$" becomes the saved UIDs, IMAP flags become keywords, and ``mail.search`` decides what
matches. Results are UIDs; the server turns them into sequence numbers for the non-UID
commands.

CHARSET: the parser has already decoded the search strings from the charsets it knows
(``proto.grammar.SEARCH_CHARSETS``: US-ASCII and UTF-8, which RFC 9051 requires, and a
few ISO-8859/Windows ones); any other name raises :class:`UnsupportedCharset`, which the
server answers with ``NO [BADCHARSET (US-ASCII UTF-8)]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hirondelle.imap.proto.commands import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNew,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
    SearchWithin,
    SortCriterion,
)
from hirondelle.imap.proto.grammar import SEARCH_CHARSETS
from hirondelle.imap.proto.response import ThreadNode
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.mail import keywords
from hirondelle.mail import search as engine
from hirondelle.services import Services

__all__ = [
    "SearchContext",
    "SearchResult",
    "UnsupportedCharset",
    "UnsupportedSortKey",
    "UnsupportedThreadAlgorithm",
    "search",
    "sort",
    "thread",
    "to_criteria",
]


@dataclass(frozen=True, slots=True)
class SearchContext:
    account_id: int
    mailbox_id: int
    #: The session's view: message sequence number n is uids[n-1] (ascending).
    uids: Sequence[int]
    #: SEARCHRES "$" (RFC 5182); None = nothing saved.
    saved_uids: Sequence[int] | None = None
    recent_uids: frozenset[int] = frozenset()


class UnsupportedCharset(Exception):
    """RFC 9051 §6.4.4: the server answers NO [BADCHARSET (US-ASCII UTF-8)]."""

    def __init__(self, charset: str) -> None:
        super().__init__(f"unsupported charset {charset}")
        self.charset = charset


class UnsupportedSortKey(ValueError):
    """A SORT key this server does not know (the parser normally refuses it first)."""


class UnsupportedThreadAlgorithm(ValueError):
    """RFC 5256 §3: a THREAD algorithm other than ORDEREDSUBJECT and REFERENCES."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    #: Ascending, only UIDs present in context.uids.
    uids: list[int]
    #: RFC 7162 §3.1.5: highest modseq of the matches when the criteria used MODSEQ.
    highest_modseq: int | None


_TEXT_FIELDS = {field.value: field for field in engine.TextField}
_DATE_KEYS = {
    "BEFORE": (engine.DateField.RECEIVED, engine.DateRelation.BEFORE),
    "ON": (engine.DateField.RECEIVED, engine.DateRelation.ON),
    "SINCE": (engine.DateField.RECEIVED, engine.DateRelation.SINCE),
    "SENTBEFORE": (engine.DateField.SENT, engine.DateRelation.BEFORE),
    "SENTON": (engine.DateField.SENT, engine.DateRelation.ON),
    "SENTSINCE": (engine.DateField.SENT, engine.DateRelation.SINCE),
}
_RECENT = "\\recent"


def _check_charset(charset: str | None) -> None:
    if charset is not None and charset.upper() not in SEARCH_CHARSETS:
        raise UnsupportedCharset(charset)


def _uid_ranges(uids: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Ascending UIDs as few inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(uids):
        if ranges and uid <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(uid, ranges[-1][1]))
        else:
            ranges.append((uid, uid))
    return tuple(ranges)


def _set_criterion(key: SearchSet, context: SearchContext) -> engine.Criterion:
    """RFC 9051 §6.4.4 sequence-set / UID sequence-set; RFC 5182 §2.1 "$"."""
    numbers: SequenceSet = key.numbers
    if numbers.saved:
        # "$" names the saved messages whatever the command form (RFC 5182 §2.1); with
        # nothing saved it is the empty set.
        return engine.UidIn(_uid_ranges(context.saved_uids or ()))
    view = context.uids
    if key.uid:
        # "*" is the highest UID in use (RFC 9051 §6.4.8).
        return engine.UidIn(numbers.resolve(view[-1] if view else 0))
    ranges: list[tuple[int, int]] = []
    for low, high in numbers.resolve(len(view)):
        if low > len(view):
            continue
        ranges.append((view[low - 1], view[min(high, len(view)) - 1]))
    return engine.UidIn(tuple(ranges))


def _uses_modseq(key: SearchKey) -> bool:
    if isinstance(key, SearchModSeq):
        return True
    if isinstance(key, SearchNot):
        return _uses_modseq(key.key)
    if isinstance(key, SearchOr):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, SearchAnd):
        return any(_uses_modseq(k) for k in key.keys)
    return False


def to_criteria(key: SearchKey, context: SearchContext) -> engine.Criterion:
    """RFC 9051 §6.4.4: an IMAP search key as the search service's criteria."""
    if isinstance(key, SearchAll):
        return engine.Everything()
    if isinstance(key, SearchFlag):
        if key.flag.lower() == _RECENT:
            # RFC 3501 §6.4.4 RECENT / OLD: the session's own recent set.
            recent = engine.UidIn(_uid_ranges(context.recent_uids))
            return recent if key.present else engine.Not(recent)
        # KEYWORD is case-insensitive (RFC 9051 §2.3.2): keywords are stored lowercased.
        return engine.HasKeyword(keywords.from_imap(key.flag), key.present)
    if isinstance(key, SearchNew):
        # RFC 3501 §6.4.4: NEW = RECENT UNSEEN.
        return engine.AllOf(
            (
                engine.UidIn(_uid_ranges(context.recent_uids)),
                engine.HasKeyword(keywords.SEEN, present=False),
            )
        )
    if isinstance(key, SearchText):
        return engine.ContainsText(_TEXT_FIELDS[key.field.upper()], key.value)
    if isinstance(key, SearchHeader):
        return engine.HeaderContains(key.field, key.value)
    if isinstance(key, SearchDate):
        date_field, relation = _DATE_KEYS[key.key.upper()]
        return engine.DateIs(date_field, relation, key.day)
    if isinstance(key, SearchSize):
        return engine.SizeIs(key.larger, key.size)
    if isinstance(key, SearchWithin):
        return engine.ReceivedWithin(key.older, key.seconds)
    if isinstance(key, SearchSet):
        return _set_criterion(key, context)
    if isinstance(key, SearchModSeq):
        # One modseq per message: the entry name and type are accepted and ignored
        # (RFC 7162 §3.1.5 allows it when no per-flag modseq is kept).
        return engine.ModSeqAtLeast(key.modseq)
    if isinstance(key, SearchNot):
        return engine.Not(to_criteria(key.key, context))
    if isinstance(key, SearchOr):
        return engine.AnyOf((to_criteria(key.left, context), to_criteria(key.right, context)))
    return engine.AllOf(tuple(to_criteria(k, context) for k in key.keys))


async def _matches(
    services: Services, context: SearchContext, key: SearchKey, charset: str | None
) -> list[engine.MessageRow]:
    _check_charset(charset)
    return await engine.find_messages(
        services.database,
        blobs=services.blobs,
        account_id=context.account_id,
        mailbox_id=context.mailbox_id,
        criteria=to_criteria(key, context),
        within=frozenset(context.uids),
    )


async def search(
    services: Services, context: SearchContext, key: SearchKey, *, charset: str | None = None
) -> SearchResult:
    """RFC 9051 §6.4.4 SEARCH / UID SEARCH (and ESEARCH, SEARCHRES: the server encodes
    and saves the result): matching UIDs, ascending."""
    rows = await _matches(services, context, key, charset)
    highest = max((row.modseq for row in rows), default=None) if _uses_modseq(key) else None
    return SearchResult(uids=[row.uid for row in rows], highest_modseq=highest)


async def sort(
    services: Services,
    context: SearchContext,
    criteria: Sequence[SortCriterion],
    key: SearchKey,
    *,
    charset: str,
) -> list[int]:
    """RFC 5256 §3 SORT (RFC 5957 DISPLAYFROM/DISPLAYTO): matching UIDs in sort order;
    ties keep mailbox (sequence number) order."""
    order = []
    for criterion in criteria:
        try:
            sort_key = engine.SortKey(criterion.key.upper())
        except ValueError:
            raise UnsupportedSortKey(criterion.key) from None
        order.append(engine.SortOrder(sort_key, criterion.reverse))
    rows = await _matches(services, context, key, charset)
    ordered = await engine.sort_messages(
        services.database, rows=rows, order=order, mailbox_id=context.mailbox_id
    )
    return [row.uid for row in ordered]


def _node(branch: engine.ThreadBranch) -> ThreadNode:
    return ThreadNode(branch.uid, tuple(_node(child) for child in branch.children))


async def thread(
    services: Services, context: SearchContext, algorithm: str, key: SearchKey, *, charset: str
) -> list[ThreadNode]:
    """RFC 5256 §3 THREAD=ORDEREDSUBJECT and THREAD=REFERENCES: threads of UIDs."""
    try:
        chosen = engine.ThreadAlgorithm(algorithm.upper())
    except ValueError:
        raise UnsupportedThreadAlgorithm(algorithm) from None
    rows = await _matches(services, context, key, charset)
    branches = await engine.thread_messages(
        services.database, rows=rows, algorithm=chosen, mailbox_id=context.mailbox_id
    )
    return [_node(branch) for branch in branches]
