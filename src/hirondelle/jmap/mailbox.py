"""RFC 8621 §2: Mailbox/get, /changes, /query, /queryChanges, /set.

JMAP names a mailbox by its leaf ``name`` and ``parentId``; the store (and IMAP) by its
full path with ``/`` between levels. Creating, renaming, moving and destroying go
through store/mailboxes.py and mail/mailboxes.py, the functions IMAP uses, so the rules
are the same: a mailbox with children is not destroyed (``mailboxHasChild``), the
inbox is neither destroyed nor renamed, names are NFC with no control characters.

Deliberate choices:

- A name containing ``/`` is refused (invalidProperties): the delimiter cannot be
  part of a level without IMAP clients seeing two levels.
- ``role`` may be changed except to or from ``inbox``; at most one mailbox per role.
- ``myRights`` are all true (an account owns its mailboxes; no sharing yet), but
  mayRename and mayDelete for the inbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.jmap import ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.errors import MethodError, SetError, invalid_properties
from hirondelle.jmap.standard import (
    FilterOperator,
    QueryArgs,
    SetContext,
    boolean,
    changes,
    get_args,
    get_response_of,
    query_args,
    query_changes,
    run_set,
    state_string,
    window,
)
from hirondelle.mail import mailboxes as mailbox_rules
from hirondelle.store import jmap_mailboxes, journal, mailboxes
from hirondelle.store.mailboxes import DELIMITER, INBOX, Mailbox

PROPERTIES = (
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
)
SERVER_SET = ("id", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads", "myRights")
FILTER_CONDITIONS = ("parentId", "name", "role", "hasAnyRole", "isSubscribed")
SORT_PROPERTIES = ("sortOrder", "name")


def encode(mailbox_id: int) -> str:
    return ids.encode(ids.MAILBOX, mailbox_id)


def decode(value: str) -> int | None:
    return ids.decode(ids.MAILBOX, value)


def rights(mailbox: Mailbox) -> dict[str, bool]:
    inbox = mailbox.name == INBOX
    return {
        "mayReadItems": True,
        "mayAddItems": True,
        "mayRemoveItems": True,
        "maySetSeen": True,
        "maySetKeywords": True,
        "mayCreateChild": True,
        "mayRename": not inbox,
        "mayDelete": not inbox,
        "maySubmit": True,
    }


def leaf(mailbox: Mailbox) -> str:
    return mailbox.name.rsplit(DELIMITER, 1)[-1]


def to_json(mailbox: Mailbox, counts: jmap_mailboxes.JmapCounts) -> dict[str, Any]:
    return {
        "id": encode(mailbox.id),
        "name": leaf(mailbox),
        "parentId": encode(mailbox.parent_id) if mailbox.parent_id is not None else None,
        "role": mailbox.role,
        "sortOrder": mailbox.sort_order,
        "totalEmails": counts.total_emails,
        "unreadEmails": counts.unread_emails,
        "totalThreads": counts.total_threads,
        "unreadThreads": counts.unread_threads,
        "myRights": rights(mailbox),
        "isSubscribed": mailbox.subscribed,
    }


def _all(
    conn: Connection, account_id: int, *, only: list[int] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """(modseq, the mailboxes as JSON: all, or those of ``only``) in one snapshot. Counts
    are the costly part (they grow with the mailbox), so only asked ones are counted."""
    modseq = journal.account_modseq(conn, account_id)[0]
    found = mailboxes.list_mailboxes(conn, account_id)
    if only is not None:
        wanted = set(only)
        found = [m for m in found if m.id in wanted]
    counts = jmap_mailboxes.counts(
        conn, account_id, [m.id for m in found] if only is not None else None
    )
    empty = jmap_mailboxes.JmapCounts()
    return modseq, [to_json(m, counts.get(m.id, empty)) for m in found]


@method("Mailbox/get", capability=MAIL)
async def mailbox_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §2.1 (RFC 8620 §5.1)."""
    args = get_args(call, properties=PROPERTIES)
    only = None
    if args.ids is not None:
        only = [n for n in (decode(i) for i in args.ids) if n is not None]
    modseq, objects = await call.services.database.read(
        lambda conn: _all(conn, call.account_id, only=only)
    )
    return get_response_of(call, args, state=state_string(modseq), objects=objects)


