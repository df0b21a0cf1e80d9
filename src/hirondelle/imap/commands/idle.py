"""IDLE: changes pushed as they are committed.

RFC 9051 §6.3.13 (RFC 2177): "+ idling", then untagged EXISTS, EXPUNGE (or RFC 7162
VANISHED) and FETCH FLAGS as other sessions change the mailbox, until the client sends
DONE. The bus notification is a hint; what is sent comes from the journal. The
autologout timer (RFC 9051 §5.4) keeps running: a client refreshes it by ending IDLE
and issuing a new one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hirondelle.imap.commands import AUTHENTICATED, Bad, Done, State, handles
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.parser import Event, IdleDone, ParseError

if TYPE_CHECKING:
    from hirondelle.imap.session import Session


def _done_index(events: list[Event]) -> int | None:
    for i, event in enumerate(events):
        if isinstance(event, IdleDone | ParseError):
            return i
    return None


@handles(c.Idle, AUTHENTICATED)
async def idle(session: Session, command: c.Idle) -> Done:
    """RFC 9051 §6.3.13."""
    connection = session.connection
    session.write(session.encoder.continuation("idling"))
    session.parser.expect_idle_done()
    if session.selected is not None:
        await session.sync(allow_expunge=True, force=True)
    await connection.drain()
    events = session.parser.feed(b"") if session.parser.pending else []
    read_task: asyncio.Task[bytes] | None = None
    notify_task: asyncio.Task[object] | None = None
    try:
        while True:
            found = _done_index(events)
            if found is not None:
                session.pending_events.extend(events[found + 1 :])
                if isinstance(events[found], ParseError):
                    raise Bad("Expected DONE to end IDLE")
                return Done("terminated")
            if read_task is None:
                read_task = asyncio.ensure_future(connection.read())
            subscription = session.subscription
            if notify_task is None and subscription is not None:
                notify_task = asyncio.ensure_future(subscription.wait())
            waiting: set[asyncio.Future[object]] = {read_task}  # type: ignore[arg-type]
            if notify_task is not None:
                waiting.add(notify_task)
            done, _ = await asyncio.wait(
                waiting, timeout=session.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                session.write(session.encoder.bye("Autologout; idle for too long"))
                session.state = State.LOGOUT
                return Done(silent=True)
            events = []
            if notify_task is not None and notify_task in done:
                notify_task = None
                if session.selected is not None:
                    await session.sync(allow_expunge=True, force=True)
                    await connection.drain()
            if read_task in done:
                data = read_task.result()
                read_task = None
                if not data:
                    raise ConnectionError("connection closed during IDLE")
                events = session.parser.feed(data)
    finally:
        for task in (read_task, notify_task):
            if task is not None and not task.done():
                task.cancel()
