"""Mailbox names on the wire.

RFC 3501 §5.1.3 (and RFC 9051 §5.1.3, kept for IMAP4rev1 clients): the Mailbox
International Naming Convention, "modified UTF-7".  Printable US-ASCII other than "&"
stands for itself, "&" is written "&-", every other character is UTF-16BE encoded in
modified BASE64 (RFC 2152 with "," instead of "/" and no padding) between "&" and "-".

RFC 3501 §5.1 / RFC 9051 §5.1: the name INBOX is case-insensitive.

RFC 6855 §3 / RFC 9051 §5.1: once UTF8=ACCEPT or IMAP4rev2 is enabled, names travel as
UTF-8 and this codec is not applied.

Decoding is strict: an encoded name is accepted only if it is the canonical encoding of
what it decodes to (no base64 for characters that could stand for themselves, no
adjacent shifted runs, zero padding bits, paired surrogates), so one mailbox has exactly
one spelling on the wire.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["InvalidMailboxName", "decode", "encode", "normalize_inbox"]


class InvalidMailboxName(ValueError):
    """A name that is not valid modified UTF-7 (RFC 3501 §5.1.3)."""


def _is_direct(char: str) -> bool:
    """RFC 3501 §5.1.3: printable US-ASCII (0x20-0x7e) represents itself."""
    return "\x20" <= char <= "\x7e"


def encode(name: str) -> str:
    """RFC 3501 §5.1.3: encode a Unicode mailbox name in modified UTF-7."""
    if name.isascii() and "&" not in name and name.isprintable():
        return name
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(raw).rstrip(b"=").replace(b"/", b",")
            out.append("&" + b64.decode("ascii") + "-")
            pending.clear()

    for char in name:
        if _is_direct(char):
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(encoded: str) -> str:
    """RFC 3501 §5.1.3: decode a modified UTF-7 mailbox name, strictly.

    Raises InvalidMailboxName when the text is not the canonical encoding of a name.
    """
    if "&" not in encoded:
        for char in encoded:
            if not _is_direct(char):
                raise InvalidMailboxName("mailbox name contains a non-printable or 8-bit character")
        return encoded
    out: list[str] = []
    pos = 0
    length = len(encoded)
    while pos < length:
        char = encoded[pos]
        if not _is_direct(char):
            raise InvalidMailboxName("mailbox name contains a non-printable or 8-bit character")
        if char != "&":
            out.append(char)
            pos += 1
            continue
        end = encoded.find("-", pos + 1)
        if end < 0:
            raise InvalidMailboxName("unterminated modified BASE64 run in mailbox name")
        run = encoded[pos + 1 : end]
        pos = end + 1
        if not run:
            out.append("&")
            continue
        out.append(_decode_run(run))
    decoded = "".join(out)
    if encode(decoded) != encoded:
        raise InvalidMailboxName("mailbox name is not in canonical modified UTF-7")
    return decoded


def _decode_run(run: str) -> str:
    """RFC 3501 §5.1.3: one "&...-" run: modified BASE64 of UTF-16BE, no padding."""
    if len(run) % 4 == 1 or "/" in run or "=" in run:
        raise InvalidMailboxName("invalid modified BASE64 in mailbox name")
    b64 = run.replace(",", "/") + "=" * (-len(run) % 4)
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidMailboxName("invalid modified BASE64 in mailbox name") from exc
    if len(raw) % 2:
        raise InvalidMailboxName("modified BASE64 run is not whole UTF-16 code units")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise InvalidMailboxName("unpaired UTF-16 surrogate in mailbox name") from exc
    for char in text:
        if _is_direct(char):
            raise InvalidMailboxName("printable US-ASCII encoded in modified BASE64")
        if char < "\x20" or "\x7f" <= char < "\xa0":
            # RFC 6855 §3 / RFC 5198: names are Net-Unicode, without control characters.
            raise InvalidMailboxName("control character in mailbox name")
    return text


def normalize_inbox(name: str, delimiter: str | None = None) -> str:
    """RFC 9051 §5.1: "INBOX" is case-insensitive; spell it INBOX.

    With a hierarchy delimiter, children of INBOX ("inbox/Lists") are normalised too.
    """
    if len(name) == 5 and name.upper() == "INBOX":
        return "INBOX"
    if delimiter and len(name) > 5 and name[:5].upper() == "INBOX" and name[5] == delimiter:
        return "INBOX" + name[5:]
    return name
