"""RFC 8620 §7.1-§7.2: sending StateChange and PushVerification objects to the URLs of push
subscriptions (the node's side of PushSubscription; the methods are in
``jmap/push_subscription.py``).

One :class:`PushDispatcher` per node. It subscribes to the notification bus for every
account that has a live subscription, and gives each subscription one sender task:

- **Coalesced**: changes that arrive while a POST is in flight or waiting for a retry
  are merged into the next StateChange (types united, the newest state), so a burst of
  changes costs one request, and a slow endpoint one pending document.
- **Retried with back-off** (1 s doubling to 10 min) on network errors, timeouts, 408,
  429 and 5xx. A permanent refusal (any other 4xx or a 3xx: redirects are not followed)
  counts; after :data:`MAX_REFUSALS` in a row the subscription is destroyed. 404 and
  410 mean the push subscription is gone (RFC 8030 §7.3): destroyed at once.
- **Never blocking the loop**: the HTTP client is a few lines of asyncio streams with a
  timeout on the whole exchange; store work runs on the store's threads.
- **Survives a restart**: subscriptions are rows; each remembers the modseq its endpoint
  last accepted, and a starting node pushes at once what the journal shows changed since.
- **Expiry**: expired subscriptions are destroyed (checked before every send and by a
  sweep every minute).

Security (RFC 8620 §8.7, "server-side request forgery"): URLs must be https; the host is
resolved before connecting and refused if any address it gives is not a global one
(loopback, private, link-local...), and the connection goes to the address checked, so
a DNS answer cannot change between the check and the request. ``[jmap]
push_allow_loopback`` lets tests and development use http:// and loopback endpoints.

Deviation: Web Push message encryption (RFC 8291, the ``keys`` property) is not
implemented, no library for it being a dependency; a create with ``keys`` is refused.
One node: the bus is in-process, so a node pushes the changes it commits, to the
subscriptions it knows (every one at start, and those created through it). Several
nodes will need the LISTEN/NOTIFY bus and a claim on each subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import socket
import ssl
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hirondelle import tls
from hirondelle.store import jmap_push
from hirondelle.store.database import Database, now_us
from hirondelle.store.jmap_push import StoredSubscription
from hirondelle.store.notifications import NotificationBus

if TYPE_CHECKING:
    from hirondelle.services import Services

log = logging.getLogger(__name__)

# Journal kinds that are not JMAP types (IMAP's per-mailbox rows) are not pushed.
NOT_TYPES = frozenset({"MailboxMessage"})
# Journal kinds whose JMAP type has another name (kind -> the types it changes). A kind
# not listed here is its own type name ("Mailbox", "Email", "EmailDelivery"...).
JOURNAL_TYPES: dict[str, tuple[str, ...]] = {
    # CalDAV objects (store/groupware.py): JMAP CalendarEvent (jmap/calendars.py).
    "CalendarObject": ("CalendarEvent",),
}

# RFC 8030 §5.2 TTL of every POST: how long a push service may hold the message for an
# offline device. A device offline for longer resynchronises with /changes anyway.
TTL_SECONDS = 86_400
# The whole exchange (resolve, connect, TLS, request, status line) of one POST.
REQUEST_TIMEOUT_SECONDS = 15.0
FIRST_RETRY_SECONDS = 1.0
LAST_RETRY_SECONDS = 600.0
# Permanent refusals in a row after which a subscription is destroyed.
MAX_REFUSALS = 5
SWEEP_SECONDS = 60.0
UNEXPECTED_FAILURE_PAUSE_SECONDS = 60.0
USER_AGENT = "Hirondelle JMAP push"


def pushed_types(kinds: Iterable[str]) -> set[str]:
    """The JMAP types a set of journal kinds changes."""
    types: set[str] = set()
    for kind in kinds:
        if kind in NOT_TYPES:
            continue
        types.update(JOURNAL_TYPES.get(kind, (kind,)))
    return types


def all_types() -> set[str]:
    """Every type that has a state here (those with a /get method), plus EmailDelivery:
    what a client is told changed when the journal cannot say what did."""
    from hirondelle.jmap import api, methods  # noqa: F401  (fills the registry)

    names = {name.split("/", 1)[0] for name in api.METHODS if name.endswith("/get")}
    names.discard("PushSubscription")  # RFC 8620 §7.2.1: it has no state
    return names | {"EmailDelivery"}


def state_change_document(account_id: int, modseq: int, types: Iterable[str]) -> dict[str, Any]:
    """RFC 8620 §7.1 StateChange for one account: every type named gets the account's
    modseq, which is the state string of every type here."""
    return {
        "@type": "StateChange",
        "changed": {f"A{account_id}": {t: str(modseq) for t in sorted(types)}},
    }


def verification_document(subscription_id: int, code: str) -> dict[str, Any]:
    """RFC 8620 §7.2.2 PushVerification."""
    return {
        "@type": "PushVerification",
        "pushSubscriptionId": subscription_id_string(subscription_id),
        "verificationCode": code,
    }


def subscription_id_string(subscription_id: int) -> str:
    return f"S{subscription_id}"


# -- the HTTP client ------------------------------------------------------------------


class PushFailed(Exception):
    """A POST that did not succeed. ``gone``: the endpoint says the subscription no longer
    exists; ``permanent``: retrying the same request cannot help."""

    def __init__(self, message: str, *, permanent: bool, gone: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.gone = gone


def url_problem(url: str, *, allow_loopback: bool) -> str | None:
    """Why ``url`` cannot be a push URL (syntax and scheme only), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "the URL must be https://"
    if parts.username is not None or parts.password is not None or parts.fragment:
        return "the URL must have no user information and no fragment"
    if port == 0:
        return "the URL's port must not be 0"
    if any(ord(c) <= 32 or ord(c) == 127 for c in url) or len(url) > 2048:
        return "the URL must have at most 2048 characters and no spaces or controls"
    if parts.scheme == "http":
        if not allow_loopback:
            return "the URL must be https://"
        try:
            if not ipaddress.ip_address(parts.hostname).is_loopback:
                return "http:// is only allowed to a loopback address"
        except ValueError:
            if parts.hostname != "localhost":
                return "http:// is only allowed to a loopback address"
    return None


