"""RFC 8621 §4.6 Email/set, §4.7 Email/copy, §4.8 Email/import, §4.9 Email/parse.

Keywords and mailbox membership change through the same store functions as IMAP STORE,
COPY and EXPUNGE (store/emails.py), so both protocols journal alike and each sees the
other's changes. New messages (drafts, imports) take the one ingest path
(:meth:`MailService.ingest`: parsed once, blob durable) before the /set transaction; the
transaction only files them.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.jmap import blobs, ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.email import (
    DEFAULT_PROPERTIES,
    body_options,
    check_properties,
    decode,
    encode,
    render_email,
)
from hirondelle.jmap.email_build import Builder
from hirondelle.jmap.email_parts import leaves, locations
from hirondelle.jmap.errors import MethodError, SetError, invalid_properties, set_error_of
from hirondelle.jmap.standard import (
    SetContext,
    _savepoint_run,
    account_modseq,
    invalid,
    known_arguments,
    parse_state,
    run_set,
    state_string,
)
from hirondelle.mail.delivery import Ingested
from hirondelle.mime import parse_message
from hirondelle.mime.text import decode_transfer
from hirondelle.services import Services
from hirondelle.store import emails, jmap_blobs, jmap_emails
from hirondelle.store.database import WriteContext
from hirondelle.store.emails import structure_document

# RFC 8621 §4.1.1: a keyword is 1-255 of %x21-%x7e except ( ) { ] % * " \
_KEYWORD = re.compile(r"^[\x21-\x7e]{1,255}$")
_KEYWORD_FORBIDDEN = set('(){]%*"\\')


def check_keyword(keyword: object) -> str:
    if (
        not isinstance(keyword, str)
        or not _KEYWORD.match(keyword)
        or any(c in _KEYWORD_FORBIDDEN for c in keyword)
    ):
        raise invalid_properties("keywords", description=f"{keyword!r} is not a keyword")
    return keyword.lower()


def keyword_set(value: Any) -> set[str]:
    if not isinstance(value, dict) or not all(v is True for v in value.values()):
        raise invalid_properties("keywords", description="keywords map to true")
    return {check_keyword(k) for k in value}


def mailbox_set(sctx: SetContext | None, call: Call, value: Any) -> set[int]:
    if not isinstance(value, dict) or not all(v is True for v in value.values()) or not value:
        raise invalid_properties("mailboxIds", description="at least one mailbox, mapped to true")
    result = set()
    for raw in value:
        resolved = sctx.resolve_id(raw) if sctx is not None else call.resolve_id(raw)
        number = ids.decode(ids.MAILBOX, resolved)
        if number is None:
            raise invalid_properties("mailboxIds", description=f"no mailbox {raw!r}")
        result.add(number)
    return result


def parse_received_at(value: Any) -> int:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise invalid_properties("receivedAt", description="a UTCDate")
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise invalid_properties("receivedAt", description="a UTCDate") from None
    return int(moment.timestamp() * 1_000_000)


def _mailbox_refusal(refused: Refused) -> SetError:
    if refused.reason is Reason.NOT_FOUND:
        return invalid_properties("mailboxIds", description="no such mailbox")
    return set_error_of(refused)


def file_new(
    ctx: WriteContext,
    *,
    account_id: int,
    ingested: Ingested,
    mailbox_ids: set[int],
    keywords: set[str],
    received_at: int | None,
) -> dict[str, Any]:
    """Insert an ingested message; the server-set properties of the new email."""
    try:
        stored = emails.insert_email(
            ctx,
            account_id=account_id,
            mailbox_ids=sorted(mailbox_ids),
            parsed=ingested.parsed,
            blob=ingested.blob,
            keywords=keywords,
            received_at=received_at,
        )
    except Refused as refused:
        raise _mailbox_refusal(refused) from None
    return {
        "id": encode(stored.email_id),
        "blobId": ids.blob(ingested.blob.hash),
        "threadId": ids.encode(ids.THREAD, stored.thread_id),
        "size": ingested.blob.size,
    }


def update_email(sctx: SetContext, call: Call, object_id: str, patch: dict[str, Any]) -> None:
    """RFC 8621 §4.6 update: keywords and mailboxIds, whole or by patch path; every
    other property is immutable."""
    email_id = decode(object_id)
    assert email_id is not None
    conn = sctx.ctx.conn
    records = jmap_emails.email_records(conn, sctx.account_id, [email_id])
    record = records.get(email_id)
    if record is None:
        raise SetError("notFound")
    keywords: set[str] | None = None
    add_keywords: set[str] = set()
    remove_keywords: set[str] = set()
    boxes: set[int] | None = None
    add_boxes: set[int] = set()
    remove_boxes: set[int] = set()
    for path, value in patch.items():
        if path == "keywords":
            keywords = keyword_set(value)
        elif path.startswith("keywords/"):
            keyword = check_keyword(path[len("keywords/") :].replace("~1", "/").replace("~0", "~"))
            if value is True:
                add_keywords.add(keyword)
            elif value is None:
                remove_keywords.add(keyword)
            else:
                raise invalid_properties(path)
        elif path == "mailboxIds":
            boxes = mailbox_set(sctx, call, value)
        elif path.startswith("mailboxIds/"):
            raw = path[len("mailboxIds/") :]
            number = ids.decode(ids.MAILBOX, sctx.resolve_id(raw))
            if number is None:
                raise invalid_properties(path, description="no such mailbox")
            if value is True:
                add_boxes.add(number)
            elif value is None:
                remove_boxes.add(number)
            else:
                raise invalid_properties(path)
        else:
            raise invalid_properties(path, description="only keywords and mailboxIds change")
    if keywords is not None and (add_keywords or remove_keywords):
        raise SetError("invalidPatch", "keywords and keywords/... in one patch")
    if boxes is not None and (add_boxes or remove_boxes):
        raise SetError("invalidPatch", "mailboxIds and mailboxIds/... in one patch")
    ctx = sctx.ctx
    if keywords is not None or add_keywords or remove_keywords:
        emails.set_keywords(
            ctx,
            account_id=sctx.account_id,
            email_ids=[email_id],
            add=add_keywords,
            remove=remove_keywords,
            replace=keywords,
        )
    current = set(record.mailbox_ids)
    wanted = boxes if boxes is not None else (current | add_boxes) - remove_boxes
    if boxes is not None or add_boxes or remove_boxes:
        if not wanted:
            raise invalid_properties("mailboxIds", description="an email is in a mailbox")
        # Add before removing: the email is never in no mailbox (which destroys it).
        for mailbox_id in sorted(wanted - current):
            try:
                emails.copy_to_mailbox(
                    ctx, account_id=sctx.account_id, mailbox_id=mailbox_id, email_ids=[email_id]
                )
            except Refused as refused:
                raise _mailbox_refusal(refused) from None
        uids = dict(jmap_emails.memberships(conn, [email_id]).get(email_id, []))
        for mailbox_id in sorted(current - wanted):
            emails.remove_from_mailbox(
                ctx, account_id=sctx.account_id, mailbox_id=mailbox_id, uids=[uids[mailbox_id]]
            )


def destroy_email(ctx: WriteContext, account_id: int, email_id: int) -> None:
    """Remove the email from every mailbox (it is then destroyed, as by IMAP EXPUNGE)."""
    conn = ctx.conn
    if email_id not in jmap_emails.email_records(conn, account_id, [email_id]):
        raise SetError("notFound")
    for mailbox_id, uid in jmap_emails.memberships(conn, [email_id]).get(email_id, []):
        emails.remove_from_mailbox(ctx, account_id=account_id, mailbox_id=mailbox_id, uids=[uid])


async def read_blob(
    services: Services, account_id: int, blob_id: str
) -> tuple[bytes, str | None] | None:
    found = await blobs.find(services, account_id, blob_id)
    if found is None:
        return None
    if found.data is not None:
        return found.data, found.type
    assert found.hash is not None
    return await services.blobs.get(found.hash), found.type


@dataclass
class _Prepared:
    ingested: Ingested | None = None
    error: SetError | None = None
    mailbox_ids: set[int] | None = None
    keywords: set[str] | None = None
    received_at: int | None = None


async def _prepare_create(call: Call, create: dict[str, Any]) -> _Prepared:
    services = call.services
    try:
        if "mailboxIds" not in create:
            raise invalid_properties("mailboxIds", description="mailboxIds is required")
        keywords = keyword_set(create.get("keywords") or {})
        received_at = parse_received_at(create["receivedAt"]) if create.get("receivedAt") else None
        builder = Builder(
            create,
            read_blob=lambda blob_id: read_blob(services, call.account_id, blob_id),
            hostname=services.settings.server.hostname,
        )
        raw = await builder.build()
        if len(raw) > services.settings.limits.max_message_size:
            raise SetError("tooLarge", "the message is larger than the server accepts")
    except SetError as error:
        return _Prepared(error=error)
    return _Prepared(
        ingested=await services.mail.ingest(raw),
        mailbox_ids=None,
        keywords=keywords,
        received_at=received_at,
    )


@method("Email/set", capability=MAIL)
async def email_set(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.6 Email/set."""
    creates = call.args.get("create")
    prepared: dict[str, _Prepared] = {}
    if isinstance(creates, dict):
        for creation_id, properties in creates.items():
            if isinstance(properties, dict):
                prepared[creation_id] = await _prepare_create(call, properties)

    def create(
        sctx: SetContext, creation_id: str, properties: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        ready = prepared[creation_id]
        if ready.error is not None:
            raise ready.error
        assert ready.ingested is not None and ready.keywords is not None
        mailbox_ids = mailbox_set(sctx, call, properties.get("mailboxIds"))
        server_set = file_new(
            sctx.ctx,
            account_id=sctx.account_id,
            ingested=ready.ingested,
            mailbox_ids=mailbox_ids,
            keywords=ready.keywords,
            received_at=ready.received_at,
        )
        new_id = server_set.pop("id")
        return new_id, server_set

    def update(sctx: SetContext, object_id: str, patch: dict[str, Any]) -> None:
        update_email(sctx, call, object_id, patch)

    def destroy(sctx: SetContext, object_id: str) -> None:
        email_id = decode(object_id)
        assert email_id is not None
        destroy_email(sctx.ctx, sctx.account_id, email_id)

    return await run_set(call, create=create, update=update, destroy=destroy, decode=decode)


def _check_state(conn: Connection, account_id: int, if_in_state: object) -> int:
    current = account_modseq(conn, account_id)
    if if_in_state is not None and parse_state(if_in_state) != current:
        raise MethodError("stateMismatch", f"the state is {current}")
    return current


@method("Email/import", capability=MAIL)
async def email_import(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.8 Email/import: messages from uploaded blobs, through the same
    ingest as delivery."""
    known_arguments(call, ["ifInState", "emails"])
    if_in_state = call.args.get("ifInState")
    if if_in_state is not None and not isinstance(if_in_state, str):
        raise invalid("ifInState", "ifInState must be a state string or null")
    requests = call.args.get("emails")
    if not isinstance(requests, dict) or not all(isinstance(v, dict) for v in requests.values()):
        raise invalid("emails", "emails maps creation ids to EmailImport objects")
    if len(requests) > call.limits.max_objects_in_set:
        raise MethodError("requestTooLarge", "too many emails in one import")
    prepared: dict[str, _Prepared] = {}
    for creation_id, item in requests.items():
        try:
            unknown = set(item) - {"blobId", "mailboxIds", "keywords", "receivedAt"}
            if unknown:
                raise invalid_properties(*sorted(unknown))
            keywords = keyword_set(item.get("keywords") or {})
            received_at = parse_received_at(item["receivedAt"]) if item.get("receivedAt") else None
            blob_id = item.get("blobId")
            if not isinstance(blob_id, str):
                raise invalid_properties("blobId")
            found = await read_blob(call.services, call.account_id, blob_id)
            if found is None:
                raise SetError("blobNotFound", f"no blob {blob_id}", notFound=[blob_id])
            if len(found[0]) > call.services.settings.limits.max_message_size:
                raise SetError("tooLarge", "the message is larger than the server accepts")
            prepared[creation_id] = _Prepared(
                ingested=await call.services.mail.ingest(found[0]),
                keywords=keywords,
                received_at=received_at,
            )
        except SetError as error:
            prepared[creation_id] = _Prepared(error=error)

    def write(ctx: WriteContext) -> tuple[int, int, dict[str, Any], dict[str, Any], dict[str, str]]:
        old = _check_state(ctx.conn, call.account_id, if_in_state)
        sctx = SetContext(ctx, call)
        created: dict[str, Any] = {}
        not_created: dict[str, Any] = {}
        created_ids: dict[str, str] = {}
        for creation_id, ready in prepared.items():
            try:
                if ready.error is not None:
                    raise ready.error
                assert ready.ingested is not None and ready.keywords is not None
                ingested, keywords, received_at = ready.ingested, ready.keywords, ready.received_at
                mailbox_ids = mailbox_set(sctx, call, requests[creation_id].get("mailboxIds"))

                def file(
                    i: Ingested = ingested,
                    m: set[int] = mailbox_ids,
                    k: set[str] = keywords,
                    r: int | None = received_at,
                ) -> dict[str, Any]:
                    return file_new(
                        ctx,
                        account_id=call.account_id,
                        ingested=i,
                        mailbox_ids=m,
                        keywords=k,
                        received_at=r,
                    )

                result = _savepoint_run(sctx, file)
            except SetError as error:
                not_created[creation_id] = error.to_json()
                continue
            except Refused as refused:
                not_created[creation_id] = set_error_of(refused).to_json()
                continue
            created[creation_id] = result
            created_ids[creation_id] = result["id"]
        return old, account_modseq(ctx.conn, call.account_id), created, not_created, created_ids

    old, new, created, not_created, created_ids = await call.services.database.write(write)
    for creation_id, object_id in created_ids.items():
        call.created(creation_id, object_id)
    return {
        "accountId": call.account_id_string,
        "oldState": state_string(old),
        "newState": state_string(new),
        "created": created or None,
        "notCreated": not_created or None,
    }


@method("Email/copy", capability=MAIL)
async def email_copy(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.7 Email/copy copies between accounts. Nothing is shared between
    accounts here, so the only account there is to copy from is the target itself,
    which RFC 8620 §5.4 does not allow: within an account, Email/set mailboxIds does it."""
    known_arguments(
        call,
        [
            "fromAccountId",
            "ifFromInState",
            "ifInState",
            "create",
            "onSuccessDestroyOriginal",
            "destroyFromIfInState",
        ],
    )
    if call.args.get("fromAccountId") != call.account_id_string:
        raise MethodError("fromAccountNotFound", "no such account to copy from")
    raise invalid(
        "fromAccountId",
        "fromAccountId must differ from accountId; use Email/set mailboxIds within one account",
    )


def parsed_document(raw: bytes) -> tuple[dict[str, Any], Any]:
    parsed = parse_message(raw)
    document = json.loads(structure_document(parsed))
    document["subject"] = parsed.subject
    document["preview"] = parsed.preview
    return document, parsed


@method("Email/parse", capability=MAIL)
async def email_parse(call: Call) -> dict[str, Any]:
    """RFC 8621 §4.9 Email/parse: Email objects of message blobs, without storing them.
    Parts get blob ids ``Q<sha256>-<partId>`` that download reads from the message blob."""
    known_arguments(
        call,
        [
            "blobIds",
            "properties",
            "bodyProperties",
            "fetchTextBodyValues",
            "fetchHTMLBodyValues",
            "fetchAllBodyValues",
            "maxBodyValueBytes",
        ],
    )
    blob_ids = call.args.get("blobIds")
    if not isinstance(blob_ids, list) or not all(isinstance(b, str) for b in blob_ids):
        raise invalid("blobIds", "blobIds must be an array of Id")
    if len(blob_ids) > call.limits.max_objects_in_get:
        raise MethodError("requestTooLarge", "too many blobs in one parse")
    properties = call.args.get("properties")
    if properties is not None:
        if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
            raise invalid("properties", "properties must be an array of strings")
        check_properties(properties)
    else:
        properties = [
            p
            for p in DEFAULT_PROPERTIES
            if p not in ("id", "mailboxIds", "keywords", "receivedAt", "threadId")
        ]
    options = body_options(call)
    parsed_list: dict[str, Any] = {}
    not_parsable: list[str] = []
    not_found: list[str] = []
    loop = asyncio.get_running_loop()
    for blob_id in dict.fromkeys(blob_ids):
        found = await blobs.find(call.services, call.account_id, blob_id)
        if found is None or found.hash is None:
            (not_found if found is None else not_parsable).append(blob_id)
            continue
        raw = await call.services.blobs.get(found.hash)
        document, _parsed = await loop.run_in_executor(None, parsed_document, raw)
        blob_of = {p: f"Q{found.hash}-{p}" for p in leaves(document["bodyStructure"])}
        parsed_list[blob_id] = render_email(
            email_id=None,
            record=None,
            document=document,
            raw=raw,
            properties=properties,
            options=options,
            blob_id=blob_id,
            blob_id_of=blob_of,
            metadata={
                "id": None,
                "mailboxIds": None,
                "keywords": None,
                "receivedAt": None,
                "threadId": None,
                "size": len(raw),
            },
        )
    return {
        "accountId": call.account_id_string,
        "parsed": parsed_list or None,
        "notParsable": not_parsable or None,
        "notFound": not_found or None,
    }


_PARSED_PART = re.compile(r"^Q([0-9a-f]{64})-([1-9][0-9]{0,5})$")


@blobs.resolver
async def parsed_part_blob(services: Services, account_id: int, blob_id: str) -> blobs.Blob | None:
    """A part of a message blob the account may read (Email/parse's part blob ids)."""
    match = _PARSED_PART.match(blob_id)
    if match is None:
        return None
    digest, part_id = match.group(1), match.group(2)
    readable = await services.database.read(
        lambda conn: jmap_blobs.readable_blob(conn, account_id, digest)
    )
    if readable is None:
        return None
    raw = await services.blobs.get(digest)
    loop = asyncio.get_running_loop()
    document, _parsed = await loop.run_in_executor(None, parsed_document, raw)
    part = leaves(document["bodyStructure"]).get(part_id)
    if part is None:
        return None
    location = locations(document).get(str(part.get("section")))
    if location is None:
        return None
    _start, body_start, end, encoding = location
    data = decode_transfer(raw[body_start:end], encoding)
    return blobs.Blob(size=len(data), type=part.get("type"), data=data)
