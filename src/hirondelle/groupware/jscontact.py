"""JSContact cards (RFC 9553) from and to vCard 3.0/4.0 (RFC 2426, RFC 6350), following
RFC 9555 (JSContact-vCard conversion) for the properties JMAP Contacts shows.

Mapped (RFC 9555 §2): UID, KIND (3.0: X-ADDRESSBOOKSERVER-KIND), FN and N (``name``),
NICKNAME, EMAIL, TEL, ADR, ORG, TITLE and ROLE (``titles``), NOTE, IMPP
(``onlineServices``), URL (``links``), CATEGORIES (``keywords``), BDAY / ANNIVERSARY /
DEATHDATE (``anniversaries``), MEMBER
(3.0: X-ADDRESSBOOKSERVER-MEMBER), CREATED and REV (``created``, ``updated``). Map keys
are the RFC 9554 ``PROP-ID`` parameter when the line has one, else made up from the
position (``e1``, ``p2``...); every line written here gets its ``PROP-ID`` so that the
keys stay the same from then on.

Why a line-level reader instead of vobject: an update must leave every line it does not
change exactly as the client wrote it (vobject re-serialises the whole card and, for
instance, keeps only the first value of ``NICKNAME:a,b``). A card is a list of content
lines (RFC 6350 §3.3); :func:`update_vcard` replaces, adds or removes only the lines of
the entries whose JSON changed, so unknown properties, parameters and groups survive a
JMAP update of another field. The final text is still validated by
:mod:`hirondelle.groupware.contacts` (vobject), like a CardDAV PUT.

Deliberate limits (refused with the property's path, never dropped silently): entries
with members this module does not map (``label``, ``phonetic``, vendor properties...),
contexts other than ``work`` and ``private``, and JSContact properties outside the list
above. In vCard 3.0 a preference is only "pref" or not (``pref`` reads back as 1).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

# -- content lines ------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class JSContactError(Exception):
    """Refused input: ``path`` names the property (for JMAP invalidProperties)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class Line:
    """One content line: ``raw`` is its original (folded) text without the final line
    break, kept while the line is not changed; ``value`` is the raw, escaped value."""

    name: str
    params: list[tuple[str, list[str]]]
    value: str
    group: str | None = None
    raw: str | None = None

    def param(self, name: str) -> list[str]:
        found: list[str] = []
        for key, values in self.params:
            if key == name:
                found.extend(values)
        return found

    def with_param(self, name: str, values: list[str]) -> Line:
        params = [(k, v) for k, v in self.params if k != name]
        params.append((name, values))
        return replace(self, params=params, raw=None)

    def text(self) -> str:
        if self.raw is not None:
            return self.raw
        head = (self.group + "." if self.group else "") + self.name
        for key, values in self.params:
            head += ";" + key + "=" + ",".join(_param_value(v) for v in values)
        return _fold(head + ":" + self.value)


def _param_value(value: str) -> str:
    # RFC 6868 caret encoding for what a parameter value cannot hold.
    encoded = value.replace("^", "^^").replace("\n", "^n").replace('"', "^'")
    if any(c in encoded for c in ":;,") or encoded != encoded.strip():
        return '"' + encoded + '"'
    return encoded


def _param_decode(value: str) -> str:
    out = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "^" and index + 1 < len(value) and value[index + 1] in "^n'":
            out.append({"^": "^", "n": "\n", "'": '"'}[value[index + 1]])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _fold(line: str) -> str:
    """RFC 6350 §3.2: lines of at most 75 octets, never cutting a UTF-8 sequence."""
    if len(line.encode("utf-8")) <= 75:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def parse_line(text: str) -> Line:
    """One unfolded content line; ValueError when it is not one."""
    # The name and parameters end at the first ":" outside double quotes.
    in_quotes = False
    colon = -1
    for index, char in enumerate(text):
        if char == '"':
            in_quotes = not in_quotes
        elif char == ":" and not in_quotes:
            colon = index
            break
    if colon < 0:
        raise ValueError("no ':' in content line")
    head, value = text[:colon], text[colon + 1 :]
    pieces = _split_unquoted(head, ";")
    name = pieces[0]
    group = None
    if "." in name:
        group, name = name.rsplit(".", 1)
    if not _NAME.match(name) or (group is not None and not _NAME.match(group)):
        raise ValueError(f"bad property name {pieces[0]!r}")
    params: list[tuple[str, list[str]]] = []
    for piece in pieces[1:]:
        if "=" not in piece:
            # vCard 2.1 / some 3.0 writers: a bare parameter is a TYPE value.
            params.append(("TYPE", [piece]))
            continue
        key, _, raw_values = piece.partition("=")
        values = [
            _param_decode(v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v)
            for v in _split_unquoted(raw_values, ",")
        ]
        params.append((key.upper(), values))
    return Line(name.upper(), params, value, group)


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current = ""
    in_quotes = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
        if char == separator and not in_quotes:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_lines(data: str, *, tolerant: bool = False) -> list[Line]:
    """The content lines of one vCard, each keeping its original text. ``tolerant``:
    a line this reader cannot split (vobject, which validated the card, is more
    lenient) is kept as it is, unmapped, instead of raising ValueError."""
    lines: list[Line] = []
    physical = re.split(r"\r\n|\n|\r", data)
    buffer: list[str] = []

    def flush() -> None:
        if not buffer:
            return
        raw = "\r\n".join(buffer)
        unfolded = buffer[0] + "".join(b[1:] for b in buffer[1:])
        try:
            line = parse_line(unfolded)
        except ValueError:
            if not tolerant:
                raise
            line = Line("", [], unfolded)
        line.raw = raw
        lines.append(line)
        buffer.clear()

    for text in physical:
        if text[:1] in (" ", "\t") and buffer:
            buffer.append(text)
            continue
        flush()
        if text.strip():
            buffer.append(text)
    flush()
    return lines


