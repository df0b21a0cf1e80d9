"""RFC 8621 §4.4 Email/query and §4.5 Email/queryChanges.

A filter is evaluated to a set of email ids, bottom up (AND = intersection, OR = union,
NOT = what none of its conditions match), so conditions about the email as a whole
(``inMailbox``, ``inMailboxOtherThan``) keep their meaning under NOT.

What "contains" means for ``text``, ``from``, ``to``, ``cc``, ``bcc``, ``subject``,
``body`` and ``header`` is decided once, by the IMAP search engine
(:func:`hirondelle.mail.search.find_messages`: the full-text index, then folded
substrings): JMAP asks it for the mailboxes in question and never matches text itself.
Dates, sizes, keywords and attachments are columns, compared here as RFC 8621 §4.4.1
defines them (``minSize`` is ``>=``, unlike IMAP's strict LARGER).

Sorting (§4.4.2): ``receivedAt``, ``sentAt``, ``size``, ``subject`` (the RFC 5256 base
subject stored at ingest), ``from``/``to`` (the first address's name, else its email,
as RFC 5957 DISPLAYFROM), ``hasKeyword``, ``allInThreadHaveKeyword``,
``someInThreadHaveKeyword``; strings compare casefolded. Ties are broken by receivedAt
then id, newest first, so a result has one order. Without ``sort`` the newest come first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.jmap import ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.email import encode
from hirondelle.jmap.errors import MethodError
from hirondelle.jmap.standard import (
    Comparator,
    FilterOperator,
    QueryArgs,
    boolean,
    query_args,
    query_changes,
    state_string,
    window,
)
from hirondelle.mail import search
from hirondelle.store import jmap_emails, journal
from hirondelle.store import message_queries as queries
from hirondelle.store.jmap_emails import QueryRow

SORT_PROPERTIES = (
    "receivedAt",
    "sentAt",
    "size",
    "from",
    "to",
    "subject",
    "hasKeyword",
    "allInThreadHaveKeyword",
    "someInThreadHaveKeyword",
)
# The most ids one Email/query returns (the framework's default window).
MAX_LIMIT = 10_000
_KEYWORD_SORTS = frozenset({"hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword"})
_TEXT_FIELDS = {
    "text": search.TextField.TEXT,
    "from": search.TextField.FROM,
    "to": search.TextField.TO,
    "cc": search.TextField.CC,
    "bcc": search.TextField.BCC,
    "subject": search.TextField.SUBJECT,
    "body": search.TextField.BODY,
}
_STRING_CONDITIONS = frozenset(_TEXT_FIELDS)
_KEYWORD_CONDITIONS = frozenset(
    {
        "hasKeyword",
        "notKeyword",
        "allInThreadHaveKeyword",
        "someInThreadHaveKeyword",
        "noneInThreadHaveKeyword",
    }
)
CONDITIONS = frozenset(
    {
        "inMailbox",
        "inMailboxOtherThan",
        "before",
        "after",
        "minSize",
        "maxSize",
        "hasAttachment",
        "header",
        *_STRING_CONDITIONS,
        *_KEYWORD_CONDITIONS,
    }
)


def _bad(description: str) -> MethodError:
    return MethodError("invalidArguments", description, arguments=["filter"])


def _utc_date(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise _bad(f"{name} must be a UTCDate")
    try:
        return int(datetime.fromisoformat(value[:-1] + "+00:00").timestamp() * 1_000_000)
    except ValueError:
        raise _bad(f"{name} must be a UTCDate") from None


def check_condition(condition: dict[str, Any]) -> dict[str, Any]:
    """RFC 8621 §4.4.1 FilterCondition, checked and normalized (dates to µs, keywords
    lowercased, mailbox ids to store ids or -1 for an id that names none)."""
    unknown = set(condition) - CONDITIONS
    if unknown:
        raise MethodError("unsupportedFilter", f"unknown filter conditions {sorted(unknown)}")
    result: dict[str, Any] = {}
    for key, value in condition.items():
        if key == "inMailbox":
            if not isinstance(value, str):
                raise _bad("inMailbox must be an Id")
            result[key] = ids.decode(ids.MAILBOX, value) or -1
        elif key == "inMailboxOtherThan":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _bad("inMailboxOtherThan must be an array of Id")
            result[key] = [ids.decode(ids.MAILBOX, v) or -1 for v in value]
        elif key in ("before", "after"):
            result[key] = _utc_date(value, key)
        elif key in ("minSize", "maxSize"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(f"{key} must be an UnsignedInt")
            result[key] = value
        elif key == "hasAttachment":
            if not isinstance(value, bool):
                raise _bad("hasAttachment must be a boolean")
            result[key] = value
        elif key in _KEYWORD_CONDITIONS:
            if not isinstance(value, str) or not value:
                raise _bad(f"{key} must be a keyword")
            result[key] = value.lower()
        elif key in _STRING_CONDITIONS:
            if not isinstance(value, str):
                raise _bad(f"{key} must be a string")
            result[key] = value
        elif key == "header":
            if (
                not isinstance(value, list)
                or not 1 <= len(value) <= 2
                or not all(isinstance(v, str) for v in value)
                or not value[0]
            ):
                raise _bad("header is [name] or [name, value]")
            result[key] = list(value)
    return result


@dataclass
class _Evaluation:
    call: Call
    rows: list[QueryRow]
    # The mailbox the rows were read from (every row is in it), if one.
    scope: int | None = None
    by_id: dict[int, QueryRow] = field(default_factory=dict)
    _mailboxes: list[int] | None = None
    _thread_keywords: dict[int, list[frozenset[str]]] | None = None
    _attachments: set[int] | None = None

    def __post_init__(self) -> None:
        self.by_id = {row.id: row for row in self.rows}

    @property
    def universe(self) -> set[int]:
        return set(self.by_id)

    async def read(self, function: Callable[[Connection], Any]) -> Any:
        return await self.call.services.database.read(function)

    async def evaluate(self, node: Any) -> set[int]:
        if node is None:
            return self.universe
        if isinstance(node, FilterOperator):
            parts = [await self.evaluate(child) for child in node.conditions]
            if node.operator == "AND":
                result = self.universe
                for part in parts:
                    result &= part
                return result
            union: set[int] = set()
            for part in parts:
                union |= part
            return union if node.operator == "OR" else self.universe - union
        return await self._condition(node)

    async def _condition(self, condition: dict[str, Any]) -> set[int]:
        account_id = self.call.account_id
        rows = self.rows
        if "inMailbox" in condition and condition["inMailbox"] != self.scope:
            mailbox_id = condition["inMailbox"]
            inside = await self.read(lambda conn: jmap_emails.mailbox_email_ids(conn, [mailbox_id]))
            rows = [r for r in rows if r.id in inside]
        if "inMailboxOtherThan" in condition:
            excluded = condition["inMailboxOtherThan"]
            outside = await self.read(
                lambda conn: jmap_emails.emails_outside(conn, account_id, excluded)
            )
            rows = [r for r in rows if r.id in outside]
        if "before" in condition:
            rows = [r for r in rows if r.received_at < condition["before"]]
        if "after" in condition:
            rows = [r for r in rows if r.received_at >= condition["after"]]
        if "minSize" in condition:
            rows = [r for r in rows if r.size >= condition["minSize"]]
        if "maxSize" in condition:
            rows = [r for r in rows if r.size < condition["maxSize"]]
        if "hasKeyword" in condition:
            rows = [r for r in rows if condition["hasKeyword"] in r.keywords.split()]
        if "notKeyword" in condition:
            rows = [r for r in rows if condition["notKeyword"] not in r.keywords.split()]
        for key in ("allInThreadHaveKeyword", "someInThreadHaveKeyword", "noneInThreadHaveKeyword"):
            if key in condition:
                threads = await self.thread_keywords()
                keyword = condition[key]
                kept = []
                for row in rows:
                    has = [keyword in kws for kws in threads.get(row.thread_id, [])]
                    if key == "allInThreadHaveKeyword":
                        keep = all(has)
                    elif key == "someInThreadHaveKeyword":
                        keep = any(has)
                    else:
                        keep = not any(has)
                    if keep:
                        kept.append(row)
                rows = kept
        if "hasAttachment" in condition:
            if self._attachments is None:
                self._attachments = await self.read(
                    lambda conn: jmap_emails.attachment_ids(conn, account_id)
                )
            attachments = self._attachments
            rows = [r for r in rows if (r.id in attachments) == condition["hasAttachment"]]
        criteria: list[search.Criterion] = [
            search.ContainsText(_TEXT_FIELDS[key], condition[key])
            for key in _TEXT_FIELDS
            if key in condition
        ]
        if "header" in condition:
            name, *value = condition["header"]
            criteria.append(search.HeaderContains(name, value[0] if value else ""))
        found = {r.id for r in rows}
        if criteria and found:
            found &= await self._search(
                search.AllOf(tuple(criteria)), condition.get("inMailbox"), found
            )
        return found

    async def _search(
        self, criterion: search.Criterion, mailbox_id: int | None, candidates: set[int]
    ) -> set[int]:
        """The IMAP engine's answer, over the mailboxes the candidates may be in."""
        services = self.call.services
        account_id = self.call.account_id
        if mailbox_id is not None:
            mailboxes = [mailbox_id]
        else:
            if self._mailboxes is None:
                self._mailboxes = await self.read(
                    lambda conn: jmap_emails.account_mailbox_ids(conn, account_id)
                )
            mailboxes = self._mailboxes
        matched: set[int] = set()
        for box in mailboxes:
            rows = await search.find_messages(
                services.database,
                blobs=services.blobs,
                account_id=account_id,
                mailbox_id=box,
                criteria=criterion,
            )
            matched.update(row.email_id for row in rows if row.email_id in candidates)
        return matched

    async def thread_keywords(self) -> dict[int, list[frozenset[str]]]:
        if self._thread_keywords is None:
            raw = await self.read(
                lambda conn: jmap_emails.thread_keywords(conn, self.call.account_id)
            )
            self._thread_keywords = {
                thread: [frozenset(text.split()) for text in texts] for thread, texts in raw.items()
            }
        return self._thread_keywords


