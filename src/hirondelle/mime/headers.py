"""Header blocks: finding, unfolding, decoding and the structured fields of MIME headers.

Implements:

- RFC 5322 §2.2 (header fields, folding) and §2.2.3 (unfolding), tolerant of bare LF line
  endings, 8-bit bytes (decoded as UTF-8, falling back to ISO-8859-1) and lines without a
  colon (ignored);
- RFC 2047 encoded-words (Q and B, adjacent words joined, words split inside a multi-byte
  character re-assembled, broken words left as written);
- RFC 2045 §5.1 Content-Type and RFC 2183 Content-Disposition parameter syntax, with
  RFC 2231 §3-§4 continuations and charset/language-tagged values;
- RFC 5322 §3.3 Date, tolerant of the usual garbage;
- RFC 5322 §3.6.4 msg-id lists (Message-ID, In-Reply-To, References), tolerant of garbage.
"""

from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz

MAX_HEADER_FIELDS = 10_000
"""Header fields kept per header block; the rest of an absurd block is ignored."""
MAX_HEADER_BLOCK = 1024 * 1024
"""Octets of a header block that are parsed into fields (offsets still cover all of it)."""


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field as written: name without the colon, value from after the colon."""

    name: str
    raw_value: bytes  # everything after the colon, folding CRLFs included, final CRLF excluded

    @property
    def unfolded(self) -> bytes:
        """RFC 5322 §2.2.3: the value with CR and LF removed and outer whitespace stripped."""
        return unfold(self.raw_value)


_new_object = object.__new__
_set_field_name = vars(HeaderField)["name"].__set__  # the slots' descriptors
_set_field_value = vars(HeaderField)["raw_value"].__set__


def _header_field(name: str, raw_value: bytes) -> HeaderField:
    """``HeaderField(name, raw_value)`` without the frozen dataclass's ``__init__``, which
    costs several times more than setting the two slots (a block makes dozens of fields)."""
    field = _new_object(HeaderField)
    _set_field_name(field, name)
    _set_field_value(field, raw_value)
    return field


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3 unfolding: drop the CRLF (or bare LF) of each fold, trim the ends.

    A lone CR (not part of a line ending) becomes a space.
    """
    if b"\r" in value:
        value = value.replace(b"\r\n", b"\n").replace(b"\r", b" ")
    if b"\n" in value:
        value = value.replace(b"\n", b"")
    return value.strip(b" \t")


def find_header_end(raw: bytes, start: int, limit: int) -> tuple[int, int]:
    """Locate the end of a header block beginning at ``start``.

    Returns ``(header_end, body_start)``: ``header_end`` is where the last header line's
    terminator ends (the blank line excluded) and ``body_start`` is one past the blank line.
    A block without a blank line runs to ``limit`` (a header-only message or part).
    RFC 5322 §2.1: the header is separated from the body by an empty line; CRLF and bare LF
    are both accepted.
    """
    if start >= limit:
        return limit, limit
    if raw.startswith(b"\r\n", start) and start + 2 <= limit:
        return start, start + 2
    if raw[start] == 0x0A:  # b"\n"
        return start, start + 1
    # Search for the CRLF form first, then for the bare-LF form only before it, so that a
    # huge body is not scanned for a pattern that occurs only in its header.
    lf_crlf = raw.find(b"\n\r\n", start, limit)
    lf_lf = raw.find(b"\n\n", start, limit if lf_crlf < 0 else lf_crlf + 2)
    if lf_lf >= 0:
        return lf_lf + 1, lf_lf + 2
    if lf_crlf >= 0:
        return lf_crlf + 1, lf_crlf + 3
    return limit, limit


# One field: a line that is not a continuation line, and the continuation lines after it;
# the groups are what precedes the first colon, the colon (or nothing), the rest of the
# first line and the continuation lines.
_FIELD_LINES = re.compile(rb"^(?![ \t])([^\n:]*)(:?)([^\n]*)((?:\n[ \t][^\n]*)*)", re.MULTILINE)
_FIELD_NAMES: dict[bytes, str | None] = {}
"""Field names as written before the colon, seen so far (bounded): decoded, or None when
not a field name; the usual ones are checked and decoded once per process."""


def parse_header_block(block: bytes) -> tuple[HeaderField, ...]:
    """RFC 5322 §2.2: split a header block into fields; continuation lines are joined.

    A line without a colon (garbage or empty) ends the field before it and is ignored with
    the continuation lines after it, as Dovecot does; so is a line whose name has a space.
    """
    fields: list[HeaderField] = []
    names = _FIELD_NAMES
    for match in _FIELD_LINES.finditer(block[:MAX_HEADER_BLOCK]):
        written, colon, rest, continuation = match.groups()
        if not colon or not written:
            continue
        if written in names:
            name = names[written]
        else:
            field_name = written.strip(b" \t")
            name = (
                decode_header_bytes(field_name) if field_name and b" " not in field_name else None
            )
            if len(names) < 1024 and len(written) <= 64:  # no giant garbage kept
                names[written] = name
        if name is None:
            continue
        value = rest + continuation if continuation else rest
        fields.append(_header_field(name, value[:-1] if value.endswith(b"\r") else value))
        if len(fields) >= MAX_HEADER_FIELDS:
            break
    return tuple(fields)


