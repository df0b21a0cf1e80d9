"""A POP3 session's maildrop: the snapshot taken at login, deletion marks, sizes, UIDL.

RFC 1939 §4: message numbers and sizes are fixed for the session; messages delivered
meanwhile appear at the next session. RFC 1939 §7 UIDL: see :func:`unique_id`.

Sizes (RFC 1939 §5 LIST, STAT): POP3 sends messages with CRLF line endings, while
blobs are stored as received (possibly with bare LFs). The size announced is therefore
computed from the stored blob with :func:`hirondelle.pop3.proto.pop3_size` (its length
plus one per bare LF, plus two when a final line ending must be added), which is what
RETR sends once the dots are removed. Blobs are content-addressed and immutable, so a
size is computed once per blob and kept in a per-node cache; it is computed only when
a command needs it (a client that only asks UIDL and RETRs new messages reads only
those). A persisted column would spare the first scan after a restart: noted as future
work.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

from hirondelle.pop3.proto import SizeCounter
from hirondelle.store.blobs import BlobNotFound, BlobStore
from hirondelle.store.database import Database
from hirondelle.store.maildrop import MaildropMessage, Snapshot

# How many blob sizes a node remembers (a few MB of memory).
SIZE_CACHE_ENTRIES = 100_000
# How many blobs are scanned at once when a whole maildrop's sizes are needed.
SIZE_SCANS_AT_ONCE = 8


class MaildropLocks:
    """RFC 1939 §8 / RFC 2449 §8.1.2: one POP3 session per maildrop at a time.

    The lock lives in this process, keyed by account id, shared by every POP3 listener of
    the node (pop3 and pop3s). Several nodes serving one store need a store-backed lock
    instead (a row with an owner and an expiry, or a PostgreSQL advisory lock); until
    then two sessions on two nodes are not kept apart.
    """

    def __init__(self) -> None:
        self._held: set[int] = set()

    def acquire(self, account_id: int) -> bool:
        if account_id in self._held:
            return False
        self._held.add(account_id)
        return True

    def release(self, account_id: int) -> None:
        self._held.discard(account_id)


class SizeCache:
    """Blob hash -> POP3 size, least recently used out first."""

    def __init__(self, entries: int = SIZE_CACHE_ENTRIES) -> None:
        self._entries = entries
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def get(self, blob_hash: str) -> int | None:
        size = self._sizes.get(blob_hash)
        if size is not None:
            self._sizes.move_to_end(blob_hash)
        return size

    def put(self, blob_hash: str, size: int) -> None:
        self._sizes[blob_hash] = size
        self._sizes.move_to_end(blob_hash)
        while len(self._sizes) > self._entries:
            self._sizes.popitem(last=False)


@dataclass
class NodeMaildrops:
    """What all POP3 listeners of one node share."""

    locks: MaildropLocks = field(default_factory=MaildropLocks)
    sizes: SizeCache = field(default_factory=SizeCache)


# One per node: a node has one Database, and the pop3 and pop3s listeners share it.
_NODES: weakref.WeakKeyDictionary[Database, NodeMaildrops] = weakref.WeakKeyDictionary()


def node_maildrops(database: Database) -> NodeMaildrops:
    shared = _NODES.get(database)
    if shared is None:
        shared = _NODES[database] = NodeMaildrops()
    return shared


def unique_id(uidvalidity: int, uid: int) -> str:
    """RFC 1939 §7 UIDL: ``<UIDVALIDITY>.<UID>`` of the message in the Inbox.

    A UID is never reused under one UIDVALIDITY (RFC 9051 §2.3.1.1), and a message keeps
    its UID as long as it stays in the Inbox, so the pair names one message forever. The
    email id is not used: SQLite may give a deleted row's id to a new row, and a reused
    unique-id would make "leave messages on server" clients skip new mail. Digits and a
    dot, at most 41 characters: within RFC 1939's 0x21-0x7E and 70 characters.
    """
    return f"{uidvalidity}.{uid}"


class NoSuchMessage(Exception):
    """A message number outside the maildrop, or marked as deleted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Maildrop:
    """The session's view of the Inbox (RFC 1939 §5-§6)."""

    def __init__(self, account_id: int, snapshot: Snapshot, blobs: BlobStore, sizes: SizeCache):
        self.account_id = account_id
        self.mailbox_id = snapshot.mailbox_id
        self.uidvalidity = snapshot.uidvalidity
        self.messages = snapshot.messages
        self.deleted: set[int] = set()  # message numbers marked by DELE
        self._blobs = blobs
        self._sizes = sizes

    def message(self, number: int) -> MaildropMessage:
        """RFC 1939 §5: a message marked as deleted may not be referred to."""
        if not 1 <= number <= len(self.messages):
            raise NoSuchMessage("no such message")
        if number in self.deleted:
            raise NoSuchMessage("message already deleted")
        return self.messages[number - 1]

    def live_numbers(self) -> list[int]:
        return [n for n in range(1, len(self.messages) + 1) if n not in self.deleted]

    def unique_id(self, number: int) -> str:
        return unique_id(self.uidvalidity, self.message(number).uid)

    async def size(self, message: MaildropMessage) -> int:
        """The POP3 size (module docstring); the stored size if the blob is gone (the
        message was expunged meanwhile: RETR will refuse it anyway)."""
        cached = self._sizes.get(message.blob_hash)
        if cached is not None:
            return cached
        counter = SizeCounter()
        try:
            async for chunk in self._blobs.stream(message.blob_hash):
                counter.feed(chunk)
        except BlobNotFound:
            return message.size
        size = counter.finish()
        self._sizes.put(message.blob_hash, size)
        return size

    async def sizes(self, numbers: list[int]) -> dict[int, int]:
        """Sizes of several messages, a few blobs scanned at once."""
        limit = asyncio.Semaphore(SIZE_SCANS_AT_ONCE)

        async def one(number: int) -> int:
            async with limit:
                return await self.size(self.messages[number - 1])

        values = await asyncio.gather(*(one(n) for n in numbers))
        return dict(zip(numbers, values, strict=True))