def serialize(lines: Iterable[Line]) -> str:
    return "".join(line.text() + "\r\n" for line in lines)


# -- value escaping (RFC 6350 §3.4) ----------------------------------------------------------


def unescape(value: str) -> str:
    out = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            following = value[index + 1]
            out.append("\n" if following in "nN" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\n", "\\n")
        .replace(",", "\\,")
        .replace(";", "\\;")
    )


def split_escaped(value: str, separator: str) -> list[str]:
    """Split a raw value on ``separator`` where it is not escaped (values stay raw)."""
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            current += value[index : index + 2]
            index += 2
            continue
        if char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


# -- reading -------------------------------------------------------------------------------

# N components (RFC 6350 §6.2.2) and the JSContact NameComponent kinds (RFC 9555 §2.3.7).
N_KINDS = ("surname", "given", "given2", "title", "credential")
NAME_ORDER = ("title", "given", "given2", "surname", "credential")
# ADR components (RFC 6350 §6.3.1) and AddressComponent kinds (RFC 9555 §2.5.1).
ADR_KINDS = ("postOfficeBox", "apartment", "name", "locality", "region", "postcode", "country")
# Extra street-level kinds a client may send; written into the street field.
STREET_KINDS = frozenset(
    {"number", "name", "block", "building", "floor", "room", "direction", "landmark"}
)
ANNIVERSARY_NAMES = {"BDAY": "birth", "ANNIVERSARY": "wedding", "DEATHDATE": "death"}
ANNIVERSARY_PROPERTIES = {v: k for k, v in ANNIVERSARY_NAMES.items()}
CONTEXTS = {"WORK": "work", "HOME": "private"}
CONTEXT_TYPES = {"work": "work", "private": "home"}
PHONE_FEATURES = {
    "VOICE": "voice",
    "FAX": "fax",
    "CELL": "mobile",
    "VIDEO": "video",
    "PAGER": "pager",
    "TEXT": "text",
    "TEXTPHONE": "textphone",
    "MAIN-NUMBER": "main-number",
}
FEATURE_TYPES = {v: k.lower() for k, v in PHONE_FEATURES.items()}
KINDS = ("individual", "group", "org", "location", "device", "application")


@dataclass(frozen=True, slots=True)
class Group:
    """One JSContact map property and the vCard property (or properties) behind it."""

    property: str
    prefix: str
    names: tuple[str, ...]
    members: frozenset[str]


GROUPS = (
    Group("emails", "e", ("EMAIL",), frozenset({"address", "contexts", "pref"})),
    Group("phones", "p", ("TEL",), frozenset({"number", "features", "contexts", "pref"})),
    Group(
        "addresses",
        "a",
        ("ADR",),
        frozenset({"components", "full", "countryCode", "contexts", "pref", "isOrdered"}),
    ),
    Group("organizations", "o", ("ORG",), frozenset({"name", "units"})),
    Group("titles", "t", ("TITLE", "ROLE"), frozenset({"name", "kind"})),
    Group("notes", "n", ("NOTE",), frozenset({"note"})),
    Group("nicknames", "k", ("NICKNAME",), frozenset({"name"})),
    Group("onlineServices", "s", ("IMPP",), frozenset({"uri", "service", "contexts", "pref"})),
    Group("links", "l", ("URL",), frozenset({"uri", "contexts", "pref"})),
    Group("anniversaries", "d", ("BDAY", "ANNIVERSARY", "DEATHDATE"), frozenset({"kind", "date"})),
)
GROUP_BY_PROPERTY = {g.property: g for g in GROUPS}

# Top-level JSContact properties this module maps (and JMAP ContactCard shows).
CARD_PROPERTIES = (
    "@type",
    "version",
    "uid",
    "kind",
    "created",
    "updated",
    "name",
    "members",
    "keywords",
    *(g.property for g in GROUPS),
)


@dataclass
class Reading:
    """A card read from vCard: the JSContact object, and for each mapped value the
    index of the line(s) it came from (to replace exactly those lines on update)."""

    card: dict[str, Any]
    version: str
    lines: list[Line]
    # (property, key) -> line indexes; key "" for single-valued properties.
    sources: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def _contexts(line: Line) -> dict[str, bool]:
    found = {CONTEXTS[t.upper()]: True for t in _types(line) if t.upper() in CONTEXTS}
    return found


def _types(line: Line) -> list[str]:
    types: list[str] = []
    for value in line.param("TYPE"):
        types.extend(v for v in value.split(",") if v)
    return types


