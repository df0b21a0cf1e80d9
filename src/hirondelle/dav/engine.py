"""The WebDAV/CalDAV/CardDAV methods: one handler per method, dispatched by a table.

RFC 4918 (WebDAV: §9.1 PROPFIND, §9.2 PROPPATCH, §9.3 MKCOL, §9.4 GET/HEAD, §9.6 DELETE,
§9.7 PUT, §9.8 COPY, §9.9 MOVE, §10 headers, §16 preconditions), RFC 5689 (extended
MKCOL), RFC 4791 (CalDAV: §5.3.1 MKCALENDAR, §5.3.2 PUT preconditions, §7 REPORTs),
RFC 6352 (CardDAV), RFC 6578 (sync-collection), RFC 7240 / RFC 8144 (Prefer:
return=minimal, Brief), RFC 9110 §13 (If-Match / If-None-Match).

Deliberate choices: Depth: infinity (and a PROPFIND without Depth, which means infinity)
is refused with ``DAV:propfind-finite-depth``; another account's paths answer 403
``DAV:need-privileges`` whether that account exists or not (no existence leak); dead
properties are kept on collections and resources (not on the home or principals);
``calendar-data`` partial retrieval
(``C:comp``/``C:prop`` inside it, RFC 4791 §9.6.1) is done in :mod:`.partial`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import icalendar
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from hirondelle.dav import partial, paths
from hirondelle.dav import properties as props
from hirondelle.dav import xml as dx
from hirondelle.dav.xml import CALDAV, CARDDAV, DAV, tag
from hirondelle.errors import Reason, Refused
from hirondelle.groupware import calendar as calendar_rules
from hirondelle.groupware import contacts as contact_rules
from hirondelle.groupware import filters
from hirondelle.groupware.service import DIRECTORY, ContentError, GroupwareService
from hirondelle.services import Services
from hirondelle.store.directory import Account
from hirondelle.store.groupware import (
    ADDRESSBOOK,
    CALENDAR,
    INBOX,
    OUTBOX,
    Collection,
    PreconditionFailed,
    Resource,
    ResourceInfo,
    UidConflict,
)
from hirondelle.store.journal import CannotCalculateChanges
from hirondelle.web import http_auth

log = logging.getLogger(__name__)

DAV_HEADER = (
    "1, 3, access-control, calendar-access, addressbook, calendar-auto-schedule, extended-mkcol"
)
ALLOW = (
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, "
    "MOVE, COPY, REPORT, POST"
)
XML_TYPE = 'application/xml; charset="utf-8"'
# Bodies of PROPFIND/REPORT/PROPPATCH/MKCOL are small; anything larger is refused unread.
MAX_XML_BODY = dx.MAX_XML_BODY


class DavError(Exception):
    """An answer other than success: status, and an optional precondition element."""

    def __init__(
        self,
        status: int,
        condition: str | None = None,
        message: str = "",
        *,
        body: ET.Element | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.condition = condition
        self.message = message
        self.body = body
        self.headers = headers or {}

    def response(self) -> Response:
        if self.body is not None:
            content = dx.serialize(self.body)
        elif self.condition is not None:
            content = dx.error_body(self.condition, self.message)
        else:
            return PlainTextResponse(self.message + "\n", self.status, headers=self.headers)
        return Response(content, self.status, media_type=XML_TYPE, headers=self.headers)


def _forbidden_elsewhere() -> DavError:
    return DavError(403, tag(DAV, "need-privileges"), "not your collection")


@dataclass
class Context:
    request: Request
    account: Account
    services: Services

    @property
    def groupware(self) -> GroupwareService:
        return self.services.groupware

    @property
    def address(self) -> str:
        return self.account.address.lower()

    @property
    def minimal(self) -> bool:
        prefer = self.request.headers.get("prefer", "").lower()
        brief = self.request.headers.get("brief", "").lower()
        return "return=minimal" in prefer or brief == "t"


# -- request helpers ----------------------------------------------------------------------


async def read_body(request: Request, limit: int, *, too_large: DavError) -> bytes:
    """The body, refused early (Content-Length) or as soon as it passes ``limit``."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise DavError(400, message="bad Content-Length")
        if int(length) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_xml(request: Request) -> ET.Element | None:
    body = await read_body(
        request, MAX_XML_BODY, too_large=DavError(413, message="request body too large")
    )
    try:
        return dx.parse(body)
    except dx.XmlError as exc:
        raise DavError(exc.status, exc.element, exc.message) from exc


def depth(request: Request, *, default: str = "infinity") -> str:
    value = request.headers.get("depth", default).strip().lower()
    if value not in ("0", "1", "infinity"):
        raise DavError(400, message="Depth must be 0, 1 or infinity")
    return value


_ETAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')


def _etags(header: str) -> list[str] | None:
    """The strong ETags of an If-Match/If-None-Match list; None for ``*``."""
    if header.strip() == "*":
        return None
    found = []
    for part in header.split(","):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise DavError(400, message="malformed entity tag")
        if match.group(1) is None:  # a weak tag never matches strongly (RFC 9110 §8.8.3.2)
            found.append(match.group(2))
    return found


# -- resolution ---------------------------------------------------------------------------


@dataclass
class Target:
    location: paths.Location
    collection: Collection | None = None
    resource: ResourceInfo | None = None
    directory: bool = False


async def resolve(ctx: Context, location: paths.Location) -> Target:
    """The target of a path, checking ownership (403 for any other address)."""
    if location.kind in ("root", "principals"):
        return Target(location)
    if location.address != ctx.address:
        raise _forbidden_elsewhere()
    if location.kind in ("principal", "home"):
        return Target(location)
    if location.collection == DIRECTORY:
        return Target(location, directory=True)
    collection = await ctx.groupware.collection(ctx.account.id, location.collection)
    target = Target(location, collection=collection)
    if location.kind == "resource" and location.resource and collection is not None:
        target.resource = await ctx.groupware.info(collection, location.resource)
    return target


def _not_found() -> DavError:
    return DavError(404, message="not found")


# -- Directory ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    name: str
    text: str
    etag: str


async def directory_cards(ctx: Context, version: str = "3.0") -> list[Card]:
    accounts = await ctx.groupware.directory_accounts(ctx.account)
    cards = []
    for account in accounts:
        text = contact_rules.directory_card(
            address=account.address,
            display_name=account.display_name,
            account_id=account.id,
            version=version,
        )
        cards.append(Card(f"{account.id}.vcf", text, calendar_rules.etag_of(text)))
    return cards


def _directory_ctag(cards: list[Card]) -> str:
    digest = hashlib.sha256("".join(c.etag for c in cards).encode()).hexdigest()
    return f"{props.SYNC_TOKEN_PREFIX}directory-{digest[:32]}"


