"""vdirsyncer (the Debian package) against the node: a CalDAV and a CardDAV pair with
local ``filesystem`` storages, collections found by ``discover``, two-way sync with
changes on both sides, twice, and a last sync that has nothing to do.

vdirsyncer relies on ETags that change exactly when the content does (RFC 4918 §8.6),
on If-Match/If-None-Match for its writes (RFC 7232) and, for CalDAV, on calendar-query
/ calendar-multiget (RFC 4791 §7.8, §7.9) and CardDAV addressbook-multiget (RFC 6352
§8.7): a server fault there shows as an error, a lost change or a repeated upload.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.dav.interop_helpers import (
    DAV,
    DavNode,
    Vdirsyncer,
    dav_node,
    home,
    parse_multistatus,
    propfind,
    same_path,
)

__all__ = ["dav_node"]


def event(uid: str, summary: str, day: int = 10) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//vdirsyncer//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:202603{day:02d}T090000Z\r\nDTEND:202603{day:02d}T100000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def contact(uid: str, name: str, email: str) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEMAIL;TYPE=INTERNET:{email}\r\n"
        "END:VCARD\r\n"
    )


def put(http: httpx.Client, path: str, body: str, kind: str) -> None:
    response = http.put(
        path, content=body.encode(), headers={"Content-Type": f"{kind}; charset=utf-8"}
    )
    assert response.status_code in {201, 204}, response.text


def server_items(http: httpx.Client, collection: str) -> dict[str, str]:
    """UID -> body of every resource of a collection, read with PROPFIND + GET."""
    response = propfind(http, collection, "<d:getetag/>", depth="1")
    assert response.status_code == 207, response.text
    found: dict[str, str] = {}
    for href, props in parse_multistatus(response.content).items():
        if f"{{{DAV}}}getetag" not in props or same_path(href, collection):
            continue
        got = http.get(href)
        assert got.status_code == 200, (href, got.status_code)
        found[uid_of(got.text)] = got.text
    return found


def local_items(directory: Path) -> dict[str, str]:
    return {
        uid_of(path.read_text(encoding="utf-8")): path.read_text(encoding="utf-8")
        for path in directory.iterdir()
        if path.is_file()
    }


def local_file(directory: Path, uid: str) -> Path:
    for path in directory.iterdir():
        if path.is_file() and f"UID:{uid}\r\n" in path.read_text(encoding="utf-8").replace(
            "\r\n", "\n"
        ).replace("\n", "\r\n"):
            return path
    raise AssertionError(f"no local file with UID {uid} in {directory}")


def uid_of(text: str) -> str:
    match = re.search(r"^UID:(.+?)\r?$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def summary_of(text: str) -> str:
    match = re.search(r"^(?:SUMMARY|FN):(.+?)\r?$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def write_local(path: Path, body: str) -> None:
    path.write_text(body, encoding="utf-8", newline="")


def test_two_way_sync_twice_then_nothing_to_do(dav_node: DavNode, tmp_path: Path) -> None:
    calendar, contacts = home() + "Calendar/", home() + "Contacts/"
    with dav_node.http() as http:
        # First use creates the default collections (issue 5), as a client's first
        # PROPFIND of the home would.
        assert propfind(http, home(), "<d:resourcetype/>", depth="1").status_code == 207
        for n in range(3):
            put(
                http,
                f"{calendar}server-{n}.ics",
                event(f"ev-server-{n}", f"Serveur {n}"),
                "text/calendar",
            )
        for n in range(2):
            put(
                http,
                f"{contacts}server-{n}.vcf",
                contact(f"card-server-{n}", f"Contact {n}", f"c{n}@example.org"),
                "text/vcard",
            )

    sync = Vdirsyncer.create(tmp_path / "vdirsyncer", dav_node)
    # discover asks before creating each local collection; answer yes to all.
    sync.run("discover", stdin="y\n" * 20)
    local_calendar = sync.root / "calendars" / "Calendar"
    local_contacts = sync.root / "contacts" / "Contacts"
    assert local_calendar.is_dir() and local_contacts.is_dir(), list(sync.root.rglob("*"))
    sync.run("sync")
    assert sorted(local_items(local_calendar)) == [f"ev-server-{n}" for n in range(3)]
    assert sorted(local_items(local_contacts)) == [f"card-server-{n}" for n in range(2)]

    for round_ in (1, 2):
        # Local side: one new event, one changed event, one removed contact.
        write_local(
            local_calendar / f"local-{round_}.ics",
            event(f"ev-local-{round_}", "Local", day=round_ + 1),
        )
        changed = local_file(local_calendar, "ev-server-0")
        write_local(changed, event("ev-server-0", f"Changé localement {round_}"))
        local_file(local_contacts, f"card-server-{round_ - 1}").unlink()
        # Server side: one new contact, one changed event, one removed event.
        with dav_node.http() as http:
            put(
                http,
                f"{contacts}remote-{round_}.vcf",
                contact(f"card-remote-{round_}", f"Distant {round_}", f"r{round_}@example.org"),
                "text/vcard",
            )
            items = server_items(http, calendar)
            assert "ev-server-1" in items
            put(
                http,
                server_href(http, calendar, "ev-server-1"),
                event("ev-server-1", f"Changed on the server {round_}"),
                "text/calendar",
            )
            if round_ == 1:
                response = http.delete(server_href(http, calendar, "ev-server-2"))
                assert response.status_code in {200, 204}

        output = sync.run("sync")
        assert "Copying (uploading)" in output, output
        assert "Deleting" in output, output

        with dav_node.http() as http:
            remote_calendar = server_items(http, calendar)
            remote_contacts = server_items(http, contacts)
        here_calendar = local_items(local_calendar)
        here_contacts = local_items(local_contacts)
        expected_events = {
            "ev-server-0",
            "ev-server-1",
            *(f"ev-local-{r}" for r in range(1, round_ + 1)),
        }
        expected_cards = {f"card-remote-{r}" for r in range(1, round_ + 1)} | {
            f"card-server-{n}" for n in range(round_, 2)
        }
        assert set(remote_calendar) == set(here_calendar) == expected_events
        assert set(remote_contacts) == set(here_contacts) == expected_cards
        for side in (remote_calendar, here_calendar):
            assert summary_of(side["ev-server-0"]) == f"Changé localement {round_}"
            assert summary_of(side["ev-server-1"]) == f"Changed on the server {round_}"
            assert summary_of(side[f"ev-local-{round_}"]) == "Local"
        assert summary_of(remote_contacts[f"card-remote-{round_}"]) == f"Distant {round_}"

    # Nothing changed since: the sync must neither copy nor delete anything (a server
    # whose ETags move without a change would make vdirsyncer download again).
    before = {p: p.read_bytes() for p in sync.root.glob("c*/*/*") if p.is_file()}
    output = sync.run("sync")
    assert not re.search(r"Copying|Deleting|Uploading|Updating", output), output
    after = {p: p.read_bytes() for p in sync.root.glob("c*/*/*") if p.is_file()}
    assert after == before


def server_href(http: httpx.Client, collection: str, uid: str) -> str:
    response = propfind(http, collection, "<d:getetag/>", depth="1")
    for href in parse_multistatus(response.content):
        if not same_path(href, collection):
            got = http.get(href)
            if got.status_code == 200 and uid_of(got.text) == uid:
                return href
    raise AssertionError(f"{uid} not on the server")
