"""RFC 8621 §2 Mailbox over HTTP: get with counts and rights, create / rename / move /
destroy with their errors, ifInState, changes with paging, cannotCalculateChanges after
compaction, query with filters and trees, queryChanges."""

from __future__ import annotations

from typing import Any

import pytest

from hirondelle.store import journal
from tests.jmap.conftest import JmapClient, JmapNode, message


def create(client: JmapClient, **mailboxes: dict[str, Any]) -> dict[str, Any]:
    result = client.call("Mailbox/set", {"create": mailboxes})
    assert not result.get("notCreated"), result
    return result


def test_get_counts_and_rights(node: JmapNode, client: JmapClient) -> None:
    node.deliver(message("one", message_id="1@x"))
    node.deliver(message("two", message_id="2@x", in_reply_to="1@x"))
    node.deliver(message("three", message_id="3@x"))
    got = client.call("Mailbox/get", {"ids": None})
    inbox = next(m for m in got["list"] if m["role"] == "inbox")
    assert inbox["name"] == "INBOX" and inbox["parentId"] is None
    assert (inbox["totalEmails"], inbox["unreadEmails"]) == (3, 3)
    assert (inbox["totalThreads"], inbox["unreadThreads"]) == (2, 2)
    assert inbox["myRights"]["mayDelete"] is False and inbox["myRights"]["mayRename"] is False
    assert inbox["isSubscribed"] is True
    drafts = next(m for m in got["list"] if m["role"] == "drafts")
    assert drafts["myRights"]["mayDelete"] is True
    assert drafts["totalEmails"] == 0
    # IMAP \Seen on the thread's two messages leaves one unread thread.
    imap = node.imap()
    imap.login("alice@example.test", "correct horse battery")
    imap.select("INBOX")
    assert imap.uid("STORE", "1:2", "+FLAGS", "(\\Seen)")[0] == "OK"
    imap.logout()
    inbox = client.call("Mailbox/get", {"ids": [inbox["id"]]})["list"][0]
    assert (inbox["unreadEmails"], inbox["unreadThreads"], inbox["totalThreads"]) == (1, 1, 2)


def test_get_properties_and_not_found(client: JmapClient) -> None:
    ids = client.mailbox_ids()
    got = client.call(
        "Mailbox/get", {"ids": [ids["inbox"], "M999999", "X1"], "properties": ["role"]}
    )
    assert got["list"] == [{"id": ids["inbox"], "role": "inbox"}]
    assert got["notFound"] == ["M999999", "X1"]


def test_create_rename_move_destroy(node: JmapNode, client: JmapClient) -> None:
    created = create(
        client, a={"name": "Projets", "sortOrder": 5}, b={"name": "Été", "parentId": "#a"}
    )
    a, b = created["created"]["a"]["id"], created["created"]["b"]["id"]
    assert created["created"]["a"]["totalEmails"] == 0
    assert created["created"]["a"]["myRights"]["mayDelete"] is True
    assert created["oldState"] != created["newState"]
    # The store (and IMAP) see the full path.
    assert node.mailbox("Projets/Été").id == int(b[1:])
    result = client.call("Mailbox/set", {"update": {b: {"name": "Hiver"}}})
    assert result["updated"] == {b: None}
    assert node.mailbox("Projets/Hiver")
    # Move to the top level.
    result = client.call("Mailbox/set", {"update": {b: {"parentId": None}}})
    assert result["updated"] == {b: None}
    got = client.call("Mailbox/get", {"ids": [b]})["list"][0]
    assert (got["name"], got["parentId"]) == ("Hiver", None)
    # Role and subscription and sort order.
    result = client.call("Mailbox/set", {"update": {a: {"isSubscribed": False, "sortOrder": 1}}})
    got = client.call("Mailbox/get", {"ids": [a]})["list"][0]
    assert (got["isSubscribed"], got["sortOrder"]) == (False, 1)
    result = client.call("Mailbox/set", {"destroy": [a, b]})
    assert sorted(result["destroyed"]) == sorted([a, b])
    assert client.call("Mailbox/get", {"ids": [a]})["notFound"] == [a]


