"""Parsing a message once, at ingest, into everything IMAP, JMAP and search will serve.

:func:`parse_message` is a pure function of the raw octets (RFC 5322 message, MIME per
RFC 2045-2049) and never raises. It combines:

- the part tree with byte offsets (:mod:`hirondelle.mime.structure`, RFC 2046, RFC 9051
  §6.4.5 section numbers),
- IMAP ENVELOPE, BODY and BODYSTRUCTURE rendered as IMAP bytes (RFC 9051 §7.5.2),
- the JMAP Email properties (RFC 8621 §4.1): decoded addresses, subject, sent date,
  message-id lists, bodyStructure, textBody/htmlBody/attachments, hasAttachment, preview,
- the RFC 5256 §2.1 base subject for threading and SORT, and the text for full-text search.

Sizes and offsets are of ``raw`` as given. IMAP (RFC 9051 §2.2) transfers messages with
CRLF line endings: a store that wants IMAP sizes to match what it serves should call
:func:`canonicalize_line_endings` before storing and parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hirondelle.mime.addresses import Address, decoded_addresses
from hirondelle.mime.bodystructure import render_body_structures
from hirondelle.mime.envelope import parse_envelope_addresses, render_envelope
from hirondelle.mime.headers import (
    Headers,
    decode_header_bytes,
    decode_unstructured,
    parse_date,
    parse_message_ids,
)
from hirondelle.mime.jmap import (
    MAX_HEADER_VALUE,
    build_body_parts,
    classify_body_parts,
    part_content_id,
    part_disposition,
    part_filename,
)
from hirondelle.mime.structure import Part, parse_structure
from hirondelle.mime.subject import base_subject
from hirondelle.mime.text import (
    MAX_TEXT_PART,
    collapse_whitespace,
    decode_body,
    html_to_text,
    make_preview,
)

MAX_SEARCH_TEXT = 2 * 1024 * 1024
"""Characters of search text kept per message."""


@dataclass(frozen=True, slots=True)
class PartLocation:
    """Where one MIME part sits in the raw message, so IMAP BODY[section] and JMAP blob
    parts are slices of the stored blob.

    For ``section == ""`` (the whole message) ``body_start`` is the end of the top-level
    header. A single-part message also has section ``"1"`` (RFC 9051 §6.4.5) with the same
    offsets. For a message/rfc822 part ``S`` (``is_message``), ``message_header_end`` ends
    the encapsulated header: ``S.HEADER`` is ``raw[body_start:message_header_end]`` and
    ``S.TEXT`` is ``raw[message_header_end:end]``; its sub-parts are ``S.1``, ``S.2``...
    """

    section: str
    header_start: int
    body_start: int
    end: int
    content_type: str
    charset: str | None
    transfer_encoding: str
    disposition: str | None
    filename: str | None
    content_id: str | None
    is_multipart: bool
    is_message: bool
    message_header_end: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything computed from a message at ingest (see the module docstring)."""

    size: int
    envelope: bytes
    body_structure: bytes
    body: bytes
    parts: tuple[PartLocation, ...]
    jmap_body_structure: dict[str, Any]
    text_body: tuple[str, ...]
    html_body: tuple[str, ...]
    attachments: tuple[str, ...]
    has_attachment: bool
    subject: str
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    sent_at: datetime | None
    message_id: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    thread_subject: str
    preview: str
    search_text: str
    header_end: int
    headers: tuple[tuple[str, str], ...] = ()
    """Top-level header fields in order: (name as written, raw value after the colon,
    folding kept, decoded as UTF-8 or ISO-8859-1), for JMAP ``header:Name`` (RFC 8621
    §4.1.3 raw form) and IMAP HEADER.FIELDS."""
    list_id: str | None = None
    """RFC 2919 List-Id identifier, without angle brackets."""
    auto_submitted: str | None = None
    """RFC 3834 §5 Auto-Submitted value (lowercased), or "bulk"/"list"/"junk" from a
    Precedence header; vacation replies must not answer these."""


