"""RFC 8621 §4: Email/get, Email/changes and the blob ids of an email's parts.

Everything is served from what ingest stored (``emails`` columns and the ``structure``
JSON: addresses, message ids, the JMAP body structure and the MIME part map, DESIGN.md
"Mail model"); the message's bytes are read only for what was not stored: ``headers``,
``header:*`` forms and body values.

Email/set, /import, /copy and /parse are in :mod:`hirondelle.jmap.email_set`, /query and
/queryChanges in :mod:`hirondelle.jmap.email_query`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.jmap import blobs, ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.email_parts import (
    BODY_PROPERTIES,
    DEFAULT_BODY_PROPERTIES,
    body_value,
    date_string,
    header_fields,
    header_value,
    headers_list,
    leaves,
    locations,
    parse_header_property,
    parse_part_blob_id,
    render_part,
    utc_date,
)
from hirondelle.jmap.errors import MethodError
from hirondelle.jmap.standard import (
    boolean,
    changes,
    get_args,
    get_response,
    invalid,
    state_string,
    unsigned_int,
)
from hirondelle.mail.search import written_date_time
from hirondelle.mime.text import decode_transfer
from hirondelle.services import Services
from hirondelle.store import jmap_emails, journal
from hirondelle.store.jmap_emails import EmailRecord

METADATA = ("id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt")
CONVENIENCE = (
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
)
BODY = (
    "bodyStructure",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
    "hasAttachment",
    "preview",
)
PROPERTIES = frozenset({*METADATA, *CONVENIENCE, *BODY, "headers"})
# RFC 8621 §4.2: what Email/get returns when ``properties`` is null.
DEFAULT_PROPERTIES = (
    *METADATA,
    *CONVENIENCE,
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
)
_ADDRESS_KEYS = {
    "sender": "sender",
    "from": "from",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "replyTo": "replyTo",
}


def encode(email_id: int) -> str:
    return ids.encode(ids.EMAIL, email_id)


def decode(value: object) -> int | None:
    return ids.decode(ids.EMAIL, value)


def keywords_object(text: str) -> dict[str, bool]:
    return dict.fromkeys(text.split(), True)


@dataclass(frozen=True, slots=True)
class BodyOptions:
    """RFC 8621 §4.2 Email/get arguments about bodies."""

    properties: tuple[str, ...] = DEFAULT_BODY_PROPERTIES
    fetch_text: bool = False
    fetch_html: bool = False
    fetch_all: bool = False
    max_bytes: int | None = None


def check_properties(requested: Sequence[str] | None, argument: str = "properties") -> None:
    for prop in requested or ():
        if prop in PROPERTIES:
            continue
        if prop.startswith("header:") and parse_header_property(prop) is not None:
            continue
        raise invalid(argument, f"unknown or malformed property {prop!r}")


def body_options(call: Call) -> BodyOptions:
    raw = call.args.get("bodyProperties")
    properties = DEFAULT_BODY_PROPERTIES
    if raw is not None:
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise invalid("bodyProperties", "bodyProperties must be an array of strings")
        for prop in raw:
            if prop not in BODY_PROPERTIES and (
                not prop.startswith("header:") or parse_header_property(prop) is None
            ):
                raise invalid("bodyProperties", f"unknown body part property {prop!r}")
        properties = tuple(raw)
    max_bytes = unsigned_int(call, "maxBodyValueBytes")
    if max_bytes == 0:
        raise invalid("maxBodyValueBytes", "maxBodyValueBytes must be greater than 0")
    return BodyOptions(
        properties=properties,
        fetch_text=boolean(call, "fetchTextBodyValues", default=False),
        fetch_html=boolean(call, "fetchHTMLBodyValues", default=False),
        fetch_all=boolean(call, "fetchAllBodyValues", default=False),
        max_bytes=max_bytes,
    )


def _needs_raw(properties: Sequence[str], options: BodyOptions) -> bool:
    if any(p == "headers" or p.startswith("header:") for p in properties):
        return True
    body_listed = any(
        p in properties for p in ("bodyStructure", "textBody", "htmlBody", "attachments")
    )
    if body_listed and any(p == "headers" or p.startswith("header:") for p in options.properties):
        return True
    fetching = options.fetch_all or options.fetch_text or options.fetch_html
    return "bodyValues" in properties and fetching


def render_email(
    *,
    email_id: int | None,
    record: EmailRecord | None,
    document: dict[str, Any],
    raw: bytes | None,
    properties: Sequence[str],
    options: BodyOptions,
    blob_id: str | None,
    blob_id_of: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Email object (RFC 8621 §4.1) with the requested properties. ``record`` is None
    for Email/parse (no metadata beyond ``blobId``/``size``)."""
    structure: dict[str, Any] = document["bodyStructure"]
    by_part = leaves(structure)
    sections = locations(document)
    fields = header_fields(raw[: _header_end(raw, record)]) if raw is not None else ()
    result: dict[str, Any] = {}

    def part_list(part_ids: list[str]) -> list[dict[str, Any]]:
        return [
            render_part(
                by_part[part_id],
                email_id=email_id,
                blob_id_of=blob_id_of,
                properties=options.properties,
                raw=raw,
                sections=sections,
            )
            for part_id in part_ids
            if part_id in by_part
        ]

    for prop in properties:
        if metadata is not None and prop in metadata:
            result[prop] = metadata[prop]
        elif prop == "id":
            result["id"] = encode(email_id) if email_id is not None else None
        elif prop == "blobId":
            result["blobId"] = blob_id
        elif prop == "threadId":
            result["threadId"] = ids.encode(ids.THREAD, record.thread_id) if record else None
        elif prop == "mailboxIds":
            result["mailboxIds"] = (
                {ids.encode(ids.MAILBOX, m): True for m in record.mailbox_ids} if record else None
            )
        elif prop == "keywords":
            result["keywords"] = keywords_object(record.keywords) if record else {}
        elif prop == "size":
            result["size"] = record.size if record else (len(raw) if raw is not None else 0)
        elif prop == "receivedAt":
            result["receivedAt"] = utc_date(record.received_at) if record else None
        elif prop in _ADDRESS_KEYS:
            found = document.get(_ADDRESS_KEYS[prop]) or []
            result[prop] = [{"name": a.get("name"), "email": a.get("email")} for a in found] or None
        elif prop in ("messageId", "inReplyTo", "references"):
            result[prop] = list(document.get(prop) or []) or None
        elif prop == "subject":
            result["subject"] = record.subject if record else document.get("subject")
        elif prop == "sentAt":
            # header:Date:asDate, with the sender's offset: from the stored ENVELOPE,
            # whose first item is the Date field as written.
            if record is not None:
                written = written_date_time(record.envelope)
                result["sentAt"] = date_string(written) if written is not None else None
            else:
                wanted = parse_header_property("header:Date:asDate")
                assert wanted is not None
                result["sentAt"] = header_value(fields, wanted)
        elif prop == "hasAttachment":
            result["hasAttachment"] = (
                record.has_attachment if record else bool(document.get("attachments"))
            )
        elif prop == "preview":
            result["preview"] = record.preview if record else document.get("preview", "")
        elif prop == "headers":
            result["headers"] = headers_list(fields)
        elif prop.startswith("header:"):
            wanted = parse_header_property(prop)
            assert wanted is not None
            result[prop] = header_value(fields, wanted)
        elif prop == "bodyStructure":
            result["bodyStructure"] = render_part(
                structure,
                email_id=email_id,
                blob_id_of=blob_id_of,
                properties=(*options.properties, "subParts")
                if "subParts" not in options.properties
                else options.properties,
                raw=raw,
                sections=sections,
            )
        elif prop in ("textBody", "htmlBody", "attachments"):
            result[prop] = part_list([str(p) for p in document.get(prop, [])])
        elif prop == "bodyValues":
            values: dict[str, Any] = {}
            if raw is not None:
                for part_id in _value_parts(document, by_part, options):
                    part = by_part[part_id]
                    location = sections.get(str(part.get("section")))
                    if location is None:
                        continue
                    values[part_id] = body_value(
                        raw, part, location, max_bytes=options.max_bytes
                    ).to_json()
            result["bodyValues"] = values
    return result


