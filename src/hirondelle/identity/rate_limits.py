"""Login rate limits: sliding windows of failures per remote address and per account,
with exponential back-off (DESIGN.md "Identity and security").

A guesser is slowed in two ways: too many failures from one address refuse that address
whatever account it tries; too many failures against one account lock the account out,
except from addresses it logged in from before, so an attacker cannot lock the real
user out. Lockouts double each time they recur within a day, up to a ceiling.

Each node keeps this state in process memory, the fast path: a guesser hammering one
node is refused without any store work. The nodes of a cluster share it through the store
(:mod:`hirondelle.store.login_limits`): the gate writes every failure there with its
audit row, and reads the lockouts in force before checking a secret; a lockout another
node decided is applied here with :meth:`InProcessRateLimiter.impose`.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# Lockouts recurring within this time double in length.
STRIKE_MEMORY_SECONDS = 86400.0
# Addresses an account logged in from are remembered this long, for so many accounts.
KNOWN_GOOD_SECONDS = 30 * 86400.0
MAX_TRACKED_KEYS = 100_000
MAX_KNOWN_GOOD_PER_ACCOUNT = 20
IMPOSE_SLACK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    account_failures: int = 10
    address_failures: int = 30
    window_seconds: float = 900.0
    lockout_seconds: float = 900.0
    max_lockout_seconds: float = 86400.0


class RateLimiter(Protocol):
    def retry_after(self, account: str, remote: str) -> float:
        """Seconds until ``remote`` may try ``account`` again; 0 when it may now."""
        ...

    def record_failure(self, account: str, remote: str) -> bool:
        """Count a failed login; True when this failure locks the account out."""
        ...

    def record_success(self, account: str, remote: str) -> None: ...

    def address_retry_after(self, remote: str) -> float:
        """Seconds until ``remote`` may try any account again."""
        ...

    def record_known_good(self, account: str, remote: str) -> None:
        """``account`` logged in from ``remote`` before (learnt elsewhere, e.g. the audit
        log after a restart): its lockout does not apply there."""
        ...

    def saturated(self, account: str, remote: str) -> bool:
        """Not locked out, but the failures so far plus the attempts being checked now
        would reach a threshold: a new attempt must wait for those to be decided (rather
        than be refused: ten correct logins in parallel are a mail client, not an
        attack)."""
        ...

    def begin(self, account: str, remote: str) -> None:
        """An attempt that passed :meth:`retry_after` is being checked."""
        ...

    def end(self, account: str, remote: str) -> None:
        """That check is over (its failure or success was recorded)."""
        ...

    def impose(self, scope: str, key: str, seconds: float) -> bool:
        """Another node locked ``key`` (``scope`` "account" or "address") out for
        ``seconds`` more: apply it here too. True when that changed anything."""
        ...


@dataclass(slots=True)
class _Window:
    failures: deque[float] = field(default_factory=deque)
    # Attempts being checked now. They do not count as failures, but no more of them are
    # admitted than failures could still be afforded: guesses sent in parallel cannot
    # all slip in before the first is counted, and correct ones only wait a moment.
    pending: int = 0
    locked_until: float = 0.0
    strikes: int = 0
    last_lockout: float = 0.0


class InProcessRateLimiter:
    """The limiter of a single node. ``account`` is the address as the client typed it,
    normalized: unknown addresses are limited exactly like real ones, so the limiter
    reveals nothing about which accounts exist."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._accounts: OrderedDict[str, _Window] = OrderedDict()
        self._remotes: OrderedDict[str, _Window] = OrderedDict()
        self._known_good: OrderedDict[str, dict[str, float]] = OrderedDict()

    def retry_after(self, account: str, remote: str) -> float:
        now = self.clock()
        limits = self.limits
        wait = self._wait(self._remotes.get(remote), limits.address_failures, now)
        if not self.is_known_good(account, remote):
            wait = max(wait, self._wait(self._accounts.get(account), limits.account_failures, now))
        return wait

    def address_retry_after(self, remote: str) -> float:
        return self._wait(self._remotes.get(remote), self.limits.address_failures, self.clock())

    def saturated(self, account: str, remote: str) -> bool:
        now = self.clock()
        if self._full(self._remotes.get(remote), self.limits.address_failures, now):
            return True
        if self.is_known_good(account, remote):
            return False
        return self._full(self._accounts.get(account), self.limits.account_failures, now)

    def begin(self, account: str, remote: str) -> None:
        self._window(self._remotes, remote).pending += 1
        self._window(self._accounts, account).pending += 1

    def end(self, account: str, remote: str) -> None:
        for table, key in ((self._remotes, remote), (self._accounts, account)):
            window = table.get(key)
            if window is not None and window.pending > 0:
                window.pending -= 1

    def impose(self, scope: str, key: str, seconds: float) -> bool:
        table = self._accounts if scope == "account" else self._remotes
        until = self.clock() + seconds
        window = self._window(table, key)
        # A second of slack: the store counts wall-clock time, this limiter monotonic
        # time, and a lockout this node decided itself comes back from the store too.
        if until <= window.locked_until + IMPOSE_SLACK_SECONDS:
            return False
        window.locked_until = until
        return True

    def record_failure(self, account: str, remote: str) -> bool:
        now = self.clock()
        self._count(self._remotes, remote, self.limits.address_failures, now)
        return self._count(self._accounts, account, self.limits.account_failures, now)

    def record_success(self, account: str, remote: str) -> None:
        # The per-address window is left alone: one valid account must not let an
        # address reset its count and go on guessing others.
        window = self._accounts.get(account)
        if window is not None:
            window.failures.clear()
        self.record_known_good(account, remote)

    def record_known_good(self, account: str, remote: str) -> None:
        now = self.clock()
        remotes = self._known_good.setdefault(account, {})
        self._known_good.move_to_end(account)
        remotes[remote] = now
        if len(remotes) > MAX_KNOWN_GOOD_PER_ACCOUNT:
            del remotes[min(remotes, key=remotes.__getitem__)]
        while len(self._known_good) > MAX_TRACKED_KEYS:
            self._known_good.popitem(last=False)

    def is_known_good(self, account: str, remote: str) -> bool:
        seen = self._known_good.get(account, {}).get(remote)
        return seen is not None and self.clock() - seen < KNOWN_GOOD_SECONDS

    @staticmethod
    def _wait(window: _Window | None, _threshold: int, now: float) -> float:
        if window is None or window.locked_until <= now:
            return 0.0
        return window.locked_until - now

    def _full(self, window: _Window | None, threshold: int, now: float) -> bool:
        if window is None or not window.pending:
            return False
        recent = sum(1 for at in window.failures if at > now - self.limits.window_seconds)
        return recent + window.pending >= threshold

    @staticmethod
    def _window(table: OrderedDict[str, _Window], key: str) -> _Window:
        window = table.get(key)
        if window is None:
            window = table[key] = _Window()
            while len(table) > MAX_TRACKED_KEYS:
                table.popitem(last=False)
        table.move_to_end(key)
        return window

    def _count(
        self, table: OrderedDict[str, _Window], key: str, threshold: int, now: float
    ) -> bool:
        window = self._window(table, key)
        failures = window.failures
        failures.append(now)
        while failures and failures[0] <= now - self.limits.window_seconds:
            failures.popleft()
        if len(failures) < threshold:
            return False
        failures.clear()
        if now - window.last_lockout > STRIKE_MEMORY_SECONDS:
            window.strikes = 0
        lockout = min(
            self.limits.lockout_seconds * 2**window.strikes, self.limits.max_lockout_seconds
        )
        window.strikes = min(window.strikes + 1, 32)
        window.last_lockout = now
        window.locked_until = now + lockout
        return True
