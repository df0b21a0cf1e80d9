"""The standard methods of RFC 8620 §5, written once for every data type.

- :func:`get_args` / :func:`get_response`: §5.1 ``Foo/get`` (ids, properties,
  maxObjectsInGet, notFound).
- :func:`changes`: §5.2 ``Foo/changes`` on the change journal (store/journal.py does the
  created/updated/destroyed folding and the paging at modseq boundaries).
- :func:`run_set`: §5.3 ``Foo/set``: ``ifInState``, create/update/destroy in one
  transaction, each object in a savepoint so one refusal undoes only itself, creation
  ids (``#id``), oldState/newState.
- :func:`query_args`, :func:`parse_filter`, :func:`parse_sort`, :func:`window`: §5.5
  ``Foo/query`` (position, anchor, anchorOffset, limit, calculateTotal).
- :func:`query_changes`: §5.6 ``Foo/queryChanges``.

State strings are the account's modseq in decimal (DESIGN.md "The change journal":
state = modseq). It moves when anything of the account changes; a ``Foo/changes`` from
a state where nothing of Foo changed answers with empty lists and the current state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Refused
from hirondelle.jmap import ids
from hirondelle.jmap.api import Call
from hirondelle.jmap.errors import MethodError, SetError, set_error_of
from hirondelle.store import journal
from hirondelle.store.database import WriteContext

MAX_CHANGES_DEFAULT = 5000


# -- states ---------------------------------------------------------------------------


def state_string(modseq: int) -> str:
    return str(modseq)


def parse_state(value: object) -> int | None:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 18 or value != str(int(value)):
        return None
    return int(value)


def account_modseq(conn: Connection, account_id: int) -> int:
    return journal.account_modseq(conn, account_id)[0]


async def current_state(call: Call) -> str:
    """The state string of every type of the call's account, now."""
    modseq = await call.services.database.read(lambda conn: account_modseq(conn, call.account_id))
    return state_string(modseq)


# -- argument checks ------------------------------------------------------------------


def invalid(argument: str, description: str) -> MethodError:
    return MethodError("invalidArguments", description, arguments=[argument])


def known_arguments(call: Call, allowed: Iterable[str]) -> None:
    """RFC 8620 §3.6.2 invalidArguments for an argument the method does not take."""
    allowed_set = set(allowed) | {"accountId"}
    for name in call.args:
        if name not in allowed_set:
            raise invalid(name, f"unknown argument {name!r}")


def unsigned_int(call: Call, name: str, *, default: int | None = None) -> int | None:
    value = call.args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**53 - 1:
        raise invalid(name, f"{name} must be an UnsignedInt")
    return value


def boolean(call: Call, name: str, *, default: bool) -> bool:
    value = call.args.get(name, default)
    if not isinstance(value, bool):
        raise invalid(name, f"{name} must be a boolean")
    return value


# -- /get -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetArgs:
    # Requested ids, "#creationId" already resolved; None = every object.
    ids: list[str] | None
    # What the client asked for when it named a creation id that does not exist.
    unresolved: list[str]
    # None = the type's default properties; "id" is always in.
    properties: list[str] | None


def get_args(
    call: Call,
    *,
    properties: Iterable[str],
    extra_arguments: Iterable[str] = (),
) -> GetArgs:
    """RFC 8620 §5.1 arguments of Foo/get, checked."""
    known_arguments(call, ["ids", "properties", *extra_arguments])
    raw_ids = call.args.get("ids")
    wanted: list[str] | None = None
    unresolved: list[str] = []
    if raw_ids is not None:
        if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
            raise invalid("ids", "ids must be an array of Id or null")
        if len(raw_ids) > call.limits.max_objects_in_get:
            raise MethodError(
                "requestTooLarge", f"at most {call.limits.max_objects_in_get} ids in one /get"
            )
        wanted = []
        for raw in dict.fromkeys(raw_ids):
            resolved = call.resolve_id(raw)
            if resolved is None:
                if not raw.startswith("#") and not ids.valid(raw):
                    raise invalid("ids", f"{raw!r} is not a valid Id")
                unresolved.append(raw)
            else:
                wanted.append(resolved)
    raw_properties = call.args.get("properties")
    chosen: list[str] | None = None
    if raw_properties is not None:
        if not isinstance(raw_properties, list) or not all(
            isinstance(p, str) for p in raw_properties
        ):
            raise invalid("properties", "properties must be an array of strings or null")
        allowed = set(properties)
        unknown = [p for p in raw_properties if p not in allowed]
        if unknown:
            raise invalid("properties", f"unknown properties: {', '.join(unknown)}")
        chosen = list(dict.fromkeys(["id", *raw_properties]))
    return GetArgs(wanted, unresolved, chosen)