def _pref(line: Line) -> int | None:
    for value in line.param("PREF"):
        if value.isdigit() and 1 <= int(value) <= 100:
            return int(value)
    if any(t.lower() == "pref" for t in _types(line)):
        return 1
    return None


def _with_common(entry: dict[str, Any], line: Line, *, contexts: bool = True) -> dict[str, Any]:
    if contexts:
        found = _contexts(line)
        if found:
            entry["contexts"] = found
    pref = _pref(line)
    if pref is not None:
        entry["pref"] = pref
    return entry


def _date(value: str, line: Line) -> dict[str, Any] | None:
    """A vCard date (RFC 6350 §4.3.1, 3.0 ISO 8601 forms) as a JSContact PartialDate."""
    text = value.strip()
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    year: int | None
    if match:
        year, month, day = int(match[1]), int(match[2]), int(match[3])
        omit = line.param("X-APPLE-OMIT-YEAR")
        if omit and omit[0] == match[1]:
            year = None
    else:
        match = re.fullmatch(r"--(\d{2})-?(\d{2})", text)
        if match:
            year, month, day = None, int(match[1]), int(match[2])
        else:
            match = re.fullmatch(r"(\d{4})", text)
            if not match:
                return None
            return {"@type": "PartialDate", "year": int(match[1])}
    try:
        dt.date(year or 2000, month, day)
    except ValueError:
        return None
    date: dict[str, Any] = {"@type": "PartialDate"}
    if year is not None:
        date["year"] = year
    date["month"] = month
    date["day"] = day
    return date