def test_set_errors(node: JmapNode, client: JmapClient) -> None:
    ids = client.mailbox_ids()
    created = create(client, p={"name": "Parent"}, c={"name": "Child", "parentId": "#p"})
    parent, child = created["created"]["p"]["id"], created["created"]["c"]["id"]
    result = client.call(
        "Mailbox/set",
        {
            "create": {
                "slash": {"name": "a/b"},
                "empty": {"name": ""},
                "dup": {"name": "Child", "parentId": parent},
                "orphan": {"name": "x", "parentId": "M999999"},
                "role": {"name": "y", "role": "sent"},
                "server": {"name": "z", "totalEmails": 3},
                "unknown": {"name": "w", "colour": "red"},
            },
            "update": {
                ids["inbox"]: {"name": "Boîte"},
                "M999998": {"name": "nothing"},
                child: {"parentId": child},
                parent: {"parentId": child},
                ids["drafts"]: {"myRights/mayDelete": False},
                ids["sent"]: {"name/x": "y"},
            },
            "destroy": [parent, ids["inbox"], "M999999"],
        },
    )
    not_created = result["notCreated"]
    assert not_created["slash"]["type"] == "invalidProperties"
    assert not_created["slash"]["properties"] == ["name"]
    assert not_created["empty"]["properties"] == ["name"]
    assert not_created["dup"]["type"] == "invalidProperties"
    assert not_created["orphan"]["properties"] == ["parentId"]
    assert not_created["role"]["properties"] == ["role"]
    assert not_created["server"]["properties"] == ["totalEmails"]
    assert not_created["unknown"]["properties"] == ["colour"]
    not_updated = result["notUpdated"]
    # The inbox is also in destroy: not updated for that reason first (RFC 8620 §5.3).
    assert not_updated[ids["inbox"]]["type"] == "willDestroy"
    renamed = client.call("Mailbox/set", {"update": {ids["inbox"]: {"name": "Boîte"}}})
    assert renamed["notUpdated"][ids["inbox"]]["type"] == "forbidden"
    assert not_updated["M999998"]["type"] == "notFound"
    assert not_updated[child]["type"] == "invalidProperties"
    assert not_updated[parent]["type"] == "willDestroy"
    under_child = client.call("Mailbox/set", {"update": {parent: {"parentId": child}}})
    assert under_child["notUpdated"][parent]["type"] == "invalidProperties"
    assert not_updated[ids["drafts"]]["type"] == "invalidProperties"
    assert not_updated[ids["sent"]]["type"] == "invalidPatch"
    not_destroyed = result["notDestroyed"]
    assert not_destroyed[parent]["type"] == "mailboxHasChild"
    assert not_destroyed[ids["inbox"]]["type"] == "forbidden"
    assert not_destroyed["M999999"]["type"] == "notFound"
    assert result["created"] is None and result["updated"] is None
    # Nothing of the refused changes happened.
    assert {m["name"] for m in client.call("Mailbox/get", {"ids": None})["list"]} >= {
        "INBOX",
        "Parent",
        "Child",
    }
    assert result["oldState"] == result["newState"]


def test_destroy_with_emails(node: JmapNode, client: JmapClient) -> None:
    created = create(client, box={"name": "Full"})
    box = created["created"]["box"]["id"]
    imap = node.imap()
    imap.login("alice@example.test", "correct horse battery")
    assert imap.append("Full", "", None, message("kept"))[0] == "OK"
    imap.logout()
    result = client.call("Mailbox/set", {"destroy": [box]})
    assert result["notDestroyed"][box]["type"] == "mailboxHasEmail"
    result = client.call("Mailbox/set", {"destroy": [box], "onDestroyRemoveEmails": True})
    assert result["destroyed"] == [box]


def test_if_in_state(client: JmapClient) -> None:
    state = client.call("Mailbox/get", {"ids": []})["state"]
    create(client, one={"name": "One"})
    refused = client.error(
        "Mailbox/set", {"ifInState": state, "create": {"two": {"name": "Two"}}}, "stateMismatch"
    )
    assert refused["type"] == "stateMismatch"
    client.error("Mailbox/set", {"ifInState": "garbage", "create": {}}, "stateMismatch")
    names = {m["name"] for m in client.call("Mailbox/get", {"ids": None})["list"]}
    assert "Two" not in names
    current = client.call("Mailbox/get", {"ids": []})["state"]
    result = client.call("Mailbox/set", {"ifInState": current, "create": {"two": {"name": "Two"}}})
    assert result["oldState"] == current and result["created"]["two"]["id"]


