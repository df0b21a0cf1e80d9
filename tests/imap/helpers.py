"""Helpers for the IMAP protocol tests: feed bytes, expect exactly one command."""

from __future__ import annotations

from typing import Any, TypeVar

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.parser import CommandParser, Event, ParseError

C = TypeVar("C", bound=c.Command)


def events_of(data: bytes, **options: Any) -> list[Event]:
    """All events from feeding ``data`` at once (continuations ignored)."""
    return CommandParser(**options).feed(data)


def command(data: bytes, kind: type[C], **options: Any) -> C:
    """The one command ``data`` parses to; fails the test on anything else."""
    events = [e for e in events_of(data, **options) if isinstance(e, c.Command | ParseError)]
    assert len(events) == 1, events
    assert isinstance(events[0], kind), events[0]
    return events[0]


def error(data: bytes, **options: Any) -> ParseError:
    """The one ParseError ``data`` produces."""
    events = [e for e in events_of(data, **options) if isinstance(e, c.Command | ParseError)]
    assert len(events) == 1, events
    assert isinstance(events[0], ParseError), events[0]
    return events[0]
