"""JMAP errors at their three levels (RFC 8620 §3.6).

- Request-level (§3.6.1): the whole request is refused with an RFC 7807 problem document
  (``notJSON``, ``notRequest``, ``unknownCapability``, ``limit``).
- Method-level (§3.6.2): one method call is answered ``["error", {"type": ...}, id]``
  and the request goes on with the next call.
- Per-object SetError (§5.3): one create/update/destroy of a /set is refused, the others
  go on.

Descriptions are for developers and logs; they never carry exception text of the server
(STYLE.md "Three kinds of error"): an unexpected failure is ``serverFail`` with a request
id that the log also holds.
"""

from __future__ import annotations

from typing import Any

from hirondelle.errors import Reason, Refused

PROBLEM_PREFIX = "urn:ietf:params:jmap:error:"


class RequestError(Exception):
    """RFC 8620 §3.6.1: a problem document (RFC 7807) answering the whole request."""

    def __init__(self, kind: str, detail: str, *, status: int = 400, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_PREFIX + self.kind,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class MethodError(Exception):
    """RFC 8620 §3.6.2: an error response to one method call.

    ``extra`` holds the type's own properties (``properties`` of invalidArguments is not
    standard, but a description is).
    """

    def __init__(self, kind: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or kind)
        self.kind = kind
        self.description = description
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.kind, **self.extra}
        if self.description:
            body["description"] = self.description
        return body


class SetError(Exception):
    """RFC 8620 §5.3 SetError for one object of a /set (or /copy, /import).

    Raised inside the per-object code of a /set; the framework puts
    :meth:`to_json` into ``notCreated`` / ``notUpdated`` / ``notDestroyed``.
    """

    def __init__(
        self,
        kind: str,
        description: str | None = None,
        *,
        properties: list[str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description or kind)
        self.kind = kind
        self.description = description
        self.properties = properties
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.kind, **self.extra}
        if self.description:
            body["description"] = self.description
        if self.properties is not None:
            body["properties"] = self.properties
        return body


def invalid_properties(*names: str, description: str | None = None) -> SetError:
    return SetError("invalidProperties", description, properties=list(names))


# How the shared domain outcomes (hirondelle.errors) read as SetErrors when no more
# precise type applies; a handler maps the reasons that have a type of their own (e.g.
# HAS_CHILDREN -> mailboxHasChild) before falling back on this.
_REASON_SET_ERRORS = {
    Reason.NOT_FOUND: "notFound",
    Reason.ALREADY_EXISTS: "alreadyExists",
    Reason.INVALID: "invalidProperties",
    Reason.OVER_QUOTA: "overQuota",
    Reason.TOO_LARGE: "tooLarge",
    Reason.FORBIDDEN: "forbidden",
    Reason.CANNOT: "forbidden",
    Reason.HAS_CHILDREN: "forbidden",
    Reason.IN_USE: "forbidden",
    Reason.STATE_CHANGED: "forbidden",
}


def set_error_of(refused: Refused, *, properties: list[str] | None = None) -> SetError:
    kind = _REASON_SET_ERRORS[refused.reason]
    if kind == "invalidProperties" and properties is None:
        properties = []
    return SetError(kind, refused.message, properties=properties)