def test_changes_paging_for_an_offline_client(client: JmapClient) -> None:
    ids = client.mailbox_ids()
    since = client.call("Mailbox/get", {"ids": []})["state"]
    made = create(client, a={"name": "A"}, b={"name": "B"}, c={"name": "C"})["created"]
    a, b, c = (made[k]["id"] for k in "abc")
    create(client, d={"name": "D"})
    client.call("Mailbox/set", {"update": {a: {"name": "A2"}, ids["drafts"]: {"sortOrder": 3}}})
    client.call("Mailbox/set", {"destroy": [b]})
    # Whole answer at once.
    whole = client.call("Mailbox/changes", {"sinceState": since})
    assert whole["hasMoreChanges"] is False
    d = next(i for i in whole["created"] if i not in (a, c))
    assert sorted(whole["created"]) == sorted([a, c, d])
    assert whole["updated"] == [ids["drafts"]]
    assert whole["destroyed"] == []  # b was created and destroyed in the interval
    assert whole["updatedProperties"] is None
    # Paged: never more than maxChanges ids, and a client applying the pages in order
    # ends with the same mailboxes as one applying the whole answer.
    known = set(ids.values())
    state, pages = since, 0
    while True:
        page = client.call("Mailbox/changes", {"sinceState": state, "maxChanges": 3})
        pages += 1
        assert len(page["created"]) + len(page["updated"]) + len(page["destroyed"]) <= 3
        known |= set(page["created"]) | set(page["updated"])
        known -= set(page["destroyed"])
        state = page["newState"]
        if not page["hasMoreChanges"]:
            break
    assert pages >= 2
    assert known == set(ids.values()) | {a, c, d}
    assert state == whole["newState"]
    # From the current state: nothing.
    empty = client.call("Mailbox/changes", {"sinceState": state})
    assert (empty["created"], empty["updated"], empty["destroyed"]) == ([], [], [])
    client.error("Mailbox/changes", {"sinceState": state, "maxChanges": 0}, "invalidArguments")
    client.error("Mailbox/changes", {"sinceState": "99999999"}, "cannotCalculateChanges")


def test_cannot_calculate_changes_after_compaction(node: JmapNode, client: JmapClient) -> None:
    old = client.call("Mailbox/get", {"ids": []})["state"]
    create(client, a={"name": "A"})
    middle = client.call("Mailbox/get", {"ids": []})["state"]
    create(client, b={"name": "B"})
    assert node.account is not None
    account_id = node.account.id
    node.run(
        node.services.database.write(
            lambda ctx: journal.compact(ctx, account_id, up_to_modseq=int(middle))
        )
    )
    client.error("Mailbox/changes", {"sinceState": old}, "cannotCalculateChanges")
    client.error("Mailbox/queryChanges", {"sinceQueryState": old}, "cannotCalculateChanges")
    after = client.call("Mailbox/changes", {"sinceState": middle})
    assert len(after["created"]) == 1