class Headers:
    """Case-insensitive access to the fields of one header block.

    When a field occurs more than once the last occurrence wins, as for JMAP
    ``header:Name`` (RFC 8621 §4.1.3) and in Dovecot's ENVELOPE and BODYSTRUCTURE.
    """

    __slots__ = ("_last", "_values", "fields")

    def __init__(self, fields: tuple[HeaderField, ...]) -> None:
        self.fields = fields
        self._last: dict[str, HeaderField] = {field.name.lower(): field for field in fields}
        self._values: dict[str, bytes | None] = {}  # get's answers so far

    def get(self, name: str) -> bytes | None:
        """The unfolded value of the last ``name`` field, or None when absent."""
        values = self._values
        if name in values:
            return values[name]
        field = self._last.get(name.lower())
        value = values[name] = None if field is None else field.unfolded
        return value

    def get_all(self, name: str) -> list[bytes]:
        """The unfolded values of every ``name`` field, in order."""
        lowered = name.lower()
        return [field.unfolded for field in self.fields if field.name.lower() == lowered]


# --- text decoding -----------------------------------------------------------------------

_CHARSET_ALIASES = {
    # WHATWG-style supersets: mail labelled with the narrow charset is usually written in
    # the wider one, and decoding with the superset never loses a character.
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "utf8": "utf-8",
}
_UNSAFE_CODECS = frozenset(
    {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "palmos"}
)


_CODECS: dict[str, str | None] = {}
"""lookup_charset's answers so far (bounded): a message names the same few charsets."""


def lookup_charset(charset: str | None) -> str | None:
    """Map a MIME charset label to a Python text codec name, or None when unknown/unsafe."""
    if not charset:
        return None
    try:
        return _CODECS[charset]
    except KeyError:
        pass
    codec = _lookup_charset(charset)
    if len(_CODECS) < 256 and len(charset) <= 64:
        _CODECS[charset] = codec
    return codec


def _lookup_charset(charset: str) -> str | None:
    label = charset.strip().strip("\"'").lower()
    if not label or len(label) > 40:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:
        return None
    return info.name


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode body or word bytes in ``charset``; unknown charsets try UTF-8 then Windows-1252.

    Never raises: undecodable bytes become U+FFFD; NUL characters are dropped (PostgreSQL
    text cannot hold them, and no mail text needs them).
    """
    text = _decode_text(data, charset)
    return text.replace("\x00", "") if "\x00" in text else text


def _decode_text(data: bytes, charset: str | None) -> str:
    codec = lookup_charset(charset)
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec, "replace")
        except Exception:  # a codec may still raise on pathological input
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if codec == "utf-8" and charset and charset.strip().lower() in ("utf-8", "utf8"):
            return data.decode("utf-8", "replace")
        return data.decode("cp1252", "replace")


def decode_header_bytes(data: bytes) -> str:
    """Raw header bytes to text: UTF-8 (RFC 6532), else ISO-8859-1, which never fails.

    NUL octets are dropped.
    """
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_ENCODED_WORD = re.compile(rb"=\?([^?\s]{1,60})\?([QqBb])\?([^?]*)\?=")
_SPACES = re.compile(rb"[ \t\r\n]+")
_BASE64_WORD = re.compile(rb"[A-Za-z0-9+/]*")


def decode_words(value: bytes) -> str:
    """RFC 2047 §6: decode encoded-words in an unstructured header value.

    Whitespace between two adjacent encoded-words is dropped (§6.2); adjacent words in the
    same charset are joined before decoding so that a character split across two words
    (§5 forbids it, mailers do it) survives. A malformed word is kept as written.
    """
    if b"=?" not in value:
        return decode_header_bytes(value)
    whole = _ENCODED_WORD.fullmatch(value)
    if whole is not None:  # one encoded-word and nothing else: a display name, a subject
        payload = _decode_word_payload(whole.group(2), whole.group(3))
        if payload is None:
            return decode_header_bytes(value)
        return decode_text(payload, whole.group(1).decode("ascii", "replace").split("*", 1)[0])
    out: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_text(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and (pending_charset is None or between.strip(b" \t\r\n")):
            flush()
            out.append(decode_header_bytes(between))
        charset = match.group(1).decode("ascii", "replace").split("*", 1)[0]
        payload = _decode_word_payload(match.group(2), match.group(3))
        if payload is None:
            flush()
            out.append(decode_header_bytes(match.group(0)))
        else:
            if pending_charset is not None and pending_charset.lower() != charset.lower():
                flush()
            pending_charset = charset
            pending += payload
        position = match.end()
    flush()
    out.append(decode_header_bytes(value[position:]))
    return "".join(out)


def _decode_word_payload(encoding: bytes, text: bytes) -> bytes | None:
    if encoding in (b"Q", b"q"):
        return binascii.a2b_qp(text, header=True)
    compact = _SPACES.sub(b"", text).rstrip(b"=")
    if not _BASE64_WORD.fullmatch(compact) or len(compact) % 4 == 1:
        return None
    compact += b"=" * (-len(compact) % 4)
    try:
        return binascii.a2b_base64(compact)
    except binascii.Error:
        return None


def decode_unstructured(value: bytes | None) -> str:
    """An unstructured header (Subject, Comments) as text: unfolded, RFC 2047 decoded."""
    if value is None:
        return ""
    return decode_words(value).replace("\t", " ")


# --- Content-Type / Content-Disposition --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter as IMAP shows it (continuations merged, RFC 2231 value kept encoded)."""

    name: str  # as written, with a trailing "*" when the value is RFC 2231 extended
    value: bytes  # as written (unquoted); for extended values "charset'lang'%XX..."


