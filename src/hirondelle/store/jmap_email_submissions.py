"""SQL of JMAP EmailSubmission (RFC 8621 §7): what was sent, to whom, and how each
recipient fared (from the outbound queue while a recipient is still in it)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext
from hirondelle.store.schema_vacation import email_submissions

KIND = "EmailSubmission"


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    id: int
    identity_id: int
    email_id: int
    thread_id: int
    queue_message_id: int | None
    envelope: dict[str, Any]
    delivery_status: dict[str, Any]
    send_at: int
    undo_status: str


def _row(row: Any) -> SubmissionRow:
    return SubmissionRow(
        id=int(row.id),
        identity_id=int(row.identity_id),
        email_id=int(row.email_id),
        thread_id=int(row.thread_id),
        queue_message_id=row.queue_message_id,
        envelope=json.loads(row.envelope),
        delivery_status=json.loads(row.delivery_status),
        send_at=int(row.send_at),
        undo_status=str(row.undo_status),
    )


def insert_submission(
    ctx: WriteContext,
    account_id: int,
    *,
    identity_id: int,
    email_id: int,
    thread_id: int,
    queue_message_id: int | None,
    envelope: dict[str, Any],
    delivery_status: dict[str, Any],
    send_at: int,
) -> int:
    submission_id = int(
        ctx.conn.execute(
            email_submissions.insert()
            .values(
                account_id=account_id,
                identity_id=identity_id,
                email_id=email_id,
                thread_id=thread_id,
                queue_message_id=queue_message_id,
                envelope=json.dumps(envelope),
                delivery_status=json.dumps(delivery_status),
                send_at=send_at,
                undo_status="final",
            )
            .returning(email_submissions.c.id)
        ).scalar_one()
    )
    ctx.journal(account_id, KIND, submission_id, "created")
    return submission_id


def list_submissions(
    conn: Connection, account_id: int, submission_ids: Sequence[int] | None = None
) -> list[SubmissionRow]:
    query = (
        sa.select(email_submissions)
        .where(email_submissions.c.account_id == account_id)
        .order_by(email_submissions.c.id)
    )
    if submission_ids is not None:
        query = query.where(email_submissions.c.id.in_(list(submission_ids)))
    return [_row(row) for row in conn.execute(query)]


def delete_submission(ctx: WriteContext, account_id: int, submission_id: int) -> bool:
    deleted = ctx.conn.execute(
        email_submissions.delete().where(
            email_submissions.c.account_id == account_id, email_submissions.c.id == submission_id
        )
    ).rowcount
    if deleted:
        ctx.journal(account_id, KIND, submission_id, "destroyed")
    return bool(deleted)


def queued_recipients(
    conn: Connection, queue_message_ids: Sequence[int]
) -> dict[int, dict[str, tuple[int, str]]]:
    """queue message id -> address -> (attempts, last error) of recipients still queued."""
    qr = schema.queue_recipients
    found: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    if not queue_message_ids:
        return found
    for message_id, address, attempts, error in conn.execute(
        sa.select(qr.c.message_id, qr.c.address, qr.c.attempts, qr.c.last_error).where(
            qr.c.message_id.in_(list(queue_message_ids))
        )
    ):
        found[int(message_id)][str(address)] = (int(attempts), str(error))
    return found
