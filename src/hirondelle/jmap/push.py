"""RFC 8620 §7.3: push over an EventSource (Server-Sent Events), driven by the
notification bus (store/notifications.py).

A StateChange names, for the account, every type whose state moved, with the new state
(the account's modseq, like every state string here). A notification is a hint that the
journal moved; merged or missed ones lose nothing since the client then asks /changes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from hirondelle.jmap import ids
from hirondelle.jmap.standard import state_string
from hirondelle.services import Services

# Journal kinds that are not JMAP types (IMAP's per-mailbox rows) are not pushed.
NOT_TYPES = frozenset({"MailboxMessage"})
# The longest ping interval the server keeps (RFC 8620 §7.3: the server may choose
# within its own limits; the answer says which it took).
MAX_PING_SECONDS = 300


def state_change(account_id: int, modseq: int, types: set[str]) -> bytes:
    document = {
        "@type": "StateChange",
        "changed": {ids.account(account_id): {t: state_string(modseq) for t in sorted(types)}},
    }
    return b"event: state\ndata: " + json.dumps(document).encode() + b"\n\n"


def ping_event(interval: int) -> bytes:
    return b"event: ping\ndata: " + json.dumps({"interval": interval}).encode() + b"\n\n"


async def events(
    services: Services,
    account_id: int,
    *,
    types: set[str] | None,
    close_after_state: bool,
    ping: int,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The event stream: a comment once subscribed (so a client knows from the first
    bytes that nothing after them is missed), then state events, and pings. It ends
    when ``stopping`` is set (the node is stopping; the client reconnects)."""
    interval = min(ping, MAX_PING_SECONDS)
    stop = stopping if stopping is not None else asyncio.Event()
    async with services.bus.subscribe(account_id) as subscription:
        yield b": subscribed\n\n"
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while True:
                change_waiter = asyncio.ensure_future(subscription.wait())
                done, _ = await asyncio.wait(
                    {change_waiter, stop_waiter},
                    timeout=interval if interval > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stop_waiter in done:
                    change_waiter.cancel()
                    return
                if change_waiter not in done:
                    change_waiter.cancel()
                    yield ping_event(interval)
                    continue
                change = change_waiter.result()
                changed = {k for k in change.kinds if k not in NOT_TYPES}
                if types is not None:
                    changed &= types
                if not changed:
                    continue
                yield state_change(account_id, change.modseq, changed)
                if close_after_state:
                    return
        finally:
            stop_waiter.cancel()