@dataclass(frozen=True, slots=True)
class ContentField:
    """A parsed Content-Type or Content-Disposition header (RFC 2045 §5.1, RFC 2183 §2)."""

    value: bytes  # "type/subtype" or the disposition type, as written
    parameters: tuple[Parameter, ...]

    def get(self, name: str) -> bytes | None:
        """The raw value of a simple (non-2231) parameter, first occurrence."""
        lowered = name.lower()
        for parameter in self.parameters:
            if parameter.name.lower() == lowered:
                return parameter.value
        return None

    def decoded(self, name: str) -> str | None:
        """A parameter's text: RFC 2231 extended form preferred, then RFC 2047 in quotes."""
        lowered = name.lower()
        plain: bytes | None = None
        for parameter in self.parameters:
            pname = parameter.name.lower()
            if pname == lowered + "*":
                return decode_rfc2231(parameter.value)
            if pname == lowered and plain is None:
                plain = parameter.value
        return None if plain is None else decode_words(plain)


MAX_CONTENT_FIELD = 65_536
"""Longer Content-Type/Disposition values are truncated before parameter parsing."""


def parse_content_field(value: bytes) -> ContentField:
    """RFC 2045 §5.1 / RFC 2183 §2: ``value *(";" parameter)``; RFC 2231 §3-§4 continuations.

    Tolerant: stray semicolons, missing quotes, unterminated quoted strings, parameters
    without a value (dropped), and duplicate parameters (first kept) are all accepted. An
    unquoted value runs to the next semicolon, so ``name=My File.pdf`` from a broken mailer
    keeps its spaces (Dovecot stops at the first space or tspecial).
    """
    items = _split_parameters(value[:MAX_CONTENT_FIELD])
    if not items:
        return ContentField(b"", ())
    head = _strip_comments(items[0]).strip()
    raw_params: list[tuple[str, bytes, bool]] = []  # (name, value, was_quoted)
    for item in items[1:]:
        eq = item.find(b"=")
        if eq <= 0:
            continue
        name = item[:eq].strip().decode("ascii", "replace")
        if not name or any(c in name for c in ' \t"'):
            continue
        raw = item[eq + 1 :].strip()
        quoted = raw.startswith(b'"')
        raw_params.append((name, _unquote(raw) if quoted else _strip_comments(raw).strip(), quoted))
    return ContentField(head, _merge_continuations(raw_params))


_QUOTED_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)
_SEMICOLON_OR_QUOTE = re.compile(rb'[;"]')


def _split_parameters(value: bytes) -> list[bytes]:
    """Split on semicolons outside quoted strings; a quote opens a quoted string only where
    a value starts (after "=" and blanks), so a stray quote cannot swallow the parameters
    after it."""
    if b'"' in value:
        items: list[bytes] = []
        start = 0  # of the current item
        position = 0
        length = len(value)
        while (found := _SEMICOLON_OR_QUOTE.search(value, position)) is not None:
            at = found.start()
            if value[at] == 0x3B:  # ;
                items.append(value[start:at])
                start = position = at + 1
            elif value[start:at].rstrip(b" \t\r\n").endswith(b"="):  # a quoted value
                closing = _QUOTED_REST.match(value, at + 1)
                position = length if closing is None else closing.end()
            else:
                position = at + 1
        items.append(value[start:])
    else:
        items = value.split(b";")
    return [items[0], *(item for item in items[1:] if item.strip())]


