"""WebDAV core on resources (RFC 4918 §9.4-§9.9, RFC 9110 §13) and CalDAV/CardDAV PUT
preconditions (RFC 4791 §5.3.2.1, RFC 6352 §6.3.2.1), over real HTTPS."""

from __future__ import annotations

from xml.etree import ElementTree

from tests.dav.core_helpers import (
    CAL,
    CONTACTS,
    card,
    error_condition,
    event,
    expect,
    home,
    put,
    request,
)
from tests.dav.interop_helpers import CALDAV, CARDDAV, DAV, DavNode, dav_node, parse_multistatus

__all__ = ["dav_node"]


def test_put_get_head_with_strong_etag(dav_node: DavNode) -> None:
    body = event("get-1")
    with dav_node.http() as client:
        created = put(client, CAL + "get-1.ics", body)
        etag = created.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        got = expect(client.get(CAL + "get-1.ics"), 200)
        assert got.text == body
        assert got.headers["ETag"] == etag
        assert got.headers["Content-Type"].startswith("text/calendar")
        head = expect(client.head(CAL + "get-1.ics"), 200)
        assert head.headers["ETag"] == etag and head.content == b""
        assert head.headers["Content-Length"] == str(len(body.encode()))
        expect(client.get(CAL + "get-1.ics", headers={"If-None-Match": etag}), 304)
        # Replacing answers 204 with the new ETag.
        replaced = put(client, CAL + "get-1.ics", event("get-1", summary="Autre"), status=204)
        assert replaced.headers["ETag"] != etag