# -- property nodes -----------------------------------------------------------------------


def _node_for(ctx: Context, kind: str, path: str, **kwargs: Any) -> props.Node:
    return props.Node(
        kind=kind,
        path=path,
        address=ctx.address,
        max_resource_size=ctx.groupware.max_resource_size,
        **kwargs,
    )


def collection_node(ctx: Context, collection: Collection, dead: dict[str, str]) -> props.Node:
    return _node_for(
        ctx,
        "collection",
        paths.collection(ctx.address, collection.name),
        display_name=collection.display_name,
        collection=collection,
        dead=dead,
    )


def resource_node(
    ctx: Context, collection: Collection, info: ResourceInfo, dead: dict[str, str] | None = None
) -> props.Node:
    return _node_for(
        ctx,
        "resource",
        paths.resource(ctx.address, collection.name, info.name),
        resource=info,
        dead=dead or {},
    )


def directory_node(ctx: Context, cards: list[Card]) -> props.Node:
    return _node_for(
        ctx,
        "directory",
        paths.collection(ctx.address, DIRECTORY),
        display_name="Annuaire / Directory",
        read_only=True,
        etag=_directory_ctag(cards),
    )


def card_node(ctx: Context, card: Card) -> props.Node:
    return _node_for(
        ctx,
        "card",
        paths.resource(ctx.address, DIRECTORY, card.name),
        read_only=True,
        etag=card.etag,
        size=len(card.text.encode()),
    )


def propstat(
    node: props.Node, request: dx.Propfind, extra: dict[str, ET.Element] | None = None
) -> dx.Response:
    """One multistatus response for ``node``: found properties and 404 ones."""
    response = dx.Response(node.path)
    if request.mode == "propname":
        response.found = [ET.Element(name) for name in props.names(node)]
        return response
    wanted = (
        props.ALLPROP + tuple(node.dead) + request.names
        if request.mode == "allprop"
        else request.names
    )
    for name in dict.fromkeys(wanted):
        value = extra.get(name) if extra and name in extra else props.lookup(node, name)
        if value is None:
            response.others.setdefault(404, []).append(ET.Element(name))
        else:
            response.found.append(value)
    return response


def multistatus_response(
    ctx: Context, responses: list[dx.Response], *, sync_token: str | None = None
) -> Response:
    body = dx.multistatus(responses, minimal=ctx.minimal, sync_token=sync_token)
    headers = {"Preference-Applied": "return=minimal"} if ctx.minimal else {}
    return Response(body, 207, media_type=XML_TYPE, headers=headers)


# -- OPTIONS ------------------------------------------------------------------------------


async def options(request: Request) -> Response:
    """RFC 4918 §10.1 DAV header; RFC 4791 §5.1; RFC 6352 §6.1; RFC 6638 §2."""
    return Response(
        status_code=200, headers={"DAV": DAV_HEADER, "Allow": ALLOW, "Content-Length": "0"}
    )


# -- PROPFIND -----------------------------------------------------------------------------


async def propfind(ctx: Context, location: paths.Location) -> Response:
    """RFC 4918 §9.1."""
    level = depth(ctx.request)
    if level == "infinity":
        raise DavError(403, tag(DAV, "propfind-finite-depth"), "Depth: infinity is not supported")
    request = dx.parse_propfind(await read_xml(ctx.request))
    target = await resolve(ctx, location)
    responses: list[dx.Response] = []
    kind = location.kind
    if kind in ("root", "principals"):
        responses.append(
            propstat(
                _node_for(
                    ctx, kind, paths.root() if kind == "root" else f"{paths.PREFIX}principals/"
                ),
                request,
            )
        )
        if level == "1" and kind == "principals":
            responses.append(
                propstat(
                    _node_for(
                        ctx,
                        "principal",
                        paths.principal(ctx.address),
                        display_name=ctx.account.display_name or ctx.address,
                    ),
                    request,
                )
            )
    elif kind == "principal":
        responses.append(
            propstat(
                _node_for(
                    ctx,
                    "principal",
                    paths.principal(ctx.address),
                    display_name=ctx.account.display_name or ctx.address,
                    aliases=await _aliases(ctx, request),
                ),
                request,
            )
        )
    elif kind == "home":
        responses.append(
            propstat(
                _node_for(ctx, "home", paths.home(ctx.address), display_name=ctx.address), request
            )
        )
        if level == "1":
            collections = await ctx.groupware.collections(ctx.account.id)
            dead = await ctx.groupware.properties([c.id for c in collections])
            for collection in collections:
                responses.append(
                    propstat(collection_node(ctx, collection, dead[collection.id]), request)
                )
            cards = await directory_cards(ctx)
            responses.append(propstat(directory_node(ctx, cards), request))
    elif target.directory:
        cards = await directory_cards(ctx)
        if location.kind == "resource" and location.resource:
            card = next((c for c in cards if c.name == location.resource), None)
            if card is None:
                raise _not_found()
            responses.append(propstat(card_node(ctx, card), request))
        else:
            responses.append(propstat(directory_node(ctx, cards), request))
            if level == "1":
                responses.extend(propstat(card_node(ctx, c), request) for c in cards)
    else:
        if target.collection is None:
            raise _not_found()
        collection = target.collection
        if location.kind == "resource" and location.resource:
            if target.resource is None:
                raise _not_found()
            info = target.resource
            dead = await _resource_dead(ctx, request, [info.id])
            responses.append(propstat(resource_node(ctx, collection, info, dead[info.id]), request))
        else:
            dead = await ctx.groupware.properties([collection.id])
            responses.append(
                propstat(collection_node(ctx, collection, dead[collection.id]), request)
            )
            if level == "1":
                infos = await ctx.groupware.resources(collection)
                dead = await _resource_dead(ctx, request, [i.id for i in infos])
                for info in infos:
                    responses.append(
                        propstat(resource_node(ctx, collection, info, dead[info.id]), request)
                    )
    return multistatus_response(ctx, responses)


async def _resource_dead(
    ctx: Context, request: dx.Propfind, ids: list[int]
) -> dict[int, dict[str, str]]:
    """Dead properties of resources, read only when the request can show one."""
    if request.mode == "prop" and all(
        (n in props.LIVE or n in _DATA_PROPS) and n != tag(DAV, "displayname")
        for n in request.names
    ):
        return {i: {} for i in ids}
    return await ctx.groupware.resource_properties(ids)


# RFC 4918 §15, RFC 4791 §9.6, RFC 6352 §10.4: what a client cannot set on a resource.
_PROTECTED_ON_RESOURCES = (
    (set(props.LIVE) | set(props.CREATE_ONLY) | {tag(CALDAV, "calendar-data")})
    | {tag(CARDDAV, "address-data")}
) - {tag(DAV, "displayname")}


