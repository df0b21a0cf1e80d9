"""RFC 8621 §7: EmailSubmission/get, /changes, /query, /queryChanges and /set.

Sending goes through the one submission path, :class:`~hirondelle.mail.submission.
Transport`, as SMTP submission does: the envelope sender must be the account's
(``forbiddenMailFrom``), the From header too (``forbiddenFrom``), Message-ID and Date are
added when missing, the message is DKIM-signed, local recipients get it at once and remote
ones go to the outbound queue. ``deliveryStatus`` starts from that outcome, follows
the queue while a recipient is still in it, then reads the final outcome the queue keeps
(``delivered`` yes or no with the remote's ``smtpReply``). ``displayed`` is ``unknown``:
no MDN is tracked.

The submitted email is already in the account (filed in Sent by the client with
``onSuccessUpdateEmail``), so the account's ``save_sent_copy`` switch, meant for SMTP
clients, adds no second copy here.

No delayed sending (``maxDelayedSend`` 0): a submission is ``final`` at once, so
``undoStatus: canceled`` is answered ``cannotUnsend``. The Bcc header is never sent
(RFC 5322 §3.6.3): its addresses are recipients of the envelope only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.jmap import email as jmap_email
from hirondelle.jmap import email_set, ids
from hirondelle.jmap.api import SUBMISSION, Call, method
from hirondelle.jmap.email_parts import utc_date
from hirondelle.jmap.errors import MethodError, SetError, invalid_properties
from hirondelle.jmap.identity import decode as decode_identity
from hirondelle.jmap.identity import encode as encode_identity
from hirondelle.jmap.identity import ensure_identities
from hirondelle.jmap.standard import (
    FilterOperator,
    QueryArgs,
    changes,
    get_args,
    get_response,
    invalid,
    parse_filter,
    parse_sort,
    query_args,
    query_changes,
    set_arguments,
    state_string,
    window,
)
from hirondelle.mail.submission import Routing, header_values
from hirondelle.mime.addresses import decoded_addresses, parse_address_list
from hirondelle.mime.headers import unfold
from hirondelle.store import jmap_email_identities, jmap_email_submissions, jmap_emails, journal
from hirondelle.store import queue as queue_store
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.jmap_email_submissions import SubmissionRow

SUBMISSION_ID = "S"
PROPERTIES = (
    "id",
    "identityId",
    "emailId",
    "threadId",
    "envelope",
    "sendAt",
    "undoStatus",
    "deliveryStatus",
    "dsnBlobIds",
    "mdnBlobIds",
)
SORT_PROPERTIES = ("emailId", "threadId", "sentAt")
_CONDITIONS = frozenset({"identityIds", "emailIds", "threadIds", "undoStatus", "before", "after"})


def encode(submission_id: int) -> str:
    return ids.encode(SUBMISSION_ID, submission_id)


def decode(value: object) -> int | None:
    return ids.decode(SUBMISSION_ID, value)


def _status_now(
    row: SubmissionRow,
    queued: dict[str, tuple[int, str]] | None,
    outcomes: dict[str, queue_store.Outcome] | None = None,
) -> dict[str, Any]:
    """RFC 8621 §7 deliveryStatus: the stored status, with what the queue says of
    recipients still in it, and the final outcome of those that left it."""
    status = {address: dict(value) for address, value in row.delivery_status.items()}
    for address, value in status.items():
        value.setdefault("displayed", "unknown")
        if value.get("delivered") != "queued":
            continue
        if queued is not None and address in queued:
            _attempts, error = queued[address]
            if error:
                value["smtpReply"] = error if error[:3].isdigit() else f"451 4.4.0 {error}"
        elif outcomes is not None and address in outcomes:
            outcome = outcomes[address]
            value["delivered"] = "yes" if outcome.delivered else "no"
            value["smtpReply"] = outcome.reply
        else:
            # Gone from the queue with no outcome kept (deleted by the administrator).
            value["delivered"] = "unknown"
    return status


def to_json(
    row: SubmissionRow,
    queued: dict[str, tuple[int, str]] | None,
    outcomes: dict[str, queue_store.Outcome] | None = None,
) -> dict[str, Any]:
    return {
        "id": encode(row.id),
        "identityId": encode_identity(row.identity_id),
        "emailId": jmap_email.encode(row.email_id),
        "threadId": ids.encode(ids.THREAD, row.thread_id),
        "envelope": row.envelope,
        "sendAt": utc_date(row.send_at),
        "undoStatus": row.undo_status,
        "deliveryStatus": _status_now(row, queued, outcomes),
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    }


async def _rows_json(call: Call, numbers: list[int] | None) -> tuple[int, list[dict[str, Any]]]:
    def read(
        conn: Connection,
    ) -> tuple[int, list[SubmissionRow], dict[int, Any], dict[int, dict[str, Any]]]:
        rows = jmap_email_submissions.list_submissions(conn, call.account_id, numbers)
        queue_ids = [r.queue_message_id for r in rows if r.queue_message_id is not None]
        return (
            journal.account_modseq(conn, call.account_id)[0],
            rows,
            jmap_email_submissions.queued_recipients(conn, queue_ids),
            queue_store.outcomes_of(conn, queue_ids),
        )

    modseq, rows, queued, outcomes = await call.services.database.read(read)
    return modseq, [
        to_json(
            row,
            queued.get(row.queue_message_id) if row.queue_message_id else None,
            outcomes.get(row.queue_message_id) if row.queue_message_id else None,
        )
        for row in rows
    ]


@method("EmailSubmission/get", capability=SUBMISSION)
async def submission_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §7.1."""
    args = get_args(call, properties=PROPERTIES)
    numbers = None if args.ids is None else [n for n in map(decode, args.ids) if n is not None]
    modseq, objects = await _rows_json(call, numbers)
    found = {o["id"] for o in objects}
    return get_response(
        call,
        state=state_string(modseq),
        objects=objects,
        not_found=[*(i for i in args.ids or [] if i not in found), *args.unresolved],
        properties=args.properties,
    )


