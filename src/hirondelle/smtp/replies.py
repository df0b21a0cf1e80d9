"""SMTP replies: the one boundary where outcomes become reply codes.

- :func:`refusal_reply` maps a domain :class:`Refused` to a reply with its enhanced
  status code (RFC 3463), per stage of the transaction.
- :func:`with_enhanced_code` gives every reply aiosmtpd writes itself ("250 OK",
  "503 Error: need MAIL command") the enhanced status code that RFC 2034 §3 requires once
  ENHANCEDSTATUSCODES is advertised. The greeting, EHLO lines, 334 challenges and the
  354 go-ahead carry none (RFC 2034 §3 exempts them).

Pure functions, no I/O: tested with the RFC's codes directly.
"""

from __future__ import annotations

import re
from typing import Literal

from hirondelle.errors import Reason, Refused

Stage = Literal["mail", "rcpt", "data"]

# RFC 3463 / RFC 5248: the detail implied by a basic code when aiosmtpd gives none.
_DEFAULT_DETAIL = {
    211: "2.0.0",
    214: "2.0.0",
    221: "2.0.0",
    235: "2.7.0",
    250: "2.0.0",
    251: "2.1.5",
    252: "2.5.0",
    421: "4.3.0",
    450: "4.2.0",
    451: "4.3.0",
    452: "4.3.1",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    535: "5.7.8",
    538: "5.7.11",
    550: "5.0.0",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.0.0",
    555: "5.5.4",
}
_NO_DETAIL = {220, 334, 354}
_REPLY = re.compile(r"^([2-5][0-9][0-9])([ -])(.*)$", re.DOTALL)
_HAS_DETAIL = re.compile(r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}( |$)")

# aiosmtpd's wording is kept where it is clear; these read better for a person.
_REWORDED = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big for this server",
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message too big for this server"
    ),
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long",
}


def with_enhanced_code(line: str) -> str:
    """``"250 OK"`` -> ``"250 2.0.0 OK"``; lines that have or need none are unchanged."""
    if line in _REWORDED:
        return _REWORDED[line]
    match = _REPLY.match(line)
    if match is None:
        return line
    code = int(match.group(1))
    text = match.group(3)
    # RFC 3463 §3.1: status classes are 2, 4 and 5 only; 3xx replies carry none.
    if code in _NO_DETAIL or code // 100 == 3 or _HAS_DETAIL.match(text):
        return line
    detail = _DEFAULT_DETAIL.get(code, f"{match.group(1)[0]}.0.0")
    return f"{match.group(1)}{match.group(2)}{detail} {text}".rstrip()


def refusal_reply(refused: Refused, *, stage: Stage) -> str:
    """RFC 5321 §4.2 codes with RFC 3463 details for each kind of refusal."""
    message = _one_line(refused.message)
    reason = refused.reason
    if reason is Reason.OVER_QUOTA:
        return f"452 4.2.2 {message}"
    if reason is Reason.TOO_LARGE:
        return f"552 5.3.4 {message}"
    if reason is Reason.NOT_FOUND:
        return f"550 5.1.1 {message}"
    if reason is Reason.FORBIDDEN:
        if stage == "rcpt":
            return f"550 5.7.1 {message}"
        return f"553 5.7.1 {message}"
    if reason is Reason.INVALID:
        detail = "5.1.7" if stage == "mail" else "5.1.3"
        return f"553 {detail} {message}"
    return f"451 4.3.0 {message}"


def _one_line(text: str) -> str:
    # A reply line must not carry CR/LF from a message (it would forge another reply).
    return " ".join(text.split())[:400]