def _timestamp(value: str) -> str | None:
    """A vCard timestamp (``20261122T170000Z`` or ISO 8601 extended) as UTCDateTime."""
    text = value.strip()
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.\d+)?Z", text)
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(value: str) -> str | None:
    """A UTCDateTime (or vCard timestamp) normalised to ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _timestamp(value)


def _read_entry(group: Group, line: Line) -> list[dict[str, Any]]:
    """The JSContact entries one line gives (NICKNAME may give several; none when the
    line cannot be mapped, which leaves it untouched)."""
    name = line.name
    value = line.value
    if group.property == "emails":
        return [_with_common({"address": unescape(value)}, line)]
    if group.property == "phones":
        entry: dict[str, Any] = {"number": unescape(value)}
        features = {
            PHONE_FEATURES[t.upper()]: True for t in _types(line) if t.upper() in PHONE_FEATURES
        }
        if features:
            entry["features"] = features
        return [_with_common(entry, line)]
    if group.property == "addresses":
        fields = split_escaped(value, ";")
        fields += [""] * (7 - len(fields))
        components = []
        for kind, raw in zip(ADR_KINDS, fields[:7], strict=True):
            for part in split_escaped(raw, ","):
                text = unescape(part)
                if text:
                    components.append({"kind": kind, "value": text})
        entry = {}
        if components:
            entry["components"] = components
        label = line.param("LABEL")
        if label:
            entry["full"] = label[0]
        country = line.param("CC")
        if country:
            entry["countryCode"] = country[0]
        if not entry:
            return []
        return [_with_common(entry, line)]
    if group.property == "organizations":
        parts = [unescape(p) for p in split_escaped(value, ";")]
        entry = {"name": parts[0]}
        units = [{"name": p} for p in parts[1:] if p]
        if units:
            entry["units"] = units
        return [entry]
    if group.property == "titles":
        return [{"name": unescape(value), "kind": "title" if name == "TITLE" else "role"}]
    if group.property == "notes":
        return [{"note": unescape(value)}]
    if group.property == "nicknames":
        return [{"name": unescape(p)} for p in split_escaped(value, ",") if unescape(p)]
    if group.property == "links":
        return [_with_common({"uri": unescape(value)}, line)]
    if group.property == "onlineServices":
        entry = {"uri": unescape(value)}
        service = line.param("X-SERVICE-TYPE")
        if service:
            entry["service"] = service[0]
        return [_with_common(entry, line)]
    if group.property == "anniversaries":
        date = _date(unescape(value), line)
        if date is None:
            return []
        return [{"kind": ANNIVERSARY_NAMES[name], "date": date}]
    raise AssertionError(group.property)


# The member an entry is nothing without (an empty EMAIL line maps to no entry).
REQUIRED_MEMBER = {
    "emails": "address",
    "phones": "number",
    "titles": "name",
    "notes": "note",
    "onlineServices": "uri",
    "links": "uri",
    "nicknames": "name",
}


def _has_value(group: Group, entry: dict[str, Any]) -> bool:
    member = REQUIRED_MEMBER.get(group.property)
    if member is not None:
        return bool(str(entry.get(member, "")).strip())
    if group.property == "organizations":
        return bool(entry["name"].strip() or entry.get("units"))
    return True


def read_vcard(data: str) -> Reading:
    """RFC 9555 §2: the JSContact card of one vCard (the text is already validated)."""
    lines = parse_lines(data, tolerant=True)
    version = "3.0"
    for line in lines:
        if line.name == "VERSION":
            version = line.value.strip()
    card: dict[str, Any] = {"@type": "Card", "version": "1.0"}
    reading = Reading(card, version, lines)
    names: dict[str, Any] = {}
    counters: dict[str, int] = {}
    by_name = {n: g for g in GROUPS for n in g.names}
    for index, line in enumerate(lines):
        name = line.name
        if name == "UID":
            card["uid"] = unescape(line.value)
        elif name in ("KIND", "X-ADDRESSBOOKSERVER-KIND"):
            kind = unescape(line.value).strip().lower()
            if kind in KINDS:
                card["kind"] = kind
            # Even a value not mapped: a new kind replaces it (KIND is single).
            reading.sources.setdefault(("kind", ""), []).append(index)
        elif name == "FN":
            derived = [v.lower() for v in line.param("DERIVED")]
            if "true" not in derived:
                names["full"] = unescape(line.value)
            reading.sources[("name", "full")] = [index]
        elif name == "N":
            fields = dict(zip(N_KINDS, split_escaped(line.value, ";"), strict=False))
            components = []
            # In reading order (title, given names, surname, credential), not N's order.
            for kind in NAME_ORDER:
                for part in split_escaped(fields.get(kind, ""), ","):
                    text = unescape(part)
                    if text:
                        components.append({"kind": kind, "value": text})
            if components:
                names["components"] = components
            reading.sources[("name", "components")] = [index]
        elif name in ("MEMBER", "X-ADDRESSBOOKSERVER-MEMBER"):
            member = unescape(line.value).strip()
            if member:
                card.setdefault("members", {})[member] = True
                reading.sources.setdefault(("members", member), []).append(index)
        elif name == "CATEGORIES":
            words = [unescape(p).strip() for p in split_escaped(line.value, ",")]
            for word in words:
                if word:
                    card.setdefault("keywords", {})[word] = True
            reading.sources.setdefault(("keywords", ""), []).append(index)
        elif name in ("CREATED", "REV"):
            stamp = _timestamp(unescape(line.value))
            key = "created" if name == "CREATED" else "updated"
            if stamp:
                card[key] = stamp
            reading.sources.setdefault((key, ""), []).append(index)
        elif name in by_name:
            group = by_name[name]
            entries = [e for e in _read_entry(group, line) if _has_value(group, e)]
            prop_ids = line.param("PROP-ID")
            for entry in entries:
                counters[group.prefix] = counters.get(group.prefix, 0) + 1
                key = f"{group.prefix}{counters[group.prefix]}"
                if prop_ids and len(entries) == 1 and _ID.match(prop_ids[0]):
                    key = prop_ids[0]
                values = card.setdefault(group.property, {})
                while key in values:  # a PROP-ID used twice: keep both entries
                    key += "x"
                values[key] = entry
                # Several nicknames of one line share it: their line is rewritten when
                # any of them changes (the others are written again as their own lines).
                reading.sources[(group.property, key)] = [index]
    if names:
        card["name"] = names
    return reading


def read(data: str) -> dict[str, Any]:
    return read_vcard(data).card


# -- checking JSContact input ---------------------------------------------------------------


def _string(value: object, path: str, *, multiline: bool = False, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise JSContactError(path, f"{path} must be a string")
    if not empty and not value.strip():
        raise JSContactError(path, f"{path} must not be empty")
    allowed = "\n\t" if multiline else ""
    if any((ord(c) < 0x20 and c not in allowed) or c == "\x7f" for c in value):
        raise JSContactError(path, f"{path} has control characters")
    if len(value) > 10000:
        raise JSContactError(path, f"{path} is too long")
    return value


def _check_members(entry: object, group: Group, path: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise JSContactError(path, f"{path} must be an object")
    clean = {k: v for k, v in entry.items() if k != "@type"}
    for key in clean:
        if key not in group.members:
            raise JSContactError(f"{path}/{key}", f"{path}/{key} is not supported here")
    contexts = clean.get("contexts")
    if contexts is not None:
        if not isinstance(contexts, dict) or not all(v is True for v in contexts.values()):
            raise JSContactError(f"{path}/contexts", "contexts maps context names to true")
        unknown = [c for c in contexts if c not in CONTEXT_TYPES]
        if unknown:
            raise JSContactError(
                f"{path}/contexts", f"only the contexts work and private are supported: {unknown}"
            )
        if not contexts:
            del clean["contexts"]
    pref = clean.get("pref")
    if pref is not None and (
        isinstance(pref, bool) or not isinstance(pref, int) or not 1 <= pref <= 100
    ):
        raise JSContactError(f"{path}/pref", "pref is an integer from 1 to 100")
    if "pref" in clean and pref is None:
        del clean["pref"]
    return clean


def _check_entry(group: Group, entry: object, path: str) -> dict[str, Any]:
    clean = _check_members(entry, group, path)
    prop = group.property
    if prop == "emails":
        _string(clean.get("address"), f"{path}/address")
    elif prop == "phones":
        _string(clean.get("number"), f"{path}/number")
        features = clean.get("features")
        if features is not None:
            if (
                not isinstance(features, dict)
                or not all(v is True for v in features.values())
                or any(f not in FEATURE_TYPES for f in features)
            ):
                raise JSContactError(
                    f"{path}/features", f"features: true for some of {sorted(FEATURE_TYPES)}"
                )
            if not features:
                del clean["features"]
    elif prop == "addresses":
        components = clean.get("components")
        if components is not None:
            if not isinstance(components, list):
                raise JSContactError(f"{path}/components", "components is an array")
            checked = []
            for i, component in enumerate(components):
                where = f"{path}/components/{i}"
                if not isinstance(component, dict):
                    raise JSContactError(where, f"{where} must be an object")
                extra = set(component) - {"kind", "value", "@type"}
                if extra:
                    raise JSContactError(where, f"{where}: unsupported {sorted(extra)}")
                kind = component.get("kind")
                if kind not in ADR_KINDS and kind not in STREET_KINDS:
                    raise JSContactError(f"{where}/kind", f"unsupported address kind {kind!r}")
                checked.append({"kind": kind, "value": _string(component.get("value"), where)})
            clean["components"] = checked
            if not checked:
                del clean["components"]
        if "full" in clean:
            _string(clean["full"], f"{path}/full", multiline=True)
        if "countryCode" in clean:
            code = clean["countryCode"]
            if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{2}", code):
                raise JSContactError(f"{path}/countryCode", "countryCode is two letters")
        if clean.get("isOrdered") is not None and not isinstance(clean["isOrdered"], bool):
            raise JSContactError(f"{path}/isOrdered", "isOrdered is a boolean")
        clean.pop("isOrdered", None)
        if not clean.get("components") and "full" not in clean:
            raise JSContactError(path, f"{path} needs components or full")
    elif prop == "organizations":
        _string(clean.get("name"), f"{path}/name", empty=True)
        units = clean.get("units")
        if units is not None:
            if not isinstance(units, list) or not all(
                isinstance(u, dict) and set(u) <= {"name", "@type"} for u in units
            ):
                raise JSContactError(f"{path}/units", "units is an array of {name}")
            clean["units"] = [{"name": _string(u.get("name"), f"{path}/units")} for u in units]
            if not clean["units"]:
                del clean["units"]
        if not clean["name"] and not clean.get("units"):
            raise JSContactError(f"{path}/name", "an organization needs a name")
    elif prop == "titles":
        _string(clean.get("name"), f"{path}/name")
        kind = clean.get("kind", "title")
        if kind not in ("title", "role"):
            raise JSContactError(f"{path}/kind", "kind is title or role")
        clean["kind"] = kind
    elif prop == "notes":
        _string(clean.get("note"), f"{path}/note", multiline=True)
    elif prop == "nicknames":
        _string(clean.get("name"), f"{path}/name")
    elif prop == "links":
        uri = _string(clean.get("uri"), f"{path}/uri")
        if ":" not in uri:
            raise JSContactError(f"{path}/uri", "uri must be a URI (scheme:...)")
    elif prop == "onlineServices":
        uri = _string(clean.get("uri"), f"{path}/uri")
        if ":" not in uri:
            raise JSContactError(f"{path}/uri", "uri must be a URI (scheme:...)")
        if "service" in clean:
            _string(clean["service"], f"{path}/service")
    elif prop == "anniversaries":
        kind = clean.get("kind")
        if kind not in ANNIVERSARY_PROPERTIES:
            raise JSContactError(f"{path}/kind", "kind is birth, wedding or death")
        clean["date"] = _check_date(clean.get("date"), f"{path}/date")
    return clean


def _check_date(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("@type", "PartialDate") != "PartialDate":
        raise JSContactError(path, f"{path} must be a PartialDate")
    extra = set(value) - {"@type", "year", "month", "day"}
    if extra:
        raise JSContactError(path, f"{path}: unsupported {sorted(extra)}")
    parts = {}
    for key, low, high in (("year", 1, 9999), ("month", 1, 12), ("day", 1, 31)):
        part = value.get(key)
        if part is None:
            continue
        if isinstance(part, bool) or not isinstance(part, int) or not low <= part <= high:
            raise JSContactError(f"{path}/{key}", f"{key} is an integer from {low} to {high}")
        parts[key] = part
    if "day" in parts and "month" not in parts:
        raise JSContactError(path, "a day needs a month")
    if "year" not in parts and "month" not in parts:
        raise JSContactError(path, "a date needs a year or a month")
    if "month" in parts and "day" not in parts and "year" in parts:
        raise JSContactError(path, "year and month without a day cannot be written in vCard")
    if "month" in parts and "day" not in parts:
        raise JSContactError(path, "a month needs a day")
    if "day" in parts:
        try:
            dt.date(parts.get("year", 2000), parts["month"], parts["day"])
        except ValueError:
            raise JSContactError(path, f"{path} is not a real date") from None
    return {"@type": "PartialDate", **parts}


def _check_name(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise JSContactError("name", "name must be an object")
    clean = {k: v for k, v in value.items() if k != "@type"}
    for key in clean:
        if key not in ("full", "components", "isOrdered"):
            raise JSContactError(f"name/{key}", f"name/{key} is not supported here")
    if clean.get("isOrdered") is not None and not isinstance(clean["isOrdered"], bool):
        raise JSContactError("name/isOrdered", "isOrdered is a boolean")
    clean.pop("isOrdered", None)
    if "full" in clean:
        if clean["full"] is None:
            del clean["full"]
        else:
            _string(clean["full"], "name/full")
    components = clean.get("components")
    if components is not None:
        if not isinstance(components, list):
            raise JSContactError("name/components", "components is an array")
        checked = []
        for i, component in enumerate(components):
            where = f"name/components/{i}"
            if not isinstance(component, dict) or set(component) - {"kind", "value", "@type"}:
                raise JSContactError(where, f"{where} must be {{kind, value}}")
            kind = component.get("kind")
            if kind == "separator":
                continue  # a display hint, not data: vCard N has no place for it
            if kind not in N_KINDS:
                raise JSContactError(f"{where}/kind", f"unsupported name kind {kind!r}")
            checked.append({"kind": kind, "value": _string(component.get("value"), where)})
        clean["components"] = checked
    if not clean.get("components"):
        clean.pop("components", None)
    return clean


def check(
    card: object, *, creating: bool, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A JSContact Card as a client sent it, checked and normalised (``@type`` of
    sub-objects dropped, empty maps removed); JSContactError names what is wrong.

    ``previous`` is the card as read from the stored vCard: what is unchanged from it is
    taken as it is (a CardDAV client may have written values these rules would refuse,
    and an update of another field must not fail on them)."""
    if not isinstance(card, dict):
        raise JSContactError("", "a card must be an object")
    before = previous or {}
    clean: dict[str, Any] = {}
    for key, value in card.items():
        unchanged = key in before and before[key] == value
        if unchanged and (key in GROUP_BY_PROPERTY or key in ("name", "members", "keywords")):
            if value:
                clean[key] = value
            continue
        if key not in CARD_PROPERTIES:
            raise JSContactError(key, f"{key} is not supported by this server")
        if value is None:
            continue
        if key == "@type":
            if value != "Card":
                raise JSContactError(key, "@type must be Card")
            continue
        if key == "version":
            if not isinstance(value, str):
                raise JSContactError(key, "version is a string")
            continue
        if key == "uid":
            uid = _string(value, "uid")
            if len(uid) > 1000:
                raise JSContactError("uid", "uid is too long")
            clean["uid"] = uid
        elif key == "kind":
            if value not in KINDS:
                raise JSContactError("kind", f"kind is one of {', '.join(KINDS)}")
            clean["kind"] = value
        elif key in ("created", "updated"):
            if not isinstance(value, str) or _timestamp(value) is None:
                raise JSContactError(key, f"{key} is a UTCDateTime")
            clean[key] = _timestamp(value)
        elif key == "name":
            name = _check_name(value)
            if name:
                clean["name"] = name
        elif key == "keywords":
            if not isinstance(value, dict) or not all(v is True for v in value.values()):
                raise JSContactError("keywords", "keywords maps words to true")
            for word in value:
                _string(word, "keywords")
            if value:
                clean["keywords"] = dict(value)
        elif key == "members":
            if not isinstance(value, dict) or not all(v is True for v in value.values()):
                raise JSContactError("members", "members maps uids to true")
            for uid in value:
                _string(uid, "members")
            if value:
                clean["members"] = dict(value)
        else:
            group = GROUP_BY_PROPERTY[key]
            if not isinstance(value, dict):
                raise JSContactError(key, f"{key} must be an object of Id to entries")
            entries = {}
            unchanged = before.get(key, {})
            for entry_id, entry in value.items():
                if unchanged.get(entry_id) == entry and entry:
                    entries[entry_id] = entry
                    continue
                if not _ID.match(entry_id):
                    raise JSContactError(f"{key}/{entry_id}", f"{entry_id!r} is not an Id")
                entries[entry_id] = _check_entry(group, entry, f"{key}/{entry_id}")
            if entries:
                clean[key] = entries
    del creating
    return clean