@method("EmailSubmission/changes", capability=SUBMISSION)
async def submission_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §7.2."""
    return await changes(call, kind=jmap_email_submissions.KIND, encode=encode)


def _check_condition(condition: dict[str, Any]) -> dict[str, Any]:
    unknown = set(condition) - _CONDITIONS
    if unknown:
        raise MethodError("unsupportedFilter", f"unknown conditions {sorted(unknown)}")
    for key in ("identityIds", "emailIds", "threadIds"):
        value = condition.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise MethodError("invalidArguments", f"{key} is an array of Id", arguments=["filter"])
    if condition.get("undoStatus") not in (None, "pending", "final", "canceled"):
        raise MethodError("invalidArguments", "undoStatus", arguments=["filter"])
    for key in ("before", "after"):
        if key in condition:
            value = condition[key]
            if not isinstance(value, str) or not value.endswith("Z"):
                raise MethodError("invalidArguments", f"{key} is a UTCDate", arguments=["filter"])
            try:
                datetime.fromisoformat(value[:-1] + "+00:00")
            except ValueError:
                raise MethodError(
                    "invalidArguments", f"{key} is a UTCDate", arguments=["filter"]
                ) from None
    return condition


def _matches(node: Any, item: dict[str, Any]) -> bool:
    if node is None:
        return True
    if isinstance(node, FilterOperator):
        results = [_matches(child, item) for child in node.conditions]
        if node.operator == "AND":
            return all(results)
        if node.operator == "OR":
            return any(results)
        return not any(results)
    for key, value in node.items():
        if key == "identityIds" and item["identityId"] not in value:
            return False
        if key == "emailIds" and item["emailId"] not in value:
            return False
        if key == "threadIds" and item["threadId"] not in value:
            return False
        if key == "undoStatus" and item["undoStatus"] != value:
            return False
        if key == "before" and not item["sendAt"] < value:
            return False
        if key == "after" and not item["sendAt"] >= value:
            return False
    return True


async def _query_results(call: Call, args: QueryArgs) -> tuple[list[str], str]:
    modseq, objects = await _rows_json(call, None)
    found = [o for o in objects if _matches(args.filter, o)]
    found.sort(key=lambda o: int(o["id"][1:]))
    for comparator in reversed(args.sort):
        key = {"emailId": "emailId", "threadId": "threadId", "sentAt": "sendAt"}[
            comparator.property
        ]

        def value(o: dict[str, Any], k: str = key) -> Any:
            return int(o[k][1:]) if k != "sendAt" else o[k]

        found.sort(key=value, reverse=not comparator.is_ascending)
    return [o["id"] for o in found], state_string(modseq)


@method("EmailSubmission/query", capability=SUBMISSION)
async def submission_query(call: Call) -> dict[str, Any]:
    """RFC 8621 §7.3."""
    args = query_args(call, condition=_check_condition, sort_properties=SORT_PROPERTIES)
    result_ids, state = await _query_results(call, args)
    return window(call, result_ids, args, query_state=state)


@method("EmailSubmission/queryChanges", capability=SUBMISSION)
async def submission_query_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §7.4."""
    filter_value, sort_value = call.args.get("filter"), call.args.get("sort")

    async def current() -> tuple[list[str], str]:
        args = QueryArgs(
            filter=parse_filter(filter_value, _check_condition),
            sort=parse_sort(sort_value, SORT_PROPERTIES),
            position=0,
            anchor=None,
            anchor_offset=0,
            limit=None,
            calculate_total=False,
        )
        return await _query_results(call, args)

    return await query_changes(
        call,
        kind=jmap_email_submissions.KIND,
        encode=encode,
        current=current,
        condition=_check_condition,
        sort_properties=SORT_PROPERTIES,
    )


