"""Generated calendars and address books for the DAV benchmark and interop tests.

Deterministic for a seed. The shapes follow what clients actually store:

* events: one VCALENDAR per resource, ``DTSTART;TZID=...`` local times with the full
  VTIMEZONE (as Thunderbird, Apple Calendar and DAVx5 write it), a few all-day events
  (``VALUE=DATE``), spread over two years around 2026; a tenth are recurring (daily,
  weekly with BYDAY, monthly, yearly; COUNT, UNTIL or open-ended), a third of those with
  EXDATEs, another third with an overridden occurrence (a second VEVENT with
  RECURRENCE-ID in the same resource, moved by one hour);
* contacts: vCard 3.0 (what DAVx5, Thunderbird and iOS send), FN/N/EMAIL/TEL/ORG/ADR/
  NOTE, a few with two e-mail addresses or a birthday.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import uuid
from dataclasses import dataclass

# Europe/Paris as the tz database defines it since 1996 (RFC 5545 §3.6.5), the form
# clients send: one STANDARD and one DAYLIGHT rule.
VTIMEZONE_PARIS = (
    "BEGIN:VTIMEZONE\r\n"
    "TZID:Europe/Paris\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "TZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\n"
    "TZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "END:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\n"
    "TZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    "END:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)

VTIMEZONE_NEW_YORK = (
    "BEGIN:VTIMEZONE\r\n"
    "TZID:America/New_York\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "TZOFFSETFROM:-0500\r\n"
    "TZOFFSETTO:-0400\r\n"
    "TZNAME:EDT\r\n"
    "DTSTART:20070311T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\n"
    "END:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\n"
    "TZOFFSETFROM:-0400\r\n"
    "TZOFFSETTO:-0500\r\n"
    "TZNAME:EST\r\n"
    "DTSTART:20071104T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\n"
    "END:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)

TIMEZONES = {"Europe/Paris": VTIMEZONE_PARIS, "America/New_York": VTIMEZONE_NEW_YORK}

SUMMARIES = (
    "Réunion d'équipe",
    "Point hebdomadaire",
    "Déjeuner avec Claire",
    "Dentist",
    "Project review",
    "Conférence téléphonique",
    "Yoga",
    "Rendez-vous banque",
    "Sprint planning",
    "Anniversaire de Paul",
    "Cours de piano",
    "Board meeting",
)
LOCATIONS = ("Salle Lumière", "Bureau 204", "Café de la Gare", "Zoom", "", "Lyon", "")
FIRST_NAMES = (
    "Camille", "Léa", "Hugo", "Louis", "Chloé", "Jules", "Inès", "Gabriel", "Manon",
    "Arthur", "Zoé", "Noah", "Alice", "Raphaël", "Emma", "Élodie", "Thomas", "Sarah",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "García", "Müller",
)  # fmt: skip
ORGS = ("Hirondelle SARL", "Mairie de Lyon", "ACME", "Université Paris Cité", "")

# The span of generated events: two years centred on 2026.
SPAN_START = dt.datetime(2025, 7, 1, 0, 0)
SPAN_DAYS = 730
STAMP = "20261101T120000Z"


@dataclass(frozen=True)
class Item:
    """One DAV resource: its file name in the collection, UID and body."""

    name: str
    uid: str
    body: str


def _fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets are folded (CRLF + space)."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    current = b""
    for char in line:
        piece = char.encode()
        if len(current) + len(piece) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += piece
    parts.append(current.decode())
    return "\r\n ".join(parts) + "\r\n"


def _escape(text: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping (also vCard 3.0's)."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _local(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def event(
    rng: random.Random,
    *,
    recurring: bool,
    start: dt.datetime | None = None,
    uid: str | None = None,
    summary: str | None = None,
    sequence: int = 0,
) -> Item:
    """One event resource (a VCALENDAR with its VTIMEZONE)."""
    uid = uid or _uid(rng)
    tzid = "Europe/Paris" if rng.random() < 0.85 else "America/New_York"
    if start is None:
        day = SPAN_START + dt.timedelta(days=rng.randrange(SPAN_DAYS))
        start = day.replace(hour=rng.choice((8, 9, 10, 11, 13, 14, 15, 16, 17, 19)))
        start += dt.timedelta(minutes=rng.choice((0, 0, 15, 30, 45)))
    all_day = not recurring and rng.random() < 0.08
    summary = summary or rng.choice(SUMMARIES)
    location = rng.choice(LOCATIONS)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Hirondelle//bench.dav_data//FR",
        "CALSCALE:GREGORIAN",
    ]
    body_tz = "" if all_day else TIMEZONES[tzid]
    master = ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{STAMP}", f"CREATED:{STAMP}"]
    master.append(f"LAST-MODIFIED:{STAMP}")
    if sequence:
        master.append(f"SEQUENCE:{sequence}")
    duration = dt.timedelta(minutes=rng.choice((30, 60, 60, 90, 120)))
    if all_day:
        master += [
            f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
            f"DTEND;VALUE=DATE:{start + dt.timedelta(days=1):%Y%m%d}",
        ]
    else:
        master += [
            f"DTSTART;TZID={tzid}:{_local(start)}",
            f"DTEND;TZID={tzid}:{_local(start + duration)}",
        ]
    master.append(f"SUMMARY:{_escape(summary)}")
    if location:
        master.append(f"LOCATION:{_escape(location)}")
    if rng.random() < 0.3:
        master.append(
            "DESCRIPTION:"
            + _escape("Ordre du jour : budget, planning.\nAgenda: budget, planning; questions.")
        )
    overrides: list[list[str]] = []
    if recurring:
        kind = rng.randrange(4)
        if kind == 0:
            rule, step = "FREQ=DAILY;COUNT=" + str(rng.randrange(5, 30)), dt.timedelta(days=1)
        elif kind == 1:
            weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()]
            rule, step = f"FREQ=WEEKLY;BYDAY={weekday}", dt.timedelta(weeks=1)
            if rng.random() < 0.5:
                until = start + dt.timedelta(weeks=rng.randrange(4, 60))
                rule += f";UNTIL={until:%Y%m%dT%H%M%S}Z"
        elif kind == 2:
            rule, step = f"FREQ=MONTHLY;COUNT={rng.randrange(3, 24)}", dt.timedelta(days=0)
        else:
            rule, step = "FREQ=YEARLY", dt.timedelta(days=0)
        master.append(f"RRULE:{rule}")
        variant = rng.randrange(3)
        if variant == 0 and step:
            exdates = sorted({rng.randrange(1, 4) for _ in range(2)})
            values = ",".join(_local(start + step * n) for n in exdates)
            master.append(f"EXDATE;TZID={tzid}:{values}")
        elif variant == 1 and step:
            original = start + step * 2
            moved = original + dt.timedelta(hours=1)
            overrides.append(
                [
                    "BEGIN:VEVENT",
                    f"UID:{uid}",
                    f"DTSTAMP:{STAMP}",
                    f"RECURRENCE-ID;TZID={tzid}:{_local(original)}",
                    f"DTSTART;TZID={tzid}:{_local(moved)}",
                    f"DTEND;TZID={tzid}:{_local(moved + duration)}",
                    f"SUMMARY:{_escape(summary)} (déplacé / moved)",
                    "END:VEVENT",
                ]
            )
    if rng.random() < 0.2:
        master += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Rappel",
            "TRIGGER:-PT15M",
            "END:VALARM",
        ]
    master.append("END:VEVENT")
    text = "".join(_fold(line) for line in lines) + body_tz
    text += "".join(_fold(line) for line in master)
    for override in overrides:
        text += "".join(_fold(line) for line in override)
    text += "END:VCALENDAR\r\n"
    return Item(name=f"{uid}.ics", uid=uid, body=text)


def calendar(count: int, seed: int = 1, recurring_fraction: float = 0.1) -> list[Item]:
    """``count`` event resources; every ``1/recurring_fraction``-th is recurring."""
    rng = random.Random(seed)
    every = max(1, round(1 / recurring_fraction)) if recurring_fraction else 0
    return [event(rng, recurring=bool(every) and index % every == 0) for index in range(count)]


def todo(rng: random.Random, *, summary: str, due: dt.date | None = None) -> Item:
    """One VTODO resource (RFC 5545 §3.6.2)."""
    uid = _uid(rng)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Hirondelle//bench.dav_data//FR",
        "BEGIN:VTODO",
        f"UID:{uid}",
        f"DTSTAMP:{STAMP}",
        f"SUMMARY:{_escape(summary)}",
        "STATUS:NEEDS-ACTION",
    ]
    if due is not None:
        lines.append(f"DUE;VALUE=DATE:{due:%Y%m%d}")
    lines += ["END:VTODO", "END:VCALENDAR"]
    return Item(name=f"{uid}.ics", uid=uid, body="".join(_fold(line) for line in lines))


def contact(rng: random.Random, *, uid: str | None = None, note: str = "") -> Item:
    """One vCard 3.0 resource (RFC 2426; RFC 6350 differs in VERSION and a few types)."""
    uid = uid or _uid(rng)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    org = rng.choice(ORGS)
    ascii_first = _ascii(first)
    ascii_last = _ascii(last)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Hirondelle//bench.dav_data//FR",
        f"UID:{uid}",
        f"FN:{_escape(first)} {_escape(last)}",
        f"N:{_escape(last)};{_escape(first)};;;",
        f"EMAIL;TYPE=INTERNET,HOME:{ascii_first}.{ascii_last}{rng.randrange(1000)}@example.org",
        f"TEL;TYPE=CELL:+33 6 {rng.randrange(10, 99)} {rng.randrange(10, 99)}"
        f" {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
    ]
    if rng.random() < 0.3:
        lines.append(f"EMAIL;TYPE=INTERNET,WORK:{ascii_first}@work.example.com")
    if org:
        lines.append(f"ORG:{_escape(org)}")
    if rng.random() < 0.4:
        lines.append(
            f"ADR;TYPE=HOME:;;{rng.randrange(1, 200)} rue de la République;Lyon;;69002;France"
        )
    if rng.random() < 0.2:
        lines.append(f"BDAY:{rng.randrange(1950, 2010)}-{rng.randrange(1, 13):02d}-15")
    if note:
        lines.append(f"NOTE:{_escape(note)}")
    lines += [f"REV:{STAMP}", "END:VCARD"]
    return Item(name=f"{uid}.vcf", uid=uid, body="".join(_fold(line) for line in lines))


def address_book(count: int, seed: int = 1) -> list[Item]:
    rng = random.Random(seed + 1_000_003)
    return [contact(rng) for _ in range(count)]


def _ascii(name: str) -> str:
    """ "Élodie" -> "elodie", for e-mail addresses."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