# -- writing ------------------------------------------------------------------------------


def _common_params(entry: dict[str, Any], version: str, types: list[str]) -> list[str]:
    types = list(types)
    for context in entry.get("contexts", {}):
        types.append(CONTEXT_TYPES[context])
    return types


def _entry_lines(group: Group, key: str, entry: dict[str, Any], version: str) -> list[Line]:
    """The vCard line for one JSContact entry (RFC 9555 §2, reversed)."""
    params: list[tuple[str, list[str]]] = []
    types: list[str] = []
    prop = group.property
    value: str
    name = group.names[0]
    if prop == "emails":
        value = escape(entry["address"])
        if version == "3.0":
            types.append("INTERNET")
    elif prop == "phones":
        value = escape(entry["number"])
        types.extend(FEATURE_TYPES[f] for f in entry.get("features", {}))
    elif prop == "addresses":
        fields: dict[str, list[str]] = {k: [] for k in ADR_KINDS}
        for component in entry.get("components", []):
            kind = component["kind"]
            fields["name" if kind in STREET_KINDS else kind].append(component["value"])
        value = ";".join(
            ",".join(escape(v) for v in fields[k]) if k != "name" else escape(" ".join(fields[k]))
            for k in ADR_KINDS
        )
        if "full" in entry:
            params.append(("LABEL", [entry["full"]]))
        if "countryCode" in entry:
            params.append(("CC", [entry["countryCode"]]))
    elif prop == "organizations":
        value = ";".join(
            escape(p) for p in [entry["name"], *(u["name"] for u in entry.get("units", []))]
        )
    elif prop == "titles":
        name = "TITLE" if entry.get("kind", "title") == "title" else "ROLE"
        value = escape(entry["name"])
    elif prop == "notes":
        value = escape(entry["note"])
    elif prop == "nicknames":
        value = escape(entry["name"])
    elif prop == "links":
        value = escape(entry["uri"])
    elif prop == "onlineServices":
        value = escape(entry["uri"])
        if "service" in entry:
            params.append(("X-SERVICE-TYPE", [entry["service"]]))
    elif prop == "anniversaries":
        name = ANNIVERSARY_PROPERTIES[entry["kind"]]
        date = entry["date"]
        if "month" not in date:
            value = f"{date['year']:04d}"
        elif "year" not in date:
            value = f"--{date['month']:02d}{date['day']:02d}"
            if version == "3.0":
                value = f"--{date['month']:02d}-{date['day']:02d}"
        elif version == "3.0":
            value = f"{date['year']:04d}-{date['month']:02d}-{date['day']:02d}"
        else:
            value = f"{date['year']:04d}{date['month']:02d}{date['day']:02d}"
    else:
        raise AssertionError(prop)
    types = _common_params(entry, version, types)
    pref = entry.get("pref")
    if pref is not None:
        if version == "3.0":
            types.append("pref")
        else:
            params.append(("PREF", [str(pref)]))
    if types:
        params.insert(0, ("TYPE", types))
    params.append(("PROP-ID", [key]))
    return [Line(name, params, value)]


