"""WebDAV XML (sans-I/O): safe parsing of request bodies and the request types built from
them; multistatus and error bodies.

RFC 4918 §14 (elements), §13 (multistatus), §16 (precondition/postcondition codes);
RFC 4791 §9 (CalDAV REPORT elements), RFC 6352 §10 (CardDAV), RFC 6578 §6 (sync),
RFC 5689 (extended MKCOL). Parsing uses defusedxml with DTDs, entities and external
references forbidden: an XML bomb or an external entity is a 400, never expanded.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from hirondelle.dav.partial import CompSelection
from hirondelle.groupware.filters import (
    COLLATIONS,
    MATCH_TYPES,
    CardFilter,
    CompFilter,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"
PREFIXES = {DAV: "d", CALDAV: "cal", CARDDAV: "card", CALSERVER: "cs", APPLE: "ical"}
for _namespace, _prefix in PREFIXES.items():
    ET.register_namespace(_prefix, _namespace)

MAX_XML_BODY = 4 * 1024 * 1024
MAX_HREFS = 10_000
MAX_FILTER_DEPTH = 16


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


class XmlError(Exception):
    """A malformed or unacceptable request body (HTTP 400, or 403 with ``element``)."""

    def __init__(self, message: str, *, status: int = 400, element: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.element = element  # Clark name of a precondition, if any


def parse(body: bytes) -> ET.Element | None:
    """The root element of ``body`` (None when empty), or XmlError."""
    if not body.strip():
        return None
    if len(body) > MAX_XML_BODY:
        raise XmlError("request body too large", status=413)
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlError(f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ET.ParseError, ValueError, UnicodeError) as exc:
        raise XmlError(f"malformed XML: {exc}") from exc
    if not isinstance(root, ET.Element):
        raise XmlError("malformed XML")
    return root


def _expect(root: ET.Element | None, name: str) -> ET.Element:
    if root is None or root.tag != name:
        raise XmlError(f"expected {name}")
    return root


# -- PROPFIND / PROPPATCH / MKCOL ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Propfind:
    """RFC 4918 §14.20: ``mode`` is "prop", "allprop" or "propname"."""

    mode: str
    names: tuple[str, ...] = ()


def parse_propfind(root: ET.Element | None) -> Propfind:
    if root is None:
        return Propfind("allprop")  # §9.1: an empty body is allprop
    root = _expect(root, tag(DAV, "propfind"))
    for child in root:
        if child.tag == tag(DAV, "prop"):
            return Propfind("prop", tuple(p.tag for p in child))
        if child.tag == tag(DAV, "allprop"):
            include = root.find(tag(DAV, "include"))
            extra = tuple(p.tag for p in include) if include is not None else ()
            return Propfind("allprop", extra)
        if child.tag == tag(DAV, "propname"):
            return Propfind("propname")
    raise XmlError("propfind needs prop, allprop or propname")


@dataclass(frozen=True, slots=True)
class PropertyUpdate:
    """Ordered set/remove instructions (RFC 4918 §14.19)."""

    operations: tuple[tuple[str, ET.Element], ...]  # ("set" | "remove", property element)


def parse_propertyupdate(root: ET.Element | None) -> PropertyUpdate:
    root = _expect(root, tag(DAV, "propertyupdate"))
    operations: list[tuple[str, ET.Element]] = []
    for child in root:
        if child.tag not in (tag(DAV, "set"), tag(DAV, "remove")):
            continue
        op = "set" if child.tag == tag(DAV, "set") else "remove"
        prop = child.find(tag(DAV, "prop"))
        if prop is None:
            raise XmlError(f"{op} without prop")
        operations.extend((op, p) for p in prop)
    return PropertyUpdate(tuple(operations))


def parse_mkcol(root: ET.Element | None, *, calendar: bool) -> tuple[ET.Element, ...]:
    """RFC 5689 §5.1 mkcol / RFC 4791 §5.3.1 mkcalendar: the properties to set."""
    if root is None:
        return ()
    expected = tag(CALDAV, "mkcalendar") if calendar else tag(DAV, "mkcol")
    root = _expect(root, expected)
    props: list[ET.Element] = []
    for child in root:
        if child.tag != tag(DAV, "set"):
            continue
        prop = child.find(tag(DAV, "prop"))
        if prop is not None:
            props.extend(prop)
    return tuple(props)


# -- REPORTs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarDataRequest:
    """RFC 4791 §9.6: what of calendar-data to return."""

    expand: TimeRange | None = None
    limit_recurrence: TimeRange | None = None
    comp: CompSelection | None = None  # §9.6.1: None returns the whole object


@dataclass(frozen=True, slots=True)
class AddressDataRequest:
    """RFC 6352 §10.4: address-data with an optional version."""

    version: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    name: str  # Clark name of the root element
    propfind: Propfind
    hrefs: tuple[str, ...] = ()
    comp_filter: CompFilter | None = None
    card_filter: CardFilter | None = None
    calendar_data: CalendarDataRequest = field(default_factory=CalendarDataRequest)
    address_data: AddressDataRequest = field(default_factory=AddressDataRequest)
    limit: int | None = None
    sync_token: str | None = None
    sync_level: str = "1"
    time_range: TimeRange | None = None  # free-busy-query
    timezone: str | None = None


def parse_utc(value: str | None) -> dt.datetime | None:
    """RFC 4791 §9.9: "date with UTC time" (``YYYYMMDDTHHMMSSZ``)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.strptime(value.strip(), "%Y%m%dT%H%M%SZ")
    except ValueError as exc:
        raise XmlError(
            f"bad UTC time {value!r}", status=403, element=tag(CALDAV, "valid-filter")
        ) from exc
    return parsed.replace(tzinfo=dt.UTC)


