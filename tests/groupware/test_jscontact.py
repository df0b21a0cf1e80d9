"""JSContact <-> vCard conversion (RFC 9555) in groupware/jscontact.py: the RFC's kinds of
examples, the content-line reader, lines kept byte for byte on update, and hypothesis
round trips (JSContact -> vCard -> JSContact, and patch -> vCard -> JSContact)."""

from __future__ import annotations

import contextlib
import datetime as dt
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.groupware import contacts as contact_rules
from hirondelle.groupware import jscontact

NOW = "2026-11-22T17:00:00Z"


def roundtrip(card: dict[str, Any], *, uid: str = "uid-1") -> dict[str, Any]:
    checked = jscontact.check(card, creating=True)
    text = jscontact.write_vcard(None, checked, uid=uid, now=NOW)
    contact_rules.index(text)  # what a CardDAV PUT would accept
    back = jscontact.read(text)
    for key in ("@type", "version", "updated"):
        back.pop(key)
    assert back.pop("uid") == uid
    return back


# -- examples ---------------------------------------------------------------------------------


def test_rfc_9555_style_card() -> None:
    text = "\r\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:4.0",
            "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1",
            "KIND:individual",
            "FN:Mr. John Q. Public\\, Esq.",
            "N:Public;John;Quinlan;Mr.;Esq.",
            "NICKNAME:Johnny,JQ",
            "EMAIL;TYPE=work;PREF=1:jqpublic@xyz.example.com",
            "TEL;VALUE=uri;TYPE=voice,home:tel:+1-555-555-5555;ext=5555",
            'ADR;TYPE=work;LABEL="42 Plantation St.\\nBaytown, LA 30314";CC=US:;;42 Plantation '
            "St.;Baytown;LA;30314;United States of America",
            "ORG:ABC\\, Inc.;North American Division;Marketing",
            "TITLE:Research Scientist",
            "ROLE:Project Leader",
            "NOTE:This fax number is operational 0800 to 1715\\nEST\\, Mon-Fri.",
            "IMPP;PREF=1:xmpp:alice@example.com",
            "BDAY:19531015",
            "ANNIVERSARY:--0415",
            "REV:20221122T140000Z",
            "END:VCARD",
            "",
        ]
    )
    card = jscontact.read(text)
    assert card["uid"] == "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
    assert card["kind"] == "individual"
    assert card["name"] == {
        "full": "Mr. John Q. Public, Esq.",
        "components": [
            {"kind": "title", "value": "Mr."},
            {"kind": "given", "value": "John"},
            {"kind": "given2", "value": "Quinlan"},
            {"kind": "surname", "value": "Public"},
            {"kind": "credential", "value": "Esq."},
        ],
    }
    assert card["nicknames"] == {"k1": {"name": "Johnny"}, "k2": {"name": "JQ"}}
    assert card["emails"] == {
        "e1": {"address": "jqpublic@xyz.example.com", "contexts": {"work": True}, "pref": 1}
    }
    assert card["phones"] == {
        "p1": {
            "number": "tel:+1-555-555-5555;ext=5555",
            "features": {"voice": True},
            "contexts": {"private": True},
        }
    }
    address = card["addresses"]["a1"]
    assert address["full"] == "42 Plantation St.\\nBaytown, LA 30314" or address["full"].startswith(
        "42 Plantation"
    )
    assert address["countryCode"] == "US"
    assert {"kind": "locality", "value": "Baytown"} in address["components"]
    assert card["organizations"] == {
        "o1": {
            "name": "ABC, Inc.",
            "units": [{"name": "North American Division"}, {"name": "Marketing"}],
        }
    }
    assert card["titles"] == {
        "t1": {"name": "Research Scientist", "kind": "title"},
        "t2": {"name": "Project Leader", "kind": "role"},
    }
    assert (
        card["notes"]["n1"]["note"] == "This fax number is operational 0800 to 1715\nEST, Mon-Fri."
    )
    assert card["onlineServices"] == {"s1": {"uri": "xmpp:alice@example.com", "pref": 1}}
    assert card["anniversaries"] == {
        "d1": {
            "kind": "birth",
            "date": {"@type": "PartialDate", "year": 1953, "month": 10, "day": 15},
        },
        "d2": {"kind": "wedding", "date": {"@type": "PartialDate", "month": 4, "day": 15}},
    }
    assert card["updated"] == "2022-11-22T14:00:00Z"


