"""Body text: transfer decoding, charsets, HTML reduction, preview, search text, and the
RFC 8621 §4.1.4 textBody/htmlBody/attachments algorithm."""

from __future__ import annotations

import pytest

from hirondelle.mime import parse_message
from hirondelle.mime.headers import decode_text
from hirondelle.mime.text import decode_transfer, html_to_text, make_preview


@pytest.mark.parametrize(
    ("data", "encoding", "decoded"),
    [
        (b"aGVsbG8=", "base64", b"hello"),
        (b"aGVs\r\nbG8=\r\n", "base64", b"hello"),
        (b"aGVsbG8", "base64", b"hello"),  # missing padding
        (b"aGV!!sbG8=garbage", "base64", b"hello"),  # junk and data after padding
        (b"aGVsbG8gd", "base64", b"hello "),  # a dangling sextet is dropped
        (b"caf=C3=A9 soft=\r\nbreak", "quoted-printable", "café softbreak".encode()),
        (b"=ZZ bad escape", "quoted-printable", b"=ZZ bad escape"),
        (b"as is", "x-uuencode", b"as is"),
    ],
)
def test_transfer_decoding_is_lenient(data: bytes, encoding: str, decoded: bytes) -> None:
    assert decode_transfer(data, encoding) == decoded


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("été".encode("latin-1"), "iso-8859-1", "été"),
        (b"\x80", "iso-8859-1", "€"),  # labelled Latin-1, written in Windows-1252
        ("Привет".encode("koi8-r"), "KOI8-R", "Привет"),
        ("日本".encode("cp932"), "shift_jis", "日本"),
        ("你好".encode("gb18030"), "gb2312", "你好"),
        ("été".encode(), "x-unknown", "été"),
        ("été".encode("latin-1"), "x-unknown", "été"),
        (b"abc", "base64", "abc"),  # a bytes-to-bytes codec is not a charset
        (b"abc", "undefined", "abc"),
        (b"a\x00b", "utf-8", "ab"),
        (b"\xff", "utf-8", "\ufffd"),
    ],
)
def test_charset_decoding_never_raises(data: bytes, charset: str, text: str) -> None:
    assert decode_text(data, charset) == text


def test_html_is_reduced_to_text() -> None:
    markup = (
        "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style>"
        "<script>var a = '<p>not text</p>';</script></head><body><!-- hidden -->"
        "<P>First&nbsp;paragraph</P><div>Second<br>line</div>"
        "<table><tr><td>a</td><td>b</td></tr></table><SCRIPT>x()</SCRIPT>&lt;tag&gt; &#233;"
        "</body></html>"
    )
    assert html_to_text(markup) == "First paragraph\n\nSecond\nline\n\na b\n\n<tag> é"


def test_html_reduction_survives_unclosed_constructs() -> None:
    assert html_to_text("before<script>never closed") == "before"
    assert html_to_text("a<!-- unclosed comment") == "a"
    assert html_to_text("x<b") == "x<b" or html_to_text("x<b") == "x"
    assert html_to_text("İ<style>x</style>y") == "İy"  # str.lower() would shift offsets


def test_preview_is_collapsed_and_capped() -> None:
    assert make_preview("  a \n\n b\t c  ") == "a b c"
    assert len(make_preview("word " * 200)) <= 256


def test_preview_and_search_text_from_html_only_message() -> None:
    raw = (
        b"Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>.x{}</style></head><body><p>Hello <b>there</b></p></body></html>"
    )
    parsed = parse_message(raw)
    assert parsed.preview == "Hello there"
    assert parsed.search_text == "Hello there"


def test_search_text_includes_attachment_names_and_attached_subjects() -> None:
    raw = (
        b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nouter text\r\n"
        b"--b\r\nContent-Type: application/pdf; name=report.pdf\r\n\r\n%PDF\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: =?utf-8?q?inner_subj=C3=A9?=\r\n\r\ninner text\r\n"
        b"--b--\r\n"
    )
    text = parse_message(raw).search_text
    for expected in ("outer text", "report.pdf", "inner subjé", "inner text"):
        assert expected in text
    assert "%PDF" not in text


def leaf(media_type: str, body: str = "x", extra: str = "") -> str:
    return f"Content-Type: {media_type}\r\n{extra}\r\n{body}"


def multipart(subtype: str, boundary: str, *parts: str) -> str:
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return f"Content-Type: multipart/{subtype}; boundary={boundary}\r\n\r\n{inner}--{boundary}--"