async def _resource_proppatch(
    ctx: Context, collection: Collection, name: str, update: dx.PropertyUpdate
) -> Response:
    """RFC 4918 §9.2 on a calendar object or a vCard: dead properties only; a protected
    one fails with 403 and DAV:cannot-modify-protected-property, and then nothing is
    done (424 for the others)."""
    path = paths.resource(ctx.address, collection.name, name)
    names = [p.tag for _, p in update.operations]
    failed: dict[str, int] = {}
    # §9.2: instructions apply in document order; the last one for a name wins.
    dead_set: dict[str, str] = {}
    dead_remove: dict[str, None] = {}
    for op, prop in update.operations:
        if prop.tag in _PROTECTED_ON_RESOURCES:
            failed[prop.tag] = 403
        elif op == "set":
            serialized = ET.tostring(prop, encoding="unicode")
            if len(serialized) > 100_000:
                failed[prop.tag] = 507  # RFC 4918 §9.2.1: insufficient storage
                continue
            dead_set[prop.tag] = serialized
            dead_remove.pop(prop.tag, None)
        else:
            dead_remove[prop.tag] = None
            dead_set.pop(prop.tag, None)
    if not failed:
        try:
            await ctx.groupware.set_resource_properties(
                collection, name, set_properties=dead_set, remove_properties=list(dead_remove)
            )
        except Refused as exc:
            raise _not_found() from exc
        response = dx.Response(path, found=[ET.Element(n) for n in dict.fromkeys(names)])
        return multistatus_response(ctx, [response])
    body = _failed_multistatus(path, names, failed, tag(DAV, "multistatus"))
    for stat in body.iter(tag(DAV, "propstat")):
        if stat.findtext(tag(DAV, "status"), "").startswith("HTTP/1.1 403"):
            stat.append(
                dx.element(
                    tag(DAV, "error"),
                    None,
                    dx.element(tag(DAV, "cannot-modify-protected-property")),
                )
            )
    return Response(dx.serialize(body), 207, media_type=XML_TYPE)


async def _aliases(ctx: Context, request: dx.Propfind) -> tuple[str, ...]:
    """RFC 6638 §2.4.1: every calendar user address of the principal, when asked for
    (the scheduling service knows which aliases lead to the account)."""
    if request.mode != "prop" or tag(CALDAV, "calendar-user-address-set") not in request.names:
        return ()
    scheduling = getattr(ctx.services, "scheduling", None)
    if scheduling is None:
        return ()
    addresses: set[str] = await scheduling.addresses(ctx.account)
    return tuple(sorted(a.lower() for a in addresses if a.lower() != ctx.address))


# -- PROPPATCH / MKCOL / MKCALENDAR -------------------------------------------------------


def _collection_values(
    elements: list[tuple[str, ET.Element]], *, creating: bool, kind: str
) -> tuple[dict[str, object], dict[str, str], list[str], dict[str, int], list[str]]:
    """Split property instructions into column values, dead properties to set and to
    remove, and failures (name -> status); the last list holds the component set."""
    values: dict[str, object] = {}
    dead_set: dict[str, str] = {}
    dead_remove: list[str] = []
    failed: dict[str, int] = {}
    components: list[str] = []
    for op, prop in elements:
        name = prop.tag
        if name in props.WRITABLE:
            column = props.WRITABLE[name]
            if name == tag(CALDAV, "calendar-timezone") and kind != CALENDAR:
                failed[name] = 403
                continue
            if op == "remove":
                values[column] = (
                    0
                    if column == "sort_order"
                    else (None if column in ("color", "timezone") else "")
                )
                continue
            text = (prop.text or "").strip() if column != "timezone" else (prop.text or "")
            if column == "sort_order":
                try:
                    values[column] = int(text or "0")
                except ValueError:
                    failed[name] = 409
                continue
            if column == "color" and not re.fullmatch(r"#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?", text):
                failed[name] = 409
                continue
            if len(text) > 1_000_000:
                failed[name] = 403
                continue
            values[column] = text
        elif name in props.CREATE_ONLY:
            if not creating:
                failed[name] = 403
                continue
            if name == tag(CALDAV, "supported-calendar-component-set"):
                components = [c.get("name", "").upper() for c in prop.findall(tag(CALDAV, "comp"))]
        elif name in props.LIVE:
            failed[name] = 403  # protected (RFC 4918 §16 cannot-modify-protected-property)
        elif op == "set":
            serialized = ET.tostring(prop, encoding="unicode")
            if len(serialized) > 100_000:
                failed[name] = 403
                continue
            dead_set[name] = serialized
        else:
            dead_remove.append(name)
    return values, dead_set, dead_remove, failed, components


def _failed_multistatus(
    path: str, names: list[str], failed: dict[str, int], root_name: str
) -> ET.Element:
    """RFC 4918 §9.2.1 / RFC 5689 §5.2: failed ones with their status, others 424."""
    response = dx.Response(path)
    for name in names:
        response.others.setdefault(failed.get(name, 424), []).append(ET.Element(name))
    root = dx.element(root_name)
    if root_name == tag(DAV, "multistatus"):
        root.append(response.to_element(minimal=False))
    else:
        element = response.to_element(minimal=False)
        for child in list(element):
            if child.tag == tag(DAV, "propstat"):
                root.append(child)
    return root


async def proppatch(ctx: Context, location: paths.Location) -> Response:
    """RFC 4918 §9.2: all or nothing."""
    update = dx.parse_propertyupdate(await read_xml(ctx.request))
    target = await resolve(ctx, location)
    if target.directory:
        raise DavError(403, tag(DAV, "need-privileges"), "the directory is read-only")
    is_collection = location.kind == "collection" or (
        location.kind == "resource" and not location.resource
    )
    if location.kind in ("root", "principals", "principal", "home") or target.collection is None:
        if location.kind in ("principal", "home"):
            names = [p.tag for _, p in update.operations]
            return Response(
                dx.serialize(
                    _failed_multistatus(
                        paths.home(ctx.address),
                        names,
                        dict.fromkeys(names, 403),
                        tag(DAV, "multistatus"),
                    )
                ),
                207,
                media_type=XML_TYPE,
            )
        raise _not_found()
    collection = target.collection
    names = [p.tag for _, p in update.operations]
    if not is_collection:
        if target.resource is None:
            raise _not_found()
        return await _resource_proppatch(ctx, collection, target.resource.name, update)
    values, dead_set, dead_remove, failed, _components = _collection_values(
        list(update.operations), creating=False, kind=collection.kind
    )
    path = paths.collection(ctx.address, collection.name)
    if not failed:
        try:
            await ctx.groupware.update_collection(
                collection, values=values, set_properties=dead_set, remove_properties=dead_remove
            )
        except ContentError as exc:
            failed = {tag(CALDAV, "calendar-timezone"): 403}
            log.debug("PROPPATCH refused: %s", exc.message)
    if failed:
        body = _failed_multistatus(path, names, failed, tag(DAV, "multistatus"))
        return Response(dx.serialize(body), 207, media_type=XML_TYPE)
    response = dx.Response(path, found=[ET.Element(n) for n in dict.fromkeys(names)])
    return multistatus_response(ctx, [response])


