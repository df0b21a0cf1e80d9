"""Email properties computed from the stored message: RFC 8621 §4.1.2 header forms,
§4.1.3 ``header:Name:asForm[:all]`` properties, §4.1.4 body parts and body values.

Sans I/O: every function takes the bytes of the stored message (or of its header
block) and the structure stored at ingest (``emails.structure``), so the parsers here are
tested with hypothesis on arbitrary input, and Email/get, Email/parse and SearchSnippet
share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hirondelle.mime.addresses import ItemKind, decoded_addresses, parse_address_list
from hirondelle.mime.headers import (
    HeaderField,
    decode_header_bytes,
    decode_words,
    parse_date,
    parse_header_block,
    parse_message_ids,
    unfold,
)
from hirondelle.mime.text import decode_body

# RFC 8621 §4.1.2: which forms each header field may be asked in. Fields not listed
# (unknown to RFC 5322 and RFC 2369) may be asked in any form.
FORMS = ("Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs")
_ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-reply-to",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    }
)
_ID_FIELDS = frozenset({"message-id", "in-reply-to", "references", "resent-message-id"})
_DATE_FIELDS = frozenset({"date", "resent-date"})
_URL_FIELDS = frozenset(
    {"list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive"}
)
_TEXT_FIELDS = frozenset({"subject", "comments", "keywords", "list-id"})


def allowed_forms(name: str) -> frozenset[str]:
    """RFC 8621 §4.1.2: the forms in which header field ``name`` may be fetched."""
    lowered = name.lower()
    if lowered in _ADDRESS_FIELDS:
        return frozenset({"Raw", "Addresses", "GroupedAddresses"})
    if lowered in _ID_FIELDS:
        return frozenset({"Raw", "MessageIds"})
    if lowered in _DATE_FIELDS:
        return frozenset({"Raw", "Date"})
    if lowered in _URL_FIELDS:
        return frozenset({"Raw", "URLs"})
    if lowered in _TEXT_FIELDS:
        return frozenset({"Raw", "Text"})
    return frozenset(FORMS)


@dataclass(frozen=True, slots=True)
class HeaderProperty:
    """A parsed ``header:{name}[:as{Form}][:all]`` property name."""

    property: str
    name: str
    form: str
    all: bool


_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")


def parse_header_property(prop: str) -> HeaderProperty | None:
    """``header:Subject:asText:all`` -> HeaderProperty; None when not of that shape or
    the form is not allowed for the field (the caller answers invalidArguments)."""
    if not prop.startswith("header:"):
        return None
    pieces = prop[len("header:") :].split(":")
    if not pieces or not pieces[0] or not _HEADER_NAME.match(pieces[0]):
        return None
    name = pieces[0]
    rest = pieces[1:]
    want_all = False
    if rest and rest[-1] == "all":
        want_all = True
        rest = rest[:-1]
    form = "Raw"
    if rest:
        if len(rest) != 1 or not rest[0].startswith("as"):
            return None
        form = rest[0][2:]
        if form not in FORMS:
            return None
    if form not in allowed_forms(name):
        return None
    return HeaderProperty(prop, name, form, want_all)


def header_fields(header_block: bytes) -> tuple[HeaderField, ...]:
    return parse_header_block(header_block)


def raw_text(value: bytes) -> str:
    """RFC 8621 §4.1.2.1 Raw: the octets after the colon, as UTF-8 (invalid octets
    replaced)."""
    return value.decode("utf-8", "replace")


def as_text(value: bytes) -> str:
    """RFC 8621 §4.1.2.2 Text: unfolded, encoded-words decoded, outer whitespace
    trimmed."""
    return decode_words(unfold(value)).replace("\t", " ").strip()


def as_addresses(value: bytes) -> list[dict[str, Any]]:
    """RFC 8621 §4.1.2.3 Addresses: every mailbox, groups flattened."""
    return [
        {"name": a.name, "email": a.email}
        for a in decoded_addresses(parse_address_list(unfold(value)))
    ]


def as_grouped_addresses(value: bytes) -> list[dict[str, Any]]:
    """RFC 8621 §4.1.2.4 GroupedAddresses: mailboxes outside any group gathered in
    groups with a null name."""
    items = parse_address_list(unfold(value))
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    loose: dict[str, Any] | None = None
    for item in items:
        if item.kind is ItemKind.GROUP_START:
            name = decode_words(item.name).strip() if item.name is not None else None
            current = {"name": name or None, "addresses": []}
            groups.append(current)
            loose = None
        elif item.kind is ItemKind.GROUP_END:
            current = None
        else:
            [address] = decoded_addresses((item,))
            entry = {"name": address.name, "email": address.email}
            if current is not None:
                current["addresses"].append(entry)
            else:
                if loose is None:
                    loose = {"name": None, "addresses": []}
                    groups.append(loose)
                loose["addresses"].append(entry)
    return groups


def as_message_ids(value: bytes) -> list[str] | None:
    """RFC 8621 §4.1.2.5 MessageIds: the ids without angle brackets, or null."""
    found = parse_message_ids(unfold(value))
    return list(found) or None


def as_date(value: bytes) -> str | None:
    """RFC 8621 §4.1.2.6 Date: RFC 3339 date-time with the offset as written, or null."""
    parsed = parse_date(unfold(value))
    return date_string(parsed) if parsed is not None else None


_URL = re.compile(rb"<([^<>]*)>")


def as_urls(value: bytes) -> list[str] | None:
    """RFC 8621 §4.1.2.7 URLs: the URLs between angle brackets (RFC 2369), or null."""
    found = [decode_header_bytes(re.sub(rb"\s", b"", m.group(1))) for m in _URL.finditer(value)]
    return found or None


def date_string(moment: datetime) -> str:
    """RFC 3339 ``date-time``; UTC is written ``Z`` (RFC 8620 §1.4 UTCDate)."""
    moment = moment.replace(microsecond=0)
    if moment.utcoffset() is not None and moment.utcoffset() == UTC.utcoffset(None):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def utc_date(microseconds: int) -> str:
    """RFC 8620 §1.4 UTCDate of a store timestamp."""
    return datetime.fromtimestamp(microseconds // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_CONVERTERS = {
    "Raw": raw_text,
    "Text": as_text,
    "Addresses": as_addresses,
    "GroupedAddresses": as_grouped_addresses,
    "MessageIds": as_message_ids,
    "Date": as_date,
    "URLs": as_urls,
}


def header_value(fields: tuple[HeaderField, ...], wanted: HeaderProperty) -> Any:
    """RFC 8621 §4.1.3: the last field of that name (or all, with ``:all``) in the form;
    null (or []) when absent."""
    lowered = wanted.name.lower()
    convert = _CONVERTERS[wanted.form]
    values = [convert(f.raw_value) for f in fields if f.name.lower() == lowered]
    if wanted.all:
        return values
    return values[-1] if values else None


def headers_list(fields: tuple[HeaderField, ...]) -> list[dict[str, str]]:
    """RFC 8621 §4.1.3 ``headers``: every field in order, Raw form."""
    return [{"name": f.name, "value": raw_text(f.raw_value)} for f in fields]


# -- body parts -----------------------------------------------------------------------------

DEFAULT_BODY_PROPERTIES = (
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
)
BODY_PROPERTIES = frozenset({*DEFAULT_BODY_PROPERTIES, "headers", "subParts"})


def part_blob_id(email_id: int, part_id: str) -> str:
    """The blob id of one leaf part of an email: ``P<email>-<part>``."""
    return f"P{email_id}-{part_id}"


def parse_part_blob_id(blob_id: str) -> tuple[int, str] | None:
    match = re.fullmatch(r"P([1-9][0-9]{0,17})-([1-9][0-9]{0,5})", blob_id)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def leaves(structure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Leaf parts of a stored bodyStructure by partId."""
    found: dict[str, dict[str, Any]] = {}

    def walk(part: dict[str, Any]) -> None:
        if part.get("subParts") is not None:
            for child in part["subParts"]:
                walk(child)
        elif part.get("partId") is not None:
            found[str(part["partId"])] = part

    walk(structure)
    return found


