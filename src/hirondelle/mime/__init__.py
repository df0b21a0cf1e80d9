"""Parsing at ingest: envelope, body structure, JMAP body parts, preview, threading, text.

See :func:`parse_message`. RFCs: 5322, 2045-2049, 2231, 6532, 9051 (§6.4.5, §7.5.2),
3501 (§7.4.2), 8621 (§4.1), 5256 (§2.1), 2183, 3282, 2919, 3834.
"""

from hirondelle.mime.addresses import Address
from hirondelle.mime.message import (
    ParsedMessage,
    PartLocation,
    canonicalize_line_endings,
    parse_message,
)

__all__ = [
    "Address",
    "ParsedMessage",
    "PartLocation",
    "canonicalize_line_endings",
    "parse_message",
]
