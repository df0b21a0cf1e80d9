"""RFC 8621 §4.6 Email/set create: a message built from the structured Email object.

The client gives header properties (``from``, ``subject``, ``header:X-Foo:asText``...)
and either ``bodyStructure`` or ``textBody``/``htmlBody``/``attachments``, with text in
``bodyValues`` and binary content as blob ids. The result is RFC 5322 bytes (CRLF,
UTF-8 text in quoted-printable or base64 as the stdlib's generator picks), which then
take the ordinary ingest path (parsed once, stored as a blob).

Refusals are SetErrors naming the property at fault (``invalidProperties``) or
``blobNotFound`` with the missing blob ids (§4.6).
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from hirondelle.jmap.errors import SetError, invalid_properties

# Header fields the structured properties stand for: giving both is ambiguous.
_CONVENIENCE_HEADERS = {
    "from": "From",
    "sender": "Sender",
    "replyTo": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "subject": "Subject",
    "sentAt": "Date",
    "messageId": "Message-ID",
    "inReplyTo": "In-Reply-To",
    "references": "References",
}
_ADDRESS_PROPERTIES = ("from", "sender", "replyTo", "to", "cc", "bcc")
_ID_PROPERTIES = ("messageId", "inReplyTo", "references")
# RFC 8621 §4.6: properties the server sets; a create that gives them is refused.
SERVER_SET = frozenset({"id", "blobId", "threadId", "size", "hasAttachment", "preview", "headers"})
METADATA_INPUT = frozenset({"mailboxIds", "keywords", "receivedAt"})
BODY_INPUT = frozenset({"bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues"})
_MSG_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")

BlobReader = Callable[[str], Awaitable[tuple[bytes, str | None] | None]]


@dataclass
class Built:
    raw: bytes
    missing_blobs: list[str]


def _addresses(value: Any, prop: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_properties(prop)
    result = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str):
            raise invalid_properties(prop)
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid_properties(prop)
        address = item["email"].strip()
        if (
            "@" not in address
            or any(c in address for c in "<>,;")
            or not _one_line(address)
            # Internationalised addresses (RFC 6532) would need SMTPUTF8 end to end.
            or not address.isascii()
        ):
            raise invalid_properties(prop, description=f"{address!r} is not an address")
        if name is not None and not _one_line(name):
            raise invalid_properties(prop)
        result.append((name or "", address))
    return result


def _format_addresses(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(email.utils.formataddr(pair, charset="utf-8") for pair in pairs)


def _message_ids(value: Any, prop: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _MSG_ID.match(v) for v in value
    ):
        raise invalid_properties(prop, description="message ids are id-left@id-right")
    return list(value)


# Every character str.splitlines breaks at: the header generator refuses them all.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _one_line(value: str) -> bool:
    """No line break of any kind (CR, LF, but also VT, FF, FS, GS, RS, NEL, U+2028/9)."""
    return not any(c in _LINE_BREAKS for c in value)


def _text(value: Any, prop: str) -> str:
    if not isinstance(value, str) or not _one_line(value):
        raise invalid_properties(prop)
    return value


def _parse_date(value: Any, prop: str) -> datetime:
    if not isinstance(value, str):
        raise invalid_properties(prop)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_properties(prop, description="not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise invalid_properties(prop, description="the date needs a time zone")
    return moment


def _header_property_value(prop: str, form: str, value: Any) -> str:
    """The field value for ``header:Name:asForm`` input (RFC 8621 §4.6: the same forms
    as output)."""
    if form == "Raw":
        # Folding (CRLF before a space or tab) is allowed in the raw form; the generator
        # folds again as it needs.
        if not isinstance(value, str):
            raise invalid_properties(prop)
        unfolded = re.sub(r"\r\n(?=[ \t])", "", value)
        if not _one_line(unfolded):
            raise invalid_properties(prop)
        return unfolded.strip()
    if form == "Text":
        return _text(value, prop)
    if form == "Addresses":
        return _format_addresses(_addresses(value, prop))
    if form == "GroupedAddresses":
        if not isinstance(value, list):
            raise invalid_properties(prop)
        pieces = []
        for group in value:
            if not isinstance(group, dict):
                raise invalid_properties(prop)
            members = _format_addresses(_addresses(group.get("addresses"), prop))
            name = group.get("name")
            if name is None:
                pieces.append(members)
            else:
                pieces.append(f"{_text(name, prop)}: {members};")
        return ", ".join(p for p in pieces if p)
    if form == "MessageIds":
        return " ".join(f"<{i}>" for i in _message_ids(value, prop))
    if form == "Date":
        return email.utils.format_datetime(_parse_date(value, prop))
    if form == "URLs":
        if not isinstance(value, list) or not all(
            isinstance(u, str) and _one_line(u) and "<" not in u and ">" not in u for u in value
        ):
            raise invalid_properties(prop)
        return ", ".join(f"<{u}>" for u in value)
    raise invalid_properties(prop)


def top_headers(create: dict[str, Any], hostname: str) -> list[tuple[str, str]]:
    """The header fields of the new message, in a conventional order."""
    from hirondelle.jmap.email_parts import parse_header_property

    fields: list[tuple[str, str]] = []
    given: set[str] = set()
    for prop, value in create.items():
        if not prop.startswith("header:"):
            continue
        wanted = parse_header_property(prop)
        if wanted is None or (wanted.all and not isinstance(value, list)):
            raise invalid_properties(prop)
        lowered = wanted.name.lower()
        if lowered.startswith("content-"):
            # RFC 8621 §4.6: Content-* of the top level come from the body structure.
            raise invalid_properties(prop, description="Content-* is set from the body")
        if lowered in given:
            raise invalid_properties(prop, description="the same header twice")
        given.add(lowered)
        values = value if wanted.all else [value]
        for item in values:
            fields.append((wanted.name, _header_property_value(prop, wanted.form, item)))
    for prop, header in _CONVENIENCE_HEADERS.items():
        if prop not in create or create[prop] is None:
            continue
        if header.lower() in given:
            raise invalid_properties(prop, f"header:{header}", description="given twice")
        value = create[prop]
        if prop in _ADDRESS_PROPERTIES:
            pairs = _addresses(value, prop)
            if pairs:
                fields.append((header, _format_addresses(pairs)))
        elif prop in _ID_PROPERTIES:
            found = _message_ids(value, prop)
            if prop == "messageId" and len(found) != 1:
                raise invalid_properties(prop, description="exactly one Message-ID")
            if found:
                fields.append((header, " ".join(f"<{i}>" for i in found)))
        elif prop == "subject":
            fields.append((header, _text(value, prop)))
        elif prop == "sentAt":
            fields.append((header, email.utils.format_datetime(_parse_date(value, prop))))
        given.add(header.lower())
    if "date" not in given:
        fields.append(("Date", email.utils.formatdate(localtime=False)))
    if "message-id" not in given:
        # RFC 5322 §3.6.4: unique; a draft gets one at once so replies can refer to it.
        fields.append(("Message-ID", f"<{secrets.token_hex(12)}@{hostname}>"))
    return fields


def _part_headers(part: dict[str, Any], prop: str) -> list[tuple[str, str]]:
    """``header:*`` properties of a body part. RFC 8621 §4.6: ``headers`` is not given on
    creation, and Content-Transfer-Encoding is the server's choice."""
    from hirondelle.jmap.email_parts import parse_header_property

    if part.get("headers") is not None:
        raise invalid_properties(prop, description="headers is not given on creation")
    fields = []
    for key, value in part.items():
        if key.startswith("header:"):
            wanted = parse_header_property(key)
            if wanted is None or wanted.all or wanted.name.lower() == "content-transfer-encoding":
                raise invalid_properties(prop, description=f"{key} in a body part")
            fields.append((wanted.name, _header_property_value(prop, wanted.form, value)))
    return fields