def test_if_match_and_if_none_match(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        etag = put(client, CAL + "m.ics", event("m"), headers={"If-None-Match": "*"}).headers[
            "ETag"
        ]
        put(client, CAL + "m.ics", event("m"), status=412, headers={"If-None-Match": "*"})
        put(
            client,
            CAL + "m.ics",
            event("m", summary="x"),
            status=412,
            headers={"If-Match": '"nope"'},
        )
        put(client, CAL + "new.ics", event("new"), status=412, headers={"If-Match": "*"})
        put(client, CAL + "m.ics", event("m", summary="y"), status=204, headers={"If-Match": etag})
        # The old ETag no longer matches: a lost update is refused.
        put(client, CAL + "m.ics", event("m", summary="z"), status=412, headers={"If-Match": etag})
        expect(client.delete(CAL + "m.ics", headers={"If-Match": etag}), 412)
        current = expect(client.get(CAL + "m.ics"), 200).headers["ETag"]
        expect(client.delete(CAL + "m.ics", headers={"If-Match": current}), 204)
        expect(client.get(CAL + "m.ics"), 404)
        expect(client.delete(CAL + "m.ics"), 404)


def test_no_uid_conflict_names_the_existing_resource(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CAL + "first.ics", event("same-uid"))
        refused = put(client, CAL + "second.ics", event("same-uid"), status=403)
        root = ElementTree.fromstring(refused.content)
        conflict = root.find(f"{{{CALDAV}}}no-uid-conflict")
        assert conflict is not None, refused.text
        assert conflict.findtext(f"{{{DAV}}}href") == CAL + "first.ics"
        expect(client.get(CAL + "second.ics"), 404)
        # Changing the UID of an existing resource is refused too.
        refused = put(client, CAL + "first.ics", event("other-uid"), status=403)
        assert error_condition(refused) == f"{{{CALDAV}}}no-uid-conflict"


def test_invalid_calendar_data_is_refused(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for bad in (
            "not a calendar",
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
            event("x").replace("DTSTART:20260105T100000Z", "DTSTART:2026-bad"),
            "\xff\xfe",
        ):
            response = put(client, CAL + "bad.ics", bad, status=403)
            assert error_condition(response) in (
                f"{{{CALDAV}}}valid-calendar-data",
                f"{{{CALDAV}}}valid-calendar-object-resource",
            )
        two_uids = event("a").replace(
            "END:VCALENDAR",
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
        )
        response = put(client, CAL + "bad.ics", two_uids, status=403)
        assert error_condition(response) == f"{{{CALDAV}}}valid-calendar-object-resource"
        with_method = event("c").replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST")
        response = put(client, CAL + "bad.ics", with_method, status=403)
        assert error_condition(response) == f"{{{CALDAV}}}valid-calendar-object-resource"
        response = put(client, CAL + "bad.ics", event("d"), status=403, content_type="text/html")
        assert error_condition(response) == f"{{{CALDAV}}}supported-calendar-data"
        expect(client.get(CAL + "bad.ics"), 404)


def test_supported_calendar_component(dav_node: DavNode) -> None:
    body = (
        f'<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:set><d:prop>'
        "<d:displayname>Tâches</d:displayname><c:supported-calendar-component-set>"
        '<c:comp name="VTODO"/></c:supported-calendar-component-set>'
        "</d:prop></d:set></c:mkcalendar>"
    )
    tasks = home() + "Taches/"
    with dav_node.http() as client:
        request(client, "MKCALENDAR", tasks, body, status=201)
        request(client, "MKCALENDAR", tasks, body, status=405)
        response = put(client, tasks + "e.ics", event("e"), status=403)
        assert error_condition(response) == f"{{{CALDAV}}}supported-calendar-component"
        put(client, tasks + "t.ics", event("t", component="VTODO"))


def test_large_upload_refused_early(dav_node: DavNode) -> None:
    huge = event("big", extra="DESCRIPTION:" + "x" * (20 * 1024 * 1024))
    with dav_node.http() as client:
        response = put(client, CAL + "big.ics", huge, status=413)
        assert error_condition(response) == f"{{{CALDAV}}}max-resource-size"
        found = parse_multistatus(
            request(
                client,
                "PROPFIND",
                CAL,
                f'<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:prop><c:max-resource-size/>'
                "</d:prop></d:propfind>",
                status=207,
                headers={"Depth": "0"},
            ).content
        )
        assert int(found[CAL][f"{{{CALDAV}}}max-resource-size"].text or 0) < 20 * 1024 * 1024


def test_put_into_missing_collection_is_a_conflict(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, home() + "Nowhere/x.ics", event("x"), status=409)


def test_move_and_copy(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        request(client, "MKCALENDAR", home() + "Other/", status=201)
        put(client, CAL + "a.ics", event("mv"))
        request(
            client,
            "COPY",
            CAL + "a.ics",
            status=201,
            headers={"Destination": home() + "Other/a.ics"},
        )
        # The same UID twice in one calendar, by COPY, is refused too.
        response = request(
            client, "COPY", CAL + "a.ics", status=403, headers={"Destination": CAL + "b.ics"}
        )
        assert error_condition(response) == f"{{{CALDAV}}}no-uid-conflict"
        request(
            client,
            "MOVE",
            CAL + "a.ics",
            status=204,
            headers={"Destination": home() + "Other/a.ics"},
        )
        expect(client.get(CAL + "a.ics"), 404)
        expect(client.get(home() + "Other/a.ics"), 200)
        put(client, CAL + "c.ics", event("c"))
        request(
            client,
            "MOVE",
            CAL + "c.ics",
            status=412,
            headers={"Destination": home() + "Other/a.ics", "Overwrite": "F"},
        )
        request(client, "MOVE", CAL + "c.ics", status=201, headers={"Destination": CAL + "d.ics"})
        expect(client.get(CAL + "d.ics"), 200)
        request(
            client, "MOVE", CAL + "d.ics", status=403, headers={"Destination": CONTACTS + "d.ics"}
        )


def test_vcard_put_conversion_and_uid_rule(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CONTACTS + "jean.vcf", card("card-1"), content_type="text/vcard")
        got = expect(
            client.get(CONTACTS + "jean.vcf", headers={"Accept": "text/vcard; version=4.0"}), 200
        )
        assert "VERSION:4.0" in got.text and "Jean Dupont" in got.text
        plain = expect(client.get(CONTACTS + "jean.vcf"), 200)
        assert "VERSION:3.0" in plain.text
        response = put(
            client, CONTACTS + "again.vcf", card("card-1"), status=403, content_type="text/vcard"
        )
        root = ElementTree.fromstring(response.content)
        conflict = root.find(f"{{{CARDDAV}}}no-uid-conflict")
        assert conflict is not None and conflict.findtext(f"{{{DAV}}}href") == CONTACTS + "jean.vcf"
        response = put(
            client,
            CONTACTS + "bad.vcf",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n",
            status=403,
            content_type="text/vcard",
        )
        assert error_condition(response) == f"{{{CARDDAV}}}valid-address-data"
        response = put(
            client,
            CONTACTS + "v2.vcf",
            card("v2", version="2.1"),
            status=403,
            content_type="text/vcard",
        )
        assert error_condition(response) == f"{{{CARDDAV}}}supported-address-data"
        put(client, CONTACTS + "v4.vcf", card("v4", version="4.0"), content_type="text/vcard")


def test_directory_is_read_only_and_lists_the_domain(dav_node: DavNode) -> None:
    dav_node.add_account("bob@example.test")
    directory = home() + "Directory/"
    with dav_node.http() as client:
        found = parse_multistatus(
            request(
                client,
                "PROPFIND",
                directory,
                f'<d:propfind xmlns:d="{DAV}">'
                "<d:prop><d:getetag/><d:resourcetype/></d:prop></d:propfind>",
                status=207,
                headers={"Depth": "1"},
            ).content
        )
        cards = [h for h in found if h != directory]
        assert len(cards) == 2
        texts = [expect(client.get(h), 200).text for h in cards]
        assert any("bob@example.test" in t for t in texts)
        put(client, directory + "x.vcf", card("x"), status=403, content_type="text/vcard")
        expect(client.delete(cards[0]), 403)
        query = (
            f'<card:addressbook-query xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            "<d:prop><card:address-data/></d:prop>"
            '<card:filter><card:prop-filter name="EMAIL"><card:text-match>bob@</card:text-match>'
            "</card:prop-filter></card:filter></card:addressbook-query>"
        )
        found = parse_multistatus(
            request(client, "REPORT", directory, query, status=207, headers={"Depth": "1"}).content
        )
        assert len(found) == 1
        (props,) = found.values()
        assert "bob@example.test" in (props[f"{{{CARDDAV}}}address-data"].text or "")


def test_concurrent_creations_with_one_uid_leave_one(dav_node: DavNode) -> None:
    """Two clients racing to create the same event: one wins, the other gets
    no-uid-conflict (never a 500, never a duplicate)."""
    from concurrent.futures import ThreadPoolExecutor

    def create(index: int) -> int:
        with dav_node.http() as client:
            return client.put(
                CAL + f"race-{index}.ics",
                content=event("race").encode(),
                headers={"Content-Type": "text/calendar"},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] + [403] * 7, statuses
    with dav_node.http() as client:
        found = parse_multistatus(
            request(
                client,
                "PROPFIND",
                CAL,
                f'<d:propfind xmlns:d="{DAV}"><d:prop><d:getetag/></d:prop></d:propfind>',
                status=207,
                headers={"Depth": "1"},
            ).content
        )
        assert len([h for h in found if h != CAL]) == 1


def test_calendar_location_and_card_size_preconditions(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        response = request(client, "MKCALENDAR", home(), status=403)
        assert error_condition(response) == f"{{{CALDAV}}}calendar-collection-location-ok"
        huge = card("big").replace(
            "END:VCARD", "NOTE:" + "x" * (11 * 1024 * 1024) + "\r\nEND:VCARD"
        )
        response = put(client, CONTACTS + "big.vcf", huge, status=413, content_type="text/vcard")
        assert error_condition(response) == f"{{{CARDDAV}}}max-resource-size"


def test_scheduling_message_cannot_be_moved_into_a_calendar(dav_node: DavNode) -> None:
    from hirondelle.groupware import calendar as calendar_rules
    from hirondelle.store import groupware as store
    from hirondelle.store.database import WriteContext

    services = dav_node.node.services
    assert services is not None
    account = dav_node.run(services.accounts.get_account("alice@example.test"))
    inbox = dav_node.run(services.groupware.collection(account.id, "Inbox"))
    assert inbox is not None
    text = event("invite").replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST")
    item = store.IndexedObject(
        component="VEVENT", uid="invite", data=text, etag=calendar_rules.etag_of(text)
    )

    def write(ctx: WriteContext) -> None:
        store.put_resource(ctx, inbox, "invite.ics", item)

    dav_node.run(services.database.write(write))
    with dav_node.http() as client:
        response = request(
            client,
            "MOVE",
            home() + "Inbox/invite.ics",
            status=403,
            headers={"Destination": CAL + "invite.ics"},
        )
        assert error_condition(response) == f"{{{CALDAV}}}valid-calendar-object-resource"
        expect(client.get(home() + "Inbox/invite.ics"), 200)