@method("Mailbox/changes", capability=MAIL)
async def mailbox_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §2.2: ``updatedProperties`` is always null (any property may have
    changed); the counts move with every email change, and are journaled."""
    return await changes(
        call, kind="Mailbox", encode=encode, extra_response={"updatedProperties": None}
    )


# -- query ------------------------------------------------------------------------------


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    """RFC 8621 §2.3 FilterCondition, checked."""
    for key, value in condition.items():
        if key not in FILTER_CONDITIONS:
            raise MethodError("unsupportedFilter", f"unknown Mailbox filter {key!r}")
        if key == "parentId" and value is not None and not isinstance(value, str):
            raise MethodError("invalidArguments", "parentId is an Id or null", arguments=["filter"])
        if key == "name" and not isinstance(value, str):
            raise MethodError("invalidArguments", "name is a String", arguments=["filter"])
        if key == "role" and value is not None and not isinstance(value, str):
            raise MethodError("invalidArguments", "role is a String or null", arguments=["filter"])
        if key in ("hasAnyRole", "isSubscribed") and not isinstance(value, bool):
            raise MethodError("invalidArguments", f"{key} is a Boolean", arguments=["filter"])
    return condition


def _matches(mailbox: dict[str, Any], tree: Any) -> bool:
    if tree is None:
        return True
    if isinstance(tree, FilterOperator):
        results = (_matches(mailbox, c) for c in tree.conditions)
        if tree.operator == "AND":
            return all(results)
        if tree.operator == "OR":
            return any(results)
        return not any(results)
    for key, value in tree.items():
        if key == "parentId" and mailbox["parentId"] != value:
            return False
        if key == "name" and value.casefold() not in mailbox["name"].casefold():
            return False
        if key == "role" and mailbox["role"] != value:
            return False
        if key == "hasAnyRole" and (mailbox["role"] is not None) != value:
            return False
        if key == "isSubscribed" and mailbox["isSubscribed"] != value:
            return False
    return True


def _sort_key(args: QueryArgs) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    comparators = args.sort or []

    def key(mailbox: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for comparator in comparators:
            value = mailbox[comparator.property]
            if isinstance(value, str):
                value = value.casefold()
            if comparator.is_ascending:
                parts.append(value)
            else:
                # Descending on ints: negate; on strings: invert the code points.
                parts.append(-value if isinstance(value, int) else tuple(-ord(c) for c in value))
        # Stable and total: sortOrder, then name, then id (RFC 8620 §5.5: the order of
        # ties is the server's, but it must not change between calls).
        parts.extend([mailbox["sortOrder"], mailbox["name"].casefold(), mailbox["id"]])
        return tuple(parts)

    return key


def _query_ids(
    objects: list[dict[str, Any]], args: QueryArgs, *, sort_as_tree: bool, filter_as_tree: bool
) -> list[str]:
    """RFC 8621 §2.3: filter, sort, with sortAsTree / filterAsTree."""
    by_id = {o["id"]: o for o in objects}
    matching = {o["id"] for o in objects if _matches(o, args.filter)}
    if filter_as_tree:

        def ancestors_match(mailbox: dict[str, Any]) -> bool:
            parent = mailbox["parentId"]
            while parent is not None:
                if parent not in matching:
                    return False
                parent = by_id[parent]["parentId"]
            return True

        matching = {i for i in matching if ancestors_match(by_id[i])}
    key = _sort_key(args)
    if not sort_as_tree:
        return [o["id"] for o in sorted((by_id[i] for i in matching), key=key)]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for mailbox in objects:
        children.setdefault(mailbox["parentId"], []).append(mailbox)
    ordered: list[str] = []

    def walk(parent: str | None) -> None:
        for mailbox in sorted(children.get(parent, []), key=key):
            if mailbox["id"] in matching:
                ordered.append(mailbox["id"])
            walk(mailbox["id"])

    walk(None)
    return ordered


async def _current_query(call: Call, args: QueryArgs) -> tuple[list[str], str]:
    sort_as_tree = boolean(call, "sortAsTree", default=False)
    filter_as_tree = boolean(call, "filterAsTree", default=False)
    modseq, objects = await call.services.database.read(lambda conn: _all(conn, call.account_id))
    return (
        _query_ids(objects, args, sort_as_tree=sort_as_tree, filter_as_tree=filter_as_tree),
        state_string(modseq),
    )


@method("Mailbox/query", capability=MAIL)
async def mailbox_query(call: Call) -> dict[str, Any]:
    """RFC 8621 §2.3."""
    args = query_args(
        call,
        condition=_condition,
        sort_properties=SORT_PROPERTIES,
        extra_arguments=("sortAsTree", "filterAsTree"),
    )
    result, state = await _current_query(call, args)
    return window(call, result, args, query_state=state)


@method("Mailbox/queryChanges", capability=MAIL)
async def mailbox_query_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §2.4 (RFC 8620 §5.6)."""
    args = QueryArgs(
        filter=None,
        sort=[],
        position=0,
        anchor=None,
        anchor_offset=0,
        limit=None,
        calculate_total=False,
    )

    async def current() -> tuple[list[str], str]:
        from hirondelle.jmap.standard import parse_filter, parse_sort

        chosen = QueryArgs(
            filter=parse_filter(call.args.get("filter"), _condition),
            sort=parse_sort(call.args.get("sort"), SORT_PROPERTIES),
            position=0,
            anchor=None,
            anchor_offset=0,
            limit=None,
            calculate_total=False,
        )
        return await _current_query(call, chosen)

    del args
    return await query_changes(
        call,
        kind="Mailbox",
        encode=encode,
        current=current,
        condition=_condition,
        sort_properties=SORT_PROPERTIES,
        extra_arguments=("sortAsTree", "filterAsTree"),
    )


