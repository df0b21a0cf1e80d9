"""JMAP ids of Hirondelle's objects (RFC 8620 §1.2: 1-255 characters of the URL-safe base64
alphabet).

Every type has a one-letter prefix before the store's integer id, so that an id of one
type is never taken for another's (``M12`` is a mailbox, ``E12`` an email) and a wrong or
foreign id is simply not found. Blobs are content-addressed: ``G`` + the SHA-256 in hex,
the same id whether the bytes came from an upload or from a delivered message.
"""

from __future__ import annotations

import re

ACCOUNT = "A"
MAILBOX = "M"
EMAIL = "E"
THREAD = "T"
BLOB = "G"

_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def valid(value: object) -> bool:
    """RFC 8620 §1.2: is ``value`` a syntactically valid Id?"""
    return isinstance(value, str) and _ID.match(value) is not None


def encode(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


def decode(prefix: str, value: object) -> int | None:
    """The store id inside ``value``, or None when it is not an id of this type."""
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    if digits != str(int(digits)):  # "M012" is not "M12": one spelling per object
        return None
    return int(digits)


def account(number: int) -> str:
    return encode(ACCOUNT, number)


def blob(sha256_hex: str) -> str:
    return BLOB + sha256_hex


def blob_hash(value: object) -> str | None:
    """The SHA-256 of a whole-blob id ``G<hex>``, or None."""
    if not isinstance(value, str) or not value.startswith(BLOB):
        return None
    digest = value[len(BLOB) :]
    return digest if _HASH.match(digest) else None