def _time_range(element: ET.Element | None) -> TimeRange | None:
    if element is None:
        return None
    start = parse_utc(element.get("start"))
    end = parse_utc(element.get("end"))
    if start is None and end is None:
        raise XmlError(
            "time-range needs start or end", status=403, element=tag(CALDAV, "valid-filter")
        )
    if start is not None and end is not None and end <= start:
        raise XmlError(
            "time-range end before start", status=403, element=tag(CALDAV, "valid-filter")
        )
    return TimeRange(start, end)


def _text_match(element: ET.Element, namespace: str) -> TextMatch:
    collation = element.get("collation", "i;ascii-casemap")
    if collation not in COLLATIONS:
        raise XmlError(
            f"unsupported collation {collation}",
            status=403,
            element=tag(namespace, "supported-collation"),
        )
    match_type = element.get("match-type", "contains")
    if match_type not in MATCH_TYPES:
        raise XmlError(f"bad match-type {match_type}", status=400)
    negate = element.get("negate-condition", "no").lower() == "yes"
    return TextMatch(element.text or "", collation, negate, match_type)


def _param_filter(element: ET.Element, namespace: str) -> ParamFilter:
    name = element.get("name")
    if not name:
        raise XmlError("param-filter without name")
    tm = element.find(tag(namespace, "text-match"))
    return ParamFilter(
        name=name.upper(),
        is_not_defined=element.find(tag(namespace, "is-not-defined")) is not None,
        text_match=_text_match(tm, namespace) if tm is not None else None,
    )


def _prop_filter(element: ET.Element, namespace: str) -> PropFilter:
    name = element.get("name")
    if not name:
        raise XmlError("prop-filter without name")
    test = element.get("test", "anyof")
    if test not in ("anyof", "allof"):
        raise XmlError("bad test attribute")
    return PropFilter(
        name=name.upper(),
        is_not_defined=element.find(tag(namespace, "is-not-defined")) is not None,
        time_range=_time_range(element.find(tag(CALDAV, "time-range")))
        if namespace == CALDAV
        else None,
        text_matches=tuple(
            _text_match(tm, namespace) for tm in element.findall(tag(namespace, "text-match"))
        ),
        param_filters=tuple(
            _param_filter(pf, namespace) for pf in element.findall(tag(namespace, "param-filter"))
        ),
        test=test,
    )


def _comp_filter(element: ET.Element, depth: int = 0) -> CompFilter:
    if depth > MAX_FILTER_DEPTH:
        raise XmlError("filter nested too deeply", status=403, element=tag(CALDAV, "valid-filter"))
    name = element.get("name")
    if not name:
        raise XmlError("comp-filter without name", status=403, element=tag(CALDAV, "valid-filter"))
    return CompFilter(
        name=name.upper(),
        is_not_defined=element.find(tag(CALDAV, "is-not-defined")) is not None,
        time_range=_time_range(element.find(tag(CALDAV, "time-range"))),
        prop_filters=tuple(
            _prop_filter(p, CALDAV) for p in element.findall(tag(CALDAV, "prop-filter"))
        ),
        comp_filters=tuple(
            _comp_filter(c, depth + 1) for c in element.findall(tag(CALDAV, "comp-filter"))
        ),
    )