def get_response(
    call: Call,
    *,
    state: str,
    objects: Sequence[dict[str, Any]],
    not_found: Sequence[str],
    properties: Sequence[str] | None,
) -> dict[str, Any]:
    """RFC 8620 §5.1 response, keeping only the requested ``properties``."""
    if properties is not None:
        objects = [{p: obj[p] for p in properties if p in obj} for obj in objects]
    return {
        "accountId": call.account_id_string,
        "state": state,
        "list": list(objects),
        "notFound": list(not_found),
    }


def get_response_of(
    call: Call, args: GetArgs, *, state: str, objects: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """RFC 8620 §5.1 response when ``objects`` holds every object of the type: those the
    client asked for, in its order, and the rest of its ids as ``notFound``."""
    if args.ids is None:
        chosen, not_found = list(objects), list(args.unresolved)
    else:
        by_id = {obj["id"]: obj for obj in objects}
        chosen = [by_id[i] for i in args.ids if i in by_id]
        not_found = [i for i in args.ids if i not in by_id] + args.unresolved
    return get_response(
        call, state=state, objects=chosen, not_found=not_found, properties=args.properties
    )


# -- /changes ---------------------------------------------------------------------------


async def changes(
    call: Call,
    *,
    kind: str,
    encode: Callable[[int], str],
    updated_properties: list[str] | None = None,
    extra_arguments: Iterable[str] = (),
    extra_response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """RFC 8620 §5.2 Foo/changes over the journal rows of ``kind``."""
    known_arguments(call, ["sinceState", "maxChanges", *extra_arguments])
    since = parse_state(call.args.get("sinceState"))
    if since is None:
        if not isinstance(call.args.get("sinceState"), str):
            raise invalid("sinceState", "sinceState must be a state string")
        raise MethodError("cannotCalculateChanges", "this state string was not made here")
    max_changes = unsigned_int(call, "maxChanges")
    if max_changes == 0:
        raise invalid("maxChanges", "maxChanges must be greater than 0")
    limit = min(max_changes or MAX_CHANGES_DEFAULT, MAX_CHANGES_DEFAULT)

    def read(conn: Connection) -> journal.Changes:
        return journal.changes_since(conn, call.account_id, kind, since, max_changes=limit)

    try:
        found = await call.services.database.read(read)
    except journal.CannotCalculateChanges as exc:
        raise MethodError("cannotCalculateChanges", str(exc)) from None
    response: dict[str, Any] = {
        "accountId": call.account_id_string,
        "oldState": call.args["sinceState"],
        "newState": state_string(found.new_modseq),
        "hasMoreChanges": found.has_more,
        "created": [encode(i) for i in found.created],
        "updated": [encode(i) for i in found.updated],
        "destroyed": [encode(i) for i in found.destroyed],
    }
    if extra_response:
        response.update(extra_response)
    if updated_properties is not None:
        response["updatedProperties"] = updated_properties
    return response


# -- /set -------------------------------------------------------------------------------


@dataclass
class SetContext:
    """What the per-object functions of a /set receive: the write transaction, the call,
    and the ids created so far in this request (this /set's own included)."""

    ctx: WriteContext
    call: Call
    created_ids: dict[str, str] = field(default_factory=dict)

    @property
    def account_id(self) -> int:
        return self.call.account_id

    def resolve_id(self, value: object) -> str | None:
        """An Id value with ``#creationId`` resolved (None when unknown or not an Id)."""
        if isinstance(value, str) and value.startswith("#"):
            key = value[1:]
            return self.created_ids.get(key) or self.call.request.created_ids.get(key)
        return value if isinstance(value, str) and ids.valid(value) else None


# create(sctx, creation_id, properties) -> (id, the server-set properties to return)
CreateFunction = Callable[[SetContext, str, dict[str, Any]], tuple[str, dict[str, Any]]]
# update(sctx, id, patch) -> the properties the server changed beyond the patch, or None
UpdateFunction = Callable[[SetContext, str, dict[str, Any]], dict[str, Any] | None]
# destroy(sctx, id) -> None
DestroyFunction = Callable[[SetContext, str], None]


@dataclass
class _SetResult:
    old_modseq: int = 0
    new_modseq: int = 0
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_ids: dict[str, str] = field(default_factory=dict)
    not_created: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    not_updated: dict[str, dict[str, Any]] = field(default_factory=dict)
    destroyed: list[str] = field(default_factory=list)
    not_destroyed: dict[str, dict[str, Any]] = field(default_factory=dict)


def _object_map(call: Call, name: str) -> dict[str, Any]:
    value = call.args.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(name, f"{name} must be an object or null")
    return value


def set_arguments(
    call: Call, *, extra_arguments: Iterable[str] = ()
) -> tuple[int | None, dict[str, Any], dict[str, Any], list[str]]:
    """RFC 8620 §5.3 arguments: (ifInState, create, update, destroy), checked."""
    known_arguments(call, ["ifInState", "create", "update", "destroy", *extra_arguments])
    if_in_state: int | None = None
    raw_state = call.args.get("ifInState")
    if raw_state is not None:
        if not isinstance(raw_state, str):
            raise invalid("ifInState", "ifInState must be a state string or null")
        parsed = parse_state(raw_state)
        # A state this server never made cannot be the current one.
        if_in_state = parsed if parsed is not None else -1
    create = _object_map(call, "create")
    update = _object_map(call, "update")
    destroy = call.args.get("destroy") or []
    if not isinstance(destroy, list) or not all(isinstance(d, str) for d in destroy):
        raise invalid("destroy", "destroy must be an array of Id or null")
    if any(not isinstance(v, dict) for v in create.values()):
        raise invalid("create", "each object to create must be a JSON object")
    if any(not isinstance(v, dict) for v in update.values()):
        raise invalid("update", "each patch must be a JSON object")
    if len(create) + len(update) + len(destroy) > call.limits.max_objects_in_set:
        raise MethodError(
            "requestTooLarge", f"at most {call.limits.max_objects_in_set} objects in one /set"
        )
    return if_in_state, create, update, list(destroy)


def _savepoint_run(sctx: SetContext, function: Callable[[], Any]) -> Any:
    """Run one object's change in a savepoint: a refusal undoes only that object, and
    the write context forgets the modseq bump and journal kinds it may have made."""
    ctx = sctx.ctx
    saved_modseqs = dict(ctx._modseqs)
    saved_kinds = {k: set(v) for k, v in ctx._kinds.items()}
    saved_after = list(ctx._after_commit)
    savepoint = ctx.conn.begin_nested()
    try:
        result = function()
    except BaseException:
        savepoint.rollback()
        ctx._modseqs.clear()
        ctx._modseqs.update(saved_modseqs)
        ctx._kinds.clear()
        ctx._kinds.update(saved_kinds)
        ctx._after_commit[:] = saved_after
        raise
    savepoint.commit()
    return result


async def run_set(
    call: Call,
    *,
    create: CreateFunction | None,
    update: UpdateFunction | None,
    destroy: DestroyFunction | None,
    decode: Callable[[str], int | None] | None = None,
    extra_arguments: Iterable[str] = (),
) -> dict[str, Any]:
    """RFC 8620 §5.3 Foo/set: one transaction, checked against ``ifInState`` inside it.

    Creates run first in the order given, then updates, then destroys (§5.3: "the
    server MUST process creates, then updates, then destroys"). A per-object function
    raises :class:`SetError` (or :class:`Refused`, mapped by reason) to refuse that
    object only. ``decode`` turns an id into the store id (unknown ids -> notFound
    before the function is called).
    """
    if_in_state, to_create, to_update, to_destroy = set_arguments(
        call, extra_arguments=extra_arguments
    )
    if to_create and create is None:
        raise invalid("create", "this type cannot be created")
    if to_update and update is None:
        raise invalid("update", "this type cannot be updated")
    if to_destroy and destroy is None:
        raise invalid("destroy", "this type cannot be destroyed")

    def refused(error: Exception) -> dict[str, Any]:
        if isinstance(error, SetError):
            return error.to_json()
        assert isinstance(error, Refused)
        return set_error_of(error).to_json()

    def write(ctx: WriteContext) -> _SetResult:
        # May run twice (group commit): everything it decides lives in ``result``.
        result = _SetResult()
        current = account_modseq(ctx.conn, call.account_id)
        if if_in_state is not None and if_in_state != current:
            raise MethodError(
                "stateMismatch", f"the state is {current}, not {call.args['ifInState']}"
            )
        result.old_modseq = current
        sctx = SetContext(ctx, call, result.created_ids)
        for creation_id, properties in to_create.items():
            assert create is not None
            try:
                new_id, extra = _savepoint_run(
                    sctx, functools.partial(create, sctx, creation_id, properties)
                )
            except (SetError, Refused) as error:
                result.not_created[creation_id] = refused(error)
                continue
            result.created_ids[creation_id] = new_id
            result.created[creation_id] = {"id": new_id, **extra}
        destroying = {sctx.resolve_id(raw) or raw for raw in to_destroy}
        for raw_id, patch in to_update.items():
            assert update is not None
            object_id = sctx.resolve_id(raw_id)
            if object_id is None or (decode is not None and decode(object_id) is None):
                result.not_updated[raw_id] = SetError("notFound").to_json()
                continue
            if object_id in destroying:
                # RFC 8620 §5.3: an object both updated and destroyed is not updated.
                result.not_updated[raw_id] = SetError(
                    "willDestroy", "the object is destroyed in the same call"
                ).to_json()
                continue
            try:
                changed = _savepoint_run(sctx, functools.partial(update, sctx, object_id, patch))
            except (SetError, Refused) as error:
                result.not_updated[raw_id] = refused(error)
                continue
            result.updated[object_id] = changed
        for raw_id in dict.fromkeys(to_destroy):
            assert destroy is not None
            object_id = sctx.resolve_id(raw_id)
            if object_id is None or (decode is not None and decode(object_id) is None):
                result.not_destroyed[raw_id] = SetError("notFound").to_json()
                continue
            try:
                _savepoint_run(sctx, functools.partial(destroy, sctx, object_id))
            except (SetError, Refused) as error:
                result.not_destroyed[raw_id] = refused(error)
                continue
            result.destroyed.append(object_id)
        result.new_modseq = account_modseq(ctx.conn, call.account_id)
        return result

    outcome = await call.services.database.write(write)
    for creation_id, new_id in outcome.created_ids.items():
        call.created(creation_id, new_id)
    return {
        "accountId": call.account_id_string,
        "oldState": state_string(outcome.old_modseq),
        "newState": state_string(outcome.new_modseq),
        "created": outcome.created or None,
        "updated": outcome.updated or None,
        "destroyed": outcome.destroyed or None,
        "notCreated": outcome.not_created or None,
        "notUpdated": outcome.not_updated or None,
        "notDestroyed": outcome.not_destroyed or None,
    }


# -- /query -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparator:
    """RFC 8620 §5.5 Comparator; ``extra`` keeps type-specific members (e.g. RFC 8621
    ``keyword``)."""

    property: str
    is_ascending: bool = True
    collation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FilterOperator:
    operator: str  # "AND" | "OR" | "NOT"
    conditions: list[Any]


@dataclass(frozen=True, slots=True)
class QueryArgs:
    filter: Any  # None | FilterOperator | whatever the condition parser returns
    sort: list[Comparator]
    position: int
    anchor: str | None
    anchor_offset: int
    limit: int | None
    calculate_total: bool


def parse_filter(
    value: object, condition: Callable[[dict[str, Any]], Any], *, depth: int = 0
) -> Any:
    """RFC 8620 §5.5 filter: a FilterOperator tree over conditions that ``condition``
    checks (raising MethodError unsupportedFilter / invalidArguments)."""
    if value is None and depth == 0:
        return None
    if not isinstance(value, dict):
        raise MethodError("invalidArguments", "a filter must be an object", arguments=["filter"])
    if depth > 32:
        raise MethodError("unsupportedFilter", "the filter is nested too deeply")
    if "operator" in value:
        operator = value.get("operator")
        conditions = value.get("conditions")
        if operator not in ("AND", "OR", "NOT") or not isinstance(conditions, list):
            raise MethodError(
                "invalidArguments",
                "a FilterOperator has operator AND, OR or NOT and a conditions array",
                arguments=["filter"],
            )
        if set(value) - {"operator", "conditions"}:
            raise MethodError("unsupportedFilter", "unknown member in a FilterOperator")
        return FilterOperator(
            operator, [parse_filter(c, condition, depth=depth + 1) for c in conditions]
        )
    return condition(value)


def parse_sort(
    value: object, properties: Iterable[str], *, extra_members: Iterable[str] = ()
) -> list[Comparator]:
    """RFC 8620 §5.5 sort: Comparators on the given properties (unsupportedSort otherwise)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MethodError("invalidArguments", "sort must be an array", arguments=["sort"])
    allowed = set(properties)
    members = {"property", "isAscending", "collation", *extra_members}
    result = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("property"), str):
            raise MethodError(
                "invalidArguments", "each Comparator needs a property", arguments=["sort"]
            )
        if item["property"] not in allowed:
            raise MethodError("unsupportedSort", f"cannot sort on {item['property']!r}")
        unknown = set(item) - members
        if unknown:
            raise MethodError("unsupportedSort", f"unknown Comparator members {sorted(unknown)}")
        ascending = item.get("isAscending", True)
        collation = item.get("collation")
        if not isinstance(ascending, bool) or not (collation is None or isinstance(collation, str)):
            raise MethodError(
                "invalidArguments",
                "isAscending is a boolean, collation a string",
                arguments=["sort"],
            )
        if collation is not None and collation not in ("i;ascii-casemap", "i;unicode-casemap"):
            raise MethodError("unsupportedSort", f"unsupported collation {collation!r}")
        extra = {k: v for k, v in item.items() if k not in ("property", "isAscending", "collation")}
        result.append(Comparator(item["property"], ascending, collation, extra))
    return result


def query_args(
    call: Call,
    *,
    condition: Callable[[dict[str, Any]], Any],
    sort_properties: Iterable[str],
    sort_members: Iterable[str] = (),
    extra_arguments: Iterable[str] = (),
) -> QueryArgs:
    """RFC 8620 §5.5 arguments of Foo/query, checked."""
    known_arguments(
        call,
        [
            "filter",
            "sort",
            "position",
            "anchor",
            "anchorOffset",
            "limit",
            "calculateTotal",
            *extra_arguments,
        ],
    )
    position = call.args.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, int):
        raise invalid("position", "position must be an Int")
    anchor = call.args.get("anchor")
    if anchor is not None and not isinstance(anchor, str):
        raise invalid("anchor", "anchor must be an Id or null")
    anchor_offset = call.args.get("anchorOffset", 0)
    if isinstance(anchor_offset, bool) or not isinstance(anchor_offset, int):
        raise invalid("anchorOffset", "anchorOffset must be an Int")
    limit = unsigned_int(call, "limit")
    return QueryArgs(
        filter=parse_filter(call.args.get("filter"), condition),
        sort=parse_sort(call.args.get("sort"), sort_properties, extra_members=sort_members),
        position=position,
        anchor=call.resolve_id(anchor) if anchor is not None else None,
        anchor_offset=anchor_offset,
        limit=limit,
        calculate_total=boolean(call, "calculateTotal", default=False),
    )


def window(
    call: Call,
    result_ids: Sequence[str],
    args: QueryArgs,
    *,
    query_state: str,
    can_calculate_changes: bool = True,
    max_limit: int = 10_000,
) -> dict[str, Any]:
    """RFC 8620 §5.5 response for the full, sorted result ``result_ids``: the window
    chosen by position or anchor/anchorOffset, and limit."""
    total = len(result_ids)
    limit = min(args.limit, max_limit) if args.limit is not None else max_limit
    if args.anchor is not None:
        try:
            anchor_index = list(result_ids).index(args.anchor)
        except ValueError:
            raise MethodError("anchorNotFound", "the anchor is not in the results") from None
        start = max(0, anchor_index + args.anchor_offset)
    elif args.position < 0:
        start = max(0, total + args.position)
    else:
        start = args.position
    chosen = list(result_ids[start : start + limit]) if start < total else []
    response: dict[str, Any] = {
        "accountId": call.account_id_string,
        "queryState": query_state,
        "canCalculateChanges": can_calculate_changes,
        "position": start if start < total else total if total else 0,
        "ids": chosen,
    }
    if args.calculate_total:
        response["total"] = total
    if args.limit is not None and args.limit > max_limit:
        response["limit"] = max_limit
    return response


async def query_changes(
    call: Call,
    *,
    kind: str,
    encode: Callable[[int], str],
    current: Callable[[], Any],
    condition: Callable[[dict[str, Any]], Any],
    sort_properties: Iterable[str],
    sort_members: Iterable[str] = (),
    extra_arguments: Iterable[str] = (),
) -> dict[str, Any]:
    """RFC 8620 §5.6 Foo/queryChanges from the journal of ``kind``.

    ``current`` is a coroutine function returning (the full sorted result now, its
    query state). Every object created, updated or destroyed since ``sinceQueryState``
    is put in ``removed``, and those in the results now are in ``added`` with their
    index: applying that to the old results gives exactly the new ones, as long as an
    object's sort position changes only when it is journaled as updated (true of every
    type here: sorted properties are columns whose writes journal the object).
    """
    known_arguments(
        call,
        [
            "filter",
            "sort",
            "sinceQueryState",
            "maxChanges",
            "upToId",
            "calculateTotal",
            *extra_arguments,
        ],
    )
    parse_filter(call.args.get("filter"), condition)
    parse_sort(call.args.get("sort"), sort_properties, extra_members=sort_members)
    raw_since = call.args.get("sinceQueryState")
    if not isinstance(raw_since, str):
        raise invalid("sinceQueryState", "sinceQueryState must be a state string")
    since = parse_state(raw_since)
    if since is None:
        raise MethodError("cannotCalculateChanges", "this query state was not made here")
    max_changes = unsigned_int(call, "maxChanges")
    if max_changes == 0:
        raise invalid("maxChanges", "maxChanges must be greater than 0")
    up_to = call.args.get("upToId")
    if up_to is not None and not isinstance(up_to, str):
        raise invalid("upToId", "upToId must be an Id or null")
    calculate_total = boolean(call, "calculateTotal", default=False)

    def read(conn: Connection) -> journal.Changes:
        return journal.changes_since(conn, call.account_id, kind, since)

    try:
        found = await call.services.database.read(read)
    except journal.CannotCalculateChanges as exc:
        raise MethodError("cannotCalculateChanges", str(exc)) from None
    result_ids, query_state = await current()
    touched = {encode(i) for i in (*found.created, *found.updated, *found.destroyed)}
    # Ids changed since the state but not in any result before (created) are still
    # listed in removed: RFC 8620 §5.6 allows it, and it costs the client nothing.
    removed = sorted(touched)
    added = [
        {"id": object_id, "index": index}
        for index, object_id in enumerate(result_ids)
        if object_id in touched
    ]
    if max_changes is not None and len(removed) + len(added) > max_changes:
        raise MethodError("tooManyChanges", f"more than {max_changes} changes")
    response: dict[str, Any] = {
        "accountId": call.account_id_string,
        "oldQueryState": raw_since,
        "newQueryState": query_state,
        "removed": removed,
        "added": added,
    }
    if calculate_total:
        response["total"] = len(result_ids)
    return response