async def read_prefix(
    services: Services, record: EmailRecord, properties: Sequence[str], options: BodyOptions
) -> bytes:
    """The start of the message up to what the properties read: the header block, and the
    text parts whose values are fetched (which come before attachments in real mail), so a
    30 MB message is not read for its first text part. Part headers need the whole."""
    body_listed = any(
        p in properties for p in ("bodyStructure", "textBody", "htmlBody", "attachments")
    )
    if body_listed and any(p == "headers" or p.startswith("header:") for p in options.properties):
        return await services.blobs.get(record.blob_hash)
    end = record.header_end
    if "bodyValues" in properties:
        document = json.loads(record.structure)
        by_part = leaves(document["bodyStructure"])
        sections = locations(document)
        for part_id in _value_parts(document, by_part, options):
            location = sections.get(str(by_part[part_id].get("section")))
            if location is not None:
                end = max(end, location[2])
    return await services.blobs.read_range(record.blob_hash, 0, min(end, record.size))


def _value_parts(
    document: dict[str, Any], by_part: dict[str, dict[str, Any]], options: BodyOptions
) -> list[str]:
    """RFC 8621 §4.2: the text parts whose values the fetch* arguments ask for."""
    wanted: list[str] = []
    if options.fetch_all:
        wanted = list(by_part)
    else:
        if options.fetch_text:
            wanted.extend(str(p) for p in document.get("textBody", []))
        if options.fetch_html:
            wanted.extend(str(p) for p in document.get("htmlBody", []))
    return [
        p
        for p in dict.fromkeys(wanted)
        if p in by_part and str(by_part[p].get("type", "")).startswith("text/")
    ]


