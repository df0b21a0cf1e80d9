"""Address lists: RFC 5322 §3.4 (mailbox, name-addr, addr-spec, group) and §4.4 (obsolete
routes and phrases), parsed from the raw header bytes with the tolerance real mail needs.

The parser keeps the display name as written (RFC 2047 encoded-words are not decoded here:
IMAP ENVELOPE carries them raw, RFC 9051 §7.5.2); :func:`decoded_addresses` gives the
decoded form used by JMAP (RFC 8621 §4.1.2.3, groups flattened).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from hirondelle.mime.headers import decode_header_bytes, decode_words

MAX_ADDRESSES = 2_000
"""Address items kept per header; a header listing more is truncated."""
MAX_ADDRESS_HEADER = 256 * 1024
"""Octets of an address header that are parsed; the rest of an absurd header is ignored."""


class ItemKind(Enum):
    MAILBOX = "mailbox"
    GROUP_START = "group-start"
    GROUP_END = "group-end"


@dataclass(frozen=True, slots=True)
class AddressItem:
    """One element of an address list as RFC 9051 §7.5.2 ENVELOPE models it."""

    kind: ItemKind
    name: bytes | None = None  # display name (or group name) as written, quotes removed
    route: bytes | None = None  # obsolete source route "@a,@b"
    local_part: bytes | None = None  # quoted-string local parts unquoted
    domain: bytes | None = None
    local_written: bytes = b""  # local part with its quotes, for "local@domain" strings


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "quoted", "comment", "literal" or "special"
    text: bytes
    space_before: bool
    written: bytes


_SPECIALS = b"<>@,;:"


_WORD = re.compile(rb'[^ \t\r\n"()\[<>@,;:.]+|\)')
_WHITESPACE = re.compile(rb"[ \t\r\n]+")


def _tokenize(value: bytes) -> Iterator[_Token]:
    """RFC 5322 §3.2: atoms, quoted strings, comments, domain literals and specials
    (a generator, so that a truncated list stops the scan)."""
    index = 0
    length = len(value)
    space = False
    while index < length:
        byte = value[index]
        if byte in b" \t\r\n":
            space = True
            match = _WHITESPACE.match(value, index)
            index = match.end() if match else index + 1
            continue
        if byte == 0x22:  # quoted string
            end, text = _scan_quoted(value, index + 1, 0x22)
            yield _Token("quoted", text, space, value[index:end])
            index = end
        elif byte == 0x28:  # comment, nested
            depth = 1
            cursor = index + 1
            while cursor < length and depth:
                current = value[cursor]
                if current == 0x5C:
                    cursor += 1
                elif current == 0x28:
                    depth += 1
                elif current == 0x29:
                    depth -= 1
                cursor += 1
            cursor = min(cursor, length)
            inner = value[index + 1 : cursor - 1 if depth == 0 else cursor]
            yield _Token("comment", inner, space, value[index:cursor])
            index = cursor
        elif byte == 0x5B:  # domain literal
            end = value.find(b"]", index)
            end = length if end < 0 else end + 1
            yield _Token("literal", value[index:end], space, value[index:end])
            index = end
        elif byte in _SPECIALS or byte == 0x2E:
            yield _Token("special", value[index : index + 1], space, b"")
            index += 1
        else:  # an atom, or a stray ")" kept as a one-octet word
            match = _WORD.match(value, index)
            cursor = match.end() if match else index + 1
            yield _Token("word", value[index:cursor], space, value[index:cursor])
            index = cursor
        space = False


def _scan_quoted(value: bytes, start: int, closing: int) -> tuple[int, bytes]:
    out = bytearray()
    index = start
    length = len(value)
    while index < length:
        byte = value[index]
        if byte == 0x5C and index + 1 < length:
            out.append(value[index + 1])
            index += 2
            continue
        if byte == closing:
            return index + 1, bytes(out)
        if byte not in b"\r\n":
            out.append(byte)
        index += 1
    return length, bytes(out)


def _token_text(token: _Token) -> bytes:
    return token.text


def _phrase(tokens: list[_Token]) -> bytes | None:
    """RFC 5322 §3.2.5 phrase: words joined by single spaces, quotes removed."""
    out = bytearray()
    for token in tokens:
        if token.kind == "comment":
            continue
        if out and token.space_before:
            out += b" "
        out += _token_text(token)
    return bytes(out) if out else None


# The common forms, parsed without the tokenizer: a comma-separated list of
# ``local@domain`` or ``[phrase] <local@domain>``, where the phrase is atoms, dots and
# blanks or one plain quoted string. No comments, routes, groups, domain literals, quoted
# local parts, backslashes or line breaks: anything else goes to the tokenizer, and for
# these forms both give the same items (tests/mime/test_mime_headers.py checks it).
_FAST_ADDRESS = rb'[^\x00-\x20\x7f"()\[\]\\<>@,;:]+'
_FAST_MAILBOX = re.compile(
    rb'(?:((?:[^\x00-\x08\x0a-\x1f\x7f"()\[\]\\<>@,;:]|"[^"\\\r\n]*")*)'
    rb"<(" + _FAST_ADDRESS + rb")@(" + _FAST_ADDRESS + rb")>"
    rb"|[ \t]*(" + _FAST_ADDRESS + rb")@(" + _FAST_ADDRESS + rb"))[ \t]*(?:,|\Z)"
)
_FAST_BLANK = re.compile(rb"[ \t]*(?:,|\Z)")
_FAST_QUOTED_NAME = re.compile(rb'[ \t]*"([^"]*)"[ \t]*')


def parse_address_list(value: bytes | None) -> tuple[AddressItem, ...]:
    """RFC 5322 §3.4 address-list with groups; never raises, garbage gives odd addresses."""
    if not value:
        return ()
    value = value[:MAX_ADDRESS_HEADER]
    fast = _parse_common_address_list(value)
    if fast is not None:
        return fast
    return _parse_address_list(value)


def _parse_common_address_list(value: bytes) -> tuple[AddressItem, ...] | None:
    """The items of a list in the common forms (see :data:`_FAST_MAILBOX`), else None."""
    items: list[AddressItem] = []
    position = 0
    length = len(value)
    while position < length:
        match = _FAST_MAILBOX.match(value, position)
        if match is None:
            blank = _FAST_BLANK.match(value, position)
            if blank is None or blank.end() == position:
                return None
            position = blank.end()  # an empty element between commas
            continue
        phrase, local, domain, bare_local, bare_domain = match.groups()
        if local is None:
            items.append(
                AddressItem(
                    ItemKind.MAILBOX,
                    local_part=bare_local,
                    domain=bare_domain,
                    local_written=bare_local,
                )
            )
        else:
            if b'"' not in phrase:
                name: bytes | None = b" ".join(phrase.split()) or None
            else:
                quoted = _FAST_QUOTED_NAME.fullmatch(phrase)
                if quoted is not None:
                    name = quoted.group(1) or None
                else:
                    name = _phrase(list(_tokenize(phrase)))
            items.append(
                AddressItem(
                    ItemKind.MAILBOX,
                    name=name,
                    local_part=local,
                    domain=domain,
                    local_written=local,
                )
            )
        position = match.end()
    return tuple(items[:MAX_ADDRESSES])


def _parse_address_list(value: bytes) -> tuple[AddressItem, ...]:
    """The general parser: every RFC 5322 §3.4 and §4.4 form, and garbage."""
    items: list[AddressItem] = []
    current: list[_Token] = []
    in_angle = False
    in_group = False
    for token in _tokenize(value):
        if len(items) >= MAX_ADDRESSES:
            break
        if token.kind != "special":
            current.append(token)
            continue
        char = token.text
        if char == b"<":
            in_angle = True
            current.append(token)
        elif char == b">":
            in_angle = False
            current.append(token)
        elif in_angle or char in (b"@", b"."):
            current.append(token)
        elif char == b":" and any(t.kind == "special" and t.text == b"@" for t in current):
            # "a@b: ..." is not a group (a display name has no "@"): another header line
            # glued to this one. Keep the address and stop, as Dovecot does.
            break
        elif char == b":" and not in_group:
            items.append(AddressItem(ItemKind.GROUP_START, name=_phrase(current)))
            current = []
            in_group = True
        elif char == b";" and in_group:
            _finish_mailbox(current, items)
            items.append(AddressItem(ItemKind.GROUP_END))
            current = []
            in_group = False
        elif char in (b",", b";"):
            _finish_mailbox(current, items)
            current = []
        else:
            current.append(token)
    _finish_mailbox(current, items)
    if in_group:
        items.append(AddressItem(ItemKind.GROUP_END))
    return tuple(items[:MAX_ADDRESSES])


def _finish_mailbox(tokens: list[_Token], items: list[AddressItem]) -> None:
    """RFC 5322 §3.4 mailbox: ``[display-name] "<" [route] addr-spec ">"`` or addr-spec."""
    if not any(token.kind != "comment" for token in tokens):
        return
    last_word = max(i for i, token in enumerate(tokens) if token.kind != "comment")
    # RFC 822 style "addr-spec (Full Name)": a comment after the address names it.
    comments = [token.text for token in tokens[last_word + 1 :] if token.kind == "comment"]
    opening = next((i for i, t in enumerate(tokens) if t.kind == "special" and t.text == b"<"), -1)
    if opening >= 0:
        name = _phrase(tokens[:opening])
        closing = next(
            (
                i
                for i in range(opening + 1, len(tokens))
                if tokens[i].kind == "special" and tokens[i].text == b">"
            ),
            len(tokens),
        )
        inner = [token for token in tokens[opening + 1 : closing] if token.kind != "comment"]
        if closing + 1 < len(tokens) and name is None:
            name = _phrase(tokens[closing + 1 :])
    else:
        name = None
        inner = [token for token in tokens if token.kind != "comment"]
    route: bytes | None = None
    colon = next((i for i, t in enumerate(inner) if t.kind == "special" and t.text == b":"), -1)
    if inner and inner[0].text == b"@" and colon > 0:
        route = b"".join(_token_text(t) for t in inner[:colon])
        inner = inner[colon + 1 :]
    at = max((i for i, t in enumerate(inner) if t.kind == "special" and t.text == b"@"), default=-1)
    local_tokens = inner if at < 0 else inner[:at]
    local = b"".join(_token_text(t) for t in local_tokens)
    written = b"".join(t.written if t.kind == "quoted" else _token_text(t) for t in local_tokens)
    domain: bytes | None = None
    if at >= 0:  # RFC 5322 §3.4.1 domain: atoms and dots, or a domain literal
        domain_tokens: list[_Token] = []
        for token in inner[at + 1 :]:
            if (token.kind == "special" and token.text != b".") or token.kind == "quoted":
                break
            if domain_tokens and domain_tokens[-1].kind != "special" and token.kind != "special":
                break  # two atoms without a dot between them: the domain has ended
            domain_tokens.append(token)
        domain = b"".join(_token_text(t) for t in domain_tokens)
    if name is None and comments:
        name = comments[0].strip() or None
    items.append(
        AddressItem(
            ItemKind.MAILBOX,
            name=name,
            route=route,
            local_part=local,
            domain=domain,
            local_written=written,
        )
    )


@dataclass(frozen=True, slots=True)
class Address:
    """RFC 8621 §4.1.2.3 EmailAddress: decoded display name and ``local@domain``."""

    name: str | None
    email: str


_new_object = object.__new__
_set_address_name = vars(Address)["name"].__set__  # the slots' descriptors
_set_address_email = vars(Address)["email"].__set__


def _address(name: str | None, email: str) -> Address:
    """``Address(name, email)`` without the frozen dataclass's ``__init__`` (several times
    slower than setting the two slots)."""
    address = _new_object(Address)
    _set_address_name(address, name)
    _set_address_email(address, email)
    return address


def decoded_addresses(items: tuple[AddressItem, ...]) -> tuple[Address, ...]:
    """RFC 8621 §4.1.2.3 asAddresses: mailboxes only, groups flattened, names decoded."""
    if not items:
        return ()
    result: list[Address] = []
    for item in items:
        if item.kind is not ItemKind.MAILBOX:
            continue
        email = item.local_written
        if item.domain is not None:
            email += b"@" + item.domain
        name = decode_words(item.name).strip() if item.name is not None else None
        result.append(_address(name or None, decode_header_bytes(email)))
    return tuple(result)
