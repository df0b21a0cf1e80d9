"""iMIP (RFC 6047): the email built for an iTIP message, and incoming ones read, checked
and refused when malformed or spoofed (with hypothesis on malformed input)."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.errors import Reason, Refused
from hirondelle.groupware import imip, itip
from hirondelle.groupware.itip import Method
from hirondelle.mail.verification import Verifier

from .test_itip import ALICE, BOB, CAROL, event

HOST = "mail.example.test"


def request_for(address: str = CAROL) -> itip.ItipMessage:
    new = event(
        attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"},
        extra="LOCATION:Salle Marie Curie",
    )
    return next(
        m for m in itip.organizer_messages(None, new, organizer=ALICE) if m.recipients == (address,)
    )


def test_request_email_has_the_parts_clients_act_on() -> None:
    raw = imip.build_message(request_for(), recipients=[CAROL], hostname=HOST, sender_name="Alice")
    assert b"\r\n" in raw and not re.search(rb"[^\r]\n", raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].addr_spec == ALICE
    assert parsed["To"] == CAROL
    assert parsed["Message-ID"].endswith(f"@{HOST}>")
    assert parsed["Date"]
    assert parsed["Subject"] == "Invitation : Réunion budget"
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, calendar_part = alternative.iter_parts()
    assert text.get_content_type() == "text/plain"
    body = text.get_content()
    # French and English, the time in the event's zone, the place, the organizer.
    for expected in (
        "Vous êtes invité(e) : Réunion budget",
        "You are invited: Réunion budget",
        "Quand : mardi 1 décembre 2026 14:00 – 15:00 (Europe/Paris)",
        "When: Tuesday 1 December 2026 14:00 – 15:00 (Europe/Paris)",
        "Où : Salle Marie Curie",
        "Where: Salle Marie Curie",
        f"Organisateur : Alice <{ALICE}>",
        "Accept / Maybe / Decline",
    ):
        assert expected in body
    assert calendar_part.get_content_type() == "text/calendar"
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    ics = calendar_part.get_content()
    assert "METHOD:REQUEST" in ics and "UID:meeting-1" in ics
    assert attachment.get_content().decode() == ics


def test_built_messages_parse_back() -> None:
    for message in itip.organizer_messages(
        event(attendees={BOB: "ACCEPTED", CAROL: "NEEDS-ACTION"}),
        event(attendees={CAROL: "NEEDS-ACTION"}, start="20261202T090000"),
        organizer=ALICE,
    ):
        raw = imip.build_message(message, recipients=message.recipients, hostname=HOST)
        incoming = imip.parse_message(raw)
        assert incoming is not None
        assert (incoming.method, incoming.originator, incoming.uid) == (
            message.method,
            ALICE,
            "meeting-1",
        )
        imip.check_originator(incoming, raw, authserv_id=HOST)
    assert {m.method for m in itip.organizer_messages(event(), None, organizer=ALICE)} == {
        Method.CANCEL
    }


def test_reply_email_and_its_originator_check() -> None:
    reply = itip.attendee_reply(event(), event(attendees={BOB: "ACCEPTED"}), attendee=BOB)
    assert reply is not None
    raw = imip.build_message(reply, recipients=[ALICE], hostname=HOST)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == f"{BOB} a accepté / accepted: Réunion budget"
    incoming = imip.parse_message(raw)
    assert incoming is not None and incoming.method is Method.REPLY
    imip.check_originator(incoming, raw, authserv_id=HOST)
    # Carol cannot answer for Bob.
    forged = raw.replace(f"From: {BOB}".encode(), f"From: {CAROL}".encode(), 1)
    forged_incoming = imip.parse_message(forged)
    assert forged_incoming is not None
    with pytest.raises(Refused) as refused:
        imip.check_originator(forged_incoming, forged, authserv_id=HOST)
    assert refused.value.reason is Reason.FORBIDDEN


def test_request_from_someone_else_than_the_organizer_is_refused() -> None:
    raw = imip.build_message(request_for(), recipients=[CAROL], hostname=HOST)
    forged = raw.replace(f"From: {ALICE}".encode(), b"From: mallory@evil.test", 1)
    incoming = imip.parse_message(forged)
    assert incoming is not None
    with pytest.raises(Refused, match="organizer"):
        imip.check_originator(incoming, forged, authserv_id=HOST)


class Dns:
    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records

    def txt(self, name: str) -> list[bytes]:
        return [v.encode() for v in self.records.get(name.lower(), [])]

    def addresses(self, name: str, family: str) -> list[str]:
        return []

    def mx(self, name: str) -> list[tuple[int, str]]:
        return []

    def ptr(self, address: str) -> list[str]:
        return []


@pytest.mark.parametrize(
    ("spf", "accepted"),
    [("v=spf1 ip4:192.0.2.1 -all", True), ("v=spf1 -all", False)],
)
async def test_originator_domain_must_pass_our_mx_checks(spf: str, accepted: bool) -> None:
    """The headers our MX writes decide: an unauthenticated author's domain is refused."""
    reply = itip.attendee_reply(
        event(attendees={CAROL: "NEEDS-ACTION"}),
        event(attendees={CAROL: "ACCEPTED"}),
        attendee=CAROL,
    )
    assert reply is not None
    raw = imip.build_message(reply, recipients=[ALICE], hostname="mx.remote.test")
    dns = Dns({"remote.test": [spf], "_dmarc.remote.test": ["v=DMARC1; p=none"]})
    verdict = await Verifier(dns, authserv_id=HOST).verify(
        raw, client_ip="192.0.2.1", helo="mx.remote.test", mail_from=CAROL
    )
    received = f"Authentication-Results: {verdict.header}\r\n".encode() + raw
    incoming = imip.parse_message(received)
    assert incoming is not None
    assert imip.authenticated_domain(received, authserv_id=HOST, domain="remote.test") is accepted
    if accepted:
        imip.check_originator(incoming, received, authserv_id=HOST)
    else:
        with pytest.raises(Refused, match="not authenticated"):
            imip.check_originator(incoming, received, authserv_id=HOST)
    # Another server's results (another authserv-id) count for nothing.
    assert imip.authenticated_domain(received, authserv_id="other.test", domain="remote.test") is (
        None
    )