def _prop_part(root: ET.Element) -> Propfind:
    for child in root:
        if child.tag == tag(DAV, "prop"):
            return Propfind("prop", tuple(p.tag for p in child))
        if child.tag == tag(DAV, "allprop"):
            return Propfind("allprop")
        if child.tag == tag(DAV, "propname"):
            return Propfind("propname")
    return Propfind("allprop")


def _calendar_data(root: ET.Element) -> CalendarDataRequest:
    prop = root.find(tag(DAV, "prop"))
    element = prop.find(tag(CALDAV, "calendar-data")) if prop is not None else None
    if element is None:
        return CalendarDataRequest()
    expand = element.find(tag(CALDAV, "expand"))
    limit = element.find(tag(CALDAV, "limit-recurrence-set"))

    def bounded(e: ET.Element | None) -> TimeRange | None:
        if e is None:
            return None
        start, end = parse_utc(e.get("start")), parse_utc(e.get("end"))
        if start is None or end is None or end <= start:
            raise XmlError(
                "expand needs start < end", status=403, element=tag(CALDAV, "valid-filter")
            )
        return TimeRange(start, end)

    comp = element.find(tag(CALDAV, "comp"))
    return CalendarDataRequest(
        expand=bounded(expand),
        limit_recurrence=bounded(limit),
        comp=_comp_selection(comp) if comp is not None else None,
    )


def _comp_selection(element: ET.Element, depth: int = 0) -> CompSelection:
    """RFC 4791 §9.6.1-§9.6.4: comp, allprop, prop (name, novalue), allcomp."""
    name = (element.get("name") or "").strip().upper()
    if not name or depth > 8:
        raise XmlError("comp needs a name (and little nesting)")
    if depth == 0 and name != "VCALENDAR":
        # §9.6.1: the top comp of calendar-data is the VCALENDAR object.
        raise XmlError(
            "the top comp must be VCALENDAR",
            status=403,
            element=tag(CALDAV, "supported-calendar-data"),
        )
    props: list[tuple[str, bool]] = []
    for prop in element.findall(tag(CALDAV, "prop")):
        prop_name = (prop.get("name") or "").strip().upper()
        if not prop_name:
            raise XmlError("prop needs a name")
        props.append((prop_name, (prop.get("novalue") or "no").strip().lower() == "yes"))
    return CompSelection(
        name,
        allprop=element.find(tag(CALDAV, "allprop")) is not None,
        props=tuple(props),
        allcomp=element.find(tag(CALDAV, "allcomp")) is not None,
        comps=tuple(_comp_selection(c, depth + 1) for c in element.findall(tag(CALDAV, "comp"))),
    )


def _address_data(root: ET.Element) -> AddressDataRequest:
    prop = root.find(tag(DAV, "prop"))
    element = prop.find(tag(CARDDAV, "address-data")) if prop is not None else None
    if element is None:
        return AddressDataRequest()
    return AddressDataRequest(version=element.get("version"))


def _hrefs(root: ET.Element) -> tuple[str, ...]:
    hrefs = tuple((h.text or "").strip() for h in root.findall(tag(DAV, "href")))
    if len(hrefs) > MAX_HREFS:
        raise XmlError(
            "too many hrefs", status=403, element=tag(DAV, "number-of-matches-within-limits")
        )
    return hrefs


