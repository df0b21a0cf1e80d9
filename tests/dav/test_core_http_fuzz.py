"""Hostile requests over real HTTPS (hypothesis): whatever the method, path, headers and
body, the server answers a 2xx-4xx (or 501) and logs no error (the ``dav_node`` fixture
fails the test on any logged error)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dav.core_helpers import CAL, CONTACTS, event, home, put
from tests.dav.interop_helpers import DavNode, dav_node

__all__ = ["dav_node"]

METHODS = [
    "PROPFIND",
    "PROPPATCH",
    "REPORT",
    "PUT",
    "MKCOL",
    "MKCALENDAR",
    "MOVE",
    "COPY",
    "DELETE",
    "GET",
    "POST",
]
PATHS = [
    CAL,
    CAL + "e.ics",
    CONTACTS,
    CONTACTS + "c.vcf",
    home(),
    home() + "Directory/",
    home() + "Inbox/",
    home() + "Outbox/",
    "/dav/",
    "/dav/principals/alice@example.test/",
    home() + "Nouveau/",
]
FRAGMENTS = [
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>',
    '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><c:filter>'
    '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
    '<c:time-range start="20260101T000000Z"/></c:comp-filter></c:comp-filter></c:filter>'
    "</c:calendar-query>",
    '<d:sync-collection xmlns:d="DAV:"><d:sync-token>x</d:sync-token></d:sync-collection>',
    '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>x</d:displayname>'
    "</d:prop></d:set></d:propertyupdate>",
    '<card:addressbook-multiget xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">'
    '<d:prop><card:address-data version="9"/></d:prop><d:href>/dav/alice@example.test/'
    "Contacts/c.vcf</d:href></card:addressbook-multiget>",
    '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop>'
    '<c:calendar-data><c:expand start="20260101T000000Z" end="20250101T000000Z"/></c:calendar-data>'
    "</d:prop><d:href>/dav/alice@example.test/Calendar/e.ics</d:href></c:calendar-multiget>",
    '<card:addressbook-query xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">'
    '<card:filter test="allof"><card:prop-filter name="EMAIL"><card:param-filter name="TYPE">'
    '<card:text-match match-type="equals">work</card:text-match></card:param-filter>'
    "</card:prop-filter></card:filter><card:limit><card:nresults>0</card:nresults></card:limit>"
    "</card:addressbook-query>",
    event("fuzz"),
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:x\r\nEND:VCARD\r\n",
    "<",
    "",
]
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Depth": st.sampled_from(["0", "1", "infinity", "2", "-1", ""]),
        "If-Match": st.sampled_from(['"x"', "*", 'W/"x"', "garbage", '"a", "b"']),
        "If-None-Match": st.sampled_from(["*", '"x"', "bad"]),
        "Destination": st.sampled_from(
            [CAL + "f.ics", "http://elsewhere/x", CONTACTS + "g.vcf", "%zz", home()]
        ),
        "Overwrite": st.sampled_from(["T", "F", "x"]),
        "Content-Type": st.sampled_from(
            ["text/calendar", "text/vcard", "application/xml", "text/html", ";;"]
        ),
        "Prefer": st.sampled_from(["return=minimal", "junk"]),
    },
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    headers=HEADERS,
    body=st.one_of(
        st.sampled_from(FRAGMENTS),
        st.builds(lambda f, cut: f[:cut], st.sampled_from(FRAGMENTS), st.integers(0, 300)),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    ),
)
def test_hostile_requests_get_a_precise_answer(
    dav_node: DavNode, method: str, path: str, headers: dict[str, str], body: str
) -> None:
    with dav_node.http() as client:
        response = client.request(
            method, path, content=body.encode("utf-8", "surrogatepass"), headers=headers
        )
    # 501: POST to the outbox before scheduling; 502: a Destination on another server
    # (RFC 4918 §9.8.5).
    assert response.status_code < 500 or response.status_code in (501, 502), (
        method,
        path,
        headers,
        body[:200],
        response.status_code,
        response.text[:500],
    )


def test_seeded_collection_survives_fuzzing(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CAL + "e.ics", event("e"))
        assert client.get(CAL + "e.ics").status_code == 200
