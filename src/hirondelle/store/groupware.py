"""Calendars and address books in SQL: collections, resources, occurrence index, tombstones,
dead properties (DESIGN.md "Calendar and contacts model"; tables in ``schema_groupware``).

Every change bumps the account's modseq once, appends journal rows
(``"Calendar"``/``"AddressBook"`` for collections; ``"CalendarObject"``/``"ContactCard"``
for resources, container_id = collection id) and sets the collection's ``modseq``, so
that getctag is a column and sync-collection is a journal range scan
(:func:`changes_since`), never a scan of the collection.

Write functions act only through their ``ctx`` (they may be re-run by group commit).
Rules about *content* (valid iCalendar, one UID, components allowed) live in
``hirondelle.groupware``; this module enforces what SQL can: UID uniqueness within a
collection (``no-uid-conflict``), ETag preconditions, names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from hirondelle.errors import Reason, Refused
from hirondelle.store import journal as journal_store
from hirondelle.store import schema
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.schema_groupware import (
    dav_collections,
    dav_occurrences,
    dav_properties,
    dav_resource_properties,
    dav_resources,
    dav_tombstones,
)

CALENDAR = "calendar"
ADDRESSBOOK = "addressbook"
INBOX = "inbox"
OUTBOX = "outbox"
KINDS = (CALENDAR, ADDRESSBOOK, INBOX, OUTBOX)

# Journal kinds (shared with JMAP Calendar/CalendarEvent/AddressBook/ContactCard).
COLLECTION_KIND = {CALENDAR: "Calendar", ADDRESSBOOK: "AddressBook"}
RESOURCE_KIND = {CALENDAR: "CalendarObject", INBOX: "CalendarObject", ADDRESSBOOK: "ContactCard"}
# Inbox and outbox are journaled as calendars too (they hold calendar objects).
_COLLECTION_JOURNAL_KIND = {
    CALENDAR: "Calendar",
    INBOX: "Calendar",
    OUTBOX: "Calendar",
    ADDRESSBOOK: "AddressBook",
}

ALL_COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")
MAX_NAME_LENGTH = 200
MAX_RESOURCE_NAME_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    account_id: int
    kind: str
    name: str
    display_name: str
    description: str
    color: str | None
    sort_order: int
    timezone: str | None
    components: tuple[str, ...]
    modseq: int

    @property
    def resource_kind(self) -> str:
        return RESOURCE_KIND.get(self.kind, "CalendarObject")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """A resource without its content (listings, PROPFIND)."""

    id: int
    collection_id: int
    name: str
    component: str
    uid: str
    etag: str
    size: int
    modseq: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Resource:
    info: ResourceInfo
    data: str

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def etag(self) -> str:
        return self.info.etag


@dataclass(frozen=True, slots=True)
class Occurrence:
    start: int  # µs since epoch, UTC
    end: int
    busy: bool = True


@dataclass(frozen=True, slots=True)
class IndexedObject:
    """What the rules extracted from one resource's text, for the columns and the index."""

    component: str
    uid: str
    data: str
    etag: str
    summary: str = ""
    organizer: str = ""
    search_text: str = ""
    first_start: int | None = None
    last_end: int | None = None
    indexed_until: int | None = None
    occurrences: Sequence[Occurrence] = field(default_factory=tuple)


