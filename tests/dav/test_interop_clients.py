"""The request sequences of the clients people use, replayed with httpx: iOS/macOS
(dataaccessd) discovery and property set, DAVx5's paged sync-collection, Thunderbird's
PROPFIND + calendar-multiget polling and Apple's PROPPATCH of colour and order.

RFC 4918 (PROPFIND/PROPPATCH), RFC 4791 §5.2 / §7.9, RFC 6578 §3.6 (truncated results),
RFC 6638 §2 (schedule inbox/outbox), RFC 5397, CalendarServer getctag, Apple
calendar-color/calendar-order.
"""

from __future__ import annotations

import datetime as dt

from tests.dav.interop_helpers import (
    ALICE,
    CALDAV,
    DAV,
    DavNode,
    dav_node,
    home,
    last_segment,
    parse_multistatus,
    propfind,
    report,
    same_path,
    sync_token_of,
)

__all__ = ["dav_node"]

D = f"{{{DAV}}}"
C = f"{{{CALDAV}}}"
CS = "{http://calendarserver.org/ns/}"
APPLE = "{http://apple.com/ns/ical/}"


def event(uid: str, day: int) -> str:
    start = dt.datetime(2026, 5, 1, 9) + dt.timedelta(days=day)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//clients//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start:%Y%m%dT%H%M%S}Z\r\nDURATION:PT1H\r\n"
        f"SUMMARY:Événement {day}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_ios_discovery_and_home_properties(dav_node: DavNode) -> None:
    with dav_node.http() as http:
        options = http.options("/")
        assert options.status_code == 200
        classes = {c.strip() for c in options.headers.get("dav", "").split(",")}
        assert {"1", "3", "calendar-access", "addressbook", "calendar-auto-schedule"} <= classes

        # iOS asks the root first, then the principal (RFC 5397, RFC 4791 §6.2.1,
        # RFC 6638 §2.1-2.4).
        root = propfind(http, "/", "<d:current-user-principal/><d:principal-URL/><d:resourcetype/>")
        assert root.status_code == 207, root.text
        (props,) = parse_multistatus(root.content).values()
        principal = props[f"{D}current-user-principal"].findtext(f"{D}href") or ""
        assert same_path(principal, f"/dav/principals/{ALICE}/"), principal
        found = propfind(
            http,
            principal,
            "<c:calendar-home-set/><card:addressbook-home-set/><c:calendar-user-address-set/>"
            "<c:schedule-inbox-URL/><c:schedule-outbox-URL/><d:displayname/>"
            "<d:principal-URL/><d:supported-report-set/>",
        )
        assert found.status_code == 207, found.text
        (props,) = parse_multistatus(found.content).values()
        assert same_path(props[f"{C}calendar-home-set"].findtext(f"{D}href") or "", home())
        addresses = [h.text for h in props[f"{C}calendar-user-address-set"].iter(f"{D}href")]
        assert f"mailto:{ALICE}" in addresses
        inbox = props[f"{C}schedule-inbox-URL"].findtext(f"{D}href") or ""
        outbox = props[f"{C}schedule-outbox-URL"].findtext(f"{D}href") or ""

        listing = propfind(
            http,
            home(),
            "<d:resourcetype/><d:displayname/><d:current-user-privilege-set/>"
            "<d:sync-token/><cs:getctag/><c:supported-calendar-component-set/>"
            '<x:calendar-color xmlns:x="http://apple.com/ns/ical/"/>',
            depth="1",
        )
        assert listing.status_code == 207, listing.text
        collections = parse_multistatus(listing.content)
    calendar = next(p for h, p in collections.items() if same_path(h, home() + "Calendar/"))
    assert calendar[f"{D}resourcetype"].find(f"{C}calendar") is not None
    assert calendar[f"{CS}getctag"].text
    assert calendar[f"{D}sync-token"].text
    components = {
        c.get("name") for c in calendar[f"{C}supported-calendar-component-set"].iter(f"{C}comp")
    }
    assert {"VEVENT", "VTODO"} <= components
    privileges = {p.tag for p in calendar[f"{D}current-user-privilege-set"].iter()}
    assert f"{D}write" in privileges or f"{D}all" in privileges
    inbox_props = next(p for h, p in collections.items() if same_path(h, inbox))
    assert inbox_props[f"{D}resourcetype"].find(f"{C}schedule-inbox") is not None
    outbox_props = next(p for h, p in collections.items() if same_path(h, outbox))
    assert outbox_props[f"{D}resourcetype"].find(f"{C}schedule-outbox") is not None


def test_davx5_paged_sync_collection(dav_node: DavNode) -> None:
    """RFC 6578 §3.6: with a limit, the server answers part of the changes, a 507 for the
    collection and a token; the client asks again until no 507 comes."""
    calendar = home() + "Calendar/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        for n in range(25):
            response = http.put(
                f"{calendar}e{n}.ics",
                content=event(f"e{n}", n).encode(),
                headers={"Content-Type": "text/calendar", "If-None-Match": "*"},
            )
            assert response.status_code == 201, response.text
        token, seen, rounds = "", set(), 0
        while True:
            rounds += 1
            assert rounds < 10, "the paging never ends"
            answer = report(
                http,
                calendar,
                '<?xml version="1.0" encoding="utf-8"?>'
                f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
                "<d:sync-level>1</d:sync-level><d:limit><d:nresults>10</d:nresults></d:limit>"
                "<d:prop><d:getetag/></d:prop></d:sync-collection>",
                depth="0",
            )
            if rounds == 1 and answer.status_code == 403 and b"number-of-matches" in answer.content:
                # RFC 6578 §3.7 allows refusing a limit on the initial sync (token "");
                # DAVx5 then syncs without one. Hirondelle should page instead.
                raise AssertionError("initial sync with nresults refused: " + answer.text)
            assert answer.status_code == 207, answer.text
            found = parse_multistatus(answer.content)
            truncated = [
                h for h, p in found.items() if "status" in p and " 507 " in (p["status"].text or "")
            ]
            items = [last_segment(h) for h, p in found.items() if f"{D}getetag" in p]
            assert len(items) <= 10
            seen.update(items)
            token = sync_token_of(answer.content)
            if not truncated:
                break
            assert [same_path(h, calendar) for h in truncated] == [True]
        assert seen == {f"e{n}.ics" for n in range(25)}
        assert rounds >= 3
        # Up to date: nothing more.
        final = report(
            http,
            calendar,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>",
            depth="0",
        )
        assert parse_multistatus(final.content) == {}


