"""CalDAV/CardDAV REPORTs over real HTTPS: calendar-query with time-range on recurring
events with overrides and EXDATE (RFC 4791 §7.8, §9.9), expand and
limit-recurrence-set (§9.6.5-6), multiget (§7.9), free-busy-query (§7.10),
addressbook-query (RFC 6352 §8.6), sync-collection with paging (RFC 6578)."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tests.dav.core_helpers import (
    CAL,
    CONTACTS,
    addressbook_query,
    calendar_query,
    card,
    error_condition,
    event,
    expect,
    hrefs,
    put,
    request,
    sync_collection,
    time_range_filter,
)
from tests.dav.interop_helpers import CALDAV, CARDDAV, DAV, DavNode, dav_node, parse_multistatus

__all__ = ["dav_node"]

WEEKLY = event(
    "weekly",
    start="20260105T100000Z",
    end="20260105T110000Z",
    rrule="FREQ=WEEKLY;COUNT=10",
    extra="EXDATE:20260112T100000Z",
).replace(
    "END:VCALENDAR",
    "BEGIN:VEVENT\r\nUID:weekly\r\nRECURRENCE-ID:20260119T100000Z\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20260120T150000Z\r\nDTEND:20260120T160000Z\r\nSUMMARY:moved\r\nEND:VEVENT\r\n"
    "END:VCALENDAR",
)


def _query(client, start: str, end: str, component: str = "VEVENT") -> list[str]:  # type: ignore[no-untyped-def]
    response = request(
        client,
        "REPORT",
        CAL,
        calendar_query(time_range_filter(start, end, component)),
        status=207,
        headers={"Depth": "1"},
    )
    return sorted(h.rsplit("/", 1)[-1] for h in hrefs(response.content))


@pytest.fixture
def calendar(dav_node: DavNode):  # type: ignore[no-untyped-def]
    with dav_node.http() as client:
        put(client, CAL + "weekly.ics", WEEKLY)
        put(
            client,
            CAL + "single.ics",
            event("single", start="20260301T080000Z", end="20260301T090000Z"),
        )
        put(
            client,
            CAL + "daily.ics",
            event("daily", start="20200101T070000Z", end="20200101T071500Z", rrule="FREQ=DAILY"),
        )
        put(
            client,
            CAL + "allday.ics",
            event("allday", start="20260401", end="20260402")
            .replace("DTSTART:20260401", "DTSTART;VALUE=DATE:20260401")
            .replace("DTEND:20260402", "DTEND;VALUE=DATE:20260402"),
        )
        put(client, CAL + "todo.ics", event("todo", component="VTODO", start="20260105T100000Z"))
        yield client


def test_time_range_on_recurrence_with_exdate_and_override(calendar) -> None:  # type: ignore[no-untyped-def]
    # The EXDATE'd instance (Jan 12, 10:00) is not there.
    assert _query(calendar, "20260112T093000Z", "20260112T120000Z") == []
    # The overridden Jan 19 instance moved to Jan 20, 15:00.
    assert _query(calendar, "20260119T093000Z", "20260119T120000Z") == []
    assert _query(calendar, "20260120T150000Z", "20260120T151500Z") == ["weekly.ics"]
    # An ordinary instance; and after COUNT ran out, nothing.
    assert _query(calendar, "20260126T100000Z", "20260126T103000Z") == ["weekly.ics"]
    assert _query(calendar, "20260401T093000Z", "20260401T120000Z") == ["allday.ics"]
    assert _query(calendar, "20260401T070000Z", "20260401T070100Z") == ["allday.ics", "daily.ics"]
    assert _query(calendar, "20260301T083000Z", "20260301T084500Z") == ["single.ics"]
    # Boundaries: the range ending when an event starts does not overlap it.
    assert _query(calendar, "20260301T073000Z", "20260301T080000Z") == []


def test_unbounded_rule_beyond_the_index_horizon(calendar) -> None:  # type: ignore[no-untyped-def]
    # The daily rule from 2020 is indexed to a horizon; far later it is expanded lazily.
    assert _query(calendar, "20400601T070500Z", "20400601T071000Z") == ["daily.ics"]
    assert _query(calendar, "20400601T080000Z", "20400601T090000Z") == []


def test_todo_time_range(calendar) -> None:  # type: ignore[no-untyped-def]
    assert _query(calendar, "20260105T000000Z", "20260106T000000Z", "VTODO") == ["todo.ics"]


def test_prop_and_text_match_filters(calendar) -> None:  # type: ignore[no-untyped-def]
    filter_xml = (
        '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        '<c:prop-filter name="SUMMARY">'
        '<c:text-match collation="i;ascii-casemap">MOVED</c:text-match>'
        "</c:prop-filter></c:comp-filter></c:comp-filter>"
    )
    response = request(
        calendar, "REPORT", CAL, calendar_query(filter_xml), status=207, headers={"Depth": "1"}
    )
    assert [h.rsplit("/", 1)[-1] for h in hrefs(response.content)] == ["weekly.ics"]
    negated = filter_xml.replace("<c:text-match ", '<c:text-match negate-condition="yes" ')
    response = request(
        calendar, "REPORT", CAL, calendar_query(negated), status=207, headers={"Depth": "1"}
    )
    names = sorted(h.rsplit("/", 1)[-1] for h in hrefs(response.content))
    assert names == ["allday.ics", "daily.ics", "single.ics", "weekly.ics"]
    not_defined = (
        '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        '<c:prop-filter name="RRULE">'
        "<c:is-not-defined/></c:prop-filter></c:comp-filter></c:comp-filter>"
    )
    response = request(
        calendar, "REPORT", CAL, calendar_query(not_defined), status=207, headers={"Depth": "1"}
    )
    # weekly.ics matches through its override, a VEVENT without RRULE (§9.7.1: any
    # component of the name).
    assert sorted(h.rsplit("/", 1)[-1] for h in hrefs(response.content)) == [
        "allday.ics",
        "single.ics",
        "weekly.ics",
    ]
    todos = '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO"/></c:comp-filter>'
    response = request(
        calendar, "REPORT", CAL, calendar_query(todos), status=207, headers={"Depth": "1"}
    )
    assert [h.rsplit("/", 1)[-1] for h in hrefs(response.content)] == ["todo.ics"]


def test_bad_filters_are_refused(calendar) -> None:  # type: ignore[no-untyped-def]
    response = request(
        calendar,
        "REPORT",
        CAL,
        calendar_query(time_range_filter("2026", "2027")),
        status=403,
        headers={"Depth": "1"},
    )
    assert error_condition(response) == f"{{{CALDAV}}}valid-filter"
    bad_collation = (
        '<c:comp-filter name="VCALENDAR">'
        '<c:comp-filter name="VEVENT"><c:prop-filter name="SUMMARY">'
        '<c:text-match collation="i;klingon">x</c:text-match>'
        "</c:prop-filter></c:comp-filter></c:comp-filter>"
    )
    response = request(
        calendar, "REPORT", CAL, calendar_query(bad_collation), status=403, headers={"Depth": "1"}
    )
    assert error_condition(response) == f"{{{CALDAV}}}supported-collation"
    response = request(
        calendar,
        "REPORT",
        CAL,
        f'<d:expand-property xmlns:d="{DAV}"/>',
        status=403,
        headers={"Depth": "0"},
    )
    assert error_condition(response) == f"{{{DAV}}}supported-report"


def test_expand_and_limit_recurrence_set(calendar) -> None:  # type: ignore[no-untyped-def]
    props = (
        '<c:calendar-data><c:expand start="20260110T000000Z" end="20260125T000000Z"/>'
        "</c:calendar-data>"
    )
    response = request(
        calendar,
        "REPORT",
        CAL,
        calendar_query(time_range_filter("20260110T000000Z", "20260125T000000Z"), props),
        status=207,
        headers={"Depth": "1"},
    )
    found = parse_multistatus(response.content)
    data = found[CAL + "weekly.ics"][f"{{{CALDAV}}}calendar-data"].text or ""
    assert "RRULE" not in data and data.count("BEGIN:VEVENT") == 1
    assert "DTSTART:20260120T150000Z" in data and "RECURRENCE-ID:20260119T100000Z" in data
    props = (
        '<c:calendar-data><c:limit-recurrence-set start="20260301T000000Z" end="20260401T000000Z"/>'
        "</c:calendar-data>"
    )
    multiget = (
        f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:prop>{props}</d:prop>'
        f"<d:href>{CAL}weekly.ics</d:href><d:href>{CAL}missing.ics</d:href></c:calendar-multiget>"
    )
    found = parse_multistatus(
        request(calendar, "REPORT", CAL, multiget, status=207, headers={"Depth": "1"}).content
    )
    limited = found[CAL + "weekly.ics"][f"{{{CALDAV}}}calendar-data"].text or ""
    assert "RRULE" in limited and "moved" not in limited
    assert " 404 " in found[CAL + "missing.ics"]["status"].text  # type: ignore[operator]


def test_free_busy_query(calendar) -> None:  # type: ignore[no-untyped-def]
    body = (
        f'<c:free-busy-query xmlns:c="{CALDAV}"><c:time-range start="20260301T000000Z" '
        'end="20260302T000000Z"/></c:free-busy-query>'
    )
    response = request(calendar, "REPORT", CAL, body, status=200, headers={"Depth": "1"})
    assert "BEGIN:VFREEBUSY" in response.text
    assert (
        "FREEBUSY:20260301T070000Z/20260301T071500Z,20260301T080000Z/20260301T090000Z"
        in response.text.replace("\r\n ", "")
        or ("20260301T080000Z/20260301T090000Z" in response.text.replace("\r\n ", ""))
    )


def test_sync_collection_reports_only_changes(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CAL + "a.ics", event("a"))
        put(client, CAL + "b.ics", event("b"))
        first = request(
            client, "REPORT", CAL, sync_collection(), status=207, headers={"Depth": "0"}
        )
        found = parse_multistatus(first.content)
        assert set(found) == {CAL + "a.ics", CAL + "b.ics"}
        token = ElementTree.fromstring(first.content).findtext(f"{{{DAV}}}sync-token") or ""
        again = request(
            client, "REPORT", CAL, sync_collection(token), status=207, headers={"Depth": "0"}
        )
        assert hrefs(again.content) == []
        put(client, CAL + "a.ics", event("a", summary="changed"), status=204)
        expect(client.delete(CAL + "b.ics"), 204)
        put(client, CAL + "c.ics", event("c"))
        delta = request(
            client, "REPORT", CAL, sync_collection(token), status=207, headers={"Depth": "0"}
        )
        found = parse_multistatus(delta.content)
        assert set(found) == {CAL + "a.ics", CAL + "b.ics", CAL + "c.ics"}
        assert " 404 " in (found[CAL + "b.ics"]["status"].text or "")
        assert f"{{{DAV}}}getetag" in found[CAL + "a.ics"]
        # Changes in another collection do not show here.
        put(client, CONTACTS + "x.vcf", card("x"), content_type="text/vcard")
        token = ElementTree.fromstring(delta.content).findtext(f"{{{DAV}}}sync-token") or ""
        assert (
            hrefs(
                request(
                    client,
                    "REPORT",
                    CAL,
                    sync_collection(token),
                    status=207,
                    headers={"Depth": "0"},
                ).content
            )
            == []
        )


def test_sync_collection_paging_and_bad_tokens(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for i in range(5):
            put(client, CAL + f"p{i}.ics", event(f"p{i}"))
        seen: set[str] = set()
        token = ""
        for _ in range(10):
            response = request(
                client,
                "REPORT",
                CAL,
                sync_collection(token, limit=2),
                status=207,
                headers={"Depth": "0"},
            )
            found = parse_multistatus(response.content)
            token = ElementTree.fromstring(response.content).findtext(f"{{{DAV}}}sync-token") or ""
            truncated = CAL in found and " 507 " in (found[CAL]["status"].text or "")
            seen.update(h for h in found if h != CAL)
            if not truncated:
                break
        assert seen == {CAL + f"p{i}.ics" for i in range(5)}
        for bad in ("garbage", "http://hirondelle.invalid/sync/999999999"):
            response = request(
                client, "REPORT", CAL, sync_collection(bad), status=403, headers={"Depth": "0"}
            )
            assert error_condition(response) == f"{{{DAV}}}valid-sync-token"


def test_addressbook_query_and_multiget(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(
            client,
            CONTACTS + "a.vcf",
            card("a", "Jean Dupont", email="jean@example.test"),
            content_type="text/vcard",
        )
        put(
            client,
            CONTACTS + "b.vcf",
            card("b", "Marie Curie", email="marie@example.test"),
            content_type="text/vcard",
        )
        filter_xml = (
            '<card:prop-filter name="FN">'
            '<card:text-match match-type="starts-with">marie</card:text-match></card:prop-filter>'
        )
        response = request(
            client,
            "REPORT",
            CONTACTS,
            addressbook_query(filter_xml),
            status=207,
            headers={"Depth": "1"},
        )
        assert hrefs(response.content) == [CONTACTS + "b.vcf"]
        filter_xml = (
            '<card:prop-filter name="EMAIL">'
            "<card:text-match>example.test</card:text-match></card:prop-filter>"
        )
        response = request(
            client,
            "REPORT",
            CONTACTS,
            addressbook_query(filter_xml),
            status=207,
            headers={"Depth": "1"},
        )
        assert sorted(hrefs(response.content)) == [CONTACTS + "a.vcf", CONTACTS + "b.vcf"]
        multiget = (
            f'<card:addressbook-multiget xmlns:d="{DAV}" xmlns:card="{CARDDAV}"><d:prop>'
            '<card:address-data version="4.0"/></d:prop>'
            f"<d:href>{CONTACTS}a.vcf</d:href></card:addressbook-multiget>"
        )
        found = parse_multistatus(
            request(
                client, "REPORT", CONTACTS, multiget, status=207, headers={"Depth": "1"}
            ).content
        )
        assert "VERSION:4.0" in (found[CONTACTS + "a.vcf"][f"{{{CARDDAV}}}address-data"].text or "")


PARIS_TZ = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
    "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
    "DTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n"
)


def test_floating_times_use_the_calendar_timezone(dav_node: DavNode) -> None:
    body = (
        f'<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:set><d:prop>'
        f"<c:calendar-timezone>{PARIS_TZ}</c:calendar-timezone></d:prop></d:set></c:mkcalendar>"
    )
    paris = CAL.replace("Calendar/", "Paris/")
    with dav_node.http() as client:
        request(client, "MKCALENDAR", paris, body, status=201)
        # 10:00 floating in Paris in January is 09:00 UTC.
        put(
            client,
            paris + "f.ics",
            event("floating", start="20260105T100000", end="20260105T110000"),
        )
        query = calendar_query(time_range_filter("20260105T090000Z", "20260105T093000Z"))
        response = request(client, "REPORT", paris, query, status=207, headers={"Depth": "1"})
        assert hrefs(response.content) == [paris + "f.ics"]
        query = calendar_query(time_range_filter("20260105T100000Z", "20260105T110000Z"))
        response = request(client, "REPORT", paris, query, status=207, headers={"Depth": "1"})
        assert hrefs(response.content) == []
        bad = body.replace(PARIS_TZ, "not a timezone")
        response = request(client, "MKCALENDAR", CAL.replace("Calendar/", "Bad/"), bad, status=403)
        assert error_condition(response) == f"{{{CALDAV}}}valid-calendar-data"


def test_runaway_rules_are_refused(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for rule in ("FREQ=SECONDLY", "FREQ=MINUTELY;UNTIL=21000101T000000Z", "FREQ=HOURLY"):
            response = put(
                client,
                CAL + "s.ics",
                event("runaway", start="20000101T000000Z", end="20000101T000001Z", rrule=rule),
                status=403,
            )
            assert error_condition(response) == f"{{{CALDAV}}}max-instances"
        # Bounded ones are fine, and a short range far past the index is expanded lazily.
        put(
            client,
            CAL + "m.ics",
            event(
                "minutely",
                start="20300101T000000Z",
                end="20300101T000001Z",
                rrule="FREQ=MINUTELY;COUNT=100000",
            ),
        )
        query = calendar_query(time_range_filter("20300201T000000Z", "20300201T000500Z"))
        response = request(client, "REPORT", CAL, query, status=207, headers={"Depth": "1"})
        assert hrefs(response.content) == [CAL + "m.ics"]


def test_clients_cannot_write_the_schedule_inbox(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        inbox = CAL.replace("Calendar/", "Inbox/")
        response = put(client, inbox + "x.ics", event("x"), status=403)
        assert error_condition(response) == f"{{{DAV}}}need-privileges"


def test_token_from_before_a_collection_was_recreated_is_refused(dav_node: DavNode) -> None:
    work = CAL.replace("Calendar/", "Work/")
    with dav_node.http() as client:
        request(client, "MKCALENDAR", work, status=201)
        put(client, work + "a.ics", event("a"))
        first = request(
            client, "REPORT", work, sync_collection(), status=207, headers={"Depth": "0"}
        )
        token = ElementTree.fromstring(first.content).findtext(f"{{{DAV}}}sync-token") or ""
        expect(client.delete(work), 204)
        request(client, "MKCALENDAR", work, status=201)
        response = request(
            client, "REPORT", work, sync_collection(token), status=403, headers={"Depth": "0"}
        )
        assert error_condition(response) == f"{{{DAV}}}valid-sync-token"


def test_one_write_larger_than_the_page_comes_whole(dav_node: DavNode) -> None:
    """A page never splits one modseq: three resources written by one transaction come
    together even with nresults=2 (instead of an endless valid-sync-token loop)."""
    from hirondelle.groupware import calendar as calendar_rules
    from hirondelle.store import groupware as store
    from hirondelle.store.database import WriteContext

    services = dav_node.node.services
    assert services is not None
    with dav_node.http() as client:
        first = request(
            client, "REPORT", CAL, sync_collection(), status=207, headers={"Depth": "0"}
        )
        token = ElementTree.fromstring(first.content).findtext(f"{{{DAV}}}sync-token") or ""
        account = dav_node.run(services.accounts.get_account("alice@example.test"))
        collection = dav_node.run(services.groupware.collection(account.id, "Calendar"))
        assert collection is not None
        items = [calendar_rules.index(event(f"bulk{i}"))[1] for i in range(3)]

        def write(ctx: WriteContext) -> None:
            for i, item in enumerate(items):
                store.put_resource(ctx, collection, f"bulk{i}.ics", item)

        dav_node.run(services.database.write(write))
        response = request(
            client,
            "REPORT",
            CAL,
            sync_collection(token, limit=2),
            status=207,
            headers={"Depth": "0"},
        )
        found = parse_multistatus(response.content)
        assert set(found) == {CAL + f"bulk{i}.ics" for i in range(3)}


def test_unknown_address_data_version_is_refused(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CONTACTS + "a.vcf", card("a"), content_type="text/vcard")
        multiget = (
            f'<card:addressbook-multiget xmlns:d="{DAV}" xmlns:card="{CARDDAV}"><d:prop>'
            '<card:address-data version="2.1"/></d:prop>'
            f"<d:href>{CONTACTS}a.vcf</d:href></card:addressbook-multiget>"
        )
        response = request(client, "REPORT", CONTACTS, multiget, status=403, headers={"Depth": "1"})
        assert error_condition(response) == f"{{{CARDDAV}}}supported-address-data-conversion"


def test_addressbook_query_by_phone_and_by_other_properties(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(
            client,
            CONTACTS + "p.vcf",
            card("p", "Paul Martin").replace(
                "END:VCARD", "TEL;TYPE=cell:+33 6 12 34 56 78\r\nNOTE:Ami d'enfance\r\nEND:VCARD"
            ),
            content_type="text/vcard",
        )
        put(client, CONTACTS + "q.vcf", card("q", "Quentin Roux"), content_type="text/vcard")
        for prop, text, expected in (
            ("TEL", "12 34", [CONTACTS + "p.vcf"]),
            ("NOTE", "ENFANCE", [CONTACTS + "p.vcf"]),
            ("FN", "roux", [CONTACTS + "q.vcf"]),
            ("EMAIL", "nobody", []),
        ):
            filter_xml = (
                f'<card:prop-filter name="{prop}"><card:text-match>{text}</card:text-match>'
                "</card:prop-filter>"
            )
            response = request(
                client,
                "REPORT",
                CONTACTS,
                addressbook_query(filter_xml),
                status=207,
                headers={"Depth": "1"},
            )
            assert hrefs(response.content) == expected, (prop, text)


def test_param_filter(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(
            client,
            CAL + "m.ics",
            event("meeting", extra="ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test"),
        )
        put(
            client,
            CAL + "n.ics",
            event("other", extra="ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.test"),
        )
        filter_xml = (
            '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            '<c:prop-filter name="ATTENDEE"><c:text-match>bob@</c:text-match>'
            '<c:param-filter name="PARTSTAT"><c:text-match>accepted</c:text-match></c:param-filter>'
            "</c:prop-filter></c:comp-filter></c:comp-filter>"
        )
        response = request(
            client, "REPORT", CAL, calendar_query(filter_xml), status=207, headers={"Depth": "1"}
        )
        assert hrefs(response.content) == [CAL + "m.ics"]
        missing = filter_xml.replace("<c:text-match>accepted</c:text-match>", "<c:is-not-defined/>")
        response = request(
            client, "REPORT", CAL, calendar_query(missing), status=207, headers={"Depth": "1"}
        )
        assert hrefs(response.content) == []
