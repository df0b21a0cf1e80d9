"""The calendar and contacts service: the rules every front end (CalDAV/CardDAV now, JMAP
and the webmail later) goes through.

It validates content (:mod:`hirondelle.groupware.calendar`, :mod:`.contacts`) off the
event loop, writes through :mod:`hirondelle.store.groupware`, creates an account's
default collections on first use, and calls the scheduling hook (RFC 6638, owned by
``groupware/scheduling.py``) after every committed change of a calendar object.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.groupware import calendar as calendar_rules
from hirondelle.groupware import contacts as contact_rules
from hirondelle.store import directory
from hirondelle.store import groupware as store
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.directory import Account
from hirondelle.store.groupware import (
    ADDRESSBOOK,
    CALENDAR,
    INBOX,
    OUTBOX,
    Collection,
    CollectionChanges,
    IndexedObject,
    Resource,
    ResourceInfo,
)

DEFAULT_CALENDAR = "Calendar"
DEFAULT_ADDRESSBOOK = "Contacts"
SCHEDULE_INBOX = "Inbox"
SCHEDULE_OUTBOX = "Outbox"
DIRECTORY = "Directory"
# Names a user may not give a collection: the fixed ones of the URL layout.
RESERVED_NAMES = frozenset({DIRECTORY, SCHEDULE_INBOX, SCHEDULE_OUTBOX})
# RFC 4791 §5.2.5 / RFC 6352 §6.2.3 max-resource-size.
MAX_RESOURCE_SIZE = 10 * 1024 * 1024


class SchedulingHook(Protocol):
    """What the scheduling service (RFC 6638 implicit scheduling) provides."""

    async def on_object_written(
        self,
        account: Account,
        collection: Collection,
        old: Resource | None,
        new: Resource | None,
    ) -> None:
        """After a committed PUT (old None: created), DELETE (new None) or MOVE of a
        calendar object in ``account``'s calendar collection ``collection``."""


