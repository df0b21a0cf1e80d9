"""IMAP ENVELOPE: RFC 9051 §7.5.2 (and RFC 3501 §7.4.2, identical) rendered as IMAP bytes.

The strings are the header values as written, unfolded (RFC 5322 §2.2.3) and trimmed;
RFC 2047 encoded-words are not decoded (the client does that). Sender and Reply-To default
to From when absent or empty. Addresses are ``(name adl mailbox host)``; a group is opened
by ``(NIL NIL "group-name" NIL)`` and closed by ``(NIL NIL NIL NIL)``. An address without a
domain gets an empty host string (a NIL host would read as a group marker).
"""

from __future__ import annotations

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
                render_list(
                    [
                        render_nstring(item.name),
                        render_nstring(item.route),
                        render_nstring(item.local_part),
                        render_string(item.domain or b""),
                    ]
                )
            )
    return b"(" + b"".join(rendered) + b")"


def render_envelope(headers: Headers) -> bytes:
    """RFC 9051 §7.5.2 ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to, message-id; NIL for absent fields.
    """
    from_items = parse_address_list(headers.get("from"))
    sender_items = parse_address_list(headers.get("sender")) or from_items
    reply_to_items = parse_address_list(headers.get("reply-to")) or from_items
    return render_list(
        [
            render_nstring(headers.get("date")),
            render_nstring(headers.get("subject")),
            render_address_list(from_items),
            render_address_list(sender_items),
            render_address_list(reply_to_items),
            render_address_list(parse_address_list(headers.get("to"))),
            render_address_list(parse_address_list(headers.get("cc"))),
            render_address_list(parse_address_list(headers.get("bcc"))),
            render_nstring(headers.get("in-reply-to")),
            render_nstring(headers.get("message-id")),
        ]
    )
