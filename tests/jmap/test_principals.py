"""RFC 9670 Principal/get, /changes, /query, /queryChanges over HTTP against a real node,
on both backends: the enabled accounts of the user's own domain, nothing of another
domain, filters, and the state moving when the directory does."""

from __future__ import annotations

from typing import Any

from tests.jmap.conftest import JmapClient, JmapNode

PRINCIPALS = "urn:ietf:params:jmap:principals"
USING = ["urn:ietf:params:jmap:core", PRINCIPALS]


def call(
    client: JmapClient, name: str, args: dict[str, Any], *, expect: str | None = None
) -> dict[str, Any]:
    answer = client.request([[name, {"accountId": client.account_id, **args}, "c0"]], using=USING)
    got_name, got_args, _ = answer["methodResponses"][0]
    assert got_name == (expect or name), answer["methodResponses"]
    result: dict[str, Any] = got_args
    return result


def error(client: JmapClient, name: str, args: dict[str, Any], kind: str) -> None:
    result = call(client, name, args, expect="error")
    assert result["type"] == kind, result


def directory(node: JmapNode) -> dict[str, int]:
    """Colleagues in alice's domain (one of them disabled) and someone elsewhere."""
    made = {
        "bob": node.add_account("bob@example.test", display_name="Bob Martin").id,
        "chloe": node.add_account("chloe@example.test", display_name="Chloé Durand").id,
        "gone": node.add_account("gone@example.test", display_name="Gone Away").id,
        "other": node.add_account("zoe@other.test", display_name="Zoé Autre").id,
    }
    node.run(node.services.accounts.update_account("gone@example.test", disabled=True))
    return made


def test_get_lists_the_domain(node: JmapNode, client: JmapClient) -> None:
    made = directory(node)
    got = call(client, "Principal/get", {"ids": None})
    by_email = {p["email"]: p for p in got["list"]}
    assert set(by_email) == {"alice@example.test", "bob@example.test", "chloe@example.test"}
    bob = by_email["bob@example.test"]
    assert bob == {
        "id": f"P{made['bob']}",
        "type": "individual",
        "name": "Bob Martin",
        "description": None,
        "email": "bob@example.test",
        "timeZone": None,
        "capabilities": {},
        "accounts": None,
    }
    me = by_email["alice@example.test"]
    assert me["name"] == "alice@example.test"  # no display name: the address
    assert list(me["accounts"]) == [client.account_id]
    only = call(
        client,
        "Principal/get",
        {"ids": [bob["id"], f"P{made['other']}", f"P{made['gone']}"], "properties": ["name"]},
    )
    assert only["list"] == [{"id": bob["id"], "name": "Bob Martin"}]
    # Another domain's account and a disabled one are not found, like unknown ids.
    assert only["notFound"] == [f"P{made['other']}", f"P{made['gone']}"]
    error(client, "Principal/get", {"properties": ["password"]}, "invalidArguments")


def test_query_filters_and_order(node: JmapNode, client: JmapClient) -> None:
    made = directory(node)
    bob, chloe = f"P{made['bob']}", f"P{made['chloe']}"
    me = f"P{client.account.id}"

    def query(**args: Any) -> list[str]:
        result: list[str] = call(client, "Principal/query", args)["ids"]
        return result

    assert query() == [me, bob, chloe]  # by name: alice@..., Bob Martin, Chloé Durand
    assert query(filter={"text": "CHLO"}) == [chloe]
    assert query(filter={"text": "bob@"}) == [bob]
    assert query(filter={"name": "martin"}) == [bob]
    assert query(filter={"email": "example.test"}) == [me, bob, chloe]
    assert query(filter={"email": "zoe"}) == []
    assert query(filter={"type": "individual"}) == [me, bob, chloe]
    assert query(filter={"type": "group"}) == []
    assert query(filter={"accountIds": [client.account_id]}) == [me]
    assert query(sort=[{"property": "name", "isAscending": False}]) == [chloe, bob, me]
    assert query(filter={"operator": "NOT", "conditions": [{"name": "martin"}]}) == [me, chloe]
    page = call(client, "Principal/query", {"limit": 1, "position": 1, "calculateTotal": True})
    assert page["ids"] == [bob] and page["total"] == 3
    error(client, "Principal/query", {"filter": {"phone": "1"}}, "unsupportedFilter")
    error(client, "Principal/query", {"filter": {"name": 1}}, "invalidArguments")
    error(client, "Principal/query", {"sort": [{"property": "id"}]}, "unsupportedSort")


def test_changes_follow_the_directory(node: JmapNode, client: JmapClient) -> None:
    state = call(client, "Principal/get", {"ids": []})["state"]
    same = call(client, "Principal/changes", {"sinceState": state})
    assert same["newState"] == state and same["created"] == same["updated"] == []
    assert same["destroyed"] == [] and same["hasMoreChanges"] is False
    query_state = call(client, "Principal/query", {})["queryState"]
    unchanged = call(client, "Principal/queryChanges", {"sinceQueryState": query_state})
    assert unchanged["added"] == [] and unchanged["removed"] == []
    node.add_account("dan@example.test", display_name="Dan")
    error(client, "Principal/changes", {"sinceState": state}, "cannotCalculateChanges")
    error(
        client, "Principal/queryChanges", {"sinceQueryState": query_state}, "cannotCalculateChanges"
    )
    assert call(client, "Principal/get", {"ids": []})["state"] != state
    # A change of a colleague's display name moves the state too.
    state = call(client, "Principal/get", {"ids": []})["state"]
    node.run(node.services.accounts.update_account("dan@example.test", display_name="Daniel"))
    error(client, "Principal/changes", {"sinceState": state}, "cannotCalculateChanges")
    error(client, "Principal/changes", {}, "invalidArguments")


def test_principals_need_the_capability(client: JmapClient) -> None:
    answer = client.request([["Principal/get", {"accountId": client.account_id}, "c0"]])
    assert answer["methodResponses"][0][1]["type"] == "unknownMethod"
    answer = client.request(
        [["Principal/set", {"accountId": client.account_id}, "c0"]], using=USING
    )
    assert answer["methodResponses"][0][1]["type"] == "unknownMethod"
