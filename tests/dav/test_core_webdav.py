"""WebDAV core over real HTTPS: PROPFIND depth rules, PROPPATCH with dead properties,
extended MKCOL (RFC 5689), Prefer: return=minimal (RFC 8144), DELETE of collections, and
bad input (malformed XML, XML bombs, unknown methods) answered with precise 4xx."""

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

APPLE = "http://apple.com/ns/ical/"
PROPS = (
    f'<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:a="{APPLE}" xmlns:x="urn:example">'
    "<d:prop><d:displayname/><a:calendar-color/><a:calendar-order/><c:calendar-description/>"
    "<x:custom/></d:prop></d:propfind>"
)


def test_depth_infinity_is_refused(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for headers in ({"Depth": "infinity"}, {}):
            response = request(client, "PROPFIND", home(), PROPS, status=403, headers=headers)
            assert error_condition(response) == f"{{{DAV}}}propfind-finite-depth"
        request(client, "PROPFIND", home(), PROPS, status=400, headers={"Depth": "2"})


def test_proppatch_live_and_dead_properties(dav_node: DavNode) -> None:
    patch = (
        f'<d:propertyupdate xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:a="{APPLE}" '
        'xmlns:x="urn:example"><d:set><d:prop><d:displayname>Perso</d:displayname>'
        "<a:calendar-color>#FF0000FF</a:calendar-color><a:calendar-order>3</a:calendar-order>"
        "<c:calendar-description>Mon agenda</c:calendar-description>"
        '<x:custom x:attr="1">valeur <x:inner/></x:custom></d:prop></d:set></d:propertyupdate>'
    )
    with dav_node.http() as client:
        before = request(
            client,
            "PROPFIND",
            CAL,
            "<d:propfind xmlns:d='DAV:'><d:prop><d:sync-token/></d:prop></d:propfind>",
            status=207,
            headers={"Depth": "0"},
        )
        request(client, "PROPPATCH", CAL, patch, status=207)
        found = parse_multistatus(
            request(client, "PROPFIND", CAL, PROPS, status=207, headers={"Depth": "0"}).content
        )
        props = found[CAL]
        assert props[f"{{{DAV}}}displayname"].text == "Perso"
        assert props[f"{{{APPLE}}}calendar-color"].text == "#FF0000FF"
        assert props[f"{{{APPLE}}}calendar-order"].text == "3"
        assert props[f"{{{CALDAV}}}calendar-description"].text == "Mon agenda"
        custom = props["{urn:example}custom"]
        assert (
            custom.get("{urn:example}attr") == "1" and custom.find("{urn:example}inner") is not None
        )
        # A PROPPATCH changes the collection's sync-token (clients refresh metadata).
        after = request(
            client,
            "PROPFIND",
            CAL,
            "<d:propfind xmlns:d='DAV:'><d:prop><d:sync-token/></d:prop></d:propfind>",
            status=207,
            headers={"Depth": "0"},
        )
        assert before.content != after.content
        remove = (
            f'<d:propertyupdate xmlns:d="{DAV}" xmlns:x="urn:example"><d:remove><d:prop><x:custom/>'
            "</d:prop></d:remove></d:propertyupdate>"
        )
        request(client, "PROPPATCH", CAL, remove, status=207)
        found = parse_multistatus(
            request(client, "PROPFIND", CAL, PROPS, status=207, headers={"Depth": "0"}).content
        )
        assert "{urn:example}custom" not in found[CAL]


def test_proppatch_is_all_or_nothing(dav_node: DavNode) -> None:
    patch = (
        f'<d:propertyupdate xmlns:d="{DAV}"><d:set><d:prop><d:displayname>Nouveau</d:displayname>'
        "<d:getetag>forged</d:getetag></d:prop></d:set></d:propertyupdate>"
    )
    with dav_node.http() as client:
        response = request(client, "PROPPATCH", CAL, patch, status=207)
        root = ElementTree.fromstring(response.content)
        statuses = {
            ps.find(f"{{{DAV}}}prop")[0].tag: ps.findtext(f"{{{DAV}}}status")  # type: ignore[index]
            for ps in root.iter(f"{{{DAV}}}propstat")
        }
        assert " 403 " in statuses[f"{{{DAV}}}getetag"]
        assert " 424 " in statuses[f"{{{DAV}}}displayname"]
        found = parse_multistatus(
            request(client, "PROPFIND", CAL, PROPS, status=207, headers={"Depth": "0"}).content
        )
        assert found[CAL][f"{{{DAV}}}displayname"].text != "Nouveau"


def test_extended_mkcol_creates_an_address_book(dav_node: DavNode) -> None:
    body = (
        f'<d:mkcol xmlns:d="{DAV}" xmlns:card="{CARDDAV}"><d:set><d:prop><d:resourcetype>'
        "<d:collection/><card:addressbook/></d:resourcetype><d:displayname>Clients</d:displayname>"
        "<card:addressbook-description>Les clients</card:addressbook-description>"
        "</d:prop></d:set></d:mkcol>"
    )
    path = home() + "Clients/"
    with dav_node.http() as client:
        request(client, "MKCOL", path, body, status=201)
        request(client, "MKCOL", path, body, status=405)
        put(client, path + "c.vcf", card("c1"), content_type="text/vcard")
        found = parse_multistatus(
            request(
                client,
                "PROPFIND",
                path,
                f'<d:propfind xmlns:d="{DAV}" xmlns:card="{CARDDAV}"><d:prop><d:resourcetype/>'
                "<card:addressbook-description/><card:supported-address-data/></d:prop></d:propfind>",
                status=207,
                headers={"Depth": "0"},
            ).content
        )
        types = {c.tag for c in found[path][f"{{{DAV}}}resourcetype"]}
        assert f"{{{CARDDAV}}}addressbook" in types
        versions = {e.get("version") for e in found[path][f"{{{CARDDAV}}}supported-address-data"]}
        assert versions == {"3.0", "4.0"}
        # A plain MKCOL (no resource type) makes nothing this server can hold.
        response = request(client, "MKCOL", home() + "Plain/", status=403)
        assert error_condition(response) == f"{{{DAV}}}valid-resourcetype"
        request(client, "MKCOL", home() + "Plain/x/", status=409)
        expect(client.delete(path), 204)
        expect(client.get(path + "c.vcf"), 404)
        expect(client.delete(home() + "Inbox/"), 403)


def test_prefer_minimal_drops_missing_properties(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        full = request(client, "PROPFIND", CAL, PROPS, status=207, headers={"Depth": "0"})
        assert " 404 " in full.text
        minimal = request(
            client,
            "PROPFIND",
            CAL,
            PROPS,
            status=207,
            headers={"Depth": "0", "Prefer": "return=minimal"},
        )
        assert (
            " 404 " not in minimal.text
            and minimal.headers["Preference-Applied"] == "return=minimal"
        )
        brief = request(
            client, "PROPFIND", CAL, PROPS, status=207, headers={"Depth": "0", "Brief": "t"}
        )
        assert " 404 " not in brief.text


def test_propfind_depth_one_lists_resources_with_etags(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        etag = put(client, CAL + "e.ics", event("e")).headers["ETag"]
        body = (
            f'<d:propfind xmlns:d="{DAV}"><d:prop><d:getetag/><d:getcontenttype/></d:prop>'
            "</d:propfind>"
        )
        found = parse_multistatus(
            request(client, "PROPFIND", CAL, body, status=207, headers={"Depth": "1"}).content
        )
        assert found[CAL + "e.ics"][f"{{{DAV}}}getetag"].text == etag
        assert (found[CAL + "e.ics"][f"{{{DAV}}}getcontenttype"].text or "").startswith(
            "text/calendar"
        )
        # An empty body is allprop (RFC 4918 §9.1).
        found = parse_multistatus(
            request(client, "PROPFIND", CAL + "e.ics", status=207, headers={"Depth": "0"}).content
        )
        assert found[CAL + "e.ics"][f"{{{DAV}}}getetag"].text == etag
        request(client, "PROPFIND", CAL + "missing.ics", status=404, headers={"Depth": "0"})


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&lol3;</d:displayname></d:prop></d:propfind>'
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&e;</d:displayname></d:prop></d:propfind>'
)


def test_bad_xml_is_a_400(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for body in (BOMB, EXTERNAL, "<d:propfind xmlns:d='DAV:'>", "not xml", "<x/>"):
            response = client.request(
                "PROPFIND", CAL, content=body.encode(), headers={"Depth": "0"}
            )
            assert response.status_code == 400, (body, response.status_code, response.text)
            assert "root:" not in response.text
        response = client.request("REPORT", CAL, content=BOMB.encode(), headers={"Depth": "0"})
        assert response.status_code == 400
        response = client.request("PROPPATCH", CAL, content=BOMB.encode())
        assert response.status_code == 400
        huge = b"<d:propfind xmlns:d='DAV:'>" + b" " * (5 * 1024 * 1024) + b"</d:propfind>"
        assert (
            client.request("PROPFIND", CAL, content=huge, headers={"Depth": "0"}).status_code == 413
        )
        assert client.request("FROBNICATE", CAL).status_code == 405


def test_contacts_collection_refuses_calendar_data(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        response = put(
            client, CONTACTS + "e.ics", event("e"), status=403, content_type="text/calendar"
        )
        assert error_condition(response) == f"{{{CARDDAV}}}supported-address-data"
        response = put(
            client, CONTACTS + "e.vcf", event("e"), status=403, content_type="text/vcard"
        )
        assert error_condition(response) == f"{{{CARDDAV}}}valid-address-data"


def test_control_characters_in_paths_name_nothing(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        assert client.get(CAL + "a%00b.ics").status_code == 404
        assert client.request("PROPFIND", CAL + "%00/", headers={"Depth": "0"}).status_code == 404
        # A decoded line break does not even match the route: Starlette's 404.
        put(client, CAL + "x%0D%0Ay.ics", event("crlf"), status=404)
        request(client, "MKCALENDAR", home() + "bad%00name/", status=409)
        request(
            client, "PROPFIND", "/dav/alice%00@example.test/", status=404, headers={"Depth": "0"}
        )
        multiget = (
            f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:prop><d:getetag/></d:prop>'
            f"<d:href>{CAL}a%00.ics</d:href></c:calendar-multiget>"
        )
        found = parse_multistatus(
            request(client, "REPORT", CAL, multiget, status=207, headers={"Depth": "1"}).content
        )
        assert " 404 " in (found[CAL + "a%00.ics"]["status"].text or "")
