"""Property tests (hypothesis) of the JMAP mail parsers on arbitrary input: header forms
(RFC 8621 §4.1.2), header property names, body value truncation (§4.2), part blob ids,
and draft building from arbitrary create objects (§4.6)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.jmap import email_parts
from hirondelle.jmap.email_build import Builder
from hirondelle.jmap.errors import SetError
from hirondelle.mime import parse_message

FORMS = ["Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs"]


@given(st.binary(max_size=300))
def test_every_form_reads_any_bytes(value: bytes) -> None:
    field = email_parts.HeaderField("X-Anything", value)
    for form in FORMS:
        wanted = email_parts.parse_header_property(f"header:X-Anything:as{form}")
        assert wanted is not None
        result = email_parts.header_value((field,), wanted)
        if form in ("Addresses",):
            assert isinstance(result, list)
            assert all(set(a) == {"name", "email"} for a in result)
        if form == "GroupedAddresses":
            assert all(set(g) == {"name", "addresses"} for g in result)


@given(st.text(max_size=80))
def test_header_property_names_never_raise(name: str) -> None:
    parsed = email_parts.parse_header_property(name)
    if parsed is not None:
        assert name.startswith("header:")
        assert parsed.form in FORMS


def test_form_rules() -> None:
    assert email_parts.parse_header_property("header:From:asText") is None
    assert email_parts.parse_header_property("header:Subject:asAddresses") is None
    assert email_parts.parse_header_property("header:Date:asDate:all") is not None
    assert email_parts.parse_header_property("header:X-New:asURLs") is not None
    assert email_parts.parse_header_property("header:Bad Name") is None
    assert email_parts.parse_header_property("header:X:asText:extra") is None


@given(st.text(max_size=200), st.integers(min_value=1, max_value=300))
def test_truncation_is_a_prefix_within_the_budget(text: str, limit: int) -> None:
    cut, truncated = email_parts.truncate_utf8(text, limit)
    encoded = text.encode("utf-8", "replace")
    assert len(cut.encode("utf-8", "replace")) <= limit
    assert truncated == (len(encoded) > limit)
    if not truncated:
        assert cut == text
    else:
        assert encoded.startswith(cut.encode("utf-8", "replace"))
        # At most one character (4 octets) is given up to stay whole.
        assert limit - len(cut.encode("utf-8", "replace")) < 4


@given(st.text(max_size=40))
def test_part_blob_ids_round_trip_or_refuse(value: str) -> None:
    parsed = email_parts.parse_part_blob_id(value)
    if parsed is not None:
        assert email_parts.part_blob_id(*parsed) == value


async def _no_blob(_blob_id: str) -> tuple[bytes, str | None] | None:
    return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
create_keys = st.sampled_from(
    [
        "mailboxIds",
        "keywords",
        "from",
        "to",
        "subject",
        "sentAt",
        "messageId",
        "textBody",
        "htmlBody",
        "attachments",
        "bodyStructure",
        "bodyValues",
        "header:X-A:asText",
        "header:To:asAddresses",
        "header:List-Post:asURLs",
        "size",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(create_keys, json_values, max_size=6))
def test_building_any_create_object_refuses_or_parses(create: dict[str, Any]) -> None:
    builder_or_error: Any
    try:
        builder_or_error = Builder(create, read_blob=_no_blob, hostname="mail.example.test")
        raw = asyncio.run(builder_or_error.build())
    except SetError as error:
        assert error.kind in ("invalidProperties", "blobNotFound", "invalidPatch")
        return
    assert b"\r\nMessage-ID: <" in b"\r\n" + raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = parse_message(raw)
    assert parsed.size == len(raw)


def test_a_built_draft_reads_back() -> None:
    create = {
        "mailboxIds": {"M1": True},
        "from": [{"name": "Zoé Â", "email": "zoe@example.test"}],
        "to": [{"name": None, "email": "bob@example.net"}],
        "subject": "Déjà vu",
        "header:X-Tag:asText": "valeur",
        "textBody": [{"partId": "a"}],
        "bodyValues": {"a": {"value": "Ligne très longue " * 100}},
    }
    raw = asyncio.run(Builder(create, read_blob=_no_blob, hostname="h.test").build())
    parsed = parse_message(raw)
    assert parsed.subject == "Déjà vu"
    assert parsed.from_[0].name == "Zoé Â"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()


weird_text = st.lists(
    st.sampled_from(
        ["a", "é", " ", "@", "<", ">", "\x1e", "\x0b", "\u2028", "\x85", "\r\n ", "\n", "\t", ";"]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(weird_text, weird_text, weird_text, weird_text, weird_text)
def test_line_breaks_of_any_kind_are_refused_or_encoded(
    subject: str, name: str, local: str, raw_value: str, filename: str
) -> None:
    create: dict[str, Any] = {
        "mailboxIds": {"M1": True},
        "subject": subject,
        "from": [{"name": name, "email": f"{local}@example.test"}],
        "header:X-Raw": raw_value,
        "header:List-Post:asURLs": [local],
        "textBody": [{"partId": "1"}],
        "bodyValues": {"1": {"value": subject}},
        "attachments": [],
    }
    try:
        raw = asyncio.run(Builder(create, read_blob=_no_blob, hostname="h.test").build())
    except SetError as error:
        assert error.kind == "invalidProperties"
        return
    header = raw.split(b"\r\n\r\n", 1)[0]
    # Every header line is a field or a fold: nothing was smuggled in as a new field.
    for line in header.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line
    assert parse_message(raw).size == len(raw)


@settings(max_examples=100, deadline=None)
@given(weird_text, weird_text, st.booleans())
def test_a_forwarded_message_is_carried_as_it_is(subject: str, name: str, bare_lf: bool) -> None:
    """RFC 2046 §5.2.1: a message/rfc822 part from an uploaded blob, whatever its header
    values hold (RS, NEL, U+2028... which the generator would break lines at), is sent
    octet for octet (line ends made CRLF), inside a well-formed message."""
    forwarded = (
        f"Subject: {subject}\r\nFrom: {name} <b@example.net>\r\nMessage-ID: <{name}@x>\r\n"
        "\r\nbody\r\n"
    ).encode()
    if bare_lf:
        forwarded = forwarded.replace(b"\r\n", b"\n")

    async def read_blob(blob_id: str) -> tuple[bytes, str | None] | None:
        return (forwarded, "message/rfc822") if blob_id == "B1" else None

    create: dict[str, Any] = {
        "subject": "Fwd",
        "textBody": [{"partId": "1"}],
        "bodyValues": {"1": {"value": "see attached"}},
        "attachments": [{"blobId": "B1", "type": "message/rfc822", "name": "f.eml"}],
    }
    raw = asyncio.run(Builder(create, read_blob=read_blob, hostname="h.test").build())
    header = raw.split(b"\r\n\r\n", 1)[0]
    for line in header.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line
    assert forwarded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") in raw
    parsed = parse_message(raw)
    assert parsed.size == len(raw)
    assert parsed.subject == "Fwd"
