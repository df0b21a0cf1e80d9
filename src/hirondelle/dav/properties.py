"""Live properties of every kind of DAV resource, and which ones PROPPATCH may change.

RFC 4918 §15 (DAV: properties), RFC 3744 §5.4 (current-user-privilege-set), RFC 5397
(current-user-principal), RFC 6578 §4 (sync-token), RFC 4791 §5.2 and §6.2 (calendar
collection and principal properties), RFC 6352 §6.2 and §7.1 (address book),
RFC 6638 §2.1-2.4 (schedule-inbox-URL, schedule-outbox-URL, calendar-user-address-set,
schedule-default-calendar-URL), Apple calendar-color/calendar-order and CalendarServer
getctag (de-facto, documented by Apple's CalendarServer).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime

from hirondelle.dav import paths
from hirondelle.dav.xml import APPLE, CALDAV, CALSERVER, CARDDAV, DAV, element, href, tag
from hirondelle.groupware.calendar import MAX_INSTANCES
from hirondelle.store.groupware import (
    ADDRESSBOOK,
    CALENDAR,
    INBOX,
    OUTBOX,
    Collection,
    ResourceInfo,
)

SYNC_TOKEN_PREFIX = "http://hirondelle.invalid/sync/"


def sync_token(modseq: int) -> str:
    return f"{SYNC_TOKEN_PREFIX}{modseq}"


def parse_sync_token(token: str) -> int | None:
    if not token.startswith(SYNC_TOKEN_PREFIX):
        return None
    number = token[len(SYNC_TOKEN_PREFIX) :]
    if not number.isdigit() or len(number) > 18:
        return None
    return int(number)


@dataclass
class Node:
    """What a property is computed on."""

    kind: str  # root, principals, principal, home, collection, directory, resource, card
    path: str
    address: str  # the owner (the authenticated account)
    display_name: str = ""
    collection: Collection | None = None
    resource: ResourceInfo | None = None
    dead: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    # Directory: a synthetic ETag/ctag and the card text.
    etag: str = ""
    content_type: str = ""
    size: int = 0
    max_resource_size: int = 0
    # Principal: the other calendar user addresses (aliases leading to the account).
    aliases: tuple[str, ...] = ()


def _hrefs(name: str, *targets: str) -> ET.Element:
    return element(name, None, *(href(t) for t in targets))


def _privileges(node: Node) -> ET.Element:
    names = [tag(DAV, "read"), tag(DAV, "read-current-user-privilege-set")]
    if not node.read_only and node.kind in ("collection", "resource", "home"):
        names += [
            tag(DAV, n) for n in ("write", "write-properties", "write-content", "bind", "unbind")
        ]
    kind = node.collection.kind if node.collection is not None else ""
    if node.kind == "collection" and kind == OUTBOX:
        # RFC 6638 §6.1.1: clients look for these before offering free-busy lookups.
        names += [
            tag(CALDAV, n)
            for n in (
                "schedule-send",
                "schedule-send-invite",
                "schedule-send-reply",
                "schedule-send-freebusy",
            )
        ]
    if node.kind == "collection" and kind == INBOX:
        names += [
            tag(CALDAV, n)
            for n in (
                "schedule-deliver",
                "schedule-deliver-invite",
                "schedule-deliver-reply",
                "schedule-query-freebusy",
            )
        ]
    return element(
        tag(DAV, "current-user-privilege-set"),
        None,
        *(element(tag(DAV, "privilege"), None, element(n)) for n in names),
    )


def _resourcetype(node: Node) -> ET.Element:
    e = element(tag(DAV, "resourcetype"))
    if node.kind in ("root", "principals", "home", "collection", "directory"):
        e.append(element(tag(DAV, "collection")))
    if node.kind == "principal":
        e.append(element(tag(DAV, "collection")))
        e.append(element(tag(DAV, "principal")))
    if node.kind == "directory":
        e.append(element(tag(CARDDAV, "addressbook")))
        e.append(element(tag(CARDDAV, "directory")))
    if node.kind == "collection" and node.collection is not None:
        kind = node.collection.kind
        e.append(
            element(
                {
                    CALENDAR: tag(CALDAV, "calendar"),
                    ADDRESSBOOK: tag(CARDDAV, "addressbook"),
                    INBOX: tag(CALDAV, "schedule-inbox"),
                    OUTBOX: tag(CALDAV, "schedule-outbox"),
                }[kind]
            )
        )
    return e


def _supported_reports(node: Node) -> ET.Element | None:
    names: list[str] = []
    if node.kind == "collection" and node.collection is not None:
        kind = node.collection.kind
        if kind in (CALENDAR, INBOX):
            names = [
                tag(CALDAV, "calendar-query"),
                tag(CALDAV, "calendar-multiget"),
                tag(DAV, "sync-collection"),
            ]
            if kind == CALENDAR:
                names.append(tag(CALDAV, "free-busy-query"))
        elif kind == ADDRESSBOOK:
            names = [
                tag(CARDDAV, "addressbook-query"),
                tag(CARDDAV, "addressbook-multiget"),
                tag(DAV, "sync-collection"),
            ]
    elif node.kind == "directory":
        names = [tag(CARDDAV, "addressbook-query"), tag(CARDDAV, "addressbook-multiget")]
    return element(
        tag(DAV, "supported-report-set"),
        None,
        *(
            element(
                tag(DAV, "supported-report"), None, element(tag(DAV, "report"), None, element(n))
            )
            for n in names
        ),
    )


def _text(name: str, value: str | None) -> ET.Element | None:
    return element(name, value) if value is not None else None


Getter = Callable[[Node], "ET.Element | None"]


def _collection_only(
    kinds: tuple[str, ...], getter: Callable[[Collection, Node], ET.Element | None]
) -> Getter:
    def get(node: Node) -> ET.Element | None:
        if (
            node.kind == "collection"
            and node.collection is not None
            and node.collection.kind in kinds
        ):
            return getter(node.collection, node)
        return None

    return get


def _principal_only(getter: Callable[[Node], ET.Element]) -> Getter:
    def get(node: Node) -> ET.Element | None:
        return getter(node) if node.kind == "principal" else None

    return get


def _calendar_timezone(c: Collection, _node: Node) -> ET.Element | None:
    return _text(tag(CALDAV, "calendar-timezone"), c.timezone) if c.timezone else None


def _getctag(node: Node) -> ET.Element | None:
    if node.kind == "collection" and node.collection is not None:
        return element(tag(CALSERVER, "getctag"), sync_token(node.collection.modseq))
    if node.kind == "directory":
        return element(tag(CALSERVER, "getctag"), node.etag)
    return None


def _sync_token(node: Node) -> ET.Element | None:
    if node.kind == "collection" and node.collection is not None:
        return element(tag(DAV, "sync-token"), sync_token(node.collection.modseq))
    return None


def _etag(node: Node) -> ET.Element | None:
    if node.kind == "resource" and node.resource is not None:
        return element(tag(DAV, "getetag"), f'"{node.resource.etag}"')
    if node.kind == "card":
        return element(tag(DAV, "getetag"), f'"{node.etag}"')
    return None


def _content_type(node: Node) -> ET.Element | None:
    if node.kind == "resource" and node.resource is not None:
        if node.resource.component == "VCARD":
            return element(tag(DAV, "getcontenttype"), "text/vcard; charset=utf-8")
        return element(
            tag(DAV, "getcontenttype"),
            f"text/calendar; charset=utf-8; component={node.resource.component.lower()}",
        )
    if node.kind == "card":
        return element(tag(DAV, "getcontenttype"), "text/vcard; charset=utf-8")
    if node.kind in ("root", "principals", "principal", "home", "collection", "directory"):
        return element(tag(DAV, "getcontenttype"), "httpd/unix-directory")
    return None


def _content_length(node: Node) -> ET.Element | None:
    if node.kind == "resource" and node.resource is not None:
        return element(tag(DAV, "getcontentlength"), str(node.resource.size))
    if node.kind == "card":
        return element(tag(DAV, "getcontentlength"), str(node.size))
    return None


def _last_modified(node: Node) -> ET.Element | None:
    if node.kind == "resource" and node.resource is not None:
        moment = dt.datetime.fromtimestamp(node.resource.updated_at / 1_000_000, dt.UTC)
        return element(tag(DAV, "getlastmodified"), format_datetime(moment, usegmt=True))
    return None


def _displayname(node: Node) -> ET.Element | None:
    if node.kind == "resource" or node.kind == "card":
        return None
    return element(tag(DAV, "displayname"), node.display_name)


def _max_size(namespace: str) -> Getter:
    def get(node: Node) -> ET.Element | None:
        if node.kind != "collection" or node.collection is None:
            return None
        is_address_book = node.collection.kind == ADDRESSBOOK
        if is_address_book != (namespace == CARDDAV):
            return None
        return element(tag(namespace, "max-resource-size"), str(node.max_resource_size))

    return get


def _supported_address_data(node: Node) -> ET.Element | None:
    if node.kind == "directory" or (
        node.kind == "collection"
        and node.collection is not None
        and node.collection.kind == ADDRESSBOOK
    ):
        e = element(tag(CARDDAV, "supported-address-data"))
        for version in ("3.0", "4.0"):
            item = ET.SubElement(e, tag(CARDDAV, "address-data-type"))
            item.set("content-type", "text/vcard")
            item.set("version", version)
        return e
    return None


def _supported_components(c: Collection, _node: Node) -> ET.Element:
    e = element(tag(CALDAV, "supported-calendar-component-set"))
    for name in c.components:
        ET.SubElement(e, tag(CALDAV, "comp")).set("name", name)
    return e


def _supported_calendar_data(_c: Collection, _node: Node) -> ET.Element:
    e = element(tag(CALDAV, "supported-calendar-data"))
    data_type = ET.SubElement(e, tag(CALDAV, "calendar-data"))
    data_type.set("content-type", "text/calendar")
    data_type.set("version", "2.0")
    return e


def _owner(node: Node) -> ET.Element | None:
    if node.kind in ("root", "principals"):
        return None
    return _hrefs(tag(DAV, "owner"), paths.principal(node.address))


LIVE: dict[str, Getter] = {
    tag(DAV, "resourcetype"): _resourcetype,
    tag(DAV, "displayname"): _displayname,
    tag(DAV, "current-user-principal"): lambda n: _hrefs(
        tag(DAV, "current-user-principal"), paths.principal(n.address)
    ),
    tag(DAV, "principal-URL"): _principal_only(
        lambda n: _hrefs(tag(DAV, "principal-URL"), paths.principal(n.address))
    ),
    tag(DAV, "principal-collection-set"): lambda n: _hrefs(
        tag(DAV, "principal-collection-set"), f"{paths.PREFIX}principals/"
    ),
    tag(DAV, "owner"): _owner,
    tag(DAV, "current-user-privilege-set"): _privileges,
    tag(DAV, "supported-report-set"): _supported_reports,
    tag(DAV, "getetag"): _etag,
    tag(DAV, "getcontenttype"): _content_type,
    tag(DAV, "getcontentlength"): _content_length,
    tag(DAV, "getlastmodified"): _last_modified,
    tag(DAV, "sync-token"): _sync_token,
    tag(CALSERVER, "getctag"): _getctag,
    tag(CALDAV, "calendar-home-set"): _principal_only(
        lambda n: _hrefs(tag(CALDAV, "calendar-home-set"), paths.home(n.address))
    ),
    tag(CARDDAV, "addressbook-home-set"): _principal_only(
        lambda n: _hrefs(tag(CARDDAV, "addressbook-home-set"), paths.home(n.address))
    ),
    tag(CARDDAV, "principal-address"): lambda n: None,
    tag(CALDAV, "calendar-user-address-set"): _principal_only(
        lambda n: _hrefs(
            tag(CALDAV, "calendar-user-address-set"),
            *(f"mailto:{a}" for a in (n.address, *n.aliases)),
        )
    ),
    tag(CALDAV, "calendar-user-type"): _principal_only(
        lambda n: element(tag(CALDAV, "calendar-user-type"), "INDIVIDUAL")
    ),
    tag(CALDAV, "schedule-inbox-URL"): _principal_only(
        lambda n: _hrefs(tag(CALDAV, "schedule-inbox-URL"), paths.collection(n.address, "Inbox"))
    ),
    tag(CALDAV, "schedule-outbox-URL"): _principal_only(
        lambda n: _hrefs(tag(CALDAV, "schedule-outbox-URL"), paths.collection(n.address, "Outbox"))
    ),
    tag(CALDAV, "schedule-default-calendar-URL"): _collection_only(
        (INBOX,),
        lambda c, n: _hrefs(
            tag(CALDAV, "schedule-default-calendar-URL"), paths.collection(n.address, "Calendar")
        ),
    ),
    tag(CALDAV, "calendar-description"): _collection_only(
        (CALENDAR,), lambda c, n: element(tag(CALDAV, "calendar-description"), c.description)
    ),
    tag(CALDAV, "calendar-timezone"): _collection_only((CALENDAR,), _calendar_timezone),
    tag(CALDAV, "supported-calendar-component-set"): _collection_only(
        (CALENDAR, INBOX, OUTBOX), _supported_components
    ),
    tag(CALDAV, "supported-calendar-data"): _collection_only(
        (CALENDAR, INBOX), _supported_calendar_data
    ),
    tag(CALDAV, "max-resource-size"): _max_size(CALDAV),
    tag(CALDAV, "max-instances"): _collection_only(
        (CALENDAR,), lambda c, n: element(tag(CALDAV, "max-instances"), str(MAX_INSTANCES))
    ),
    tag(CARDDAV, "max-resource-size"): _max_size(CARDDAV),
    tag(CARDDAV, "addressbook-description"): _collection_only(
        (ADDRESSBOOK,), lambda c, n: element(tag(CARDDAV, "addressbook-description"), c.description)
    ),
    tag(CARDDAV, "supported-address-data"): _supported_address_data,
    tag(APPLE, "calendar-color"): _collection_only(
        (CALENDAR,), lambda c, n: _text(tag(APPLE, "calendar-color"), c.color)
    ),
    tag(APPLE, "calendar-order"): _collection_only(
        (CALENDAR,), lambda c, n: element(tag(APPLE, "calendar-order"), str(c.sort_order))
    ),
}

# What allprop returns (RFC 4918 §9.1: the "live properties defined in this document",
# plus cheap ones clients ask for anyway).
ALLPROP = (
    tag(DAV, "resourcetype"),
    tag(DAV, "displayname"),
    tag(DAV, "getetag"),
    tag(DAV, "getcontenttype"),
    tag(DAV, "getcontentlength"),
    tag(DAV, "getlastmodified"),
    tag(DAV, "owner"),
    tag(DAV, "sync-token"),
    tag(CALSERVER, "getctag"),
)

# Live properties PROPPATCH may set on a collection, and the column each one is.
WRITABLE = {
    tag(DAV, "displayname"): "display_name",
    tag(CALDAV, "calendar-description"): "description",
    tag(CARDDAV, "addressbook-description"): "description",
    tag(CALDAV, "calendar-timezone"): "timezone",
    tag(APPLE, "calendar-color"): "color",
    tag(APPLE, "calendar-order"): "sort_order",
}
# Settable only at creation (MKCALENDAR / extended MKCOL).
CREATE_ONLY = {tag(DAV, "resourcetype"), tag(CALDAV, "supported-calendar-component-set")}


def lookup(node: Node, name: str) -> ET.Element | None:
    """The property ``name`` of ``node`` (live or dead), or None when it has none."""
    getter = LIVE.get(name)
    if getter is not None:
        value = getter(node)
        # A live name the node lacks may be dead there (DAV:displayname of a resource).
        if value is not None or name not in node.dead:
            return value
    text = node.dead.get(name)
    if text is not None:
        try:
            return ET.fromstring(text)
        except ET.ParseError:
            return None
    return None


def names(node: Node) -> list[str]:
    """propname: every property the node has."""
    return [name for name in LIVE if LIVE[name](node) is not None] + list(node.dead)