def locations(document: dict[str, Any]) -> dict[str, tuple[int, int, int, str]]:
    """IMAP section -> (header_start, body_start, end, transfer encoding) from the stored
    part map."""
    return {str(p[0]): (int(p[1]), int(p[2]), int(p[3]), str(p[5])) for p in document["parts"]}


def render_part(
    part: dict[str, Any],
    *,
    email_id: int | None,
    blob_id_of: dict[str, str] | None,
    properties: tuple[str, ...] | list[str],
    raw: bytes | None,
    sections: dict[str, tuple[int, int, int, str]] | None,
) -> dict[str, Any]:
    """RFC 8621 §4.1.4 EmailBodyPart with the requested ``properties`` (``header:*``
    forms read the part's own header block from ``raw``)."""
    result: dict[str, Any] = {}
    fields: tuple[HeaderField, ...] | None = None
    for prop in properties:
        if prop == "blobId":
            part_id = part.get("partId")
            if part_id is None:
                result["blobId"] = None
            elif blob_id_of is not None:
                result["blobId"] = blob_id_of[str(part_id)]
            else:
                assert email_id is not None
                result["blobId"] = part_blob_id(email_id, str(part_id))
        elif prop == "subParts":
            children = part.get("subParts")
            result["subParts"] = (
                None
                if children is None
                else [
                    render_part(
                        child,
                        email_id=email_id,
                        blob_id_of=blob_id_of,
                        properties=properties,
                        raw=raw,
                        sections=sections,
                    )
                    for child in children
                ]
            )
        elif prop.startswith("header:"):
            wanted = parse_header_property(prop)
            assert wanted is not None
            if fields is None:
                fields = _part_fields(part, raw, sections)
            result[prop] = header_value(fields, wanted)
        elif prop == "headers":
            if fields is None:
                fields = _part_fields(part, raw, sections)
            result["headers"] = headers_list(fields)
        else:
            result[prop] = part.get(prop)
    return result


