"""Email/set, /import, /parse and /copy over HTTP (RFC 8621 §4.6-§4.9), seen from IMAP
too: keywords and mailboxes through the same store as STORE/COPY/EXPUNGE."""

from __future__ import annotations

from typing import Any

from tests.jmap.conftest import JmapClient, JmapNode, message


def new_email(node: JmapNode, client: JmapClient, raw: bytes | None = None) -> str:
    state = client.call("Email/changes", {"sinceState": "0"})["newState"]
    node.deliver(raw or message())
    [created] = client.call("Email/changes", {"sinceState": state})["created"]
    return str(created)


def get(client: JmapClient, email_id: str, *properties: str, **args: Any) -> dict[str, Any]:
    [email] = client.call("Email/get", {"ids": [email_id], "properties": list(properties), **args})[
        "list"
    ]
    return email


def imap_flags(node: JmapNode, mailbox: str = "INBOX") -> list[bytes]:
    imap = node.imap()
    imap.login("alice@example.test", "correct horse battery")
    typ, count = imap.select(mailbox)
    assert typ == "OK"
    if count == [b"0"]:
        imap.logout()
        return []
    typ, data = imap.fetch("1:*", "(FLAGS)")
    imap.logout()
    assert typ == "OK"
    return [d for d in data if d]


def test_keywords_whole_and_by_patch(node: JmapNode, client: JmapClient) -> None:
    email_id = new_email(node, client)
    result = client.call(
        "Email/set", {"update": {email_id: {"keywords": {"$Seen": True, "work": True}}}}
    )
    assert result["updated"] == {email_id: None}
    assert get(client, email_id, "keywords")["keywords"] == {"$seen": True, "work": True}
    client.call(
        "Email/set",
        {"update": {email_id: {"keywords/$flagged": True, "keywords/work": None}}},
    )
    assert get(client, email_id, "keywords")["keywords"] == {"$seen": True, "$flagged": True}
    [flags] = imap_flags(node)
    assert b"\\Seen" in flags and b"\\Flagged" in flags


def test_bad_updates_are_refused_per_object(node: JmapNode, client: JmapClient) -> None:
    email_id = new_email(node, client)
    result = client.call(
        "Email/set",
        {
            "update": {
                email_id: {"keywords": {"bad(word": True}},
                "E999999": {"keywords": {}},
            }
        },
    )
    assert result["notUpdated"][email_id]["type"] == "invalidProperties"
    assert result["notUpdated"]["E999999"]["type"] == "notFound"
    for patch in (
        {"subject": "changed"},
        {"keywords/$seen": False},
        {"mailboxIds": {}},
        {"mailboxIds/M999999": True},
        {"keywords": {"a": True}, "keywords/b": True},
    ):
        refused = client.call("Email/set", {"update": {email_id: patch}})["notUpdated"]
        assert refused[email_id]["type"] in ("invalidProperties", "invalidPatch"), patch
    assert get(client, email_id, "keywords")["keywords"] == {}


def test_move_between_mailboxes_is_seen_by_imap(node: JmapNode, client: JmapClient) -> None:
    email_id = new_email(node, client)
    boxes = client.mailbox_ids()
    client.call(
        "Email/set",
        {"update": {email_id: {f"mailboxIds/{boxes['archive']}": True}}},
    )
    assert get(client, email_id, "mailboxIds")["mailboxIds"] == {
        boxes["inbox"]: True,
        boxes["archive"]: True,
    }
    client.call("Email/set", {"update": {email_id: {"mailboxIds": {boxes["trash"]: True}}}})
    assert get(client, email_id, "mailboxIds")["mailboxIds"] == {boxes["trash"]: True}
    assert imap_flags(node, "INBOX") == []
    trash = node.mailbox("Trash")
    assert len(imap_flags(node, trash.name)) == 1


def test_destroy(node: JmapNode, client: JmapClient) -> None:
    email_id = new_email(node, client)
    result = client.call("Email/set", {"destroy": [email_id, "E999999"]})
    assert result["destroyed"] == [email_id]
    assert result["notDestroyed"] == {"E999999": {"type": "notFound"}}
    assert client.call("Email/get", {"ids": [email_id]})["notFound"] == [email_id]
    assert imap_flags(node) == []


