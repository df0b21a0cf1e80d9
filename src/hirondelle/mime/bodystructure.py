"""IMAP BODY and BODYSTRUCTURE: RFC 9051 §7.5.2 and the ``body`` rule of §9 (RFC 3501 §7.4.2).

Choices, all matching Dovecot so that clients moving between servers see the same data:

- type, subtype, parameter names and values, Content-Transfer-Encoding are sent as written
  (case kept, quotes removed); defaults are lowercase (``"text" "plain" ("charset"
  "us-ascii")``, ``"7bit"``);
- RFC 2231 continuations are merged into one parameter; a charset/language-tagged value is
  sent still encoded under the name with a trailing ``*`` (``"filename*" "utf-8''%E2..."``);
- ``size`` is the number of octets of the body as stored, ``lines`` (text/* and
  message/rfc822) the number of LF octets in it;
- Content-Language is always sent in the list form (``("fr")``);
- extension data is always complete: ``md5 disposition language location`` for a
  single part (md5 is always NIL: Content-MD5 is obsolete and never checked), ``params
  disposition language location`` for a multipart.

BODY is the same tree without any extension data (RFC 9051 §7.5.2 "BODY").
"""

from __future__ import annotations

from hirondelle.mime.envelope import render_envelope
from hirondelle.mime.headers import ContentField, Parameter
from hirondelle.mime.imap_strings import NIL, render_list, render_nstring, render_string
from hirondelle.mime.structure import Part

_MESSAGE_TYPES = ("message/rfc822", "message/global")
_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


def render_body_structure(part: Part, raw: bytes, *, extensible: bool) -> bytes:
    """RFC 9051 §9 ``body``: BODYSTRUCTURE when ``extensible``, else BODY."""
    structure, body = render_body_structures(part, raw)
    return structure if extensible else body


def render_body_structures(part: Part, raw: bytes) -> tuple[bytes, bytes]:
    """RFC 9051 §9 ``body`` rendered in one walk: (BODYSTRUCTURE, BODY)."""
    if part.is_multipart and part.children:
        return _render_multipart(part, raw)
    return _render_single(part, raw)


def _render_multipart(part: Part, raw: bytes) -> tuple[bytes, bytes]:
    """RFC 9051 §9 ``body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]``."""
    structure = bytearray(b"(")
    body = bytearray(b"(")
    for child in part.children:
        child_structure, child_body = render_body_structures(child, raw)
        structure += child_structure
        body += child_body
    subtype = b" " + render_string(part.media_subtype)
    structure += subtype
    body += subtype + b")"
    structure += b" " + _render_parameters(part.parameters)
    structure += b" " + _render_extension_tail(part) + b")"
    return bytes(structure), bytes(body)


def _render_single(part: Part, raw: bytes) -> tuple[bytes, bytes]:
    """RFC 9051 §9 ``body-type-1part``: basic, msg or text, then ``body-ext-1part``."""
    headers = part.headers
    fields = [
        render_string(part.media_type),
        render_string(part.media_subtype),
        _render_parameters(part.parameters),
        render_nstring(headers.get("content-id")),
        render_nstring(headers.get("content-description")),
        render_string(part.transfer_encoding_written),
        b"%d" % (part.end - part.body_start),
    ]
    structure_fields = fields
    body_fields = fields
    if part.message is not None:
        inner = part.message
        envelope = render_envelope(inner.headers)
        inner_structure, inner_body = render_body_structures(inner, raw)
        lines = b"%d" % count_lines(raw, part.body_start, part.end)
        structure_fields = [*fields, envelope, inner_structure, lines]
        body_fields = [*fields, envelope, inner_body, lines]
    elif part.content_type in _MESSAGE_TYPES:
        # RFC 9051 §9 requires body-type-msg for MESSAGE/RFC822 and MESSAGE/GLOBAL even when
        # the encapsulated message cannot be parsed (an encoded one, RFC 2046 §5.2.1): an
        # empty envelope and an empty text body, as Dovecot sends them.
        lines = b"%d" % count_lines(raw, part.body_start, part.end)
        structure_fields = [*fields, _EMPTY_ENVELOPE, _EMPTY_BODYSTRUCTURE, lines]
        body_fields = [*fields, _EMPTY_ENVELOPE, _EMPTY_BODY, lines]
    elif part.content_type.startswith("text/"):
        structure_fields = body_fields = [
            *fields,
            b"%d" % count_lines(raw, part.body_start, part.end),
        ]
    body = render_list(body_fields)
    # body-fld-md5 is NIL, then disposition, language, location
    structure = render_list([*structure_fields, NIL, _render_extension_tail(part)])
    return structure, body


def _render_extension_tail(part: Part) -> bytes:
    """``body-fld-dsp SP body-fld-lang SP body-fld-loc`` (RFC 9051 §9, RFC 2183, RFC 3066)."""
    return b" ".join(
        [
            _render_disposition(part.disposition),
            _render_language(part.headers.get("content-language")),
            render_nstring(part.headers.get("content-location")),
        ]
    )


def _render_parameters(parameters: tuple[Parameter, ...]) -> bytes:
    """RFC 9051 §9 ``body-fld-param``: NIL or ``("name" "value" ...)``."""
    if not parameters:
        return NIL
    items: list[bytes] = []
    for parameter in parameters:
        items.append(render_string(parameter.name.encode("utf-8", "replace")))
        items.append(render_string(parameter.value))
    return render_list(items)


def _render_disposition(disposition: ContentField | None) -> bytes:
    """RFC 9051 §9 ``body-fld-dsp = "(" string SP body-fld-param ")" / nil`` (RFC 2183)."""
    if disposition is None:
        return NIL
    return render_list(
        [render_string(disposition.value), _render_parameters(disposition.parameters)]
    )


def _render_language(value: bytes | None) -> bytes:
    """RFC 9051 §9 ``body-fld-lang`` (RFC 3282 Content-Language): always the list form,
    even for one tag, as Dovecot sends it."""
    if value is None:
        return NIL
    tags = [tag.strip() for tag in value.replace(b";", b",").split(b",") if tag.strip()]
    if not tags:
        return NIL
    return render_list([render_string(tag) for tag in tags])


def count_lines(raw: bytes, start: int, end: int) -> int:
    """``body-fld-lines``: LF octets in the body, as Dovecot counts them."""
    return raw.count(b"\n", start, end)
