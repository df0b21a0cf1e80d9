"""EmailSubmission over HTTP (RFC 8621 §7): sending a draft through the submission
rules SMTP uses (sender check, queue, local delivery), onSuccessUpdateEmail /
onSuccessDestroyEmail with creation references, and get/changes/query/set."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP

from hirondelle.mail.queue import OutboundQueue, QueueWorker, Route, StaticRouter
from hirondelle.store import schema
from tests.jmap.conftest import JmapClient, JmapNode
from tests.smtp.conftest import FakeMX

USING = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:submission",
]


def request(client: JmapClient, calls: list[list[Any]]) -> list[list[Any]]:
    for name, args, _ in calls:
        args.setdefault("accountId", client.account_id)
        assert name
    responses: list[list[Any]] = client.request(calls, using=USING)["methodResponses"]
    return responses


def call(client: JmapClient, name: str, args: dict[str, Any]) -> dict[str, Any]:
    [[got, result, _]] = request(client, [[name, args, "0"]])
    assert got == name, result
    return dict(result)


def identity_of(client: JmapClient, address: str = "alice@example.test") -> str:
    listed = call(client, "Identity/get", {"ids": None})["list"]
    return str(next(i["id"] for i in listed if i["email"] == address))


def draft(client: JmapClient, **headers: Any) -> dict[str, Any]:
    drafts = client.mailbox_ids()["drafts"]
    return {
        "mailboxIds": {drafts: True},
        "keywords": {"$draft": True},
        "from": [{"name": "Alice", "email": "alice@example.test"}],
        "subject": "Hello",
        "textBody": [{"partId": "1"}],
        "bodyValues": {"1": {"value": "Hi there."}},
        **headers,
    }


@pytest.fixture
def bob(node: JmapNode) -> JmapClient:
    account = node.add_account("bob@example.test")
    return node.client(account, address="bob@example.test")


def inbox_subjects(client: JmapClient) -> list[str]:
    inbox = client.mailbox_ids()["inbox"]
    found = client.call("Email/query", {"filter": {"inMailbox": inbox}})["ids"]
    if not found:
        return []
    emails = client.call("Email/get", {"ids": found, "properties": ["subject"]})["list"]
    return [e["subject"] for e in emails]


def test_send_a_draft_and_file_it_in_sent(
    node: JmapNode, client: JmapClient, bob: JmapClient
) -> None:
    boxes = client.mailbox_ids()
    identity = identity_of(client)
    responses = request(
        client,
        [
            [
                "Email/set",
                {
                    "create": {
                        "d": draft(
                            client,
                            to=[{"name": "Bob", "email": "bob@example.test"}],
                            cc=[{"name": None, "email": "carol@elsewhere.test"}],
                            bcc=[{"name": None, "email": "dave@elsewhere.test"}],
                        )
                    }
                },
                "0",
            ],
            [
                "EmailSubmission/set",
                {
                    "create": {"s": {"identityId": identity, "emailId": "#d"}},
                    "onSuccessUpdateEmail": {
                        "#s": {
                            "keywords/$draft": None,
                            f"mailboxIds/{boxes['drafts']}": None,
                            f"mailboxIds/{boxes['sent']}": True,
                        }
                    },
                },
                "1",
            ],
        ],
    )
    assert [r[0] for r in responses] == ["Email/set", "EmailSubmission/set", "Email/set"]
    email_id = responses[0][1]["created"]["d"]["id"]
    created = responses[1][1]["created"]["s"]
    assert created["undoStatus"] == "final"
    assert responses[2][1]["updated"] == {email_id: None}
    assert responses[2][2] == "1"
    [email] = client.call(
        "Email/get", {"ids": [email_id], "properties": ["mailboxIds", "keywords"]}
    )["list"]
    assert email["mailboxIds"] == {boxes["sent"]: True}
    assert email["keywords"] == {}
    # Bob (local) has it at once; the two others are queued; nobody sees the Bcc.
    assert inbox_subjects(bob) == ["Hello"]
    [bob_copy] = bob.call("Email/query", {})["ids"]
    [got] = bob.call("Email/get", {"ids": [bob_copy], "properties": ["bcc", "messageId"]})["list"]
    assert got["bcc"] is None
    queue = OutboundQueue(node.services.database, node.services.blobs)
    entries = node.run(queue.entries())
    assert sorted(e.address for e in entries) == ["carol@elsewhere.test", "dave@elsewhere.test"]
    assert all(e.mail_from == "alice@example.test" for e in entries)
    queued_raw = node.run(node.services.blobs.get(entries[0].blob_hash))
    assert b"dave@" not in queued_raw.split(b"\r\n\r\n", 1)[0]
    [submission] = call(client, "EmailSubmission/get", {"ids": [created["id"]]})["list"]
    assert submission["emailId"] == email_id
    assert submission["identityId"] == identity
    assert submission["envelope"]["mailFrom"]["email"] == "alice@example.test"
    assert [r["email"] for r in submission["envelope"]["rcptTo"]] == [
        "bob@example.test",
        "carol@elsewhere.test",
        "dave@elsewhere.test",
    ]
    status = submission["deliveryStatus"]
    assert status["bob@example.test"]["delivered"] == "yes"
    assert status["carol@elsewhere.test"]["delivered"] == "queued"


def test_refusals(node: JmapNode, client: JmapClient) -> None:
    identity = identity_of(client)
    created = client.call(
        "Email/set",
        {
            "create": {
                "forged": draft(
                    client,
                    **{"from": [{"name": None, "email": "mallory@example.test"}]},
                    to=[{"name": None, "email": "bob@elsewhere.test"}],
                ),
                "alone": draft(client),
                "unknown": draft(client, to=[{"name": None, "email": "nobody@example.test"}]),
                "fine": draft(client, to=[{"name": None, "email": "bob@elsewhere.test"}]),
            }
        },
    )["created"]
    result = call(
        client,
        "EmailSubmission/set",
        {
            "create": {
                "forged": {"identityId": identity, "emailId": created["forged"]["id"]},
                "alone": {"identityId": identity, "emailId": created["alone"]["id"]},
                "unknown": {"identityId": identity, "emailId": created["unknown"]["id"]},
                "mailfrom": {
                    "identityId": identity,
                    "emailId": created["fine"]["id"],
                    "envelope": {
                        "mailFrom": {"email": "mallory@example.test"},
                        "rcptTo": [{"email": "bob@elsewhere.test"}],
                    },
                },
                "noidentity": {"identityId": "I999999", "emailId": created["fine"]["id"]},
                "noemail": {"identityId": identity, "emailId": "E999999"},
            }
        },
    )
    errors = {k: v["type"] for k, v in result["notCreated"].items()}
    assert errors == {
        "forged": "forbiddenFrom",
        "alone": "noRecipients",
        "unknown": "invalidRecipients",
        "mailfrom": "forbiddenMailFrom",
        "noidentity": "invalidProperties",
        "noemail": "invalidProperties",
    }
    assert result["notCreated"]["unknown"]["invalidRecipients"] == ["nobody@example.test"]
    assert result["created"] is None
    queue = OutboundQueue(node.services.database, node.services.blobs)
    assert node.run(queue.entries()) == []


def test_on_success_destroy_and_undo(node: JmapNode, client: JmapClient, bob: JmapClient) -> None:
    identity = identity_of(client)
    [email_id] = [
        v["id"]
        for v in client.call(
            "Email/set",
            {"create": {"d": draft(client, to=[{"name": None, "email": "bob@example.test"}])}},
        )["created"].values()
    ]
    state = call(client, "EmailSubmission/get", {"ids": []})["state"]
    responses = request(
        client,
        [
            [
                "EmailSubmission/set",
                {
                    "create": {"s": {"identityId": identity, "emailId": email_id}},
                    "onSuccessDestroyEmail": ["#s"],
                },
                "0",
            ]
        ],
    )
    assert [r[0] for r in responses] == ["EmailSubmission/set", "Email/set"]
    assert responses[1][1]["destroyed"] == [email_id]
    submission_id = responses[0][1]["created"]["s"]["id"]
    assert inbox_subjects(bob) == ["Hello"]
    changes = call(client, "EmailSubmission/changes", {"sinceState": state})
    assert changes["created"] == [submission_id]
    found = call(client, "EmailSubmission/query", {"filter": {"emailIds": [email_id]}})
    assert found["ids"] == [submission_id]
    assert call(client, "EmailSubmission/query", {"filter": {"undoStatus": "pending"}})["ids"] == []
    undo = call(
        client, "EmailSubmission/set", {"update": {submission_id: {"undoStatus": "canceled"}}}
    )
    assert undo["notUpdated"][submission_id]["type"] == "cannotUnsend"
    gone = call(client, "EmailSubmission/set", {"destroy": [submission_id, "S999999"]})
    assert gone["destroyed"] == [submission_id]
    assert gone["notDestroyed"]["S999999"]["type"] == "notFound"
    assert call(client, "EmailSubmission/get", {"ids": [submission_id]})["notFound"] == [
        submission_id
    ]


def test_sent_mail_is_dkim_signed(node: JmapNode, client: JmapClient) -> None:
    node.run(node.services.transport.dkim.generate("example.test", stamp="t1"))
    identity = identity_of(client)
    [email_id] = [
        v["id"]
        for v in client.call(
            "Email/set",
            {"create": {"d": draft(client, to=[{"name": None, "email": "zed@elsewhere.test"}])}},
        )["created"].values()
    ]
    result = call(
        client,
        "EmailSubmission/set",
        {"create": {"s": {"identityId": identity, "emailId": email_id}}},
    )
    assert result["created"]["s"]["undoStatus"] == "final"
    queue = OutboundQueue(node.services.database, node.services.blobs)
    [entry] = node.run(queue.entries())
    sent = node.run(node.services.blobs.get(entry.blob_hash))
    header = sent.split(b"\r\n\r\n", 1)[0]
    assert header.count(b"DKIM-Signature:") == 2  # RSA and Ed25519
    assert b"d=example.test" in header


def test_query_changes_and_state_checks(
    node: JmapNode, client: JmapClient, bob: JmapClient
) -> None:
    identity = identity_of(client)
    first = call(client, "EmailSubmission/query", {"sort": [{"property": "sentAt"}]})
    assert first["ids"] == []
    created = client.call(
        "Email/set",
        {
            "create": {
                k: draft(client, to=[{"name": None, "email": "bob@example.test"}])
                for k in ("a", "b")
            }
        },
    )["created"]
    sent = call(
        client,
        "EmailSubmission/set",
        {
            "ifInState": call(client, "EmailSubmission/get", {"ids": []})["state"],
            "create": {k: {"identityId": identity, "emailId": v["id"]} for k, v in created.items()},
        },
    )["created"]
    changes = call(
        client,
        "EmailSubmission/queryChanges",
        {"sort": [{"property": "sentAt"}], "sinceQueryState": first["queryState"]},
    )
    assert sorted(a["id"] for a in changes["added"]) == sorted(v["id"] for v in sent.values())
    [[name, error, _]] = request(
        client,
        [["EmailSubmission/set", {"ifInState": first["queryState"], "destroy": []}, "0"]],
    )
    assert (name, error["type"]) == ("error", "stateMismatch")
    by_thread = call(
        client,
        "EmailSubmission/query",
        {"filter": {"threadIds": [], "after": "2000-01-01T00:00:00Z"}},
    )
    assert by_thread["ids"] == []
    [[name, error, _]] = request(client, [["EmailSubmission/query", {"filter": {"nope": 1}}, "0"]])
    assert (name, error["type"]) == ("error", "unsupportedFilter")


def test_delivery_status_keeps_the_final_outcome(node: JmapNode, client: JmapClient) -> None:
    """RFC 8621 §7 deliveryStatus after the queue is done with a recipient: delivered yes
    or no with the remote's reply, for as long as the submission exists (issue 7)."""
    fake = FakeMX(rcpt_replies={"dave@elsewhere.test": "550 5.1.1 No such user here"})

    async def start_mx() -> asyncio.Server:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(fake, hostname="mx.elsewhere.test", loop=loop), "127.0.0.1", 0
        )
        fake.port = server.sockets[0].getsockname()[1]
        return server

    server = node.run(start_mx())
    try:
        identity = identity_of(client)
        to = [{"name": None, "email": a} for a in ("carol@elsewhere.test", "dave@elsewhere.test")]
        responses = request(
            client,
            [
                ["Email/set", {"create": {"d": draft(client, to=to)}}, "0"],
                [
                    "EmailSubmission/set",
                    {"create": {"s": {"identityId": identity, "emailId": "#d"}}},
                    "1",
                ],
            ],
        )
        submission_id = responses[1][1]["created"]["s"]["id"]
        worker = QueueWorker(
            database=node.services.database,
            blobs=node.services.blobs,
            mail=node.services.mail,
            settings=node.services.settings,
            router=StaticRouter({"elsewhere.test": [Route("127.0.0.1", fake.port)]}),
        )
        assert node.run(worker.run_once()) == 2
        queue = OutboundQueue(node.services.database, node.services.blobs)
        assert node.run(queue.entries()) == []
    finally:
        server.close()
        node.run(server.wait_closed())
    [submission] = call(client, "EmailSubmission/get", {"ids": [submission_id]})["list"]
    status = submission["deliveryStatus"]
    assert status["carol@elsewhere.test"] == {
        "delivered": "yes",
        "smtpReply": "250 2.0.0 Queued",
        "displayed": "unknown",
    }
    assert status["dave@elsewhere.test"] == {
        "delivered": "no",
        "smtpReply": "550 5.1.1 No such user here",
        "displayed": "unknown",
    }

    def outcomes() -> int:
        return node.run(
            node.services.database.read(
                lambda conn: len(conn.execute(sa.select(schema.queue_outcomes)).all())
            )
        )

    assert outcomes() == 2
    gone = call(client, "EmailSubmission/set", {"destroy": [submission_id]})
    assert gone["destroyed"] == [submission_id]
    assert outcomes() == 0