def _top_mailbox(node: Any) -> int | None:
    """The mailbox every result must be in, when the filter says so at its top level:
    the rows are then read from that mailbox alone (the common case, a mailbox view)."""
    if isinstance(node, dict):
        value = node.get("inMailbox")
        return int(value) if isinstance(value, int) else None
    if isinstance(node, FilterOperator) and node.operator == "AND":
        for child in node.conditions:
            found = _top_mailbox(child)
            if found is not None:
                return found
    return None


async def _sort(
    evaluation: _Evaluation, rows: list[QueryRow], sort: list[Comparator]
) -> list[QueryRow]:
    result = sorted(rows, key=lambda r: (r.received_at, r.id), reverse=True)
    for comparator in reversed(sort):
        values = await _sort_values(evaluation, result, comparator)
        result.sort(key=lambda r: values[r.id], reverse=not comparator.is_ascending)
    return result


async def _sort_values(
    evaluation: _Evaluation, rows: list[QueryRow], comparator: Comparator
) -> dict[int, Any]:
    """email id -> the value ``comparator`` sorts on."""
    prop = comparator.property
    email_ids = [r.id for r in rows]
    if prop == "receivedAt":
        return {r.id: r.received_at for r in rows}
    if prop == "sentAt":
        return {r.id: r.sent_at if r.sent_at is not None else r.received_at for r in rows}
    if prop == "size":
        return {r.id: r.size for r in rows}
    if prop == "subject":
        fields = await evaluation.read(lambda conn: queries.sort_fields(conn, email_ids))
        return {i: fields[i].sort_subject.casefold() if i in fields else "" for i in email_ids}
    if prop in ("from", "to"):
        lists = await evaluation.read(lambda conn: queries.address_lists(conn, email_ids, prop))
        return {i: _display(lists.get(i, [])) for i in email_ids}
    keyword = comparator.extra.get("keyword")
    if not isinstance(keyword, str) or not keyword:
        raise MethodError("invalidArguments", f"{prop} needs a keyword", arguments=["sort"])
    keyword = keyword.lower()
    if prop == "hasKeyword":
        return {r.id: keyword in r.keywords.split() for r in rows}
    threads = await evaluation.thread_keywords()
    if prop == "allInThreadHaveKeyword":
        return {r.id: all(keyword in k for k in threads.get(r.thread_id, [])) for r in rows}
    if prop == "someInThreadHaveKeyword":
        return {r.id: any(keyword in k for k in threads.get(r.thread_id, [])) for r in rows}
    raise MethodError("unsupportedSort", f"cannot sort on {prop!r}")