def test_vcard_3_forms() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nN:;A;;;\r\n"
        "EMAIL;INTERNET;HOME:a@b.c\r\nEMAIL;TYPE=INTERNET,pref:d@e.f\r\n"
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-02-29\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n"
        "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:m1\r\nBDAY:not a date\r\nEND:VCARD\r\n"
    )
    card = jscontact.read(text)
    assert card["emails"]["e1"] == {"address": "a@b.c", "contexts": {"private": True}}
    assert card["emails"]["e2"] == {"address": "d@e.f", "pref": 1}
    assert card["anniversaries"] == {
        "d1": {"kind": "birth", "date": {"@type": "PartialDate", "month": 2, "day": 29}}
    }
    assert card["kind"] == "group" and card["members"] == {"urn:uuid:m1": True}


def test_update_changes_only_the_lines_of_changed_entries() -> None:
    original = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:Jean\r\n"
        "EMAIL;TYPE=work;X-KEEP=1:j@x.fr\r\nEMAIL:k@x.fr\r\n"
        'X-CUSTOM;X-P="a:b":value\\, kept\r\n'
        "PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA\r\n"
        " DUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n"
        "NICKNAME:Jo,Jojo\r\nEND:VCARD\r\n"
    )
    reading = jscontact.read_vcard(original)
    card = jscontact.apply_patch(
        reading.card, {"emails/e2/address": "new@x.fr", "nicknames/k1": None}
    )
    card = jscontact.check(card, creating=False)
    text = jscontact.write_vcard(reading, card, uid="u", now=NOW)
    assert 'X-CUSTOM;X-P="a:b":value\\, kept\r\n' in text
    # The folded PHOTO line is kept exactly as it was.
    assert (
        "PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA\r\n"
        " DUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n"
    ) in text
    assert "EMAIL;TYPE=work;X-KEEP=1;PROP-ID=e1:j@x.fr" in text
    assert "EMAIL;PROP-ID=e2:new@x.fr" in text and "k@x.fr" not in text
    assert "NICKNAME;PROP-ID=k2:Jojo" in text and "Jo," not in text
    assert "FN:Jean\r\n" in text and "REV:20261122T170000Z" in text
    again = jscontact.read(text)
    assert again["emails"] == {
        "e1": {"address": "j@x.fr", "contexts": {"work": True}},
        "e2": {"address": "new@x.fr"},
    }
    assert again["nicknames"] == {"k2": {"name": "Jojo"}}
    contact_rules.index(text)


def test_name_without_full_gets_a_derived_fn() -> None:
    card = {
        "name": {
            "components": [{"kind": "given", "value": "Ana"}, {"kind": "surname", "value": "Zola"}]
        }
    }
    text = jscontact.write_vcard(None, jscontact.check(card, creating=True), uid="u", now=NOW)
    assert "FN;DERIVED=TRUE:Ana Zola" in text
    assert "full" not in jscontact.read(text)["name"]
    only_email = {"emails": {"e": {"address": "x@y.z"}}}
    text = jscontact.write_vcard(None, jscontact.check(only_email, creating=True), uid="u", now=NOW)
    assert "FN;DERIVED=TRUE:x@y.z" in text
    contact_rules.index(text)


@pytest.mark.parametrize(
    ("card", "path"),
    [
        ({"photos": {}}, "photos"),
        ({"links": {"l": {"uri": "no scheme"}}}, "links/l/uri"),
        ({"keywords": {"a": False}}, "keywords"),
        ({"@type": "Group"}, "@type"),
        ({"kind": "robot"}, "kind"),
        ({"emails": {"bad id!": {"address": "a@b"}}}, "emails/bad id!"),
        ({"emails": {"e": {"address": "a@b", "label": "x"}}}, "emails/e/label"),
        ({"emails": {"e": {"address": "a\r\nb"}}}, "emails/e/address"),
        ({"emails": {"e": {"address": "a@b", "pref": 0}}}, "emails/e/pref"),
        ({"phones": {"p": {"number": "1", "features": {"laser": True}}}}, "phones/p/features"),
        ({"name": {"components": [{"kind": "nick", "value": "x"}]}}, "name/components/0/kind"),
        ({"name": {"sortAs": {}}}, "name/sortAs"),
        (
            {
                "anniversaries": {
                    "d": {"kind": "birth", "date": {"year": 2001, "month": 2, "day": 29}}
                }
            },
            "anniversaries/d/date",
        ),
        (
            {"anniversaries": {"d": {"kind": "party", "date": {"year": 2001}}}},
            "anniversaries/d/kind",
        ),
        ({"onlineServices": {"s": {"uri": "nocolon"}}}, "onlineServices/s/uri"),
        ({"addresses": {"a": {"contexts": {"work": True}}}}, "addresses/a"),
        ({"created": "yesterday"}, "created"),
    ],
)
def test_refused_input_names_the_property(card: dict[str, Any], path: str) -> None:
    with pytest.raises(jscontact.JSContactError) as caught:
        jscontact.check(card, creating=True)
    assert caught.value.path == path