async def mkcol(ctx: Context, location: paths.Location, *, calendar: bool) -> Response:
    """RFC 5689 extended MKCOL and RFC 4791 §5.3.1 MKCALENDAR."""
    root = await read_xml(ctx.request)
    try:
        elements = dx.parse_mkcol(root, calendar=calendar)
    except dx.XmlError as exc:
        raise DavError(400, message=exc.message) from exc
    if location.kind == "resource" and not location.resource:
        location = paths.Location("collection", location.address, location.collection)
    if location.kind != "collection":
        if calendar:
            raise DavError(
                403, tag(CALDAV, "calendar-collection-location-ok"), "calendars live in the home"
            )
        raise DavError(403, tag(DAV, "valid-resourcetype"), "collections live in the home")
    if location.address != ctx.address:
        raise _forbidden_elsewhere()
    kind = CALENDAR if calendar else None
    for prop in elements:
        if prop.tag == tag(DAV, "resourcetype"):
            types = {c.tag for c in prop}
            if tag(CALDAV, "calendar") in types:
                kind = CALENDAR
            elif tag(CARDDAV, "addressbook") in types:
                kind = ADDRESSBOOK
            elif types - {tag(DAV, "collection")}:
                raise DavError(403, tag(DAV, "valid-resourcetype"), "unsupported resource type")
    if kind is None:
        raise DavError(403, tag(DAV, "valid-resourcetype"), "only calendars and address books")
    existing = location.collection == DIRECTORY or await ctx.groupware.collection(
        ctx.account.id, location.collection
    )
    if existing:
        raise DavError(405, tag(DAV, "resource-must-be-null"), "the collection exists")
    values, dead_set, _remove, failed, components = _collection_values(
        [("set", p) for p in elements], creating=True, kind=kind
    )
    if components and any(c not in calendar_rules.COMPONENTS for c in components):
        raise DavError(403, tag(CALDAV, "supported-calendar-component"), "unsupported component")
    names = [p.tag for p in elements]
    if failed:
        root_name = tag(CALDAV, "mkcalendar-response") if calendar else tag(DAV, "mkcol-response")
        body = _failed_multistatus(
            paths.collection(ctx.address, location.collection), names, failed, root_name
        )
        return Response(dx.serialize(body), 403, media_type=XML_TYPE)
    try:
        await ctx.groupware.create_collection(
            ctx.account.id,
            kind=kind,
            name=location.collection,
            display_name=str(values.get("display_name", "")),
            description=str(values.get("description", "")),
            color=values.get("color") if isinstance(values.get("color"), str) else None,  # type: ignore[arg-type]
            sort_order=int(values.get("sort_order", 0)),  # type: ignore[call-overload]
            timezone=values.get("timezone") if isinstance(values.get("timezone"), str) else None,  # type: ignore[arg-type]
            components=components,
            properties=dead_set,
        )
    except ContentError as exc:
        raise DavError(403, tag(CALDAV, exc.precondition), exc.message) from exc
    except Refused as exc:
        if exc.reason is Reason.ALREADY_EXISTS:
            raise DavError(405, tag(DAV, "resource-must-be-null"), exc.message) from exc
        raise DavError(403, message=exc.message) from exc
    return Response(
        status_code=201,
        headers={
            "Location": paths.collection(ctx.address, location.collection),
            "Content-Length": "0",
        },
    )


# -- GET / HEAD ---------------------------------------------------------------------------


def _wanted_vcard_version(request: Request) -> str | None:
    accept = request.headers.get("accept", "")
    match = re.search(r"text/vcard[^,]*version=\"?([34]\.0)", accept, re.I)
    return match.group(1) if match else None


async def get(ctx: Context, location: paths.Location, *, head: bool = False) -> Response:
    """RFC 4918 §9.4 with a strong ETag (RFC 9110 §8.8.3)."""
    target = await resolve(ctx, location)
    if location.kind != "resource" or not location.resource:
        raise DavError(
            405, message="GET on a collection is not supported", headers={"Allow": ALLOW}
        )
    if target.directory:
        version = _wanted_vcard_version(ctx.request) or "3.0"
        cards = await directory_cards(ctx, version)
        card = next((c for c in cards if c.name == location.resource), None)
        if card is None:
            raise _not_found()
        # The ETag PROPFIND shows is that of the 3.0 card; another version gets none.
        etag = card.etag if version == "3.0" else None
        return _content(ctx, card.text, "text/vcard; charset=utf-8", etag, head=head)
    if target.collection is None or target.resource is None:
        raise _not_found()
    resource = await ctx.groupware.get(target.collection, location.resource)
    if resource is None:
        raise _not_found()
    if resource.info.component == "VCARD":
        wanted = _wanted_vcard_version(ctx.request)
        text = resource.data
        if wanted is not None and contact_rules.version_of(text) != wanted:
            version = wanted
            text = await asyncio.get_running_loop().run_in_executor(
                None, contact_rules.convert, text, version
            )
            return _content(
                ctx, text, f"text/vcard; charset=utf-8; version={version}", None, head=head
            )
        return _content(ctx, text, "text/vcard; charset=utf-8", resource.etag, head=head)
    return _content(
        ctx,
        resource.data,
        f"text/calendar; charset=utf-8; component={resource.info.component.lower()}",
        resource.etag,
        head=head,
    )


def _content(ctx: Context, text: str, media_type: str, etag: str | None, *, head: bool) -> Response:
    body = text.encode("utf-8")
    headers = {"Content-Length": str(len(body))}
    if etag is not None:
        headers["ETag"] = f'"{etag}"'
        if_none_match = ctx.request.headers.get("if-none-match")
        if if_none_match is not None:
            tags = _etags(if_none_match)
            if tags is None or etag in tags:
                return Response(status_code=304, headers={"ETag": f'"{etag}"'})
    response = Response(b"" if head else body, 200, headers=headers, media_type=None)
    response.headers["Content-Type"] = media_type
    return response


# -- PUT ----------------------------------------------------------------------------------


_CALENDAR_TYPES = ("text/calendar",)
_CARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")