def _display(addresses: list[dict[str, Any]]) -> str:
    for address in addresses:
        name = (address.get("name") or "").strip()
        return (name or str(address.get("email") or "")).casefold()
    return ""


async def _results(call: Call, args: QueryArgs, collapse: bool) -> tuple[list[str], str]:
    """The full sorted result of the query, and the state it reflects."""
    top = _top_mailbox(args.filter)

    def read(conn: Connection) -> tuple[int, list[QueryRow]]:
        return (
            journal.account_modseq(conn, call.account_id)[0],
            jmap_emails.query_rows(conn, call.account_id, top),
        )

    modseq, rows = await call.services.database.read(read)
    evaluation = _Evaluation(call, rows, top)
    matched = await evaluation.evaluate(args.filter)
    ordered = await _sort(evaluation, [r for r in rows if r.id in matched], args.sort)
    if collapse:
        seen: set[int] = set()
        collapsed = []
        for row in ordered:
            if row.thread_id not in seen:
                seen.add(row.thread_id)
                collapsed.append(row)
        ordered = collapsed
    return [encode(r.id) for r in ordered], state_string(modseq)


def _args(call: Call) -> QueryArgs:
    return query_args(
        call,
        condition=check_condition,
        sort_properties=SORT_PROPERTIES,
        sort_members=("keyword",),
        extra_arguments=("collapseThreads",),
    )


