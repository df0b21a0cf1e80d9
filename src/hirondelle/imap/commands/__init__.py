"""IMAP command handlers, one module per family, and the dispatch table.

STYLE.md "Dispatch is explicit": :func:`handles` registers a handler for a command
type and the session states it is allowed in (RFC 9051 §3 state diagram, §6.1-§6.4);
the session looks up ``(state, command type)`` and answers BAD when the pair is absent.
Importing this package imports every family so the table is complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseCode

if TYPE_CHECKING:
    from hirondelle.imap.session import Session


class State(Enum):
    """RFC 9051 §3."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED)
AUTHENTICATED = (State.AUTHENTICATED, State.SELECTED)
SELECTED = (State.SELECTED,)


@dataclass(frozen=True, slots=True)
class Done:
    """A handler's tagged OK: its text and optional response code."""

    text: str = "completed"
    code: ResponseCode | None = None
    #: The handler has already written its tagged response (STARTTLS, COMPRESS).
    silent: bool = False


class No(Exception):
    """A tagged NO with a response code, raised by a handler."""

    def __init__(self, text: str, code: str | ResponseCode | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = ResponseCode.simple(code) if isinstance(code, str) else code


class Bad(Exception):
    """A tagged BAD (a command valid in syntax but not in meaning: a sequence number
    out of range, a mechanism in the wrong place)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = ResponseCode.simple(code) if code else None


Handler = Callable[["Session", Any], Awaitable[Done]]
C = TypeVar("C", bound=c.Command)

DISPATCH: dict[tuple[State, type[c.Command]], Handler] = {}


def handles(
    command: type[C], states: tuple[State, ...]
) -> Callable[[Callable[[Session, C], Awaitable[Done]]], Callable[[Session, C], Awaitable[Done]]]:
    """Register the decorated coroutine for ``command`` in each of ``states``."""

    def register(
        function: Callable[[Session, C], Awaitable[Done]],
    ) -> Callable[[Session, C], Awaitable[Done]]:
        for state in states:
            key = (state, command)
            if key in DISPATCH:
                raise RuntimeError(f"two handlers for {command.name} in {state}")
            DISPATCH[key] = function
        return function

    return register


def load() -> None:
    """Import every command family (filling :data:`DISPATCH`)."""
    import hirondelle.imap.commands.any_state
    import hirondelle.imap.commands.authenticate
    import hirondelle.imap.commands.fetch
    import hirondelle.imap.commands.idle
    import hirondelle.imap.commands.mailbox
    import hirondelle.imap.commands.messages
    import hirondelle.imap.commands.search
    import hirondelle.imap.commands.select  # noqa: F401
