"""Email/get and Email/changes over HTTP (RFC 8621 §4.2, §4.3): properties, body parts
and values, header forms, part blobs, and the offline client's view of changes."""

from __future__ import annotations

from typing import Any

from tests.jmap.conftest import JmapClient, JmapNode, message

MULTIPART = (
    b"From: =?utf-8?q?Ren=C3=A9e?= <renee@example.net>\r\n"
    b"To: alice@example.test, Team: bob@example.net, carol@example.net;\r\n"
    b"Subject: =?utf-8?q?R=C3=A9union?= demain\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <multi@example.net>\r\n"
    b"References: <a@example.net> <b@example.net>\r\n"
    b"List-Unsubscribe: <mailto:leave@example.net>, <https://example.net/leave>\r\n"
    b"X-Custom: one\r\n"
    b"X-Custom: two\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"=C3=89t=C3=A9 =C3=A0 Gen=C3=A8ve, caf=C3=A9 pour tous.\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>\xc3\x89t\xc3\xa9 <b>\xc3\xa0</b> Gen\xc3\xa8ve</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="plan.pdf"\r\n'
    b'Content-Disposition: attachment; filename="plan.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcfs\r\n"
    b"--outer--\r\n"
)


def one(client: JmapClient, email_id: str, **args: Any) -> dict[str, Any]:
    result = client.call("Email/get", {"ids": [email_id], **args})
    assert result["notFound"] == []
    [email] = result["list"]
    return email


def delivered_id(node: JmapNode, client: JmapClient, raw: bytes) -> str:
    before = client.call("Email/changes", {"sinceState": "0"})
    node.deliver(raw)
    after = client.call("Email/changes", {"sinceState": before["newState"]})
    [created] = after["created"]
    return str(created)


def test_default_properties(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, MULTIPART)
    email = one(client, email_id)
    inbox = client.mailbox_ids()["inbox"]
    assert email["id"] == email_id
    assert email["mailboxIds"] == {inbox: True}
    assert email["keywords"] == {}
    assert email["subject"] == "Réunion demain"
    assert email["from"] == [{"name": "Renée", "email": "renee@example.net"}]
    assert email["to"] == [
        {"name": None, "email": "alice@example.test"},
        {"name": None, "email": "bob@example.net"},
        {"name": None, "email": "carol@example.net"},
    ]
    assert email["messageId"] == ["multi@example.net"]
    assert email["references"] == ["a@example.net", "b@example.net"]
    assert email["inReplyTo"] is None
    assert email["sentAt"] == "2026-11-22T10:00:00+01:00"
    assert email["hasAttachment"] is True
    assert email["preview"].startswith("Été à Genève")
    assert email["blobId"].startswith("G")
    assert email["threadId"].startswith("T")
    assert email["size"] == len(MULTIPART)
    assert [p["type"] for p in email["textBody"]] == ["text/plain"]
    assert [p["type"] for p in email["htmlBody"]] == ["text/html"]
    [attachment] = email["attachments"]
    assert attachment["name"] == "plan.pdf"
    assert attachment["disposition"] == "attachment"
    # No body values unless asked for.
    assert email["bodyValues"] == {}


def test_body_values_and_truncation(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, MULTIPART)
    email = one(client, email_id, properties=["bodyValues", "textBody"], fetchTextBodyValues=True)
    [text_part] = email["textBody"]
    value = email["bodyValues"][text_part["partId"]]
    assert value["value"].startswith("Été à Genève, café")
    assert value["isTruncated"] is False
    assert value["isEncodingProblem"] is False
    # "Été": two octets, one, two. Four octets may not cut "é" in two.
    short = one(
        client,
        email_id,
        properties=["bodyValues"],
        fetchAllBodyValues=True,
        maxBodyValueBytes=4,
    )
    values = short["bodyValues"]
    assert len(values) == 2  # the text and the HTML parts, not the PDF
    assert values[text_part["partId"]] == {
        "value": "Ét",
        "isTruncated": True,
        "isEncodingProblem": False,
    }
    html_only = one(
        client, email_id, properties=["bodyValues", "htmlBody"], fetchHTMLBodyValues=True
    )
    [html_part] = html_only["htmlBody"]
    assert list(html_only["bodyValues"]) == [html_part["partId"]]
    assert "<b>à</b>" in html_only["bodyValues"][html_part["partId"]]["value"]


def test_body_structure_and_body_properties(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, MULTIPART)
    email = one(
        client,
        email_id,
        properties=["bodyStructure"],
        bodyProperties=["partId", "type", "header:Content-Type:asText", "size"],
    )
    root = email["bodyStructure"]
    assert root["type"] == "multipart/mixed"
    assert root["partId"] is None
    alternative, pdf = root["subParts"]
    assert [p["type"] for p in alternative["subParts"]] == ["text/plain", "text/html"]
    assert pdf["header:Content-Type:asText"] == 'application/pdf; name="plan.pdf"'
    assert pdf["size"] == 12
    assert "name" not in pdf


