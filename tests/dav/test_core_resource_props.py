"""RFC 4918 §9.2 PROPPATCH on resources (calendar objects and vCards): dead properties
are stored, shown by PROPFIND (prop, allprop, propname), kept across a PUT of new
content (§9.7.1), copied by COPY and moved by MOVE (§9.8.2, §9.9.1), dropped by DELETE
(§9.6); a protected property fails with DAV:cannot-modify-protected-property and the
whole request is refused (424 for the others). Real HTTPS, both backends."""

from __future__ import annotations

from xml.etree import ElementTree

from tests.dav.core_helpers import CAL, CONTACTS, card, event, put, request
from tests.dav.interop_helpers import CALDAV, DAV, DavNode, dav_node, parse_multistatus

__all__ = ["dav_node"]

X = "urn:example:hirondelle"
COLOR = f"{{{X}}}colour"
NOTE = f"{{{X}}}note"


def _patch(set_xml: str = "", remove_xml: str = "") -> str:
    body = f'<d:propertyupdate xmlns:d="{DAV}" xmlns:x="{X}">'
    if set_xml:
        body += f"<d:set><d:prop>{set_xml}</d:prop></d:set>"
    if remove_xml:
        body += f"<d:remove><d:prop>{remove_xml}</d:prop></d:remove>"
    return body + "</d:propertyupdate>"


def _statuses(body: bytes) -> dict[str, str]:
    """property Clark name -> status line, from a one-response multistatus."""
    root = ElementTree.fromstring(body)
    out: dict[str, str] = {}
    for stat in root.iter(f"{{{DAV}}}propstat"):
        status = stat.findtext(f"{{{DAV}}}status", "")
        for prop in stat.find(f"{{{DAV}}}prop") or []:
            out[prop.tag] = status
    return out


def _props(client, path: str, names: str = "") -> dict[str, ElementTree.Element]:  # type: ignore[no-untyped-def]
    body = (
        f'<d:propfind xmlns:d="{DAV}" xmlns:x="{X}"><d:prop>{names}</d:prop></d:propfind>'
        if names
        else f'<d:propfind xmlns:d="{DAV}"><d:allprop/></d:propfind>'
    )
    response = request(client, "PROPFIND", path, body, status=207, headers={"Depth": "0"})
    return parse_multistatus(response.content)[path]