def _header_end(raw: bytes, record: EmailRecord | None) -> int:
    if record is not None:
        return record.header_end
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


@method("Email/get", capability=MAIL)
async def email_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.2 Email/get. ``ids: null`` is refused with requestTooLarge (§4.2
    allows it: a mail account is too large to return whole)."""
    extra = (
        "bodyProperties",
        "fetchTextBodyValues",
        "fetchHTMLBodyValues",
        "fetchAllBodyValues",
        "maxBodyValueBytes",
    )
    raw_properties = call.args.get("properties")
    if isinstance(raw_properties, list) and all(isinstance(p, str) for p in raw_properties):
        check_properties(raw_properties)
    args = get_args(
        call,
        properties=[*PROPERTIES, *(p for p in raw_properties or () if isinstance(p, str))]
        if isinstance(raw_properties, list)
        else PROPERTIES,
        extra_arguments=extra,
    )
    options = body_options(call)
    if args.ids is None:
        raise MethodError("requestTooLarge", "Email/get needs ids: an account is too large")
    properties = args.properties or ["id", *(p for p in DEFAULT_PROPERTIES if p != "id")]
    wanted = {object_id: decode(object_id) for object_id in args.ids}
    numbers = [n for n in wanted.values() if n is not None]

    def read(conn: Connection) -> tuple[int, dict[int, EmailRecord]]:
        return (
            journal.account_modseq(conn, call.account_id)[0],
            jmap_emails.email_records(conn, call.account_id, numbers),
        )

    modseq, records = await call.services.database.read(read)
    needs_raw = _needs_raw(properties, options)
    objects = []
    not_found = list(args.unresolved)
    for object_id, number in wanted.items():
        record = records.get(number) if number is not None else None
        if record is None:
            not_found.append(object_id)
            continue
        raw = await read_prefix(call.services, record, properties, options) if needs_raw else None
        objects.append(
            render_email(
                email_id=record.id,
                record=record,
                document=json.loads(record.structure),
                raw=raw,
                properties=properties,
                options=options,
                blob_id=ids.blob(record.blob_hash),
            )
        )
    return get_response(
        call,
        state=state_string(modseq),
        objects=objects,
        not_found=not_found,
        properties=None,
    )


@method("Email/changes", capability=MAIL)
async def email_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.3 (RFC 8620 §5.2 on the journal's ``Email`` rows)."""
    return await changes(call, kind="Email", encode=encode)


@blobs.resolver
async def part_blob(services: Services, account_id: int, blob_id: str) -> blobs.Blob | None:
    """RFC 8621 §4.1.4 ``blobId`` of a leaf part: its content, transfer-decoded."""
    parsed = parse_part_blob_id(blob_id)
    if parsed is None:
        return None
    email_id, part_id = parsed
    records = await services.database.read(
        lambda conn: jmap_emails.email_records(conn, account_id, [email_id])
    )
    record = records.get(email_id)
    if record is None:
        return None
    document = json.loads(record.structure)
    part = leaves(document["bodyStructure"]).get(part_id)
    if part is None:
        return None
    location = locations(document).get(str(part.get("section")))
    if location is None:
        return None
    _header_start, body_start, end, encoding = location
    raw = await services.blobs.read_range(record.blob_hash, body_start, end)
    data = decode_transfer(raw, encoding)
    return blobs.Blob(size=len(data), type=part.get("type"), data=data)
