"""The MIME part tree of a raw message, located by byte offsets.

Implements RFC 2045 §5-§6 (Content-Type, Content-Transfer-Encoding defaults), RFC 2046
§5.1.1 (boundary delimiters: the CRLF before ``--boundary`` belongs to the delimiter,
transport padding after it, preamble and epilogue ignored), §5.1.5 (multipart/digest
defaults to message/rfc822) and §5.2.1 (message/rfc822 encapsulation, also message/global
per RFC 6532 §3.7), and RFC 9051 §6.4.5 section numbering.

Deliberate tolerance (Dovecot behaves the same way):

- bare LF is accepted wherever CRLF is expected;
- a text/* part without a charset parameter gets ``charset=us-ascii`` (RFC 2045 §5.2 /
  RFC 2046 §4.1.2 default; Dovecot shows it the same way);
- a multipart without a boundary parameter, or whose boundary never occurs, is a
  text/plain leaf; a multipart whose first delimiter is already the close delimiter too
  (Dovecot instead shows such a multipart with one empty text/plain child, which hides the
  body from clients; showing the text is more useful);
- a missing close delimiter ends the last part at the end of its enclosing entity, which is
  bounded by the next delimiter of any enclosing multipart;
- a delimiter line must be followed by ``--``, whitespace or a line end, so a boundary that
  is a prefix of a nested one (``abc`` / ``abcd``) is not confused with it;
- beyond :data:`MAX_DEPTH` nested entities or :data:`MAX_PARTS` parts the rest of an entity
  is one opaque application/octet-stream leaf;
- an encoded (base64/quoted-printable) message/rfc822 part is a leaf, not parsed.

Boundaries are found with ``bytes.find`` and bodies are never copied or decoded here, so a
50 MB attachment costs one memchr-speed scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hirondelle.mime.headers import (
    ContentField,
    Headers,
    Parameter,
    find_header_end,
    parse_content_field,
    parse_header_block,
)

MAX_DEPTH = 50
MAX_PARTS = 10_000

_TEXT_PLAIN_US_ASCII = (Parameter("charset", b"us-ascii"),)
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})


@dataclass(slots=True)
class Part:
    """One MIME entity: its header, its body range and what its header says about it."""

    section: str
    header_start: int
    header_end: int  # end of the header lines, before the blank line
    body_start: int
    end: int
    headers: Headers
    media_type: bytes  # as written, e.g. b"Text" (or the RFC 2045 default)
    media_subtype: bytes
    parameters: tuple[Parameter, ...]
    content_type: str  # lowercased "type/subtype"
    transfer_encoding: str  # lowercased, default "7bit"
    transfer_encoding_written: bytes  # as written (for BODYSTRUCTURE), default b"7bit"
    disposition: ContentField | None
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the encapsulated message of a message/rfc822 part

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    @property
    def is_message(self) -> bool:
        return self.message is not None

    @property
    def charset(self) -> str | None:
        for parameter in self.parameters:
            if parameter.name.lower() == "charset":
                return parameter.value.decode("latin-1").strip() or None
        return None


class _Budget:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def parse_structure(raw: bytes) -> Part:
    """Parse the whole message: the root Part has section "" and spans ``raw``."""
    return _parse_entity(
        raw,
        0,
        len(raw),
        section="",
        digest_default=False,
        depth=0,
        budget=_Budget(),
        opaque=False,
        message_like=True,
    )


def _parse_entity(
    raw: bytes,
    start: int,
    limit: int,
    *,
    section: str,
    digest_default: bool,
    depth: int,
    budget: _Budget,
    opaque: bool,
    message_like: bool,
) -> Part:
    """RFC 2045 §3 entity: header block, blank line, body; recurse into composite bodies."""
    budget.parts += 1
    header_end, body_start = find_header_end(raw, start, limit)
    headers = Headers(parse_header_block(raw[start:header_end]))
    part = _describe(headers, section, start, header_end, body_start, limit, digest_default)
    if opaque:  # the rest of a multipart past MAX_PARTS, whatever its first header says
        _make_opaque(part)
        return part
    if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
        if part.is_multipart or part.content_type in ("message/rfc822", "message/global"):
            _make_opaque(part)
        return part
    if part.is_multipart:
        _parse_multipart(raw, part, depth, budget)
    elif part.content_type in ("message/rfc822", "message/global") and (
        part.transfer_encoding in _IDENTITY_ENCODINGS
    ):
        # RFC 9051 §6.4.5: the parts of an encapsulated message are numbered under the
        # message part; the body of a non-multipart message (top level or encapsulated)
        # is part 1 under the message, so a message/rfc822 body there nests one deeper.
        part.message = _parse_entity(
            raw,
            body_start,
            limit,
            section=_child_section(section, 1) if message_like else section,
            digest_default=False,
            depth=depth + 1,
            budget=budget,
            opaque=False,
            message_like=True,
        )
    return part


def _describe(
    headers: Headers,
    section: str,
    start: int,
    header_end: int,
    body_start: int,
    end: int,
    digest_default: bool,
) -> Part:
    """RFC 2045 §5.2 and RFC 2046 §5.1.5 defaults; an invalid Content-Type is the default."""
    media_type, media_subtype = (b"message", b"rfc822") if digest_default else (b"text", b"plain")
    parameters: tuple[Parameter, ...] = () if digest_default else _TEXT_PLAIN_US_ASCII
    raw_type = headers.get("content-type")
    if raw_type is not None:
        parsed = parse_content_field(raw_type)
        kind, slash, sub = parsed.value.partition(b"/")
        kind, sub = kind.strip(), sub.strip()
        if slash and kind and sub and _is_token(kind) and _is_token(sub):
            media_type, media_subtype = kind, sub
            parameters = parsed.parameters
            if kind.lower() == b"text" and not any(
                parameter.name.lower() == "charset" for parameter in parameters
            ):
                parameters = (*parameters, *_TEXT_PLAIN_US_ASCII)
    raw_encoding = headers.get("content-transfer-encoding")
    written_encoding = b"7bit"
    if raw_encoding:
        written_encoding = raw_encoding.split(b"(", 1)[0].strip() or b"7bit"
    encoding = written_encoding.decode("latin-1").lower()
    raw_disposition = headers.get("content-disposition")
    disposition = parse_content_field(raw_disposition) if raw_disposition else None
    if disposition is not None and not disposition.value:
        disposition = None
    return Part(
        section=section,
        header_start=start,
        header_end=header_end,
        body_start=body_start,
        end=end,
        headers=headers,
        media_type=media_type,
        media_subtype=media_subtype,
        parameters=parameters,
        content_type=(media_type + b"/" + media_subtype).decode("latin-1").lower(),
        transfer_encoding=encoding,
        transfer_encoding_written=written_encoding,
        disposition=disposition,
    )


_TOKEN = re.compile(rb'[^\x00-\x20\x7f-\xff()<>@,;:\\"/\[\]?=]*')


def _is_token(value: bytes) -> bool:
    """RFC 2045 §5.1 token: no controls, spaces or tspecials."""
    return _TOKEN.fullmatch(value) is not None


def _make_opaque(part: Part) -> None:
    part.media_type, part.media_subtype = b"application", b"octet-stream"
    part.content_type = "application/octet-stream"
    part.parameters = ()
    part.children = []
    part.message = None


def _make_text_plain(part: Part) -> None:
    """A multipart that cannot be split is shown as text, as Dovecot does."""
    part.media_type, part.media_subtype = b"text", b"plain"
    part.content_type = "text/plain"
    part.parameters = _TEXT_PLAIN_US_ASCII
    part.children = []


def _child_section(parent: str, index: int) -> str:
    """RFC 9051 §6.4.5: parts of a multipart are numbered from 1 under the parent's number."""
    return f"{parent}.{index}" if parent else str(index)


