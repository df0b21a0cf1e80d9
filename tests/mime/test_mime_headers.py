"""Header-level rules: RFC 2047, RFC 2231, RFC 5322 dates, msg-ids and addresses,
RFC 5256 base subject, and the RFC 3501 §7.4.2 ENVELOPE example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mime import Address, parse_message
from hirondelle.mime.addresses import decoded_addresses, parse_address_list
from hirondelle.mime.headers import (
    decode_rfc2231,
    decode_words,
    parse_content_field,
    parse_date,
    parse_message_ids,
)
from hirondelle.mime.subject import base_subject


def test_rfc_3501_fetch_example_envelope_and_body() -> None:
    body = b"".join(b"%-31d\r\n" % number for number in range(91)) + b"x" * 23 + b"\r\n"
    assert len(body) == 3028 and body.count(b"\n") == 92
    raw = (
        b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
        b"From: Terry Gray <gray@cac.washington.edu>\r\n"
        b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
        b"To: imap@cac.washington.edu\r\n"
        b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
        b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
        b"Content-Transfer-Encoding: 7BIT\r\n"
        b"\r\n" + body
    )
    parsed = parse_message(raw)
    assert parsed.envelope == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )
    assert parsed.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    assert parsed.sent_at == datetime(1996, 7, 17, 2, 23, 25, tzinfo=timezone(-timedelta(hours=7)))


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?ISO-8859-1?Q?a?=", "a"),
        (b"=?ISO-8859-1?Q?a?= b", "a b"),
        (b"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"),  # RFC 2047 §8 examples
        (b"=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab"),
        (b"=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=", "ab"),
        (b"=?ISO-8859-1?Q?a_b?=", "a b"),
        (b"=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b"),
        (b"=?UTF-8?B?w6k=?=", "é"),
        (b"=?UTF-8*fr?Q?=C3=A9t=C3=A9?=", "été"),  # RFC 2231 §5 language in a word
        (b"=?UTF-8?B?w6k?=", "é"),  # missing padding
        (b"=?UTF-8?B?w6?= =?UTF-8?B?kK?=", "\u00d0"),  # unpadded halves of U+00D0
        (b"=?UTF-8?B?w6*x?=", "=?UTF-8?B?w6*x?="),  # not base64: kept as written
        (b"=?utf-8?B?w?= =?utf-8?B?qQ==?=", "=?utf-8?B?w?= \ufffd"),
        (b"=?bogus-charset?Q?caf=C3=A9?=", "café"),
        (b"=?utf-8?q?broken", "=?utf-8?q?broken"),
        (b"pre=?utf-8?q?x?=post", "prexpost"),
        (b"Gr\xc3\xbc\xc3\x9fe", "Grüße"),  # raw UTF-8, RFC 6532
        (b"Gr\xfc\xdfe", "Grüße"),  # raw ISO-8859-1
    ],
)
def test_rfc_2047_decoding(raw: bytes, text: str) -> None:
    assert decode_words(raw) == text


def test_rfc_2047_words_split_inside_a_character_are_joined() -> None:
    euro = "€".encode()
    assert decode_words(b"=?utf-8?Q?=E2=82?= =?utf-8?Q?=AC?=") == "€"
    assert euro == b"\xe2\x82\xac"


def test_content_type_parameters_and_rfc_2231() -> None:
    field = parse_content_field(
        b"application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; "
        b'title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn\'t it!"'
    )
    assert field.value == b"application/x-stuff"
    assert [parameter.name for parameter in field.parameters] == ["title*"]
    assert field.decoded("title") == "This is even more ***fun*** isn't it!"  # RFC 2231 §4.1


def test_content_type_tolerates_garbage() -> None:
    field = parse_content_field(b'text/plain;; charset="utf-8" (comment); novalue; name="a;b')
    assert field.value == b"text/plain"
    assert field.get("charset") == b"utf-8"
    assert field.get("name") == b"a;b"
    assert parse_content_field(b"").value == b""


def test_rfc_2231_value_in_unknown_charset_does_not_raise() -> None:
    assert decode_rfc2231(b"x-nope''%E9t%E9") == "été"
    assert decode_rfc2231(b"no-quotes%20here") == "no-quotes here"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Mon, 7 Feb 1994 21:52:25 -0800", datetime(1994, 2, 8, 5, 52, 25, tzinfo=UTC)),
        (b"7 Feb 1994 21:52 GMT", datetime(1994, 2, 7, 21, 52, tzinfo=UTC)),
        (b"Tue, 1 Jul 2003 10:52:37 +0200 (CEST)", datetime(2003, 7, 1, 8, 52, 37, tzinfo=UTC)),
        (b"Thu, 13 Feb 1969 23:32:54 -0330", datetime(1969, 2, 14, 3, 2, 54, tzinfo=UTC)),
        (b"Fri, 21 Nov 97 09:55:06 -0600", datetime(1997, 11, 21, 15, 55, 6, tzinfo=UTC)),
        (b"garbage", None),
        (b"Mon, 31 Feb 2024 10:00:00 +0000", None),
        (b"", None),
        (None, None),
    ],
)
def test_dates(raw: bytes | None, expected: datetime | None) -> None:
    parsed = parse_date(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        (b"<a@b>", ("a@b",)),
        (b"<a@b> <c@d>\r\n <e@f>", ("a@b", "c@d", "e@f")),
        (b"Your message of Mon <a@b> (sent) <c@d>", ("a@b", "c@d")),
        (b"a@b", ("a@b",)),
        (b"<a@b> <a@b>", ("a@b",)),
        (b"< spaced@id >", ("spaced@id",)),
        (b"<unterminated@id", ()),
        (b"<>", ()),
        (None, ()),
    ],
)
def test_message_id_lists(raw: bytes | None, ids: tuple[str, ...]) -> None:
    assert parse_message_ids(raw) == ids


@pytest.mark.parametrize(
    ("raw", "addresses"),
    [
        (
            b"Fred Foobar <foobar@Blurdybloop.example>",
            [("Fred Foobar", "foobar@Blurdybloop.example")],
        ),
        (
            b'"Joe Q. Public" <john.q.public@example.com>',
            [("Joe Q. Public", "john.q.public@example.com")],
        ),
        (
            b"Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
            [("Mary Smith", "mary@x.test"), (None, "jdoe@example.org"), ("Who?", "one@y.test")],
        ),
        (
            b'<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>',
            [(None, "boss@nil.test"), ('Giant; "Big" Box', "sysservices@example.net")],
        ),
        (
            b"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
            [("Ed Jones", "c@a.test"), (None, "joe@where.test"), ("John", "jdoe@one.test")],
        ),
        (b"Undisclosed recipients:;", []),
        (
            b"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [("Pete", "pete@silly.test")],
        ),
        (b"John Q. Public <john@example.com>", [("John Q. Public", "john@example.com")]),
        (b"=?utf-8?q?Ren=C3=A9?= <rene@example.fr>", [("René", "rene@example.fr")]),
        (b"just-a-name", [(None, "just-a-name")]),
        (b"<@a.test,@b.test:user@c.test>", [(None, "user@c.test")]),
        (b",,,", []),
        (b"", []),
    ],
)
def test_addresses_rfc_5322_appendix_a(raw: bytes, addresses: list[tuple[str | None, str]]) -> None:
    decoded = decoded_addresses(parse_address_list(raw))
    assert [(address.name, address.email) for address in decoded] == addresses
    assert all(isinstance(address, Address) for address in decoded)


def test_group_renders_with_nil_host_markers() -> None:
    raw = b"To: A Group:Ed Jones <c@a.test>,joe@where.test;\r\nFrom: x@y.z\r\n\r\n"
    assert parse_message(raw).envelope.endswith(
        b' ((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")'
        b"(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
    )


def test_sender_and_reply_to_default_to_from_even_when_empty() -> None:
    raw = b"From: a@b.c\r\nSender:\r\nReply-To:  \r\n\r\n"
    envelope = parse_message(raw).envelope
    assert envelope.count(b'((NIL NIL "a" "b.c"))') == 3


def test_eight_bit_header_values_are_sent_as_literals() -> None:
    raw = "Subject: Grüße\r\nFrom: Zoë <z@example.com>\r\n\r\n".encode()
    envelope = parse_message(raw).envelope
    assert envelope.startswith(b"(NIL {7}\r\nGr\xc3\xbc\xc3\x9fe (({4}\r\nZo\xc3\xab NIL ")


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: hello", "hello"),
        ("RE: Re: re:hello", "hello"),
        ("Fwd: Re: [list] hello", "hello"),
        ("[list] Re: hello (fwd)", "hello"),
        ("Re [2]: hello", "hello"),
        ("[fwd: Re: hello]", "hello"),
        ("[list]", "[list]"),
        ("  Hello   World  ", "hello world"),
        ("Fw: FWD: re:  Tab\there", "tab here"),
        ("Réponse: bonjour", "réponse: bonjour"),
        ("", ""),
    ],
)
def test_base_subject_rfc_5256(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_stray_quote_does_not_swallow_following_parameters() -> None:
    field = parse_content_field(b'multipart/related;\r\n\tt";\r\n\tboundary="abc"')
    assert field.get("boundary") == b"abc"


def test_last_occurrence_of_a_repeated_header_wins() -> None:
    raw = b"Subject: first\r\nSubject: second\r\n\r\n"
    parsed = parse_message(raw)
    assert parsed.subject == "second"
    assert parsed.envelope.startswith(b'(NIL "second" ')


def test_header_line_glued_to_an_address_list_stops_the_list() -> None:
    items = parse_address_list(b"you@exampleSubject: =?utf-8?q?x?=, other@example.com")
    assert [(item.local_part, item.domain) for item in items] == [(b"you", b"exampleSubject")]


def test_domain_stops_at_a_character_that_cannot_be_in_a_domain() -> None:
    items = parse_address_list(b"<tanaka@examp Subject:=?utf-8?B?w6k=?=")
    assert [(item.local_part, item.domain) for item in items] == [(b"tanaka", b"examp")]


def test_lone_carriage_return_in_a_header_becomes_a_space() -> None:
    assert parse_message(b"Subject: fold it\rCc\r\n\r\n").subject == "fold it Cc"


def test_a_long_header_value_is_cut_between_utf8_characters() -> None:
    """Regression: JMAP header values over 16 KB were cut at a byte count; a cut inside a
    UTF-8 sequence made the whole value decode as ISO-8859-1 ("Ã©" for "é")."""
    from hirondelle.mime import parse_message
    from hirondelle.mime.headers import decode_header_bytes
    from hirondelle.mime.jmap import MAX_HEADER_VALUE, header_value_prefix

    # Through the parse: the JMAP structure's header value (Email/get bodyStructure).
    # The raw value keeps its leading space: the first "é" straddles the limit.
    value = "x" * (MAX_HEADER_VALUE - 2) + "é" * 10
    raw = f"X-Long: {value}\r\nSubject: t\r\n\r\nbody\r\n".encode()
    fields = parse_message(raw).jmap_body_structure["headers"]
    long = next(field["value"] for field in fields if field["name"] == "X-Long")
    assert "Ã" not in long
    assert long.strip() == "x" * (MAX_HEADER_VALUE - 2)
    for width, character in ((2, "é"), (3, "€"), (4, "𝄞")):
        for offset in range(width):
            data = ("x" * (MAX_HEADER_VALUE - offset - 1) + character * 3).encode()
            cut = header_value_prefix(data)
            assert len(cut) <= MAX_HEADER_VALUE
            text = decode_header_bytes(cut)
            assert text == cut.decode("utf-8")  # still UTF-8, not ISO-8859-1
            assert text.rstrip(character) == "x" * (MAX_HEADER_VALUE - offset - 1)
    latin = b"caf\xe9 " * 5000
    assert decode_header_bytes(header_value_prefix(latin)).startswith("café café")


@given(st.text(min_size=0, max_size=40), st.integers(min_value=0, max_value=60))
def test_a_cut_header_value_is_a_prefix_that_decodes(text: str, limit: int) -> None:
    from hirondelle.mime.jmap import header_value_prefix

    raw = text.encode()
    cut = header_value_prefix(raw, limit)
    assert raw.startswith(cut) and len(cut) <= limit
    cut.decode("utf-8")  # never raises: whole characters only
    assert len(cut) >= min(len(raw), limit) - 3
