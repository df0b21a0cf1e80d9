"""VacationResponse/get and /set over HTTP (RFC 8621 §8), and the reply that delivery
then sends."""

from __future__ import annotations

from hirondelle.mail.queue import OutboundQueue
from tests.jmap.conftest import JmapClient, JmapNode, message

USING = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:vacationresponse",
]


def call(client: JmapClient, name: str, args: dict[str, object]) -> list[object]:
    answer = client.request([[name, {"accountId": client.account_id, **args}, "v"]], using=USING)
    response: list[object] = answer["methodResponses"][0]
    return response


def test_default_is_disabled(client: JmapClient) -> None:
    name, result, _ = call(client, "VacationResponse/get", {"ids": None})
    assert name == "VacationResponse/get"
    assert result["list"] == [  # type: ignore[index]
        {
            "id": "singleton",
            "isEnabled": False,
            "fromDate": None,
            "toDate": None,
            "subject": None,
            "textBody": None,
            "htmlBody": None,
        }
    ]
    _, other, _ = call(client, "VacationResponse/get", {"ids": ["singleton", "other"]})
    assert other["notFound"] == ["other"]  # type: ignore[index]


def test_update_create_destroy(client: JmapClient) -> None:
    _, result, _ = call(
        client,
        "VacationResponse/set",
        {
            "update": {
                "singleton": {
                    "isEnabled": True,
                    "fromDate": "2026-11-01T00:00:00Z",
                    "toDate": "2099-01-01T00:00:00Z",
                    "subject": "Absent",
                    "textBody": "Back soon / De retour bientôt",
                }
            },
            "create": {"x": {"isEnabled": True}},
        },
    )
    assert result["updated"] == {"singleton": None}  # type: ignore[index]
    assert result["notCreated"]["x"]["type"] == "singleton"  # type: ignore[index]
    _, destroy, _ = call(client, "VacationResponse/set", {"destroy": ["singleton"]})
    assert destroy["notDestroyed"]["singleton"]["type"] == "singleton"  # type: ignore[index]
    _, got, _ = call(client, "VacationResponse/get", {"ids": ["singleton"]})
    [vacation] = got["list"]  # type: ignore[index]
    assert vacation["isEnabled"] is True
    assert vacation["toDate"] == "2099-01-01T00:00:00Z"
    assert vacation["textBody"] == "Back soon / De retour bientôt"
    _, patched, _ = call(
        client, "VacationResponse/set", {"update": {"singleton": {"subject": None}}}
    )
    assert patched["updated"] == {"singleton": None}  # type: ignore[index]
    _, bad, _ = call(
        client,
        "VacationResponse/set",
        {
            "update": {
                "singleton": {"fromDate": "tomorrow"},
                "other": {"isEnabled": False},
            }
        },
    )
    assert bad["notUpdated"]["singleton"]["type"] == "invalidProperties"  # type: ignore[index]
    assert bad["notUpdated"]["other"]["type"] == "notFound"  # type: ignore[index]
    _, order, _ = call(
        client,
        "VacationResponse/set",
        {
            "update": {
                "singleton": {
                    "fromDate": "2026-12-01T00:00:00Z",
                    "toDate": "2026-11-01T00:00:00Z",
                }
            }
        },
    )
    assert order["notUpdated"]["singleton"]["properties"] == ["toDate"]  # type: ignore[index]


def test_needs_the_capability(client: JmapClient) -> None:
    # Without urn:ietf:params:jmap:vacationresponse in "using", it is not a method.
    refused = client.error("VacationResponse/get", {"ids": None}, "unknownMethod")
    assert refused["type"] == "unknownMethod"


def test_enabled_response_answers_delivery(node: JmapNode, client: JmapClient) -> None:
    call(
        client,
        "VacationResponse/set",
        {"update": {"singleton": {"isEnabled": True, "textBody": "Away."}}},
    )
    assert node.account is not None
    node.run(
        node.services.mail.deliver(
            message("Question"), [node.account.id], mail_from="bob@example.net"
        )
    )
    node.run(node.services.vacation.idle())
    queue = OutboundQueue(node.services.database, node.services.blobs)
    [entry] = node.run(queue.entries())
    assert (entry.address, entry.mail_from) == ("bob@example.net", "")
    content = node.run(node.services.blobs.get(entry.blob_hash))
    assert b"Subject: Auto: Question" in content
    assert b"Away." in content
