"""Message sequence number and UID sets.

RFC 9051 §9 (formal syntax): ``sequence-set``, ``seq-range``, ``seq-number`` ("*" is the
largest number in use); RFC 9051 §6.4.8 (a range "n:*" always includes the last UID,
"n:m" with n > m is the same as "m:n"); RFC 5182 §2.1 ("$", the result saved by
SEARCH RETURN (SAVE)).

A set is kept as the ranges the client wrote; it is resolved against the mailbox's
largest number when used and iterated as merged ranges, so ``1:4294967295`` costs
one tuple, never four billion integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["MAX_NUMBER", "STAR", "SequenceSet"]

#: RFC 9051 §9: nz-number is at most 4294967295 (2^32 - 1).
MAX_NUMBER = 4294967295
#: Stands for "*" in an unresolved range.
STAR = 0

_SET = re.compile(rb"(?:\d+|\*)(?::(?:\d+|\*))?(?:,(?:\d+|\*)(?::(?:\d+|\*))?)*")


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """RFC 9051 §9 ``sequence-set``, or RFC 5182 "$" when ``saved`` is true.

    ``ranges`` holds (first, last) pairs as written; ``STAR`` (0) stands for "*".
    """

    ranges: tuple[tuple[int, int], ...] = ()
    saved: bool = False

    @classmethod
    def saved_result(cls) -> SequenceSet:
        """RFC 5182 §2.1: "$", the saved search result."""
        return cls((), saved=True)

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        """A set of individual numbers, merged into ranges."""
        return cls.from_ranges((n, n) for n in numbers)

    @classmethod
    def from_ranges(cls, ranges: Iterator[tuple[int, int]] | list[tuple[int, int]]) -> SequenceSet:
        """A set from (first, last) pairs, merged and sorted (for responses)."""
        return cls(_merge(list(ranges)))

    @classmethod
    def parse(cls, text: bytes | str) -> SequenceSet:
        """RFC 9051 §9 ``sequence-set`` / RFC 5182 ``seq-last-command``.

        Raises ValueError with a message fit for a BAD response.
        """
        raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
        if raw == b"$":
            return cls.saved_result()
        if not _SET.fullmatch(raw):
            raise ValueError(f"Invalid sequence set {raw.decode('ascii', 'replace')!r}")
        ranges: list[tuple[int, int]] = []
        for item in raw.split(b","):
            first, _, last = item.partition(b":")
            low = _number(first)
            ranges.append((low, _number(last) if last else low))
        return cls(tuple(ranges))

    @property
    def has_star(self) -> bool:
        """True if "*" occurs (its value depends on the mailbox)."""
        return any(STAR in pair for pair in self.ranges)

    def resolve(self, largest: int) -> tuple[tuple[int, int], ...]:
        """RFC 9051 §6.4.8: sorted, merged, inclusive ranges with "*" = ``largest``.

        ``largest`` is the number of messages (sequence numbers) or the highest UID in
        use.  With an empty mailbox "*" resolves to nothing; a range "n:*" then keeps
        just "n" (RFC 9051 §6.4.8 lets it name the last UID even if n is higher).
        """
        if self.saved:
            raise ValueError("the saved search result ($) must be substituted first")
        pairs: list[tuple[int, int]] = []
        for first, last in self.ranges:
            if first == STAR and last == STAR:
                if largest:
                    pairs.append((largest, largest))
                continue
            low = largest if first == STAR else first
            high = largest if last == STAR else last
            if low == 0:
                low = high
            if high == 0:
                high = low
            pairs.append((low, high) if low <= high else (high, low))
        return _merge(pairs)

    def iter_ranges(self, largest: int) -> Iterator[tuple[int, int]]:
        """Resolved ranges, ascending (see :meth:`resolve`)."""
        return iter(self.resolve(largest))

    def iter_numbers(self, largest: int, *, limit: int | None = None) -> Iterator[int]:
        """Numbers in the set ascending, lazily; never above ``limit`` if given."""
        for low, high in self.resolve(largest):
            if limit is not None:
                if low > limit:
                    return
                high = min(high, limit)
            yield from range(low, high + 1)

    def contains(self, number: int, largest: int) -> bool:
        """Whether ``number`` is in the set once "*" is ``largest``."""
        for low, high in self.resolve(largest):
            if low <= number <= high:
                return True
            if low > number:
                return False
        return False

    def count(self, largest: int) -> int:
        """How many numbers the resolved set holds."""
        return sum(high - low + 1 for low, high in self.resolve(largest))

    def encode(self) -> bytes:
        """RFC 9051 §9: the wire form ("1:3,5,7:*" or "$")."""
        if self.saved:
            return b"$"
        parts = []
        for first, last in self.ranges:
            low = b"*" if first == STAR else str(first).encode()
            if first == last:
                parts.append(low)
            else:
                parts.append(low + b":" + (b"*" if last == STAR else str(last).encode()))
        return b",".join(parts)

    def __str__(self) -> str:
        return self.encode().decode("ascii")


def _number(raw: bytes) -> int:
    """RFC 9051 §9: seq-number = nz-number / "*"."""
    if raw == b"*":
        return STAR
    value = int(raw)
    if value == 0 or value > MAX_NUMBER:
        raise ValueError(f"Invalid sequence number {raw.decode('ascii')}")
    return value


def _merge(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or adjacent inclusive ranges."""
    if len(pairs) <= 1:
        return tuple((min(p), max(p)) for p in pairs)
    pairs = sorted((min(p), max(p)) for p in pairs)
    merged = [pairs[0]]
    for low, high in pairs[1:]:
        last_low, last_high = merged[-1]
        if low <= last_high + 1:
            if high > last_high:
                merged[-1] = (last_low, high)
        else:
            merged.append((low, high))
    return tuple(merged)
