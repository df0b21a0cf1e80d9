"""Outcomes that domain code returns and every protocol maps to its own codes.

STYLE.md "Domain code returns outcomes; protocols map them": the store and the services
raise :class:`Refused` with a :class:`Reason`; IMAP turns it into ``NO [CODE]``, SMTP
into a 5xx/4xx with an enhanced status code, JMAP into an error type, the CLI into one
line. "Does not exist" and "not yours" are the same reason (``NOT_FOUND``), so that a
refusal never reveals that another account's object exists.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_FOUND = "not-found"
    ALREADY_EXISTS = "already-exists"
    INVALID = "invalid"
    HAS_CHILDREN = "has-children"
    IN_USE = "in-use"
    OVER_QUOTA = "over-quota"
    TOO_LARGE = "too-large"
    FORBIDDEN = "forbidden"
    CANNOT = "cannot"
    STATE_CHANGED = "state-changed"


class Refused(Exception):
    """A request the rules refuse; ``message`` is safe to show to the user."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"Refused({self.reason.name}, {self.message!r})"
