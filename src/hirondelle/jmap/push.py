"""RFC 8620 §7.3: push over an EventSource (Server-Sent Events), driven by the notification bus
(store/notifications.py); RFC 8621 §1.5 the ``EmailDelivery`` type.

A StateChange names, for the account, every type whose state moved, with the new state
(the account's modseq, like every state string here). A notification is a hint that the
journal moved; merged or missed ones lose nothing since the client then asks /changes.

Resumption (HTML Living Standard "Server-sent events", RFC 8620 §7.3): every state event
carries ``id: <modseq>``, and the stream opens with an id-only block carrying the
account's modseq at subscription time, so a browser's EventSource always has a
``Last-Event-ID`` to send when it reconnects. A reconnecting client whose id is behind
the account gets a state event at once, naming the types the journal shows changed since
(every type when the journal no longer reaches back that far).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from hirondelle.jmap.push_sender import (
    JOURNAL_TYPES as JOURNAL_TYPES,
)
from hirondelle.jmap.push_sender import (
    NOT_TYPES as NOT_TYPES,
)
from hirondelle.jmap.push_sender import (
    all_types,
    pushed_types,
    state_change_document,
)
from hirondelle.store import jmap_push, journal
from hirondelle.store.notifications import Change

if TYPE_CHECKING:
    from hirondelle.services import Services

# The longest ping interval the server keeps (RFC 8620 §7.3: the server may choose
# within its own limits; the answer says which it took).
MAX_PING_SECONDS = 300


def state_change(account_id: int, modseq: int, types: set[str]) -> bytes:
    """One ``state`` event, with its modseq as the event id (for Last-Event-ID)."""
    document = state_change_document(account_id, modseq, types)
    return f"id: {modseq}\nevent: state\ndata: ".encode() + json.dumps(document).encode() + b"\n\n"


def ping_event(interval: int) -> bytes:
    return b"event: ping\ndata: " + json.dumps({"interval": interval}).encode() + b"\n\n"


def _wanted(kinds: Iterable[str], types: set[str] | None) -> set[str]:
    changed = pushed_types(kinds)
    return changed if types is None else changed & types


async def events(
    services: Services,
    account_id: int,
    *,
    types: set[str] | None,
    close_after_state: bool,
    ping: int,
    last_event_id: int | None = None,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The event stream: a comment once subscribed (so a client knows from the first
    bytes that nothing after them is missed), the id to resume from (or, when the client
    resumes from an older id, a state event at once), then state events, and pings. It
    ends when ``stopping`` is set (the node is stopping; the client reconnects).

    The waits run as tasks; whatever ends the stream (the client going away cancels it,
    the node stopping, ``aclose``), they are cancelled and awaited before it returns,
    so none is left pending when the loop closes."""
    interval = min(ping, MAX_PING_SECONDS)
    stop = stopping if stopping is not None else asyncio.Event()
    async with services.bus.subscribe(account_id) as subscription:
        # Read after subscribing: a change committed from here on is also delivered.
        resume = last_event_id
        kinds: frozenset[str] | None
        if resume is None:
            current, kinds = await services.database.read(
                lambda conn: (journal.account_modseq(conn, account_id)[0], frozenset[str]())
            )
        else:
            current, kinds = await services.database.read(
                lambda conn: jmap_push.changed_kinds_since(conn, account_id, resume)
            )
        yield b": subscribed\n\n"
        # When the journal cannot tell what changed, every type (of those asked for) did.
        changed = _wanted(all_types() if kinds is None else kinds, types)
        if changed:
            yield state_change(account_id, current, changed)
            if close_after_state:
                return
        else:
            yield f"id: {current}\n\n".encode()
        sent = current
        change_waiter: asyncio.Future[Change] | None = None
        stop_waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while True:
                if change_waiter is None:
                    change_waiter = asyncio.ensure_future(subscription.wait())
                waiting: set[asyncio.Future[Any]] = {change_waiter, stop_waiter}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=interval if interval > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stop_waiter in done:
                    return
                if change_waiter not in done:
                    # The same wait goes on after the ping: nothing is lost meanwhile.
                    yield ping_event(interval)
                    continue
                change = change_waiter.result()
                change_waiter = None
                if change.modseq <= sent:
                    continue  # already covered by what was sent at subscription
                changed = _wanted(change.kinds, types)
                if not changed:
                    continue
                sent = change.modseq
                yield state_change(account_id, change.modseq, changed)
                if close_after_state:
                    return
        finally:
            waiters = [w for w in (change_waiter, stop_waiter) if w is not None]
            for waiter in waiters:
                waiter.cancel()
            # Awaited so that they are finished, not just asked to finish, when the
            # stream is gone (a task still pending when the loop closes is reported as
            # "Task was destroyed but it is pending").
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)
