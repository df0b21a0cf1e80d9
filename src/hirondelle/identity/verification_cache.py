"""A short-lived memory of successful password checks, so that DAV and JMAP clients,
which send Basic credentials (RFC 7617) on every request, do not pay argon2 each time.

Entries are keyed by HMAC-SHA256 under a key drawn at random when the node starts, over
the account id, its ``credentials_version`` and the secret: the secret itself is never
kept, and a password change or an app-password revocation (both move the version on)
makes old entries unreachable on every node. A lockout drops the account's entries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Verified:
    """What a secret proved: the main password (``app_password_id`` None) or one app
    password."""

    account_id: int
    app_password_id: int | None
    expires_at: float


class VerificationCache:
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, Verified] = OrderedDict()

    def _digest(self, account_id: int, credentials_version: int, secret: str) -> bytes:
        message = f"{account_id}\x00{credentials_version}\x00{secret}".encode(
            "utf-8", "surrogatepass"
        )
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, account_id: int, credentials_version: int, secret: str) -> Verified | None:
        if self.ttl_seconds <= 0:
            return None
        digest = self._digest(account_id, credentials_version, secret)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            del self._entries[digest]
            return None
        return entry

    def put(
        self,
        account_id: int,
        credentials_version: int,
        secret: str,
        app_password_id: int | None,
    ) -> None:
        if self.ttl_seconds <= 0:
            return
        digest = self._digest(account_id, credentials_version, secret)
        self._entries[digest] = Verified(
            account_id, app_password_id, self.clock() + self.ttl_seconds
        )
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_account(self, account_id: int) -> None:
        for digest in [d for d, e in self._entries.items() if e.account_id == account_id]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)