def _fast_path(args: QueryArgs) -> tuple[int | None, bool] | None:
    """(mailbox or None, ascending) when the query is a plain list by receivedAt (the
    webmail's message list), which SQL answers in order without loading every row."""
    condition = args.filter
    if condition is not None and (
        not isinstance(condition, dict) or set(condition) != {"inMailbox"}
    ):
        return None
    if len(args.sort) > 1 or (args.sort and args.sort[0].property != "receivedAt"):
        return None
    if args.anchor is not None or args.position < 0:
        return None
    mailbox = condition["inMailbox"] if condition is not None else None
    return mailbox, bool(args.sort and args.sort[0].is_ascending)


async def _fast_results(
    call: Call, args: QueryArgs, collapse: bool, mailbox: int | None, ascending: bool
) -> tuple[list[str], str, int | None]:
    wanted = args.position + min(args.limit if args.limit is not None else MAX_LIMIT, MAX_LIMIT)

    def read(conn: Connection) -> tuple[int, list[int], int | None]:
        found = jmap_emails.first_by_received(
            conn, call.account_id, mailbox, ascending=ascending, wanted=wanted, collapse=collapse
        )
        total = (
            jmap_emails.count_emails(conn, call.account_id, mailbox, collapse=collapse)
            if args.calculate_total
            else None
        )
        return journal.account_modseq(conn, call.account_id)[0], found, total

    modseq, found, total = await call.services.database.read(read)
    return [encode(i) for i in found], state_string(modseq), total


@method("Email/query", capability=MAIL)
async def email_query(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.4 Email/query."""
    args = _args(call)
    collapse = boolean(call, "collapseThreads", default=False)
    fast = _fast_path(args)
    if fast is not None:
        result_ids, state, total = await _fast_results(call, args, collapse, *fast)
        response = window(
            call, result_ids, args, query_state=state, can_calculate_changes=not collapse
        )
        if total is not None:
            response["total"] = total
        response["collapseThreads"] = collapse
        return response
    result_ids, state = await _results(call, args, collapse)
    response = window(call, result_ids, args, query_state=state, can_calculate_changes=not collapse)
    response["collapseThreads"] = collapse
    return response


@method("Email/queryChanges", capability=MAIL)
async def email_query_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.5 Email/queryChanges (RFC 8620 §5.6 on the Email journal)."""
    filter_value = call.args.get("filter")
    sort_value = call.args.get("sort")
    collapse = boolean(call, "collapseThreads", default=False)
    if collapse:
        # A change to one email can change which email stands for its thread, which the
        # journal of emails does not tell: Email/query said canCalculateChanges false.
        raise MethodError("cannotCalculateChanges", "not with collapseThreads")

    async def current() -> tuple[list[str], str]:
        from hirondelle.jmap.standard import parse_filter, parse_sort

        args = QueryArgs(
            filter=parse_filter(filter_value, check_condition),
            sort=parse_sort(sort_value, SORT_PROPERTIES, extra_members=("keyword",)),
            position=0,
            anchor=None,
            anchor_offset=0,
            limit=None,
            calculate_total=False,
        )
        return await _results(call, args, collapse)

    response = await query_changes(
        call,
        kind="Email",
        encode=encode,
        current=current,
        condition=check_condition,
        sort_properties=SORT_PROPERTIES,
        sort_members=("keyword",),
        extra_arguments=("collapseThreads",),
    )
    return response