def canonicalize_line_endings(raw: bytes) -> bytes:
    """Bare LF to CRLF (RFC 5322 §2.1, RFC 9051 §2.2); lone CRs are left alone."""
    if b"\n" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw`` once; never raises on any input (falls back to a minimal description
    if an unforeseen error occurs, so delivery is never refused because of the parser).
    """
    try:
        return _parse(raw)
    except Exception:  # the parser is total by design; this is the last line of defence
        return replace(_parse(b""), size=len(raw))


def _parse(raw: bytes) -> ParsedMessage:
    root = parse_structure(raw)
    headers = root.headers
    addresses = parse_envelope_addresses(headers)
    jmap_structure = build_body_parts(root, raw)
    text_body, html_body, attachments = classify_body_parts(jmap_structure)
    leaves = _leaves_by_id(jmap_structure)
    locations = _locations(root)
    by_section = {location.section: location for location in locations}
    subject = decode_unstructured(headers.get("subject")).strip()
    body_structure, body = render_body_structures(root, raw)
    texts: dict[tuple[int, int, str], str] = {}
    search_text = _search_text(raw, root, texts)
    return ParsedMessage(
        size=len(raw),
        envelope=render_envelope(headers, addresses),
        body_structure=body_structure,
        body=body,
        parts=tuple(locations),
        jmap_body_structure=jmap_structure,
        text_body=text_body,
        html_body=html_body,
        attachments=attachments,
        has_attachment=any(leaves[part_id]["disposition"] != "inline" for part_id in attachments),
        subject=subject,
        from_=decoded_addresses(addresses.from_),
        sender=decoded_addresses(addresses.sender),
        reply_to=decoded_addresses(addresses.reply_to),
        to=decoded_addresses(addresses.to),
        cc=decoded_addresses(addresses.cc),
        bcc=decoded_addresses(addresses.bcc),
        sent_at=parse_date(headers.get("date")),
        message_id=parse_message_ids(headers.get("message-id")),
        in_reply_to=parse_message_ids(headers.get("in-reply-to")),
        references=parse_message_ids(headers.get("references")),
        thread_subject=base_subject(subject),
        preview=_preview(raw, text_body, html_body, leaves, by_section, texts),
        search_text=search_text,
        header_end=root.body_start,
        headers=tuple(
            # the JMAP structure has decoded the top-level fields already (cut if huge)
            (field.name, item["value"])
            if len(field.raw_value) <= MAX_HEADER_VALUE
            else (field.name, decode_header_bytes(field.raw_value))
            for field, item in zip(headers.fields, jmap_structure["headers"], strict=True)
        ),
        list_id=_list_id(headers),
        auto_submitted=_auto_submitted(headers),
    )


def _leaves_by_id(structure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pending = [structure]
    while pending:
        node = pending.pop()
        if node["subParts"] is None:
            found[node["partId"]] = node
        else:
            pending.extend(node["subParts"])
    return found


def _location(
    part: Part, *, section: str | None = None, whole_message: bool = False
) -> PartLocation:
    encapsulated = part.message is not None and not whole_message
    return PartLocation(
        section=part.section if section is None else section,
        header_start=part.header_start,
        body_start=part.body_start,
        end=part.end,
        content_type=part.content_type,
        charset=part.charset,
        transfer_encoding=part.transfer_encoding,
        disposition=part_disposition(part),
        filename=part_filename(part),
        content_id=part_content_id(part.headers),
        is_multipart=part.is_multipart and bool(part.children),
        is_message=encapsulated,
        message_header_end=part.message.body_start
        if encapsulated and part.message is not None
        else None,
    )


def _locations(root: Part) -> list[PartLocation]:
    """Every part depth-first with its RFC 9051 §6.4.5 section number."""
    out = [_location(root, section="", whole_message=True)]
    _add_locations(root, out, message_like=True)
    return out


def _add_locations(entity: Part, out: list[PartLocation], *, message_like: bool) -> None:
    """RFC 9051 §6.4.5: parts of a multipart are numbered under it; the body of a
    non-multipart message (top level or encapsulated) is part 1 under the message's number.
    """
    if entity.is_multipart and entity.children:
        for child in entity.children:
            out.append(_location(child))
            _add_locations(child, out, message_like=False)
    elif message_like:
        body_section = f"{entity.section}.1" if entity.section else "1"
        out.append(_location(entity, section=body_section))
        if entity.message is not None:
            _add_locations(entity.message, out, message_like=True)
    elif entity.message is not None:
        _add_locations(entity.message, out, message_like=True)


PREVIEW_SOURCE = 256 * 1024
"""Encoded octets of a part read to build a preview."""
PREVIEW_ATTEMPTS = 20
"""Body parts tried, in order, before giving up on a preview (all may be empty)."""


def _preview(
    raw: bytes,
    text_body: tuple[str, ...],
    html_body: tuple[str, ...],
    leaves: dict[str, dict[str, Any]],
    by_section: dict[str, PartLocation],
    texts: dict[tuple[int, int, str], str] | None = None,
) -> str:
    """RFC 8621 §4.1.4 preview: the first text part of textBody (HTML converted), else of
    htmlBody. ``texts`` holds parts already decoded for the search text (see there)."""
    for part_id in (*text_body[:PREVIEW_ATTEMPTS], *html_body[:PREVIEW_ATTEMPTS]):
        node = leaves[part_id]
        media_type = node["type"]
        if media_type not in ("text/plain", "text/html"):
            continue
        location = by_section[node["section"]]
        end = min(location.end, location.body_start + PREVIEW_SOURCE)
        text = None if texts is None else texts.get((location.body_start, end, media_type))
        if text is None:
            text = decode_body(
                raw, location.body_start, end, location.transfer_encoding, location.charset
            )
            if media_type == "text/html":
                text = html_to_text(text)
        preview = make_preview(text)
        if preview:
            return preview
    return ""


def _search_text(
    raw: bytes, root: Part, texts: dict[tuple[int, int, str], str] | None = None
) -> str:
    """Decoded text of every text/* part (HTML reduced to text), the subjects of attached
    messages and attachment file names, capped at :data:`MAX_SEARCH_TEXT` characters.

    ``texts`` receives the text of each part decoded, before whitespace is collapsed,
    under (body start, end of the decoded range, content type), for the preview."""
    pieces: list[str] = []
    budget = MAX_SEARCH_TEXT
    pending = [root]
    while pending and budget > 0:
        part = pending.pop()
        if part.is_multipart and part.children:
            pending.extend(reversed(part.children))
            continue
        filename = part_filename(part)
        if filename:
            pieces.append(filename)
            budget -= len(filename)
        if part.message is not None:
            inner_subject = decode_unstructured(part.message.headers.get("subject")).strip()
            if inner_subject:
                pieces.append(inner_subject)
                budget -= len(inner_subject)
            pending.append(part.message)
            continue
        if part.content_type.startswith("text/"):
            end = min(part.end, part.body_start + MAX_TEXT_PART)
            text = decode_body(raw, part.body_start, end, part.transfer_encoding, part.charset)
            if part.content_type == "text/html":
                text = html_to_text(text)
            if texts is not None:
                texts[part.body_start, end, part.content_type] = text
            text = collapse_whitespace(text, budget)
            if text:
                pieces.append(text)
                budget -= len(text)
    return "\n".join(pieces)[:MAX_SEARCH_TEXT]


def _list_id(headers: Headers) -> str | None:
    """RFC 2919 §3: the list-id between angle brackets (or the whole value if none)."""
    value = headers.get("list-id")
    if value is None:
        return None
    text = decode_header_bytes(value)
    start = text.rfind("<")
    end = text.find(">", start + 1)
    if start >= 0 and end > start:
        text = text[start + 1 : end]
    return text.strip() or None


def _auto_submitted(headers: Headers) -> str | None:
    """RFC 3834 §5.1 Auto-Submitted (``no`` counts as absent), else a bulk Precedence."""
    value = headers.get("auto-submitted")
    if value is not None:
        keyword = decode_header_bytes(value).split(";", 1)[0].strip().lower()
        if keyword and keyword != "no":
            return keyword
    precedence = headers.get("precedence")
    if precedence is not None:
        keyword = decode_header_bytes(precedence).strip().lower()
        if keyword in ("bulk", "list", "junk"):
            return keyword
    return None
