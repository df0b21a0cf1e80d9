"""The JMAP API request: parsing, the method registry, back-references and dispatch.

RFC 8620 §3.3 (Request), §3.4 (Response), §3.5 (omitting arguments), §3.6 (errors),
§3.7 (ResultReference), §5.3 (creation ids ``#id`` across method calls).

A method is declared once with :func:`method`; its handler receives a :class:`Call`
(the account the call is for, its arguments with every ResultReference resolved, the
request's created-ids map) and returns the response arguments or raises
:class:`~hirondelle.jmap.errors.MethodError`. Everything cross-cutting (``using``
capability check, ``accountId`` resolution, limits, error mapping) happens here, before
and after the handler, never inside it (STYLE.md "Cross-cutting features enter through
one seam").
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hirondelle.jmap import ids
from hirondelle.jmap.errors import MethodError, RequestError
from hirondelle.jmap.pointer import PointerError, evaluate
from hirondelle.services import Services
from hirondelle.store.directory import Account

log = logging.getLogger(__name__)

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
# draft-ietf-jmap-calendars (jmap/calendars.py).
CALENDARS = "urn:ietf:params:jmap:calendars"
# RFC 9610 (jmap/contacts.py) and RFC 9670 (jmap/principal.py).
CONTACTS = "urn:ietf:params:jmap:contacts"
PRINCIPALS = "urn:ietf:params:jmap:principals"

# The capabilities this server implements (session resource, ``using`` check).
CAPABILITIES = (CORE, MAIL, SUBMISSION, VACATION, CALENDARS, CONTACTS, PRINCIPALS)


@dataclass(frozen=True, slots=True)
class Limits:
    """RFC 8620 §2 core capability limits, advertised in the session and enforced."""

    max_size_upload: int = 50_000_000
    max_concurrent_upload: int = 4
    max_size_request: int = 10_000_000
    max_concurrent_requests: int = 4
    max_calls_in_request: int = 32
    max_objects_in_get: int = 1000
    max_objects_in_set: int = 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "maxSizeUpload": self.max_size_upload,
            "maxConcurrentUpload": self.max_concurrent_upload,
            "maxSizeRequest": self.max_size_request,
            "maxConcurrentRequests": self.max_concurrent_requests,
            "maxCallsInRequest": self.max_calls_in_request,
            "maxObjectsInGet": self.max_objects_in_get,
            "maxObjectsInSet": self.max_objects_in_set,
            "collationAlgorithms": ["i;ascii-casemap", "i;unicode-casemap"],
        }


@dataclass
class Request:
    """One API request being answered (shared by its method calls)."""

    services: Services
    account: Account
    using: frozenset[str]
    limits: Limits
    created_ids: dict[str, str] = field(default_factory=dict)
    responses: list[list[Any]] = field(default_factory=list)
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class Call:
    """One method call: what a handler receives."""

    name: str
    call_id: str
    args: dict[str, Any]
    request: Request
    # The store id of the account named by ``accountId`` (always the authenticated
    # account: nothing is shared between accounts yet).
    account_id: int
    _also: list[list[Any]] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return self.request.services

    @property
    def limits(self) -> Limits:
        return self.request.limits

    @property
    def account(self) -> Account:
        return self.request.account

    @property
    def account_id_string(self) -> str:
        return ids.account(self.account_id)

    def created(self, creation_id: str, object_id: str) -> None:
        """RFC 8620 §5.3: remember a creation id for ``#id`` references later in the request."""
        self.request.created_ids[creation_id] = object_id

    def resolve_id(self, value: object) -> str | None:
        """An Id argument or property value, with ``#creationId`` replaced by the id it
        created earlier in the request (None when the reference is unknown or the value
        is not an Id)."""
        if isinstance(value, str) and value.startswith("#"):
            return self.request.created_ids.get(value[1:])
        return value if isinstance(value, str) and ids.valid(value) else None

    def also(self, name: str, args: dict[str, Any]) -> None:
        """Add an implicit response after this call's own (e.g. RFC 8621 §7.5: the
        Email/set that EmailSubmission/set's onSuccessUpdateEmail makes)."""
        self._also.append([name, args, self.call_id])