def _timestamp_value(stamp: str) -> str:
    return stamp.replace("-", "").replace(":", "")


def _derived_full_name(card: dict[str, Any]) -> str:
    """RFC 9555 §2.3.7: an FN when the card has no name/full (vCard requires one)."""
    components = card.get("name", {}).get("components", [])
    parts = sorted(components, key=lambda c: NAME_ORDER.index(c["kind"]))
    if parts:
        return " ".join(c["value"] for c in parts)
    for prop, member in (
        ("organizations", "name"),
        ("emails", "address"),
        ("nicknames", "name"),
        ("phones", "number"),
    ):
        for entry in card.get(prop, {}).values():
            if entry.get(member):
                return str(entry[member])
    return str(card.get("uid", "")) or "-"


def _n_value(components: list[dict[str, Any]]) -> str:
    fields: dict[str, list[str]] = {k: [] for k in N_KINDS}
    for component in components:
        fields[component["kind"]].append(component["value"])
    return ";".join(",".join(escape(v) for v in fields[k]) for k in N_KINDS)


def write_vcard(
    reading: Reading | None,
    card: dict[str, Any],
    *,
    uid: str,
    now: str,
    version: str = "4.0",
) -> str:
    """The vCard for the checked JSContact ``card``: ``reading`` (the stored card read
    by :func:`read_vcard`) gives the lines to keep; only lines of entries whose JSON
    differs are replaced, added or removed. ``now`` is the REV (UTCDateTime)."""
    if reading is None:
        base = (
            f"BEGIN:VCARD\r\nVERSION:{version}\r\nPRODID:-//Hirondelle//JMAP//EN\r\n"
            f"UID:{escape(uid)}\r\nEND:VCARD\r\n"
        )
        reading = read_vcard(base)
    version = reading.version
    old = reading.card
    lines: list[Line | None] = list(reading.lines)
    additions: list[Line] = []

    def replace_at(key: tuple[str, str], new: list[Line]) -> None:
        indexes = reading.sources.get(key, [])
        live = [i for i in indexes if lines[i] is not None]
        if live:
            lines[live[0]] = new[0] if new else None
            for i in live[1:]:
                lines[i] = None
            additions.extend(new[1:])
        else:
            additions.extend(new)

    # kind
    if card.get("kind") != old.get("kind"):
        kind = card.get("kind")
        kind_name = "KIND" if version == "4.0" else "X-ADDRESSBOOKSERVER-KIND"
        replace_at(("kind", ""), [Line(kind_name, [], kind)] if kind else [])
    # name: FN and N
    old_name = old.get("name", {})
    new_name = card.get("name", {})
    components = new_name.get("components")
    has_n = bool(reading.sources.get(("name", "components")))
    if components != old_name.get("components") or (version == "3.0" and not has_n):
        if components:
            n_lines = [Line("N", [], _n_value(components))]
        else:
            # vCard 3.0 requires N (RFC 2426 §3.1.2), even empty.
            n_lines = [Line("N", [], ";;;;")] if version == "3.0" else []
        replace_at(("name", "components"), n_lines)
    derived = _derived_full_name(card)
    if "full" in new_name:
        if new_name["full"] != old_name.get("full"):
            replace_at(("name", "full"), [Line("FN", [], escape(new_name["full"]))])
    else:
        fn_index = reading.sources.get(("name", "full"), [])
        current = lines[fn_index[0]] if fn_index else None
        if current is None or "full" in old_name or unescape(current.value) != derived:
            replace_at(("name", "full"), [Line("FN", [("DERIVED", ["TRUE"])], escape(derived))])
    # members
    member_name = "MEMBER" if version == "4.0" else "X-ADDRESSBOOKSERVER-MEMBER"
    old_members = old.get("members", {})
    new_members = card.get("members", {})
    for member in old_members:
        if member not in new_members:
            replace_at(("members", member), [])
    for member in new_members:
        if member not in old_members:
            additions.append(Line(member_name, [], escape(member)))
    # keywords: one CATEGORIES line for them all
    if card.get("keywords") != old.get("keywords"):
        words = list(card.get("keywords", {}))
        replace_at(
            ("keywords", ""),
            [Line("CATEGORIES", [], ",".join(escape(w) for w in words))] if words else [],
        )
    # created, updated (REV is the time of this write)
    if card.get("created") != old.get("created"):
        created = card.get("created")
        replace_at(
            ("created", ""),
            [Line("CREATED", [], _timestamp_value(created))] if created else [],
        )
    replace_at(("updated", ""), [Line("REV", [], _timestamp_value(now))])
    # entry maps
    for group in GROUPS:
        old_entries = old.get(group.property, {})
        new_entries = card.get(group.property, {})
        line_keys: dict[int, list[str]] = {}
        for key in old_entries:
            for i in reading.sources.get((group.property, key), []):
                line_keys.setdefault(i, []).append(key)
        # A line holding several entries (NICKNAME:a,b) is written again as one line
        # per entry: its entries are then separately addressable.
        regenerate: set[str] = set()
        for i, keys in line_keys.items():
            if len(keys) > 1:
                lines[i] = None
                regenerate.update(keys)
        for key, entry in old_entries.items():
            if key in regenerate:
                continue
            if key not in new_entries:
                replace_at((group.property, key), [])
            elif new_entries[key] == entry:
                # Unchanged: keep the line as written, with its PROP-ID from now on.
                for i in reading.sources.get((group.property, key), []):
                    line = lines[i]
                    if line is not None and line.param("PROP-ID") != [key]:
                        lines[i] = line.with_param("PROP-ID", [key])
            else:
                written = _entry_lines(group, key, new_entries[key], version)
                sources = reading.sources.get((group.property, key), [])
                previous = lines[sources[0]] if sources else None
                if previous is not None and previous.name in group.names:
                    written[0] = _keep_unmapped(previous, written[0])
                replace_at((group.property, key), written)
        for key, entry in new_entries.items():
            if key not in old_entries or key in regenerate:
                additions.extend(_entry_lines(group, key, entry, version))
    kept = [line for line in lines if line is not None]
    end = next((i for i in range(len(kept) - 1, -1, -1) if kept[i].name == "END"), len(kept))
    result = kept[:end] + _dedupe(additions) + kept[end:]
    return serialize(result)


