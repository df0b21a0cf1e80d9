"""JMAP body parts: RFC 8621 §4.1.4 EmailBodyPart tree and the textBody, htmlBody and
attachments lists computed with the RFC's own ``parseStructure`` algorithm.

Part ids: a leaf gets ``"1"``, ``"2"``... in depth-first order; a multipart gets ``null``
(RFC 8621 §4.1.4: partId is null if and only if the part is multipart/*). Every part also
carries ``"section"``, its IMAP section (RFC 9051 §6.4.5), so the server can map a part
id to a :class:`~hirondelle.mime.message.PartLocation` and serve the blob as a slice.
An encapsulated message/rfc822 is a leaf here (RFC 8621 does not descend into it).
"""

from __future__ import annotations

from typing import Any

from hirondelle.mime.headers import ContentField, Headers, decode_header_bytes, decode_words
from hirondelle.mime.structure import Part
from hirondelle.mime.text import estimate_decoded_size

MAX_HEADER_VALUE = 16_384
"""Longer header values are truncated in the JMAP ``headers`` list."""


def header_value_prefix(raw: bytes, limit: int = MAX_HEADER_VALUE) -> bytes:
    """``raw`` cut to at most ``limit`` octets, never inside a UTF-8 sequence: a value cut
    in the middle of one is no longer UTF-8, and :func:`decode_header_bytes` would then
    read all of it as ISO-8859-1 (every accented letter garbled)."""
    if len(raw) <= limit:
        return raw
    cut = raw[:limit]
    end = len(cut) - 1
    continuation = 0
    while end >= 0 and continuation < 3 and 0x80 <= cut[end] <= 0xBF:
        end -= 1
        continuation += 1
    if end >= 0 and cut[end] >= 0xC0:
        needed = 2 if cut[end] < 0xE0 else 3 if cut[end] < 0xF0 else 4
        if continuation + 1 < needed:
            return cut[:end]
    return cut


def part_filename(part: Part) -> str | None:
    """RFC 8621 §4.1.4 ``name``: Content-Disposition filename, else Content-Type name;
    RFC 2231 extended values and RFC 2047 encoded-words (as Outlook/Gmail write them in
    quoted strings) are both decoded.
    """
    if part.disposition is not None:
        name = part.disposition.decoded("filename")
        if name:
            return name
    for parameter in part.parameters:  # the ContentField only made when it has a name
        if parameter.name.lower() in ("name", "name*"):
            return ContentField(b"", part.parameters).decoded("name") or None
    return None


def part_disposition(part: Part) -> str | None:
    """RFC 8621 §4.1.4 ``disposition``: the value without parameters, lowercased."""
    if part.disposition is None:
        return None
    return part.disposition.value.decode("latin-1").strip().lower() or None


def part_content_id(headers: Headers) -> str | None:
    """RFC 8621 §4.1.4 ``cid``: Content-ID without CFWS and angle brackets."""
    value = headers.get("content-id")
    if value is None:
        return None
    text = decode_header_bytes(value).strip()
    if text.startswith("<"):
        closing = text.find(">")
        text = text[1:closing] if closing > 0 else text[1:]
    return text.strip() or None


def part_languages(headers: Headers) -> list[str] | None:
    """RFC 8621 §4.1.4 ``language``: the Content-Language tags (RFC 3282)."""
    value = headers.get("content-language")
    if value is None:
        return None
    tags = [tag.strip() for tag in decode_header_bytes(value).replace(";", ",").split(",")]
    return [tag for tag in tags if tag] or None


def build_body_parts(root: Part, raw: bytes) -> dict[str, Any]:
    """RFC 8621 §4.1.4 bodyStructure of the message whose top-level entity is ``root``."""
    counter = [0]
    if root.is_multipart and root.children:
        return _build(root, raw, counter)
    # A single-part message: the body part is IMAP section "1" with the message's header.
    return _build(root, raw, counter, section="1")


def _build(
    part: Part, raw: bytes, counter: list[int], *, section: str | None = None
) -> dict[str, Any]:
    multipart = part.is_multipart and bool(part.children)
    part_id: str | None = None
    if not multipart:
        counter[0] += 1
        part_id = str(counter[0])
    location = part.headers.get("content-location")
    return {
        "partId": part_id,
        "section": part.section if section is None else section,
        "size": part.end - part.body_start
        if multipart
        else estimate_decoded_size(raw, part.body_start, part.end, part.transfer_encoding),
        "headers": [
            {
                "name": field.name,
                "value": decode_header_bytes(header_value_prefix(field.raw_value)),
            }
            for field in part.headers.fields
        ],
        "name": part_filename(part),
        "type": part.content_type,
        "charset": part.charset,
        "disposition": part_disposition(part),
        "cid": part_content_id(part.headers),
        "language": part_languages(part.headers),
        "location": decode_words(location) if location is not None else None,
        "subParts": [_build(child, raw, counter) for child in part.children] if multipart else None,
    }


def _is_inline_media_type(media_type: str) -> bool:
    return media_type.startswith(("image/", "audio/", "video/"))


def classify_body_parts(
    body_structure: dict[str, Any],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """RFC 8621 §4.1.4 ``parseStructure``: (textBody, htmlBody, attachments) part ids."""
    text_body: list[dict[str, Any]] = []
    html_body: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    _parse_structure([body_structure], "mixed", False, html_body, text_body, attachments)
    return (
        tuple(part["partId"] for part in text_body),
        tuple(part["partId"] for part in html_body),
        tuple(part["partId"] for part in attachments),
    )


def _parse_structure(
    parts: list[dict[str, Any]],
    multipart_type: str,
    in_alternative: bool,
    html_body: list[dict[str, Any]] | None,
    text_body: list[dict[str, Any]] | None,
    attachments: list[dict[str, Any]],
) -> None:
    """A line-by-line transcription of the RFC 8621 §4.1.4 reference algorithm."""
    text_length = len(text_body) if text_body is not None else -1
    html_length = len(html_body) if html_body is not None else -1
    for index, part in enumerate(parts):
        media_type: str = part["type"]
        is_multipart = part["subParts"] is not None
        is_inline = (
            part["disposition"] != "attachment"
            and (media_type in ("text/plain", "text/html") or _is_inline_media_type(media_type))
            and (
                index == 0
                or (
                    multipart_type != "related"
                    and (_is_inline_media_type(media_type) or not part["name"])
                )
            )
        )
        if is_multipart:
            sub_type = media_type.split("/", 1)[1] if "/" in media_type else ""
            _parse_structure(
                part["subParts"],
                sub_type,
                in_alternative or sub_type == "alternative",
                html_body,
                text_body,
                attachments,
            )
        elif is_inline:
            if multipart_type == "alternative":
                if media_type == "text/plain" and text_body is not None:
                    text_body.append(part)
                elif media_type == "text/html" and html_body is not None:
                    html_body.append(part)
                elif media_type not in ("text/plain", "text/html"):
                    attachments.append(part)
                continue
            if in_alternative:
                if media_type == "text/plain":
                    html_body = None
                if media_type == "text/html":
                    text_body = None
            if text_body is not None:
                text_body.append(part)
            if html_body is not None:
                html_body.append(part)
            if (text_body is None or html_body is None) and _is_inline_media_type(media_type):
                attachments.append(part)
        else:
            attachments.append(part)
    if multipart_type == "alternative" and text_body is not None and html_body is not None:
        # Found HTML part only
        if text_length == len(text_body) and html_length != len(html_body):
            text_body.extend(html_body[html_length:])
        # Found plaintext part only
        if html_length == len(html_body) and text_length != len(text_body):
            html_body.extend(text_body[text_length:])