# -- EmailSubmission/set ----------------------------------------------------------------------

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _envelope_address(value: Any, name: str) -> dict[str, Any]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("email"), str)
        or not _ADDRESS.match(value["email"])
        or not (value.get("parameters") is None or isinstance(value.get("parameters"), dict))
    ):
        raise invalid_properties("envelope", description=f"{name} is an Address")
    return {"email": value["email"], "parameters": value.get("parameters")}


def _addresses_of(raw: bytes, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        for value in header_values(raw, name):
            items = parse_address_list(unfold(value.encode("utf-8", "surrogateescape")))
            found.extend(a.email for a in decoded_addresses(items) if "@" in a.email)
    return found


def without_bcc(raw: bytes) -> bytes:
    """The message without its Bcc field(s) (RFC 5322 §3.6.3)."""
    end = raw.find(b"\r\n\r\n")
    header, body = (raw, b"") if end < 0 else (raw[: end + 2], raw[end + 2 :])
    kept: list[bytes] = []
    dropping = False
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.lower().startswith(b"bcc:")
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + body


@dataclass
class _Sent:
    creation_id: str
    email_id: int
    identity_id: int
    thread_id: int
    envelope: dict[str, Any]
    status: dict[str, Any]
    queue_id: int | None
    send_at: int = field(default_factory=now_us)


async def _send(call: Call, creation_id: str, create: Any) -> _Sent:
    """Check one creation and send it; SetError when refused (nothing sent then)."""
    services = call.services
    if not isinstance(create, dict):
        raise invalid_properties()
    unknown = set(create) - {"identityId", "emailId", "envelope"}
    if unknown:
        raise invalid_properties(*sorted(unknown))
    identity_id = decode_identity(call.resolve_id(create.get("identityId")))
    email_id = jmap_email.decode(call.resolve_id(create.get("emailId")))
    if identity_id is None:
        raise invalid_properties("identityId")
    if email_id is None:
        raise invalid_properties("emailId")

    def read(conn: Connection) -> tuple[Any, Any]:
        return (
            jmap_email_identities.get_identity(conn, call.account_id, identity_id),
            jmap_emails.email_records(conn, call.account_id, [email_id]).get(email_id),
        )

    identity, record = await services.database.read(read)
    if identity is None:
        raise invalid_properties("identityId", description="no such identity")
    if record is None:
        raise invalid_properties("emailId", description="no such email")
    raw = await services.blobs.get(record.blob_hash)
    envelope = create.get("envelope")
    if envelope is not None:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("rcptTo"), list):
            raise invalid_properties("envelope")
        mail_from = _envelope_address(envelope.get("mailFrom"), "mailFrom")
        rcpt_to = [_envelope_address(r, "rcptTo") for r in envelope["rcptTo"]]
    else:
        # RFC 8621 §7: Sender, else From; recipients from To, Cc and Bcc, deduplicated.
        senders = _addresses_of(raw, "sender") or _addresses_of(raw, "from")
        if not senders:
            raise SetError("invalidEmail", "the email has no From address", properties=["from"])
        mail_from = {"email": senders[0], "parameters": None}
        recipients = dict.fromkeys(a.lower() for a in _addresses_of(raw, "to", "cc", "bcc"))
        rcpt_to = [{"email": a, "parameters": None} for a in recipients]
    if not rcpt_to:
        raise SetError("noRecipients", "the envelope has no recipient")
    if len(rcpt_to) > services.settings.limits.max_recipients:
        raise SetError(
            "tooManyRecipients",
            f"at most {services.settings.limits.max_recipients} recipients",
            maxRecipients=services.settings.limits.max_recipients,
        )
    account = call.account
    transport = services.transport
    # The From header first: when it is someone else's, that is what the user must fix
    # (a generated envelope only repeats it).
    try:
        prepared = await transport.prepare_submission(account, without_bcc(raw))
    except Refused as refused:
        raise SetError("forbiddenFrom", refused.message) from None
    try:
        sender = await transport.check_sender(account, mail_from["email"])
    except Refused as refused:
        raise SetError("forbiddenMailFrom", refused.message) from None
    routing = Routing()
    invalid_recipients = []
    for recipient in rcpt_to:
        try:
            routing.add(await transport.check_recipient(recipient["email"], may_relay=True))
        except Refused as refused:
            if refused.reason is Reason.OVER_QUOTA:
                continue  # accepted, then refused at delivery: reported in deliveryStatus
            invalid_recipients.append(recipient["email"])
    if invalid_recipients:
        raise SetError(
            "invalidRecipients", "unknown or malformed", invalidRecipients=invalid_recipients
        )
    dispatched = await transport.dispatch(
        prepared, routing, mail_from=sender, account_id=account.id
    )
    status: dict[str, Any] = {}
    refused_accounts = {o.account_id: o.refused for o in dispatched.outcomes}
    local_results = await _local_results(call, [r["email"] for r in rcpt_to], refused_accounts)
    for recipient in rcpt_to:
        address = recipient["email"]
        if address.lower() in (q.lower() for q in dispatched.queued):
            status[address] = {"smtpReply": "250 2.0.0 Queued", "delivered": "queued"}
        elif local_results.get(address) is None:
            status[address] = {"smtpReply": "250 2.0.0 Delivered", "delivered": "yes"}
        else:
            status[address] = {"smtpReply": local_results[address], "delivered": "no"}
        status[address]["displayed"] = "unknown"
    return _Sent(
        creation_id=creation_id,
        email_id=record.id,
        identity_id=identity.id,
        thread_id=record.thread_id,
        envelope={"mailFrom": mail_from, "rcptTo": rcpt_to},
        status=status,
        queue_id=dispatched.queue_id,
    )


