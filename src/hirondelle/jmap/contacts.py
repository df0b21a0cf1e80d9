"""RFC 9610 JMAP for Contacts: AddressBook/get, /changes, /set (§2) and ContactCard/get,
/changes, /query, /queryChanges, /set (§3), on the CardDAV data.

An AddressBook is an address-book collection of the groupware store, a ContactCard one
vCard resource in it (ids ``B<collection id>`` and ``C<resource id>``): the same rows,
the same change journal (kinds ``AddressBook`` and ``ContactCard``), so a CardDAV PUT
is in the next ``ContactCard/changes`` and a ``ContactCard/set`` in the next
sync-collection. Cards are converted by :mod:`hirondelle.groupware.jscontact` (RFC 9555)
and every written vCard passes the CardDAV rules (:func:`groupware.contacts.index`).

Deliberate choices:

- ``maxAddressBooksPerCard`` is 1: a vCard resource lives in one collection. Changing
  ``addressBookIds`` moves the resource and keeps its id.
- The default address book (``isDefault``) is the one named ``Contacts`` in the URL
  layout, created on first use; it cannot be destroyed (``forbidden``), and
  ``onSuccessSetIsDefault`` naming another book is invalidArguments.
- ``isSubscribed`` is kept as a dead property of the collection.
- A uid is unique in the account for JMAP creates (RFC 9610 §3): a second card with the
  uid of another is ``alreadyExists`` with ``existingId``; the uid cannot be changed.
- The conversion and validation of a /set run before the write, on an executor thread;
  inside the write an update whose card changed meanwhile (another ETag) is converted
  again from the vCard stored at that moment, so two writers cannot lose each other's
  fields.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.groupware import contacts as contact_rules
from hirondelle.groupware import jscontact
from hirondelle.groupware.service import DEFAULT_ADDRESSBOOK
from hirondelle.jmap import ids
from hirondelle.jmap.api import CONTACTS, Call, method
from hirondelle.jmap.errors import MethodError, SetError, invalid_properties
from hirondelle.jmap.standard import (
    FilterOperator,
    QueryArgs,
    SetContext,
    changes,
    get_args,
    get_response,
    get_response_of,
    invalid,
    known_arguments,
    parse_filter,
    parse_sort,
    query_args,
    query_changes,
    run_set,
    state_string,
    window,
)
from hirondelle.store import groupware as store
from hirondelle.store import journal
from hirondelle.store.groupware import ADDRESSBOOK, Collection, Resource

ADDRESSBOOK_PREFIX = "B"
CARD_PREFIX = "C"
SUBSCRIBED_PROPERTY = "{urn:ietf:params:jmap:contacts}isSubscribed"
MAX_NAME_OCTETS = 255

ADDRESSBOOK_PROPERTIES = (
    "id",
    "name",
    "description",
    "sortOrder",
    "isDefault",
    "isSubscribed",
    "shareWith",
    "myRights",
)
CARD_PROPERTIES = ("id", "addressBookIds", *jscontact.CARD_PROPERTIES)
FILTER_CONDITIONS = (
    "inAddressBook",
    "uid",
    "hasMember",
    "kind",
    "createdBefore",
    "createdAfter",
    "updatedBefore",
    "updatedAfter",
    "text",
    "name",
    "name/given",
    "name/surname",
    "name/surname2",
    "nickname",
    "organization",
    "email",
    "phone",
    "onlineService",
    "address",
    "note",
)
# The conditions whose fields ``text`` covers too.
TEXT_CONDITIONS = (
    "name",
    "nickname",
    "organization",
    "email",
    "phone",
    "onlineService",
    "address",
    "note",
)
SORT_PROPERTIES = ("created", "updated", "name/given", "name/surname", "name/surname2")


def encode_book(collection_id: int) -> str:
    return ids.encode(ADDRESSBOOK_PREFIX, collection_id)


def decode_book(value: str) -> int | None:
    return ids.decode(ADDRESSBOOK_PREFIX, value)


def encode_card(resource_id: int) -> str:
    return ids.encode(CARD_PREFIX, resource_id)


def decode_card(value: str) -> int | None:
    return ids.decode(CARD_PREFIX, value)


def account_capability() -> dict[str, Any]:
    """RFC 9610 §1.4.1 account capability."""
    return {"maxAddressBooksPerCard": 1, "mayCreateAddressBook": True}


# -- address books --------------------------------------------------------------------------


def _books(conn: Connection, account_id: int) -> list[Collection]:
    return [c for c in store.list_collections(conn, account_id) if c.kind == ADDRESSBOOK]


def _default_id(books: Sequence[Collection]) -> int | None:
    named = [b for b in books if b.name == DEFAULT_ADDRESSBOOK]
    if named:
        return named[0].id
    return min((b.id for b in books), default=None)


def _book_json(book: Collection, *, default_id: int | None, dead: dict[str, str]) -> dict[str, Any]:
    subscribed = ">false<" not in dead.get(SUBSCRIBED_PROPERTY, "")
    return {
        "id": encode_book(book.id),
        "name": book.display_name or book.name,
        "description": book.description or None,
        "sortOrder": book.sort_order,
        "isDefault": book.id == default_id,
        "isSubscribed": subscribed,
        "shareWith": None,
        "myRights": {
            "mayRead": True,
            "mayWrite": True,
            "mayShare": False,
            "mayDelete": book.id != default_id,
        },
    }


def _books_json(conn: Connection, account_id: int) -> tuple[int, list[dict[str, Any]]]:
    modseq = journal.account_modseq(conn, account_id)[0]
    books = _books(conn, account_id)
    dead = store.get_properties(conn, [b.id for b in books])
    default = _default_id(books)
    return modseq, [_book_json(b, default_id=default, dead=dead[b.id]) for b in books]


@method("AddressBook/get", capability=CONTACTS)
async def addressbook_get(call: Call) -> dict[str, Any]:
    """RFC 9610 §2.1."""
    args = get_args(call, properties=ADDRESSBOOK_PROPERTIES)
    await call.services.groupware.ensure_defaults(call.account_id)
    modseq, books = await call.services.database.read(
        lambda conn: _books_json(conn, call.account_id)
    )
    return get_response_of(call, args, state=state_string(modseq), objects=books)


@method("AddressBook/changes", capability=CONTACTS)
async def addressbook_changes(call: Call) -> dict[str, Any]:
    """RFC 9610 §2.2 (RFC 8620 §5.2) over the journal kind ``AddressBook``."""
    return await changes(call, kind="AddressBook", encode=encode_book)


def _check_book_properties(
    properties: dict[str, Any], *, current: dict[str, Any] | None
) -> dict[str, Any]:
    """The store values for an AddressBook create (current None) or update."""
    values: dict[str, Any] = {}
    for key, value in properties.items():
        if key in ("id", "isDefault", "myRights"):
            if current is None or current.get(key) != value:
                raise invalid_properties(key, description=f"{key} is set by the server")
            continue
        if key == "shareWith":
            if value is not None:
                raise invalid_properties(key, description="address books are not shared")
            continue
        if key == "name":
            if (
                not isinstance(value, str)
                or not value.strip()
                or len(value.encode("utf-8")) > MAX_NAME_OCTETS
                or any(ord(c) < 0x20 or c == "\x7f" for c in value)
            ):
                raise invalid_properties(
                    "name", description="name: 1 to 255 octets, no control characters"
                )
            values["display_name"] = value
        elif key == "description":
            if value is not None and (not isinstance(value, str) or len(value) > 10000):
                raise invalid_properties("description", description="a string or null")
            values["description"] = value or ""
        elif key == "sortOrder":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
                raise invalid_properties("sortOrder", description="0 <= sortOrder < 2^31")
            values["sort_order"] = value
        elif key == "isSubscribed":
            if not isinstance(value, bool):
                raise invalid_properties("isSubscribed", description="a boolean")
            values["subscribed"] = value
        else:
            raise invalid_properties(key, description=f"unknown property {key}")
    if current is None and "display_name" not in values:
        raise invalid_properties("name", description="name is required")
    return values


def _subscribed_value(subscribed: bool) -> str:
    text = "true" if subscribed else "false"
    return f'<isSubscribed xmlns="urn:ietf:params:jmap:contacts">{text}</isSubscribed>'


def _book_of(sctx: SetContext, book_id: str) -> Collection:
    number = decode_book(book_id)
    found = store.get_collection_by_id(sctx.ctx.conn, number) if number is not None else None
    if found is None or found.account_id != sctx.account_id or found.kind != ADDRESSBOOK:
        raise SetError("notFound")
    return found


@method("AddressBook/set", capability=CONTACTS)
async def addressbook_set(call: Call) -> dict[str, Any]:
    """RFC 9610 §2.3: create, rename, describe, (un)subscribe and destroy address books,
    with ``onDestroyRemoveContents`` (else ``addressBookHasContents``)."""
    remove_contents = call.args.get("onDestroyRemoveContents", False)
    if not isinstance(remove_contents, bool):
        raise invalid("onDestroyRemoveContents", "onDestroyRemoveContents is a boolean")
    set_default = call.args.get("onSuccessSetIsDefault")
    if set_default is not None and not isinstance(set_default, str):
        raise invalid("onSuccessSetIsDefault", "onSuccessSetIsDefault is an Id or null")
    await call.services.groupware.ensure_defaults(call.account_id)
    if set_default is not None:
        # Checked before anything is written: the default book is fixed here, so only
        # naming the current default (a no-op) is accepted.
        wanted = call.resolve_id(set_default)
        books = await call.services.database.read(lambda conn: _books(conn, call.account_id))
        if wanted is None or decode_book(wanted) != _default_id(books):
            raise invalid(
                "onSuccessSetIsDefault", "the default address book is fixed on this server"
            )

    def create(sctx: SetContext, creation_id: str, properties: dict[str, Any]) -> Any:
        values = _check_book_properties(properties, current=None)
        subscribed = values.pop("subscribed", True)
        collection = store.create_collection(
            sctx.ctx,
            sctx.account_id,
            kind=ADDRESSBOOK,
            # The URL segment: JMAP names are display names and may repeat.
            name="book-" + secrets.token_hex(8),
            display_name=values["display_name"],
            description=values.get("description", ""),
            sort_order=values.get("sort_order", 0),
            properties=None if subscribed else {SUBSCRIBED_PROPERTY: _subscribed_value(False)},
        )
        books = _books(sctx.ctx.conn, sctx.account_id)
        made = _book_json(collection, default_id=_default_id(books), dead={})
        made["isSubscribed"] = subscribed
        server_set = ("isDefault", "myRights", "shareWith", "description", "sortOrder")
        return made["id"], {k: made[k] for k in server_set} | {"isSubscribed": subscribed}

    def update(sctx: SetContext, book_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        sctx.ctx.next_modseq(sctx.account_id)  # lock order first (see store/groupware.py)
        book = _book_of(sctx, book_id)
        conn = sctx.ctx.conn
        books = _books(conn, sctx.account_id)
        dead = store.get_properties(conn, [book.id])[book.id]
        current = _book_json(book, default_id=_default_id(books), dead=dead)
        if any("/" in key for key in patch):
            raise invalid_properties(*patch, description="AddressBook properties are not patched")
        values = _check_book_properties(patch, current=current)
        subscribed = values.pop("subscribed", None)
        store.update_collection(
            sctx.ctx,
            book,
            values=values,
            set_properties=(
                {SUBSCRIBED_PROPERTY: _subscribed_value(subscribed)}
                if subscribed is not None
                else None
            ),
        )
        return None

    def destroy(sctx: SetContext, book_id: str) -> None:
        # Lock order first: a card PUT racing with this destroy is either seen by the
        # addressBookHasContents check or made after the book is gone.
        sctx.ctx.next_modseq(sctx.account_id)
        book = _book_of(sctx, book_id)
        conn = sctx.ctx.conn
        if book.id == _default_id(_books(conn, sctx.account_id)):
            raise SetError("forbidden", "the default address book cannot be destroyed")
        if store.list_resources(conn, book.id) and not remove_contents:
            raise SetError(
                "addressBookHasContents",
                "the address book has cards; set onDestroyRemoveContents to remove them",
            )
        store.delete_collection(sctx.ctx, book)

    return await run_set(
        call,
        create=create,
        update=update,
        destroy=destroy,
        decode=decode_book,
        extra_arguments=["onDestroyRemoveContents", "onSuccessSetIsDefault"],
    )


# -- cards ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    card: dict[str, Any]
    # Every string of the card, case-folded, one per line: what ``text`` searches.
    text: str


class _CardCache:
    """Parsed cards by (resource id, ETag): /get and /query of an unchanged address book
    neither read nor parse its vCards again (only the ids and ETags are read). Shared by
    the accounts of the process, least recently used first out: 10,000 cards are some
    tens of MB of Python objects."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str], _Parsed] = OrderedDict()
        # Conversions run on executor threads at once.
        self._lock = threading.Lock()

    def lookup(self, resource_id: int, etag: str) -> _Parsed | None:
        with self._lock:
            found = self._items.get((resource_id, etag))
            if found is not None:
                self._items.move_to_end((resource_id, etag))
            return found

    def parse(self, resource: Resource) -> _Parsed:
        found = self.lookup(resource.info.id, resource.etag)
        if found is not None:
            return found
        card = jscontact.read(resource.data)
        parsed = _Parsed(card, "\n".join(s.casefold() for s in _searched_text(card)))
        with self._lock:
            self._items[(resource.info.id, resource.etag)] = parsed
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return parsed