class ContentError(Exception):
    """Refused content: ``namespace`` ("caldav"/"carddav") and precondition element."""

    def __init__(self, namespace: str, precondition: str, message: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.precondition = precondition
        self.message = message


@dataclass(frozen=True, slots=True)
class Written:
    info: ResourceInfo
    created: bool
    # False when the hook changed the stored object: RFC 4791 §5.3.4 then forbids
    # returning the ETag of the PUT.
    etag_is_current: bool


class GroupwareService:
    def __init__(self, database: Database, *, max_resource_size: int = MAX_RESOURCE_SIZE) -> None:
        self.database = database
        self.max_resource_size = max_resource_size
        # Set by the scheduling part (dav-sched) when it is built; None: no scheduling.
        self.scheduling: SchedulingHook | None = None
        self._defaults_ready: set[int] = set()

    # -- collections ---------------------------------------------------------------

    async def ensure_defaults(self, account_id: int) -> None:
        """The default calendar, address book and schedule inbox/outbox, on first use."""
        if account_id in self._defaults_ready:
            return

        def missing(conn: Connection) -> list[Collection]:
            return store.list_collections(conn, account_id)

        existing = await self.database.read(missing)
        kinds = {c.kind for c in existing}
        if not {CALENDAR, ADDRESSBOOK, INBOX, OUTBOX} <= kinds:

            def write(ctx: WriteContext) -> None:
                # The account row first: a concurrent first use waits here, then sees
                # the collections the other one made.
                ctx.next_modseq(account_id)
                have = {c.kind for c in store.list_collections(ctx.conn, account_id)}
                names = {c.name for c in store.list_collections(ctx.conn, account_id)}
                wanted = (
                    (CALENDAR, DEFAULT_CALENDAR, "Calendar"),
                    (ADDRESSBOOK, DEFAULT_ADDRESSBOOK, "Contacts"),
                    (INBOX, SCHEDULE_INBOX, "Inbox"),
                    (OUTBOX, SCHEDULE_OUTBOX, "Outbox"),
                )
                for kind, name, display in wanted:
                    if kind not in have and name not in names:
                        store.create_collection(
                            ctx, account_id, kind=kind, name=name, display_name=display
                        )

            await self.database.write(write)
        self._defaults_ready.add(account_id)

    async def collections(self, account_id: int) -> list[Collection]:
        await self.ensure_defaults(account_id)
        found = await self.database.read(lambda conn: store.list_collections(conn, account_id))
        if not any(c.kind == INBOX for c in found):
            # The memo of ensure_defaults is per process: an account removed and another
            # given its id (or removed by another node) must not go without defaults.
            self._defaults_ready.discard(account_id)
            await self.ensure_defaults(account_id)
            found = await self.database.read(lambda conn: store.list_collections(conn, account_id))
        return found

    async def collection(self, account_id: int, name: str) -> Collection | None:
        await self.ensure_defaults(account_id)
        found = await self.database.read(lambda conn: store.get_collection(conn, account_id, name))
        if found is None and name in (
            DEFAULT_CALENDAR,
            DEFAULT_ADDRESSBOOK,
            SCHEDULE_INBOX,
            SCHEDULE_OUTBOX,
        ):
            self._defaults_ready.discard(account_id)  # see collections()
            await self.ensure_defaults(account_id)
            found = await self.database.read(
                lambda conn: store.get_collection(conn, account_id, name)
            )
        return found

    async def properties(self, collection_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        return await self.database.read(lambda conn: store.get_properties(conn, collection_ids))

    async def resource_properties(self, resource_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        return await self.database.read(
            lambda conn: store.get_resource_properties(conn, resource_ids)
        )

    async def set_resource_properties(
        self,
        collection: Collection,
        name: str,
        *,
        set_properties: dict[str, str],
        remove_properties: Sequence[str] = (),
    ) -> ResourceInfo:
        """PROPPATCH on a resource: dead properties only, all or nothing."""
        return await self.database.write(
            lambda ctx: store.set_resource_properties(
                ctx, collection, name, set_properties, remove_properties
            )
        )

    async def create_collection(
        self,
        account_id: int,
        *,
        kind: str,
        name: str,
        display_name: str = "",
        description: str = "",
        color: str | None = None,
        sort_order: int = 0,
        timezone: str | None = None,
        components: Sequence[str] = (),
        properties: dict[str, str] | None = None,
    ) -> Collection:
        """MKCALENDAR / extended MKCOL; Refused(ALREADY_EXISTS or INVALID)."""
        if name in RESERVED_NAMES:
            raise Refused(Reason.ALREADY_EXISTS, f"{name} is reserved")
        if timezone is not None:
            self._check_timezone(timezone)
        for component in components:
            if component not in calendar_rules.COMPONENTS:
                raise ContentError(
                    "caldav", "supported-calendar-component", f"{component} is not supported"
                )
        await self.ensure_defaults(account_id)
        return await self.database.write(
            lambda ctx: store.create_collection(
                ctx,
                account_id,
                kind=kind,
                name=name,
                display_name=display_name,
                description=description,
                color=color,
                sort_order=sort_order,
                timezone=timezone,
                components=components,
                properties=properties,
            )
        )

    @staticmethod
    def _check_timezone(text: str) -> None:
        try:
            calendar_rules.validate_timezone(text)
        except calendar_rules.CalendarError as exc:
            raise ContentError("caldav", exc.precondition, exc.message) from exc

    async def update_collection(
        self,
        collection: Collection,
        *,
        values: dict[str, object] | None = None,
        set_properties: dict[str, str] | None = None,
        remove_properties: Sequence[str] = (),
    ) -> Collection:
        """PROPPATCH: live columns and dead properties, all or nothing."""
        values = dict(values or {})
        timezone = values.get("timezone")
        if isinstance(timezone, str):
            self._check_timezone(timezone)
        return await self.database.write(
            lambda ctx: store.update_collection(
                ctx,
                collection,
                values=values,
                set_properties=set_properties,
                remove_properties=remove_properties,
            )
        )

    async def delete_collection(self, collection: Collection) -> None:
        if collection.kind in (INBOX, OUTBOX):
            raise Refused(Reason.FORBIDDEN, "the schedule inbox and outbox cannot be deleted")
        await self.database.write(lambda ctx: store.delete_collection(ctx, collection))
        self._defaults_ready.discard(collection.account_id)

    # -- resources -----------------------------------------------------------------

    async def resources(self, collection: Collection) -> list[ResourceInfo]:
        return await self.database.read(lambda conn: store.list_resources(conn, collection.id))

    async def get(self, collection: Collection, name: str) -> Resource | None:
        return await self.database.read(lambda conn: store.get_resource(conn, collection.id, name))

    async def info(self, collection: Collection, name: str) -> ResourceInfo | None:
        return await self.database.read(
            lambda conn: store.get_resource_info(conn, collection.id, name)
        )

    async def multiget(self, collection: Collection, names: Sequence[str]) -> list[Resource]:
        return await self.database.read(
            lambda conn: store.get_resources(conn, collection.id, names)
        )

    async def by_ids(self, account_id: int, ids: Sequence[int]) -> list[Resource]:
        """The account's resources with these ids (JMAP /get); others are not found."""
        return await self.database.read(
            lambda conn: store.get_resources_by_id(conn, account_id, ids)
        )

    async def search(self, collection: Collection, needles: Sequence[str]) -> list[Resource]:
        """Cards whose names, emails or phones contain one of ``needles``."""
        folded = [n.casefold() for n in needles]
        return await self.database.read(
            lambda conn: store.search_resources(conn, collection.id, folded)
        )

    async def all(self, collection: Collection) -> list[Resource]:
        return await self.database.read(lambda conn: store.all_resources(conn, collection.id))

    async def validate(self, collection: Collection, data: bytes) -> IndexedObject:
        """Decode and check ``data`` for ``collection`` (off the loop): ContentError."""
        is_calendar = collection.kind != ADDRESSBOOK
        namespace = "caldav" if is_calendar else "carddav"
        if len(data) > self.max_resource_size:
            raise ContentError(namespace, "max-resource-size", "the resource is too large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            element = "valid-calendar-data" if is_calendar else "valid-address-data"
            raise ContentError(namespace, element, "the data is not UTF-8") from exc
        loop = asyncio.get_running_loop()
        if is_calendar:
            try:
                _parsed, item = await loop.run_in_executor(
                    None, lambda: calendar_rules.index(text, timezone=collection.timezone)
                )
            except calendar_rules.CalendarError as exc:
                raise ContentError("caldav", exc.precondition, exc.message) from exc
            if collection.kind == CALENDAR and item.component not in collection.components:
                raise ContentError(
                    "caldav",
                    "supported-calendar-component",
                    f"{item.component} is not accepted by this calendar",
                )
            return item
        try:
            _card, item = await loop.run_in_executor(None, contact_rules.index, text)
        except contact_rules.ContactError as exc:
            raise ContentError("carddav", exc.precondition, exc.message) from exc
        return item

    async def put(
        self,
        account: Account,
        collection: Collection,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        schedule: bool = True,
    ) -> Written:
        """PUT: validate, store (UidConflict, PreconditionFailed), then schedule."""
        if collection.kind == OUTBOX:
            raise Refused(Reason.FORBIDDEN, "the schedule outbox holds no resources")
        item = await self.validate(collection, data)
        hooked = schedule and self.scheduling is not None and collection.kind == CALENDAR
        # The hook compares old and new (removed attendees get a CANCEL): read the old
        # text first; the write's own result says whether it was really the one replaced.
        before = await self.get(collection, name) if hooked else None
        info, old_info = await self.database.write(
            lambda ctx: store.put_resource(
                ctx, collection, name, item, if_match=if_match, if_none_match=if_none_match
            )
        )
        etag_is_current = True
        if hooked and self.scheduling is not None:
            old = before if before is not None and old_info is not None else None
            if old is not None and old_info is not None and old.etag != old_info.etag:
                old = Resource(old_info, "")  # replaced in between: content unknown
            await self.scheduling.on_object_written(
                account, collection, old, Resource(info, item.data)
            )
            after = await self.info(collection, name)
            etag_is_current = after is not None and after.etag == info.etag
        return Written(info, old_info is None, etag_is_current)

    async def delete(
        self,
        account: Account,
        collection: Collection,
        name: str,
        *,
        if_match: str | None = None,
        schedule: bool = True,
    ) -> ResourceInfo:
        old = await self.get(collection, name) if schedule and self.scheduling else None
        info = await self.database.write(
            lambda ctx: store.delete_resource(ctx, collection, name, if_match=if_match)
        )
        if (
            schedule
            and self.scheduling is not None
            and collection.kind == CALENDAR
            and old is not None
            and old.etag == info.etag
        ):
            await self.scheduling.on_object_written(account, collection, old, None)
        return info

    async def move(
        self,
        account: Account,
        source: Collection,
        name: str,
        target: Collection,
        target_name: str,
        *,
        overwrite: bool,
        copy: bool = False,
    ) -> tuple[ResourceInfo, bool]:
        """MOVE/COPY between collections of the same kind (the content is re-validated
        when the target restricts components)."""
        if (source.kind == ADDRESSBOOK) != (target.kind == ADDRESSBOOK) or target.kind == OUTBOX:
            raise Refused(Reason.FORBIDDEN, "cannot move between calendars and address books")
        if target.kind == CALENDAR:
            resource = await self.get(source, name)
            if resource is None:
                raise Refused(Reason.NOT_FOUND, f"{name} not found")
            if resource.info.component not in target.components:
                raise ContentError(
                    "caldav", "supported-calendar-component", "not accepted by the target"
                )
            if source.kind != CALENDAR:
                # A scheduling message (with METHOD) is not a calendar object resource
                # (RFC 4791 §4.1): it must pass the rules of the target like a PUT.
                await self.validate(target, resource.data.encode("utf-8"))
        return await self.database.write(
            lambda ctx: store.move_resource(
                ctx, source, name, target, target_name, overwrite=overwrite, copy=copy
            )
        )

    async def relocate(
        self, source: Collection, name: str, target: Collection, target_name: str
    ) -> ResourceInfo:
        """Move a calendar object to another calendar of the account keeping its id
        (JMAP calendarIds); the target must take its component (ContentError),
        UidConflict and PreconditionFailed as for a PUT."""
        if source.kind != CALENDAR or target.kind != CALENDAR:
            raise Refused(Reason.FORBIDDEN, "only between calendars")
        info = await self.info(source, name)
        if info is None:
            raise Refused(Reason.NOT_FOUND, f"{name} not found")
        if info.component not in target.components:
            raise ContentError(
                "caldav", "supported-calendar-component", "not accepted by the target"
            )
        return await self.database.write(
            lambda ctx: store.relocate_resource(ctx, source, name, target, target_name)
        )

    # -- queries -------------------------------------------------------------------

    async def time_range(
        self, collection: Collection, start: dt.datetime | None, end: dt.datetime | None
    ) -> tuple[list[Resource], list[Resource]]:
        """RFC 4791 §9.9 from the index: (resources matched by the index, resources to
        check by expansion)."""
        lo = calendar_rules.to_us(start) if start else None
        hi = calendar_rules.to_us(end) if end else None

        return await self.database.read(
            lambda conn: store.time_range_resources(conn, collection.id, lo, hi)
        )

    async def changes(
        self, collection: Collection, since: int, *, limit: int | None = None
    ) -> CollectionChanges:
        return await self.database.read(
            lambda conn: store.changes_since(conn, collection, since, limit=limit)
        )

    async def snapshot(
        self, collection: Collection, *, limit: int | None = None
    ) -> tuple[list[ResourceInfo], int, bool]:
        """Initial sync-collection: (members, modseq, truncated)."""
        return await self.database.read(lambda conn: store.snapshot(conn, collection, limit=limit))

    async def summaries(self, collection_ids: Sequence[int]) -> list[store.ResourceSummary]:
        """The indexed columns of every resource of the collections (no content)."""
        ids = list(collection_ids)
        return await self.database.read(lambda conn: store.resource_summaries(conn, ids))

    async def busy(
        self,
        account_id: int,
        start: dt.datetime,
        end: dt.datetime,
        *,
        collection_ids: Sequence[int] | None = None,
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Busy periods in [start, end) of the account's calendars (or of
        ``collection_ids``), merged (free-busy)."""
        if collection_ids is None:
            collections = await self.collections(account_id)
            collection_ids = [c.id for c in collections if c.kind == CALENDAR]
        lo, hi = calendar_rules.to_us(start), calendar_rules.to_us(end)
        ids = list(collection_ids)
        rows = await self.database.read(lambda conn: store.busy_occurrences(conn, ids, lo, hi))
        spans = sorted((max(s, lo), min(e, hi)) for _, s, e in rows)
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        return [(calendar_rules.from_us(s), calendar_rules.from_us(e)) for s, e in merged]

    async def directory_accounts(self, account: Account) -> list[Account]:
        """The accounts of ``account``'s domain, for the read-only Directory address book."""
        domain = account.address.rsplit("@", 1)[1]
        accounts = await self.database.read(
            lambda conn: directory.list_accounts(conn, domain=domain)
        )
        return [a for a in accounts if not a.disabled]