def test_patch() -> None:
    base = {"a": {"b": 1}, "l": [{"x": 1}]}
    assert jscontact.apply_patch(base, {"a/c": 2, "l/0/x": 3}) == {
        "a": {"b": 1, "c": 2},
        "l": [{"x": 3}],
    }
    assert jscontact.apply_patch(base, {"a": None}) == {"l": [{"x": 1}]}
    assert jscontact.apply_patch(base, {"x~1y": 1})["x/y"] == 1
    for bad in ({"z/y": 1}, {"a": 1, "a/b": 2}, {"/a": 1}, {"l/5/x": 1}):
        with pytest.raises(jscontact.PatchError):
            jscontact.apply_patch(base, bad)
    assert base == {"a": {"b": 1}, "l": [{"x": 1}]}  # the original is untouched


# -- content lines -------------------------------------------------------------------------------

param_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"^')
    | st.just("\n"),
    min_size=1,
    max_size=20,
)
value_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"),
    max_size=200,
)
names = st.text(alphabet=string.ascii_uppercase + string.digits + "-", min_size=1, max_size=12)


@given(
    name=names,
    params=st.lists(st.tuples(names, st.lists(param_text, min_size=1, max_size=3)), max_size=3),
    value=value_text,
)
def test_content_line_roundtrip(name: str, params: list[tuple[str, list[str]]], value: str) -> None:
    line = jscontact.Line(name, params, jscontact.escape(value))
    text = line.text()
    assert all(len(part.encode()) <= 75 for part in text.split("\r\n"))
    (parsed,) = jscontact.parse_lines(text + "\r\n")
    assert parsed.name == name and parsed.params == params
    assert jscontact.unescape(parsed.value) == value.replace("\r\n", "\n")


@given(st.text(max_size=300))
def test_reader_never_crashes_unexpectedly(text: str) -> None:
    with contextlib.suppress(ValueError):
        jscontact.parse_lines(text)


# -- JSContact round trips ----------------------------------------------------------------------

plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s and s != "")
multiline = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.just("\n"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() != "")
keys = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=8)
contexts = st.sampled_from([{}, {"work": True}, {"private": True}, {"work": True, "private": True}])
prefs = st.one_of(st.none(), st.integers(min_value=1, max_value=100))


def with_common(
    entry: dict[str, Any], context: dict[str, bool], pref: int | None
) -> dict[str, Any]:
    if context:
        entry["contexts"] = context
    if pref is not None:
        entry["pref"] = pref
    return entry


emails = st.builds(lambda a, c, p: with_common({"address": a}, c, p), plain, contexts, prefs)
features = st.dictionaries(
    st.sampled_from(sorted(jscontact.FEATURE_TYPES)), st.just(True), max_size=3
)
phones = st.builds(
    lambda n, f, c, p: with_common({"number": n, **({"features": f} if f else {})}, c, p),
    plain,
    features,
    contexts,
    prefs,
)
address_components = st.lists(
    st.tuples(st.sampled_from(jscontact.ADR_KINDS), plain), min_size=1, max_size=5
).map(
    lambda items: (
        [
            {"kind": k, "value": v}
            for k, v in sorted(items, key=lambda kv: jscontact.ADR_KINDS.index(kv[0]))
            if k != "name"
        ]
        or [{"kind": "locality", "value": items[0][1]}]
    )
)
addresses = st.builds(
    lambda comps, c, p: with_common({"components": comps}, c, p),
    address_components,
    contexts,
    prefs,
)
organizations = st.builds(
    lambda n, units: {"name": n, **({"units": [{"name": u} for u in units]} if units else {})},
    plain,
    st.lists(plain, max_size=2),
)
titles = st.builds(lambda n, k: {"name": n, "kind": k}, plain, st.sampled_from(["title", "role"]))
notes = st.builds(lambda n: {"note": n}, multiline)
nicknames = st.builds(lambda n: {"name": n}, plain)
services = st.builds(
    lambda u, s, c, p: with_common({"uri": "xmpp:" + u, **({"service": s} if s else {})}, c, p),
    plain,
    st.one_of(st.none(), plain),
    contexts,
    prefs,
)
links = st.builds(
    lambda u, c, p: with_common({"uri": "https://" + u}, c, p), plain, contexts, prefs
)
dates = st.one_of(
    st.dates().map(
        lambda d: {"@type": "PartialDate", "year": d.year, "month": d.month, "day": d.day}
    ),
    st.dates().map(lambda d: {"@type": "PartialDate", "month": d.month, "day": d.day}),
    st.integers(min_value=1, max_value=9999).map(lambda y: {"@type": "PartialDate", "year": y}),
)
anniversaries = st.builds(
    lambda k, d: {"kind": k, "date": d}, st.sampled_from(["birth", "wedding", "death"]), dates
)
name_components = st.lists(st.tuples(st.sampled_from(jscontact.NAME_ORDER), plain), max_size=5).map(
    lambda items: [
        {"kind": k, "value": v}
        for k, v in sorted(items, key=lambda kv: jscontact.NAME_ORDER.index(kv[0]))
    ]
)
names_json = st.builds(
    lambda full, comps: {
        **({"full": full} if full else {}),
        **({"components": comps} if comps else {}),
    },
    st.one_of(st.none(), plain),
    name_components,
)


