"""Black-box CardDAV with plain httpx, the requests DAVx5, Thunderbird (CardBook / TbSync)
and iOS send: discovery from the root, vCard 3.0 and 4.0 resources, addressbook-query
with prop-filter/text-match, addressbook-multiget with version conversion,
sync-collection, the UID rule and the global address book.

RFC 6352 (CardDAV), RFC 6578 (sync-collection), RFC 5397, RFC 2426 / RFC 6350 (vCard).
"""

from __future__ import annotations

from xml.etree import ElementTree

import httpx

from tests.dav.interop_helpers import (
    ALICE,
    BOB,
    CARDDAV,
    DAV,
    DavNode,
    dav_node,
    home,
    last_segment,
    parse_multistatus,
    propfind,
    report,
    sync_token_of,
)

__all__ = ["dav_node"]

CARD = f"{{{CARDDAV}}}"
D = f"{{{DAV}}}"


def vcard3(uid: str, name: str, email: str, org: str = "") -> str:
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:{name}",
        f"N:{name.split()[-1]};{name.split()[0]};;;",
        f"EMAIL;TYPE=INTERNET,WORK:{email}",
    ]
    if org:
        lines.append(f"ORG:{org}")
    return "\r\n".join([*lines, "END:VCARD"]) + "\r\n"


def vcard4(uid: str, name: str, email: str) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:4.0\r\n"
        f"UID:urn:uuid:{uid}\r\nFN:{name}\r\nN:{name.split()[-1]};{name.split()[0]};;;\r\n"
        f"EMAIL;TYPE=work:{email}\r\nEND:VCARD\r\n"
    )


def put(http: httpx.Client, path: str, body: str, **headers: str) -> httpx.Response:
    return http.put(
        path,
        content=body.encode(),
        headers={"Content-Type": "text/vcard; charset=utf-8", **headers},
    )


def discover_address_books(
    http: httpx.Client,
) -> dict[str, dict[str, ElementTree.Element]]:
    """Root -> current-user-principal -> addressbook-home-set -> the address books."""
    root = propfind(http, "/", "<d:current-user-principal/>")
    assert root.status_code == 207, root.text
    (props,) = parse_multistatus(root.content).values()
    principal = props[f"{D}current-user-principal"].findtext(f"{D}href")
    assert principal, root.text
    found = propfind(http, principal, "<card:addressbook-home-set/>")
    assert found.status_code == 207, found.text
    (props,) = parse_multistatus(found.content).values()
    home_href = props[f"{CARD}addressbook-home-set"].findtext(f"{D}href")
    assert home_href, found.text
    listing = propfind(http, home_href, "<d:resourcetype/><d:displayname/>", depth="1")
    assert listing.status_code == 207, listing.text
    return {
        href: props
        for href, props in parse_multistatus(listing.content).items()
        if props[f"{D}resourcetype"].find(f"{CARD}addressbook") is not None
    }


def test_discovery_finds_contacts_and_the_directory(dav_node: DavNode) -> None:
    with dav_node.http() as http:
        books = discover_address_books(http)
    assert {last_segment(h) for h in books} >= {"Contacts", "Directory"}, list(books)
    assert all(h.startswith((home(), f"/dav/{ALICE}/")) for h in books)


def test_query_multiget_and_version_conversion(dav_node: DavNode) -> None:
    book = home() + "Contacts/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        created = put(
            http,
            book + "camille.vcf",
            vcard3("c-1", "Camille Dubois", "camille@acme.example", "ACME"),
        )
        assert created.status_code == 201, created.text
        assert created.headers.get("etag", "").startswith('"'), "strong ETag expected"
        assert (
            put(
                http, book + "hugo.vcf", vcard4("c-2", "Hugo Martin", "hugo@example.org")
            ).status_code
            == 201
        )
        assert (
            put(
                http, book + "ines.vcf", vcard3("c-3", "Inès Lefèvre", "ines@acme.example")
            ).status_code
            == 201
        )

        # RFC 6352 §8.6: EMAIL contains "acme" (case-insensitive by default collation).
        query = report(
            http,
            book,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<card:addressbook-query xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            "<d:prop><d:getetag/></d:prop>"
            '<card:filter><card:prop-filter name="EMAIL">'
            '<card:text-match match-type="contains">ACME</card:text-match>'
            "</card:prop-filter></card:filter></card:addressbook-query>",
        )
        assert query.status_code == 207, query.text
        assert sorted(last_segment(h) for h in parse_multistatus(query.content)) == [
            "camille.vcf",
            "ines.vcf",
        ]
        # Non-ASCII text-match on FN (what a phone's search field sends).
        accents = report(
            http,
            book,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<card:addressbook-query xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            "<d:prop><d:getetag/></d:prop>"
            '<card:filter><card:prop-filter name="FN">'
            '<card:text-match match-type="starts-with">inès</card:text-match>'
            "</card:prop-filter></card:filter></card:addressbook-query>",
        )
        assert accents.status_code == 207, accents.text
        assert [last_segment(h) for h in parse_multistatus(accents.content)] == ["ines.vcf"]

        # RFC 6352 §8.7 multiget, asking for vCard 4.0 (§10.4 address-data version).
        multiget = report(
            http,
            book,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<card:addressbook-multiget xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            '<d:prop><d:getetag/><card:address-data content-type="text/vcard" version="4.0"/>'
            f"</d:prop><d:href>{book}camille.vcf</d:href><d:href>{book}hugo.vcf</d:href>"
            f"<d:href>{book}missing.vcf</d:href></card:addressbook-multiget>",
        )
        assert multiget.status_code == 207, multiget.text
        results = {last_segment(h): p for h, p in parse_multistatus(multiget.content).items()}
        camille = results["camille.vcf"][f"{CARD}address-data"].text or ""
        assert "VERSION:4.0" in camille and "Camille Dubois" in camille
        assert "VERSION:4.0" in (results["hugo.vcf"][f"{CARD}address-data"].text or "")
        # A missing href gets its own 404 response (RFC 6352 §8.7).
        assert " 404 " in (results["missing.vcf"]["status"].text or "")

        # And the other way: a 4.0 card read as 3.0.
        as3 = report(
            http,
            book,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<card:addressbook-multiget xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            '<d:prop><card:address-data content-type="text/vcard" version="3.0"/></d:prop>'
            f"<d:href>{book}hugo.vcf</d:href></card:addressbook-multiget>",
        )
        (hugo,) = parse_multistatus(as3.content).values()
        text = hugo[f"{CARD}address-data"].text or ""
        assert "VERSION:3.0" in text and "hugo@example.org" in text