# Parameters whose meaning the JSON carries (written again from it).
MAPPED_PARAMS = frozenset(
    {"TYPE", "PREF", "PROP-ID", "LABEL", "CC", "X-SERVICE-TYPE", "VALUE", "DERIVED"}
)
_MAPPED_TYPES = frozenset(
    {"work", "home", "pref", "internet", *(t.lower() for t in PHONE_FEATURES)}
)


def _keep_unmapped(previous: Line, written: Line) -> Line:
    """The rewritten line of a changed entry keeps what JSON does not carry from the line
    it replaces: its group (Apple's ``item1.X-ABLabel`` names it), parameters this
    module does not map, and TYPE values it does not map (``TYPE=x-assistant``)."""
    kept_types = [t for t in _types(previous) if t.lower() not in _MAPPED_TYPES]
    params = list(written.params)
    if kept_types:
        types = next((v for k, v in params if k == "TYPE"), None)
        if types is None:
            params.insert(0, ("TYPE", kept_types))
        else:
            types.extend(t for t in kept_types if t.lower() not in {x.lower() for x in types})
    for key, values in previous.params:
        if key not in MAPPED_PARAMS:
            params.insert(len(params) - 1, (key, list(values)))
    return Line(written.name, params, written.value, previous.group)


def _dedupe(lines: list[Line]) -> list[Line]:
    seen: set[str] = set()
    out = []
    for line in lines:
        text = line.text()
        if text in seen:
            continue
        seen.add(text)
        out.append(line)
    return out