async def _local_results(
    call: Call, addresses: list[str], refused: dict[int, Refused | None]
) -> dict[str, str | None]:
    """address -> the refusal of local delivery (None when delivered or not local)."""
    results: dict[str, str | None] = {}
    for address in addresses:
        try:
            resolution = await call.services.transport.check_recipient(address, may_relay=True)
        except Refused as error:
            results[address] = f"552 5.2.2 {error.message}"
            continue
        failures = [refused.get(local.account_id) for local in resolution.local]
        failed = [f for f in failures if f is not None]
        results[address] = (
            f"550 5.0.0 {failed[0].message}" if failed and len(failed) == len(failures) else None
        )
    return results


@method("EmailSubmission/set", capability=SUBMISSION)
async def submission_set(call: Call) -> dict[str, Any]:
    """RFC 8621 §7.5."""
    if_in_state, creates, updates, destroys = set_arguments(
        call, extra_arguments=("onSuccessUpdateEmail", "onSuccessDestroyEmail")
    )
    on_update = call.args.get("onSuccessUpdateEmail") or {}
    on_destroy = call.args.get("onSuccessDestroyEmail") or []
    if not isinstance(on_update, dict) or not all(isinstance(v, dict) for v in on_update.values()):
        raise invalid("onSuccessUpdateEmail", "a map of EmailSubmission id to a PatchObject")
    if not isinstance(on_destroy, list) or not all(isinstance(v, str) for v in on_destroy):
        raise invalid("onSuccessDestroyEmail", "an array of EmailSubmission id")
    old = await call.services.database.read(
        lambda conn: journal.account_modseq(conn, call.account_id)[0]
    )
    if if_in_state is not None and if_in_state != old:
        raise MethodError("stateMismatch", f"the state is {old}")
    await ensure_identities(call)
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    sent: list[_Sent] = []
    for creation_id, create in creates.items():
        try:
            sent.append(await _send(call, creation_id, create))
        except SetError as error:
            not_created[creation_id] = error.to_json()

    # What was sent is recorded even if this write had to be retried: it has left.
    def write(ctx: WriteContext) -> dict[str, int]:
        return {
            item.creation_id: jmap_email_submissions.insert_submission(
                ctx,
                call.account_id,
                identity_id=item.identity_id,
                email_id=item.email_id,
                thread_id=item.thread_id,
                queue_message_id=item.queue_id,
                envelope=item.envelope,
                delivery_status=item.status,
                send_at=item.send_at,
            )
            for item in sent
        }

    new_ids = await call.services.database.write(write) if sent else {}
    email_of: dict[str, int] = {}
    for item in sent:
        object_id = encode(new_ids[item.creation_id])
        call.created(item.creation_id, object_id)
        created[item.creation_id] = {
            "id": object_id,
            "undoStatus": "final",
            "sendAt": utc_date(item.send_at),
        }
        email_of["#" + item.creation_id] = item.email_id
        email_of[object_id] = item.email_id

    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    existing_ids = [n for n in (decode(call.resolve_id(i)) for i in [*updates, *destroys]) if n]
    existing = {
        encode(row.id): row
        for row in await call.services.database.read(
            lambda conn: jmap_email_submissions.list_submissions(
                conn, call.account_id, existing_ids
            )
        )
    }
    for raw_id, patch in updates.items():
        object_id = call.resolve_id(raw_id) or raw_id
        row = existing.get(object_id)
        if row is None:
            not_updated[raw_id] = SetError("notFound").to_json()
        elif set(patch) - {"undoStatus"}:
            not_updated[raw_id] = invalid_properties(*sorted(set(patch) - {"undoStatus"})).to_json()
        elif patch.get("undoStatus") == "canceled":
            not_updated[raw_id] = SetError("cannotUnsend", "it has been sent").to_json()
        elif patch.get("undoStatus") != row.undo_status:
            not_updated[raw_id] = invalid_properties("undoStatus").to_json()
        else:
            updated[object_id] = None
            email_of[object_id] = row.email_id
    for raw_id in destroys:
        object_id = call.resolve_id(raw_id) or raw_id
        row = existing.get(object_id)
        if row is None:
            not_destroyed[raw_id] = SetError("notFound").to_json()
            continue
        number = row.id

        def delete(
            ctx: WriteContext, n: int = number, queue_id: int | None = row.queue_message_id
        ) -> bool:
            deleted = jmap_email_submissions.delete_submission(ctx, call.account_id, n)
            if deleted and queue_id is not None:
                # The outcomes live as long as the submission (issue 7).
                queue_store.forget_outcomes(ctx, [queue_id])
            return deleted

        if await call.services.database.write(delete):
            destroyed.append(object_id)
            email_of[object_id] = row.email_id
        else:
            not_destroyed[raw_id] = SetError("notFound").to_json()
    new = await call.services.database.read(
        lambda conn: journal.account_modseq(conn, call.account_id)[0]
    )
    response = {
        "accountId": call.account_id_string,
        "oldState": state_string(old),
        "newState": state_string(new),
        "created": created or None,
        "updated": updated or None,
        "destroyed": destroyed or None,
        "notCreated": not_created or None,
        "notUpdated": not_updated or None,
        "notDestroyed": not_destroyed or None,
    }
    await _on_success(call, email_of, on_update, on_destroy)
    return response


async def _on_success(
    call: Call, email_of: dict[str, int], on_update: dict[str, Any], on_destroy: list[str]
) -> None:
    """RFC 8621 §7.5: the implicit Email/set after the submissions that succeeded (its
    response follows this call's, with the same call id)."""
    update = {
        jmap_email.encode(email_of[key]): patch
        for key, patch in on_update.items()
        if key in email_of
    }
    destroy = [jmap_email.encode(email_of[key]) for key in on_destroy if key in email_of]
    if not update and not destroy:
        return
    implicit = Call(
        name="Email/set",
        call_id=call.call_id,
        args={
            "accountId": call.account_id_string,
            "update": update or None,
            "destroy": destroy or None,
        },
        request=call.request,
        account_id=call.account_id,
    )
    try:
        result = await email_set.email_set(implicit)
    except MethodError as error:
        call.also("error", error.to_json())
        return
    call.also("Email/set", result)
