"""iMIP round trips (RFC 6047) between a local user and an "external" one, through the
real SMTP path: the organizer PUTs over CalDAV (HTTPS), our outbound queue delivers to a
fake remote MX, the remote's answer comes to our MX listener (SPF checked against a DNS
table) and the result is read back over CalDAV. Both backends."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import dkim
import httpx
import pytest

from hirondelle import tls
from hirondelle.config import Endpoint
from hirondelle.groupware import itip
from hirondelle.groupware.service import DEFAULT_CALENDAR, SCHEDULE_INBOX
from hirondelle.mail import dkim as dkim_keys
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.queue import QueueWorker, Route, StaticRouter
from hirondelle.node import FRONT_ENDS, ListenerContext, bind
from hirondelle.services import Services
from hirondelle.store.directory import Account
from tests.smtp import conftest as smtp_fixtures
from tests.smtp.conftest import (
    PASSWORD,
    DnsTable,
    FakeMX,
    Servers,
    mailbox_messages,
    make_account,
)

# The SMTP tests' fixtures: the four listeners, their DNS table, a fake remote MX.
servers = smtp_fixtures.servers
dns_table = smtp_fixtures.dns_table
fake_mx = smtp_fixtures.fake_mx

ALICE = "alice@example.test"
CAROL = "carol@remote.test"
DAVE = "dave@remote.test"

ORGANIZER_EVENT = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:imip-1@example.test\r
DTSTAMP:20261122T100000Z\r
DTSTART;TZID=Europe/Paris:20261201T140000\r
DTEND;TZID=Europe/Paris:20261201T150000\r
SUMMARY:Comité de pilotage\r
LOCATION:Salle 2\r
ORGANIZER;CN=Alice:mailto:alice@example.test\r
ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test\r
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Carol:mailto:carol@remote.test\r
END:VEVENT\r
END:VCALENDAR\r
"""


