"""RFC 9051 §6.4.5 part numbering and the byte ranges behind BODY[section]."""

from __future__ import annotations

from hirondelle.mime import ParsedMessage, PartLocation, parse_message


def entity(content_type: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"Content-Type: " + content_type.encode() + b"\r\n" + extra + b"\r\n" + body


def multipart(boundary: str, *parts: bytes, subtype: str = "mixed") -> bytes:
    marker = b"--" + boundary.encode()
    body = b"".join(marker + b"\r\n" + part + b"\r\n" for part in parts) + marker + b"--\r\n"
    return entity(f"multipart/{subtype}; boundary={boundary}", body)


def message(headers: bytes, body_entity: bytes) -> bytes:
    return headers + body_entity


# The example structure of RFC 9051 §6.4.5, built bottom up.
INNER_3 = message(
    b"From: three@example.com\r\nSubject: part three\r\n",
    multipart("m3", entity("text/plain", b"3.1 text"), entity("application/octet-stream", b"3.2")),
)
INNER_4_2 = message(
    b"From: four@example.com\r\nSubject: part 4.2\r\n",
    multipart(
        "m42",
        entity("text/plain", b"4.2.1 text"),
        multipart(
            "m422",
            entity("text/plain", b"4.2.2.1"),
            entity("text/richtext", b"4.2.2.2"),
            subtype="alternative",
        ),
    ),
)
RFC_EXAMPLE = message(
    b"From: top@example.com\r\nSubject: RFC 9051 6.4.5\r\nMIME-Version: 1.0\r\n",
    multipart(
        "top",
        entity("text/plain", b"part one"),
        entity("application/octet-stream", b"part two"),
        entity("message/rfc822", INNER_3),
        multipart(
            "m4",
            entity("image/gif", b"GIF89a", b"Content-ID: <gif@example.com>\r\n"),
            entity("message/rfc822", INNER_4_2),
        ),
    ),
)


def locations(parsed: ParsedMessage) -> dict[str, PartLocation]:
    return {part.section: part for part in parsed.parts}


def test_rfc_9051_example_numbering() -> None:
    parsed = parse_message(RFC_EXAMPLE)
    assert [(part.section, part.content_type) for part in parsed.parts] == [
        ("", "multipart/mixed"),
        ("1", "text/plain"),
        ("2", "application/octet-stream"),
        ("3", "message/rfc822"),
        ("3.1", "text/plain"),
        ("3.2", "application/octet-stream"),
        ("4", "multipart/mixed"),
        ("4.1", "image/gif"),
        ("4.2", "message/rfc822"),
        ("4.2.1", "text/plain"),
        ("4.2.2", "multipart/alternative"),
        ("4.2.2.1", "text/plain"),
        ("4.2.2.2", "text/richtext"),
    ]


def test_sections_are_slices_of_the_raw_message() -> None:
    raw = RFC_EXAMPLE
    parsed = parse_message(raw)
    by_section = locations(parsed)

    def body(section: str) -> bytes:
        part = by_section[section]
        return raw[part.body_start : part.end]

    assert raw[: parsed.header_end].endswith(b"boundary=top\r\n\r\n")
    assert raw[parsed.header_end :].startswith(b"--top\r\n")
    assert body("1") == b"part one"
    assert body("2") == b"part two"
    assert body("3") == INNER_3
    assert body("3.1") == b"3.1 text"
    assert body("4.2.2.2") == b"4.2.2.2"
    three = by_section["3"]
    assert three.is_message and three.message_header_end is not None
    assert raw[three.body_start : three.message_header_end] == (
        b"From: three@example.com\r\nSubject: part three\r\n"
        b"Content-Type: multipart/mixed; boundary=m3\r\n\r\n"
    )
    assert raw[three.message_header_end : three.end].startswith(b"--m3\r\n")
    gif = by_section["4.1"]
    assert raw[gif.header_start : gif.body_start] == (
        b"Content-Type: image/gif\r\nContent-ID: <gif@example.com>\r\n\r\n"
    )
    assert gif.content_id == "gif@example.com"
    assert by_section["4"].is_multipart and not by_section["4.1"].is_multipart


def test_non_multipart_message_body_is_section_one() -> None:
    raw = b"Subject: plain\r\n\r\nhello\r\n"
    parsed = parse_message(raw)
    assert [part.section for part in parsed.parts] == ["", "1"]
    one = locations(parsed)["1"]
    assert raw[one.body_start : one.end] == b"hello\r\n"
    assert parsed.header_end == len(b"Subject: plain\r\n\r\n")


def test_top_level_message_rfc822_nests_under_one() -> None:
    inner = b"Subject: inner\r\n\r\ninner body"
    raw = b"Content-Type: message/rfc822\r\n\r\n" + inner
    parsed = parse_message(raw)
    assert [(part.section, part.content_type) for part in parsed.parts] == [
        ("", "message/rfc822"),
        ("1", "message/rfc822"),
        ("1.1", "text/plain"),
    ]
    one = locations(parsed)["1"]
    assert one.is_message
    assert raw[one.body_start : one.end] == inner
    assert raw[one.message_header_end or 0 : one.end] == b"inner body"
    assert b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)' in parsed.body_structure


def test_digest_parts_default_to_message_rfc822() -> None:
    raw = multipart(
        "d",
        b"\r\nSubject: one\r\n\r\nfirst",
        entity("text/plain", b"explicit type"),
        subtype="digest",
    )
    parsed = parse_message(raw)
    assert [(part.section, part.content_type) for part in parsed.parts] == [
        ("", "multipart/digest"),
        ("1", "message/rfc822"),
        ("1.1", "text/plain"),
        ("2", "text/plain"),
    ]
    assert parsed.body_structure.startswith(
        b'(("message" "rfc822" NIL NIL NIL "7bit" 21 (NIL "one"'
    )


def test_missing_close_delimiter_ends_at_the_end_of_the_message() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nonly part, no close\r\n"
    parsed = parse_message(raw)
    one = locations(parsed)["1"]
    assert one.end == len(raw)
    assert raw[one.body_start : one.end] == b"only part, no close\r\n"


def test_preamble_epilogue_and_transport_padding() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"preamble\r\n--x  \r\n\r\none\r\n--x\t\r\n\r\ntwo\r\n--x-- \r\nepilogue\r\n"
    )
    parsed = parse_message(raw)
    by_section = locations(parsed)
    assert raw[by_section["1"].body_start : by_section["1"].end] == b"one"
    assert raw[by_section["2"].body_start : by_section["2"].end] == b"two"


def test_outer_boundary_that_prefixes_the_inner_one_is_not_confused() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
        b"--abc\r\nContent-Type: multipart/alternative; boundary=abcd\r\n\r\n"
        b"--abcd\r\n\r\nplain\r\n--abcd--\r\n"
        b"--abc\r\n\r\nsecond\r\n--abc--\r\n"
    )
    parsed = parse_message(raw)
    assert [part.section for part in parsed.parts] == ["", "1", "1.1", "2"]
    by_section = locations(parsed)
    assert raw[by_section["1.1"].body_start : by_section["1.1"].end] == b"plain"
    assert raw[by_section["2"].body_start : by_section["2"].end] == b"second"
