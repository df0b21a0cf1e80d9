"""RFC 8621 §3: Thread/get and Thread/changes.

A thread is the set of emails sharing ``emails.thread_id`` (computed at ingest from
References / In-Reply-To, store/emails.py); its ``emailIds`` are sorted by receivedAt,
oldest first (§3).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.jmap import ids
from hirondelle.jmap.api import MAIL, Call, method
from hirondelle.jmap.standard import changes, get_args, get_response, state_string
from hirondelle.store import jmap_mailboxes, journal

PROPERTIES = ("id", "emailIds")


def encode(thread_id: int) -> str:
    return ids.encode(ids.THREAD, thread_id)


@method("Thread/get", capability=MAIL)
async def thread_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §3.1: ``ids: null`` is refused (requestTooLarge would follow for any real
    mailbox; §3 lets the server refuse fetching every thread)."""
    args = get_args(call, properties=PROPERTIES)
    if args.ids is None:
        from hirondelle.jmap.errors import MethodError

        raise MethodError("requestTooLarge", "Thread/get needs ids")
    wanted = {i: ids.decode(ids.THREAD, i) for i in args.ids}
    numbers = [n for n in wanted.values() if n is not None]

    def read(conn: Connection) -> tuple[int, dict[int, list[int]]]:
        return (
            journal.account_modseq(conn, call.account_id)[0],
            jmap_mailboxes.thread_emails(conn, call.account_id, numbers),
        )

    modseq, found = await call.services.database.read(read)
    objects = []
    not_found = list(args.unresolved)
    for object_id, number in wanted.items():
        if number is None or number not in found:
            not_found.append(object_id)
            continue
        objects.append(
            {"id": object_id, "emailIds": [ids.encode(ids.EMAIL, e) for e in found[number]]}
        )
    return get_response(
        call,
        state=state_string(modseq),
        objects=objects,
        not_found=not_found,
        properties=args.properties,
    )


@method("Thread/changes", capability=MAIL)
async def thread_changes(call: Call) -> dict[str, Any]:
    """RFC 8621 §3.2."""
    return await changes(call, kind="Thread", encode=encode)
