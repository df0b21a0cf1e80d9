"""The notification bus: "account A is now at modseq N; these kinds changed".

DESIGN.md "The change journal": after a commit the store publishes
``(account, modseq, kinds)``; IMAP IDLE, JMAP push and DAV sessions subscribe per
account. A notification is a *hint* that the journal has moved: a subscriber reads the
journal from the last modseq it has seen, so a missed, merged or reordered notification
never loses a change.

This module is the in-process bus of one node. A multi-node deployment replaces it with
an implementation of the same interface on PostgreSQL LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    account_id: int
    modseq: int
    kinds: frozenset[str]


class Subscription:
    """A subscriber's view of one account's changes.

    ``wait()`` returns the newest change seen since the last call, merging any that
    arrived meanwhile, so a slow subscriber costs one slot of memory, not a queue.
    """

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self._latest: Change | None = None
        self._kinds: set[str] = set()
        self._event = asyncio.Event()

    def _deliver(self, change: Change) -> None:
        if self._latest is None or change.modseq > self._latest.modseq:
            self._latest = change
        self._kinds.update(change.kinds)
        self._event.set()

    async def wait(self) -> Change:
        """Wait for the next change; returns the highest modseq and every kind since."""
        await self._event.wait()
        self._event.clear()
        latest = self._latest
        assert latest is not None
        merged = Change(latest.account_id, latest.modseq, frozenset(self._kinds))
        self._kinds.clear()
        return merged

    def pending(self) -> bool:
        return self._event.is_set()


class NotificationBus(Protocol):
    """Publish/subscribe of account changes. ``publish`` is called after commit, from
    any thread; ``subscribe`` yields a :class:`Subscription` for one account."""

    def publish(self, change: Change) -> None: ...

    def subscribe(self, account_id: int) -> AbstractAsyncContextManager[Subscription]: ...

    def subscriber_count(self, account_id: int) -> int: ...


class InProcessBus:
    """The bus of one node: in-process publish/subscribe keyed by account id.

    ``publish`` may be called from any thread: delivery is moved onto the loop each
    subscription was created in.
    """

    def __init__(self) -> None:
        self._subscribers: dict[int, set[tuple[Subscription, asyncio.AbstractEventLoop]]] = (
            defaultdict(set)
        )

    def publish(self, change: Change) -> None:
        for subscription, loop in tuple(self._subscribers.get(change.account_id, ())):
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                subscription._deliver(change)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(subscription._deliver, change)

    @asynccontextmanager
    async def subscribe(self, account_id: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(account_id)
        entry = (subscription, asyncio.get_running_loop())
        self._subscribers[account_id].add(entry)
        try:
            yield subscription
        finally:
            entries = self._subscribers.get(account_id)
            if entries is not None:
                entries.discard(entry)
                if not entries:
                    del self._subscribers[account_id]

    def subscriber_count(self, account_id: int) -> int:
        return len(self._subscribers.get(account_id, ()))
