"""RFC 9670 JMAP Sharing, the Principal part: Principal/get, /changes, /query,
/queryChanges (§2-§3), read-only, over the domain directory.

The principals a user sees are the enabled accounts of their own domain
(``GroupwareService.directory_accounts``, the same list as the CardDAV ``Directory``
address book): what the webmail needs to complete addresses. Each is ``type``
"individual", named by its display name (else its address), with its address as
``email``; ``accounts`` is given for the user's own principal only (the one account
they can reach), null for the others, since nothing is shared between accounts yet.

Deliberate choices:

- The state is a digest of the list (ids, names, addresses): it changes exactly when
  what Principal/get shows changes. The directory keeps no history, so
  ``Principal/changes`` from another state is ``cannotCalculateChanges`` (the client
  fetches the list again), and ``Principal/queryChanges`` likewise.
- Principal/set is not offered: names and addresses are the administrator's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hirondelle.jmap import ids
from hirondelle.jmap.api import PRINCIPALS, Call, method
from hirondelle.jmap.errors import MethodError
from hirondelle.jmap.standard import (
    FilterOperator,
    get_args,
    get_response_of,
    invalid,
    known_arguments,
    parse_filter,
    parse_sort,
    query_args,
    unsigned_int,
    window,
)
from hirondelle.store.directory import Account

PRINCIPAL_PREFIX = "P"
PROPERTIES = (
    "id",
    "type",
    "name",
    "description",
    "email",
    "timeZone",
    "capabilities",
    "accounts",
)
FILTER_CONDITIONS = ("accountIds", "email", "name", "text", "type", "timeZone")
SORT_PROPERTIES = ("name", "email")


def encode(account_id: int) -> str:
    return ids.encode(PRINCIPAL_PREFIX, account_id)


def account_capability(account: Account) -> dict[str, Any]:
    """RFC 9670 §1.2 account capability of ``urn:ietf:params:jmap:principals``."""
    return {"currentUserPrincipalId": encode(account.id)}


def _principal(account: Account, *, me: Account) -> dict[str, Any]:
    accounts = None
    if account.id == me.id:
        accounts = {
            ids.account(me.id): {
                "name": me.address,
                "isPersonal": True,
                "isReadOnly": False,
                "accountCapabilities": {},
            }
        }
    return {
        "id": encode(account.id),
        "type": "individual",
        "name": account.display_name or account.address,
        "description": None,
        "email": account.address,
        "timeZone": None,
        "capabilities": {},
        "accounts": accounts,
    }


async def _directory(call: Call) -> tuple[str, list[dict[str, Any]]]:
    """(state, every principal) now."""
    found = await call.services.groupware.directory_accounts(call.account)
    principals = [_principal(a, me=call.account) for a in sorted(found, key=lambda a: a.id)]
    digest = hashlib.sha256()
    for p in principals:
        digest.update(f"{p['id']}\x00{p['name']}\x00{p['email']}\x01".encode())
    return "d" + digest.hexdigest()[:24], principals


@method("Principal/get", capability=PRINCIPALS)
async def principal_get(call: Call) -> dict[str, Any]:
    """RFC 9670 §3.1 (RFC 8620 §5.1)."""
    args = get_args(call, properties=PROPERTIES)
    state, principals = await _directory(call)
    return get_response_of(call, args, state=state, objects=principals)


@method("Principal/changes", capability=PRINCIPALS)
async def principal_changes(call: Call) -> dict[str, Any]:
    """RFC 9670 §3.2 (RFC 8620 §5.2): nothing changed, or cannotCalculateChanges."""
    known_arguments(call, ["sinceState", "maxChanges"])
    since = call.args.get("sinceState")
    if not isinstance(since, str):
        raise invalid("sinceState", "sinceState must be a state string")
    max_changes = unsigned_int(call, "maxChanges")
    if max_changes == 0:
        raise invalid("maxChanges", "maxChanges must be greater than 0")
    state, _principals = await _directory(call)
    if since != state:
        raise MethodError(
            "cannotCalculateChanges", "the directory changed; fetch the principals again"
        )
    return {
        "accountId": call.account_id_string,
        "oldState": since,
        "newState": state,
        "hasMoreChanges": False,
        "created": [],
        "updated": [],
        "destroyed": [],
    }


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    """RFC 9670 §3.3.1 FilterCondition, checked."""
    for key, value in condition.items():
        if key not in FILTER_CONDITIONS:
            raise MethodError("unsupportedFilter", f"unknown Principal filter {key!r}")
        if key == "accountIds":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise MethodError(
                    "invalidArguments", "accountIds is a String[]", arguments=["filter"]
                )
        elif not isinstance(value, str):
            raise MethodError("invalidArguments", f"{key} is a String", arguments=["filter"])
    return condition


def _contains(value: object, needle: str) -> bool:
    return isinstance(value, str) and needle.casefold() in value.casefold()


def _matches(principal: dict[str, Any], tree: Any) -> bool:
    if tree is None:
        return True
    if isinstance(tree, FilterOperator):
        results = (_matches(principal, c) for c in tree.conditions)
        if tree.operator == "AND":
            return all(results)
        if tree.operator == "OR":
            return any(results)
        return not any(results)
    for key, value in tree.items():
        if key == "accountIds":
            if not set(value) & set(principal["accounts"] or {}):
                return False
        elif key == "type":
            if principal["type"] != value:
                return False
        elif key == "timeZone":
            if principal["timeZone"] != value:
                return False
        elif key == "text":
            fields = (principal["name"], principal["email"], principal["description"])
            if not any(_contains(f, value) for f in fields):
                return False
        elif not _contains(principal[key], value):
            return False
    return True


@method("Principal/query", capability=PRINCIPALS)
async def principal_query(call: Call) -> dict[str, Any]:
    """RFC 9670 §3.3: filters accountIds, email, name, text (name, email, description),
    type, timeZone; case-insensitive substrings. Sorted by name, then email, unless
    asked otherwise."""
    args = query_args(call, condition=_condition, sort_properties=SORT_PROPERTIES)
    state, principals = await _directory(call)
    matched = [p for p in principals if _matches(p, args.filter)]
    matched.sort(key=lambda p: (p["name"].casefold(), p["email"]))
    for comparator in reversed(args.sort):
        matched.sort(
            key=lambda p, prop=comparator.property: str(p[prop]).casefold(),  # type: ignore[misc]
            reverse=not comparator.is_ascending,
        )
    return window(
        call, [p["id"] for p in matched], args, query_state=state, can_calculate_changes=False
    )


@method("Principal/queryChanges", capability=PRINCIPALS)
async def principal_query_changes(call: Call) -> dict[str, Any]:
    """RFC 9670 §3.4: no change, or cannotCalculateChanges (the directory keeps no
    history, see the module docstring)."""
    known_arguments(
        call, ["filter", "sort", "sinceQueryState", "maxChanges", "upToId", "calculateTotal"]
    )
    since = call.args.get("sinceQueryState")
    if not isinstance(since, str):
        raise invalid("sinceQueryState", "sinceQueryState must be a state string")
    parse_filter(call.args.get("filter"), _condition)
    parse_sort(call.args.get("sort"), SORT_PROPERTIES)
    state, principals = await _directory(call)
    if since != state:
        raise MethodError("cannotCalculateChanges", "the directory changed; query again")
    response: dict[str, Any] = {
        "accountId": call.account_id_string,
        "oldQueryState": since,
        "newQueryState": state,
        "removed": [],
        "added": [],
    }
    if call.args.get("calculateTotal") is True:
        tree = parse_filter(call.args.get("filter"), _condition)
        response["total"] = sum(1 for p in principals if _matches(p, tree))
    return response