async def put(ctx: Context, location: paths.Location) -> Response:
    """RFC 4918 §9.7, RFC 4791 §5.3.2, RFC 6352 §6.3.2; 201 only after the commit."""
    if location.kind != "resource" or not location.resource:
        raise DavError(405, message="PUT needs a resource path", headers={"Allow": ALLOW})
    target = await resolve(ctx, location)
    if target.directory:
        raise DavError(403, tag(DAV, "need-privileges"), "the directory is read-only")
    collection = target.collection
    if collection is None:
        raise DavError(409, message="the collection does not exist")
    if collection.kind in (OUTBOX, INBOX):
        # RFC 6638 §2.1-2.2: only the server files scheduling messages in the inbox.
        raise DavError(403, tag(DAV, "need-privileges"), "only the server writes here")
    namespace = CARDDAV if collection.kind == ADDRESSBOOK else CALDAV
    too_large = DavError(413, tag(namespace, "max-resource-size"), "the resource is too large")
    content_type = ctx.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    allowed = _CARD_TYPES if collection.kind == ADDRESSBOOK else _CALENDAR_TYPES
    if content_type and content_type not in allowed and content_type != "application/octet-stream":
        element = (
            "supported-address-data"
            if collection.kind == ADDRESSBOOK
            else "supported-calendar-data"
        )
        raise DavError(403, tag(namespace, element), f"{content_type} is not accepted here")
    if_match: str | None = None
    if_none_match = False
    header = ctx.request.headers.get("if-match")
    if header is not None:
        tags = _etags(header)
        if tags is None:
            if_match = "*"
        else:
            current = target.resource.etag if target.resource else None
            if current is None or current not in tags:
                raise DavError(412, message="If-Match failed")
            if_match = current
    header = ctx.request.headers.get("if-none-match")
    if header is not None:
        tags = _etags(header)
        if tags is None:
            if_none_match = True
        elif target.resource is not None and target.resource.etag in tags:
            raise DavError(412, message="If-None-Match failed")
    body = await read_body(ctx.request, ctx.groupware.max_resource_size, too_large=too_large)
    try:
        written = await ctx.groupware.put(
            ctx.account,
            collection,
            location.resource,
            body,
            if_match=if_match,
            if_none_match=if_none_match,
        )
    except ContentError as exc:
        ns = CARDDAV if exc.namespace == "carddav" else CALDAV
        status = 413 if exc.precondition == "max-resource-size" else 403
        raise DavError(status, tag(ns, exc.precondition), exc.message) from exc
    except UidConflict as exc:
        body_element = dx.element(
            tag(DAV, "error"),
            None,
            dx.element(
                tag(namespace, "no-uid-conflict"),
                None,
                dx.href(paths.resource(ctx.address, collection.name, exc.name)),
            ),
        )
        raise DavError(403, body=body_element) from exc
    except PreconditionFailed as exc:
        raise DavError(412, message="precondition failed") from exc
    except Refused as exc:
        raise DavError(403, message=exc.message) from exc
    headers = {"Content-Length": "0"}
    if written.etag_is_current:
        headers["ETag"] = f'"{written.info.etag}"'
    return Response(status_code=201 if written.created else 204, headers=headers)


# -- DELETE -------------------------------------------------------------------------------


async def delete(ctx: Context, location: paths.Location) -> Response:
    """RFC 4918 §9.6."""
    target = await resolve(ctx, location)
    if location.kind in ("root", "principals", "principal", "home") or target.directory:
        raise DavError(403, tag(DAV, "need-privileges"), "cannot be deleted")
    collection = target.collection
    if collection is None:
        raise _not_found()
    if_match = None
    header = ctx.request.headers.get("if-match")
    if location.kind == "resource" and location.resource:
        if header is not None:
            tags = _etags(header)
            current = target.resource.etag if target.resource else None
            if current is None or (tags is not None and current not in tags):
                raise DavError(412, message="If-Match failed")
            if_match = current
        try:
            await ctx.groupware.delete(
                ctx.account, collection, location.resource, if_match=if_match
            )
        except PreconditionFailed as exc:
            raise DavError(412, message="If-Match failed") from exc
        except Refused as exc:
            raise _not_found() from exc
        return Response(status_code=204)
    try:
        await ctx.groupware.delete_collection(collection)
    except Refused as exc:
        raise DavError(403, tag(DAV, "need-privileges"), exc.message) from exc
    return Response(status_code=204)


# -- MOVE / COPY --------------------------------------------------------------------------


async def move(ctx: Context, location: paths.Location, *, copy: bool) -> Response:
    """RFC 4918 §9.8 COPY and §9.9 MOVE, of resources (not collections)."""
    destination = ctx.request.headers.get("destination")
    if not destination:
        raise DavError(400, message="Destination is missing")
    try:
        target_location = paths.from_url(destination)
    except paths.BadPath as exc:
        raise DavError(502, message="the destination is not on this server") from exc
    overwrite = ctx.request.headers.get("overwrite", "T").strip().upper() != "F"
    source = await resolve(ctx, location)
    if location.kind != "resource" or not location.resource:
        raise DavError(403, message="only resources can be moved or copied")
    if source.directory:
        if not copy:
            raise DavError(403, tag(DAV, "need-privileges"), "the directory is read-only")
        raise DavError(403, message="copy from the directory is not supported")
    if source.collection is None or source.resource is None:
        raise _not_found()
    if target_location.kind != "resource" or not target_location.resource:
        raise DavError(409, message="the destination must be a resource path")
    target = await resolve(ctx, target_location)
    if target.directory:
        raise DavError(403, tag(DAV, "need-privileges"), "the directory is read-only")
    if target.collection is None:
        raise DavError(409, message="the destination collection does not exist")
    try:
        _info, existed = await ctx.groupware.move(
            ctx.account,
            source.collection,
            location.resource,
            target.collection,
            target_location.resource,
            overwrite=overwrite,
            copy=copy,
        )
    except PreconditionFailed as exc:
        raise DavError(412, message="the destination exists") from exc
    except UidConflict as exc:
        namespace = CARDDAV if target.collection.kind == ADDRESSBOOK else CALDAV
        body_element = dx.element(
            tag(DAV, "error"),
            None,
            dx.element(
                tag(namespace, "no-uid-conflict"),
                None,
                dx.href(paths.resource(ctx.address, target.collection.name, exc.name)),
            ),
        )
        raise DavError(403, body=body_element) from exc
    except ContentError as exc:
        raise DavError(403, tag(CALDAV, exc.precondition), exc.message) from exc
    except Refused as exc:
        if exc.reason is Reason.NOT_FOUND:
            raise _not_found() from exc
        raise DavError(403, message=exc.message) from exc
    return Response(status_code=204 if existed else 201)


# -- REPORT -------------------------------------------------------------------------------


