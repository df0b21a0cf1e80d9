"""IMAP string syntax for stored FETCH data: RFC 9051 §4.3 (strings) and §9 (formal syntax).

``string = quoted / literal``; a quoted string carries 7-bit text without CR, LF or NUL
with ``\\`` and ``"`` escaped; anything else is sent as a synchronising literal
``{n}\\r\\n<n octets>``. NUL cannot appear in an IMAP literal either (RFC 9051 §4.3 allows
it only in literal8), so NUL octets are dropped before rendering.

Dovecot sends any string containing ``"`` or ``\\`` (and any folded header) as a literal;
both forms are equivalent for a conforming client, and the escaped quoted form keeps
FETCH responses on one line.
"""

from __future__ import annotations

import re

NIL = b"NIL"

MAX_QUOTED = 4096
"""Longer strings are sent as literals, which clients buffer better than huge quoted strings."""


_PLAIN_QUOTED = re.compile(rb'[^\x00\r\n"\\\x80-\xff]*')
"""A string sent quoted as it is: 7-bit, without NUL, CR, LF, quote or backslash."""


def render_string(value: bytes) -> bytes:
    """RFC 9051 §4.3: ``quoted`` when possible, else a literal."""
    if len(value) <= MAX_QUOTED and _PLAIN_QUOTED.fullmatch(value) is not None:
        return b'"' + value + b'"'
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    if len(value) > MAX_QUOTED or not value.isascii() or b"\r" in value or b"\n" in value:
        return b"{%d}\r\n%s" % (len(value), value)
    if b"\\" in value or b'"' in value:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def render_nstring(value: bytes | None) -> bytes:
    """RFC 9051 §9 ``nstring = string / nil``."""
    return NIL if value is None else render_string(value)


def render_list(items: list[bytes]) -> bytes:
    """A parenthesised list of already rendered items separated by single spaces."""
    return b"(" + b" ".join(items) + b")"