def test_if_in_state(node: JmapNode, client: JmapClient) -> None:
    email_id = new_email(node, client)
    state = client.call("Email/get", {"ids": [email_id]})["state"]
    client.call("Email/set", {"ifInState": state, "update": {email_id: {"keywords/a": True}}})
    client.error(
        "Email/set",
        {"ifInState": state, "update": {email_id: {"keywords/b": True}}},
        "stateMismatch",
    )


def test_create_draft_from_text_and_html(node: JmapNode, client: JmapClient) -> None:
    drafts = client.mailbox_ids()["drafts"]
    result = client.call(
        "Email/set",
        {
            "create": {
                "d1": {
                    "mailboxIds": {drafts: True},
                    "keywords": {"$draft": True, "$seen": True},
                    "from": [{"name": "Alice Été", "email": "alice@example.test"}],
                    "to": [{"name": None, "email": "bob@example.net"}],
                    "subject": "Réunion à Genève",
                    "header:X-Mailer:asText": "Hirondelle tests",
                    "textBody": [{"partId": "t", "type": "text/plain"}],
                    "htmlBody": [{"partId": "h", "type": "text/html"}],
                    "bodyValues": {
                        "t": {"value": "Bonjour, à demain.\n"},
                        "h": {"value": "<p>Bonjour, <b>à demain</b>.</p>"},
                    },
                }
            }
        },
    )
    created = result["created"]["d1"]
    assert set(created) >= {"id", "blobId", "threadId", "size"}
    email = get(
        client,
        created["id"],
        "subject",
        "from",
        "keywords",
        "mailboxIds",
        "textBody",
        "htmlBody",
        "bodyValues",
        "header:X-Mailer:asText",
        "messageId",
        fetchAllBodyValues=True,
    )
    assert email["subject"] == "Réunion à Genève"
    assert email["from"] == [{"name": "Alice Été", "email": "alice@example.test"}]
    assert email["keywords"] == {"$draft": True, "$seen": True}
    assert email["mailboxIds"] == {drafts: True}
    assert email["header:X-Mailer:asText"] == "Hirondelle tests"
    assert email["messageId"] and email["messageId"][0].endswith("@mail.example.test")
    values = [v["value"] for v in email["bodyValues"].values()]
    assert "Bonjour, à demain.\r\n" in values or "Bonjour, à demain.\n" in values
    assert any("<b>à demain</b>" in v for v in values)
    # The raw message is valid MIME that IMAP serves as it is.
    raw = client.http.get(f"/jmap/download/{client.account_id}/{created['blobId']}/m.eml")
    assert raw.status_code == 200
    assert b"multipart/alternative" in raw.content
    assert b"\r\n" in raw.content and b"\n\n" not in raw.content.replace(b"\r\n", b"")


def test_create_with_attachment_from_upload(node: JmapNode, client: JmapClient) -> None:
    upload = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=b"%PDF-1.4 fake",
        headers={"Content-Type": "application/pdf"},
    )
    assert upload.status_code == 201, upload.text
    blob_id = upload.json()["blobId"]
    drafts = client.mailbox_ids()["drafts"]
    result = client.call(
        "Email/set",
        {
            "create": {
                "d1": {
                    "mailboxIds": {drafts: True},
                    "subject": "with plan",
                    "textBody": [{"partId": "t"}],
                    "bodyValues": {"t": {"value": "See attached."}},
                    "attachments": [
                        {"blobId": blob_id, "type": "application/pdf", "name": "plan.pdf"}
                    ],
                },
                "bad": {
                    "mailboxIds": {drafts: True},
                    "attachments": [{"blobId": "G" + "0" * 64, "type": "application/pdf"}],
                },
                "nobox": {"subject": "no mailbox"},
                "serverset": {"mailboxIds": {drafts: True}, "size": 3},
            }
        },
    )
    email_id = result["created"]["d1"]["id"]
    assert result["notCreated"]["bad"]["type"] == "blobNotFound"
    assert result["notCreated"]["bad"]["notFound"] == ["G" + "0" * 64]
    assert result["notCreated"]["nobox"]["type"] == "invalidProperties"
    assert result["notCreated"]["serverset"]["properties"] == ["size"]
    email = get(client, email_id, "attachments", "hasAttachment")
    assert email["hasAttachment"] is True
    [attachment] = email["attachments"]
    assert attachment["name"] == "plan.pdf"
    content = client.http.get(
        f"/jmap/download/{client.account_id}/{attachment['blobId']}/plan.pdf"
    ).content
    assert content == b"%PDF-1.4 fake"


