"""Keywords: one spelling in the store, IMAP flags and JMAP keywords at the edges.

RFC 8621 §4.1.1 maps IMAP system flags to JMAP keywords (``\\Seen`` <-> ``$seen`` ...);
``\\Deleted`` has no JMAP keyword and is stored as ``$deleted`` (JMAP clients do not see
it: messages are destroyed directly). Keywords are case-insensitive in both protocols
(RFC 9051 §2.3.2, RFC 8621 §4.1.1) and are stored lowercased.
"""

from __future__ import annotations

from collections.abc import Iterable

SYSTEM_FLAGS = {
    "\\seen": "$seen",
    "\\answered": "$answered",
    "\\flagged": "$flagged",
    "\\draft": "$draft",
    "\\deleted": "$deleted",
}
_IMAP_SPELLING = {
    "$seen": "\\Seen",
    "$answered": "\\Answered",
    "$flagged": "\\Flagged",
    "$draft": "\\Draft",
    "$deleted": "\\Deleted",
}

SEEN = "$seen"
DELETED = "$deleted"


def from_imap(flag: str) -> str:
    """``\\Seen`` -> ``$seen``; ``$Forwarded`` -> ``$forwarded``."""
    lowered = flag.lower()
    return SYSTEM_FLAGS.get(lowered, lowered)


def to_imap(keyword: str) -> str:
    return _IMAP_SPELLING.get(keyword, keyword)


def from_imap_many(flags: Iterable[str]) -> set[str]:
    return {from_imap(flag) for flag in flags}
