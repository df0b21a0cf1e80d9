"""Delivery status notifications: RFC 3464 (message/delivery-status), RFC 6522
(multipart/report), with the human-readable part in French and English.

Sent with the null reverse-path (RFC 5321 §4.5.5) so that a notification is never
answered by another one. The returned copy is the original's header section
(``text/rfc822-headers``, RFC 6522 §4): enough to recognise the message, without
sending a large attachment back; the whole message (``message/rfc822``) only in a
failure notice for mail sent with ``RET=FULL`` (RFC 3461 §4.3).

RFC 3461 (DSN extension): the parameters of MAIL (RET, ENVID) and RCPT (NOTIFY, ORCPT)
are parsed here; ENVID and ORCPT come back in the report (RFC 3464 §2.2.1
Original-Envelope-Id, §2.3.1 Original-Recipient).
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

# RFC 3464 §2.3.3. "expanded": delivered to an alias that forwards it to several
# recipients; not a final state, their failures and delays may still be reported.
Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """RFC 3464 §2.3: one recipient's fate."""

    address: str
    action: Action
    status: str  # enhanced status code, e.g. "5.1.1" (RFC 3463)
    diagnostic: str  # the remote server's reply, "smtp; 550 5.1.1 ..."
    remote_mta: str = ""
    orcpt: str = ""  # RFC 3461 ORCPT, "addr-type;address"


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
    "delivered": (
        "Votre message a été remis aux destinataires suivants :",
        "Your message was delivered to the following recipients:",
        "Message remis / Delivery Notification: Delivered",
    ),
    "relayed": (
        "Votre message a été transmis aux serveurs des destinataires suivants, qui "
        "n'envoient pas d'accusé de remise :",
        "Your message was relayed to the servers of the following recipients, which do "
        "not send delivery notifications:",
        "Message transmis / Delivery Notification: Relayed",
    ),
    "expanded": (
        "Votre message a été remis aux adresses suivantes, qui le redistribuent à "
        "plusieurs destinataires (vous pourriez encore être prévenu d'un échec pour "
        "l'un d'eux) :",
        "Your message was delivered to the following addresses, which redistribute it to "
        "several recipients (you may still hear of a failure for one of them):",
        "Message redistribué / Delivery Notification: Expanded",
    ),
}


