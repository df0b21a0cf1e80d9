"""The compact in-memory view of a selected mailbox (DESIGN.md "Hot paths").

RFC 9051 §2.3.1.2 (message sequence numbers: 1..n in UID order, renumbered only when
the client is told of an expunge), §5.5 and §7.5.1 (an EXPUNGE is never sent while a
FETCH, STORE or SEARCH is answered, nor outside a command); RFC 7162 §3.1 (per-message
modseq).

The view holds, per message, its UID and modseq in two arrays built by one query at
SELECT; keywords are read when a command needs them (FETCH FLAGS is one narrow query),
which keeps SELECT of 100,000 messages and 2,000 idle sessions cheap. The view moves
forward by reading the change journal from the account modseq it is current at
(:meth:`MessageService.changes`), which a bus notification only hints at. Messages
removed by another session stay in the view, marked ``pending_expunge``, until the
session may announce them; until then their sequence numbers stay valid for the client.

Views of one mailbox in the same state share their two arrays (copy on write): 2,000
idle sessions on one 10,000-message Inbox would otherwise hold 2,000 copies of 120 KB.
A view copies its arrays before it changes them, and after the change adopts the arrays
of any other view of the mailbox that is now equal to it, so sessions that followed the
same changes share again.
"""

from __future__ import annotations

import weakref
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.store.emails import KnownColumns, MailboxColumns, MessageView
from hirondelle.store.mailboxes import Mailbox


@dataclass(slots=True)
class Applied:
    """What a journal read changed in the view: for untagged responses."""

    #: Messages changed by another session: their current state, to announce.
    flag_changes: list[MessageView] = field(default_factory=list)
    new_messages: int = 0


class _Columns:
    """UIDs and modseqs that views in the same state share (never changed in place)."""

    __slots__ = ("__weakref__", "modseqs", "uids")

    def __init__(self, uids: array[int], modseqs: array[int]) -> None:
        self.uids = uids
        self.modseqs = modseqs


#: mailbox id -> the columns last shared for it; an entry goes with its last view.
_SHARED: weakref.WeakValueDictionary[int, _Columns] = weakref.WeakValueDictionary()


class RecentColumns:
    """The columns of the last mailboxes opened through one listener, with the account
    modseq they were read at. A SELECT of one of them reads no message row: when the
    account has not changed since, the columns are current; otherwise the store brings
    them forward from the change journal (``emails.patched_columns``: only the UIDs
    that changed are read), and the result is kept in their place. Clients reselect
    INBOX all the time. One per listener, so per database; read from database threads
    (single dict operations, atomic)."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = 8) -> None:
        #: How many mailboxes are kept (12 bytes per message each).
        self.size = size
        self._entries: dict[int, tuple[int, _Columns]] = {}

    def known(self, mailbox_id: int, modseq: int) -> KnownColumns | None:
        """The UIDs and modseqs of the mailbox as last read, if that was at account
        modseq ``modseq`` or before (for ``MessageService.snapshot_named``, on a
        database thread)."""
        entry = self._entries.get(mailbox_id)
        if entry is None or entry[0] > modseq:
            return None
        return KnownColumns(entry[0], entry[1].uids, entry[1].modseqs, current=entry[0] == modseq)

    def remember(self, view: SelectedMailbox) -> None:
        """Keep a newly opened view's columns, as read at SELECT."""
        columns = view._columns
        if columns is None:
            return
        self._entries.pop(view.mailbox_id, None)
        self._entries[view.mailbox_id] = (view.modseq, columns)
        while len(self._entries) > self.size:
            self._entries.pop(next(iter(self._entries)), None)