def test_create_then_reference_in_same_request(node: JmapNode, client: JmapClient) -> None:
    drafts = client.mailbox_ids()["drafts"]
    answer = client.request(
        [
            [
                "Email/set",
                {
                    "accountId": client.account_id,
                    "create": {
                        "k": {
                            "mailboxIds": {drafts: True},
                            "subject": "ref",
                            "textBody": [{"partId": "1"}],
                            "bodyValues": {"1": {"value": "x"}},
                        }
                    },
                },
                "a",
            ],
            [
                "Email/get",
                {"accountId": client.account_id, "ids": ["#k"], "properties": ["subject"]},
                "b",
            ],
        ]
    )
    assert answer["methodResponses"][1][1]["list"][0]["subject"] == "ref"


def test_import_and_parse(node: JmapNode, client: JmapClient) -> None:
    raw = message("Imported", message_id="imp@example.net")
    upload = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=raw,
        headers={"Content-Type": "message/rfc822"},
    )
    blob_id = upload.json()["blobId"]
    inbox = client.mailbox_ids()["inbox"]
    parsed = client.call("Email/parse", {"blobIds": [blob_id, "G" + "1" * 64]})
    assert parsed["parsed"][blob_id]["subject"] == "Imported"
    assert parsed["parsed"][blob_id]["messageId"] == ["imp@example.net"]
    assert parsed["notFound"] == ["G" + "1" * 64]
    result = client.call(
        "Email/import",
        {
            "emails": {
                "i1": {
                    "blobId": blob_id,
                    "mailboxIds": {inbox: True},
                    "keywords": {"$seen": True},
                    "receivedAt": "2026-01-02T03:04:05Z",
                },
                "i2": {"blobId": "G" + "2" * 64, "mailboxIds": {inbox: True}},
                "i3": {"blobId": blob_id, "mailboxIds": {"M999999": True}},
            }
        },
    )
    created = result["created"]["i1"]
    assert created["blobId"] == blob_id
    assert result["notCreated"]["i2"]["type"] == "blobNotFound"
    assert result["notCreated"]["i3"]["type"] == "invalidProperties"
    email = get(client, created["id"], "subject", "receivedAt", "keywords")
    assert email == {
        "id": created["id"],
        "subject": "Imported",
        "receivedAt": "2026-01-02T03:04:05Z",
        "keywords": {"$seen": True},
    }
    client.error(
        "Email/import",
        {"ifInState": "1", "emails": {"x": {"blobId": blob_id, "mailboxIds": {inbox: True}}}},
        "stateMismatch",
    )


def test_copy_needs_another_account(node: JmapNode, client: JmapClient) -> None:
    client.error(
        "Email/copy",
        {"fromAccountId": "A999999", "create": {}},
        "fromAccountNotFound",
    )
    client.error(
        "Email/copy",
        {"fromAccountId": client.account_id, "create": {}},
        "invalidArguments",
    )