def entry_map(strategy: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(keys, strategy, max_size=3)


cards = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(jscontact.KINDS),
        "name": names_json.filter(bool),
        "emails": entry_map(emails),
        "phones": entry_map(phones),
        "addresses": entry_map(addresses),
        "organizations": entry_map(organizations),
        "titles": entry_map(titles),
        "notes": entry_map(notes),
        "nicknames": entry_map(nicknames),
        "onlineServices": entry_map(services),
        "anniversaries": entry_map(anniversaries),
        "links": entry_map(links),
        "keywords": st.dictionaries(plain, st.just(True), max_size=3),
        "members": st.dictionaries(plain.map(lambda s: "urn:uuid:" + s), st.just(True), max_size=2),
        "created": st.datetimes(min_value=dt.datetime(1000, 1, 1)).map(
            lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    },
).map(lambda card: {k: v for k, v in card.items() if v})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards)
def test_jscontact_vcard_jscontact(card: dict[str, Any]) -> None:
    assert roundtrip(card) == card


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards, cards)
def test_update_then_read_gives_the_new_card(first: dict[str, Any], second: dict[str, Any]) -> None:
    """Whatever the stored card, writing another card over it reads back as that card,
    and the lines of an extension property survive."""
    text = jscontact.write_vcard(None, jscontact.check(first, creating=True), uid="u", now=NOW)
    text = text.replace("END:VCARD", "X-KEPT;X-A=1:untouched\\, really\r\nEND:VCARD")
    reading = jscontact.read_vcard(text)
    new = jscontact.write_vcard(reading, jscontact.check(second, creating=False), uid="u", now=NOW)
    contact_rules.index(new)
    back = jscontact.read(new)
    for key in ("@type", "version", "updated", "uid"):
        back.pop(key)
    expected = dict(second)
    if "created" not in second and "created" in first:
        expected = dict(second)  # created removed: CREATED line removed too
    assert back == expected
    assert "X-KEPT;X-A=1:untouched\\, really\r\n" in new


@settings(max_examples=60, deadline=None)
@given(cards)
def test_vcard_3_roundtrip_keeps_data(card: dict[str, Any]) -> None:
    """An update of a vCard 3.0 card stays 3.0; preferences other than 1 read back as 1
    (3.0 has only TYPE=pref) and everything else as written."""
    base = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:x\r\nN:;x;;;\r\nEND:VCARD\r\n"
    reading = jscontact.read_vcard(base)
    checked = jscontact.check(card, creating=False)
    text = jscontact.write_vcard(reading, checked, uid="u", now=NOW)
    assert "VERSION:3.0" in text
    contact_rules.index(text)
    back = jscontact.read(text)
    for key in ("@type", "version", "updated", "uid"):
        back.pop(key)
    expected = {k: v for k, v in checked.items() if k != "created"}
    back.pop("created", None)
    for prop in ("emails", "phones", "addresses", "onlineServices", "links"):
        for entry in expected.get(prop, {}).values():
            if "pref" in entry:
                entry["pref"] = 1
    assert back == expected


def test_changed_entry_keeps_its_group() -> None:
    """Apple writes a label as a grouped X-ABLabel line: the group must stay on the
    rewritten line, or the label would name nothing."""
    original = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:A\r\nN:;A;;;\r\n"
        "item1.EMAIL;TYPE=INTERNET:old@x.fr\r\nitem1.X-ABLabel:Assistant\r\nEND:VCARD\r\n"
    )
    reading = jscontact.read_vcard(original)
    card = jscontact.apply_patch(reading.card, {"emails/e1/address": "new@x.fr"})
    text = jscontact.write_vcard(reading, jscontact.check(card, creating=False), uid="u", now=NOW)
    assert "item1.EMAIL;TYPE=INTERNET;PROP-ID=e1:new@x.fr\r\n" in text
    assert "item1.X-ABLabel:Assistant\r\n" in text