_cache = _CardCache()

Entry = tuple[store.ResourceInfo, _Parsed]


def card_json(info: store.ResourceInfo, parsed: _Parsed) -> dict[str, Any]:
    """The ContactCard of one stored vCard (RFC 9610 §3)."""
    return {
        "id": encode_card(info.id),
        "addressBookIds": {encode_book(info.collection_id): True},
        **parsed.card,
    }


def _parse_all(resources: Sequence[Resource]) -> list[Entry]:
    return [(r.info, _cache.parse(r)) for r in resources]


async def _parsed(resources: Sequence[Resource]) -> list[Entry]:
    """Parsing is CPU work: off the event loop."""
    if all(_cache.lookup(r.info.id, r.etag) is not None for r in resources):
        return _parse_all(resources)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _parse_all, resources)


async def _all_cards(call: Call) -> tuple[int, list[Entry]]:
    """(modseq, every card of the account by id): the ids and ETags are read at one
    modseq; only cards missing from the cache are read and parsed."""

    def read(conn: Connection) -> tuple[int, list[store.ResourceInfo]]:
        modseq = journal.account_modseq(conn, call.account_id)[0]
        return modseq, store.resource_infos_of_kind(conn, call.account_id, ADDRESSBOOK)

    modseq, infos = await call.services.database.read(read)
    found: dict[int, Entry] = {}
    missing: list[int] = []
    for info in infos:
        parsed = _cache.lookup(info.id, info.etag)
        if parsed is None:
            missing.append(info.id)
        else:
            found[info.id] = (info, parsed)
    for at in range(0, len(missing), 500):
        chunk = missing[at : at + 500]
        resources = await call.services.database.read(
            lambda conn, chunk=chunk: store.get_resources_by_id(conn, call.account_id, chunk)  # type: ignore[misc]
        )
        # A card changed since the listing comes newer than the state: harmless, the
        # next /changes names it again.
        for info, parsed in await _parsed(resources):
            found[info.id] = (info, parsed)
    return modseq, [found[i.id] for i in infos if i.id in found]