def _part_fields(
    part: dict[str, Any], raw: bytes | None, sections: dict[str, tuple[int, int, int, str]] | None
) -> tuple[HeaderField, ...]:
    if raw is None or sections is None:
        return ()
    location = sections.get(str(part.get("section")))
    if location is None:
        return ()
    header_start, body_start, _end, _encoding = location
    return parse_header_block(raw[header_start:body_start])


@dataclass(frozen=True, slots=True)
class BodyValue:
    value: str
    is_encoding_problem: bool
    is_truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "isEncodingProblem": self.is_encoding_problem,
            "isTruncated": self.is_truncated,
        }


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """RFC 8621 §4.2 maxBodyValueBytes: at most ``max_bytes`` octets of UTF-8, never
    cutting a character in two."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return text, False
    # Everything before the cut is valid UTF-8, so "ignore" drops only a character cut
    # in two at the end.
    return encoded[:max_bytes].decode("utf-8", "ignore"), True


def body_value(
    raw: bytes,
    part: dict[str, Any],
    location: tuple[int, int, int, str],
    *,
    max_bytes: int | None,
) -> BodyValue:
    """RFC 8621 §4.1.4 EmailBodyValue of a text/* part: decoded from its transfer
    encoding and charset; isEncodingProblem when characters had to be replaced."""
    _header_start, body_start, end, encoding = location
    text = decode_body(raw, body_start, end, encoding, part.get("charset"))
    problem = "\ufffd" in text
    truncated = False
    if max_bytes is not None and max_bytes > 0:
        text, truncated = truncate_utf8(text, max_bytes)
    return BodyValue(text, problem, truncated)
