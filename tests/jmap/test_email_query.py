"""Email/query and Email/queryChanges over HTTP (RFC 8621 §4.4, §4.5): every
FilterCondition, FilterOperator, every sort, collapseThreads, paging by position and
anchor, and changes of a query."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jmap.conftest import JmapClient, JmapNode


def raw(
    subject: str,
    *,
    sender: str = "Bob <bob@example.net>",
    to: str = "alice@example.test",
    body: str = "Nothing much.",
    message_id: str = "",
    in_reply_to: str = "",
    date: str = "Sun, 22 Nov 2026 10:00:00 +0000",
    extra: str = "",
) -> bytes:
    headers = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}"]
    if message_id:
        headers.append(f"Message-ID: <{message_id}>")
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(headers) + "\r\n" + extra + "\r\n" + body + "\r\n").encode()


class Mailbox:
    """Five emails with known properties, delivered in order (receivedAt ascending)."""

    def __init__(self, node: JmapNode, client: JmapClient) -> None:
        self.client = client
        self.ids: dict[str, str] = {}
        specs = {
            "plan": raw(
                "Project plan",
                sender="Zoé <zoe@example.net>",
                body="The budget for Genève is attached.",
                message_id="plan@example.net",
                date="Mon, 02 Nov 2026 09:00:00 +0000",
            ),
            "reply": raw(
                "Re: Project plan",
                sender="Alain <alain@example.net>",
                body="Agreed on the budget.",
                in_reply_to="plan@example.net",
                date="Tue, 03 Nov 2026 09:00:00 +0000",
                extra="X-Priority: 1\r\n",
            ),
            "lunch": raw(
                "Lunch",
                sender="bob@example.net",
                to="carol@example.net",
                body="Pizza at noon?" + " filler" * 200,
                date="Wed, 04 Nov 2026 09:00:00 +0000",
            ),
            "news": raw(
                "Newsletter",
                sender="News <news@example.org>",
                body="Weekly digest.",
                date="Sun, 01 Nov 2026 09:00:00 +0000",
            ),
            "invoice": raw(
                "Invoice",
                sender="Billing <billing@example.org>",
                body="Amount due.",
                date="Thu, 05 Nov 2026 09:00:00 +0000",
            ),
        }
        for name, message in specs.items():
            state = client.call("Email/changes", {"sinceState": "0"})["newState"]
            node.deliver(message)
            [self.ids[name]] = client.call("Email/changes", {"sinceState": state})["created"]
        self.boxes = client.mailbox_ids()

    def names(self, email_ids: list[str]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[i] for i in email_ids]

    def query(self, **args: Any) -> list[str]:
        return self.names(self.client.call("Email/query", args)["ids"])


@pytest.fixture
def box(node: JmapNode, client: JmapClient) -> Mailbox:
    return Mailbox(node, client)


def test_default_order_is_newest_first(box: Mailbox) -> None:
    assert box.query() == ["invoice", "news", "lunch", "reply", "plan"]


def test_text_conditions(box: Mailbox) -> None:
    assert box.query(filter={"subject": "plan"}) == ["reply", "plan"]
    assert box.query(filter={"from": "zoé"}) == ["plan"]
    assert box.query(filter={"from": "example.org"}) == ["invoice", "news"]
    assert box.query(filter={"to": "carol"}) == ["lunch"]
    assert box.query(filter={"body": "budget"}) == ["reply", "plan"]
    assert box.query(filter={"body": "geneve"}) == ["plan"]
    assert box.query(filter={"text": "pizza"}) == ["lunch"]
    assert box.query(filter={"text": "newsletter"}) == ["news"]
    assert box.query(filter={"cc": "anyone"}) == []
    assert box.query(filter={"bcc": "anyone"}) == []
    assert box.query(filter={"header": ["X-Priority"]}) == ["reply"]
    assert box.query(filter={"header": ["X-Priority", "1"]}) == ["reply"]
    assert box.query(filter={"header": ["X-Priority", "5"]}) == []


def test_mailbox_keyword_size_and_attachment_conditions(box: Mailbox, client: JmapClient) -> None:
    archive = box.boxes["archive"]
    client.call(
        "Email/set",
        {
            "update": {
                box.ids["news"]: {"mailboxIds": {archive: True}},
                box.ids["plan"]: {"keywords/$seen": True, f"mailboxIds/{archive}": True},
            }
        },
    )
    inbox = box.boxes["inbox"]
    assert box.query(filter={"inMailbox": archive}) == ["news", "plan"]
    assert box.query(filter={"inMailbox": "M999999"}) == []
    # In a mailbox other than the inbox: news (archive only), plan (inbox and archive).
    assert box.query(filter={"inMailboxOtherThan": [inbox]}) == ["news", "plan"]
    assert box.query(filter={"inMailboxOtherThan": [inbox, archive]}) == []
    # NOT inMailbox: emails not in the archive at all (plan is, through its 2nd mailbox).
    assert box.query(filter={"operator": "NOT", "conditions": [{"inMailbox": archive}]}) == [
        "invoice",
        "lunch",
        "reply",
    ]
    assert box.query(filter={"hasKeyword": "$Seen"}) == ["plan"]
    assert box.query(filter={"notKeyword": "$seen"}) == ["invoice", "news", "lunch", "reply"]
    lunch_size = client.call("Email/get", {"ids": [box.ids["lunch"]], "properties": ["size"]})[
        "list"
    ][0]["size"]
    assert box.query(filter={"minSize": lunch_size}) == ["lunch"]
    assert "lunch" not in box.query(filter={"maxSize": lunch_size})
    assert box.query(filter={"hasAttachment": True}) == []
    assert len(box.query(filter={"hasAttachment": False})) == 5


def test_date_conditions(box: Mailbox, client: JmapClient) -> None:
    received = {
        name: client.call("Email/get", {"ids": [i], "properties": ["receivedAt"]})["list"][0][
            "receivedAt"
        ]
        for name, i in box.ids.items()
    }
    everything = box.query(filter={"after": "2000-01-01T00:00:00Z"})
    assert len(everything) == 5
    assert box.query(filter={"before": "2000-01-01T00:00:00Z"}) == []
    assert box.query(filter={"after": "2999-01-01T00:00:00Z"}) == []
    newest = max(received.values())
    assert "invoice" in box.query(filter={"after": newest})


def test_thread_keyword_conditions(box: Mailbox, client: JmapClient) -> None:
    client.call("Email/set", {"update": {box.ids["plan"]: {"keywords/$flagged": True}}})
    assert box.query(filter={"someInThreadHaveKeyword": "$flagged"}) == ["reply", "plan"]
    assert box.query(filter={"allInThreadHaveKeyword": "$flagged"}) == []
    assert box.query(filter={"noneInThreadHaveKeyword": "$flagged"}) == [
        "invoice",
        "news",
        "lunch",
    ]
    client.call("Email/set", {"update": {box.ids["reply"]: {"keywords/$flagged": True}}})
    assert box.query(filter={"allInThreadHaveKeyword": "$flagged"}) == ["reply", "plan"]


def test_operators(box: Mailbox) -> None:
    either = {"operator": "OR", "conditions": [{"subject": "lunch"}, {"subject": "invoice"}]}
    assert box.query(filter=either) == ["invoice", "lunch"]
    both = {"operator": "AND", "conditions": [{"subject": "plan"}, {"from": "alain"}]}
    assert box.query(filter=both) == ["reply"]
    neither = {"operator": "NOT", "conditions": [{"subject": "plan"}, {"from": "example.org"}]}
    assert box.query(filter=neither) == ["lunch"]
    nested = {
        "operator": "AND",
        "conditions": [either, {"operator": "NOT", "conditions": [{"subject": "lunch"}]}],
    }
    assert box.query(filter=nested) == ["invoice"]


def test_sorts(box: Mailbox, client: JmapClient) -> None:
    assert box.query(sort=[{"property": "receivedAt", "isAscending": True}]) == [
        "plan",
        "reply",
        "lunch",
        "news",
        "invoice",
    ]
    assert box.query(sort=[{"property": "sentAt"}]) == ["news", "plan", "reply", "lunch", "invoice"]
    assert box.query(sort=[{"property": "subject"}])[:3] == ["invoice", "lunch", "news"]
    # "Re: Project plan" sorts as "Project plan" (RFC 5256 base subject); ties newest first.
    assert box.query(sort=[{"property": "subject"}])[3:] == ["reply", "plan"]
    assert box.query(sort=[{"property": "from"}]) == ["reply", "invoice", "lunch", "news", "plan"]
    assert box.query(sort=[{"property": "to", "isAscending": False}])[0] == "lunch"
    assert box.query(sort=[{"property": "size", "isAscending": False}])[0] == "lunch"
    client.call("Email/set", {"update": {box.ids["news"]: {"keywords/$flagged": True}}})
    assert (
        box.query(sort=[{"property": "hasKeyword", "keyword": "$flagged", "isAscending": False}])[0]
        == "news"
    )
    client.call("Email/set", {"update": {box.ids["plan"]: {"keywords/$seen": True}}})
    by_thread = box.query(
        sort=[
            {"property": "someInThreadHaveKeyword", "keyword": "$seen", "isAscending": False},
            {"property": "receivedAt", "isAscending": True},
        ]
    )
    assert by_thread[:2] == ["plan", "reply"]
    all_seen = box.query(
        sort=[{"property": "allInThreadHaveKeyword", "keyword": "$seen", "isAscending": False}]
    )
    assert all_seen[0] not in ("plan", "reply")


def test_collapse_threads_and_paging(box: Mailbox, client: JmapClient) -> None:
    collapsed = client.call("Email/query", {"collapseThreads": True, "calculateTotal": True})
    assert box.names(collapsed["ids"]) == ["invoice", "news", "lunch", "reply"]
    assert collapsed["total"] == 4
    assert collapsed["canCalculateChanges"] is False
    page = client.call("Email/query", {"position": 1, "limit": 2, "calculateTotal": True})
    assert box.names(page["ids"]) == ["news", "lunch"]
    assert page["total"] == 5 and page["position"] == 1
    anchored = client.call(
        "Email/query", {"anchor": box.ids["lunch"], "anchorOffset": 1, "limit": 2}
    )
    assert box.names(anchored["ids"]) == ["reply", "plan"]
    client.error("Email/query", {"anchor": "E999999"}, "anchorNotFound")


def test_query_errors(box: Mailbox, client: JmapClient) -> None:
    client.error("Email/query", {"filter": {"nope": 1}}, "unsupportedFilter")
    client.error("Email/query", {"filter": {"before": "yesterday"}}, "invalidArguments")
    client.error("Email/query", {"filter": {"minSize": -1}}, "invalidArguments")
    client.error("Email/query", {"filter": {"header": []}}, "invalidArguments")
    client.error("Email/query", {"sort": [{"property": "nope"}]}, "unsupportedSort")
    client.error("Email/query", {"sort": [{"property": "hasKeyword"}]}, "invalidArguments")
    client.error("Email/query", {"collapseThreads": "yes"}, "invalidArguments")


def test_query_changes(node: JmapNode, box: Mailbox, client: JmapClient) -> None:
    inbox = box.boxes["inbox"]
    args = {
        "filter": {"inMailbox": inbox},
        "sort": [{"property": "receivedAt", "isAscending": False}],
    }
    first = client.call("Email/query", args)
    client.call("Email/set", {"destroy": [box.ids["news"]]})
    state = client.call("Email/changes", {"sinceState": "0"})["newState"]
    node.deliver(raw("Fresh", date="Fri, 06 Nov 2026 09:00:00 +0000"))
    [fresh] = client.call("Email/changes", {"sinceState": state})["created"]
    changes = client.call("Email/queryChanges", {**args, "sinceQueryState": first["queryState"]})
    assert box.ids["news"] in changes["removed"]
    assert {"id": fresh, "index": 0} in changes["added"]
    # Applying the changes to the first result gives the new result.
    result = [i for i in first["ids"] if i not in changes["removed"]]
    for item in sorted(changes["added"], key=lambda a: a["index"]):
        result.insert(item["index"], item["id"])
    assert result == client.call("Email/query", args)["ids"]
    client.error(
        "Email/queryChanges",
        {**args, "collapseThreads": True, "sinceQueryState": first["queryState"]},
        "cannotCalculateChanges",
    )
    client.error(
        "Email/queryChanges", {**args, "sinceQueryState": "bogus"}, "cannotCalculateChanges"
    )


def test_plain_list_and_general_path_agree(box: Mailbox, client: JmapClient) -> None:
    """A plain list by receivedAt is answered by SQL in order; the same list through the
    general evaluator (forced by an always-true extra condition) is identical."""
    inbox = box.boxes["inbox"]
    always = {"after": "2000-01-01T00:00:00Z"}
    for sort in ([], [{"property": "receivedAt", "isAscending": True}]):
        for collapse in (False, True):
            plain = client.call(
                "Email/query",
                {
                    "filter": {"inMailbox": inbox},
                    "sort": sort,
                    "collapseThreads": collapse,
                    "position": 1,
                    "limit": 3,
                    "calculateTotal": True,
                },
            )
            general = client.call(
                "Email/query",
                {
                    "filter": {"operator": "AND", "conditions": [{"inMailbox": inbox}, always]},
                    "sort": sort,
                    "collapseThreads": collapse,
                    "position": 1,
                    "limit": 3,
                    "calculateTotal": True,
                },
            )
            assert plain["ids"] == general["ids"]
            assert plain["total"] == general["total"]
            assert plain["position"] == general["position"] == 1


def test_find_by_message_id_header(box: Mailbox) -> None:
    """How the webmail finds a message it sent (a draft's Message-ID)."""
    assert box.query(filter={"header": ["Message-ID", "<plan@example.net>"]}) == ["plan"]
    assert box.query(filter={"header": ["Message-ID", "plan@example.net"]}) == ["plan"]
    assert box.query(filter={"header": ["Message-ID", "<nope@example.net>"]}) == []