def build_report(
    *,
    reporting_host: str,
    sender: str,
    original: bytes,
    recipients: Sequence[RecipientStatus],
    arrival: float,
    envid: str = "",
    ret: str = "",
) -> bytes:
    """A multipart/report DSN to ``sender`` about ``recipients`` of ``original``; the
    human part lists them by action, and the first action in the order below (a failure
    first) names the subject."""
    order: tuple[Action, ...] = ("failed", "delayed", "relayed", "delivered", "expanded")
    actions = [a for a in order if any(r.action == a for r in recipients)]
    action = actions[0]
    subject = _TEXT[action][2]
    boundary = f"=_hirondelle_{secrets.token_hex(8)}"
    listings = {
        a: "\r\n".join(
            f"  <{r.address}>" + (f": {r.diagnostic}" if r.diagnostic else "")
            for r in recipients
            if r.action == a
        )
        for a in actions
    }
    human = "".join(
        f"{_TEXT[a][language]}\r\n\r\n{listings[a]}\r\n\r\n" for language in (0, 1) for a in actions
    )[:-2]
    per_message = [f"Original-Envelope-Id: {envid}"] if envid else []
    per_message += [
        f"Reporting-MTA: dns; {reporting_host}",
        f"Arrival-Date: {email.utils.formatdate(arrival)}",
    ]
    per_recipient = []
    for r in recipients:
        block = []
        if r.orcpt:
            addr_type, _, address = r.orcpt.partition(";")
            block.append(f"Original-Recipient: {addr_type}; {address}")
        block += [
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
    full = ret == "FULL" and action == "failed"
    returned = original if full else header_block(original)
    returned = returned.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
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
                "Content-Type: message/rfc822" if full else "Content-Type: text/rfc822-headers",
                # RFC 2046 §5.2.1: an 8-bit message is labelled so (7bit is the default).
                *([] if returned.isascii() else ["Content-Transfer-Encoding: 8bit"]),
                "",
                "",
            ]
        ).encode("utf-8"),
        returned,
        # A header section needs its blank line; the full message already ends a line.
        (b"" if full and returned.endswith(b"\r\n") else b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode("ascii"),
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


# -- RFC 3461 parameters ----------------------------------------------------------------

# RFC 3461 §4.4: ENVID is at most 100 characters; §4.2: ORCPT at most 500.
ENVID_LIMIT = 100
ORCPT_LIMIT = 500
NOTIFY_KEYWORDS = ("SUCCESS", "FAILURE", "DELAY")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")


class ParameterError(ValueError):
    """A malformed DSN parameter: the SMTP reply is ``501 5.5.4``."""


def encode_xtext(text: str) -> str:
    """RFC 3461 §4: xchar is "!" to "~" but "+" and "="; anything else is "+XX"."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*\Z")


def decode_xtext(value: str) -> str:
    """RFC 3461 §4: the inverse of :func:`encode_xtext`; the hex digits are upper case,
    and the result is printable US-ASCII (§4.2, §4.4: both parameters are ASCII)."""
    if not _XTEXT.match(value):
        raise ParameterError(f"not xtext: {value!r}")
    decoded = re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)
    if not all(32 <= ord(c) <= 126 for c in decoded):
        raise ParameterError("xtext decodes to non-printable or non-ASCII characters")
    return decoded


@dataclass(frozen=True, slots=True)
class MailParameters:
    """RFC 3461 §4.3-4.4: MAIL FROM's RET and ENVID ("" when absent)."""

    ret: str = ""  # "FULL", "HDRS" or ""
    envid: str = ""  # decoded


@dataclass(frozen=True, slots=True)
class RecipientParameters:
    """RFC 3461 §4.1-4.2: RCPT TO's NOTIFY and ORCPT ("" when absent)."""

    notify: str = ""  # "NEVER" or a comma list of NOTIFY_KEYWORDS, or ""
    orcpt: str = ""  # "addr-type;decoded address"

    def wants(self, keyword: str) -> bool:
        """RFC 3461 §4.1: without NOTIFY, FAILURE and DELAY are asked for."""
        if not self.notify:
            return keyword in ("FAILURE", "DELAY")
        return keyword in self.notify.split(",")


def split_mail_parameters(params: list[str]) -> tuple[MailParameters, list[str]]:
    """RET and ENVID from ``KEY=VALUE`` words (case kept); the other words back."""
    ret = envid = None
    rest: list[str] = []
    for word in params:
        key, eq, value = word.partition("=")
        name = key.upper()
        if name == "RET":
            if ret is not None or value.upper() not in ("FULL", "HDRS"):
                raise ParameterError("RET is FULL or HDRS, once (RFC 3461 §4.3)")
            ret = value.upper()
        elif name == "ENVID":
            if envid is not None or not eq:
                raise ParameterError("ENVID takes one xtext value (RFC 3461 §4.4)")
            envid = decode_xtext(value)
            if not envid or len(envid) > ENVID_LIMIT:
                raise ParameterError("ENVID is 1 to 100 characters (RFC 3461 §4.4)")
        else:
            rest.append(word)
    return MailParameters(ret or "", envid or ""), rest


def split_recipient_parameters(params: list[str]) -> tuple[RecipientParameters, list[str]]:
    """NOTIFY and ORCPT from ``KEY=VALUE`` words (case kept); the other words back."""
    notify = orcpt = None
    rest: list[str] = []
    for word in params:
        key, _, value = word.partition("=")
        name = key.upper()
        if name == "NOTIFY":
            if notify is not None:
                raise ParameterError("NOTIFY given twice (RFC 3461 §4.1)")
            notify = _notify(value.upper())
        elif name == "ORCPT":
            if orcpt is not None or len(value) > ORCPT_LIMIT:
                raise ParameterError("ORCPT is once, at most 500 characters (RFC 3461 §4.2)")
            addr_type, semicolon, xtext = value.partition(";")
            if not semicolon or not _ADDR_TYPE.match(addr_type) or not xtext:
                raise ParameterError("ORCPT is addr-type;xtext (RFC 3461 §4.2)")
            orcpt = f"{addr_type.lower()};{decode_xtext(xtext)}"
        else:
            rest.append(word)
    return RecipientParameters(notify or "", orcpt or ""), rest


def _notify(value: str) -> str:
    if value == "NEVER":
        return value
    items = value.split(",")
    if not value or len(set(items)) != len(items) or not set(items) <= set(NOTIFY_KEYWORDS):
        raise ParameterError("NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1)")
    return ",".join(k for k in NOTIFY_KEYWORDS if k in items)
