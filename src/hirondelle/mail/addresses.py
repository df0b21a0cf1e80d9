"""Mail addresses as Hirondelle stores and compares them.

Addresses are stored lowercased (RFC 5321 §2.4 lets a server treat local parts
case-insensitively, and every mainstream server does). Plus-addressing
(``alice+tag@example.org``, RFC 5233 "subaddress") delivers to ``alice``.
"""

from __future__ import annotations

import re

from hirondelle.errors import Reason, Refused

# RFC 5321 §4.1.2 dot-string local parts, plus the UTF-8 of RFC 6531 (SMTPUTF8).
# No controls (C0, DEL, C1): NUL in an address made PostgreSQL refuse the query.
_LOCAL_PART = re.compile(r"^[^\s@\"(),:;<>\[\\\]\x00-\x1f\x7f-\x9f]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9\-\u0080-\U0010ffff]{1,63}(?<!-)$")

SUBADDRESS_SEPARATOR = "+"


def normalize_domain(name: str) -> str:
    """Lowercase, strip a trailing dot, check RFC 1035 label rules (IDN as UTF-8)."""
    domain = name.strip().lower().rstrip(".")
    if not domain or len(domain) > 253 or "." not in domain:
        raise Refused(Reason.INVALID, f"invalid domain name {name!r}")
    if not all(_DOMAIN_LABEL.match(label) for label in domain.split(".")):
        raise Refused(Reason.INVALID, f"invalid domain name {name!r}")
    return domain


def normalize_address(address: str) -> str:
    """``Local@Domain`` -> ``local@domain``, or Refused(INVALID) with the reason."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, sep, domain = text.rpartition("@")
    if not sep or not local:
        raise Refused(Reason.INVALID, f"invalid address {address!r}: expected local-part@domain")
    if (
        len(local) > 64
        or not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise Refused(Reason.INVALID, f"invalid address {address!r}: bad local part")
    return f"{local.lower()}@{normalize_domain(domain)}"


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def without_subaddress(address: str) -> str | None:
    """``alice+tag@d`` -> ``alice@d``; None when there is no subaddress."""
    local, domain = split_address(address)
    base, sep, _tag = local.partition(SUBADDRESS_SEPARATOR)
    if not sep or not base:
        return None
    return f"{base}@{domain}"


def catch_all_address(domain: str) -> str:
    """How a domain's catch-all alias is written: ``@domain``."""
    return f"@{domain}"
