"""Interop with an independent JMAP client library from PyPI: jmapc (over https, as it
only speaks https) reads the session, mailboxes and emails, and follows a back-reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jmapc import Client, Ref
from jmapc.methods import EmailGet, EmailQuery, MailboxGet, MailboxQuery

from tests.jmap.conftest import ADDRESS, PASSWORD, JmapNode, message


@pytest.fixture
def jmapc_client(node: JmapNode, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    # requests trusts the test certificate through its usual environment variable.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(node.cafile))
    client = Client.create_with_password(f"localhost:{node.https_port}", ADDRESS, PASSWORD)
    yield client
    client.requests_session.close()  # its keep-alive TLS connections, before the node stops


def test_jmapc_reads_mailboxes(node: JmapNode, jmapc_client: Client) -> None:
    assert node.account is not None
    assert jmapc_client.account_id == f"A{node.account.id}"
    node.deliver(message("for jmapc"))
    result = jmapc_client.request(MailboxGet(ids=None))
    mailboxes = {m.role: m for m in result.data}  # type: ignore[union-attr]
    assert {"inbox", "drafts", "sent", "trash", "junk", "archive"} <= set(mailboxes)
    inbox = mailboxes["inbox"]
    assert inbox.name == "INBOX"
    assert inbox.total_emails == 1 and inbox.unread_emails == 1


def test_jmapc_reads_emails_with_a_back_reference(node: JmapNode, jmapc_client: Client) -> None:
    node.deliver(message("first for jmapc", message_id="j1@x"))
    node.deliver(message("second for jmapc", message_id="j2@x"))
    inbox = jmapc_client.request(MailboxQuery(filter={"role": "inbox"}))  # type: ignore[arg-type]
    inbox_id = inbox.ids[0]  # type: ignore[union-attr]
    # A back-reference (RFC 8620 §3.7) from Email/get to the Email/query before it.
    results = jmapc_client.request(
        [
            EmailQuery(collapse_threads=False, filter={"inMailbox": inbox_id}),  # type: ignore[arg-type]
            EmailGet(ids=Ref("/ids"), properties=["subject", "from", "receivedAt"]),
        ]
    )
    emails = results[1].response.data  # type: ignore[union-attr]
    assert sorted(e.subject for e in emails) == ["first for jmapc", "second for jmapc"]
    assert all(e.mail_from[0].email == "bob@example.net" for e in emails)