async def report(ctx: Context, location: paths.Location) -> Response:
    """RFC 4791 §7, RFC 6352 §8, RFC 6578 §3; unknown: 403 DAV:supported-report."""
    root = await read_xml(ctx.request)
    try:
        request = dx.parse_report(root)
    except dx.XmlError as exc:
        raise DavError(exc.status, exc.element, exc.message) from exc
    target = await resolve(ctx, location)
    if location.kind == "resource" and not location.resource:
        location = paths.Location("collection", location.address, location.collection)
    name = request.name
    version = request.address_data.version
    if version is not None and version not in contact_rules.VERSIONS:
        # RFC 6352 §10.4.1: an address-data version the server cannot produce.
        raise DavError(403, tag(CARDDAV, "supported-address-data-conversion"), "unknown version")
    if target.directory and location.kind == "collection":
        if name in (tag(CARDDAV, "addressbook-query"), tag(CARDDAV, "addressbook-multiget")):
            return await _directory_report(ctx, request)
        raise DavError(403, tag(DAV, "supported-report"), "not supported on the directory")
    collection = target.collection
    if location.kind != "collection" or collection is None:
        if location.kind in ("collection", "resource") and collection is None:
            raise _not_found()
        raise DavError(403, tag(DAV, "supported-report"), "REPORT on a collection only")
    kind = collection.kind
    calendarish = kind in (CALENDAR, INBOX)
    if name == tag(DAV, "sync-collection") and kind in (CALENDAR, INBOX, ADDRESSBOOK):
        return await _sync_collection(ctx, collection, request)
    if name == tag(CALDAV, "calendar-multiget") and calendarish:
        return await _multiget(ctx, collection, request)
    if name == tag(CARDDAV, "addressbook-multiget") and kind == ADDRESSBOOK:
        return await _multiget(ctx, collection, request)
    if name == tag(CALDAV, "calendar-query") and calendarish:
        return await _calendar_query(ctx, collection, request)
    if name == tag(CARDDAV, "addressbook-query") and kind == ADDRESSBOOK:
        return await _addressbook_query(ctx, collection, request)
    if name == tag(CALDAV, "free-busy-query") and kind == CALENDAR:
        return await _free_busy(ctx, collection, request)
    raise DavError(403, tag(DAV, "supported-report"), "this report is not supported here")


def _data_element(
    collection: Collection, resource: Resource, request: dx.Report, zone: Any
) -> ET.Element:
    if resource.info.component == "VCARD":
        text = resource.data
        version = request.address_data.version
        if version is not None and version != contact_rules.version_of(text):
            text = contact_rules.convert(text, version)
        return dx.element(tag(CARDDAV, "address-data"), text)
    text = resource.data
    wanted = request.calendar_data
    if wanted.expand is not None or wanted.limit_recurrence is not None:
        calendar = icalendar.Calendar.from_ical(text)
        if wanted.expand is not None:
            assert wanted.expand.start and wanted.expand.end
            text = calendar_rules.expand(
                calendar, resource.info.component, wanted.expand.start, wanted.expand.end, zone
            )
        else:
            assert (
                wanted.limit_recurrence
                and wanted.limit_recurrence.start
                and wanted.limit_recurrence.end
            )
            text = calendar_rules.limit_recurrence_set(
                calendar,
                resource.info.component,
                wanted.limit_recurrence.start,
                wanted.limit_recurrence.end,
                zone,
            )
    if wanted.comp is not None:
        # §9.6: the selection applies to what expand/limit-recurrence-set produced.
        text = partial.select(text, wanted.comp)
    del collection
    return dx.element(tag(CALDAV, "calendar-data"), text)


_DATA_PROPS = (tag(CALDAV, "calendar-data"), tag(CARDDAV, "address-data"))


def _resource_responses(
    ctx: Context,
    collection: Collection,
    resources: list[Resource],
    request: dx.Report,
    zone: Any,
    dead: dict[int, dict[str, str]],
) -> list[dx.Response]:
    """Runs on a worker thread when data must be rendered (expand, conversion)."""
    wants_data = request.propfind.mode == "prop" and any(
        n in _DATA_PROPS for n in request.propfind.names
    )
    responses = []
    for resource in resources:
        node = resource_node(ctx, collection, resource.info, dead.get(resource.info.id))
        extra = {}
        if wants_data:
            data = _data_element(collection, resource, request, zone)
            extra[data.tag] = data
        responses.append(propstat(node, request.propfind, extra))
    return responses


async def _render(
    ctx: Context, collection: Collection, resources: list[Resource], request: dx.Report, zone: Any
) -> list[dx.Response]:
    heavy = (
        request.calendar_data.expand is not None
        or request.calendar_data.limit_recurrence is not None
        or request.calendar_data.comp is not None
        or request.address_data.version is not None
        or len(resources) > 200
    )
    dead = await _resource_dead(ctx, request.propfind, [r.info.id for r in resources])
    if heavy:
        return await asyncio.get_running_loop().run_in_executor(
            None, _resource_responses, ctx, collection, resources, request, zone, dead
        )
    return _resource_responses(ctx, collection, resources, request, zone, dead)


def _href_name(ctx: Context, collection: Collection, href: str) -> str | None:
    try:
        location = paths.from_url(href)
    except paths.BadPath:
        return None
    if (
        location.kind != "resource"
        or location.address != ctx.address
        or location.collection != collection.name
        or not location.resource
    ):
        return None
    return location.resource


async def _multiget(ctx: Context, collection: Collection, request: dx.Report) -> Response:
    """RFC 4791 §7.9 calendar-multiget, RFC 6352 §8.7 addressbook-multiget."""
    names: dict[str, str] = {}
    missing: list[str] = []
    for href in request.hrefs:
        name = _href_name(ctx, collection, href)
        if name is None:
            missing.append(href)
        else:
            names[name] = href
    resources = await ctx.groupware.multiget(collection, list(names))
    found = {r.info.name for r in resources}
    zone = calendar_rules.zone_of(collection.timezone)
    responses = await _render(ctx, collection, resources, request, zone)
    for name, href in names.items():
        if name not in found:
            missing.append(href)
    responses.extend(dx.Response(href, status=404) for href in missing)
    return multistatus_response(ctx, responses)


def _evaluate_calendar(
    resources: list[Resource], comp: filters.CompFilter, zone: Any
) -> list[Resource]:
    """Parse and filter (on a worker thread)."""
    kept = []
    for resource in resources:
        try:
            calendar = icalendar.Calendar.from_ical(resource.data)
        except Exception:  # stored data was validated; a parser change must not 500
            log.warning("stored calendar object %s does not parse", resource.info.id)
            continue
        if filters.calendar_matches(calendar, comp, zone):
            kept.append(resource)
    return kept