def test_query_filters_and_trees(client: JmapClient) -> None:
    made = create(
        client,
        w={"name": "Work", "sortOrder": 20},
        x={"name": "Alpha", "parentId": "#w", "sortOrder": 20},
        y={"name": "Beta", "parentId": "#w", "sortOrder": 15, "isSubscribed": False},
        z={"name": "Zeta", "parentId": "#y"},
    )["created"]
    w, x, y, z = (made[k]["id"] for k in "wxyz")
    ids = client.mailbox_ids()
    q = client.call("Mailbox/query", {"filter": {"parentId": w}, "sort": [{"property": "name"}]})
    assert q["ids"] == [x, y]
    q = client.call(
        "Mailbox/query", {"filter": {"parentId": w}, "sort": [{"property": "sortOrder"}]}
    )
    assert q["ids"] == [y, x]
    q = client.call("Mailbox/query", {"filter": {"name": "ETA"}, "sort": [{"property": "name"}]})
    assert q["ids"] == [y, z]
    q = client.call("Mailbox/query", {"filter": {"role": "trash"}})
    assert q["ids"] == [ids["trash"]]
    q = client.call("Mailbox/query", {"filter": {"hasAnyRole": True}, "calculateTotal": True})
    assert q["total"] == 6
    q = client.call("Mailbox/query", {"filter": {"isSubscribed": False}})
    assert q["ids"] == [y]
    q = client.call(
        "Mailbox/query",
        {
            "filter": {"operator": "NOT", "conditions": [{"hasAnyRole": True}]},
            "sort": [{"property": "name", "isAscending": False}],
        },
    )
    assert q["ids"] == [z, w, y, x]
    # sortAsTree: parents before their children, siblings by the sort.
    q = client.call(
        "Mailbox/query",
        {
            "filter": {"hasAnyRole": False},
            "sort": [{"property": "name"}],
            "sortAsTree": True,
        },
    )
    assert q["ids"] == [w, x, y, z]
    # filterAsTree: Zeta matches but its parent Beta does not.
    q = client.call(
        "Mailbox/query",
        {
            "filter": {"isSubscribed": True, "hasAnyRole": False},
            "filterAsTree": True,
            "sortAsTree": True,
            "sort": [{"property": "name"}],
        },
    )
    assert q["ids"] == [w, x]
    # Windows.
    q = client.call(
        "Mailbox/query",
        {"sort": [{"property": "name"}], "position": 1, "limit": 2, "filter": {"parentId": w}},
    )
    assert q["ids"] == [y] and q["position"] == 1
    q = client.call(
        "Mailbox/query",
        {"sort": [{"property": "name"}], "position": -1, "filter": {"hasAnyRole": False}},
    )
    assert q["ids"] == [z]
    q = client.call(
        "Mailbox/query",
        {
            "sort": [{"property": "name"}],
            "anchor": y,
            "anchorOffset": -1,
            "filter": {"hasAnyRole": False},
        },
    )
    assert q["ids"] == [x, y, w, z] and q["position"] == 0
    client.error("Mailbox/query", {"limit": -1}, "invalidArguments")
    client.error(
        "Mailbox/query", {"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"
    )


def test_query_changes(client: JmapClient) -> None:
    arguments = {"filter": {"hasAnyRole": False}, "sort": [{"property": "name"}]}
    made = create(client, b={"name": "B"}, d={"name": "D"})["created"]
    b, d = made["b"]["id"], made["d"]["id"]
    first = client.call("Mailbox/query", arguments)
    assert first["ids"] == [b, d] and first["canCalculateChanges"] is True
    c = create(client, c={"name": "C"})["created"]["c"]["id"]
    client.call("Mailbox/set", {"update": {d: {"name": "A"}}})
    changed = client.call(
        "Mailbox/queryChanges",
        {**arguments, "sinceQueryState": first["queryState"], "calculateTotal": True},
    )
    now = client.call("Mailbox/query", arguments)
    assert now["ids"] == [d, b, c]
    assert changed["newQueryState"] == now["queryState"]
    assert changed["total"] == 3
    # Applying the changes to the old result gives the new one.
    result = [i for i in first["ids"] if i not in changed["removed"]]
    for added in sorted(changed["added"], key=lambda a: a["index"]):
        result.insert(added["index"], added["id"])
    assert result == now["ids"]
    client.error(
        "Mailbox/queryChanges",
        {**arguments, "sinceQueryState": first["queryState"], "maxChanges": 1},
        "tooManyChanges",
    )


@pytest.mark.parametrize("value", [{"parentId": 3}, {"name": None}, {"hasAnyRole": "yes"}])
def test_query_bad_conditions(client: JmapClient, value: dict[str, Any]) -> None:
    client.error("Mailbox/query", {"filter": value}, "invalidArguments")


def test_update_and_destroy_together_is_will_destroy(client: JmapClient) -> None:
    box = create(client, box={"name": "Doomed"})["created"]["box"]["id"]
    result = client.call("Mailbox/set", {"update": {box: {"name": "Renamed"}}, "destroy": [box]})
    assert result["notUpdated"][box]["type"] == "willDestroy"
    assert result["destroyed"] == [box]
