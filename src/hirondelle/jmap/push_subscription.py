"""RFC 8620 §7.2: PushSubscription/get and PushSubscription/set.

A push subscription belongs to the authenticated user (here: the one account), so
neither method takes an ``accountId``, and neither has a state (§7.2.1, §7.2.2). The
sending side (PushVerification, StateChange, retries, expiry) is in
``jmap/push_sender.py``.

Decisions, within what the RFC leaves to the server:

- ``url`` must be ``https://`` (§7.2 "the push service"); ``http://`` only to a
  loopback address when ``[jmap] push_allow_loopback`` is set (tests, development).
  Where the host resolves is checked when sending (push_sender).
- ``keys`` (RFC 8291 message encryption) is refused with ``invalidProperties``: no
  library for it is a dependency here. A subscription without keys gets the
  StateChange in clear (over TLS), as §7.2 allows.
- ``expires`` is clamped to :data:`MAX_LIFETIME_US` (7 days) from now, which is also
  the lifetime when the client gives none; the value kept is returned in
  ``created``/``updated`` when it differs from the client's.
- At most :data:`MAX_PER_ACCOUNT` subscriptions per account (``overQuota``).
- ``verificationCode`` is null until the client sets it to the code POSTed in the
  PushVerification; a wrong code is ``invalidProperties`` (§7.2.2).
- ``url`` and ``keys`` are write-only: asking for them in ``properties`` is
  ``forbidden`` (§7.2.1).
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime
from typing import Any

from hirondelle.jmap.api import CORE, Call, method
from hirondelle.jmap.errors import MethodError, SetError, invalid_properties
from hirondelle.jmap.push_sender import dispatcher_of, subscription_id_string, url_problem
from hirondelle.store import jmap_push
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.jmap_push import StoredSubscription

MAX_LIFETIME_US = 7 * 24 * 3600 * 1_000_000
MAX_PER_ACCOUNT = 50
PROPERTIES = ("id", "deviceClientId", "verificationCode", "expires", "types")
WRITE_ONLY = ("url", "keys")
PREFIX = "S"


def _decode_id(value: object) -> int | None:
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    digits = value[len(PREFIX) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    if digits != str(int(digits)):
        return None
    return int(digits)


def _utc_date(microseconds: int) -> str:
    return datetime.fromtimestamp(microseconds // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_utc_date(value: object) -> int | None:
    """RFC 8620 §1.4 UTCDate (``Z``, no offset) in microseconds, or None."""
    if not isinstance(value, str) or not value.endswith("Z") or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000


def _as_json(subscription: StoredSubscription, properties: tuple[str, ...]) -> dict[str, Any]:
    full: dict[str, Any] = {
        "id": subscription_id_string(subscription.id),
        "deviceClientId": subscription.device_client_id,
        # Null until the client has echoed the code: a client that lost its state
        # learns from this whether it still has to verify.
        "verificationCode": subscription.verification_code if subscription.verified else None,
        "expires": _utc_date(subscription.expires_at),
        "types": None if subscription.types is None else sorted(subscription.types),
    }
    return {p: full[p] for p in properties}


@method("PushSubscription/get", capability=CORE, takes_account=False)
async def get(call: Call) -> dict[str, Any]:
    """RFC 8620 §7.2.1: the user's subscriptions; no accountId, no state."""
    args = call.args
    unknown = set(args) - {"ids", "properties"}
    if unknown:
        raise MethodError(
            "invalidArguments",
            f"unknown arguments: {', '.join(sorted(unknown))}",
            arguments=sorted(unknown),
        )
    wanted = args.get("properties")
    if wanted is None:
        properties = PROPERTIES
    else:
        if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
            raise MethodError("invalidArguments", "properties must be a list of strings")
        if any(p in WRITE_ONLY for p in wanted):
            raise MethodError("forbidden", "url and keys are write-only")
        bad = [p for p in wanted if p not in PROPERTIES]
        if bad:
            raise MethodError("invalidArguments", f"unknown properties: {', '.join(bad)}")
        properties = tuple(dict.fromkeys(["id", *wanted]))
    requested = args.get("ids")
    if requested is not None and (
        not isinstance(requested, list) or not all(isinstance(i, str) for i in requested)
    ):
        raise MethodError("invalidArguments", "ids must be null or a list of ids")
    if requested is not None and len(requested) > call.limits.max_objects_in_get:
        raise MethodError("requestTooLarge", f"at most {call.limits.max_objects_in_get} ids")
    account_id = call.account_id
    stored = await call.services.database.read(
        lambda conn: jmap_push.account_subscriptions(conn, account_id)
    )
    now = now_us()
    by_id = {subscription_id_string(s.id): s for s in stored if s.expires_at > now}
    if requested is None:
        return {"list": [_as_json(s, properties) for s in by_id.values()], "notFound": []}
    found: list[dict[str, Any]] = []
    not_found: list[str] = []
    for raw in dict.fromkeys(requested):
        wanted_id = call.resolve_id(raw) if raw.startswith("#") else raw
        subscription = by_id.get(wanted_id) if wanted_id is not None else None
        if subscription is None:
            not_found.append(raw)
        else:
            found.append(_as_json(subscription, properties))
    return {"list": found, "notFound": not_found}