def _address_allowed(address: str, *, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


_CLIENT_TLS: ssl.SSLContext | None = None


def _client_tls() -> ssl.SSLContext:
    global _CLIENT_TLS
    if _CLIENT_TLS is None:
        _CLIENT_TLS = tls.client_context()
    return _CLIENT_TLS


async def post_json(url: str, document: dict[str, Any], *, allow_loopback: bool) -> int:
    """POST ``document`` to ``url``; the HTTP status (2xx), or :class:`PushFailed`."""
    problem = url_problem(url, allow_loopback=allow_loopback)
    if problem is not None:
        raise PushFailed(problem, permanent=True)
    parts = urlsplit(url)
    host = parts.hostname
    assert host is not None
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    body = json.dumps(document).encode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"TTL: {TTL_SECONDS}\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = [str(info[4][0]) for info in infos]
            if not addresses or not all(
                _address_allowed(a, allow_loopback=allow_loopback) for a in addresses
            ):
                raise PushFailed(f"{host} is not a public address", permanent=True)
            reader, writer = await asyncio.open_connection(
                addresses[0],
                port,
                ssl=_client_tls() if secure else None,
                server_hostname=host if secure else None,
            )
            try:
                writer.write(head + body)
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except TimeoutError:
        raise PushFailed("no answer in time", permanent=False) from None
    except (OSError, ssl.SSLError) as error:
        raise PushFailed(f"cannot connect: {error}", permanent=False) from None
    except ValueError:
        # StreamReader.readline past its limit: not an HTTP status line.
        raise PushFailed("not an HTTP answer", permanent=False) from None
    words = status_line.split(None, 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/1.") or not words[1].isdigit():
        raise PushFailed("not an HTTP answer", permanent=False)
    status = int(words[1])
    if 200 <= status < 300:
        return status
    if status in (404, 410):
        raise PushFailed(f"HTTP {status}: the push subscription is gone", permanent=True, gone=True)
    if status in (408, 429) or status >= 500:
        raise PushFailed(f"HTTP {status}", permanent=False)
    raise PushFailed(f"HTTP {status}", permanent=True)


# -- the dispatcher -------------------------------------------------------------------


@dataclass
class _Target:
    """One subscription's sending state."""

    subscription: StoredSubscription
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    verification_due: bool = False
    pending_modseq: int = 0
    pending_types: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def note(self, modseq: int, types: set[str]) -> None:
        if not self.subscription.verified:
            return
        wanted = types if self.subscription.types is None else types & self.subscription.types
        if not wanted or modseq <= self.subscription.pushed_modseq:
            return
        self.pending_types |= wanted
        self.pending_modseq = max(self.pending_modseq, modseq)
        self.wake.set()


class PushDispatcher:
    """Sends StateChange and PushVerification objects for one node (module docstring)."""

    def __init__(self, *, database: Database, bus: NotificationBus, allow_loopback: bool) -> None:
        self.database = database
        self.bus = bus
        self.allow_loopback = allow_loopback
        self._targets: dict[int, _Target] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._running = False
        # Set after each POST attempt (tests and the CLI wait on it).
        self.attempts = 0

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Load every live subscription and push what changed while no node sent."""
        if self._running:
            return
        self._running = True
        now = now_us()
        await self.database.write(lambda ctx: jmap_push.drop_expired(ctx, now=now))
        live = await self.database.read(lambda conn: jmap_push.live_subscriptions(conn, now=now))
        for subscription in live:
            self._add(subscription)
        for subscription in live:
            if subscription.verified:
                await self._catch_up(subscription)
        self._sweeper = asyncio.create_task(self._sweep(), name="push-sweep")

    async def stop(self) -> None:
        self._running = False
        tasks = [t.task for t in self._targets.values() if t.task is not None]
        tasks += list(self._watchers.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        self._targets.clear()
        self._watchers.clear()
        self._sweeper = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # What PushSubscription/set tells the dispatcher, after its write committed.

    def created(self, subscription: StoredSubscription) -> None:
        """A new subscription: its PushVerification goes out now."""
        if not self._running:
            return  # loaded at start; the verification of a node not pushing is lost
        target = self._add(subscription)
        target.verification_due = True
        target.wake.set()

    def updated(self, subscription: StoredSubscription) -> None:
        target = self._targets.get(subscription.id)
        if target is None:
            if self._running:
                self._add(subscription)
            return
        # What the sender learnt (pushed modseq) is newer than the row the method read.
        target.subscription = replace(
            subscription,
            pushed_modseq=max(subscription.pushed_modseq, target.subscription.pushed_modseq),
        )

    def destroyed(self, subscription_id: int) -> None:
        target = self._targets.pop(subscription_id, None)
        if target is None:
            return
        if target.task is not None:
            target.task.cancel()
        self._unwatch_if_unused(target.subscription.account_id)

    # internals

    def _add(self, subscription: StoredSubscription) -> _Target:
        target = self._targets.get(subscription.id)
        if target is not None:
            target.subscription = subscription
            return target
        target = _Target(subscription)
        self._targets[subscription.id] = target
        target.task = asyncio.create_task(self._send_loop(target), name=f"push-{subscription.id}")
        account_id = subscription.account_id
        if account_id not in self._watchers:
            self._watchers[account_id] = asyncio.create_task(
                self._watch(account_id), name=f"push-watch-{account_id}"
            )
        return target

    def _unwatch_if_unused(self, account_id: int) -> None:
        if any(t.subscription.account_id == account_id for t in self._targets.values()):
            return
        watcher = self._watchers.pop(account_id, None)
        if watcher is not None:
            watcher.cancel()

    async def _catch_up(self, subscription: StoredSubscription) -> None:
        current, kinds = await self.database.read(
            lambda conn: jmap_push.changed_kinds_since(
                conn, subscription.account_id, subscription.pushed_modseq
            )
        )
        target = self._targets.get(subscription.id)
        if target is not None and current > subscription.pushed_modseq:
            target.note(current, all_types() if kinds is None else pushed_types(kinds))

    async def _watch(self, account_id: int) -> None:
        async with self.bus.subscribe(account_id) as subscription:
            while True:
                change = await subscription.wait()
                types = pushed_types(change.kinds)
                if not types:
                    continue
                for target in list(self._targets.values()):
                    if target.subscription.account_id == account_id:
                        target.note(change.modseq, types)

    async def _sweep(self) -> None:
        """Destroy expired subscriptions: rows (also those this node has not loaded) and
        senders."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = now_us()
            try:
                await self.database.write(functools.partial(jmap_push.drop_expired, now=now))
                for target in list(self._targets.values()):
                    if target.subscription.expires_at <= now:
                        await self._drop(target, "expired")
            except Exception:
                log.exception("dropping expired push subscriptions")

    async def _drop(self, target: _Target, why: str) -> None:
        subscription = target.subscription
        log.info(
            "push subscription %s of account %s destroyed: %s",
            subscription.id,
            subscription.account_id,
            why,
        )
        await self.database.write(lambda ctx: jmap_push.drop_subscription(ctx, subscription.id))
        if self._targets.get(subscription.id) is target:
            del self._targets[subscription.id]
            self._unwatch_if_unused(subscription.account_id)
        if target.task is not None and target.task is not asyncio.current_task():
            target.task.cancel()

    async def _send_loop(self, target: _Target) -> None:
        """The subscription's sender; an unexpected failure (the store, say) is logged and
        the sender goes on after a pause, never leaving the subscription without one."""
        while True:
            try:
                await self._send_until_done(target)
                return
            except Exception:
                log.exception("push subscription %s: sending failed", target.subscription.id)
                await asyncio.sleep(UNEXPECTED_FAILURE_PAUSE_SECONDS)
                target.wake.set()

    async def _send_until_done(self, target: _Target) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await target.wake.wait()
            target.wake.clear()
            subscription = target.subscription
            if subscription.expires_at <= now_us():
                await self._drop(target, "expired")
                return
            if target.verification_due:
                document = verification_document(subscription.id, subscription.verification_code)
                sent_modseq, sent_types = 0, set[str]()
            elif subscription.verified and target.pending_types:
                sent_modseq, sent_types = target.pending_modseq, target.pending_types
                target.pending_types = set()
                document = state_change_document(subscription.account_id, sent_modseq, sent_types)
            else:
                continue
            try:
                await post_json(subscription.url, document, allow_loopback=self.allow_loopback)
            except PushFailed as failure:
                self.attempts += 1
                # Merged back: the next attempt carries these and anything newer.
                target.pending_types |= sent_types
                if failure.gone:
                    await self._drop(target, str(failure))
                    return
                if failure.permanent:
                    refusals = await self.database.write(
                        functools.partial(jmap_push.record_refusal, subscription_id=subscription.id)
                    )
                    if refusals >= MAX_REFUSALS:
                        await self._drop(target, f"{refusals} refusals, the last {failure}")
                        return
                log.info(
                    "push to subscription %s failed (%s); retry in %.0f s",
                    subscription.id,
                    failure,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY_SECONDS)
                target.wake.set()
                continue
            self.attempts += 1
            delay = FIRST_RETRY_SECONDS
            if document["@type"] == "PushVerification":
                target.verification_due = False
            else:
                target.subscription = replace(target.subscription, pushed_modseq=sent_modseq)
                await self.database.write(
                    functools.partial(
                        jmap_push.record_pushed, subscription_id=subscription.id, modseq=sent_modseq
                    )
                )
            if target.pending_types or target.verification_due:
                target.wake.set()


# One dispatcher per node's services (keyed by its database, which the services own).
_DISPATCHERS: weakref.WeakKeyDictionary[Database, PushDispatcher] = weakref.WeakKeyDictionary()


def dispatcher_of(services: Services) -> PushDispatcher:
    """The node's dispatcher (made on first use; the node starts and stops it)."""
    found = _DISPATCHERS.get(services.database)
    if found is None:
        found = PushDispatcher(
            database=services.database,
            bus=services.bus,
            allow_loopback=services.settings.jmap.push_allow_loopback,
        )
        _DISPATCHERS[services.database] = found
    return found