def _unquote(raw: bytes) -> bytes:
    body = raw[1:]
    end = _closing_quote(body)
    inner = body[:end] if end >= 0 else body
    return re.sub(rb"\\(.)", rb"\1", inner, flags=re.DOTALL)


def _closing_quote(body: bytes) -> int:
    index = 0
    while index < len(body):
        byte = body[index]
        if byte == 0x5C:
            index += 2
            continue
        if byte == 0x22:
            return index
        index += 1
    return -1


def _strip_comments(value: bytes) -> bytes:
    """Remove RFC 5322 §3.2.2 comments (nested parentheses) outside quoted strings."""
    if b"(" not in value:
        return value
    out = bytearray()
    depth = 0
    for byte in value:
        if byte == 0x28:
            depth += 1
        elif byte == 0x29 and depth:
            depth -= 1
        elif not depth:
            out.append(byte)
    return bytes(out)


_SECTION_NAME = re.compile(r"^(.*?)\*(\d{1,3})(\*?)$")


def _merge_continuations(raw_params: list[tuple[str, bytes, bool]]) -> tuple[Parameter, ...]:
    """RFC 2231 §3: join ``name*0``, ``name*1*``... into one ``name`` or ``name*`` parameter."""
    result: list[Parameter] = []
    seen: set[str] = set()
    sections: dict[str, dict[int, tuple[bytes, bool]]] = {}
    order: list[str] = []
    for name, value, _quoted in raw_params:
        match = _SECTION_NAME.match(name)
        if match:
            base = match.group(1)
            key = base.lower()
            if key not in sections:
                sections[key] = {}
                order.append(base)
            sections[key].setdefault(int(match.group(2)), (value, bool(match.group(3))))
            continue
        key = name.lower()
        if key in seen:
            continue
        seen.add(key)
        result.append(Parameter(name, value))
    for base in order:
        key = base.lower()
        if key in seen or key + "*" in seen:
            continue
        pieces = sections[key]
        indexes = sorted(pieces)
        extended = any(pieces[index][1] for index in indexes)
        if not extended:
            result.append(Parameter(base, b"".join(pieces[index][0] for index in indexes)))
            continue
        joined = bytearray()
        for position, index in enumerate(indexes):
            value, is_extended = pieces[index]
            if position == 0 and not is_extended:
                joined += b"''"
            if not is_extended:
                value = re.sub(rb"[^A-Za-z0-9!#$&+.^_`|~-]", _percent_escape, value)
            joined += value
        result.append(Parameter(base + "*", bytes(joined)))
    return tuple(result)


def _percent_escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group(0)[0]


def decode_rfc2231(value: bytes) -> str:
    """RFC 2231 §4: ``charset'language'percent-encoded`` to text."""
    parts = value.split(b"'", 2)
    if len(parts) == 3:
        charset = parts[0].decode("ascii", "replace")
        data = parts[2]
    else:
        charset = ""
        data = value
    decoded = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)
    return decode_text(decoded, charset or "utf-8")


# --- Date ---------------------------------------------------------------------------------


def parse_date(value: bytes | None) -> datetime | None:
    """RFC 5322 §3.3 date-time (and obsolete forms, §4.3) to an aware datetime, or None."""
    if not value:
        return None
    text = decode_header_bytes(value).strip()
    try:
        parsed = parsedate_tz(text)
    except Exception:
        return None
    if parsed is None:
        return None
    try:
        year, month, day, hour, minute, second = parsed[:6]
        offset = parsed[9] or 0
        if not (1 <= year <= 9999 and abs(offset) < 86_400):
            return None
        zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
    except (ValueError, OverflowError, TypeError):
        return None


# --- msg-id lists -------------------------------------------------------------------------

_MSG_ID = re.compile(rb"<([^<>]*)>")


def parse_message_ids(value: bytes | None) -> tuple[str, ...]:
    """RFC 5322 §3.6.4 msg-id lists, without angle brackets, tolerant of garbage.

    Everything between ``<`` and ``>`` counts (whitespace removed); a value without any
    angle brackets falls back to its whitespace-separated words that contain an ``@``.
    """
    if not value:
        return ()
    cleaned = _strip_comments(value) if b"<" not in value else value
    ids: list[str] = []
    for match in _MSG_ID.finditer(cleaned):
        inner = _SPACES.sub(b"", match.group(1))
        if inner:
            ids.append(decode_header_bytes(inner))
    if not ids and b"<" not in cleaned:
        ids = [decode_header_bytes(word) for word in cleaned.split() if b"@" in word]
    return tuple(dict.fromkeys(ids))