def parse_report(root: ET.Element | None) -> Report:
    if root is None:
        raise XmlError("REPORT needs a body")
    name = root.tag
    if name == tag(CALDAV, "calendar-multiget") or name == tag(CARDDAV, "addressbook-multiget"):
        return Report(
            name,
            _prop_part(root),
            hrefs=_hrefs(root),
            calendar_data=_calendar_data(root),
            address_data=_address_data(root),
        )
    if name == tag(CALDAV, "calendar-query"):
        filter_element = root.find(tag(CALDAV, "filter"))
        if filter_element is None or len(filter_element) != 1:
            raise XmlError(
                "calendar-query needs one filter", status=403, element=tag(CALDAV, "valid-filter")
            )
        top = filter_element[0]
        if top.tag != tag(CALDAV, "comp-filter") or top.get("name", "").upper() != "VCALENDAR":
            raise XmlError(
                "the filter must start with VCALENDAR",
                status=403,
                element=tag(CALDAV, "valid-filter"),
            )
        timezone_element = root.find(tag(CALDAV, "timezone"))
        return Report(
            name,
            _prop_part(root),
            comp_filter=_comp_filter(top),
            calendar_data=_calendar_data(root),
            timezone=timezone_element.text if timezone_element is not None else None,
        )
    if name == tag(CARDDAV, "addressbook-query"):
        filter_element = root.find(tag(CARDDAV, "filter"))
        prop_filters: tuple[PropFilter, ...] = ()
        test = "anyof"
        if filter_element is not None:
            test = filter_element.get("test", "anyof")
            if test not in ("anyof", "allof"):
                raise XmlError("bad test attribute")
            prop_filters = tuple(
                _prop_filter(p, CARDDAV)
                for p in filter_element.findall(tag(CARDDAV, "prop-filter"))
            )
        limit = None
        limit_element = root.find(tag(CARDDAV, "limit"))
        if limit_element is not None:
            limit = _positive(limit_element.findtext(tag(CARDDAV, "nresults")))
        return Report(
            name,
            _prop_part(root),
            card_filter=CardFilter(prop_filters, test),
            address_data=_address_data(root),
            limit=limit,
        )
    if name == tag(DAV, "sync-collection"):
        token_element = root.find(tag(DAV, "sync-token"))
        level = (root.findtext(tag(DAV, "sync-level")) or "1").strip()
        limit = None
        limit_element = root.find(tag(DAV, "limit"))
        if limit_element is not None:
            limit = _positive(limit_element.findtext(tag(DAV, "nresults")))
        return Report(
            name,
            _prop_part(root),
            sync_token=(token_element.text or "").strip() if token_element is not None else "",
            sync_level=level,
            limit=limit,
            calendar_data=_calendar_data(root),
            address_data=_address_data(root),
        )
    if name == tag(CALDAV, "free-busy-query"):
        time_range = _time_range(root.find(tag(CALDAV, "time-range")))
        if time_range is None or time_range.start is None or time_range.end is None:
            raise XmlError("free-busy-query needs a bounded time-range", status=400)
        return Report(name, Propfind("prop"), time_range=time_range)
    return Report(name, Propfind("prop"))


def _positive(text: str | None) -> int:
    try:
        value = int((text or "").strip())
    except ValueError as exc:
        raise XmlError("nresults must be a number") from exc
    if value < 1:
        raise XmlError("nresults must be positive")
    return value


# -- responses -----------------------------------------------------------------------------


def element(name: str, text: str | None = None, *children: ET.Element) -> ET.Element:
    e = ET.Element(name)
    if text is not None:
        e.text = text
    e.extend(children)
    return e


def href(path: str) -> ET.Element:
    return element(tag(DAV, "href"), path)


STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    424: "Failed Dependency",
    507: "Insufficient Storage",
}


def status_line(code: int) -> str:
    return f"HTTP/1.1 {code} {STATUS_TEXT.get(code, '')}".rstrip()


@dataclass
class Response:
    """One ``DAV:response`` of a multistatus."""

    path: str
    found: list[ET.Element] = field(default_factory=list)
    others: dict[int, list[ET.Element]] = field(default_factory=dict)
    status: int | None = None  # a response with a plain status (sync-collection removals)
    error: ET.Element | None = None

    def to_element(self, *, minimal: bool) -> ET.Element:
        response = element(tag(DAV, "response"), None, href(self.path))
        if self.status is not None:
            response.append(element(tag(DAV, "status"), status_line(self.status)))
            if self.error is not None:
                response.append(self.error)
            return response
        groups = [(200, self.found), *sorted(self.others.items())]
        wrote = False
        for code, props in groups:
            if not props and code == 200 and (self.others and not minimal):
                continue
            if not props and code != 200:
                continue
            if minimal and code == 404:
                continue
            propstat = element(
                tag(DAV, "propstat"),
                None,
                element(tag(DAV, "prop"), None, *props),
                element(tag(DAV, "status"), status_line(code)),
            )
            response.append(propstat)
            wrote = True
        if not wrote:
            response.append(
                element(
                    tag(DAV, "propstat"),
                    None,
                    element(tag(DAV, "prop")),
                    element(tag(DAV, "status"), status_line(200)),
                )
            )
        return response


def multistatus(
    responses: list[Response], *, minimal: bool = False, sync_token: str | None = None
) -> bytes:
    root = element(tag(DAV, "multistatus"))
    for response in responses:
        root.append(response.to_element(minimal=minimal))
    if sync_token is not None:
        root.append(element(tag(DAV, "sync-token"), sync_token))
    return serialize(root)


def error_body(condition: str, message: str = "") -> bytes:
    """RFC 4918 §16: ``<D:error>`` with one precondition element (Clark name)."""
    root = element(tag(DAV, "error"), None, element(condition))
    if message:
        description = ET.SubElement(root, tag(DAV, "responsedescription"))
        description.text = message
    return serialize(root)


def serialize(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