def test_set_show_keep_across_put_and_remove(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        path = CAL + "a.ics"
        put(client, path, event("a"))
        etag = client.head(path).headers["ETag"]
        response = request(
            client,
            "PROPPATCH",
            path,
            _patch("<x:colour>rouge</x:colour><x:note><x:b>gras</x:b></x:note>"),
            status=207,
        )
        assert set(_statuses(response.content).values()) == {"HTTP/1.1 200 OK"}
        # The content did not change: neither does its ETag.
        assert client.head(path).headers["ETag"] == etag
        named = _props(client, path, "<x:colour/><x:note/><d:getetag/>")
        assert named[COLOR].text == "rouge"
        assert named[NOTE].findtext(f"{{{X}}}b") == "gras"
        assert COLOR in _props(client, path)  # allprop shows dead properties
        propname = request(
            client,
            "PROPFIND",
            path,
            f'<d:propfind xmlns:d="{DAV}"><d:propname/></d:propfind>',
            status=207,
            headers={"Depth": "0"},
        )
        assert {COLOR, NOTE} <= set(parse_multistatus(propname.content)[path])
        # Depth 1 on the collection shows them too.
        listing = request(
            client,
            "PROPFIND",
            CAL,
            f'<d:propfind xmlns:d="{DAV}" xmlns:x="{X}"><d:prop><x:colour/></d:prop></d:propfind>',
            status=207,
            headers={"Depth": "1"},
        )
        assert parse_multistatus(listing.content)[path][COLOR].text == "rouge"
        # RFC 4918 §9.7.1: a PUT of new content keeps the dead properties.
        put(client, path, event("a", summary="Autre"), status=204)
        assert _props(client, path, "<x:colour/>")[COLOR].text == "rouge"
        request(client, "PROPPATCH", path, _patch(remove_xml="<x:colour/>"), status=207)
        after = _props(client, path, "<x:colour/><x:note/>")
        assert COLOR not in after and NOTE in after


def test_protected_property_fails_the_whole_request(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        path = CONTACTS + "jean.vcf"
        put(client, path, card("jean"), content_type="text/vcard; charset=utf-8")
        response = request(
            client,
            "PROPPATCH",
            path,
            _patch("<x:colour>bleu</x:colour><d:getetag>x</d:getetag>"),
            status=207,
        )
        statuses = _statuses(response.content)
        assert statuses[f"{{{DAV}}}getetag"].startswith("HTTP/1.1 403")
        assert statuses[COLOR].startswith("HTTP/1.1 424")
        root = ElementTree.fromstring(response.content)
        assert root.find(f".//{{{DAV}}}error/{{{DAV}}}cannot-modify-protected-property") is not None
        # Atomic: the dead property was not stored.
        assert COLOR not in _props(client, path, "<x:colour/>")
        # A vCard takes dead properties like a calendar object.
        request(client, "PROPPATCH", path, _patch("<x:colour>vert</x:colour>"), status=207)
        assert _props(client, path, "<x:colour/>")[COLOR].text == "vert"


def test_copy_move_delete(dav_node: DavNode) -> None:
    other = CAL.rsplit("/", 2)[0] + "/Other/"
    with dav_node.http() as client:
        request(client, "MKCALENDAR", other, status=201)
        put(client, CAL + "src.ics", event("src"))
        request(client, "PROPPATCH", CAL + "src.ics", _patch("<x:note>n</x:note>"), status=207)
        # COPY into another calendar (the UID is taken in this one).
        request(
            client, "COPY", CAL + "src.ics", status=201, headers={"Destination": other + "c.ics"}
        )
        assert _props(client, other + "c.ics", "<x:note/>")[NOTE].text == "n"
        assert _props(client, CAL + "src.ics", "<x:note/>")[NOTE].text == "n"
        # MOVE (a rename here) takes them along.
        request(client, "MOVE", CAL + "src.ics", status=201, headers={"Destination": CAL + "m.ics"})
        assert _props(client, CAL + "m.ics", "<x:note/>")[NOTE].text == "n"
        # DELETE drops them: a new resource of the same name starts without.
        request(client, "DELETE", CAL + "m.ics", status=204)
        put(client, CAL + "m.ics", event("src"))
        assert NOTE not in _props(client, CAL + "m.ics", "<x:note/>")
        # Overwriting a destination drops the destination's own properties.
        request(client, "PROPPATCH", other + "c.ics", _patch("<x:colour>c</x:colour>"), status=207)
        request(client, "PROPPATCH", CAL + "m.ics", _patch("<x:note>m</x:note>"), status=207)
        request(
            client,
            "MOVE",
            CAL + "m.ics",
            status=204,
            headers={"Destination": other + "c.ics", "Overwrite": "T"},
        )
        moved = _props(client, other + "c.ics", "<x:note/><x:colour/>")
        assert moved[NOTE].text == "m" and COLOR not in moved


def test_reports_show_dead_properties(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        put(client, CAL + "r.ics", event("r"))
        request(client, "PROPPATCH", CAL + "r.ics", _patch("<x:note>r</x:note>"), status=207)
        multiget = (
            f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:x="{X}">'
            f"<d:prop><x:note/><c:calendar-data/></d:prop><d:href>{CAL}r.ics</d:href>"
            "</c:calendar-multiget>"
        )
        found = parse_multistatus(
            request(client, "REPORT", CAL, multiget, status=207, headers={"Depth": "1"}).content
        )
        assert found[CAL + "r.ics"][NOTE].text == "r"
        sync = (
            f'<d:sync-collection xmlns:d="{DAV}" xmlns:x="{X}"><d:sync-token/>'
            "<d:sync-level>1</d:sync-level><d:prop><x:note/></d:prop></d:sync-collection>"
        )
        found = parse_multistatus(
            request(client, "REPORT", CAL, sync, status=207, headers={"Depth": "1"}).content
        )
        assert found[CAL + "r.ics"][NOTE].text == "r"
