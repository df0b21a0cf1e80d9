"""Email/query's first page with collapseThreads read in keyset pages (store
jmap_emails.first_by_received): a thread longer than a page, and receivedAt ties across
a page boundary, give the same answer as collapsing the full sorted list by hand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jmap.conftest import JmapClient, JmapNode, message

RECEIVED = "2026-03-01T08:00:00Z"


def upload(client: JmapClient, raw: bytes) -> str:
    response = client.http.post(
        f"/jmap/upload/{client.account_id}/",
        content=raw,
        headers={"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 201, response.text
    blob_id: str = response.json()["blobId"]
    return blob_id


def import_copies(client: JmapClient, blob_id: str, count: int, prefix: str) -> None:
    inbox = client.mailbox_ids()["inbox"]
    emails = {
        f"{prefix}{n}": {"blobId": blob_id, "mailboxIds": {inbox: True}, "receivedAt": RECEIVED}
        for n in range(count)
    }
    result = client.call("Email/import", {"emails": emails})
    assert result["notCreated"] is None, result["notCreated"]
    assert len(result["created"]) == count


def query(client: JmapClient, *, ascending: bool, collapse: bool, limit: int) -> list[str]:
    inbox = client.mailbox_ids()["inbox"]
    result = client.call(
        "Email/query",
        {
            "filter": {"inMailbox": inbox},
            "sort": [{"property": "receivedAt", "isAscending": ascending}],
            "collapseThreads": collapse,
            "limit": limit,
        },
    )
    found: list[str] = result["ids"]
    return found


def threads_of(client: JmapClient, email_ids: list[str]) -> dict[str, str]:
    listed: list[dict[str, Any]] = client.call(
        "Email/get", {"ids": email_ids, "properties": ["threadId"]}
    )["list"]
    return {e["id"]: e["threadId"] for e in listed}


@pytest.mark.parametrize("ascending", [False, True])
def test_collapsed_first_page_across_page_boundaries(
    node: JmapNode, client: JmapClient, ascending: bool
) -> None:
    # Five one-message threads, then one thread of 230 copies (the same Message-ID joins
    # one thread), every email received at the same instant: the order is by id alone
    # and the long thread fills the first two pages (100, then 200 rows) of the read.
    for n in range(5):
        import_copies(client, upload(client, message(f"single {n}", message_id=f"s{n}@x")), 1, "s")
    import_copies(client, upload(client, message("long", message_id="long@x")), 230, "l")
    everything = query(client, ascending=ascending, collapse=False, limit=1000)
    assert len(everything) == 235
    thread = threads_of(client, everything)
    expected: list[str] = []
    seen: set[str] = set()
    for email_id in everything:
        if thread[email_id] not in seen:
            seen.add(thread[email_id])
            expected.append(email_id)
    assert len(expected) == 6
    for limit in (1, 2, 6, 50):
        assert query(client, ascending=ascending, collapse=True, limit=limit) == expected[:limit]