class Builder:
    """Turns one Email create object into bytes; ``read_blob`` fetches attachment
    content (None when the account cannot read the blob)."""

    def __init__(self, create: dict[str, Any], *, read_blob: BlobReader, hostname: str) -> None:
        self.create = create
        self.read_blob = read_blob
        self.hostname = hostname
        self.missing: list[str] = []
        values = create.get("bodyValues") or {}
        if not isinstance(values, dict):
            raise invalid_properties("bodyValues")
        self.values: dict[str, str] = {}
        for part_id, body in values.items():
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("value"), str)
                or body.get("isTruncated") not in (None, False)
                or body.get("isEncodingProblem") not in (None, False)
            ):
                raise invalid_properties(f"bodyValues/{part_id}")
            self.values[part_id] = body["value"]
        self.used_values: set[str] = set()
        self.verbatim: dict[bytes, bytes] = {}

    async def build(self) -> bytes:
        create = self.create
        unknown = [
            key
            for key in create
            if key in SERVER_SET
            or (
                key not in METADATA_INPUT
                and key not in BODY_INPUT
                and key not in _CONVENIENCE_HEADERS
                and not key.startswith("header:")
            )
        ]
        if unknown:
            raise invalid_properties(*unknown)
        fields = top_headers(create, self.hostname)
        if create.get("bodyStructure") is not None:
            if any(create.get(k) is not None for k in ("textBody", "htmlBody", "attachments")):
                raise invalid_properties(
                    "bodyStructure", description="bodyStructure or textBody/htmlBody, not both"
                )
            body = await self._part(create["bodyStructure"], "bodyStructure")
        else:
            body = await self._simple_body()
        if self.missing:
            raise SetError(
                "blobNotFound", "unknown blob ids", notFound=list(dict.fromkeys(self.missing))
            )
        unused = set(self.values) - self.used_values
        if unused:
            raise invalid_properties("bodyValues", description="a body value no part uses")
        for name, value in fields:
            body[name] = value
        if "MIME-Version" not in body:
            body["MIME-Version"] = "1.0"
        # Trace and structure fields first is conventional; the stdlib appends, so the
        # Content-* of the body part come before the header properties. Reorder.
        content = [(k, v) for k, v in body.items() if k.lower().startswith("content-")]
        others = [(k, v) for k, v in body.items() if not k.lower().startswith("content-")]
        for key in set(body.keys()):
            del body[key]
        for key, value in [*others, *content]:
            body[key] = value
        raw = body.as_bytes(policy=SMTP)
        for token, data in self.verbatim.items():
            raw = raw.replace(token, data, 1)
        return raw

    async def _simple_body(self) -> EmailMessage:
        create = self.create
        text = self._single(create.get("textBody"), "textBody", "text/plain")
        html = self._single(create.get("htmlBody"), "htmlBody", "text/html")
        attachments = create.get("attachments") or []
        if not isinstance(attachments, list):
            raise invalid_properties("attachments")
        parts: list[EmailMessage] = []
        if text is not None:
            parts.append(await self._part(text, "textBody"))
        if html is not None:
            parts.append(await self._part(html, "htmlBody"))
        if len(parts) == 2:
            body = EmailMessage(policy=SMTP)
            body.make_alternative()
            for part in parts:
                body.attach(part)
        elif parts:
            body = parts[0]
        else:
            body = EmailMessage(policy=SMTP)
            body.set_content("", charset="utf-8")
        if not attachments:
            return body
        mixed = EmailMessage(policy=SMTP)
        mixed.make_mixed()
        mixed.attach(body)
        for index, attachment in enumerate(attachments):
            mixed.attach(await self._part(attachment, f"attachments/{index}"))
        return mixed

    def _single(self, value: Any, prop: str, media_type: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 1
            or not isinstance(value[0], dict)
            or value[0].get("type", media_type) != media_type
        ):
            # RFC 8621 §4.6: exactly one part of that type.
            raise invalid_properties(prop, description=f"one {media_type} part")
        return {**value[0], "type": media_type}

    async def _part(self, part: Any, prop: str) -> EmailMessage:
        if not isinstance(part, dict):
            raise invalid_properties(prop)
        media_type = part.get("type")
        sub_parts = part.get("subParts")
        if media_type is not None and (
            not isinstance(media_type, str)
            or not re.fullmatch(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+", media_type)
        ):
            raise invalid_properties(prop, description="type is type/subtype")
        result = EmailMessage(policy=SMTP)
        if sub_parts is not None or (media_type or "").lower().startswith("multipart/"):
            if not isinstance(sub_parts, list) or not sub_parts:
                raise invalid_properties(prop, description="a multipart needs subParts")
            subtype = (media_type or "multipart/mixed").split("/", 1)[1].lower()
            result.set_type(f"multipart/{subtype}")
            result.set_boundary("=_" + secrets.token_hex(12))
            result.set_payload([])
            for index, child in enumerate(sub_parts):
                result.attach(await self._part(child, f"{prop}/subParts/{index}"))
            return result
        part_id = part.get("partId")
        blob_id = part.get("blobId")
        if (part_id is None) == (blob_id is None):
            raise invalid_properties(prop, description="a leaf has partId or blobId")
        media_type = (media_type or ("text/plain" if part_id is not None else "")).lower()
        charset = part.get("charset")
        if part_id is not None:
            if part_id not in self.values:
                raise invalid_properties(prop, description=f"no bodyValues for {part_id!r}")
            if not media_type.startswith("text/"):
                raise invalid_properties(prop, description="bodyValues are for text/* parts")
            if charset not in (None, "utf-8", "UTF-8", "us-ascii"):
                raise invalid_properties(prop, description="text is sent as UTF-8")
            self.used_values.add(part_id)
            text = self.values[part_id]
            result.set_content(
                text,
                subtype=media_type.split("/", 1)[1],
                charset="utf-8",
                # 7-bit safe for any relay; plain ASCII stays readable as it is.
                cte="7bit" if text.isascii() and _short_lines(text) else "quoted-printable",
            )
        else:
            if not isinstance(blob_id, str):
                raise invalid_properties(prop)
            found = await self.read_blob(blob_id)
            if found is None:
                self.missing.append(blob_id)
                return result
            data, blob_type = found
            media_type = media_type or (blob_type or "application/octet-stream").split(";")[0]
            maintype, _, subtype = media_type.partition("/")
            if media_type == "message/rfc822":
                # A forwarded message stays a message (RFC 2046 §5.2.1: 7bit/8bit, never
                # base64), and stays as it is: the generator would refold its header
                # fields and break them at RS, NEL, U+2028... (str.splitlines), turning
                # one field into several. A placeholder goes through the generator and
                # build() puts the octets in its place.
                token = f"hirondelle-verbatim-{secrets.token_hex(16)}"
                result.set_content(
                    token.encode("ascii"), maintype="message", subtype="rfc822", cte="7bit"
                )
                if not data.isascii():
                    result.replace_header("Content-Transfer-Encoding", "8bit")
                self.verbatim[token.encode("ascii")] = re.sub(rb"\r?\n", b"\r\n", data)
            else:
                result.set_content(data, maintype=maintype, subtype=subtype or "octet-stream")
                if isinstance(charset, str) and re.fullmatch(r"[A-Za-z0-9_.:+-]{1,40}", charset):
                    result.set_param("charset", charset)
        name = part.get("name")
        disposition = part.get("disposition")
        if name is not None and (not isinstance(name, str) or not _one_line(name)):
            raise invalid_properties(prop)
        if disposition is not None and disposition not in ("inline", "attachment"):
            raise invalid_properties(prop, description="disposition is inline or attachment")
        if name or disposition:
            result["Content-Disposition"] = disposition or "attachment"
            if name:
                result.set_param("filename", name, header="Content-Disposition")
                result.set_param("name", name)
        cid = part.get("cid")
        if cid is not None:
            result["Content-ID"] = f"<{_text(cid, prop)}>"
        language = part.get("language")
        if language is not None:
            if not isinstance(language, list) or not all(
                isinstance(t, str) and re.fullmatch(r"[A-Za-z0-9-]{1,64}", t) for t in language
            ):
                raise invalid_properties(prop)
            result["Content-Language"] = ", ".join(language)
        location = part.get("location")
        if location is not None:
            result["Content-Location"] = _text(location, prop)
        for header, value in _part_headers(part, prop):
            if header in result:
                result.replace_header(header, value)
            else:
                result[header] = value
        del result["MIME-Version"]
        return result


def _short_lines(text: str) -> bool:
    """RFC 5322 §2.1.1: lines of at most 998 characters."""
    return all(len(line) <= 998 for line in text.splitlines())