class UidConflict(Exception):
    """RFC 4791 §5.3.2.1 / RFC 6352 §6.3.2.1 no-uid-conflict: ``name`` holds the UID."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class PreconditionFailed(Exception):
    """If-Match / If-None-Match failed (HTTP 412)."""


@dataclass(frozen=True, slots=True)
class CollectionChanges:
    """sync-collection: names changed (created or updated) and names removed since a
    modseq, up to ``new_modseq`` (``has_more`` when paging stopped early)."""

    new_modseq: int
    has_more: bool
    changed: list[ResourceInfo]
    removed: list[str]


# -- collections ---------------------------------------------------------------------------


def _collection(row: Row[tuple[object, ...]]) -> Collection:
    m = row._mapping
    components = tuple(c for c in str(m["components"]).split(",") if c)
    return Collection(
        id=int(m["id"]),
        account_id=int(m["account_id"]),
        kind=str(m["kind"]),
        name=str(m["name"]),
        display_name=str(m["display_name"]),
        description=str(m["description"]),
        color=m["color"],
        sort_order=int(m["sort_order"]),
        timezone=m["timezone"],
        components=components,
        modseq=int(m["modseq"]),
    )


def list_collections(conn: Connection, account_id: int) -> list[Collection]:
    rows = conn.execute(
        sa.select(dav_collections)
        .where(dav_collections.c.account_id == account_id)
        .order_by(dav_collections.c.sort_order, dav_collections.c.id)
    ).all()
    return [_collection(row) for row in rows]


def get_collection(conn: Connection, account_id: int, name: str) -> Collection | None:
    row = conn.execute(
        sa.select(dav_collections).where(
            dav_collections.c.account_id == account_id, dav_collections.c.name == name
        )
    ).first()
    return _collection(row) if row is not None else None


def get_collection_by_id(conn: Connection, collection_id: int) -> Collection | None:
    row = conn.execute(
        sa.select(dav_collections).where(dav_collections.c.id == collection_id)
    ).first()
    return _collection(row) if row is not None else None


def _check_name(name: str, limit: int, what: str) -> None:
    """One path segment a client chose: not empty, not too long, no dot-segment, no slash
    and no control character."""
    if (
        not name
        or len(name) > limit
        or name in (".", "..")
        or "/" in name
        or any(ord(c) < 0x20 or c == "\x7f" for c in name)
    ):
        raise Refused(Reason.INVALID, f"invalid {what} name {name!r}")


def check_collection_name(name: str) -> None:
    _check_name(name, MAX_NAME_LENGTH, "collection")


def check_resource_name(name: str) -> None:
    _check_name(name, MAX_RESOURCE_NAME_LENGTH, "resource")


def create_collection(
    ctx: WriteContext,
    account_id: int,
    *,
    kind: str,
    name: str,
    display_name: str = "",
    description: str = "",
    color: str | None = None,
    sort_order: int = 0,
    timezone: str | None = None,
    components: Iterable[str] = (),
    properties: dict[str, str] | None = None,
) -> Collection:
    """A new collection; Refused(ALREADY_EXISTS) when the name is taken."""
    if kind not in KINDS:
        raise ValueError(kind)
    check_collection_name(name)
    # The account row first: concurrent writers of one account queue here, so the checks
    # below see what the one before committed (PostgreSQL, READ COMMITTED).
    ctx.next_modseq(account_id)
    exists = ctx.conn.execute(
        sa.select(dav_collections.c.id).where(
            dav_collections.c.account_id == account_id, dav_collections.c.name == name
        )
    ).first()
    if exists is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"{name} exists")
    components = tuple(components)
    if kind in (CALENDAR, INBOX, OUTBOX) and not components:
        components = ALL_COMPONENTS
    modseq = ctx.next_modseq(account_id)
    collection_id = ctx.conn.execute(
        dav_collections.insert()
        .values(
            account_id=account_id,
            kind=kind,
            name=name,
            display_name=display_name,
            description=description,
            color=color,
            sort_order=sort_order,
            timezone=timezone,
            components=",".join(components),
            modseq=modseq,
            created_at=now_us(),
        )
        .returning(dav_collections.c.id)
    ).scalar_one()
    ctx.journal(account_id, _COLLECTION_JOURNAL_KIND[kind], collection_id, "created")
    if properties:
        _set_properties(ctx, collection_id, properties, ())
    return Collection(
        id=collection_id,
        account_id=account_id,
        kind=kind,
        name=name,
        display_name=display_name,
        description=description,
        color=color,
        sort_order=sort_order,
        timezone=timezone,
        components=components,
        modseq=modseq,
    )


# Columns a PROPPATCH or JMAP may change on a collection.
COLLECTION_FIELDS = frozenset(
    {"display_name", "description", "color", "sort_order", "timezone", "components"}
)


def update_collection(
    ctx: WriteContext,
    collection: Collection,
    *,
    values: dict[str, object] | None = None,
    set_properties: dict[str, str] | None = None,
    remove_properties: Iterable[str] = (),
) -> Collection:
    """Change live columns and dead properties of a collection in one write."""
    values = dict(values or {})
    unknown = set(values) - COLLECTION_FIELDS
    if unknown:
        raise ValueError(f"not collection fields: {sorted(unknown)}")
    if "components" in values:
        values["components"] = ",".join(values["components"])  # type: ignore[arg-type]
    modseq = ctx.journal(
        collection.account_id, _COLLECTION_JOURNAL_KIND[collection.kind], collection.id, "updated"
    )
    values["modseq"] = modseq
    ctx.conn.execute(
        dav_collections.update().where(dav_collections.c.id == collection.id).values(**values)
    )
    _set_properties(ctx, collection.id, set_properties or {}, remove_properties)
    row = ctx.conn.execute(
        sa.select(dav_collections).where(dav_collections.c.id == collection.id)
    ).one()
    return _collection(row)


def delete_collection(ctx: WriteContext, collection: Collection) -> None:
    """Remove a collection and everything in it (journaled per resource, for JMAP)."""
    ctx.next_modseq(collection.account_id)  # lock order first (see create_collection)
    ids = (
        ctx.conn.execute(
            sa.select(dav_resources.c.id).where(dav_resources.c.collection_id == collection.id)
        )
        .scalars()
        .all()
    )
    rows: list[dict[str, object]] = [
        {
            "kind": collection.resource_kind,
            "object_id": int(i),
            "container_id": collection.id,
            "change": "destroyed",
        }
        for i in ids
    ]
    rows.append(
        {
            "kind": _COLLECTION_JOURNAL_KIND[collection.kind],
            "object_id": collection.id,
            "container_id": None,
            "change": "destroyed",
        }
    )
    ctx.journal_many(collection.account_id, rows)
    ctx.conn.execute(
        dav_occurrences.delete().where(dav_occurrences.c.collection_id == collection.id)
    )
    ctx.conn.execute(
        dav_resource_properties.delete().where(
            dav_resource_properties.c.resource_id.in_(
                sa.select(dav_resources.c.id).where(dav_resources.c.collection_id == collection.id)
            )
        )
    )
    ctx.conn.execute(dav_collections.delete().where(dav_collections.c.id == collection.id))


def _set_properties(
    ctx: WriteContext, collection_id: int, values: dict[str, str], remove: Iterable[str]
) -> None:
    names = set(values) | set(remove)
    if names:
        ctx.conn.execute(
            dav_properties.delete().where(
                dav_properties.c.collection_id == collection_id,
                dav_properties.c.name.in_(sorted(names)),
            )
        )
    if values:
        ctx.conn.execute(
            dav_properties.insert(),
            [
                {"collection_id": collection_id, "name": name, "value": value}
                for name, value in values.items()
            ],
        )


def get_properties(conn: Connection, collection_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Dead properties of collections: id -> {clark name: XML text}."""
    result: dict[int, dict[str, str]] = {i: {} for i in collection_ids}
    if not collection_ids:
        return result
    for row in conn.execute(
        sa.select(dav_properties).where(dav_properties.c.collection_id.in_(list(collection_ids)))
    ):
        result[int(row.collection_id)][str(row.name)] = str(row.value)
    return result


