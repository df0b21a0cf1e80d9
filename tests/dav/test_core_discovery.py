"""Discovery (RFC 6764, RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1) and authentication
over real HTTPS, with httpx and the ``caldav`` library given only the root URL."""

from __future__ import annotations

import httpx

from tests.dav.core_helpers import CAL, CONTACTS, expect, home, request
from tests.dav.interop_helpers import (
    ALICE,
    BOB,
    CALDAV,
    CARDDAV,
    DAV,
    PASSWORD,
    DavNode,
    dav_node,
    parse_multistatus,
    propfind,
)

__all__ = ["dav_node"]


def test_well_known_redirects_to_the_dav_root(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for path in ("/.well-known/caldav", "/.well-known/carddav"):
            response = client.request("PROPFIND", path, headers={"Depth": "0"})
            assert response.status_code == 301
            assert response.headers["location"].endswith("/dav/")


def test_root_url_leads_to_principal_and_homes(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        found = parse_multistatus(
            expect(propfind(client, "/", "<d:current-user-principal/>"), 207).content
        )
        (props,) = found.values()
        principal = props[f"{{{DAV}}}current-user-principal"].findtext(f"{{{DAV}}}href")
        assert principal == f"/dav/principals/{ALICE}/"
        found = parse_multistatus(
            expect(
                propfind(
                    client,
                    principal,
                    "<c:calendar-home-set/><card:addressbook-home-set/>"
                    "<c:calendar-user-address-set/><c:schedule-inbox-URL/>"
                    "<c:schedule-outbox-URL/><d:principal-URL/>",
                ),
                207,
            ).content
        )
        props = found[principal]
        assert props[f"{{{CALDAV}}}calendar-home-set"].findtext(f"{{{DAV}}}href") == home()
        assert props[f"{{{CARDDAV}}}addressbook-home-set"].findtext(f"{{{DAV}}}href") == home()
        assert props[f"{{{CALDAV}}}calendar-user-address-set"].findtext(f"{{{DAV}}}href") == (
            f"mailto:{ALICE}"
        )
        assert (
            props[f"{{{CALDAV}}}schedule-inbox-URL"].findtext(f"{{{DAV}}}href") == home() + "Inbox/"
        )


def test_home_lists_default_collections_created_on_first_use(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        found = parse_multistatus(
            expect(
                propfind(
                    client,
                    home(),
                    "<d:resourcetype/><d:displayname/><cs:getctag/><d:sync-token/>"
                    "<c:supported-calendar-component-set/><d:current-user-privilege-set/>"
                    "<d:supported-report-set/>",
                    depth="1",
                ),
                207,
            ).content
        )
        assert CAL in found and CONTACTS in found
        assert home() + "Directory/" in found
        assert home() + "Inbox/" in found and home() + "Outbox/" in found
        calendar_types = {c.tag for c in found[CAL][f"{{{DAV}}}resourcetype"]}
        assert f"{{{CALDAV}}}calendar" in calendar_types
        book_types = {c.tag for c in found[CONTACTS][f"{{{DAV}}}resourcetype"]}
        assert f"{{{CARDDAV}}}addressbook" in book_types
        components = {
            c.get("name") for c in found[CAL][f"{{{CALDAV}}}supported-calendar-component-set"]
        }
        assert components == {"VEVENT", "VTODO", "VJOURNAL"}
        assert found[CAL]["{http://calendarserver.org/ns/}getctag"].text
        reports = found[CAL][f"{{{DAV}}}supported-report-set"]
        names = {r[0][0].tag for r in reports}
        assert f"{{{CALDAV}}}calendar-query" in names and f"{{{DAV}}}sync-collection" in names


def test_options_advertises_dav_classes(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        response = expect(client.request("OPTIONS", CAL), 200)
        classes = {c.strip() for c in response.headers["DAV"].split(",")}
        assert {
            "1",
            "3",
            "calendar-access",
            "addressbook",
            "calendar-auto-schedule",
            "extended-mkcol",
        } <= classes


def test_caldav_library_discovers_from_root_url(dav_node: DavNode) -> None:
    client = dav_node.caldav()
    principal = client.principal()
    calendars = principal.calendars()
    assert [c.url.path for c in calendars if c.url.path.endswith("/Calendar/")]
    new = principal.make_calendar(name="Travail", cal_id="work")
    new.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:lib-1\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20260110T090000Z\r\nDTEND:20260110T100000Z\r\n"
        "SUMMARY:lib\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert [e.icalendar_component["UID"] for e in new.events()] == ["lib-1"]


def test_no_credentials_gets_basic_challenge(dav_node: DavNode) -> None:
    with httpx.Client(base_url=dav_node.base_url, verify=dav_node.ssl_context()) as client:
        response = expect(client.request("PROPFIND", CAL, headers={"Depth": "0"}), 401)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Hirondelle", charset="UTF-8"'


def test_wrong_password_gets_401(dav_node: DavNode) -> None:
    with dav_node.http(password="wrong password") as client:
        expect(client.request("PROPFIND", CAL, headers={"Depth": "0"}), 401)


def test_dav_switch_off_is_refused(dav_node: DavNode) -> None:
    services = dav_node.node.services
    assert services is not None
    dav_node.run(services.accounts.update_account(ALICE, switches={"dav": False}))
    with dav_node.http() as client:
        response = client.request("PROPFIND", CAL, headers={"Depth": "0"})
        assert response.status_code == 403
        assert "disabled" in response.text


def test_other_accounts_paths_are_refused_alike(dav_node: DavNode) -> None:
    dav_node.add_account(BOB)
    with dav_node.http() as client:
        existing = request(
            client, "PROPFIND", home(BOB) + "Calendar/", status=403, headers={"Depth": "0"}
        )
        missing = request(
            client,
            "PROPFIND",
            home("nobody@example.test") + "Calendar/",
            status=403,
            headers={"Depth": "0"},
        )
        assert existing.content == missing.content
        request(client, "PUT", home(BOB) + "Calendar/x.ics", "x", status=403)
        request(client, "PROPFIND", f"/dav/principals/{BOB}/", status=403, headers={"Depth": "0"})
    with dav_node.http(BOB, PASSWORD) as bob:
        request(bob, "PROPFIND", CAL, status=403, headers={"Depth": "0"})


def test_calendar_user_address_set_lists_aliases(dav_node: DavNode) -> None:
    """RFC 6638 §2.4.1 (dav-bugs: only the primary address was listed)."""
    services = dav_node.node.services
    assert services is not None
    dav_node.run(services.aliases.add("contact@example.test", [ALICE]))
    with dav_node.http() as client:
        principal = f"/dav/principals/{ALICE}/"
        found = parse_multistatus(
            expect(propfind(client, principal, "<c:calendar-user-address-set/>"), 207).content
        )
        hrefs = [h.text for h in found[principal][f"{{{CALDAV}}}calendar-user-address-set"]]
        assert hrefs == [f"mailto:{ALICE}", "mailto:contact@example.test"]


def test_concurrent_first_use_makes_one_set_of_collections(dav_node: DavNode) -> None:
    from concurrent.futures import ThreadPoolExecutor

    dav_node.add_account("carol@example.test")

    def look(_index: int) -> int:
        with dav_node.http("carol@example.test") as client:
            return client.request(
                "PROPFIND", home("carol@example.test"), headers={"Depth": "1"}
            ).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(look, range(6))) == {207}
    with dav_node.http("carol@example.test") as client:
        found = parse_multistatus(
            expect(
                propfind(client, home("carol@example.test"), "<d:resourcetype/>", depth="1"), 207
            ).content
        )
        names = sorted(h.rstrip("/").rsplit("/", 1)[-1] for h in found)
        assert names == [
            "Calendar",
            "Contacts",
            "Directory",
            "Inbox",
            "Outbox",
            "carol@example.test",
        ]


def test_outbox_offers_schedule_send(dav_node: DavNode) -> None:
    """RFC 6638 §6.1.1: clients check these before offering free-busy lookups."""
    outbox = home() + "Outbox/"
    with dav_node.http() as client:
        found = parse_multistatus(
            expect(propfind(client, outbox, "<d:current-user-privilege-set/>"), 207).content
        )
        privileges = {p[0].tag for p in found[outbox][f"{{{DAV}}}current-user-privilege-set"]}
        assert f"{{{CALDAV}}}schedule-send" in privileges
        assert f"{{{DAV}}}read" in privileges


def test_account_made_again_gets_its_default_collections(dav_node: DavNode) -> None:
    services = dav_node.node.services
    assert services is not None
    dav_node.add_account("dave@example.test")
    with dav_node.http("dave@example.test") as client:
        expect(propfind(client, home("dave@example.test") + "Calendar/", "<d:resourcetype/>"), 207)
    dav_node.run(services.accounts.remove_account("dave@example.test"))
    dav_node.add_account("dave@example.test")  # SQLite may give it the same id again
    with dav_node.http("dave@example.test") as client:
        expect(propfind(client, home("dave@example.test") + "Calendar/", "<d:resourcetype/>"), 207)
        expect(propfind(client, home("dave@example.test") + "Inbox/", "<d:resourcetype/>"), 207)