def test_lines_this_reader_cannot_split_are_kept() -> None:
    """vobject accepts names this reader does not (an underscore): such a line is kept
    as it is and the rest of the card is mapped (no server error on /get)."""
    original = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:A\r\nX_ODD;P=1:kept\r\nEND:VCARD\r\n"
    contact_rules.index(original)
    reading = jscontact.read_vcard(original)
    assert reading.card["name"] == {"full": "A"}
    card = jscontact.check({**reading.card, "nicknames": {"k": {"name": "B"}}}, creating=False)
    text = jscontact.write_vcard(reading, card, uid="u", now=NOW)
    assert "X_ODD;P=1:kept\r\n" in text
    with pytest.raises(ValueError):
        jscontact.parse_lines(original)


vcard_lines = st.sampled_from(
    [
        "EMAIL:",
        "EMAIL;TYPE=work:a@b.c",
        "EMAIL;PREF=500:x@y",
        "TEL:",
        "TEL;TYPE=cell,fax,bogus:+1",
        "NOTE:",
        "NOTE:tab\there",
        "ORG:;",
        "ORG:;Unit",
        "TITLE:",
        "ROLE:Boss",
        "IMPP:nocolon",
        "IMPP;X-SERVICE-TYPE=:xmpp:a@b",
        "NICKNAME:,",
        "NICKNAME:a,b,c",
        "ADR:;;;;;;",
        'ADR;LABEL="x\\ny":;;street;;;;',
        "BDAY:20010229",
        "BDAY:--1231",
        "ANNIVERSARY:2001",
        "N:;;;;",
        "N:a,b;c",
        "KIND:robot",
        "KIND:org",
        "MEMBER:urn:uuid:1",
        "CREATED:20200101T000000Z",
        "REV:garbage",
        "REV:20200101T000000Z",
        "X-OTHER;PROP-ID=e1:x",
        "EMAIL;PROP-ID=bad id:z@z",
        "EMAIL;PROP-ID=e1:first@x",
        "EMAIL;PROP-ID=e1:second@x",
        "item2.TEL;PROP-ID=p9:+2",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(vcard_lines, max_size=8), st.sampled_from(["3.0", "4.0"]))
def test_any_stored_card_can_be_updated(lines: list[str], version: str) -> None:
    """Whatever a CardDAV client stored, a JMAP client can read the card and change
    one field: what it did not touch is accepted as it is."""
    text = "\r\n".join(
        ["BEGIN:VCARD", f"VERSION:{version}", "UID:u", "FN:A", *lines, "END:VCARD", ""]
    )
    try:
        contact_rules.index(text)
    except contact_rules.ContactError:
        return
    reading = jscontact.read_vcard(text)
    nicknames = {**reading.card.get("nicknames", {}), "new": {"name": "Added"}}
    patched = jscontact.apply_patch(reading.card, {"nicknames": nicknames})
    card = jscontact.check(patched, creating=False, previous=reading.card)
    written = jscontact.write_vcard(reading, card, uid="u", now=NOW)
    contact_rules.index(written)
    back = jscontact.read(written)
    assert back["nicknames"]["new"] == {"name": "Added"}
    assert written.count("\r\nREV:") == 1  # single-valued: replaced, not added
    for key, value in reading.card.items():
        if key not in ("updated", "nicknames"):
            assert back.get(key) == value, key


def test_changed_entry_keeps_unmapped_parameters() -> None:
    original = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:A\r\n"
        "TEL;TYPE=cell,x-assistant;X-CARRIER=Orange;PROP-ID=p1:+33 6\r\nEND:VCARD\r\n"
    )
    reading = jscontact.read_vcard(original)
    card = jscontact.apply_patch(reading.card, {"phones/p1/number": "+33 7", "phones/p1/pref": 2})
    text = jscontact.write_vcard(reading, jscontact.check(card, creating=False), uid="u", now=NOW)
    assert "TEL;TYPE=cell,x-assistant;PREF=2;X-CARRIER=Orange;PROP-ID=p1:+33 7\r\n" in text
    assert jscontact.read(text)["phones"] == {
        "p1": {"number": "+33 7", "features": {"mobile": True}, "pref": 2}
    }
    contact_rules.index(text)
