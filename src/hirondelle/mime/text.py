"""Text of a message: body decoding, HTML reduced to text, preview and search text.

Implements RFC 2045 §6.7 (quoted-printable) and §6.8 (base64) decoding, tolerant of bad
padding and stray characters; RFC 2046 §4.1.2 charsets (via :func:`decode_text`);
RFC 8621 §4.1.4 ``preview`` (at most 256 characters, whitespace collapsed).

HTML is reduced to text with a linear scan, not a DOM: ``<head>``, ``<script>``, ``<style>``
and comments are dropped, block-level tags become line breaks, other tags vanish, and
character references are resolved with :func:`html.unescape`. It is meant for previews
and the search index, not for display.
"""

from __future__ import annotations

import binascii
import html
import re

from hirondelle.mime.headers import decode_text

MAX_TEXT_PART = 4 * 1024 * 1024
"""At most this many encoded octets of one part are decoded for text extraction."""

PREVIEW_LENGTH = 256
MAX_HTML = 1024 * 1024
"""Characters of HTML (after dropping head, script and style) reduced to text."""

_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """RFC 2045 §6: undo the Content-Transfer-Encoding; unknown encodings pass through."""
    if encoding == "base64":
        return _decode_base64(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _decode_base64(data: bytes) -> bytes:
    """RFC 2045 §6.8, leniently: ignore non-alphabet octets, stop at padding, fix length."""
    cleaned = _BASE64_JUNK.sub(b"", data.split(b"=", 1)[0])
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4 if len(cleaned) % 4 == 1 else None]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except binascii.Error:
        return b""


def estimate_decoded_size(raw: bytes, start: int, end: int, encoding: str) -> int:
    """RFC 8621 §4.1.4 ``size``: octets after transfer decoding, without decoding big bodies."""
    length = end - start
    if encoding == "base64":
        whitespace = raw.count(b"\n", start, end) + raw.count(b"\r", start, end)
        tail = raw[max(start, end - 8) : end].rstrip(b"\r\n \t")
        padding = len(tail) - len(tail.rstrip(b"="))
        return max(0, (length - whitespace) * 3 // 4 - min(padding, 2))
    if encoding == "quoted-printable":
        if length <= MAX_TEXT_PART:
            return len(binascii.a2b_qp(raw[start:end]))
        return length - 2 * raw.count(b"=", start, end)
    return length


def decode_body(raw: bytes, start: int, end: int, encoding: str, charset: str | None) -> str:
    """The text of a text/* body: transfer-decoded, then decoded from its charset.

    Only the first :data:`MAX_TEXT_PART` encoded octets are considered.
    """
    end = min(end, start + MAX_TEXT_PART)
    return decode_text(decode_transfer(raw[start:end], encoding), charset)


_DROPPED_ELEMENTS = ("head", "script", "style", "title", "template", "noscript")
# ASCII-only case folding (re.ASCII): "<ſcript" is not "<script" to a browser either.
_DROPPED_OPENING = re.compile(
    r"<(" + "|".join(_DROPPED_ELEMENTS) + r")(?![^\W_])", re.IGNORECASE | re.ASCII
)
_DROPPED_CLOSING = {
    name: re.compile("</" + name, re.IGNORECASE | re.ASCII) for name in _DROPPED_ELEMENTS
}
_BLOCK_ELEMENTS = frozenset(
    {
        "br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "blockquote", "pre", "section", "article", "header", "footer", "dt", "dd",
    }
)  # fmt: skip
# One pass over all tags. [^<>]* rather than [^>]*: a "<" that is never closed must not
# make the scan quadratic.
_TAG = re.compile(r"<\s*/?\s*([A-Za-z][A-Za-z0-9]*)?[^<>]*>")
# Runs of blanks become one space: only the runs that are not already one space are
# matched, so that the ordinary single spaces between words cost no replacement.
_INLINE_SPACE = re.compile(r"[\t\r\f\v\u00a0][ \t\r\f\v\u00a0]*| [ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(markup: str) -> str:
    """Reduce HTML to plain text for previews and search (see the module docstring)."""
    markup = _drop_comments(markup)
    markup = _drop_elements(markup)
    markup = _TAG.sub(_replace_tag, markup[:MAX_HTML])
    text = html.unescape(markup)
    text = _INLINE_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _replace_tag(match: re.Match[str]) -> str:
    name = (match.group(1) or "").lower()
    if name in _BLOCK_ELEMENTS:
        return "\n"
    return " " if name in ("td", "th") else ""


def _drop_comments(markup: str) -> str:
    out: list[str] = []
    position = 0
    while True:
        start = markup.find("<!--", position)
        if start < 0:
            break
        out.append(markup[position:start])
        end = markup.find("-->", start + 4)
        position = len(markup) if end < 0 else end + 3
    out.append(markup[position:])
    return "".join(out)


def _drop_elements(markup: str) -> str:
    """Remove every ``<name ...>...</name>`` of :data:`_DROPPED_ELEMENTS`, in one pass in
    document order (an element inside a dropped one goes with it). Regex searches, not a
    lazy ``.*?`` match: linear in the markup, and no lowered copy of it to make."""
    out: list[str] = []
    position = 0
    while (opening := _DROPPED_OPENING.search(markup, position)) is not None:
        out.append(markup[position : opening.start()])
        closing = _DROPPED_CLOSING[opening.group(1).lower()].search(markup, opening.end())
        if closing is None:  # unclosed: like a browser, the element runs to the end
            position = len(markup)
            break
        tag_end = markup.find(">", closing.end())
        position = len(markup) if tag_end < 0 else tag_end + 1
    out.append(markup[position:])
    return "".join(out)


def collapse_whitespace(text: str, limit: int | None = None) -> str:
    """Runs of whitespace become one space; the ends are trimmed. With ``limit``, the first
    ``limit`` characters of that, collapsing only as much of ``text`` as they need.

    ``str.split()`` splits on exactly what ``\\s`` matches in a str pattern (both are
    ``str.isspace``) and is several times faster than ``re.sub``."""
    if limit is None:
        return _collapse(text)
    # Collapsing never lengthens, so the collapsed prefix of a prefix is a prefix of the
    # collapsed whole: grow the prefix until it yields ``limit`` characters.
    taken = 2 * limit + 64
    while True:
        collapsed = _collapse(text[:taken])
        if len(collapsed) > limit or taken >= len(text):
            return collapsed[:limit].rstrip() if len(collapsed) > limit else collapsed
        taken *= 4


UNCOMMON_WHITESPACE = (
    "\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Every character ``str.isspace`` accepts but space, CR and LF."""


def _collapse(text: str) -> str:
    """``" ".join(text.split())``. Mail text has only spaces, CRs and LFs between its
    words: those are turned into spaces and runs of spaces halved until none is left, by
    ``str.replace`` (memchr speed, no object a word), twice as fast as splitting. A
    character searched for that is wider than any in ``text`` is not searched at all."""
    for character in UNCOMMON_WHITESPACE:
        if character in text:
            return " ".join(text.split())
    if "\r" in text:
        text = text.replace("\r\n", " ")
        if "\r" in text:
            text = text.replace("\r", " ")
    if "\n" in text:
        text = text.replace("\n", " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip(" ")


def make_preview(text: str) -> str:
    """RFC 8621 §4.1.4 ``preview``: up to 256 characters, whitespace collapsed."""
    return collapse_whitespace(text, PREVIEW_LENGTH)