async def _calendar_query(ctx: Context, collection: Collection, request: dx.Report) -> Response:
    """RFC 4791 §7.8: time-range from the occurrence index, the rest on parsed objects."""
    comp = request.comp_filter
    assert comp is not None
    zone = calendar_rules.zone_of(request.timezone or collection.timezone)
    plain = filters.is_plain_time_range(comp)
    ranged = filters.time_range_of(comp)
    loop = asyncio.get_running_loop()
    if ranged is not None:
        component, time_range = ranged
        matched, to_check = await ctx.groupware.time_range(
            collection, time_range.start, time_range.end
        )
        matched = [r for r in matched if r.info.component == component]
        to_check = [r for r in to_check if r.info.component == component]
        if plain is not None:
            checked = await loop.run_in_executor(None, _evaluate_calendar, to_check, comp, zone)
            results = matched + checked
        else:
            results = await loop.run_in_executor(
                None, _evaluate_calendar, matched + to_check, comp, zone
            )
    else:
        everything = await ctx.groupware.all(collection)
        subs = comp.comp_filters
        if (
            len(subs) == 1
            and not subs[0].is_not_defined
            and not subs[0].prop_filters
            and not subs[0].comp_filters
            and not subs[0].time_range
            and not comp.prop_filters
        ):
            results = [r for r in everything if r.info.component == subs[0].name]
        elif not subs and not comp.prop_filters:
            results = everything
        else:
            results = await loop.run_in_executor(None, _evaluate_calendar, everything, comp, zone)
    results.sort(key=lambda r: r.info.id)
    responses = await _render(ctx, collection, results, request, zone)
    return multistatus_response(ctx, responses)


def _needles(card_filter: filters.CardFilter) -> list[str] | None:
    """Texts one of which must appear in a card's raw text for the filter to match it,
    or None when no such necessary condition exists (negations, is-not-defined, params,
    or text that vCard escaping would change)."""
    if card_filter.test != "anyof" or not card_filter.prop_filters:
        return None
    needles: list[str] = []
    for prop in card_filter.prop_filters:
        if prop.is_not_defined or prop.param_filters or not prop.text_matches:
            return None
        for tm in prop.text_matches:
            if tm.negate or not tm.text or any(c in tm.text for c in ",;\\\n:"):
                return None
            needles.append(tm.text.casefold())
    return needles


def _evaluate_cards(texts: list[tuple[Any, str]], card_filter: filters.CardFilter) -> list[Any]:
    import vobject  # type: ignore[import-untyped]

    needles = _needles(card_filter)
    kept = []
    for item, text in texts:
        if needles is not None and not any(n in text.casefold() for n in needles):
            continue  # cheap pre-check: no needle anywhere in the card text
        try:
            card = vobject.readOne(text, validate=False)
        except Exception:
            continue
        if filters.card_matches(card, card_filter):
            kept.append(item)
    return kept


async def _addressbook_query(ctx: Context, collection: Collection, request: dx.Report) -> Response:
    """RFC 6352 §8.6."""
    card_filter = request.card_filter or filters.CardFilter()
    needles = _needles(card_filter)
    if needles is not None and all(
        p.name in contact_rules.SEARCHED for p in card_filter.prop_filters
    ):
        # Only the cards whose extracted names, emails or phones hold a needle.
        candidates = await ctx.groupware.search(collection, needles)
    else:
        candidates = await ctx.groupware.all(collection)
    loop = asyncio.get_running_loop()
    results: list[Resource] = await loop.run_in_executor(
        None, _evaluate_cards, [(r, r.data) for r in candidates], card_filter
    )
    truncated = request.limit is not None and len(results) > request.limit
    if request.limit is not None:
        results = results[: request.limit]
    responses = await _render(ctx, collection, results, request, None)
    if truncated:
        responses.append(
            dx.Response(
                paths.collection(ctx.address, collection.name),
                status=507,
                error=dx.element(
                    tag(DAV, "error"), None, dx.element(tag(DAV, "number-of-matches-within-limits"))
                ),
            )
        )
    return multistatus_response(ctx, responses)


async def _directory_report(ctx: Context, request: dx.Report) -> Response:
    version = request.address_data.version or "3.0"
    if version not in contact_rules.VERSIONS:
        raise DavError(403, tag(CARDDAV, "supported-address-data-conversion"), "unknown version")
    cards = await directory_cards(ctx, version)
    if request.name == tag(CARDDAV, "addressbook-multiget"):
        by_name = {c.name: c for c in cards}
        selected = []
        missing = []
        for href in request.hrefs:
            try:
                location = paths.from_url(href)
            except paths.BadPath:
                missing.append(href)
                continue
            card = by_name.get(location.resource) if location.collection == DIRECTORY else None
            if card is None:
                missing.append(href)
            else:
                selected.append(card)
    else:
        card_filter = request.card_filter or filters.CardFilter()
        selected = _evaluate_cards([(c, c.text) for c in cards], card_filter)
        missing = []
        if request.limit is not None:
            selected = selected[: request.limit]
    wants_data = (
        request.propfind.mode == "prop" and tag(CARDDAV, "address-data") in request.propfind.names
    )
    responses = []
    for card in selected:
        extra = (
            {tag(CARDDAV, "address-data"): dx.element(tag(CARDDAV, "address-data"), card.text)}
            if wants_data
            else None
        )
        responses.append(propstat(card_node(ctx, card), request.propfind, extra))
    responses.extend(dx.Response(h, status=404) for h in missing)
    return multistatus_response(ctx, responses)


