"""Concurrent writers never produce duplicate UIDs or a modseq that goes backwards.

A property test: hypothesis draws a mix of operations (deliveries, appends into other
mailboxes, keyword changes, expunges), they all run at once as asyncio tasks (so on
SQLite they meet in the group-commit writer, on PostgreSQL in concurrent
transactions), while a reader keeps sampling the account's modseq. Then the invariants
are checked against the store and the journal.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.services import Services
from hirondelle.store import emails, journal, mailboxes, schema
from tests.messages import simple_message

OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["deliver", "append", "flag", "expunge"]), st.integers(0, 2)),
    min_size=5,
    max_size=40,
)

_accounts = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, seed=st.integers(0, 2**16))
async def test_concurrent_writers_keep_uids_unique_and_modseqs_monotonic(
    services: Services, operations: list[tuple[str, int]], seed: int
) -> None:
    rng = random.Random(seed)
    domains = {d.name for d, _ in await services.accounts.list_domains()}
    if "example.test" not in domains:
        await services.accounts.add_domain("example.test")
    account = await services.accounts.add_account(
        f"user{next(_accounts)}@example.test", password=None
    )
    boxes = [
        await services.database.read(
            lambda c: mailboxes.get_mailbox_by_role(c, account.id, "inbox")
        ),
        await services.database.write(lambda ctx: mailboxes.create_mailbox(ctx, account.id, "A")),
        await services.database.write(lambda ctx: mailboxes.create_mailbox(ctx, account.id, "B/C")),
    ]
    assert all(box is not None for box in boxes)
    box_ids = [box.id for box in boxes if box is not None]

    # Seed every mailbox so that flag and expunge operations have something to act on.
    for box_id in box_ids:
        await services.mail.append(account_id=account.id, mailbox_id=box_id, raw=simple_message())

    observed: list[int] = []
    stop = asyncio.Event()

    async def sample_modseq() -> None:
        while not stop.is_set():
            value = await services.database.read(lambda c: journal.account_modseq(c, account.id)[0])
            observed.append(value)
            await asyncio.sleep(0)

    async def run(operation: str, box_index: int) -> int | None:
        box_id = box_ids[box_index]
        if operation == "deliver":
            (outcome,) = await services.mail.deliver(simple_message(), [account.id])
            assert outcome.stored is not None
            return outcome.stored.modseq
        if operation == "append":
            stored = await services.mail.append(
                account_id=account.id, mailbox_id=box_id, raw=simple_message()
            )
            return stored.modseq
        view = await services.database.read(lambda c: emails.list_messages(c, box_id))
        if not view:
            return None
        target = rng.choice(view)
        if operation == "flag":
            keyword = rng.choice(["$seen", "$flagged", "$answered"])
            changes = await services.database.write(
                lambda ctx: emails.set_keywords(
                    ctx, account_id=account.id, email_ids=[target.email_id], add=[keyword]
                )
            )
            return changes[0].modseq if changes else None
        await services.database.write(
            lambda ctx: emails.remove_from_mailbox(
                ctx, account_id=account.id, mailbox_id=box_id, uids=[target.uid]
            )
        )
        return None

    sampler = asyncio.create_task(sample_modseq())
    results = await asyncio.gather(*(run(op, box) for op, box in operations))
    stop.set()
    await sampler

    # Every write that changed something got its own modseq.
    modseqs = [m for m in results if m is not None]
    assert len(modseqs) == len(set(modseqs))
    # A reader never saw the counter go backwards.
    assert observed == sorted(observed)

    def check(conn: sa.Connection) -> None:
        current, _ = journal.account_modseq(conn, account.id)
        assert max(modseqs, default=0) <= current
        for box_id in box_ids:
            box = mailboxes.get_mailbox_by_id(conn, account.id, box_id)
            assert box is not None
            j = schema.journal
            created = conn.execute(
                sa.select(j.c.object_id, j.c.modseq)
                .where(
                    j.c.account_id == account.id,
                    j.c.kind == "MailboxMessage",
                    j.c.container_id == box_id,
                    j.c.change == "created",
                )
                .order_by(j.c.modseq)
            ).all()
            uids = [uid for uid, _ in created]
            # UIDs were never given twice, and ascend in commit (modseq) order.
            assert len(uids) == len(set(uids))
            assert uids == sorted(uids)
            assert box.uidnext == max(uids) + 1
            view = emails.list_messages(conn, box_id)
            assert {m.uid for m in view} <= set(uids)
            assert all(m.modseq <= box.highest_modseq for m in view)

    await services.database.read(check)