def set_resource_properties(
    ctx: WriteContext,
    collection: Collection,
    name: str,
    values: dict[str, str],
    remove: Iterable[str],
) -> ResourceInfo:
    """RFC 4918 §9.2: set and remove dead properties of one resource, all or nothing (one
    write). Refused(NOT_FOUND) when the resource is gone. The ETag does not change: the
    content is the same (§8.6)."""
    ctx.next_modseq(collection.account_id)  # lock order first (see create_collection)
    info = get_resource_info(ctx.conn, collection.id, name)
    if info is None:
        raise Refused(Reason.NOT_FOUND, f"{name} not found")
    names = set(values) | set(remove)
    if names:
        ctx.conn.execute(
            dav_resource_properties.delete().where(
                dav_resource_properties.c.resource_id == info.id,
                dav_resource_properties.c.name.in_(sorted(names)),
            )
        )
    if values:
        ctx.conn.execute(
            dav_resource_properties.insert(),
            [{"resource_id": info.id, "name": k, "value": v} for k, v in values.items()],
        )
    return info


def get_resource_properties(
    conn: Connection, resource_ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    """Dead properties of resources: id -> {clark name: XML text}."""
    result: dict[int, dict[str, str]] = {i: {} for i in resource_ids}
    ids = list(resource_ids)
    # Chunks: the ids of a big collection would pass the bind-parameter limits.
    for at in range(0, len(ids), 500):
        for row in conn.execute(
            sa.select(dav_resource_properties).where(
                dav_resource_properties.c.resource_id.in_(ids[at : at + 500])
            )
        ):
            result[int(row.resource_id)][str(row.name)] = str(row.value)
    return result


# -- resources -----------------------------------------------------------------------------

_INFO_COLUMNS = (
    dav_resources.c.id,
    dav_resources.c.collection_id,
    dav_resources.c.name,
    dav_resources.c.component,
    dav_resources.c.uid,
    dav_resources.c.etag,
    dav_resources.c.size,
    dav_resources.c.modseq,
    dav_resources.c.updated_at,
)


def _info(row: Any) -> ResourceInfo:
    m = row._mapping
    return ResourceInfo(
        id=int(m["id"]),
        collection_id=int(m["collection_id"]),
        name=str(m["name"]),
        component=str(m["component"]),
        uid=str(m["uid"]),
        etag=str(m["etag"]),
        size=int(m["size"]),
        modseq=int(m["modseq"]),
        updated_at=int(m["updated_at"]),
    )


def list_resources(conn: Connection, collection_id: int) -> list[ResourceInfo]:
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS)
        .where(dav_resources.c.collection_id == collection_id)
        .order_by(dav_resources.c.id)
    ).all()
    return [_info(row) for row in rows]


