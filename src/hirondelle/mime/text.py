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


_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_DROPPED_ELEMENTS = ("head", "script", "style", "title", "template", "noscript")
_BLOCK_ELEMENTS = frozenset(
    {
        "br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "blockquote", "pre", "section", "article", "header", "footer", "dt", "dd",
    }
)  # fmt: skip
# One pass over all tags. [^<>]* rather than [^>]*: a "<" that is never closed must not
# make the scan quadratic.
_TAG = re.compile(r"<\s*/?\s*([A-Za-z][A-Za-z0-9]*)?[^<>]*>")
_INLINE_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_WHITESPACE = re.compile(r"\s+")


def html_to_text(markup: str) -> str:
    """Reduce HTML to plain text for previews and search (see the module docstring)."""
    markup = _drop_comments(markup)
    for element in _DROPPED_ELEMENTS:
        markup = _drop_element(markup, element)
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


def _drop_element(markup: str, name: str) -> str:
    """Remove ``<name ...>...</name>`` with str.find (linear, unlike a lazy regex)."""
    lowered = markup.translate(_ASCII_LOWER)  # same length as markup, unlike str.lower()
    opening = "<" + name
    if opening not in lowered:
        return markup
    closing = "</" + name
    out: list[str] = []
    position = 0
    while True:
        start = lowered.find(opening, position)
        if start < 0:
            break
        after = start + len(opening)
        if after < len(lowered) and lowered[after].isalnum():
            out.append(markup[position:after])
            position = after
            continue
        out.append(markup[position:start])
        end = lowered.find(closing, after)
        if end < 0:  # unclosed: like a browser, the element runs to the end
            position = len(markup)
            break
        tag_end = lowered.find(">", end)
        position = len(markup) if tag_end < 0 else tag_end + 1
    out.append(markup[position:])
    return "".join(out)


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace become one space; the ends are trimmed."""
    return _WHITESPACE.sub(" ", text).strip()


def make_preview(text: str) -> str:
    """RFC 8621 §4.1.4 ``preview``: up to 256 characters, whitespace collapsed."""
    return collapse_whitespace(text[: PREVIEW_LENGTH * 8])[:PREVIEW_LENGTH].rstrip()