# -- JSON patch (RFC 8620 §5.3 PatchObject) --------------------------------------------------


class PatchError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def apply_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 8620 §5.3: a copy of ``target`` with each ``pointer: value`` set (null
    removes). A pointer whose parent does not exist, or a prefix of another pointer in
    the same patch, is a PatchError (invalidPatch)."""
    import copy

    result = copy.deepcopy(target)
    pointers = list(patch)
    for pointer in pointers:
        for other in pointers:
            if other != pointer and other.startswith(pointer + "/"):
                raise PatchError(pointer, f"{pointer} is a prefix of {other}")
    for pointer, value in patch.items():
        if not isinstance(pointer, str) or not pointer or pointer.startswith("/"):
            raise PatchError(str(pointer), "a patch key is a JSON pointer without leading /")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")]
        node: Any = result
        for part in parts[:-1]:
            if isinstance(node, dict) and isinstance(node.get(part), (dict, list)):
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise PatchError(pointer, f"{pointer}: no such parent")
        last = parts[-1]
        if isinstance(node, dict):
            if value is None:
                node.pop(last, None)
            else:
                node[last] = copy.deepcopy(value)
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            if value is None:
                raise PatchError(pointer, f"{pointer}: cannot remove an array element")
            node[int(last)] = copy.deepcopy(value)
        else:
            raise PatchError(pointer, f"{pointer}: no such parent")
    return result


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