def _types(value: object) -> list[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 64
        or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in value)
    ):
        raise invalid_properties("types", description="null or a list of type names")
    return list(dict.fromkeys(value))


def _expires(value: object, *, now: int) -> int:
    """The expiry kept for a requested one (None: the longest)."""
    longest = now + MAX_LIFETIME_US
    if value is None:
        return longest
    moment = _parse_utc_date(value)
    if moment is None:
        raise invalid_properties("expires", description="a UTCDate such as 2026-12-01T10:00:00Z")
    if moment <= now:
        raise invalid_properties("expires", description="the expiry is in the past")
    return min(moment, longest)


@method("PushSubscription/set", capability=CORE, takes_account=False)
async def set_(call: Call) -> dict[str, Any]:
    """RFC 8620 §7.2.2: create, update (verificationCode, expires, types), destroy."""
    args = call.args
    unknown = set(args) - {"create", "update", "destroy"}
    if unknown:
        # ifInState is not an argument of this method (it has no state).
        raise MethodError(
            "invalidArguments",
            f"unknown arguments: {', '.join(sorted(unknown))}",
            arguments=sorted(unknown),
        )
    create = args.get("create") or {}
    update = args.get("update") or {}
    destroy = args.get("destroy") or []
    if (
        not isinstance(create, dict)
        or not isinstance(update, dict)
        or not isinstance(destroy, list)
        or not all(isinstance(d, str) for d in destroy)
    ):
        raise MethodError("invalidArguments", "create and update are maps, destroy a list of ids")
    if len(create) + len(update) + len(destroy) > call.limits.max_objects_in_set:
        raise MethodError("requestTooLarge", f"at most {call.limits.max_objects_in_set} objects")
    dispatcher = dispatcher_of(call.services)
    account_id = call.account_id
    response: dict[str, Any] = {
        "created": None,
        "updated": None,
        "destroyed": None,
        "notCreated": None,
        "notUpdated": None,
        "notDestroyed": None,
    }
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for creation_id, properties in create.items():
        try:
            subscription, answer = await _create(call, account_id, properties)
        except SetError as error:
            not_created[creation_id] = error.to_json()
            continue
        call.created(creation_id, answer["id"])
        created[creation_id] = answer
        dispatcher.created(subscription)
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for raw_id, patch in update.items():
        try:
            subscription, changed = await _update(call, account_id, raw_id, patch)
        except SetError as error:
            not_updated[raw_id] = error.to_json()
            continue
        # Keyed by the subscription's id, also when named by "#creationId" (as the
        # other /set methods here do).
        updated[subscription_id_string(subscription.id)] = changed
        dispatcher.updated(subscription)
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for raw_id in dict.fromkeys(destroy):
        resolved = call.resolve_id(raw_id) if raw_id.startswith("#") else raw_id
        number = _decode_id(resolved)
        removed = number is not None and await call.services.database.write(
            functools.partial(
                jmap_push.delete_subscription, account_id=account_id, subscription_id=number
            )
        )
        if not removed or number is None:
            not_destroyed[raw_id] = SetError("notFound").to_json()
            continue
        destroyed.append(subscription_id_string(number))
        dispatcher.destroyed(number)
    response.update(
        created=created or None,
        updated=updated or None,
        destroyed=destroyed or None,
        notCreated=not_created or None,
        notUpdated=not_updated or None,
        notDestroyed=not_destroyed or None,
    )
    return response


