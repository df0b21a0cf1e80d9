"""The outbound queue and DKIM keys in SQL.

DESIGN.md "Storage backends": the queue is an SQL table that any node may work on. A
worker *claims* due recipients by moving their ``next_attempt_at`` forward by a lease in
the same transaction that selects them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
single writer on SQLite), so two nodes never send the same recipient at once and a
worker that dies mid-send leaves its rows to be retried when the lease runs out.

A queued message references its blob (``blobs.refcount``), like an email does, so the
content stays while any recipient is pending and is released with the last one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.store import schema
from hirondelle.store.blobs import BlobRef
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.emails import reference_blob, release_blobs


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    message_id: int
    address: str
    domain: str
    next_attempt_at: int
    attempts: int
    last_error: str
    delay_warned: bool
    # RFC 3461 §4.1-4.2: NOTIFY ("" = FAILURE,DELAY) and ORCPT ("addr-type;address").
    notify: str
    orcpt: str
    # From the message row:
    blob_hash: str
    size: int
    mail_from: str
    account_id: int | None
    created_at: int
    ret: str  # RFC 3461 §4.3: "FULL", "HDRS" or ""
    envid: str  # RFC 3461 §4.4, decoded
    tls_policy: str  # RFC 8689: "required", "not-required" or "" (see schema)


def enqueue(
    ctx: WriteContext,
    *,
    blob: BlobRef,
    mail_from: str,
    recipients: Sequence[str],
    account_id: int | None,
    not_before: int | None = None,
    ret: str = "",
    envid: str = "",
    dsn_parameters: Mapping[str, tuple[str, str]] | None = None,
    tls_policy: str = "",
) -> int:
    """Queue one message for ``recipients`` (addresses ``local@domain``); its id.
    ``dsn_parameters`` maps a recipient to its RFC 3461 (NOTIFY, ORCPT)."""
    parameters = dsn_parameters or {}
    if not recipients:
        raise Refused(Reason.INVALID, "a queued message needs at least one recipient")
    now = now_us()
    reference_blob(ctx.conn, blob)
    message_id = ctx.conn.execute(
        schema.queue_messages.insert()
        .values(
            blob_hash=blob.hash,
            size=blob.size,
            mail_from=mail_from,
            account_id=account_id,
            created_at=now,
            ret=ret,
            envid=envid,
            tls_policy=tls_policy,
        )
        .returning(schema.queue_messages.c.id)
    ).scalar_one()
    ctx.conn.execute(
        schema.queue_recipients.insert(),
        [
            {
                "message_id": message_id,
                "address": address,
                "domain": address.rpartition("@")[2],
                "next_attempt_at": now if not_before is None else not_before,
                "attempts": 0,
                "last_error": "",
                "delay_warned": False,
                "notify": parameters.get(address, ("", ""))[0],
                "orcpt": parameters.get(address, ("", ""))[1],
            }
            for address in dict.fromkeys(recipients)
        ],
    )
    return int(message_id)


def _joined() -> sa.Select[tuple[object, ...]]:
    r, m = schema.queue_recipients, schema.queue_messages
    return sa.select(
        r.c.id,
        r.c.message_id,
        r.c.address,
        r.c.domain,
        r.c.next_attempt_at,
        r.c.attempts,
        r.c.last_error,
        r.c.delay_warned,
        r.c.notify,
        r.c.orcpt,
        m.c.blob_hash,
        m.c.size,
        m.c.mail_from,
        m.c.account_id,
        m.c.created_at,
        m.c.ret,
        m.c.envid,
        m.c.tls_policy,
    ).join(m, m.c.id == r.c.message_id)


def _recipient(row: sa.Row[tuple[object, ...]]) -> QueuedRecipient:
    values = dict(row._mapping)
    values["delay_warned"] = bool(values["delay_warned"])
    return QueuedRecipient(**values)


def claim_due(ctx: WriteContext, *, now: int, lease_us: int, limit: int) -> list[QueuedRecipient]:
    """Recipients due at ``now``, pushed ``lease_us`` forward so no one else takes them."""
    r = schema.queue_recipients
    ids = (
        ctx.conn.execute(
            sa.select(r.c.id)
            .where(r.c.next_attempt_at <= now)
            .order_by(r.c.next_attempt_at, r.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    ctx.conn.execute(r.update().where(r.c.id.in_(ids)).values(next_attempt_at=now + lease_us))
    rows = ctx.conn.execute(_joined().where(r.c.id.in_(ids)).order_by(r.c.domain, r.c.id))
    return [_recipient(row) for row in rows]


def next_due(conn: Connection) -> int | None:
    """When the earliest pending recipient is due (microseconds), or None when empty."""
    value = conn.execute(sa.select(sa.func.min(schema.queue_recipients.c.next_attempt_at))).scalar()
    return None if value is None else int(value)


def reschedule(
    ctx: WriteContext,
    recipient_id: int,
    *,
    next_attempt_at: int,
    error: str,
    delay_warned: bool | None = None,
) -> None:
    """Record a temporary failure and when to try again."""
    r = schema.queue_recipients
    values: dict[str, object] = {
        "next_attempt_at": next_attempt_at,
        "attempts": r.c.attempts + 1,
        "last_error": error[:2000],
    }
    if delay_warned is not None:
        values["delay_warned"] = delay_warned
    ctx.conn.execute(r.update().where(r.c.id == recipient_id).values(**values))


def remove_recipients(ctx: WriteContext, recipient_ids: Iterable[int]) -> int:
    """Drop recipients (delivered, bounced or deleted by the administrator); a message
    left without recipients goes too, releasing its blob. Returns how many were removed."""
    r, m = schema.queue_recipients, schema.queue_messages
    ids = list(recipient_ids)
    if not ids:
        return 0
    message_ids = set(
        ctx.conn.execute(sa.select(r.c.message_id).where(r.c.id.in_(ids))).scalars().all()
    )
    removed = ctx.conn.execute(r.delete().where(r.c.id.in_(ids))).rowcount
    still_used = set(
        ctx.conn.execute(sa.select(r.c.message_id).where(r.c.message_id.in_(message_ids)))
        .scalars()
        .all()
    )
    finished = sorted(message_ids - still_used)
    if finished:
        hashes = (
            ctx.conn.execute(sa.select(m.c.blob_hash).where(m.c.id.in_(finished))).scalars().all()
        )
        ctx.conn.execute(m.delete().where(m.c.id.in_(finished)))
        release_blobs(ctx.conn, hashes)
    return int(removed)


def list_recipients(conn: Connection) -> list[QueuedRecipient]:
    r = schema.queue_recipients
    return [_recipient(row) for row in conn.execute(_joined().order_by(r.c.message_id, r.c.id))]


def retry_now(ctx: WriteContext, message_ids: Sequence[int] | None, *, now: int) -> int:
    """Make recipients due at once (all, or those of ``message_ids``)."""
    r = schema.queue_recipients
    statement = r.update().values(next_attempt_at=now)
    if message_ids is not None:
        statement = statement.where(r.c.message_id.in_(list(message_ids)))
    return int(ctx.conn.execute(statement).rowcount)


def recipient_ids_of(conn: Connection, message_ids: Sequence[int]) -> list[int]:
    r = schema.queue_recipients
    return list(
        conn.execute(sa.select(r.c.id).where(r.c.message_id.in_(list(message_ids)))).scalars().all()
    )


# -- final outcomes (issue 7) ---------------------------------------------------------

#: How long an outcome no EmailSubmission refers to is kept: a submission is written just
#: after its message is queued, so a fast delivery may finish first.
OUTCOME_KEEP_US = 7 * 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a recipient that left the queue."""

    delivered: bool
    reply: str  # the remote's SMTP reply, or ours when it never gave a final one


