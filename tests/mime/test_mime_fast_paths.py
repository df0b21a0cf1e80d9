"""The fast paths of the parser give exactly what the general code gives.

Each fast path is compared, with hypothesis, with the general definition it shortcuts
(kept in the module as the fallback, or kept here when the function was rewritten), on
inputs generated to hit both the common forms and the malformed ones.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mime.addresses import (
    MAX_ADDRESS_HEADER,
    Address,
    AddressItem,
    ItemKind,
    _address,
    _parse_address_list,
    _parse_common_address_list,
    parse_address_list,
)
from hirondelle.mime.envelope import parse_envelope_addresses, render_envelope
from hirondelle.mime.headers import (
    _ENCODED_WORD,
    MAX_HEADER_BLOCK,
    MAX_HEADER_FIELDS,
    HeaderField,
    Headers,
    _decode_word_payload,
    _header_field,
    _split_parameters,
    decode_header_bytes,
    decode_text,
    decode_words,
    parse_header_block,
)
from hirondelle.mime.imap_strings import MAX_QUOTED, NIL, render_list, render_string
from hirondelle.mime.structure import _is_token
from hirondelle.mime.text import _INLINE_SPACE, UNCOMMON_WHITESPACE, collapse_whitespace

_ATOMS = [b"a", b"bob", b"x.y", b"Jos\xc3\xa9", b"=?utf-8?q?Ren=C3=A9e?=", b"J.", b"O'N", b"!#$%"]
_DOMAINS = [b"example.com", b"a", b"x..y", b"\xc3\xa9t\xc3\xa9.fr", b"b.", b"[1.2.3.4]"]
_NOISE = [
    b" ", b"\t", b"  ", b",", b";", b":", b"@", b"<", b">", b".", b'"', b"\\", b"(", b")",
    b"(c)", b"[", b"]", b"\r\n", b"\n", b"\r", b"\x00", b"\x0b", b"\x1c", b"\x7f", b"\xa0",
]  # fmt: skip

_atom = st.sampled_from(_ATOMS)
_quoted = st.lists(st.sampled_from([*_ATOMS, b" ", b",", b"<x@y>", b";:", b"\t"]), max_size=4).map(
    lambda pieces: b'"' + b"".join(pieces) + b'"'
)
_phrase = st.lists(st.one_of(_atom, _quoted, st.sampled_from([b" ", b".", b"\t"])), max_size=5).map(
    b"".join
)
_addr_spec = st.tuples(_atom, _atom, st.sampled_from(_DOMAINS)).map(
    lambda t: t[0] + b"." + t[1] + b"@" + t[2]
)
_mailbox = st.one_of(
    _addr_spec,
    st.tuples(_phrase, _addr_spec, st.sampled_from([b"", b" ", b"\t"])).map(
        lambda t: t[0] + b"<" + t[1] + b">" + t[2]
    ),
    st.sampled_from([b"", b" ", b"  \t"]),
)
_common_list = st.lists(_mailbox, max_size=5).map(b",".join)


def _mutated(value: bytes, noise: list[bytes], positions: list[int]) -> bytes:
    for piece, position in zip(noise, positions, strict=False):
        cut = position % (len(value) + 1)
        value = value[:cut] + piece + value[cut:]
    return value


_address_lists = st.one_of(
    _common_list,
    st.builds(
        _mutated,
        _common_list,
        st.lists(st.sampled_from(_NOISE), max_size=3),
        st.lists(st.integers(min_value=0, max_value=500), max_size=3),
    ),
    st.lists(st.one_of(_atom, st.sampled_from(_NOISE), _quoted), max_size=12).map(b"".join),
    st.binary(max_size=60),
)


@settings(max_examples=800, deadline=None)
@given(_address_lists)
def test_common_address_forms_parse_as_the_tokenizer_does(value: bytes) -> None:
    assert parse_address_list(value) == _parse_address_list(value[:MAX_ADDRESS_HEADER])


@pytest.mark.parametrize(
    "value",
    [
        b"a@example.com",
        b"Bob <bob@example.com>, =?utf-8?q?Ren=C3=A9e?= <r@x.fr>,",
        b'"Smith, John" <john@example.com>, J. R. Doe <jr@example.com>',
        b"<a@b>, , c.d@e.f",
    ],
)
def test_the_common_forms_take_the_fast_path(value: bytes) -> None:
    assert _parse_common_address_list(value) == _parse_address_list(value)


def test_many_addresses_are_truncated_the_same_way() -> None:
    value = b", ".join(b"Name %d <a%d@example.com>" % (n, n) for n in range(2_100))
    assert _parse_common_address_list(value) is not None
    assert parse_address_list(value) == _parse_address_list(value)


# --- header blocks and Content-Type parameters: the definitions before the rewrite ---------


def _old_parse_header_block(block: bytes) -> tuple[HeaderField, ...]:
    fields: list[HeaderField] = []
    name: str | None = None
    value_lines: list[bytes] = []
    for line in block[:MAX_HEADER_BLOCK].split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value_lines.append(line)
            continue
        if name is not None:
            fields.append(HeaderField(name, _old_join_lines(value_lines)))
            name = None
            if len(fields) >= MAX_HEADER_FIELDS:
                break
        colon = line.find(b":")
        if colon <= 0:
            continue
        field_name = line[:colon].strip(b" \t")
        if not field_name or b" " in field_name:
            continue
        name = decode_header_bytes(field_name)
        value_lines = [line[colon + 1 :]]
    if name is not None and len(fields) < MAX_HEADER_FIELDS:
        fields.append(HeaderField(name, _old_join_lines(value_lines)))
    return tuple(fields)


def _old_join_lines(lines: list[bytes]) -> bytes:
    joined = b"\n".join(lines)
    return joined[:-1] if joined.endswith(b"\r") else joined


def _old_split_parameters(value: bytes) -> list[bytes]:
    items: list[bytes] = []
    current = bytearray()
    in_quotes = False
    escape = False
    value_starts = False
    for byte in value:
        if in_quotes:
            current.append(byte)
            if escape:
                escape = False
            elif byte == 0x5C:
                escape = True
            elif byte == 0x22:
                in_quotes = False
            continue
        if byte == 0x3B:
            items.append(bytes(current))
            current.clear()
            value_starts = False
            continue
        current.append(byte)
        if byte == 0x22 and value_starts:
            in_quotes = True
            value_starts = False
        elif byte == 0x3D:
            value_starts = True
        elif byte not in b" \t\r\n":
            value_starts = False
    items.append(bytes(current))
    return [items[0], *(item for item in items[1:] if item.strip())]


def _old_is_token(value: bytes) -> bool:
    return not any(byte <= 0x20 or byte >= 0x7F or byte in b'()<>@,;:\\"/[]?=' for byte in value)


_HEADER_PIECES = [
    b"Subject: hi", b"From: a@b", b"X-A:", b":", b"a", b" ", b"\t", b" cont", b"\tcont",
    b"\r\n", b"\n", b"\r", b"\n\n", b"Bad Name: x", b"N\tB: y", b"\xc3\xa9t\xc3\xa9: z",
    b"\x00", b"::", b" : ", b"Re: ", b"Received: from x\r\n\tby y",
]  # fmt: skip
_PARAMETER_PIECES = [
    b"text/plain", b";", b" ", b"\t", b"\r\n", b"=", b'"', b"\\", b"a", b"name", b"charset",
    b'"x;y"', b'="q"', b"*0", b"*1*", b"'", b"%41", b"(c)", b"\xc3\xa9",
]  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(_HEADER_PIECES), max_size=14).map(b"".join), st.binary()))
def test_header_blocks_split_as_before(block: bytes) -> None:
    assert parse_header_block(block) == _old_parse_header_block(block)


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(st.lists(st.sampled_from(_PARAMETER_PIECES), max_size=14).map(b"".join), st.binary())
)
def test_parameters_split_as_before(value: bytes) -> None:
    assert _split_parameters(value) == _old_split_parameters(value)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=12))
def test_tokens_recognised_as_before(value: bytes) -> None:
    assert _is_token(value) == _old_is_token(value)


# --- IMAP strings, ENVELOPE and HTML blanks: the definitions before the rewrite ------------


def _old_render_string(value: bytes) -> bytes:
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    if len(value) > MAX_QUOTED or not value.isascii() or b"\r" in value or b"\n" in value:
        return b"{%d}\r\n%s" % (len(value), value)
    if b"\\" in value or b'"' in value:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def _old_render_address_list(items: tuple[AddressItem, ...]) -> bytes:
    if not items:
        return NIL
    rendered: list[bytes] = []
    for item in items:
        if item.kind is ItemKind.GROUP_END:
            rendered.append(b"(NIL NIL NIL NIL)")
        elif item.kind is ItemKind.GROUP_START:
            rendered.append(b"(NIL NIL " + _old_render_string(item.name or b"") + b" NIL)")
        else:
            rendered.append(
                render_list(
                    [
                        NIL if item.name is None else _old_render_string(item.name),
                        NIL if item.route is None else _old_render_string(item.route),
                        NIL if item.local_part is None else _old_render_string(item.local_part),
                        _old_render_string(item.domain or b""),
                    ]
                )
            )
    return b"(" + b"".join(rendered) + b")"


def _old_render_envelope(headers: Headers) -> bytes:
    addresses = parse_envelope_addresses(headers)

    def nstring(value: bytes | None) -> bytes:
        return NIL if value is None else _old_render_string(value)

    return render_list(
        [
            nstring(headers.get("date")),
            nstring(headers.get("subject")),
            _old_render_address_list(addresses.from_),
            _old_render_address_list(addresses.sender or addresses.from_),
            _old_render_address_list(addresses.reply_to or addresses.from_),
            _old_render_address_list(addresses.to),
            _old_render_address_list(addresses.cc),
            _old_render_address_list(addresses.bcc),
            nstring(headers.get("in-reply-to")),
            nstring(headers.get("message-id")),
        ]
    )


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.lists(st.sampled_from([b"a", b" ", b'"', b"\\", b"\x00", b"\r", b"\n", b"\xe9"])).map(
            b"".join
        ),
        st.integers(min_value=4090, max_value=4100).map(lambda n: b"x" * n),
    )
)
def test_imap_strings_render_as_before(value: bytes) -> None:
    assert render_string(value) == _old_render_string(value)


_ENVELOPE_FIELDS = st.sampled_from(
    [b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc", b"Subject", b"Date", b"Message-ID"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ENVELOPE_FIELDS, _address_lists), max_size=6))
def test_envelopes_render_as_before(fields: list[tuple[bytes, bytes]]) -> None:
    block = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    headers = Headers(parse_header_block(block))
    assert render_envelope(headers) == _old_render_envelope(headers)


_OLD_INLINE_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=" \t\r\f\v\u00a0\n\u2003ab<é", max_size=40))
def test_html_blanks_collapse_as_before(text: str) -> None:
    assert _INLINE_SPACE.sub(" ", text) == _OLD_INLINE_SPACE.sub(" ", text)


# --- RFC 2047: one whole encoded-word decoded directly --------------------------------------


def _old_decode_words(value: bytes) -> str:
    if b"=?" not in value:
        return decode_header_bytes(value)
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


_WORD_PIECES = [
    b"=?", b"?=", b"utf-8", b"UTF-8*fr", b"iso-8859-1", b"x-bogus", b"?q?", b"?B?", b"?b?",
    b"caf=C3=A9", b"_", b"w6k=", b"w6", b"!!", b"=", b" ", b"\t", b"a", b"\xc3\xa9", b"?",
]  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(_WORD_PIECES), max_size=10).map(b"".join),
        st.tuples(
            st.sampled_from([b"utf-8", b"iso-8859-1", b"x-bogus", b"UTF-8*fr", b"a b"]),
            st.sampled_from([b"q", b"B", b"b", b"Q"]),
            st.lists(st.sampled_from(_WORD_PIECES[9:]), max_size=6).map(b"".join),
        ).map(lambda t: b"=?" + t[0] + b"?" + t[1] + b"?" + t[2] + b"?="),
    )
)
def test_encoded_words_decode_as_before(value: bytes) -> None:
    assert decode_words(value) == _old_decode_words(value)


def test_objects_made_without_init_are_the_same_objects() -> None:
    assert _address("Zoë", "z@example.com") == Address("Zoë", "z@example.com")
    assert hash(_address(None, "z@x")) == hash(Address(None, "z@x"))
    assert _header_field("To", b" a@b") == HeaderField("To", b" a@b")
    assert repr(_header_field("To", b" a@b")) == repr(HeaderField("To", b" a@b"))


# --- whitespace collapsed by str.replace ----------------------------------------------------


def test_uncommon_whitespace_is_every_other_whitespace_character() -> None:
    every = {chr(code) for code in range(0x110000) if chr(code).isspace()}
    assert set(UNCOMMON_WHITESPACE) == every - {" ", "\r", "\n"}


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=" \r\n\tab\xe9\u4e2d", max_size=60),
        st.text(alphabet=" \r\nab", max_size=60),
        st.text(max_size=30),
    ),
    st.one_of(st.none(), st.integers(min_value=0, max_value=50)),
)
def test_collapse_is_split_and_join(text: str, limit: int | None) -> None:
    expected = " ".join(text.split())
    if limit is not None and len(expected) > limit:
        expected = expected[:limit].rstrip()
    assert collapse_whitespace(text, limit) == expected
