"""Helpers for dav-core's tests: requests that assert their expected status (so a test
cannot pass on a refusal it did not ask for), and iCalendar/vCard samples.

The running node is ``dav_node`` of :mod:`tests.dav.interop_helpers` (https on a free
port, account ``ALICE``, fails the test if the server logged an error).
"""

from __future__ import annotations

from xml.etree import ElementTree

import httpx

from tests.dav.interop_helpers import ALICE, CALDAV, CARDDAV, DAV


def home(address: str = ALICE) -> str:
    """The home as the server writes it in hrefs ("@" is not escaped)."""
    return f"/dav/{address}/"


CAL = home(ALICE) + "Calendar/"
CONTACTS = home(ALICE) + "Contacts/"
XML = {"Content-Type": "application/xml; charset=utf-8"}


def event(
    uid: str,
    *,
    start: str = "20260105T100000Z",
    end: str = "20260105T110000Z",
    rrule: str | None = None,
    extra: str = "",
    summary: str = "Réunion",
    component: str = "VEVENT",
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//dav-core//EN",
        f"BEGIN:{component}",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{start}",
    ]
    if component == "VEVENT":
        lines.append(f"DTEND:{end}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines.append(f"SUMMARY:{summary}")
    if extra:
        lines.extend(extra.strip().splitlines())
    lines += [f"END:{component}", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def card(
    uid: str, name: str = "Jean Dupont", *, email: str = "jean@example.test", version: str = "3.0"
) -> str:
    family, given = name.split(" ", 1)[-1], name.split(" ", 1)[0]
    return "\r\n".join(
        [
            "BEGIN:VCARD",
            f"VERSION:{version}",
            f"UID:{uid}",
            f"FN:{name}",
            f"N:{family};{given};;;",
            f"EMAIL;TYPE=work:{email}",
            "END:VCARD",
            "",
        ]
    )


def expect(response: httpx.Response, status: int) -> httpx.Response:
    assert response.status_code == status, (response.status_code, response.text[:2000])
    return response


def put(
    client: httpx.Client,
    path: str,
    body: str,
    *,
    status: int = 201,
    content_type: str = "text/calendar; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return expect(
        client.put(
            path, content=body.encode(), headers={"Content-Type": content_type, **(headers or {})}
        ),
        status,
    )


def request(
    client: httpx.Client,
    method: str,
    path: str,
    body: str = "",
    *,
    status: int,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return expect(
        client.request(method, path, content=body.encode(), headers={**XML, **(headers or {})}),
        status,
    )


def error_condition(response: httpx.Response) -> str:
    """The Clark name of the precondition inside a DAV:error body."""
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{{{DAV}}}error", response.text
    return root[0].tag


def hrefs(body: bytes) -> list[str]:
    root = ElementTree.fromstring(body)
    return [r.findtext(f"{{{DAV}}}href", "") for r in root.findall(f"{{{DAV}}}response")]


def calendar_query(filter_xml: str, props: str = "<d:getetag/>") -> str:
    return (
        f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
        f"<d:prop>{props}</d:prop><c:filter>{filter_xml}</c:filter></c:calendar-query>"
    )


def time_range_filter(start: str, end: str, component: str = "VEVENT") -> str:
    return (
        f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="{component}">'
        f'<c:time-range start="{start}" end="{end}"/></c:comp-filter></c:comp-filter>'
    )


def addressbook_query(filter_xml: str, props: str = "<d:getetag/>", test: str = "anyof") -> str:
    return (
        f'<card:addressbook-query xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
        f'<d:prop>{props}</d:prop><card:filter test="{test}">{filter_xml}</card:filter>'
        "</card:addressbook-query>"
    )


def sync_collection(token: str = "", props: str = "<d:getetag/>", limit: int | None = None) -> str:
    limit_xml = f"<d:limit><d:nresults>{limit}</d:nresults></d:limit>" if limit else ""
    return (
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
        f"<d:sync-level>1</d:sync-level>{limit_xml}<d:prop>{props}</d:prop></d:sync-collection>"
    )