class SelectedMailbox:
    __slots__ = (
        "_columns",
        "highest_modseq",
        "keywords_in_use",
        "mailbox_id",
        "modseq",
        "modseqs",
        "name",
        "pending_expunge",
        "read_only",
        "uidnext",
        "uids",
        "uidvalidity",
    )

    def __init__(
        self,
        mailbox: Mailbox,
        messages: MailboxColumns,
        *,
        modseq: int,
        read_only: bool,
    ) -> None:
        self.mailbox_id = mailbox.id
        self.name = mailbox.name
        self.uidvalidity = mailbox.uidvalidity
        self.uidnext = mailbox.uidnext
        self.highest_modseq = mailbox.highest_modseq
        self.read_only = read_only
        #: The account modseq the view is current at (where the next journal read starts).
        self.modseq = modseq
        self.uids = messages.uids
        self.modseqs = messages.modseqs
        #: The shared columns ``uids`` and ``modseqs`` belong to, or None once copied.
        self._columns: _Columns | None = None
        self._share()
        self.keywords_in_use = set(messages.keywords_in_use)
        self.pending_expunge: set[int] = set()

    # -- sharing ----------------------------------------------------------------------

    def _share(self) -> None:
        """Adopt equal columns another view of the mailbox shares, or offer ours."""
        existing = _SHARED.get(self.mailbox_id)
        if existing is not None and existing.uids == self.uids and existing.modseqs == self.modseqs:
            self.uids, self.modseqs = existing.uids, existing.modseqs
            self._columns = existing
            return
        columns = _Columns(self.uids, self.modseqs)
        _SHARED[self.mailbox_id] = columns
        self._columns = columns

    def _own(self) -> None:
        """Copy shared columns before changing them (other views keep theirs)."""
        if self._columns is not None:
            self.uids = array("I", self.uids)
            self.modseqs = array("Q", self.modseqs)
            self._columns = None

    # -- numbers ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.uids)

    def index_of(self, uid: int) -> int | None:
        """0-based position of ``uid`` (its sequence number minus one), or None."""
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i
        return None

    def seq_of(self, uid: int) -> int | None:
        i = self.index_of(uid)
        return None if i is None else i + 1

    def resolve(self, numbers: SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a sequence set names (RFC 9051 §6.4.8 for "*" and reversed ranges);
        UIDs that are not in the mailbox are left out, as RFC 9051 §6.4.8 asks."""
        uids = self.uids
        count = len(uids)
        if not count:
            return []
        result: list[int] = []
        if uid:
            for low, high in numbers.iter_ranges(uids[-1]):
                start = bisect_left(uids, low)
                end = bisect_left(uids, high + 1)
                result.extend(uids[start:end])
        else:
            for low, high in numbers.iter_ranges(count):
                if low > count:
                    break
                result.extend(uids[low - 1 : min(high, count)])
        return result

    def valid_sequence(self, numbers: SequenceSet) -> bool:
        """RFC 9051 §6.4.8: a message sequence number above the count is an error
        (BAD), while "*" is always valid."""
        count = len(self.uids)
        return all(
            (low == 0 or low <= count) and (high == 0 or high <= count)
            for low, high in numbers.ranges
        )

    def uid_set(self, uids: list[int]) -> SequenceSet:
        return SequenceSet.from_ranges((u, u) for u in uids)

    # -- changes ----------------------------------------------------------------------

    def apply(self, changed: list[MessageView], destroyed: list[int], modseq: int) -> Applied:
        """Take in a journal read: keyword changes at once, new messages appended,
        removed ones queued in ``pending_expunge``."""
        applied = Applied()
        if modseq > self.modseq:
            self.modseq = modseq
        if changed:
            self._own()
        for uid in destroyed:
            if self.index_of(uid) is not None:
                self.pending_expunge.add(uid)
        for view in changed:
            if view.uid in self.pending_expunge:
                continue
            i = self.index_of(view.uid)
            if i is None:
                self._insert(view)
                applied.new_messages += 1
                continue
            # A change the session made itself has already moved the view's modseq.
            if view.modseq > self.modseqs[i]:
                self.modseqs[i] = view.modseq
                applied.flag_changes.append(view)
                self.keywords_in_use.update(view.keywords.split())
            self.highest_modseq = max(self.highest_modseq, view.modseq)
        if self._columns is None:
            self._share()
        return applied

    def _insert(self, view: MessageView) -> None:
        i = bisect_left(self.uids, view.uid)
        if i == len(self.uids):
            self.uids.append(view.uid)
            self.modseqs.append(view.modseq)
        else:  # pragma: no cover - UIDs ascend in commit order (store concurrency test)
            self.uids.insert(i, view.uid)
            self.modseqs.insert(i, view.modseq)
        self.keywords_in_use.update(view.keywords.split())
        self.uidnext = max(self.uidnext, view.uid + 1)
        self.highest_modseq = max(self.highest_modseq, view.modseq)

    def update(self, view: MessageView) -> None:
        """A change this session made itself (STORE, \\Seen side effect)."""
        i = self.index_of(view.uid)
        if i is not None:
            if view.modseq > self.modseqs[i]:
                self._own()
                self.modseqs[i] = view.modseq
                self._share()
            self.keywords_in_use.update(view.keywords.split())
            self.highest_modseq = max(self.highest_modseq, view.modseq)

    def remove(self, uids: list[int]) -> list[int]:
        """Remove messages; returns the sequence numbers to announce, in the order of
        announcement (RFC 9051 §7.5.1: each number is valid after the previous ones)."""
        numbers: list[int] = []
        doomed = sorted(set(uids), reverse=True)
        positions = [i for i in (self.index_of(u) for u in doomed) if i is not None]
        if not positions:
            self.pending_expunge.difference_update(uids)
            return numbers
        self._own()
        if len(positions) > 64:
            keep = set(range(len(self.uids))) - set(positions)
            order = sorted(keep)
            self.uids = array("I", (self.uids[i] for i in order))
            self.modseqs = array("Q", (self.modseqs[i] for i in order))
            numbers = [i + 1 for i in positions]
        else:
            for i in positions:
                del self.uids[i]
                del self.modseqs[i]
                numbers.append(i + 1)
        self._share()
        self.pending_expunge.difference_update(uids)
        return numbers