def get_resource_info(conn: Connection, collection_id: int, name: str) -> ResourceInfo | None:
    row = conn.execute(
        sa.select(*_INFO_COLUMNS).where(
            dav_resources.c.collection_id == collection_id, dav_resources.c.name == name
        )
    ).first()
    return _info(row) if row is not None else None


def get_resource(conn: Connection, collection_id: int, name: str) -> Resource | None:
    row = conn.execute(
        sa.select(*_INFO_COLUMNS, dav_resources.c.data).where(
            dav_resources.c.collection_id == collection_id, dav_resources.c.name == name
        )
    ).first()
    return Resource(_info(row), str(row.data)) if row is not None else None


def get_resources(conn: Connection, collection_id: int, names: Sequence[str]) -> list[Resource]:
    """The resources of ``names`` that exist (multiget), in one query."""
    if not names:
        return []
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS, dav_resources.c.data).where(
            dav_resources.c.collection_id == collection_id,
            dav_resources.c.name.in_(list(dict.fromkeys(names))),
        )
    ).all()
    return [Resource(_info(row), str(row.data)) for row in rows]


def get_resources_by_id(conn: Connection, account_id: int, ids: Sequence[int]) -> list[Resource]:
    """The account's resources among ``ids`` (JMAP CalendarEvent/get, ContactCard/get):
    ids of other accounts are simply not found."""
    if not ids:
        return []
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS, dav_resources.c.data)
        .where(dav_resources.c.id.in_(list(ids)), dav_resources.c.account_id == account_id)
        .order_by(dav_resources.c.id)
    ).all()
    return [Resource(_info(row), str(row.data)) for row in rows]


def search_resources(
    conn: Connection, collection_id: int, needles: Sequence[str]
) -> list[Resource]:
    """Resources whose ``search_text`` contains one of ``needles`` (case-folded)."""
    r = dav_resources
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS, r.c.data)
        .where(
            r.c.collection_id == collection_id,
            sa.or_(*(r.c.search_text.contains(n, autoescape=True) for n in needles)),
        )
        .order_by(r.c.id)
    ).all()
    return [Resource(_info(row), str(row.data)) for row in rows]


def all_resources(conn: Connection, collection_id: int) -> list[Resource]:
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS, dav_resources.c.data)
        .where(dav_resources.c.collection_id == collection_id)
        .order_by(dav_resources.c.id)
    ).all()
    return [Resource(_info(row), str(row.data)) for row in rows]


def find_uid(conn: Connection, collection_id: int, uid: str) -> str | None:
    """The name of the resource with ``uid`` in the collection, if any."""
    return conn.execute(
        sa.select(dav_resources.c.name).where(
            dav_resources.c.collection_id == collection_id, dav_resources.c.uid == uid
        )
    ).scalar_one_or_none()


def _check_preconditions(
    existing: ResourceInfo | None, if_match: str | None, if_none_match: bool
) -> None:
    """RFC 9110 §13.1.1/§13.1.2 with strong comparison; ``if_match`` is an ETag value
    (without quotes) or ``"*"``."""
    if if_none_match and existing is not None:
        raise PreconditionFailed("exists")
    if if_match is not None:
        if existing is None:
            raise PreconditionFailed("missing")
        if if_match != "*" and if_match != existing.etag:
            raise PreconditionFailed("etag")


