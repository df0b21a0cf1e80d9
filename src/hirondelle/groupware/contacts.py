"""Address object resources: vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) with ``vobject``.

RFC 6352 §5.1 (one vCard per resource, with a UID), §6.3.2.1 preconditions
(``valid-address-data``, ``supported-address-data``, ``no-uid-conflict``,
``max-resource-size``), §10.3 (address-data conversion on request).

Why vobject: it is the parser Radicale has used for a decade on the same job, maintained
(py-vobject), reads both versions, and keeps unknown properties and parameters, so a
card survives a round trip through any client. Conversion between 3.0 and 4.0 changes
only what differs between the two (VERSION, PREF/TYPE=pref, inline PHOTO/LOGO/SOUND as
``ENCODING=b`` vs ``data:`` URIs, KIND vs X-ADDRESSBOOKSERVER-KIND); the stored text is
never rewritten.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import vobject  # type: ignore[import-untyped]

from hirondelle.groupware.calendar import etag_of
from hirondelle.store.groupware import IndexedObject

VERSIONS = ("3.0", "4.0")
_BINARY = ("PHOTO", "LOGO", "SOUND", "KEY")
_DATA_URI = re.compile(r"^data:([^;,]*)(;base64)?,(.*)$", re.S | re.I)


class ContactError(Exception):
    """A refused vCard: ``precondition`` is the CARDDAV element name."""

    def __init__(self, precondition: str, message: str) -> None:
        super().__init__(message)
        self.precondition = precondition
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedCard:
    card: Any
    version: str
    uid: str
    full_name: str


def parse(data: str) -> ParsedCard:
    """One vCard with VERSION 3.0 or 4.0, a UID and an FN, or ContactError."""
    if "\x00" in data:
        raise ContactError("valid-address-data", "NUL character in vCard data")
    try:
        cards = list(vobject.readComponents(data, validate=False))
    except Exception as exc:
        raise ContactError("valid-address-data", f"not a vCard: {exc}") from exc
    if len(cards) != 1 or str(cards[0].name).upper() != "VCARD":
        raise ContactError("valid-address-data", "a resource holds exactly one VCARD")
    card = cards[0]
    try:
        version = str(card.version.value).strip()
    except AttributeError:
        raise ContactError("valid-address-data", "VERSION is missing") from None
    if version not in VERSIONS:
        raise ContactError("supported-address-data", f"vCard version {version} is not supported")
    uid = _text(card, "uid")
    if not uid:
        raise ContactError("valid-address-data", "UID is missing (RFC 6352 §5.1)")
    full_name = _text(card, "fn")
    if not full_name and version == "4.0":
        raise ContactError("valid-address-data", "FN is missing")
    return ParsedCard(card, version, uid, full_name)


def _text(card: Any, name: str) -> str:
    child = getattr(card, name, None)
    if child is None:
        return ""
    value = child.value
    return value.strip() if isinstance(value, str) else str(value).strip()


def index(data: str) -> tuple[ParsedCard, IndexedObject]:
    try:
        parsed = parse(data)
    except ContactError:
        raise
    except Exception as exc:
        raise ContactError("valid-address-data", f"invalid vCard: {exc}") from exc
    item = IndexedObject(
        component="VCARD",
        uid=parsed.uid[:1000],
        data=data,
        etag=etag_of(data),
        summary=parsed.full_name[:1000],
        search_text=search_text(parsed.card),
    )
    return parsed, item


# What search_text holds: the properties people look others up by.
SEARCHED = ("FN", "N", "NICKNAME", "ORG", "EMAIL", "TEL")


def search_text(card: Any) -> str:
    """The card's searched values, case-folded, one per line (at most 64 kB)."""
    lines: list[str] = []
    for child in card.getChildren():
        if str(child.name).upper() not in SEARCHED:
            continue
        value = child.value
        if isinstance(value, bytes):
            continue
        if isinstance(value, (list, tuple)):
            text = " ".join(str(v) for v in value)
        elif hasattr(value, "family"):  # vobject's N and ADR objects
            text = " ".join(
                str(getattr(value, part, "") or "")
                for part in ("prefix", "given", "additional", "family", "suffix")
            )
        else:
            text = str(value)
        lines.append(" ".join(text.split()).casefold())
    return "\n".join(lines)[:65536]