async def _sync_collection(ctx: Context, collection: Collection, request: dx.Report) -> Response:
    """RFC 6578 §3: from the change journal; paging with DAV:limit (§3.6)."""
    # Calendars and address books hold no collections: "infinite" is the same as "1".
    if request.sync_level not in ("1", "infinite", "infinity"):
        raise DavError(403, tag(DAV, "sync-traversal-supported"), "only sync-level 1")
    zone = calendar_rules.zone_of(collection.timezone)
    path = paths.collection(ctx.address, collection.name)
    token = request.sync_token or ""
    responses: list[dx.Response] = []
    if not token:
        infos, modseq, has_more = await ctx.groupware.snapshot(collection, limit=request.limit)
        resources_needed = request.propfind.mode == "prop" and any(
            n in _DATA_PROPS for n in request.propfind.names
        )
        if resources_needed:
            resources = await ctx.groupware.multiget(collection, [i.name for i in infos])
            responses = await _render(ctx, collection, resources, request, zone)
        else:
            dead = await _resource_dead(ctx, request.propfind, [i.id for i in infos])
            responses = [
                propstat(resource_node(ctx, collection, i, dead[i.id]), request.propfind)
                for i in infos
            ]
    else:
        since = props.parse_sync_token(token)
        if since is None:
            raise DavError(403, tag(DAV, "valid-sync-token"), "unknown sync token")
        try:
            changes = await ctx.groupware.changes(collection, since, limit=request.limit)
        except CannotCalculateChanges as exc:
            raise DavError(403, tag(DAV, "valid-sync-token"), "the sync token is too old") from exc
        modseq, has_more = changes.new_modseq, changes.has_more
        resources_needed = request.propfind.mode == "prop" and any(
            n in _DATA_PROPS for n in request.propfind.names
        )
        if resources_needed and changes.changed:
            resources = await ctx.groupware.multiget(collection, [i.name for i in changes.changed])
            responses = await _render(ctx, collection, resources, request, zone)
        else:
            dead = await _resource_dead(ctx, request.propfind, [i.id for i in changes.changed])
            responses = [
                propstat(resource_node(ctx, collection, i, dead[i.id]), request.propfind)
                for i in changes.changed
            ]
        responses.extend(
            dx.Response(paths.resource(ctx.address, collection.name, name), status=404)
            for name in changes.removed
        )
    if has_more:
        responses.append(
            dx.Response(
                path,
                status=507,
                error=dx.element(
                    tag(DAV, "error"), None, dx.element(tag(DAV, "number-of-matches-within-limits"))
                ),
            )
        )
    # Removals are always reported with their status even under return=minimal.
    body = dx.multistatus(responses, minimal=ctx.minimal, sync_token=props.sync_token(modseq))
    return Response(body, 207, media_type=XML_TYPE)


async def _free_busy(ctx: Context, collection: Collection, request: dx.Report) -> Response:
    """RFC 4791 §7.10: a VFREEBUSY of this calendar's busy time in the range."""
    time_range = request.time_range
    assert time_range is not None and time_range.start is not None and time_range.end is not None
    periods = await ctx.groupware.busy(
        ctx.account.id, time_range.start, time_range.end, collection_ids=[collection.id]
    )
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//Hirondelle//CalDAV//EN")
    calendar.add("VERSION", "2.0")
    free_busy = icalendar.FreeBusy()
    free_busy.add("UID", str(uuid.uuid4()))
    free_busy.add("DTSTAMP", calendar_rules.from_us(calendar_rules.to_us(time_range.start)))
    free_busy.add("DTSTART", time_range.start)
    free_busy.add("DTEND", time_range.end)
    for start, end in periods:
        free_busy.add("FREEBUSY", [(start, end)])
    calendar.add_component(free_busy)
    return Response(calendar.to_ical(), 200, media_type="text/calendar; charset=utf-8")


# -- POST (schedule outbox) ---------------------------------------------------------------


async def post(ctx: Context, location: paths.Location) -> Response:
    """RFC 6638 §5: POST to the schedule outbox, handled by dav/scheduling.py."""
    target = await resolve(ctx, location)
    if location.kind == "resource" and not location.resource:
        location = paths.Location("collection", location.address, location.collection)
    if (
        location.kind != "collection"
        or target.collection is None
        or target.collection.kind != OUTBOX
    ):
        raise DavError(405, message="POST is for the schedule outbox", headers={"Allow": ALLOW})
    try:
        from hirondelle.dav import scheduling  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        raise DavError(501, message="scheduling is not available") from None
    handler: Callable[[Services, Account, Request], Awaitable[Response]] | None = getattr(
        scheduling, "post_outbox", None
    )
    if handler is None:
        raise DavError(501, message="scheduling is not available")
    return await handler(ctx.services, ctx.account, ctx.request)


# -- dispatch -----------------------------------------------------------------------------

Handler = Callable[[Context, paths.Location], Awaitable[Response]]


async def _head(ctx: Context, location: paths.Location) -> Response:
    return await get(ctx, location, head=True)


async def _mkcol(ctx: Context, location: paths.Location) -> Response:
    return await mkcol(ctx, location, calendar=False)


async def _mkcalendar(ctx: Context, location: paths.Location) -> Response:
    return await mkcol(ctx, location, calendar=True)


async def _move(ctx: Context, location: paths.Location) -> Response:
    return await move(ctx, location, copy=False)


async def _copy(ctx: Context, location: paths.Location) -> Response:
    return await move(ctx, location, copy=True)


HANDLERS: dict[str, Handler] = {
    "PROPFIND": propfind,
    "PROPPATCH": proppatch,
    "GET": get,
    "HEAD": _head,
    "PUT": put,
    "DELETE": delete,
    "MKCOL": _mkcol,
    "MKCALENDAR": _mkcalendar,
    "MOVE": _move,
    "COPY": _copy,
    "REPORT": report,
    "POST": post,
}
METHODS = ["OPTIONS", *HANDLERS]


def endpoint(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The one ASGI endpoint for every /dav/ path (and PROPFIND on /)."""

    async def handle(request: Request) -> Response:
        method = request.method.upper()
        if method == "OPTIONS":
            return await options(request)
        handler = HANDLERS.get(method)
        if handler is None:
            return PlainTextResponse("method not allowed\n", 405, headers={"Allow": ALLOW})
        authenticated = await http_auth.authenticate(
            request, services.authenticator, protocol="dav"
        )
        if isinstance(authenticated, Response):
            return authenticated
        ctx = Context(request, authenticated, services)
        try:
            location = paths.parse(request.url.path)
        except paths.BadPath:
            if method in ("MKCOL", "MKCALENDAR", "PUT"):
                # RFC 4918 §9.3.1, §9.7.1: no such parent collection.
                return DavError(409, message="no such parent collection").response()
            return DavError(404, message="not found").response()
        try:
            response = await handler(ctx, location)
        except DavError as exc:
            return exc.response()
        except dx.XmlError as exc:
            return DavError(exc.status, exc.element, exc.message).response()
        except calendar_rules.CalendarError as exc:
            # A stored series that expands past the limits (CALDAV:max-instances).
            return DavError(403, tag(CALDAV, exc.precondition), exc.message).response()
        except contact_rules.ContactError as exc:
            return DavError(403, tag(CARDDAV, exc.precondition), exc.message).response()
        except Refused as exc:
            status = 404 if exc.reason is Reason.NOT_FOUND else 403
            return DavError(status, message=exc.message).response()
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            log.exception("DAV %s %s failed (request %s)", method, request.url.path, request_id)
            return PlainTextResponse(
                f"Erreur interne, référence {request_id}. / "
                f"Internal error, reference {request_id}.\n",
                500,
            )
        response.headers.setdefault("DAV", DAV_HEADER)
        return response

    return handle


def well_known(_services: Services) -> Callable[[Request], Awaitable[Response]]:
    """RFC 6764 §5: /.well-known/caldav and /.well-known/carddav to the DAV root."""

    async def redirect(_request: Request) -> Response:
        return RedirectResponse(paths.root(), status_code=301)

    return redirect