@method("ContactCard/get", capability=CONTACTS)
async def card_get(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.1."""
    args = get_args(call, properties=CARD_PROPERTIES)
    if args.ids is None:
        modseq, entries = await _all_cards(call)
        not_found = list(args.unresolved)
    else:
        numbers = [n for n in (decode_card(i) for i in args.ids) if n is not None]

        def read(conn: Connection) -> tuple[int, list[Resource]]:
            modseq = journal.account_modseq(conn, call.account_id)[0]
            found = store.get_resources_by_id(conn, call.account_id, numbers)
            return modseq, [r for r in found if r.info.component == "VCARD"]

        modseq, resources = await call.services.database.read(read)
        present = {encode_card(r.info.id) for r in resources}
        not_found = [i for i in args.ids if i not in present] + args.unresolved
        entries = await _parsed(resources)
    cards = [card_json(info, parsed) for info, parsed in entries]
    if args.ids is not None:
        by_id = {c["id"]: c for c in cards}
        cards = [by_id[i] for i in args.ids if i in by_id]
    return get_response(
        call,
        state=state_string(modseq),
        objects=cards,
        not_found=not_found,
        properties=args.properties,
    )


@method("ContactCard/changes", capability=CONTACTS)
async def card_changes(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.2 (RFC 8620 §5.2) over the journal kind ``ContactCard``: a CardDAV
    PUT or DELETE is a change here too."""
    return await changes(call, kind="ContactCard", encode=encode_card)


def _set_error_of_jscontact(error: jscontact.JSContactError) -> SetError:
    return invalid_properties(error.path or "", description=error.message)


def _book_ids(sctx: SetContext, value: object) -> Collection:
    """The one address book of ``addressBookIds`` (maxAddressBooksPerCard is 1)."""
    if not isinstance(value, dict) or not all(v is True for v in value.values()):
        raise invalid_properties("addressBookIds", description="addressBookIds maps ids to true")
    if len(value) != 1:
        raise invalid_properties(
            "addressBookIds", description="a card is in exactly one address book here"
        )
    raw = next(iter(value))
    resolved = sctx.resolve_id(raw)
    if resolved is None:
        raise invalid_properties("addressBookIds", description=f"no address book {raw}")
    try:
        return _book_of(sctx, resolved)
    except SetError:
        raise invalid_properties("addressBookIds", description=f"no address book {raw}") from None


def _indexed(data: str, max_size: int) -> store.IndexedObject:
    """The CardDAV rules on the vCard JMAP wrote (as for a PUT)."""
    if len(data.encode("utf-8")) > max_size:
        raise SetError("tooLarge", "the card is larger than the largest resource accepted")
    try:
        _parsed, item = contact_rules.index(data)
    except contact_rules.ContactError as exc:
        raise invalid_properties(description=f"the card is not valid: {exc.message}") from exc
    return item


def _put(
    sctx: SetContext,
    book: Collection,
    name: str,
    item: store.IndexedObject,
    *,
    if_match: str | None = None,
) -> store.ResourceInfo:
    try:
        info, _old = store.put_resource(
            sctx.ctx, book, name, item, if_match=if_match, if_none_match=if_match is None
        )
    except store.UidConflict as conflict:
        holder = store.get_resource_info(sctx.ctx.conn, book.id, conflict.name)
        error = SetError("alreadyExists", "a card with this uid exists")
        if holder is not None:
            error.extra["existingId"] = encode_card(holder.id)
        raise error from None
    except store.PreconditionFailed:
        raise SetError("alreadyExists", "a resource with this name exists") from None
    return info


@dataclass
class _Prepared:
    """One create or update converted to vCard and validated before the write (on an
    executor thread, so that the store's writer does not parse), or its refusal."""

    error: SetError | None = None
    data: str = ""
    item: store.IndexedObject | None = None
    uid: str = ""
    created: str = ""
    now: str = ""
    # The addressBookIds value asked for (resolved inside the write).
    books: object = None
    # Update: the ETag of the stored card the patch was applied to.
    etag: str = ""


def _prepare_create(properties: dict[str, Any], max_size: int) -> _Prepared:
    props = dict(properties)
    try:
        if "id" in props:
            raise invalid_properties("id", description="id is set by the server")
        if "addressBookIds" not in props:
            raise invalid_properties("addressBookIds", description="addressBookIds is required")
        books = props.pop("addressBookIds")
        try:
            card = jscontact.check(props, creating=True)
        except jscontact.JSContactError as error:
            raise _set_error_of_jscontact(error) from None
        uid = card.get("uid") or f"urn:uuid:{uuid.uuid4()}"
        card["uid"] = uid
        now = jscontact.utc_now()
        card.setdefault("created", now)
        card.pop("updated", None)
        data = jscontact.write_vcard(None, card, uid=uid, now=now)
        item = _indexed(data, max_size)
    except SetError as error:
        return _Prepared(error=error)
    return _Prepared(data=data, item=item, uid=uid, created=card["created"], now=now, books=books)


def _prepare_update(
    resource: Resource, card_id: str, patch: dict[str, Any], max_size: int
) -> _Prepared:
    reading = jscontact.read_vcard(resource.data)
    before = {
        "id": card_id,
        "addressBookIds": {encode_book(resource.info.collection_id): True},
        **reading.card,
    }
    try:
        try:
            after = jscontact.apply_patch(before, patch)
        except jscontact.PatchError as error:
            raise SetError("invalidPatch", str(error)) from None
        if after.get("id") != card_id:
            raise invalid_properties("id", description="id cannot change")
        if after.get("uid") != reading.card.get("uid"):
            raise invalid_properties("uid", description="uid cannot change")
        books = after.pop("addressBookIds", None)
        after.pop("id")
        # REV is the time of the write: whatever "updated" the client sent.
        after.pop("updated", None)
        try:
            card = jscontact.check(after, creating=False, previous=reading.card)
        except jscontact.JSContactError as error:
            raise _set_error_of_jscontact(error) from None
        now = jscontact.utc_now()
        data = jscontact.write_vcard(reading, card, uid=str(card["uid"]), now=now)
        item = _indexed(data, max_size)
    except SetError as error:
        return _Prepared(error=error, etag=resource.etag)
    return _Prepared(data=data, item=item, now=now, books=books, etag=resource.etag)


def _prepare_all(
    creates: dict[str, dict[str, Any]],
    updates: list[tuple[Resource, str, dict[str, Any]]],
    max_size: int,
) -> tuple[dict[str, _Prepared], dict[str, _Prepared]]:
    prepared_creates = {
        cid: _prepare_create(props, max_size)
        for cid, props in creates.items()
        if isinstance(props, dict)
    }
    prepared_updates = {
        card_id: _prepare_update(resource, card_id, patch, max_size)
        for resource, card_id, patch in updates
    }
    return prepared_creates, prepared_updates


async def _prepare(call: Call, max_size: int) -> tuple[dict[str, _Prepared], dict[str, _Prepared]]:
    """Convert and validate every create and update of a ContactCard/set off the event
    loop and off the store's writer; the write only re-does an update whose card changed
    in between."""
    creates = call.args.get("create")
    updates = call.args.get("update")
    creates = creates if isinstance(creates, dict) else {}
    updates = updates if isinstance(updates, dict) else {}
    wanted = {
        number: (card_id, patch)
        for card_id, patch in updates.items()
        if isinstance(patch, dict) and (number := decode_card(card_id)) is not None
    }
    resources: list[Resource] = []
    if wanted:
        numbers = list(wanted)
        resources = await call.services.database.read(
            lambda conn: store.get_resources_by_id(conn, call.account_id, numbers)
        )
    pending = [(r, *wanted[r.info.id]) for r in resources if r.info.component == "VCARD"]
    if not creates and not pending:
        return {}, {}
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _prepare_all, creates, pending, max_size)