async def _create(
    call: Call, account_id: int, properties: object
) -> tuple[StoredSubscription, dict[str, Any]]:
    if not isinstance(properties, dict):
        raise invalid_properties(description="a PushSubscription object")
    allowed = {"deviceClientId", "url", "keys", "verificationCode", "expires", "types", "id"}
    extra = [p for p in properties if p not in allowed]
    if extra:
        raise invalid_properties(*extra, description="unknown properties")
    if "id" in properties:
        raise invalid_properties("id", description="the server sets the id")
    device = properties.get("deviceClientId")
    if not isinstance(device, str) or not 0 < len(device) <= 255:
        raise invalid_properties("deviceClientId", description="a string of 1-255 characters")
    url = properties.get("url")
    if not isinstance(url, str):
        raise invalid_properties("url", description="an https:// URL")
    problem = url_problem(url, allow_loopback=call.services.settings.jmap.push_allow_loopback)
    if problem is not None:
        raise invalid_properties("url", description=problem)
    if properties.get("keys") is not None:
        raise invalid_properties(
            "keys",
            description="encrypted push (RFC 8291) is not supported by this server; omit keys",
        )
    if properties.get("verificationCode") is not None:
        raise invalid_properties(
            "verificationCode", description="must be null at creation (RFC 8620 §7.2)"
        )
    now = now_us()
    expires_at = _expires(properties.get("expires"), now=now)
    types = _types(properties.get("types"))
    code = secrets.token_urlsafe(24)

    def write(ctx: WriteContext) -> StoredSubscription | None:
        if jmap_push.count_subscriptions(ctx.conn, account_id) >= MAX_PER_ACCOUNT:
            return None
        return jmap_push.insert_subscription(
            ctx,
            account_id=account_id,
            device_client_id=device,
            url=url,
            verification_code=code,
            expires_at=expires_at,
            types=types,
        )

    subscription = await call.services.database.write(write)
    if subscription is None:
        raise SetError("overQuota", f"at most {MAX_PER_ACCOUNT} push subscriptions per account")
    answer: dict[str, Any] = {"id": subscription_id_string(subscription.id)}
    if properties.get("expires") != _utc_date(expires_at):
        answer["expires"] = _utc_date(expires_at)
    return subscription, answer


async def _update(
    call: Call, account_id: int, raw_id: str, patch: object
) -> tuple[StoredSubscription, dict[str, Any] | None]:
    # RFC 8620 §5.3: "#creationId" names a subscription created earlier in the request.
    number = _decode_id(call.resolve_id(raw_id) if raw_id.startswith("#") else raw_id)
    if number is None:
        raise SetError("notFound")
    current = await call.services.database.read(
        lambda conn: jmap_push.get_subscription(conn, account_id, number)
    )
    if current is None or current.expires_at <= now_us():
        raise SetError("notFound")
    if not isinstance(patch, dict):
        raise invalid_properties(description="a PatchObject")
    immutable = [p for p in patch if p in ("id", "deviceClientId", "url", "keys")]
    if immutable:
        raise invalid_properties(*immutable, description="these properties cannot change")
    unknown = [p for p in patch if p not in ("verificationCode", "expires", "types")]
    if unknown:
        raise invalid_properties(*unknown, description="unknown or not patchable")
    verified: bool | None = None
    if "verificationCode" in patch:
        code = patch["verificationCode"]
        if not isinstance(code, str) or not secrets.compare_digest(
            code.encode(), current.verification_code.encode()
        ):
            raise invalid_properties(
                "verificationCode", description="not the code sent to the push URL"
            )
        verified = True
    answer: dict[str, Any] = {}
    expires_at: int | None = None
    if "expires" in patch:
        expires_at = _expires(patch["expires"], now=now_us())
        if patch["expires"] != _utc_date(expires_at):
            answer["expires"] = _utc_date(expires_at)
    set_types = "types" in patch
    types = _types(patch["types"]) if set_types else None
    updated = await call.services.database.write(
        lambda ctx: jmap_push.update_subscription(
            ctx,
            account_id,
            number,
            verified=verified,
            expires_at=expires_at,
            set_types=set_types,
            types=types,
        )
    )
    if updated is None:
        raise SetError("notFound")
    return updated, answer or None
