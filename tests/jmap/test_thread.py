"""RFC 8621 §3 Thread/get and Thread/changes over HTTP."""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store import schema
from tests.jmap.conftest import JmapClient, JmapNode, message


def _threads(node: JmapNode) -> dict[str, int]:
    """subject -> thread id, from the store (Email/get is jmap-mail's)."""

    async def read() -> dict[str, int]:
        return await node.services.database.read(
            lambda conn: {
                str(subject): int(thread)
                for subject, thread in conn.execute(
                    sa.select(schema.emails.c.subject, schema.emails.c.thread_id)
                )
            }
        )

    return node.run(read())


def _email_ids(node: JmapNode) -> dict[str, int]:
    async def read() -> dict[str, int]:
        return await node.services.database.read(
            lambda conn: {
                str(subject): int(email)
                for subject, email in conn.execute(
                    sa.select(schema.emails.c.subject, schema.emails.c.id)
                )
            }
        )

    return node.run(read())


def test_thread_get_and_changes(node: JmapNode, client: JmapClient) -> None:
    state = client.call("Mailbox/get", {"ids": []})["state"]
    node.deliver(message("first", message_id="a@x"))
    node.deliver(message("reply", message_id="b@x", in_reply_to="a@x"))
    node.deliver(message("alone", message_id="c@x"))
    threads, emails = _threads(node), _email_ids(node)
    thread = f"T{threads['first']}"
    assert threads["reply"] == threads["first"] != threads["alone"]
    got = client.call("Thread/get", {"ids": [thread, f"T{threads['alone']}", "T999999", "M1"]})
    by_id = {t["id"]: t for t in got["list"]}
    assert by_id[thread]["emailIds"] == [f"E{emails['first']}", f"E{emails['reply']}"]
    assert by_id[f"T{threads['alone']}"]["emailIds"] == [f"E{emails['alone']}"]
    assert got["notFound"] == ["T999999", "M1"]
    changes = client.call("Thread/changes", {"sinceState": state})
    assert sorted(changes["created"]) == sorted({thread, f"T{threads['alone']}"})
    assert changes["destroyed"] == []
    # ids: null is refused rather than listing every thread of the account.
    client.error("Thread/get", {"ids": None}, "requestTooLarge")
    # An IMAP expunge of the whole thread destroys it.
    later = changes["newState"]
    imap = node.imap()
    imap.login("alice@example.test", "correct horse battery")
    imap.select("INBOX")
    imap.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    changes = client.call("Thread/changes", {"sinceState": later})
    assert changes["destroyed"] == [thread]
    assert client.call("Thread/get", {"ids": [thread]})["notFound"] == [thread]