def put_resource(
    ctx: WriteContext,
    collection: Collection,
    name: str,
    item: IndexedObject,
    *,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> tuple[ResourceInfo, ResourceInfo | None]:
    """Create or replace ``name``; returns (new info, old info or None).

    Raises :class:`PreconditionFailed` and :class:`UidConflict` (another resource of the
    collection has the UID; a replacement may not change the UID either, RFC 4791
    §5.3.2.1 — then the conflict names the resource itself).
    """
    check_resource_name(name)
    conn = ctx.conn
    ctx.next_modseq(collection.account_id)  # lock order first (see create_collection)
    # The resource of that name and the holder of that UID, in one query (both unique).
    rows = [
        _info(row)
        for row in conn.execute(
            sa.select(*_INFO_COLUMNS).where(
                dav_resources.c.collection_id == collection.id,
                sa.or_(dav_resources.c.name == name, dav_resources.c.uid == item.uid),
            )
        )
    ]
    existing = next((info for info in rows if info.name == name), None)
    _check_preconditions(existing, if_match, if_none_match)
    if existing is not None and existing.uid != item.uid:
        raise UidConflict(name)
    holder = next((info for info in rows if info.name != name), None)
    if existing is None and holder is not None:
        raise UidConflict(holder.name)
    now = now_us()
    change = "updated" if existing is not None else "created"
    values = {
        "component": item.component,
        "uid": item.uid,
        "etag": item.etag,
        "size": len(item.data.encode("utf-8")),
        "data": item.data,
        "first_start": item.first_start,
        "last_end": item.last_end,
        "indexed_until": item.indexed_until,
        "organizer": item.organizer,
        "summary": item.summary,
        "search_text": item.search_text,
        "updated_at": now,
    }
    # The journal row first: it bumps the account's modseq, which orders writers.
    if existing is not None:
        resource_id = existing.id
        modseq = ctx.journal(
            collection.account_id,
            collection.resource_kind,
            resource_id,
            change,
            container_id=collection.id,
        )
        conn.execute(
            dav_resources.update()
            .where(dav_resources.c.id == resource_id)
            .values(modseq=modseq, **values)
        )
        conn.execute(dav_occurrences.delete().where(dav_occurrences.c.resource_id == resource_id))
    else:
        modseq = ctx.next_modseq(collection.account_id)
        resource_id = conn.execute(
            dav_resources.insert()
            .values(
                collection_id=collection.id,
                account_id=collection.account_id,
                name=name,
                modseq=modseq,
                created_modseq=modseq,
                created_at=now,
                **values,
            )
            .returning(dav_resources.c.id)
        ).scalar_one()
        ctx.journal(
            collection.account_id,
            collection.resource_kind,
            resource_id,
            change,
            container_id=collection.id,
        )
        # A name used again after a DELETE is no longer a removal for sync-collection.
        conn.execute(
            dav_tombstones.delete().where(
                dav_tombstones.c.collection_id == collection.id, dav_tombstones.c.name == name
            )
        )
    if item.occurrences:
        conn.execute(
            dav_occurrences.insert(),
            [
                {
                    "resource_id": resource_id,
                    "collection_id": collection.id,
                    "start": occurrence.start,
                    "end": occurrence.end,
                    "busy": occurrence.busy,
                }
                for occurrence in item.occurrences
            ],
        )
    _touch(ctx, collection, modseq)
    info = ResourceInfo(
        id=resource_id,
        collection_id=collection.id,
        name=name,
        component=item.component,
        uid=item.uid,
        etag=item.etag,
        size=int(values["size"]),  # type: ignore[call-overload]
        modseq=modseq,
        updated_at=now,
    )
    return info, existing


def _touch(ctx: WriteContext, collection: Collection, modseq: int) -> None:
    ctx.conn.execute(
        dav_collections.update().where(dav_collections.c.id == collection.id).values(modseq=modseq)
    )


def delete_resource(
    ctx: WriteContext, collection: Collection, name: str, *, if_match: str | None = None
) -> ResourceInfo:
    """Remove ``name``; Refused(NOT_FOUND) when absent; PreconditionFailed on If-Match."""
    ctx.next_modseq(collection.account_id)  # lock order first (see create_collection)
    row = ctx.conn.execute(
        sa.select(*_INFO_COLUMNS).where(
            dav_resources.c.collection_id == collection.id, dav_resources.c.name == name
        )
    ).first()
    if row is None:
        if if_match is not None:
            raise PreconditionFailed("missing")
        raise Refused(Reason.NOT_FOUND, f"{name} not found")
    info = _info(row)
    _check_preconditions(info, if_match, False)
    _remove(ctx, collection, info)
    return info


def _remove(ctx: WriteContext, collection: Collection, info: ResourceInfo) -> int:
    modseq = ctx.journal(
        collection.account_id,
        collection.resource_kind,
        info.id,
        "destroyed",
        container_id=collection.id,
    )
    ctx.conn.execute(dav_occurrences.delete().where(dav_occurrences.c.resource_id == info.id))
    # RFC 4918 §9.6: the dead properties go with the resource.
    ctx.conn.execute(
        dav_resource_properties.delete().where(dav_resource_properties.c.resource_id == info.id)
    )
    ctx.conn.execute(dav_resources.delete().where(dav_resources.c.id == info.id))
    ctx.conn.execute(
        dav_tombstones.insert().values(
            collection_id=collection.id, resource_id=info.id, name=info.name, modseq=modseq
        )
    )
    _touch(ctx, collection, modseq)
    return modseq


def move_resource(
    ctx: WriteContext,
    source: Collection,
    name: str,
    target: Collection,
    target_name: str,
    *,
    overwrite: bool,
    copy: bool = False,
) -> tuple[ResourceInfo, bool]:
    """MOVE or COPY (RFC 4918 §9.8, §9.9) of one resource; returns (new info, whether the
    target existed). Refused(NOT_FOUND) when the source is missing;
    PreconditionFailed when the target exists and ``overwrite`` is false;
    UidConflict when the target collection holds the UID elsewhere."""
    check_resource_name(target_name)
    conn = ctx.conn
    ctx.next_modseq(source.account_id)  # lock order first (see create_collection)
    row = conn.execute(
        sa.select(dav_resources).where(
            dav_resources.c.collection_id == source.id, dav_resources.c.name == name
        )
    ).first()
    if row is None:
        raise Refused(Reason.NOT_FOUND, f"{name} not found")
    if source.id == target.id and name == target_name:
        raise Refused(Reason.FORBIDDEN, "source and destination are the same")
    m = row._mapping
    existing = get_resource_info(conn, target.id, target_name)
    if existing is not None and not overwrite:
        raise PreconditionFailed("destination exists")
    holder = find_uid(conn, target.id, str(m["uid"]))
    if (
        holder is not None
        and holder != target_name
        and not (not copy and source.id == target.id and holder == name)
    ):
        raise UidConflict(holder)
    occurrences = [
        Occurrence(int(o.start), int(o.end), bool(o.busy))
        for o in conn.execute(
            sa.select(dav_occurrences).where(dav_occurrences.c.resource_id == int(m["id"]))
        )
    ]
    item = IndexedObject(
        component=str(m["component"]),
        uid=str(m["uid"]),
        data=str(m["data"]),
        etag=str(m["etag"]),
        summary=str(m["summary"]),
        search_text=str(m["search_text"]),
        organizer=str(m["organizer"]),
        first_start=m["first_start"],
        last_end=m["last_end"],
        indexed_until=m["indexed_until"],
        occurrences=occurrences,
    )
    # RFC 4918 §9.8.2, §9.9.1: dead properties are copied / moved with the resource.
    dead = get_resource_properties(conn, [int(m["id"])])[int(m["id"])]
    if existing is not None:
        _remove(ctx, target, existing)
    if not copy:
        _remove(ctx, source, _info(row))
    info, _old = put_resource(ctx, target, target_name, item)
    if dead:
        conn.execute(
            dav_resource_properties.insert(),
            [{"resource_id": info.id, "name": k, "value": v} for k, v in dead.items()],
        )
    return info, existing is not None


def relocate_resource(
    ctx: WriteContext, source: Collection, name: str, target: Collection, target_name: str
) -> ResourceInfo:
    """Move one resource to another collection of the same account keeping its id (JMAP
    ids never change: CalendarEvent/set of ``calendarIds``, ContactCard/set of
    ``addressBookIds``). Journaled as destroyed in
    the source and created in the target at one modseq (with a tombstone in the source),
    so sync-collection sees a removal and an addition and JMAP /changes an update.
    Refused(NOT_FOUND); PreconditionFailed when ``target_name`` is taken; UidConflict."""
    check_resource_name(target_name)
    conn = ctx.conn
    ctx.next_modseq(source.account_id)  # lock order first (see create_collection)
    row = conn.execute(
        sa.select(*_INFO_COLUMNS).where(
            dav_resources.c.collection_id == source.id, dav_resources.c.name == name
        )
    ).first()
    if row is None or source.account_id != target.account_id:
        raise Refused(Reason.NOT_FOUND, f"{name} not found")
    info = _info(row)
    if get_resource_info(conn, target.id, target_name) is not None:
        raise PreconditionFailed("destination exists")
    holder = find_uid(conn, target.id, info.uid)
    if holder is not None:
        raise UidConflict(holder)
    modseq = ctx.journal(
        source.account_id, source.resource_kind, info.id, "destroyed", container_id=source.id
    )
    ctx.journal(target.account_id, target.resource_kind, info.id, "created", container_id=target.id)
    conn.execute(
        dav_resources.update()
        .where(dav_resources.c.id == info.id)
        .values(collection_id=target.id, name=target_name, modseq=modseq)
    )
    conn.execute(
        dav_occurrences.update()
        .where(dav_occurrences.c.resource_id == info.id)
        .values(collection_id=target.id)
    )
    conn.execute(
        dav_tombstones.insert().values(
            collection_id=source.id, resource_id=info.id, name=info.name, modseq=modseq
        )
    )
    conn.execute(
        dav_tombstones.delete().where(
            dav_tombstones.c.collection_id == target.id, dav_tombstones.c.name == target_name
        )
    )
    _touch(ctx, source, modseq)
    _touch(ctx, target, modseq)
    return ResourceInfo(
        id=info.id,
        collection_id=target.id,
        name=target_name,
        component=info.component,
        uid=info.uid,
        etag=info.etag,
        size=info.size,
        modseq=modseq,
        updated_at=info.updated_at,
    )


# -- queries -------------------------------------------------------------------------------


def time_range_resources(
    conn: Connection, collection_id: int, start: int | None, end: int | None
) -> tuple[list[Resource], list[Resource]]:
    """RFC 4791 §9.9 time-range from the occurrence index: (resources with an indexed
    instance overlapping [start, end) — an exact answer —, resources that must be
    checked by expansion: objects without time and series whose index stops before
    ``end``). Two index range scans; nothing else of the collection is read."""
    lo = start if start is not None else -(2**62)
    hi = end if end is not None else 2**62
    o = dav_occurrences
    # Overlap of [s, e) with [lo, hi); a zero-length instance overlaps when lo <= s < hi.
    overlapping = (
        sa.select(o.c.resource_id)
        .where(
            o.c.collection_id == collection_id,
            o.c.start < hi,
            sa.or_(o.c.end > lo, o.c.start == lo),
        )
        .scalar_subquery()
    )
    r = dav_resources
    matched = conn.execute(
        sa.select(*_INFO_COLUMNS, r.c.data).where(r.c.id.in_(overlapping)).order_by(r.c.id)
    ).all()
    to_check = conn.execute(
        sa.select(*_INFO_COLUMNS, r.c.data)
        .where(
            r.c.collection_id == collection_id,
            r.c.indexed_until < hi,
            r.c.id.not_in(overlapping),
        )
        .order_by(r.c.id)
    ).all()
    return (
        [Resource(_info(row), str(row.data)) for row in matched],
        [Resource(_info(row), str(row.data)) for row in to_check],
    )


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """The indexed columns of a resource, for listings sorted and filtered without
    reading any iCalendar (JMAP CalendarEvent/query)."""

    id: int
    collection_id: int
    component: str
    uid: str
    summary: str
    first_start: int | None
    created_at: int
    updated_at: int


def resource_summaries(conn: Connection, collection_ids: Sequence[int]) -> list[ResourceSummary]:
    """Every resource of the collections, without content, in one query."""
    r = dav_resources
    rows = conn.execute(
        sa.select(
            r.c.id,
            r.c.collection_id,
            r.c.component,
            r.c.uid,
            r.c.summary,
            r.c.first_start,
            r.c.created_at,
            r.c.updated_at,
        ).where(r.c.collection_id.in_(list(collection_ids)))
    ).all()
    return [
        ResourceSummary(
            id=int(row.id),
            collection_id=int(row.collection_id),
            component=str(row.component),
            uid=str(row.uid),
            summary=str(row.summary),
            first_start=None if row.first_start is None else int(row.first_start),
            created_at=int(row.created_at),
            updated_at=int(row.updated_at),
        )
        for row in rows
    ]


def busy_occurrences(
    conn: Connection, collection_ids: Sequence[int], start: int, end: int
) -> list[tuple[int, int, int]]:
    """(resource id, start, end) of busy indexed instances overlapping [start, end)."""
    o = dav_occurrences
    rows = conn.execute(
        sa.select(o.c.resource_id, o.c.start, o.c.end).where(
            o.c.collection_id.in_(list(collection_ids)),
            o.c.start < end,
            o.c.end > start,
            o.c.busy.is_(True),
        )
    ).all()
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def changes_since(
    conn: Connection, collection: Collection, since: int, *, limit: int | None = None
) -> CollectionChanges:
    """RFC 6578 sync-collection from the journal: O(changes), not O(collection).

    Raises :class:`hirondelle.store.journal.CannotCalculateChanges` when ``since`` is
    older than the journal keeps (or newer than the account): ``valid-sync-token``.
    """
    j = schema.journal
    recreated = conn.execute(
        sa.select(j.c.modseq).where(
            j.c.account_id == collection.account_id,
            j.c.kind == _COLLECTION_JOURNAL_KIND[collection.kind],
            j.c.object_id == collection.id,
            j.c.change == "created",
            j.c.modseq > since,
        )
    ).first()
    if recreated is not None:
        # A token from before this collection existed (one of the same name was deleted
        # and made again): the client's copy cannot be brought up to date by changes.
        raise journal_store.CannotCalculateChanges("the collection is newer than the token")
    try:
        changes = journal_store.changes_since(
            conn,
            collection.account_id,
            collection.resource_kind,
            since,
            container_id=collection.id,
            max_changes=limit,
        )
    except journal_store.CannotCalculateChanges:
        if limit is None:
            raise
        # One write changed more than ``limit`` resources: a page never splits a
        # modseq, so this page is larger than asked (RFC 6578 §3.6 lets the server
        # return more). An invalid token raises again here.
        changes = journal_store.changes_since(
            conn, collection.account_id, collection.resource_kind, since, container_id=collection.id
        )
    alive_ids = [*changes.created, *changes.updated]
    changed: list[ResourceInfo] = []
    if alive_ids:
        rows = conn.execute(
            sa.select(*_INFO_COLUMNS).where(
                dav_resources.c.id.in_(alive_ids), dav_resources.c.collection_id == collection.id
            )
        ).all()
        changed = [_info(row) for row in rows]
    present = {info.id for info in changed}
    # A "created"/"updated" id absent from the table was moved elsewhere in a later
    # modseq of this page: report its tombstone like a destroyed one.
    gone_ids = [*changes.destroyed, *(i for i in alive_ids if i not in present)]
    removed: list[str] = []
    if gone_ids:
        rows2 = conn.execute(
            sa.select(dav_tombstones.c.name, dav_tombstones.c.resource_id)
            .where(
                dav_tombstones.c.collection_id == collection.id,
                dav_tombstones.c.resource_id.in_(gone_ids),
            )
            .order_by(dav_tombstones.c.modseq)
        ).all()
        names_alive = {info.name for info in changed}
        removed = list(dict.fromkeys(str(n) for n, _ in rows2 if str(n) not in names_alive))
    return CollectionChanges(
        new_modseq=changes.new_modseq,
        has_more=changes.has_more,
        changed=changed,
        removed=removed,
    )


def account_modseq(conn: Connection, account_id: int) -> int:
    return journal_store.account_modseq(conn, account_id)[0]


def snapshot(
    conn: Connection, collection: Collection, *, limit: int | None = None
) -> tuple[list[ResourceInfo], int, bool]:
    """RFC 6578 §3.2 initial sync: the members (oldest change first), the modseq they
    are current at, and whether ``limit`` cut the list (at a modseq boundary, so that
    asking again from the returned modseq gives the rest)."""
    current = account_modseq(conn, collection.account_id)
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS)
        .where(dav_resources.c.collection_id == collection.id)
        .order_by(dav_resources.c.modseq, dav_resources.c.id)
    ).all()
    infos = [_info(row) for row in rows]
    if limit is None or len(infos) <= limit:
        return infos, current, False
    cut = limit
    while cut > 0 and infos[cut - 1].modseq == infos[cut].modseq:
        cut -= 1
    if cut == 0:
        cut = limit
        while cut < len(infos) and infos[cut].modseq == infos[cut - 1].modseq:
            cut += 1
    if cut >= len(infos):
        return infos, current, False
    return infos[:cut], infos[cut - 1].modseq, True