def _parse_multipart(raw: bytes, part: Part, depth: int, budget: _Budget) -> None:
    """RFC 2046 §5.1.1: split the body on ``--boundary`` delimiter lines."""
    boundary = None
    for parameter in part.parameters:
        if parameter.name.lower() == "boundary":
            boundary = parameter.value
            break
    if not boundary or len(boundary) > 200:
        _make_text_plain(part)
        return
    marker = b"--" + boundary
    limit = part.end
    first = _find_delimiter(raw, marker, part.body_start, part.body_start, limit)
    if first is None or first[2]:
        _make_text_plain(part)
        return
    digest = part.content_type == "multipart/digest"
    cursor = first[1]
    index = 0
    while True:
        index += 1
        following = _find_delimiter(raw, marker, cursor, cursor, limit)
        if following is None:
            part_end = limit
        else:
            part_end = following[0]
            if part_end > cursor and raw[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > cursor and raw[part_end - 1] == 0x0D:
                    part_end -= 1
        out_of_budget = budget.parts >= MAX_PARTS - 1
        child_end = limit if out_of_budget else part_end
        part.children.append(
            _parse_entity(
                raw,
                cursor,
                child_end,
                section=_child_section(part.section, index),
                digest_default=digest,
                depth=depth + 1,
                budget=budget,
                opaque=out_of_budget,
                message_like=False,
            )
        )
        if following is None or following[2] or out_of_budget:
            return
        cursor = following[1]


def _find_delimiter(
    raw: bytes, marker: bytes, position: int, body_start: int, limit: int
) -> tuple[int, int, bool] | None:
    """Next ``--boundary`` line at a line start in [position, limit).

    Returns (offset of the dashes, offset after the delimiter line, is the close delimiter).
    """
    size = len(marker)
    while True:
        found = raw.find(marker, position, limit)
        if found < 0:
            return None
        if found == body_start or raw[found - 1] == 0x0A:
            after = found + size
            following = raw[after : min(after + 2, limit)]
            closing = following == b"--"
            if closing or not following or following[0] in b"\r\n \t":
                line_end = raw.find(b"\n", after, limit)
                return found, (limit if line_end < 0 else line_end + 1), closing
        position = found + 1