def test_plain_mail_has_no_itip() -> None:
    raw = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: hi\r\n\r\nhello\r\n"
    assert imip.parse_message(raw) is None
    # A .ics attachment without a method is a file, not an iTIP message (RFC 6047 §2.4).
    raw = (
        b"From: a@b.test\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    )
    assert imip.parse_message(raw) is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not a calendar", "invalid iCalendar"),
        (b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n", "differ"),
        (b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n", "no VEVENT"),
        (
            b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1\r\n"
            b"DTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "ORGANIZER",
        ),
        (
            b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\n"
            b"BEGIN:VEVENT\r\nUID:2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "exactly one UID",
        ),
    ],
)
def test_malformed_itip_is_refused_precisely(body: bytes, why: str) -> None:
    raw = b"From: a@b.test\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + body
    with pytest.raises(Refused, match=why):
        imip.parse_message(raw)


def _check(raw: bytes) -> None:
    try:
        incoming = imip.parse_message(raw)
    except Refused:
        return
    if incoming is not None:
        with pytest.raises(Refused):
            # None of the generated messages is from its organizer/attendee.
            imip.check_originator(incoming, raw, authserv_id=HOST)


SEED = imip.build_message(request_for(), recipients=[CAROL], hostname=HOST)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check(b"From: x@y.test\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + data)
    _check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_invitations_never_crash(data: st.DataObject) -> None:
    """A real invitation with bytes flipped, cut or inserted: refused or read, never an
    exception other than Refused."""
    raw = bytearray(SEED.replace(f"From: {ALICE}".encode(), b"From: x@y.test", 1))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[position : position + data.draw(st.integers(1, 200))]
        else:
            raw[position:position] = data.draw(
                st.sampled_from([b"\r\n", b"=", b";", b"BEGIN:VEVENT\r\n", b"\x00", b"\xff"])
            )
        if not raw:
            raw = bytearray(b"x")
    _check(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"]),
        max_size=80,
    ),
    st.sampled_from(["REQUEST", "REPLY", "CANCEL", "PUBLISH", "", "request"]),
)
def test_hostile_property_values_never_crash(value: str, method: str) -> None:
    text = (
        "BEGIN:VCALENDAR\r\n"
        f"METHOD:{method}\r\n"
        "BEGIN:VEVENT\r\n"
        "UID:u\r\n"
        f"DTSTART:{value}\r\n"
        f"ORGANIZER:{value}\r\n"
        f"ATTENDEE;PARTSTAT={value}:mailto:{value}\r\n"
        f"RECURRENCE-ID:{value}\r\n"
        "END:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    raw = (
        f"From: x@y.test\r\nContent-Type: text/calendar; method={method or 'X'}; charset=utf-8"
        "\r\n\r\n"
    ).encode() + text.encode("utf-8")
    _check(raw)