def test_create_from_body_structure(node: JmapNode, client: JmapClient) -> None:
    upload = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=b"\x89PNG fake image",
        headers={"Content-Type": "image/png"},
    )
    image = upload.json()["blobId"]
    drafts = client.mailbox_ids()["drafts"]
    structure = {
        "type": "multipart/related",
        "subParts": [
            {"partId": "html", "type": "text/html"},
            {"blobId": image, "type": "image/png", "cid": "logo@x", "disposition": "inline"},
        ],
    }
    result = client.call(
        "Email/set",
        {
            "create": {
                "r": {
                    "mailboxIds": {drafts: True},
                    "subject": "related",
                    "bodyStructure": structure,
                    "bodyValues": {"html": {"value": '<img src="cid:logo@x">'}},
                },
                "both": {
                    "mailboxIds": {drafts: True},
                    "bodyStructure": structure,
                    "textBody": [{"partId": "t"}],
                    "bodyValues": {"html": {"value": "x"}, "t": {"value": "y"}},
                },
                "headers": {
                    "mailboxIds": {drafts: True},
                    "headers": [{"name": "X-A", "value": "b"}],
                },
                "unused": {
                    "mailboxIds": {drafts: True},
                    "textBody": [{"partId": "t"}],
                    "bodyValues": {"t": {"value": "y"}, "extra": {"value": "z"}},
                },
            }
        },
    )
    assert set(result["notCreated"]) == {"both", "headers", "unused"}
    assert all(e["type"] == "invalidProperties" for e in result["notCreated"].values())
    email = get(
        client,
        result["created"]["r"]["id"],
        "bodyStructure",
        "htmlBody",
        bodyProperties=["type", "cid", "disposition", "subParts"],
    )
    root = email["bodyStructure"]
    assert root["type"] == "multipart/related"
    assert [p["type"] for p in root["subParts"]] == ["text/html", "image/png"]
    assert root["subParts"][1]["cid"] == "logo@x"
    assert [p["type"] for p in email["htmlBody"]] == ["text/html"]


def test_over_quota(node: JmapNode, client: JmapClient) -> None:
    assert node.account is not None
    node.run(node.services.accounts.update_account(node.account.address, quota_bytes=10))
    drafts = client.mailbox_ids()["drafts"]
    result = client.call(
        "Email/set",
        {
            "create": {
                "big": {
                    "mailboxIds": {drafts: True},
                    "textBody": [{"partId": "1"}],
                    "bodyValues": {"1": {"value": "too large for the quota"}},
                }
            }
        },
    )
    assert result["notCreated"]["big"]["type"] == "overQuota"
    upload = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=message("imported"),
        headers={"Content-Type": "message/rfc822"},
    )
    imported = client.call(
        "Email/import",
        {"emails": {"i": {"blobId": upload.json()["blobId"], "mailboxIds": {drafts: True}}}},
    )
    assert imported["notCreated"]["i"]["type"] == "overQuota"


def test_forwarded_message_with_odd_line_breaks_is_kept(node: JmapNode, client: JmapClient) -> None:
    """RFC 2046 §5.2.1: an uploaded message attached as message/rfc822 whose header values
    hold RS and U+2028 (line breaks to str.splitlines) is stored octet for octet, not
    refolded into other fields."""
    forwarded = (
        "Subject: 0\x1e0\r\nFrom: \u2028 <bob@example.net>\r\nMessage-ID: <a\x1eb@x>\r\n"
        "\r\nbody\r\n"
    ).encode()
    upload = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=forwarded,
        headers={"Content-Type": "message/rfc822"},
    )
    assert upload.status_code == 201, upload.text
    drafts = client.mailbox_ids()["drafts"]
    result = client.call(
        "Email/set",
        {
            "create": {
                "f": {
                    "mailboxIds": {drafts: True},
                    "subject": "Fwd",
                    "textBody": [{"partId": "t"}],
                    "bodyValues": {"t": {"value": "See attached."}},
                    "attachments": [
                        {
                            "blobId": upload.json()["blobId"],
                            "type": "message/rfc822",
                            "name": "f.eml",
                        }
                    ],
                }
            }
        },
    )
    email_id = result["created"]["f"]["id"]
    [attachment] = get(client, email_id, "attachments")["attachments"]
    assert attachment["type"] == "message/rfc822"
    content = client.http.get(
        f"/jmap/download/{client.account_id}/{attachment['blobId']}/f.eml"
    ).content
    assert content == forwarded