def test_sync_collection_and_uid_rule(dav_node: DavNode) -> None:
    book = home() + "Contacts/"
    sync_body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{{token}}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        for n in range(4):
            assert (
                put(
                    http, f"{book}{n}.vcf", vcard3(f"u-{n}", f"Zoé Petit{n}", f"z{n}@example.org")
                ).status_code
                == 201
            )
        first = report(http, book, sync_body.replace("{token}", ""), depth="0")
        assert first.status_code == 207, first.text
        assert sorted(last_segment(h) for h in parse_multistatus(first.content)) == [
            f"{n}.vcf" for n in range(4)
        ]
        token = sync_token_of(first.content)

        # RFC 6352 §6.3.2.1 no-uid-conflict: the same UID under another name is refused,
        # naming the existing resource.
        duplicate = put(http, book + "copy.vcf", vcard3("u-1", "Zoé Copie", "copy@example.org"))
        assert duplicate.status_code in {403, 409}, duplicate.text
        error = ElementTree.fromstring(duplicate.content)
        conflict = error.find(f"{CARD}no-uid-conflict")
        assert conflict is not None, duplicate.text
        assert last_segment(conflict.findtext(f"{D}href", "")) == "1.vcf"
        assert http.get(book + "copy.vcf").status_code == 404

        # If-Match with the current ETag succeeds; the change and a deletion are synced.
        etag = http.get(book + "2.vcf").headers["etag"]
        updated = put(
            http,
            book + "2.vcf",
            vcard3("u-2", "Zoé Changée", "z2@example.org"),
            **{"If-Match": etag},
        )
        assert updated.status_code == 204, updated.text
        assert http.delete(book + "3.vcf").status_code in {200, 204}
        changes = report(http, book, sync_body.replace("{token}", token), depth="0")
        assert changes.status_code == 207, changes.text
        found = parse_multistatus(changes.content)
        assert sorted(last_segment(h) for h in found) == ["2.vcf", "3.vcf"]
        gone = next(p for h, p in found.items() if h.endswith("3.vcf"))
        assert " 404 " in (gone["status"].text or "")

        # RFC 6578 §3.2: a token this collection never issued is refused with
        # DAV:valid-sync-token.
        bogus = report(
            http,
            book,
            sync_body.replace("{token}", "http://example.test/ns/sync/999999"),
            depth="0",
        )
        assert bogus.status_code in {403, 409}, bogus.text
        assert ElementTree.fromstring(bogus.content).find(f"{D}valid-sync-token") is not None


def test_directory_lists_colleagues_read_only(dav_node: DavNode) -> None:
    dav_node.add_account(BOB)
    directory = home() + "Directory/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")
        query = report(
            http,
            directory,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<card:addressbook-query xmlns:d="{DAV}" xmlns:card="{CARDDAV}">'
            "<d:prop><d:getetag/><card:address-data/></d:prop><card:filter>"
            '<card:prop-filter name="EMAIL"><card:text-match match-type="equals">'
            f"{BOB}</card:text-match></card:prop-filter></card:filter></card:addressbook-query>",
        )
        assert query.status_code == 207, query.text
        (bob,) = parse_multistatus(query.content).values()
        assert BOB in (bob[f"{CARD}address-data"].text or "")
        # Read-only (RFC 3744 DAV:need-privileges): writing is refused, nothing stored.
        refused = put(
            http, directory + "intruder.vcf", vcard3("x-1", "Mallory Intrus", "m@example.org")
        )
        assert refused.status_code == 403, refused.text
        assert http.get(directory + "intruder.vcf").status_code == 404
