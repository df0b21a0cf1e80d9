"""Identity/get, /changes and /set over HTTP (RFC 8621 §6): the account's addresses and
aliases, added identities, forbiddenFrom, immutable email, undeletable defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jmap.conftest import JmapClient, JmapNode

USING = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:submission",
]


def call(
    client: JmapClient, name: str, args: dict[str, Any], expect: str | None = None
) -> dict[str, Any]:
    answer = client.request([[name, {"accountId": client.account_id, **args}, "i"]], using=USING)
    got, result, _ = answer["methodResponses"][0]
    assert got == (expect or name), answer
    return dict(result)


@pytest.fixture
def with_alias(node: JmapNode) -> None:
    node.run(node.services.aliases.add("contact@example.test", ["alice@example.test"]))


def test_defaults_are_the_account_addresses(
    node: JmapNode, client: JmapClient, with_alias: None
) -> None:
    listed = call(client, "Identity/get", {"ids": None})["list"]
    assert sorted(i["email"] for i in listed) == ["alice@example.test", "contact@example.test"]
    assert all(i["mayDelete"] is False for i in listed)
    # Asking again creates nothing more.
    again = call(client, "Identity/get", {"ids": None})
    assert len(again["list"]) == 2


def test_create_update_destroy_and_changes(node: JmapNode, client: JmapClient) -> None:
    state = call(client, "Identity/get", {"ids": None})["state"]
    created = call(
        client,
        "Identity/set",
        {
            "create": {
                "work": {
                    "email": "alice+work@example.test",
                    "name": "Alice (travail)",
                    "replyTo": [{"name": None, "email": "team@example.test"}],
                    "textSignature": "-- \nAlice",
                },
                "stranger": {"email": "mallory@example.test"},
                "noemail": {"name": "x"},
            }
        },
    )
    work = created["created"]["work"]["id"]
    assert created["created"]["work"]["mayDelete"] is True
    assert created["notCreated"]["stranger"]["type"] == "forbiddenFrom"
    assert created["notCreated"]["noemail"]["type"] == "invalidProperties"
    [got] = call(client, "Identity/get", {"ids": [work]})["list"]
    assert got["name"] == "Alice (travail)"
    assert got["replyTo"] == [{"name": None, "email": "team@example.test"}]
    updated = call(
        client,
        "Identity/set",
        {"update": {work: {"htmlSignature": "<b>Alice</b>"}, "I999999": {"name": "x"}}},
    )
    assert updated["updated"] == {work: None}
    assert updated["notUpdated"]["I999999"]["type"] == "notFound"
    refused = call(client, "Identity/set", {"update": {work: {"email": "alice@example.test"}}})
    assert refused["notUpdated"][work]["type"] == "invalidProperties"
    changes = call(client, "Identity/changes", {"sinceState": state})
    assert changes["created"] == [work]
    default = next(
        i["id"] for i in call(client, "Identity/get", {"ids": None})["list"] if not i["mayDelete"]
    )
    destroyed = call(client, "Identity/set", {"destroy": [work, default]})
    assert destroyed["destroyed"] == [work]
    assert destroyed["notDestroyed"][default]["type"] == "forbidden"
    after = call(client, "Identity/changes", {"sinceState": state})
    assert work not in after["created"] and work not in after["destroyed"]


def test_needs_the_submission_capability(client: JmapClient) -> None:
    # Without urn:ietf:params:jmap:submission in "using", Identity/* is not a method.
    refused = client.error("Identity/get", {"ids": None}, "unknownMethod")
    assert refused["type"] == "unknownMethod"


def test_aliases_added_and_removed_show_in_changes(node: JmapNode, client: JmapClient) -> None:
    state = call(client, "Identity/get", {"ids": None})["state"]
    node.run(node.services.aliases.add("sales@example.test", ["alice@example.test"]))
    added = call(client, "Identity/changes", {"sinceState": state})
    [new] = added["created"]
    [identity] = call(client, "Identity/get", {"ids": [new]})["list"]
    assert identity["email"] == "sales@example.test"
    node.run(node.services.aliases.remove("sales@example.test"))
    removed = call(client, "Identity/changes", {"sinceState": added["newState"]})
    assert removed["destroyed"] == [new]
