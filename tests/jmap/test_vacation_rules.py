"""The vacation responder's rules (RFC 3834, RFC 5230 §4) on arbitrary input: they never
raise, and the reply they build is a well-formed, automatic message."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mail import vacation
from hirondelle.mime import parse_message
from hirondelle.store.directory import Account
from hirondelle.store.vacation import Vacation

ACCOUNT = Account(
    id=1,
    domain_id=1,
    address="alice@example.test",
    display_name="Alice Été",
    password_hash=None,
    quota_bytes=None,
    used_bytes=0,
    switches={},
    disabled=False,
    save_sent_copy=False,
    modseq=0,
    journal_floor=0,
    credentials_version=0,
    created_at=0,
)

header_lines = st.lists(
    st.tuples(
        st.sampled_from(
            ["To", "Cc", "Resent-To", "List-Id", "Precedence", "Auto-Submitted", "Subject", "X-A"]
        ),
        st.text(max_size=40).map(lambda t: t.replace("\r", " ").replace("\n", " ")),
    ),
    max_size=6,
)


@given(header_lines, st.binary(max_size=200))
def test_rules_never_raise(headers: list[tuple[str, str]], body: bytes) -> None:
    raw = "".join(f"{n}: {v}\r\n" for n, v in headers).encode() + b"\r\n" + body
    parsed = parse_message(raw)
    automatic = vacation.is_automatic(parsed)
    visible = vacation.addressed_to(parsed, {"alice@example.test"})
    assert isinstance(automatic, bool) and isinstance(visible, bool)
    reply = vacation.build_reply(
        ACCOUNT, Vacation(is_enabled=True, text_body="Absent"), parsed, "bob@example.net"
    )
    built = parse_message(reply)
    assert built.auto_submitted == "auto-replied"
    assert [a.email for a in built.to] == ["bob@example.net"]


@given(st.text(max_size=60))
def test_robot_senders(address: str) -> None:
    result = vacation.is_robot_sender(address)
    if "@" not in address:
        assert result


def test_examples() -> None:
    assert vacation.is_robot_sender("")
    assert vacation.is_robot_sender("MAILER-DAEMON@example.net")
    assert vacation.is_robot_sender("owner-list@example.net")
    assert vacation.is_robot_sender("list-request@example.net")
    assert not vacation.is_robot_sender("bob@example.net")
    plain = parse_message(b"To: Alice+work <ALICE+work@Example.test>\r\n\r\nhi\r\n")
    assert vacation.addressed_to(plain, {"alice@example.test"})
    assert not vacation.is_automatic(plain)
    listed = parse_message(b"To: alice@example.test\r\nList-Post: <mailto:l@x>\r\n\r\n")
    assert vacation.is_automatic(listed)


# Every character str.splitlines breaks at, which the header generator refuses, mixed
# with the characters of ids and words.
weird = st.lists(
    st.sampled_from(
        [
            "0",
            "a",
            "@",
            "<",
            ">",
            " ",
            "é",
            "\x1c",
            "\x1d",
            "\x1e",
            "\x0b",
            "\x0c",
            "\x85",
            "\u2028",
            "\u2029",
        ]
    ),
    max_size=10,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(weird, weird, weird, weird)
def test_line_breaks_in_the_answered_message_never_break_the_reply(
    subject: str, message_id: str, reference: str, name: str
) -> None:
    raw = (
        f"From: {name} <bob@example.net>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}@example.net>\r\nReferences: <{reference}@x> <r@x>\r\n"
        "\r\nhi\r\n"
    ).encode()
    parsed = parse_message(raw)
    account = dataclasses.replace(ACCOUNT, display_name=f"Alice {name}")
    reply = vacation.build_reply(
        account, Vacation(is_enabled=True, text_body="Absent"), parsed, "bob@example.net"
    )
    header = reply.split(b"\r\n\r\n", 1)[0]
    for line in header.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line
    built = parse_message(reply)
    assert built.auto_submitted == "auto-replied"
    assert built.subject == vacation.one_line(f"Auto: {parsed.subject}")
    assert set(built.references) <= {*parsed.references, *parsed.message_id}
    if any(i.isascii() and i.isprintable() and " " not in i for i in parsed.message_id):
        # The answered message has a usable id: the reply threads (RFC 3834 §3.1.4).
        assert "r@x" in built.references


def test_an_id_with_a_record_separator_is_left_out() -> None:
    parsed = parse_message(
        b"Subject: 0\x1e0\r\nMessage-ID: <a\x1eb@c>\r\nReferences: <r@x>\r\n\r\nhi\r\n"
    )
    reply = parse_message(
        vacation.build_reply(ACCOUNT, Vacation(is_enabled=True), parsed, "bob@example.net")
    )
    assert reply.subject == "Auto: 0 0"
    assert reply.in_reply_to == ()
