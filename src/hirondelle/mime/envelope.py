"""IMAP ENVELOPE: RFC 9051 §7.5.2 (and RFC 3501 §7.4.2, identical) rendered as IMAP bytes.

The strings are the header values as written, unfolded (RFC 5322 §2.2.3) and trimmed;
RFC 2047 encoded-words are not decoded (the client does that). Sender and Reply-To default
to From when absent or empty. Addresses are ``(name adl mailbox host)``; a group is opened
by ``(NIL NIL "group-name" NIL)`` and closed by ``(NIL NIL NIL NIL)``. An address without a
domain gets an empty host string (a NIL host would read as a group marker).
"""

from __future__ import annotations

from dataclasses import dataclass

from hirondelle.mime.addresses import AddressItem, ItemKind, parse_address_list
from hirondelle.mime.headers import Headers
from hirondelle.mime.imap_strings import NIL, render_list, render_nstring, render_string

_GROUP_END = b"(NIL NIL NIL NIL)"


def render_address_list(items: tuple[AddressItem, ...]) -> bytes:
    """RFC 9051 §7.5.2 address list: NIL when empty."""
    if not items:
        return NIL
    rendered: list[bytes] = []
    for item in items:
        if item.kind is ItemKind.GROUP_END:
            rendered.append(_GROUP_END)
        elif item.kind is ItemKind.GROUP_START:
            rendered.append(b"(NIL NIL " + render_string(item.name or b"") + b" NIL)")
        else:
            rendered.append(
                b"(%s %s %s %s)"
                % (
                    NIL if item.name is None else render_string(item.name),
                    NIL if item.route is None else render_string(item.route),
                    NIL if item.local_part is None else render_string(item.local_part),
                    render_string(item.domain or b""),
                )
            )
    return b"(" + b"".join(rendered) + b")"


@dataclass(frozen=True, slots=True)
class EnvelopeAddresses:
    """The address headers of one message, parsed once (no Sender/Reply-To defaulting)."""

    from_: tuple[AddressItem, ...]
    sender: tuple[AddressItem, ...]
    reply_to: tuple[AddressItem, ...]
    to: tuple[AddressItem, ...]
    cc: tuple[AddressItem, ...]
    bcc: tuple[AddressItem, ...]


def parse_envelope_addresses(headers: Headers) -> EnvelopeAddresses:
    """RFC 5322 §3.6.2-§3.6.3 originator and destination fields."""
    return EnvelopeAddresses(
        from_=parse_address_list(headers.get("from")),
        sender=parse_address_list(headers.get("sender")),
        reply_to=parse_address_list(headers.get("reply-to")),
        to=parse_address_list(headers.get("to")),
        cc=parse_address_list(headers.get("cc")),
        bcc=parse_address_list(headers.get("bcc")),
    )


def render_envelope(headers: Headers, addresses: EnvelopeAddresses | None = None) -> bytes:
    """RFC 9051 §7.5.2 ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to, message-id; NIL for absent fields; Sender and Reply-To default to From
    (RFC 3501 §7.4.2).
    """
    if addresses is None:
        addresses = parse_envelope_addresses(headers)
    from_ = render_address_list(addresses.from_)
    return render_list(
        [
            render_nstring(headers.get("date")),
            render_nstring(headers.get("subject")),
            from_,
            render_address_list(addresses.sender) if addresses.sender else from_,
            render_address_list(addresses.reply_to) if addresses.reply_to else from_,
            render_address_list(addresses.to),
            render_address_list(addresses.cc),
            render_address_list(addresses.bcc),
            render_nstring(headers.get("in-reply-to")),
            render_nstring(headers.get("message-id")),
        ]
    )