# -- set --------------------------------------------------------------------------------


def _mailbox(sctx: SetContext, object_id: str) -> Mailbox:
    number = decode(object_id)
    found = (
        mailboxes.get_mailbox_by_id(sctx.ctx.conn, sctx.account_id, number)
        if number is not None
        else None
    )
    if found is None:
        raise SetError("notFound")
    return found


def _parent_path(sctx: SetContext, value: object) -> tuple[str, int | None]:
    """The full path prefix and id of the parent named by ``parentId`` (None: top)."""
    if value is None:
        return "", None
    resolved = sctx.resolve_id(value)
    if resolved is None:
        raise invalid_properties("parentId", description="no such parent mailbox")
    number = decode(resolved)
    parent = (
        mailboxes.get_mailbox_by_id(sctx.ctx.conn, sctx.account_id, number)
        if number is not None
        else None
    )
    if parent is None:
        raise invalid_properties("parentId", description="no such parent mailbox")
    return parent.name + DELIMITER, parent.id


def _check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_properties("name", description="a mailbox needs a non-empty name")
    if DELIMITER in value:
        raise invalid_properties("name", description=f"a name cannot contain {DELIMITER!r}")
    return value


def _refusal(error: Refused, field: str) -> SetError:
    if error.reason is Reason.ALREADY_EXISTS:
        return SetError("invalidProperties", error.message, properties=[field])
    if error.reason is Reason.INVALID:
        return SetError("invalidProperties", error.message, properties=[field])
    if error.reason is Reason.HAS_CHILDREN:
        return SetError("mailboxHasChild", error.message)
    if error.reason is Reason.NOT_FOUND:
        return SetError("notFound", error.message)
    return SetError("forbidden", error.message)


def _check_types(properties: dict[str, Any]) -> None:
    bad = [p for p in properties if p not in PROPERTIES]
    if bad:
        raise invalid_properties(*bad, description="unknown properties")
    if "sortOrder" in properties and (
        isinstance(properties["sortOrder"], bool)
        or not isinstance(properties["sortOrder"], int)
        or not 0 <= properties["sortOrder"] < 2**31
    ):
        raise invalid_properties("sortOrder", description="sortOrder is an UnsignedInt")
    if "isSubscribed" in properties and not isinstance(properties["isSubscribed"], bool):
        raise invalid_properties("isSubscribed", description="isSubscribed is a Boolean")
    if (
        "role" in properties
        and properties["role"] is not None
        and (not isinstance(properties["role"], str) or properties["role"] not in mailboxes.ROLES)
    ):
        raise invalid_properties("role", description="unknown role")


