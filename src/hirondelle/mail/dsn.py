"""Delivery status notifications: RFC 3464 (message/delivery-status), RFC 6522
(multipart/report), with the human-readable part in French and English.

Sent with the null reverse-path (RFC 5321 §4.5.5) so that a notification is never
answered by another one. The returned copy is the original's header section only
(``text/rfc822-headers``, RFC 6522 §4): enough to recognise the message, without
sending a large attachment back.
"""

from __future__ import annotations

import email.utils
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from typing import Literal

Action = Literal["failed", "delayed"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """RFC 3464 §2.3: one recipient's fate."""

    address: str
    action: Action
    status: str  # enhanced status code, e.g. "5.1.1" (RFC 3463)
    diagnostic: str  # the remote server's reply, "smtp; 550 5.1.1 ..."
    remote_mta: str = ""


_TEXT = {
    "failed": (
        "Votre message n'a pas pu être remis aux destinataires suivants :",
        "Your message could not be delivered to the following recipients:",
        "Échec de remise / Undelivered Mail Returned to Sender",
    ),
    "delayed": (
        "Votre message n'a pas encore pu être remis ; nous continuons d'essayer. "
        "Vous n'avez rien à faire pour l'instant.",
        "Your message has not been delivered yet; we are still trying. "
        "You do not need to do anything for now.",
        "Remise retardée / Delivery Delayed",
    ),
}


def build_report(
    *,
    reporting_host: str,
    sender: str,
    original: bytes,
    recipients: Sequence[RecipientStatus],
    arrival: float,
) -> bytes:
    """A multipart/report DSN to ``sender`` about ``recipients`` of ``original``."""
    action = "failed" if any(r.action == "failed" for r in recipients) else "delayed"
    french, english, subject = _TEXT[action]
    boundary = f"=_hirondelle_{secrets.token_hex(8)}"
    listing = "\r\n".join(f"  <{r.address}>: {r.diagnostic}" for r in recipients)
    human = f"{french}\r\n\r\n{listing}\r\n\r\n{english}\r\n\r\n{listing}\r\n"
    per_message = [
        f"Reporting-MTA: dns; {reporting_host}",
        f"Arrival-Date: {email.utils.formatdate(arrival)}",
    ]
    per_recipient = []
    for r in recipients:
        block = [
            f"Final-Recipient: rfc822; {r.address}",
            f"Action: {r.action}",
            f"Status: {r.status}",
        ]
        if r.remote_mta:
            block.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.diagnostic:
            block.append(f"Diagnostic-Code: {_one_line(r.diagnostic)}")
        per_recipient.append("\r\n".join(block))
    status = "\r\n".join(per_message) + "\r\n\r\n" + "\r\n\r\n".join(per_recipient) + "\r\n"
    headers = header_block(original).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    parts = [
        "\r\n".join(
            [
                f"From: Mail Delivery System <MAILER-DAEMON@{reporting_host}>",
                f"To: <{sender}>",
                f"Subject: {_encode_subject(subject)}",
                f"Date: {email.utils.formatdate(time.time())}",
                f"Message-ID: <{secrets.token_hex(12)}@{reporting_host}>",
                "Auto-Submitted: auto-replied",
                "MIME-Version: 1.0",
                "Content-Type: multipart/report; report-type=delivery-status;",
                f' boundary="{boundary}"',
                "",
                "This is a MIME-encapsulated message.",
                "",
                f"--{boundary}",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 8bit",
                "",
                human,
                f"--{boundary}",
                "Content-Type: message/delivery-status",
                "",
                status,
                f"--{boundary}",
                "Content-Type: text/rfc822-headers",
                "",
                "",
            ]
        ).encode("utf-8"),
        headers,
        f"\r\n\r\n--{boundary}--\r\n".encode("ascii"),
    ]
    return b"".join(parts)


def header_block(raw: bytes) -> bytes:
    """The header section of ``raw`` (RFC 5322 §2.1), without the blank line."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw[: match.start()] if match else raw


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _encode_subject(subject: str) -> str:
    # RFC 2047 encoded-word: the subject has accented French letters.
    return Header(subject, "utf-8").encode()