def record_outcomes(
    ctx: WriteContext, outcomes: dict[tuple[int, str], Outcome], *, now: int
) -> None:
    """Keep the final outcome of recipients (queue message id, address) leaving the queue,
    and drop the old ones that no submission refers to. May be re-run (group commit): a
    row already there is replaced."""
    o = schema.queue_outcomes
    if outcomes:
        for message_id, address in outcomes:
            ctx.conn.execute(o.delete().where(o.c.message_id == message_id, o.c.address == address))
        ctx.conn.execute(
            o.insert(),
            [
                {
                    "message_id": message_id,
                    "address": address,
                    "delivered": outcome.delivered,
                    "reply": outcome.reply[:2000],
                    "finished_at": now,
                }
                for (message_id, address), outcome in outcomes.items()
            ],
        )
    submissions = schema.schema_vacation.email_submissions
    ctx.conn.execute(
        o.delete().where(
            o.c.finished_at < now - OUTCOME_KEEP_US,
            o.c.message_id.not_in(
                sa.select(submissions.c.queue_message_id).where(
                    submissions.c.queue_message_id.is_not(None)
                )
            ),
        )
    )


def outcomes_of(conn: Connection, message_ids: Sequence[int]) -> dict[int, dict[str, Outcome]]:
    """queue message id -> address -> final outcome, for recipients that left the queue."""
    o = schema.queue_outcomes
    found: dict[int, dict[str, Outcome]] = {}
    if not message_ids:
        return found
    rows = conn.execute(
        sa.select(o.c.message_id, o.c.address, o.c.delivered, o.c.reply).where(
            o.c.message_id.in_(list(message_ids))
        )
    )
    for message_id, address, delivered, reply in rows:
        found.setdefault(int(message_id), {})[str(address)] = Outcome(bool(delivered), str(reply))
    return found


def forget_outcomes(ctx: WriteContext, message_ids: Sequence[int]) -> None:
    """Drop the outcomes of queue messages (their submission is gone)."""
    if message_ids:
        o = schema.queue_outcomes
        ctx.conn.execute(o.delete().where(o.c.message_id.in_(list(message_ids))))


# -- DKIM keys -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str
    private_key: str
    public_key: str
    created_at: int


def add_dkim_key(
    ctx: WriteContext,
    *,
    domain: str,
    selector: str,
    algorithm: str,
    private_key: str,
    public_key: str,
) -> DkimKey:
    k = schema.dkim_keys
    exists = ctx.conn.execute(
        sa.select(k.c.id).where(k.c.domain == domain, k.c.selector == selector)
    ).first()
    if exists is not None:
        raise Refused(Reason.ALREADY_EXISTS, f"{domain} already has a DKIM selector {selector}")
    now = now_us()
    ctx.conn.execute(
        k.insert().values(
            domain=domain,
            selector=selector,
            algorithm=algorithm,
            private_key=private_key,
            public_key=public_key,
            created_at=now,
        )
    )
    return DkimKey(domain, selector, algorithm, private_key, public_key, now)


def dkim_keys_of(conn: Connection, domain: str) -> list[DkimKey]:
    k = schema.dkim_keys
    rows = conn.execute(sa.select(k).where(k.c.domain == domain).order_by(k.c.selector))
    return [
        DkimKey(
            domain=row.domain,
            selector=row.selector,
            algorithm=row.algorithm,
            private_key=row.private_key,
            public_key=row.public_key,
            created_at=row.created_at,
        )
        for row in rows
    ]