Handler = Callable[[Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    capability: str
    handler: Handler
    # Whether the method takes ``accountId`` (Core/echo does not).
    takes_account: bool


METHODS: dict[str, Method] = {}


def method(
    name: str, *, capability: str, takes_account: bool = True
) -> Callable[[Handler], Handler]:
    """Declare a JMAP method: ``@method("Mailbox/get", capability=MAIL)``."""

    def register(handler: Handler) -> Handler:
        if name in METHODS:
            raise ValueError(f"JMAP method {name} declared twice")
        METHODS[name] = Method(name, capability, handler, takes_account)
        return handler

    return register


# -- request parsing ------------------------------------------------------------------


def parse_request(body: bytes) -> tuple[list[str], list[list[Any]], dict[str, str] | None]:
    """RFC 8620 §3.3: (using, methodCalls, createdIds) or RequestError notJSON/notRequest."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError("notJSON", "the request body is not valid JSON (I-JSON)") from None
    if not isinstance(document, dict):
        raise RequestError("notRequest", "the request is not a JSON object")
    using = document.get("using")
    calls = document.get("methodCalls")
    created = document.get("createdIds")
    if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
        raise RequestError("notRequest", "'using' must be an array of strings")
    if not isinstance(calls, list):
        raise RequestError("notRequest", "'methodCalls' must be an array")
    for call in calls:
        if (
            not isinstance(call, list)
            or len(call) != 3
            or not isinstance(call[0], str)
            or not isinstance(call[1], dict)
            or not isinstance(call[2], str)
        ):
            raise RequestError(
                "notRequest", "each method call must be [name, arguments object, call id]"
            )
    if created is not None and (
        not isinstance(created, dict)
        or not all(isinstance(k, str) and ids.valid(v) for k, v in created.items())
    ):
        raise RequestError("notRequest", "'createdIds' must map creation ids to ids")
    return list(using), calls, created


def resolve_references(args: dict[str, Any], responses: list[list[Any]]) -> dict[str, Any]:
    """RFC 8620 §3.7: replace every ``#name`` argument by the value its ResultReference
    points at; MethodError invalidArguments / invalidResultReference otherwise."""
    resolved: dict[str, Any] = {}
    for key, value in args.items():
        if not key.startswith("#"):
            continue
        plain = key[1:]
        if plain in args:
            raise MethodError(
                "invalidArguments", f"both {plain!r} and {key!r} are given", arguments=[plain]
            )
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("resultOf"), str)
            or not isinstance(value.get("name"), str)
            or not isinstance(value.get("path"), str)
        ):
            raise MethodError("invalidResultReference", f"{key!r} is not a ResultReference")
        for name, response, call_id in responses:
            if call_id == value["resultOf"]:
                if name != value["name"]:
                    continue
                try:
                    resolved[plain] = evaluate(response, value["path"])
                except PointerError as exc:
                    raise MethodError(
                        "invalidResultReference", f"{key!r}: {value['path']}: {exc}"
                    ) from None
                break
        else:
            raise MethodError(
                "invalidResultReference",
                f"{key!r}: no earlier {value['name']} response with id {value['resultOf']!r}",
            )
    if not resolved:
        return args
    return {
        **{k: v for k, v in args.items() if not k.startswith("#")},
        **resolved,
    }


async def run(
    services: Services, account: Account, body: bytes, *, limits: Limits
) -> dict[str, Any]:
    """RFC 8620 §3.3-§3.4: answer one API request (already authenticated)."""
    # Importing the method modules fills METHODS (done here, not at import of this
    # module, because they import it).
    from hirondelle.jmap import methods  # noqa: F401

    using, calls, created = parse_request(body)
    unknown = [u for u in using if u not in CAPABILITIES]
    if unknown:
        raise RequestError("unknownCapability", f"unsupported capabilities: {', '.join(unknown)}")
    if len(calls) > limits.max_calls_in_request:
        raise RequestError(
            "limit",
            f"at most {limits.max_calls_in_request} method calls per request",
            limit="maxCallsInRequest",
        )
    request = Request(
        services=services,
        account=account,
        using=frozenset(using),
        limits=limits,
        created_ids=dict(created or {}),
    )
    for name, args, call_id in calls:
        for response in await _call(request, name, args, call_id):
            request.responses.append(response)
    state = await session_state(services, account)
    answer: dict[str, Any] = {"methodResponses": request.responses, "sessionState": state}
    if created is not None:
        answer["createdIds"] = request.created_ids
    return answer


async def session_state(services: Services, account: Account) -> str:
    """RFC 8620 §2 ``state`` of the session resource: it changes when the accounts or
    capabilities do, which only a change of the account itself does here."""
    return f"{account.id}-{account.credentials_version}"


async def _call(request: Request, name: str, args: dict[str, Any], call_id: str) -> list[list[Any]]:
    declared = METHODS.get(name)
    if declared is None or declared.capability not in request.using:
        # RFC 8620 §3.6.2: a method of a capability not in "using" is unknown too.
        return [_error(MethodError("unknownMethod", f"{name} is not a known method"), call_id)]
    try:
        args = resolve_references(args, request.responses)
        account_id = request.account.id
        if declared.takes_account:
            wanted = args.get("accountId")
            if not isinstance(wanted, str):
                raise MethodError(
                    "invalidArguments", "accountId is required", arguments=["accountId"]
                )
            if wanted != ids.account(request.account.id):
                raise MethodError("accountNotFound", f"no account {wanted!r} here")
        call = Call(name=name, call_id=call_id, args=args, request=request, account_id=account_id)
        result = await declared.handler(call)
    except MethodError as exc:
        return [_error(exc, call_id)]
    except Exception:
        # STYLE.md: logged with context, answered without the exception text.
        log.exception("JMAP %s failed (request %s)", name, request.request_id)
        return [
            _error(
                MethodError(
                    "serverFail",
                    f"internal error; the server log has request id {request.request_id}",
                ),
                call_id,
            )
        ]
    return [[name, result, call_id], *call._also]


def _error(error: MethodError, call_id: str) -> list[Any]:
    return ["error", error.to_json(), call_id]