# -- JMAP (ContactCard, CalendarEvent): objects named by id -------------------------------


def find_uid_in_account(conn: Connection, account_id: int, uid: str, kind: str) -> int | None:
    """The id of a resource with ``uid`` in any of the account's collections of ``kind``
    (RFC 9610 §3: one ContactCard per uid in an account), or None. One probe of the
    (collection, uid) unique index per collection, not a scan of the account."""
    collections = sa.select(dav_collections.c.id).where(
        dav_collections.c.account_id == account_id, dav_collections.c.kind == kind
    )
    return conn.execute(
        sa.select(dav_resources.c.id)
        .where(dav_resources.c.collection_id.in_(collections), dav_resources.c.uid == uid)
        .limit(1)
    ).scalar_one_or_none()


def all_resources_of_kind(conn: Connection, account_id: int, kind: str) -> list[Resource]:
    """Every resource in the account's collections of ``kind`` (JMAP /get without ids,
    /query), by id."""
    r = dav_resources
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS, r.c.data)
        .join(dav_collections, dav_collections.c.id == r.c.collection_id)
        .where(r.c.account_id == account_id, dav_collections.c.kind == kind)
        .order_by(r.c.id)
    ).all()
    return [Resource(_info(row), str(row.data)) for row in rows]


def resource_infos_of_kind(conn: Connection, account_id: int, kind: str) -> list[ResourceInfo]:
    """The same list without the content: a caller that keeps parsed content by ETag
    then reads only the resources it has not seen (:func:`get_resources_by_id`)."""
    r = dav_resources
    rows = conn.execute(
        sa.select(*_INFO_COLUMNS)
        .join(dav_collections, dav_collections.c.id == r.c.collection_id)
        .where(r.c.account_id == account_id, dav_collections.c.kind == kind)
        .order_by(r.c.id)
    ).all()
    return [_info(row) for row in rows]
