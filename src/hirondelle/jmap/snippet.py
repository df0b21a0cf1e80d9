"""RFC 8621 §5: SearchSnippet/get — the subject and a fragment of the body with the
search terms of a filter highlighted.

Terms are the words of the filter's ``text``, ``subject`` and ``body`` conditions. A word
of the email is highlighted when its folded form (:func:`hirondelle.store.search.fold`:
case and diacritics ignored) begins with a folded term, the way the full-text index
matches, so what is highlighted is what Email/query found. The result is HTML: the text
is escaped and matches are wrapped in ``<mark>``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.jmap import ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.email import BodyOptions, decode, read_prefix
from hirondelle.jmap.email_parts import body_value, leaves, locations
from hirondelle.jmap.email_query import check_condition
from hirondelle.jmap.errors import MethodError
from hirondelle.jmap.standard import FilterOperator, invalid, known_arguments, parse_filter
from hirondelle.mime.text import collapse_whitespace, html_to_text
from hirondelle.store import jmap_emails
from hirondelle.store.jmap_emails import EmailRecord
from hirondelle.store.search import fold, words

PREVIEW_LENGTH = 255
_WORD = re.compile(r"\w+", re.UNICODE)
_TERM_CONDITIONS = ("text", "subject", "body")


def terms_of(node: Any) -> list[str]:
    """Folded words of the filter's text conditions (not under NOT: those are words the
    results do not contain)."""
    if node is None:
        return []
    if isinstance(node, FilterOperator):
        if node.operator == "NOT":
            return []
        return [t for child in node.conditions for t in terms_of(child)]
    found: list[str] = []
    for key in _TERM_CONDITIONS:
        if isinstance(node.get(key), str):
            found.extend(fold(w) for w in words(node[key]))
    return list(dict.fromkeys(t for t in found if t))


def highlight(text: str, terms: list[str]) -> tuple[str, bool]:
    """``text`` as HTML with matching words in <mark>; whether anything matched."""
    pieces: list[str] = []
    position = 0
    matched = False
    for match in _WORD.finditer(text):
        word = match.group(0)
        folded = fold(word)
        if any(folded.startswith(term) for term in terms):
            pieces.append(html.escape(text[position : match.start()]))
            pieces.append(f"<mark>{html.escape(word)}</mark>")
            position = match.end()
            matched = True
    pieces.append(html.escape(text[position:]))
    return "".join(pieces), matched


def fragment(text: str, terms: list[str], length: int = PREVIEW_LENGTH) -> str | None:
    """A window of at most ``length`` characters around the first match, highlighted."""
    for match in _WORD.finditer(text):
        folded = fold(match.group(0))
        if any(folded.startswith(term) for term in terms):
            start = max(0, match.start() - length // 4)
            # Start at a word boundary, not inside a word.
            while start > 0 and text[start - 1].isalnum():
                start -= 1
            window = text[start : start + length]
            marked, _ = highlight(window, terms)
            return ("…" if start > 0 else "") + marked
    return None


def body_text(record: EmailRecord, raw: bytes) -> str:
    document = json.loads(record.structure)
    by_part = leaves(document["bodyStructure"])
    sections = locations(document)
    texts = []
    for part_id in [*document.get("textBody", [])] or [*document.get("htmlBody", [])]:
        part = by_part.get(str(part_id))
        if part is None or not str(part.get("type", "")).startswith("text/"):
            continue
        location = sections.get(str(part.get("section")))
        if location is None:
            continue
        value = body_value(raw, part, location, max_bytes=None).value
        if part.get("type") == "text/html":
            value = html_to_text(value)
        texts.append(value)
    return collapse_whitespace(" ".join(texts))


@method("SearchSnippet/get", capability=MAIL)
async def snippet_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §5.1."""
    known_arguments(call, ["filter", "emailIds"])
    email_ids = call.args.get("emailIds")
    if not isinstance(email_ids, list) or not all(isinstance(i, str) for i in email_ids):
        raise invalid("emailIds", "emailIds must be an array of Id")
    if len(email_ids) > call.limits.max_objects_in_get:
        raise MethodError("requestTooLarge", "too many emails in one SearchSnippet/get")
    terms = terms_of(parse_filter(call.args.get("filter"), check_condition))
    numbers = {i: decode(call.resolve_id(i)) for i in email_ids}

    def read(conn: Connection) -> dict[int, EmailRecord]:
        return jmap_emails.email_records(
            conn, call.account_id, [n for n in numbers.values() if n is not None]
        )

    records = await call.services.database.read(read)
    snippets = []
    not_found = []
    for raw_id, number in numbers.items():
        record = records.get(number) if number is not None else None
        if record is None:
            not_found.append(raw_id)
            continue
        subject, subject_matched = highlight(record.subject, terms)
        preview = None
        if terms:
            raw = await read_prefix(
                call.services,
                record,
                ["bodyValues"],
                BodyOptions(fetch_text=True, fetch_html=True),
            )
            preview = fragment(body_text(record, raw), terms)
        snippets.append(
            {
                "emailId": ids.encode(ids.EMAIL, record.id),
                "subject": subject if subject_matched else None,
                "preview": preview,
            }
        )
    return {"accountId": call.account_id_string, "list": snippets, "notFound": not_found or None}
