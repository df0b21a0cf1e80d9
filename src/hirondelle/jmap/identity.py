"""RFC 8621 §6: Identity/get, Identity/changes, Identity/set.

Every address the account may send as (its own and its aliases, the rule of
:meth:`Transport.allowed_senders`, shared with SMTP submission) has a default identity,
made when an Identity method first sees the address and removed when the address is no
longer the account's; a client cannot destroy it (``mayDelete: false``). The user may add more
identities for those addresses or their ``+tag`` forms (another name, signature, Reply-To);
an address the submission rules refuse is ``forbiddenFrom``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Refused
from hirondelle.jmap import ids
from hirondelle.jmap.api import SUBMISSION, Call, method
from hirondelle.jmap.errors import SetError, invalid_properties
from hirondelle.jmap.pointer import PatchError, apply_patch
from hirondelle.jmap.standard import (
    SetContext,
    changes,
    get_args,
    get_response,
    run_set,
    state_string,
)
from hirondelle.store import jmap_email_identities as store
from hirondelle.store import journal
from hirondelle.store.database import WriteContext
from hirondelle.store.jmap_email_identities import IdentityRow

IDENTITY = "I"
PROPERTIES = (
    "id",
    "name",
    "email",
    "replyTo",
    "bcc",
    "textSignature",
    "htmlSignature",
    "mayDelete",
)


def encode(identity_id: int) -> str:
    return ids.encode(IDENTITY, identity_id)


def decode(value: object) -> int | None:
    return ids.decode(IDENTITY, value)


def to_json(row: IdentityRow) -> dict[str, Any]:
    return {
        "id": encode(row.id),
        "name": row.name,
        "email": row.email,
        "replyTo": row.reply_to,
        "bcc": row.bcc,
        "textSignature": row.text_signature,
        "htmlSignature": row.html_signature,
        "mayDelete": not row.is_default,
    }


async def ensure_identities(call: Call) -> None:
    """Bring the default identities in line with the addresses the account owns now (a
    write only when they differ), so an alias added or removed by the administrator shows
    in Identity/get and Identity/changes."""
    account = call.account
    allowed = await call.services.transport.allowed_senders(account)

    def differs(conn: Connection) -> bool:
        have = {r.email for r in store.list_identities(conn, account.id) if r.is_default}
        return have != allowed

    if await call.services.database.read(differs):

        def write(ctx: WriteContext) -> None:
            store.sync_defaults(ctx, account.id, allowed, account.display_name)

        await call.services.database.write(write)


def _addresses(value: Any, name: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_properties(name)
    result = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("email"), str)
            or "@" not in item["email"]
            or not (item.get("name") is None or isinstance(item.get("name"), str))
            or set(item) - {"name", "email"}
        ):
            raise invalid_properties(name)
        result.append({"name": item.get("name"), "email": item["email"]})
    return result


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_properties(name)
    return value


def _values(document: dict[str, Any]) -> dict[str, Any]:
    name = _text(document, "name")
    if "\r" in name or "\n" in name:
        raise invalid_properties("name")
    return {
        "name": name,
        "reply_to": _addresses(document.get("replyTo"), "replyTo"),
        "bcc": _addresses(document.get("bcc"), "bcc"),
        "text_signature": _text(document, "textSignature"),
        "html_signature": _text(document, "htmlSignature"),
    }


@method("Identity/get", capability=SUBMISSION)
async def identity_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §6.1."""
    args = get_args(call, properties=PROPERTIES)
    await ensure_identities(call)

    def read(conn: Connection) -> tuple[int, list[IdentityRow]]:
        return (
            journal.account_modseq(conn, call.account_id)[0],
            store.list_identities(conn, call.account_id),
        )

    modseq, rows = await call.services.database.read(read)
    by_id = {encode(row.id): to_json(row) for row in rows}
    wanted = list(by_id) if args.ids is None else args.ids
    return get_response(
        call,
        state=state_string(modseq),
        objects=[by_id[i] for i in wanted if i in by_id],
        not_found=[*(i for i in wanted if i not in by_id), *args.unresolved],
        properties=args.properties,
    )


@method("Identity/changes", capability=SUBMISSION)
async def identity_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §6.2."""
    await ensure_identities(call)
    return await changes(call, kind=store.KIND, encode=encode)


@method("Identity/set", capability=SUBMISSION)
async def identity_set(call: Call) -> dict[str, Any]:
    """RFC 8621 §6.3: ``email`` is set at creation, must be one the account may send as
    (else ``forbiddenFrom``) and is immutable; default identities cannot be destroyed."""
    await ensure_identities(call)
    # The sender check is async (it reads aliases): answered before the transaction.
    checked: dict[str, str | SetError] = {}
    creates = call.args.get("create")
    if isinstance(creates, dict):
        for creation_id, properties in creates.items():
            if not isinstance(properties, dict) or not isinstance(properties.get("email"), str):
                checked[creation_id] = invalid_properties("email")
                continue
            try:
                checked[creation_id] = await call.services.transport.check_sender(
                    call.account, properties["email"]
                )
            except Refused as refused:
                checked[creation_id] = SetError("forbiddenFrom", refused.message)

    def create(
        sctx: SetContext, creation_id: str, properties: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        email = checked[creation_id]
        if isinstance(email, SetError):
            raise email
        unknown = set(properties) - set(PROPERTIES)
        if unknown or "id" in properties or "mayDelete" in properties:
            raise invalid_properties(*sorted(unknown | ({"id", "mayDelete"} & set(properties))))
        identity_id = store.insert_identity(
            sctx.ctx, sctx.account_id, email=email, **_values(properties)
        )
        return encode(identity_id), {"mayDelete": True}

    def update(sctx: SetContext, object_id: str, patch: dict[str, Any]) -> None:
        identity_id = decode(object_id)
        assert identity_id is not None
        row = store.get_identity(sctx.ctx.conn, sctx.account_id, identity_id)
        if row is None:
            raise SetError("notFound")
        current = to_json(row)
        try:
            document = apply_patch(current, patch)
        except PatchError as exc:
            raise SetError("invalidPatch", str(exc)) from None
        for immutable in ("id", "email", "mayDelete"):
            if document.get(immutable) != current[immutable]:
                raise invalid_properties(immutable, description="immutable")
        unknown = set(document) - set(PROPERTIES)
        if unknown:
            raise invalid_properties(*sorted(unknown))
        store.update_identity(sctx.ctx, sctx.account_id, identity_id, **_values(document))

    def destroy(sctx: SetContext, object_id: str) -> None:
        identity_id = decode(object_id)
        assert identity_id is not None
        row = store.get_identity(sctx.ctx.conn, sctx.account_id, identity_id)
        if row is None:
            raise SetError("notFound")
        if row.is_default:
            raise SetError("forbidden", "the identity of one of the account's own addresses")
        store.delete_identity(sctx.ctx, sctx.account_id, identity_id)

    return await run_set(call, create=create, update=update, destroy=destroy, decode=decode)