def test_header_forms(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, MULTIPART)
    email = one(
        client,
        email_id,
        properties=[
            "header:Subject",
            "header:Subject:asText",
            "header:To:asGroupedAddresses",
            "header:From:asAddresses",
            "header:References:asMessageIds",
            "header:Date:asDate",
            "header:List-Unsubscribe:asURLs",
            "header:X-Custom:all",
            "header:x-custom",
            "header:X-Missing",
            "header:X-Missing:all",
        ],
    )
    assert email["header:Subject"] == " =?utf-8?q?R=C3=A9union?= demain"
    assert email["header:Subject:asText"] == "Réunion demain"
    assert email["header:To:asGroupedAddresses"] == [
        {"name": None, "addresses": [{"name": None, "email": "alice@example.test"}]},
        {
            "name": "Team",
            "addresses": [
                {"name": None, "email": "bob@example.net"},
                {"name": None, "email": "carol@example.net"},
            ],
        },
    ]
    assert email["header:From:asAddresses"] == [{"name": "Renée", "email": "renee@example.net"}]
    assert email["header:References:asMessageIds"] == ["a@example.net", "b@example.net"]
    assert email["header:Date:asDate"] == "2026-11-22T10:00:00+01:00"
    assert email["header:List-Unsubscribe:asURLs"] == [
        "mailto:leave@example.net",
        "https://example.net/leave",
    ]
    assert email["header:X-Custom:all"] == [" one", " two"]
    assert email["header:x-custom"] == " two"
    assert email["header:X-Missing"] is None
    assert email["header:X-Missing:all"] == []


def test_headers_list(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, message("Plain"))
    email = one(client, email_id, properties=["headers"])
    assert {"name": "Subject", "value": " Plain"} in email["headers"]


def test_bad_arguments(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, message())
    client.error("Email/get", {"ids": [email_id], "properties": ["nope"]}, "invalidArguments")
    # RFC 8621 §4.1.2: From cannot be fetched as Text.
    client.error(
        "Email/get", {"ids": [email_id], "properties": ["header:From:asText"]}, "invalidArguments"
    )
    client.error(
        "Email/get", {"ids": [email_id], "properties": ["header:X:asNope"]}, "invalidArguments"
    )
    client.error("Email/get", {"ids": [email_id], "bodyProperties": ["bogus"]}, "invalidArguments")
    client.error("Email/get", {"ids": [email_id], "maxBodyValueBytes": 0}, "invalidArguments")
    client.error("Email/get", {"ids": [email_id], "fetchTextBodyValues": "yes"}, "invalidArguments")
    client.error("Email/get", {"ids": None}, "requestTooLarge")


def test_unknown_and_foreign_ids_are_not_found(node: JmapNode, client: JmapClient) -> None:
    other = node.add_account("bob@example.test")
    node.deliver(message("Bob's"), other)
    bob = node.client(other, address="bob@example.test")
    bobs = bob.call("Email/changes", {"sinceState": "0"})["created"]
    result = client.call("Email/get", {"ids": [*bobs, "E999999", "Mbox"]})
    assert result["list"] == []
    assert sorted(result["notFound"]) == sorted([*bobs, "E999999", "Mbox"])


def test_part_blob_download(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, MULTIPART)
    [attachment] = one(client, email_id, properties=["attachments"])["attachments"]
    account = client.account_id
    response = client.http.get(
        f"/jmap/download/{account}/{attachment['blobId']}/plan.pdf?type=application/pdf"
    )
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4\n%\xc7\xec"
    other = node.add_account("bob@example.test")
    bob = node.client(other, address="bob@example.test")
    refused = bob.http.get(f"/jmap/download/A{other.id}/{attachment['blobId']}/x")
    assert refused.status_code == 404


def test_changes_for_an_offline_client(node: JmapNode, client: JmapClient) -> None:
    """created/updated/destroyed exact, with hasMoreChanges paging (RFC 8620 §5.2)."""
    first = delivered_id(node, client, message("one"))
    second = delivered_id(node, client, message("two"))
    state = client.call("Email/get", {"ids": [first]})["state"]
    # Offline: a new message, a flag change, a message created and destroyed, a deletion.
    node.deliver(message("three"))
    client.call("Email/set", {"update": {first: {"keywords/$seen": True}}})
    node.deliver(message("four"))
    fresh = client.call("Email/changes", {"sinceState": state})["created"]
    fourth = [
        i
        for i in fresh
        if client.call("Email/get", {"ids": [i], "properties": ["subject"]})["list"][0]["subject"]
        == "four"
    ]
    client.call("Email/set", {"destroy": [second, *fourth]})
    result = client.call("Email/changes", {"sinceState": state})
    assert len(result["created"]) == 1
    assert result["updated"] == [first]
    assert result["destroyed"] == [second]
    assert result["hasMoreChanges"] is False
    # The same in pages of two changes at most (one state's changes are never split:
    # the destroy of two emails is one state).
    seen: dict[str, list[str]] = {"created": [], "updated": [], "destroyed": []}
    since = state
    for _ in range(10):
        page = client.call("Email/changes", {"sinceState": since, "maxChanges": 2})
        for key in seen:
            seen[key].extend(page[key])
        since = page["newState"]
        if not page["hasMoreChanges"]:
            break
    assert set(seen["created"]) - set(seen["destroyed"]) == set(result["created"])
    assert set(seen["destroyed"]) == {second}
    assert first in seen["updated"]


def test_imap_store_is_seen_by_email_changes(node: JmapNode, client: JmapClient) -> None:
    email_id = delivered_id(node, client, message("flagged over IMAP"))
    state = client.call("Email/get", {"ids": [email_id]})["state"]
    imap = node.imap()
    imap.login("alice@example.test", "correct horse battery")
    imap.select("INBOX")
    typ, _ = imap.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    imap.logout()
    result = client.call("Email/changes", {"sinceState": state})
    assert result["updated"] == [email_id]
    assert one(client, email_id, properties=["keywords"])["keywords"] == {"$flagged": True}