def test_thunderbird_polling_with_ctag_and_multiget(dav_node: DavNode) -> None:
    """Thunderbird polls getctag, lists ETags with PROPFIND Depth 1 and fetches what
    changed with calendar-multiget (RFC 4791 §7.9)."""
    calendar = home() + "Calendar/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")

        def ctag() -> str:
            answer = propfind(http, calendar, "<cs:getctag/>")
            (props,) = parse_multistatus(answer.content).values()
            return props[f"{CS}getctag"].text or ""

        before = ctag()
        for n in range(3):
            http.put(f"{calendar}t{n}.ics", content=event(f"t{n}", n).encode())
        after = ctag()
        assert after != before
        assert ctag() == after, "getctag must not move without a change"
        listing = propfind(http, calendar, "<d:getetag/><d:getcontenttype/>", depth="1")
        members = {
            h: p
            for h, p in parse_multistatus(listing.content).items()
            if not same_path(h, calendar)
        }
        assert sorted(last_segment(h) for h in members) == ["t0.ics", "t1.ics", "t2.ics"]
        for props in members.values():
            assert (props[f"{D}getcontenttype"].text or "").startswith("text/calendar")
            assert (props[f"{D}getetag"].text or "").startswith('"')
        hrefs = "".join(f"<d:href>{h}</d:href>" for h in members)
        multiget = report(
            http,
            calendar,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
            f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>",
        )
        assert multiget.status_code == 207, multiget.text
        got = parse_multistatus(multiget.content)
        for href, props in members.items():
            same = next(p for h, p in got.items() if same_path(h, href))
            assert same[f"{D}getetag"].text == props[f"{D}getetag"].text
            data = same[f"{C}calendar-data"].text or ""
            assert f"UID:{last_segment(href).removesuffix('.ics')}" in data


def test_apple_colour_and_order_survive(dav_node: DavNode) -> None:
    """macOS and iOS PROPPATCH calendar-color/calendar-order and displayname; every client
    must read them back."""
    calendar = home() + "Calendar/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:propertyupdate xmlns:d="{DAV}" xmlns:a="http://apple.com/ns/ical/">'
            "<d:set><d:prop><a:calendar-color>#FF2968FF</a:calendar-color>"
            "<a:calendar-order>3</a:calendar-order><d:displayname>Agenda perso</d:displayname>"
            "</d:prop></d:set></d:propertyupdate>"
        )
        patched = http.request(
            "PROPPATCH",
            calendar,
            content=body.encode(),
            headers={"Content-Type": "application/xml"},
        )
        assert patched.status_code == 207, patched.text
        (result,) = parse_multistatus(patched.content).values()
        assert {f"{APPLE}calendar-color", f"{APPLE}calendar-order", f"{D}displayname"} <= set(
            result
        )
        answer = propfind(
            http,
            calendar,
            '<a:calendar-color xmlns:a="http://apple.com/ns/ical/"/>'
            '<a:calendar-order xmlns:a="http://apple.com/ns/ical/"/><d:displayname/>',
        )
        (props,) = parse_multistatus(answer.content).values()
    assert props[f"{APPLE}calendar-color"].text == "#FF2968FF"
    assert props[f"{APPLE}calendar-order"].text == "3"
    assert props[f"{D}displayname"].text == "Agenda perso"


def test_event_with_tzid_but_no_vtimezone_is_placed_in_its_zone(dav_node: DavNode) -> None:
    """Clients that rely on timezone-by-reference (RFC 7809) send TZID=Europe/Paris with no
    VTIMEZONE: the time is 09:00 in Paris (07:00 UTC in summer), not 09:00 UTC."""
    calendar = home() + "Calendar/"
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//clients//EN\r\n"
        "BEGIN:VEVENT\r\nUID:tz-by-ref\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20260615T090000\r\n"
        "DTEND;TZID=Europe/Paris:20260615T100000\r\n"
        "SUMMARY:Sans VTIMEZONE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )

    def query(start: str, end: str) -> list[str]:
        answer = report(
            http,
            calendar,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
            "<d:prop><d:getetag/></d:prop>"
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            f'<c:time-range start="{start}" end="{end}"/>'
            "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>",
        )
        assert answer.status_code == 207, answer.text
        return [last_segment(h) for h in parse_multistatus(answer.content)]

    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        created = http.put(
            calendar + "tz-by-ref.ics",
            content=body.encode(),
            headers={"Content-Type": "text/calendar"},
        )
        assert created.status_code == 201, created.text
        assert query("20260615T065900Z", "20260615T071000Z") == ["tz-by-ref.ics"]
        # 09:00-10:00 UTC would be 11:00-12:00 in Paris: after the event.
        assert query("20260615T083000Z", "20260615T100000Z") == []