@method("ContactCard/set", capability=CONTACTS)
async def card_set(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.6 (RFC 8620 §5.3): create, patch and destroy cards; every vCard written
    passes the CardDAV validation, and the uid stays unique in the account."""
    await call.services.groupware.ensure_defaults(call.account_id)
    max_size = call.services.groupware.max_resource_size
    prepared_creates, prepared_updates = await _prepare(call, max_size)

    def create(sctx: SetContext, creation_id: str, properties: dict[str, Any]) -> Any:
        prepared = prepared_creates.get(creation_id) or _prepare_create(properties, max_size)
        if prepared.error is not None:
            raise prepared.error
        assert prepared.item is not None
        # The account row first: concurrent writers (PostgreSQL) queue here, so the
        # uid check below sees what the one before committed.
        sctx.ctx.next_modseq(sctx.account_id)
        book = _book_ids(sctx, prepared.books)
        conn = sctx.ctx.conn
        holder = store.find_uid_in_account(conn, sctx.account_id, prepared.uid, ADDRESSBOOK)
        if holder is not None:
            raise SetError(
                "alreadyExists", "a card with this uid exists", existingId=encode_card(holder)
            )
        info = _put(sctx, book, f"{uuid.uuid4()}.vcf", prepared.item)
        return encode_card(info.id), {
            "uid": prepared.uid,
            "created": prepared.created,
            "updated": prepared.now,
        }

    def update(sctx: SetContext, card_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        number = decode_card(card_id)
        # Lock order first (see create): the card read next is the one this write
        # replaces, not one another transaction is replacing.
        sctx.ctx.next_modseq(sctx.account_id)
        conn = sctx.ctx.conn
        found = store.get_resources_by_id(conn, sctx.account_id, [number] if number else [])
        if not found or found[0].info.component != "VCARD":
            raise SetError("notFound")
        resource = found[0]
        book = store.get_collection_by_id(conn, resource.info.collection_id)
        assert book is not None
        prepared = prepared_updates.get(card_id)
        if prepared is None or prepared.etag != resource.etag:
            # Changed since it was prepared (or never read): apply the patch to what
            # is stored now, so that no other writer's change is lost.
            prepared = _prepare_update(resource, card_id, patch, max_size)
        if prepared.error is not None:
            raise prepared.error
        assert prepared.item is not None
        target = _book_ids(sctx, prepared.books)
        _put(sctx, book, resource.name, prepared.item, if_match=resource.etag)
        if target.id != book.id:
            try:
                store.relocate_resource(sctx.ctx, book, resource.name, target, resource.name)
            except store.UidConflict:
                raise SetError(
                    "alreadyExists", "the target address book has a card with this uid"
                ) from None
            except store.PreconditionFailed:
                raise SetError(
                    "alreadyExists", f"{resource.name} exists in the target address book"
                ) from None
        return {"updated": prepared.now}

    def destroy(sctx: SetContext, card_id: str) -> None:
        number = decode_card(card_id)
        sctx.ctx.next_modseq(sctx.account_id)  # lock order first (see create)
        conn = sctx.ctx.conn
        found = store.get_resources_by_id(conn, sctx.account_id, [number] if number else [])
        if not found or found[0].info.component != "VCARD":
            raise SetError("notFound")
        book = store.get_collection_by_id(conn, found[0].info.collection_id)
        assert book is not None
        store.delete_resource(sctx.ctx, book, found[0].name)

    return await run_set(call, create=create, update=update, destroy=destroy, decode=decode_card)


# -- query ----------------------------------------------------------------------------------


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    """RFC 9610 §3.3.1 FilterCondition, checked."""
    for key, value in condition.items():
        if key not in FILTER_CONDITIONS:
            raise MethodError("unsupportedFilter", f"unknown ContactCard filter {key!r}")
        if not isinstance(value, str):
            raise MethodError("invalidArguments", f"{key} is a String", arguments=["filter"])
        if key.endswith(("Before", "After")) and jscontact.timestamp(value) is None:
            raise MethodError("invalidArguments", f"{key} is a UTCDate", arguments=["filter"])
    return condition


def _contains(haystack: object, needle: str) -> bool:
    return isinstance(haystack, str) and needle.casefold() in haystack.casefold()


def _searched_text(card: dict[str, Any]) -> list[str]:
    """What the ``text`` condition looks in: every text the user wrote (names,
    nicknames, organizations, titles, emails, phones, online services, addresses,
    notes, keywords), not the kinds and contexts."""
    found = [s for key in TEXT_CONDITIONS for s in _text_fields(card, key)]
    return found + _entries(card, "titles", ["name"]) + list(card.get("keywords", {}))


def _components(card: dict[str, Any], kind: str | None) -> list[str]:
    return [
        str(c["value"])
        for c in card.get("name", {}).get("components", [])
        if kind is None or c.get("kind") == kind
    ]


def _entries(card: dict[str, Any], prop: str, members: Sequence[str]) -> list[str]:
    found: list[str] = []
    for entry in card.get(prop, {}).values():
        for member in members:
            value = entry.get(member)
            if isinstance(value, str):
                found.append(value)
        if prop == "organizations":
            found.extend(u["name"] for u in entry.get("units", []))
        if prop == "addresses":
            found.extend(c["value"] for c in entry.get("components", []))
    return found


def _created(card: dict[str, Any]) -> str:
    return str(card.get("created") or "")


def _updated(card: dict[str, Any]) -> str:
    return str(card.get("updated") or "")


def _text_fields(card: dict[str, Any], key: str) -> list[str]:
    if key == "name":
        full = card.get("name", {}).get("full")
        return _components(card, None) + ([full] if full else [])
    if key.startswith("name/"):
        return _components(card, key[5:])
    if key == "nickname":
        return _entries(card, "nicknames", ["name"])
    if key == "organization":
        return _entries(card, "organizations", ["name"])
    if key == "email":
        return _entries(card, "emails", ["address", "label"])
    if key == "phone":
        return _entries(card, "phones", ["number", "label"])
    if key == "onlineService":
        return _entries(card, "onlineServices", ["service", "uri", "user", "label"])
    if key == "address":
        return _entries(card, "addresses", ["full"])
    if key == "note":
        return _entries(card, "notes", ["note"])
    raise AssertionError(key)


def _matches(entry: Entry, tree: Any) -> bool:
    if tree is None:
        return True
    if isinstance(tree, FilterOperator):
        results = (_matches(entry, c) for c in tree.conditions)
        if tree.operator == "AND":
            return all(results)
        if tree.operator == "OR":
            return any(results)
        return not any(results)
    info, parsed = entry
    card = parsed.card
    for key, value in tree.items():
        if key == "inAddressBook":
            if value != encode_book(info.collection_id):
                return False
        elif key == "text":
            if value.casefold() not in parsed.text:
                return False
        elif key == "uid":
            if card.get("uid") != value:
                return False
        elif key == "hasMember":
            if value not in card.get("members", {}):
                return False
        elif key == "kind":
            if card.get("kind", "individual") != value:
                return False
        elif key in ("createdBefore", "createdAfter", "updatedBefore", "updatedAfter"):
            stamp = _created(card) if key.startswith("created") else _updated(card)
            wanted = jscontact.timestamp(value) or ""
            if not stamp:
                return False
            if key.endswith("Before") and not stamp < wanted:
                return False
            if key.endswith("After") and not stamp >= wanted:
                return False
        elif not any(_contains(field, value) for field in _text_fields(card, key)):
            return False
    return True


def _sort_key(card: dict[str, Any], prop: str) -> str:
    if prop == "created":
        return _created(card)
    if prop == "updated":
        return _updated(card)
    values = _components(card, prop[5:])
    return values[0].casefold() if values else ""


def _sorted(entries: list[Entry], args: QueryArgs) -> list[str]:
    ordered = sorted(entries, key=lambda e: e[0].id)
    for comparator in reversed(args.sort):
        ordered.sort(
            key=lambda e, p=comparator.property: _sort_key(e[1].card, p),  # type: ignore[misc]
            reverse=not comparator.is_ascending,
        )
    return [encode_card(info.id) for info, _parsed in ordered]


async def _query_result(call: Call, args: QueryArgs) -> tuple[list[str], str]:
    modseq, entries = await _all_cards(call)
    matched = [e for e in entries if _matches(e, args.filter)]
    return _sorted(matched, args), state_string(modseq)


@method("ContactCard/query", capability=CONTACTS)
async def card_query(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.3: every FilterCondition of §3.3.1 (text matches are case-insensitive
    substrings), sorts of §3.3.2; ties in id (creation) order."""
    args = query_args(call, condition=_condition, sort_properties=SORT_PROPERTIES)
    result_ids, state = await _query_result(call, args)
    return window(call, result_ids, args, query_state=state)


@method("ContactCard/queryChanges", capability=CONTACTS)
async def card_query_changes(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.4 (RFC 8620 §5.6) from the journal kind ``ContactCard``."""
    args = QueryArgs(
        filter=parse_filter(call.args.get("filter"), _condition),
        sort=parse_sort(call.args.get("sort"), SORT_PROPERTIES),
        position=0,
        anchor=None,
        anchor_offset=0,
        limit=None,
        calculate_total=False,
    )

    async def current() -> tuple[list[str], str]:
        return await _query_result(call, args)

    return await query_changes(
        call,
        kind="ContactCard",
        encode=encode_card,
        current=current,
        condition=_condition,
        sort_properties=SORT_PROPERTIES,
    )


@method("ContactCard/copy", capability=CONTACTS)
async def card_copy(call: Call) -> dict[str, Any]:
    """RFC 9610 §3.5 (RFC 8620 §5.4) copies between accounts. Nothing is shared between
    accounts here, so the only account to copy from is the target itself, which §5.4
    does not allow: within an account, ContactCard/set addressBookIds moves a card."""
    known_arguments(
        call,
        [
            "fromAccountId",
            "ifFromInState",
            "ifInState",
            "create",
            "onSuccessDestroyOriginal",
            "destroyFromIfInState",
        ],
    )
    if call.args.get("fromAccountId") != call.account_id_string:
        raise MethodError("fromAccountNotFound", "no such account to copy from")
    raise invalid("fromAccountId", "fromAccountId must differ from accountId")