def _create(
    sctx: SetContext, creation_id: str, properties: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """RFC 8621 §2.5 create."""
    del creation_id
    _check_types(properties)
    server_set = [p for p in SERVER_SET if p in properties]
    if server_set:
        raise invalid_properties(*server_set, description="these properties are set by the server")
    name = _check_name(properties.get("name"))
    prefix, _parent_id = _parent_path(sctx, properties.get("parentId"))
    role = properties.get("role")
    if role == "inbox":
        raise invalid_properties("role", description="only INBOX has the inbox role")
    try:
        created = mailboxes.create_mailbox(
            sctx.ctx,
            sctx.account_id,
            prefix + name,
            role=role,
            subscribed=properties.get("isSubscribed", True),
        )
    except Refused as error:
        field = "role" if "role" in error.message else "name"
        raise _refusal(error, field) from None
    if "sortOrder" in properties:
        jmap_mailboxes.set_sort_order(
            sctx.ctx, sctx.account_id, created.id, properties["sortOrder"]
        )
        created = mailboxes.get_mailbox_by_id(sctx.ctx.conn, sctx.account_id, created.id) or created
    result = to_json(created, jmap_mailboxes.JmapCounts())
    return result["id"], {
        key: result[key]
        for key in (*SERVER_SET, "sortOrder", "isSubscribed", "role", "parentId")
        if key != "id" and key not in properties
    }


def _update(sctx: SetContext, object_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
    """RFC 8621 §2.5 update (rename, move, role, sortOrder, isSubscribed)."""
    from hirondelle.jmap.pointer import PatchError, apply_patch

    mailbox = _mailbox(sctx, object_id)
    current = to_json(mailbox, jmap_mailboxes.JmapCounts())
    try:
        wanted = apply_patch(current, patch)
    except PatchError as error:
        raise SetError("invalidPatch", str(error)) from None
    for key in ("parentId", "role"):
        wanted.setdefault(key, None)
    changed = {k for k in PROPERTIES if wanted.get(k) != current.get(k)}
    unknown = [k for k in wanted if k not in PROPERTIES]
    if unknown:
        raise invalid_properties(*unknown, description="unknown properties")
    read_only = sorted(
        changed & set(SERVER_SET) - {"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"}
    )
    # Counts are computed (left at zero above): a patch naming them is refused too.
    read_only += sorted(
        k for k in patch if k.split("/")[0] in SERVER_SET and k.split("/")[0] != "id"
    )
    if read_only:
        raise invalid_properties(
            *sorted(set(read_only)), description="these properties are set by the server"
        )
    _check_types({k: wanted.get(k) for k in changed})
    if {"name", "parentId"} & changed:
        if mailbox.name == INBOX:
            raise SetError("forbidden", "the inbox cannot be renamed or moved")
        name = _check_name(wanted.get("name"))
        prefix, parent_id = _parent_path(sctx, wanted.get("parentId"))
        if parent_id == mailbox.id:
            raise invalid_properties("parentId", description="a mailbox cannot be its own parent")
        try:
            mailboxes.rename_mailbox(sctx.ctx, sctx.account_id, mailbox.id, prefix + name)
        except Refused as error:
            raise _refusal(error, "parentId" if "parentId" in changed else "name") from None
    if "role" in changed:
        if mailbox.role == "inbox":
            raise invalid_properties("role", description="the inbox keeps its role")
        try:
            jmap_mailboxes.set_role(sctx.ctx, sctx.account_id, mailbox.id, wanted.get("role"))
        except Refused as error:
            raise _refusal(error, "role") from None
    if "sortOrder" in changed:
        jmap_mailboxes.set_sort_order(sctx.ctx, sctx.account_id, mailbox.id, wanted["sortOrder"])
    if "isSubscribed" in changed:
        mailboxes.set_subscribed(
            sctx.ctx, sctx.account_id, mailbox.id, bool(wanted["isSubscribed"])
        )
    return None


@method("Mailbox/set", capability=MAIL)
async def mailbox_set(call: Call) -> dict[str, Any]:
    """RFC 8621 §2.5, with ``onDestroyRemoveEmails``."""
    remove_emails = boolean(call, "onDestroyRemoveEmails", default=False)

    def destroy(sctx: SetContext, object_id: str) -> None:
        mailbox = _mailbox(sctx, object_id)
        if mailbox.name == INBOX:
            raise SetError("forbidden", "the inbox cannot be destroyed")
        if mailboxes.children(sctx.ctx.conn, sctx.account_id, mailbox.id):
            raise SetError("mailboxHasChild", "destroy or move its children first")
        if not remove_emails and jmap_mailboxes.mailbox_has_email(sctx.ctx.conn, mailbox.id):
            raise SetError("mailboxHasEmail", "the mailbox has emails (see onDestroyRemoveEmails)")
        try:
            mailbox_rules.delete_in(sctx.ctx, sctx.account_id, mailbox)
        except Refused as error:
            raise _refusal(error, "id") from None

    return await run_set(
        call,
        create=_create,
        update=_update,
        destroy=destroy,
        decode=decode,
        extra_arguments=("onDestroyRemoveEmails",),
    )