def remote_mail(*, sender: str, to: str, method: str, ics: str, subject: str) -> bytes:
    """An iMIP message as another server's client writes it (Gmail's shape)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{method.lower()}-1@remote.test>"
    message["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
    message.set_content("See the invitation / voir l'invitation")
    message.add_alternative(ics, subtype="calendar", params={"method": method})
    return message.as_bytes()


async def send_to_mx(port: int, raw: bytes, *, mail_from: str, rcpt: str) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    try:
        errors, reply = await client.sendmail(mail_from, [rcpt], raw)
        assert not errors and reply.startswith("2")
    finally:
        await client.quit()


def worker(services: Services, fake: FakeMX) -> QueueWorker:
    return QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
        router=StaticRouter({"remote.test": [Route("127.0.0.1", fake.port)]}),
    )


async def calendar_text(services: Services, account: Account, collection: str, name: str) -> str:
    found = await services.groupware.collection(account.id, collection)
    assert found is not None
    resource = await services.groupware.get(found, name)
    assert resource is not None, f"{collection}/{name} missing"
    return resource.data


def attendee(text: str, address: str) -> dict[str, str]:
    component = itip.scheduling_components(itip.parse(text))[0]
    line = itip.find_attendee(component, address)
    assert line is not None
    return {str(k): str(v) for k, v in line.params.items()}


@pytest.fixture
def remote_spf(dns_table: DnsTable) -> DnsTable:
    """remote.test sends from 127.0.0.1 (where the test's SMTP client connects from)."""
    dns_table.add("remote.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    return dns_table


@pytest.fixture
async def caldav(services: Services, servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTPS listener of the same services (the CalDAV front end), and a client of it
    logged in as Alice (created by the test)."""
    sock = bind(Endpoint("127.0.0.1", 0))
    context = ListenerContext(
        name="https",
        sock=sock,
        services=services,
        tls=tls.server_context_from_settings(services.settings),
        implicit_tls=True,
        addresses={},
    )
    listener = await FRONT_ENDS["https"].start(context)
    client = httpx.AsyncClient(
        base_url=f"https://localhost:{listener.port}",
        auth=(ALICE, PASSWORD),
        verify=servers.client_tls(),
        timeout=30,
    )
    try:
        yield client
    finally:
        await client.aclose()
        await listener.stop()


ALICE_EVENT = f"/dav/{ALICE}/Calendar/pilotage.ics"


async def invite_carol(
    services: Services, fake_mx: FakeMX, caldav: httpx.AsyncClient
) -> tuple[Account, EmailMessage]:
    alice = await make_account(services, ALICE)
    response = await caldav.put(
        ALICE_EVENT,
        content=ORGANIZER_EVENT.encode(),
        headers={"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"},
    )
    assert response.status_code == 201, response.text
    assert await worker(services, fake_mx).run_once() == 1
    [envelope] = fake_mx.received
    assert envelope.mail_from == ALICE and envelope.rcpt_tos == [CAROL]
    content = envelope.original_content
    assert isinstance(content, bytes)
    received = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    return alice, received


async def test_external_attendee_gets_a_request_and_her_reply_updates_the_event(
    services: Services,
    servers: Servers,
    fake_mx: FakeMX,
    remote_spf: DnsTable,
    caldav: httpx.AsyncClient,
) -> None:
    alice, received = await invite_carol(services, fake_mx, caldav)
    # What Carol's mail client sees.
    assert received["From"].addresses[0].addr_spec == ALICE
    assert "Comité de pilotage" in received["Subject"]
    parts = {part.get_content_type(): part for part in received.walk()}
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    text = parts["text/plain"].get_content()
    assert "Quand : mardi 1 décembre 2026 14:00 – 15:00 (Europe/Paris)" in text
    assert "When: Tuesday 1 December 2026 14:00 – 15:00 (Europe/Paris)" in text
    request = itip.parse(parts["text/calendar"].get_content())
    assert str(request["METHOD"]) == "REQUEST"
    # Sent, not yet delivered: SCHEDULE-STATUS 1.1 on Alice's copy.
    organizer_copy = await calendar_text(services, alice, DEFAULT_CALENDAR, "pilotage.ics")
    assert attendee(organizer_copy, CAROL)["SCHEDULE-STATUS"] == "1.1"

    # Carol accepts from her own server.
    component = itip.scheduling_components(request)[0]
    reply_ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//remote//EN\r\nMETHOD:REPLY\r\n"
        "BEGIN:VEVENT\r\n"
        f"UID:{component['UID']}\r\nDTSTAMP:20261122T120000Z\r\n"
        f"SEQUENCE:{itip.sequence(component)}\r\n"
        f"ORGANIZER:mailto:{ALICE}\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED;CN=Carol:mailto:{CAROL}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    raw = remote_mail(
        sender=f"Carol <{CAROL}>",
        to=ALICE,
        method="REPLY",
        ics=reply_ics,
        subject="Accepted: Comité de pilotage",
    )
    await send_to_mx(servers.mx, raw, mail_from=CAROL, rcpt=ALICE)

    response = await caldav.get(ALICE_EVENT)
    assert response.status_code == 200
    assert attendee(response.text, CAROL)["PARTSTAT"] == "ACCEPTED"
    inbox = await calendar_text(services, alice, SCHEDULE_INBOX, "imip-1@example.test.ics")
    assert "METHOD:REPLY" in inbox
    # The mail itself is in Alice's Inbox too.
    assert any(b"<reply-1@remote.test>" in m for m in await mailbox_messages(services, alice))


@pytest.mark.parametrize("forgery", ["other-attendee", "spf-fail"])
async def test_spoofed_reply_changes_nothing(
    services: Services,
    servers: Servers,
    fake_mx: FakeMX,
    dns_table: DnsTable,
    caldav: httpx.AsyncClient,
    forgery: str,
) -> None:
    dns_table.add("remote.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add("evil.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    alice, _ = await invite_carol(services, fake_mx, caldav)
    if forgery == "other-attendee":
        # Authenticated for its own domain, but not Carol: may not answer for her.
        sender, mail_from = "mallory@evil.test", "mallory@evil.test"
    else:
        # Claims to be Carol from an address remote.test's SPF does not allow.
        sender, mail_from = CAROL, CAROL
    reply_ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//remote//EN\r\nMETHOD:REPLY\r\n"
        "BEGIN:VEVENT\r\nUID:imip-1@example.test\r\nDTSTAMP:20261122T120000Z\r\n"
        f"ORGANIZER:mailto:{ALICE}\r\nATTENDEE;PARTSTAT=DECLINED:mailto:{CAROL}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    raw = remote_mail(sender=sender, to=ALICE, method="REPLY", ics=reply_ics, subject="Declined")
    await send_to_mx(servers.mx, raw, mail_from=mail_from, rcpt=ALICE)
    organizer_copy = await calendar_text(services, alice, DEFAULT_CALENDAR, "pilotage.ics")
    assert attendee(organizer_copy, CAROL)["PARTSTAT"] == "NEEDS-ACTION"
    # Still delivered as mail, for the user to judge.
    assert any(b"Subject: Declined" in m for m in await mailbox_messages(services, alice))


async def test_external_invitation_reaches_inbox_and_calendar_and_accepting_replies(
    services: Services,
    servers: Servers,
    fake_mx: FakeMX,
    remote_spf: DnsTable,
    caldav: httpx.AsyncClient,
) -> None:
    alice = await make_account(services, ALICE)
    request_ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//remote//EN\r\nMETHOD:REQUEST\r\n"
        "BEGIN:VEVENT\r\nUID:remote-meeting-7\r\nDTSTAMP:20261122T120000Z\r\n"
        "DTSTART:20261203T090000Z\r\nDTEND:20261203T100000Z\r\nSEQUENCE:0\r\n"
        "SUMMARY:Point hebdo\r\n"
        f"ORGANIZER;CN=Dave:mailto:{DAVE}\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{DAVE}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ALICE}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    raw = remote_mail(
        sender=DAVE, to=ALICE, method="REQUEST", ics=request_ics, subject="Invitation: Point"
    )
    await send_to_mx(servers.mx, raw, mail_from=DAVE, rcpt=ALICE)

    inbox = await caldav.get(f"/dav/{ALICE}/Inbox/remote-meeting-7.ics")
    assert inbox.status_code == 200 and "METHOD:REQUEST" in inbox.text
    response = await caldav.get(f"/dav/{ALICE}/Calendar/remote-meeting-7.ics")
    assert response.status_code == 200
    assert "METHOD" not in response.text
    assert attendee(response.text, ALICE)["PARTSTAT"] == "NEEDS-ACTION"

    # Alice accepts in her calendar client: Dave gets a REPLY by mail.
    calendar = itip.parse(response.text)
    line = itip.find_attendee(itip.scheduling_components(calendar)[0], ALICE)
    assert line is not None
    line.params["PARTSTAT"] = "ACCEPTED"
    put = await caldav.put(
        f"/dav/{ALICE}/Calendar/remote-meeting-7.ics",
        content=calendar.to_ical(),
        headers={"Content-Type": "text/calendar", "If-Match": response.headers["ETag"]},
    )
    assert put.status_code == 204, put.text
    assert await worker(services, fake_mx).run_once() == 1
    [envelope] = fake_mx.received
    assert envelope.mail_from == ALICE and envelope.rcpt_tos == [DAVE]
    content = envelope.original_content
    assert isinstance(content, bytes)
    message = email.message_from_bytes(content, policy=email.policy.default)
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REPLY"
    reply = itip.parse(part.get_content())
    answer = itip.scheduling_components(reply)[0]
    assert [itip.address_of(a) for a in itip.attendee_lines(answer)] == [ALICE]
    assert itip.partstat(itip.attendee_lines(answer)[0]) == "ACCEPTED"
    # Alice's copy records that the reply went out (RFC 6638 §3.2.9).
    copy = await calendar_text(services, alice, DEFAULT_CALENDAR, "remote-meeting-7.ics")
    assert "SCHEDULE-STATUS=1.1" in copy


async def test_external_cancel_marks_the_copy_cancelled_but_not_from_someone_else(
    services: Services,
    servers: Servers,
    fake_mx: FakeMX,
    remote_spf: DnsTable,
    caldav: httpx.AsyncClient,
) -> None:
    await make_account(services, ALICE)
    event = (
        "BEGIN:VEVENT\r\nUID:remote-meeting-8\r\nDTSTAMP:20261122T120000Z\r\n"
        "DTSTART:20261203T090000Z\r\nDTEND:20261203T100000Z\r\nSEQUENCE:{seq}\r\n"
        "SUMMARY:Point mensuel\r\n{status}"
        f"ORGANIZER:mailto:{DAVE}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ALICE}\r\n"
        "END:VEVENT\r\n"
    )

    def ics(method: str, seq: int, status: str = "") -> str:
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//remote//EN\r\n"
            f"METHOD:{method}\r\n{event.format(seq=seq, status=status)}END:VCALENDAR\r\n"
        )

    request = remote_mail(
        sender=DAVE, to=ALICE, method="REQUEST", ics=ics("REQUEST", 0), subject="x"
    )
    await send_to_mx(servers.mx, request, mail_from=DAVE, rcpt=ALICE)
    # Carol (authenticated for remote.test, but not the organizer) cannot cancel it.
    forged = remote_mail(
        sender=CAROL,
        to=ALICE,
        method="CANCEL",
        ics=ics("CANCEL", 1, "STATUS:CANCELLED\r\n"),
        subject="y",
    )
    await send_to_mx(servers.mx, forged, mail_from=CAROL, rcpt=ALICE)
    response = await caldav.get(f"/dav/{ALICE}/Calendar/remote-meeting-8.ics")
    assert response.status_code == 200 and "CANCELLED" not in response.text
    # Dave can.
    cancel = remote_mail(
        sender=DAVE,
        to=ALICE,
        method="CANCEL",
        ics=ics("CANCEL", 1, "STATUS:CANCELLED\r\n"),
        subject="z",
    )
    await send_to_mx(servers.mx, cancel, mail_from=DAVE, rcpt=ALICE)
    response = await caldav.get(f"/dav/{ALICE}/Calendar/remote-meeting-8.ics")
    assert response.status_code == 200 and "STATUS:CANCELLED" in response.text
    inbox = await caldav.get(f"/dav/{ALICE}/Inbox/remote-meeting-8.ics")
    assert "METHOD:CANCEL" in inbox.text


async def test_the_invitation_email_is_dkim_signed_for_the_organizers_domain(
    services: Services,
    servers: Servers,
    fake_mx: FakeMX,
    caldav: httpx.AsyncClient,
) -> None:
    """iMIP leaves through the submission rules: signed, so that the remote MX's DMARC
    check passes (the reverse of what our own MX asks of an incoming REPLY)."""
    keys = await DkimService(services.database).generate("example.test", stamp="s1")
    records = dict(dkim_keys.dns_record(key) for key in keys)
    await invite_carol(services, fake_mx, caldav)
    [envelope] = fake_mx.received
    assert isinstance(envelope.original_content, bytes)
    raw = envelope.original_content

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        record = records.get(name.decode().rstrip("."))
        return record.encode() if record else None

    verifier = dkim.DKIM(raw[raw.index(b"DKIM-Signature") :])
    assert verifier.verify(idx=0, dnsfunc=lookup)
    assert verifier.verify(idx=1, dnsfunc=lookup)
