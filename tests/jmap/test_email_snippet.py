"""SearchSnippet/get over HTTP (RFC 8621 §5): highlighted, HTML-escaped subject and body
fragment for the terms of a filter."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from hirondelle.jmap import snippet
from hirondelle.store.search import fold
from tests.jmap.conftest import JmapClient, JmapNode

MESSAGE = (
    "From: Bob <bob@example.net>\r\n"
    "To: alice@example.test\r\n"
    "Subject: Budget <draft> for Genève\r\n"
    "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello Alice, here is a long introduction that says nothing at all. "
    "The budgets for the trip to Genève & Lausanne are <attached>.\r\n"
).encode()


def email_id(node: JmapNode, client: JmapClient) -> str:
    node.deliver(MESSAGE)
    [found] = client.call("Email/query", {})["ids"]
    return str(found)


def test_snippets_highlight_and_escape(node: JmapNode, client: JmapClient) -> None:
    found = email_id(node, client)
    result = client.call(
        "SearchSnippet/get", {"filter": {"text": "budget geneve"}, "emailIds": [found, "E999999"]}
    )
    [snippet] = result["list"]
    assert result["notFound"] == ["E999999"]
    assert snippet["emailId"] == found
    assert snippet["subject"] == "<mark>Budget</mark> &lt;draft&gt; for <mark>Genève</mark>"
    preview = snippet["preview"]
    assert "<mark>budgets</mark>" in preview
    assert "<mark>Genève</mark> &amp; Lausanne are &lt;attached&gt;." in preview
    assert len(preview) < 400


def test_no_terms_no_highlight(node: JmapNode, client: JmapClient) -> None:
    found = email_id(node, client)
    [snippet] = client.call(
        "SearchSnippet/get", {"filter": {"after": "2000-01-01T00:00:00Z"}, "emailIds": [found]}
    )["list"]
    assert snippet == {"emailId": found, "subject": None, "preview": None}
    [negated] = client.call(
        "SearchSnippet/get",
        {"filter": {"operator": "NOT", "conditions": [{"text": "budget"}]}, "emailIds": [found]},
    )["list"]
    assert negated["subject"] is None


def test_snippet_errors(node: JmapNode, client: JmapClient) -> None:
    client.error("SearchSnippet/get", {"filter": {"bogus": 1}, "emailIds": []}, "unsupportedFilter")
    client.error("SearchSnippet/get", {"filter": None}, "invalidArguments")


@given(st.text(max_size=120), st.lists(st.text(min_size=1, max_size=6), max_size=3))
def test_highlight_only_adds_marks(text: str, raw_terms: list[str]) -> None:
    terms = [fold(t) for t in raw_terms if fold(t)]
    marked, matched = snippet.highlight(text, terms)
    assert "<" not in marked.replace("<mark>", "").replace("</mark>", "")
    assert html.unescape(marked.replace("<mark>", "").replace("</mark>", "")) == text
    assert matched == ("<mark>" in marked)
    piece = snippet.fragment(text, terms)
    if piece is not None:
        assert matched and "<mark>" in piece