def test_rfc_8621_body_classification_example() -> None:
    """RFC 8621 §4.1.4: the example structure and its textBody/htmlBody/attachments."""
    structure = multipart(
        "mixed",
        "m0",
        leaf("text/plain"),  # A = 1
        multipart(
            "alternative",
            "a1",
            multipart(
                "mixed",
                "m2",
                leaf("text/plain"),  # B = 2
                leaf("image/jpeg"),  # C = 3
                leaf("text/plain"),  # D = 4
            ),
            multipart(
                "related",
                "r3",
                leaf("text/html"),  # E = 5
                leaf("image/jpeg"),  # F = 6
            ),
        ),
        leaf("image/jpeg", extra="Content-Disposition: attachment\r\n"),  # G = 7
        leaf("application/x-excel"),  # H = 8
        leaf("message/rfc822", "Subject: j\r\n\r\nj"),  # J = 9
        leaf("text/plain"),  # K = 10
    )
    parsed = parse_message(("Subject: rfc 8621\r\n" + structure).encode())
    assert parsed.text_body == ("1", "2", "3", "4", "10")
    assert parsed.html_body == ("1", "5", "10")
    assert parsed.attachments == ("3", "6", "7", "8", "9")
    assert parsed.has_attachment


def test_jmap_body_part_properties() -> None:
    raw = (
        b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Language: fr, en\r\n\r\nbonjour\r\n"
        b"--b\r\nContent-Type: image/png; name=ignored.png\r\nContent-ID: <img1@x>\r\n"
        b"Content-Disposition: INLINE; filename*=utf-8''%C3%A9t%C3%A9.png\r\n"
        b"Content-Location: http://example.com/i.png\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
        b"--b--\r\n"
    )
    structure = parse_message(raw).jmap_body_structure
    assert structure["partId"] is None and structure["type"] == "multipart/mixed"
    text, image = structure["subParts"]
    assert (text["partId"], text["section"], text["charset"], text["language"]) == (
        "1",
        "1",
        "us-ascii",
        ["fr", "en"],
    )
    assert text["headers"] == [
        {"name": "Content-Type", "value": " text/plain"},
        {"name": "Content-Language", "value": " fr, en"},
    ]
    assert image["name"] == "été.png"
    assert image["disposition"] == "inline"
    assert image["cid"] == "img1@x"
    assert image["location"] == "http://example.com/i.png"
    assert image["size"] == 5
    assert image["charset"] is None
    assert image["subParts"] is None


def test_extra_fields_for_vacation_and_lists() -> None:
    raw = (
        b"Subject: s\r\nList-Id: Users <users.example.org>\r\nAuto-Submitted: auto-replied\r\n"
        b"X-Folded: a\r\n b\r\n\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.list_id == "users.example.org"
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.headers[-1] == ("X-Folded", " a\r\n b")
    assert parse_message(b"Precedence: bulk\r\n\r\n").auto_submitted == "bulk"
    assert parse_message(b"Auto-Submitted: no\r\n\r\n").auto_submitted is None


# -- whitespace and dropped elements (made linear and C-speed for delivery, issue 3) -------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hirondelle.mime.text import collapse_whitespace  # noqa: E402

_SPACEY_TEXT = st.text(alphabet=st.sampled_from(list("ab é\t\n\r\x0b\x0c\u00a0\u2003\u3000\x1c")))


@given(_SPACEY_TEXT, st.integers(min_value=0, max_value=40))
def test_collapse_with_a_limit_is_the_limited_collapse_of_the_whole(text: str, limit: int) -> None:
    whole = collapse_whitespace(text)
    assert whole == " ".join(text.split())
    expected = whole[:limit].rstrip() if len(whole) > limit else whole
    assert collapse_whitespace(text, limit) == expected


def test_collapse_with_a_limit_skips_leading_blank_space() -> None:
    """The old preview collapsed only the first 2,048 characters: a body starting with
    more blank space than that had an empty preview."""
    assert make_preview(" \n" * 5000 + "Hello   there") == "Hello there"


_DROPPED = ("head", "script", "style", "title", "template", "noscript")
_PLAIN = st.text(alphabet=st.sampled_from(list("ab <>/é\n")), max_size=12).filter(
    lambda text: "<" not in text
)


@given(
    st.lists(
        st.tuples(
            _PLAIN,
            st.sampled_from(_DROPPED),
            st.sampled_from([str.lower, str.upper, str.title]),
            st.text(alphabet=st.sampled_from(list("ab </>\"'é")), max_size=12),
        ),
        max_size=6,
    ),
    _PLAIN,
)
def test_dropped_elements_leave_exactly_the_text_around_them(
    pieces: list[tuple[str, str, object, str]], tail: str
) -> None:
    from hirondelle.mime.text import _drop_elements

    markup = ""
    kept = ""
    for text, name, case, inner in pieces:
        assert callable(case)
        opening, closing = case("<" + name + ">"), case("</" + name + " >")
        inner = inner.replace("</", "<")  # the content does not close the element itself
        markup += text + opening + inner + closing
        kept += text
    assert _drop_elements(markup + tail) == kept + tail


def test_dropped_element_names_are_whole_words() -> None:
    assert html_to_text("<headline>News</headline><HEAD><TITLE>t</TITLE></HEAD>x") == "Newsx"