def version_of(data: str) -> str:
    match = re.search(r"^VERSION:\s*([0-9.]+)\s*$", data, re.M | re.I)
    return match.group(1) if match else "3.0"


def convert(data: str, version: str) -> str:
    """RFC 6352 §10.3: the card in ``version`` (returned as is when already there)."""
    if version not in VERSIONS:
        raise ContactError("supported-address-data-conversion", f"no vCard {version}")
    if version_of(data) == version:
        return data
    if version == "3.0":
        data = _inline_binaries(data)
    card = vobject.readOne(data, validate=False)
    card.version.value = version
    for child in list(card.getChildren()):
        params = child.params
        name = str(child.name).upper()
        if version == "4.0":
            types = params.get("TYPE", [])
            if any(t.lower() == "pref" for t in types):
                params["TYPE"] = [t for t in types if t.lower() != "pref"]
                if not params["TYPE"]:
                    del params["TYPE"]
                params["PREF"] = ["1"]
            if name in _BINARY and "ENCODING" in params:
                kind = (params.get("TYPE") or ["octet-stream"])[0].lower()
                raw = child.value if isinstance(child.value, bytes) else str(child.value).encode()
                params.pop("ENCODING", None)
                params.pop("TYPE", None)
                child.value = f"data:image/{kind};base64,{base64.b64encode(raw).decode()}"
                # A URI value: no text escaping of its ";" and ",".
                child.behavior = None
                child.encoded = True
                child.isNative = False
            if name == "X-ADDRESSBOOKSERVER-KIND":
                card.add("kind").value = str(child.value).lower()
                card.remove(child)
        else:
            if "PREF" in params:
                params.pop("PREF")
                params["TYPE"] = [*params.get("TYPE", []), "pref"]
            if name == "KIND":
                card.add("x-addressbookserver-kind").value = str(child.value)
                card.remove(child)
    if version == "3.0" and getattr(card, "n", None) is None:
        # vCard 3.0 requires N (RFC 2426 §3.1.2).
        card.add("n").value = vobject.vcard.Name(family=_text(card, "fn"))
    return str(card.serialize(validate=False))


_BINARY_LINE = re.compile(
    r"^(PHOTO|LOGO|SOUND|KEY)((?:;[^:\r\n]*)?):data:[^/;,\r\n]*/?([^;,\r\n]*);base64,(.*)$",
    re.M | re.I,
)


def _inline_binaries(data: str) -> str:
    """vCard 4.0 ``data:`` URIs as vCard 3.0 inline ``ENCODING=b`` values (RFC 2426 §3.1.4)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", data)
    return _BINARY_LINE.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)};ENCODING=b;TYPE={(m.group(3) or 'JPEG').upper()}:"
            f"{m.group(4).strip()}"
        ),
        unfolded,
    )


def directory_card(*, address: str, display_name: str, account_id: int, version: str) -> str:
    """The read-only Directory address book's card for one account of the domain."""
    name = display_name or address.split("@", 1)[0]
    given, _, family = name.rpartition(" ") if " " in name else (name, "", "")

    def escape(text: str) -> str:
        return (
            text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")
        )

    lines = [
        "BEGIN:VCARD",
        f"VERSION:{version}",
        "PRODID:-//Hirondelle//Directory//EN",
        f"UID:urn:hirondelle:account:{account_id}",
        f"FN:{escape(name)}",
        f"N:{escape(family)};{escape(given)};;;",
    ]
    if version == "4.0":
        lines.append("KIND:individual")
        lines.append(f"EMAIL;TYPE=work;PREF=1:{address}")
    else:
        lines.append(f"EMAIL;TYPE=INTERNET,WORK,pref:{address}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"
