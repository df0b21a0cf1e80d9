"""RFC 8620 §7.3 push over EventSource, driven by the notification bus: a change made over
IMAP reaches the EventSource (and /changes) within a second, and IMAP IDLE sees a JMAP
change."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hirondelle.jmap import api
from tests.jmap.conftest import JmapClient, JmapNode, message

PASSWORD = "correct horse battery"


class Events:
    """An EventSource read on a thread: ``next()`` returns (event, data) or fails after
    ``timeout`` seconds. Streams ask for a ping every second so that the reader notices
    ``close()`` quickly (it only looks between lines)."""

    def __init__(self, client: JmapClient, query: str) -> None:
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._client = client
        self._query = query
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._client.http.stream("GET", "/jmap/eventsource/?" + self._query) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event, data = "", ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(":"):
                    self._queue.put(("comment", line))
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and event:
                    self._queue.put((event, data))
                    event, data = "", ""
        self._queue.put(None)

    def next(self, timeout: float = 5.0, *, pings: bool = False) -> tuple[str, Any] | None:
        """The next event (pings skipped unless asked for)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            if item is None:
                return None
            event, data = item
            if event == "ping" and not pings:
                continue
            return event, (json.loads(data) if event != "comment" else data)

    def close(self) -> None:
        self._stop.set()


@contextmanager
def events(client: JmapClient, query: str) -> Iterator[Events]:
    stream = Events(client, query)
    try:
        assert stream.next() == ("comment", ": subscribed")
        yield stream
    finally:
        stream.close()


def imap_flag(node: JmapNode, flag: str = "\\Seen") -> None:
    imap = node.imap()
    imap.login("alice@example.test", PASSWORD)
    imap.select("INBOX")
    assert imap.uid("STORE", "1", "+FLAGS", f"({flag})")[0] == "OK"
    imap.logout()


def test_imap_change_reaches_event_source_and_changes(node: JmapNode, client: JmapClient) -> None:
    node.deliver(message("watched"))
    state = client.call("Mailbox/get", {"ids": []})["state"]
    with events(client, "types=*&closeafter=no&ping=1") as stream:
        started = time.monotonic()
        imap_flag(node)
        event = stream.next(timeout=1.0)
        elapsed = time.monotonic() - started
        assert event is not None
        name, data = event
        assert name == "state"
        assert elapsed < 1.0
        assert data["@type"] == "StateChange"
        changed = data["changed"][client.account_id]
        assert "Email" in changed and "Mailbox" in changed
        assert "MailboxMessage" not in changed
        assert int(changed["Email"]) > int(state)
    changes = client.call("Mailbox/changes", {"sinceState": state})
    assert client.mailbox_ids()["inbox"] in changes["updated"]
    assert changes["newState"] == changed["Mailbox"]


def test_close_after_state(node: JmapNode, client: JmapClient) -> None:
    with events(client, "types=Mailbox&closeafter=state&ping=1") as stream:
        client.call("Mailbox/set", {"create": {"a": {"name": "Pushed"}}})
        event = stream.next()
        assert event is not None and event[0] == "state"
        assert list(event[1]["changed"][client.account_id]) == ["Mailbox"]
        assert stream.next() is None  # the server closed the stream


def test_types_filter_and_ping(node: JmapNode, client: JmapClient) -> None:
    with events(client, "types=EmailSubmission&closeafter=no&ping=1") as stream:
        client.call("Mailbox/set", {"create": {"a": {"name": "Not pushed"}}})
        started = time.monotonic()
        event = stream.next(timeout=3.0, pings=True)
        assert event == ("ping", {"interval": 1})
        assert time.monotonic() - started < 2.0


def test_event_source_arguments(client: JmapClient) -> None:
    for query in ("types=*&closeafter=maybe&ping=0", "types=*&closeafter=no&ping=-1"):
        response = client.http.get("/jmap/eventsource/?" + query)
        assert response.status_code == 400, query
        assert response.headers["content-type"].startswith("application/problem+json")


def test_imap_idle_sees_a_jmap_change(node: JmapNode, client: JmapClient) -> None:
    """The reverse direction needs a JMAP method that changes messages (Email/set, from
    jmap-mail); the test runs as soon as it is registered."""
    client.call("Core/echo", {}, account=False)
    if not {"Email/set", "Email/query"} <= set(api.METHODS):
        pytest.skip("Email/set and Email/query are not registered yet (jmap-mail)")
    node.deliver(message("idle"))
    email_id = client.call("Email/query", {"filter": {"inMailbox": client.mailbox_ids()["inbox"]}})[
        "ids"
    ][0]
    imap = node.imap()
    imap.login("alice@example.test", PASSWORD)
    imap.select("INBOX")
    tag = imap._new_tag().decode()  # type: ignore[attr-defined]
    imap.send(f"{tag} IDLE\r\n".encode())
    assert imap.readline().startswith(b"+")
    started = time.monotonic()
    client.call("Email/set", {"update": {email_id: {"keywords/$flagged": True}}})
    line = imap.readline()
    assert time.monotonic() - started < 1.0
    assert b"FETCH" in line and b"\\Flagged" in line
    imap.send(b"DONE\r\n")
    imap.readline()
    imap.logout()


def test_stopping_the_node_ends_open_event_sources(node: JmapNode, client: JmapClient) -> None:
    """An EventSource without pings never ends by itself; stopping the node must not wait
    for its client."""
    from hirondelle.node import HTTP_SHUTDOWN_GRACE_SECONDS

    stream = Events(client, "types=*&closeafter=no&ping=0")
    assert stream.next() == ("comment", ": subscribed")
    http = next(listener for listener in node.listeners if listener.name == "http")
    started = time.monotonic()
    node.run(http.stop())
    node.listeners.remove(http)
    # Ended cleanly by the stream itself, well before the grace period would cancel it.
    assert time.monotonic() - started < HTTP_SHUTDOWN_GRACE_SECONDS - 2
    assert stream.next(timeout=5) is None  # the client saw the end of the stream
