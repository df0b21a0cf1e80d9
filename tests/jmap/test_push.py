"""RFC 8620 §7.3 push over EventSource, driven by the notification bus: a change made over
IMAP reaches the EventSource (and /changes) within a second, and IMAP IDLE sees a JMAP
change."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from hirondelle.jmap import api
from tests.jmap.conftest import JmapClient, JmapNode, basic, message

PASSWORD = "correct horse battery"


class Events:
    """An EventSource read on a thread: ``next()`` returns (event, data) or fails after
    ``timeout`` seconds. Streams ask for a ping every second so that the reader notices
    ``close()`` quickly (it only looks between lines)."""

    def __init__(
        self, client: JmapClient, query: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._client = client
        self._query = query
        self._headers = headers or {}
        # The id of the last event (HTML "last event ID"): what a browser would send as
        # Last-Event-ID when it reconnects; and the id each state event carried.
        self.last_id: str | None = None
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            # The test's client was closed under a stream it had stopped reading.
            if not self._stop.is_set():
                raise
        finally:
            self._queue.put(None)

    def _read(self) -> None:
        with self._client.http.stream(
            "GET", "/jmap/eventsource/?" + self._query, headers=self._headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event, data, event_id = "", "", None
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(":"):
                    self._queue.put(("comment", line))
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line == "":
                    if event_id is not None:
                        self.last_id = event_id
                    if event:
                        if event == "state":
                            assert event_id is not None, "a state event without an id"
                            self.ids.append(event_id)
                        self._queue.put((event, data))
                    event, data, event_id = "", "", None

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
def events(
    client: JmapClient, query: str, *, headers: dict[str, str] | None = None
) -> Iterator[Events]:
    stream = Events(client, query, headers=headers)
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


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def first_id(client: JmapClient) -> str:
    """The id an EventSource gets at once when it connects (its resumption point)."""
    with events(client, "types=*&closeafter=no&ping=1") as stream:
        wait_for(lambda: stream.last_id is not None)
        assert stream.last_id is not None
        return stream.last_id


def test_state_events_carry_the_state_as_id(node: JmapNode, client: JmapClient) -> None:
    with events(client, "types=*&closeafter=no&ping=1") as stream:
        state = client.call("Mailbox/set", {"create": {"a": {"name": "Identified"}}})["newState"]
        event = stream.next()
        assert event is not None and event[0] == "state"
        assert stream.ids == [state]
        assert event[1]["changed"][client.account_id]["Mailbox"] == state


def test_reconnect_with_last_event_id_gets_what_changed_meanwhile(
    node: JmapNode, client: JmapClient
) -> None:
    """HTML EventSource resumption: a client back with the id it last saw is told at once
    what changed while it was away (and only that)."""
    seen = first_id(client)
    state = client.call("Mailbox/set", {"create": {"a": {"name": "While away"}}})["newState"]
    assert int(state) > int(seen)
    with events(client, "types=*&closeafter=no&ping=1", headers={"Last-Event-ID": seen}) as stream:
        event = stream.next(timeout=2)
        assert event is not None
        name, data = event
        assert name == "state"
        changed = data["changed"][client.account_id]
        assert changed["Mailbox"] == state
        assert "Email" not in changed and "EmailDelivery" not in changed
        assert stream.ids == [state]
    # The types filter applies to what is replayed.
    with events(
        client, "types=Email&closeafter=no&ping=1", headers={"Last-Event-ID": seen}
    ) as stream:
        assert stream.next(timeout=3, pings=True) == ("ping", {"interval": 1})


def test_reconnect_with_the_current_id_replays_nothing(node: JmapNode, client: JmapClient) -> None:
    seen = first_id(client)
    with events(client, "types=*&closeafter=no&ping=1", headers={"Last-Event-ID": seen}) as stream:
        assert stream.next(timeout=3, pings=True) == ("ping", {"interval": 1})
        assert stream.last_id == seen


@pytest.mark.parametrize("last_id", ["not-a-state", "99999999", "-1"])
def test_reconnect_with_an_unknown_id_reports_every_type(
    node: JmapNode, client: JmapClient, last_id: str
) -> None:
    """An id the journal cannot place (never given, from the future, compacted away):
    every type may have changed, so every type is reported (the client resyncs)."""
    with events(
        client, "types=*&closeafter=state&ping=0", headers={"Last-Event-ID": last_id}
    ) as stream:
        event = stream.next()
        assert event is not None and event[0] == "state"
        changed = event[1]["changed"][client.account_id]
        assert {"Mailbox", "Email", "Thread", "EmailDelivery"} <= set(changed)
        assert "PushSubscription" not in changed
        assert stream.next() is None  # closeafter=state


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _pending_task_reports(node: JmapNode) -> list[str]:
    """Collect garbage in the server's loop and return what asyncio reported about
    tasks destroyed while pending."""
    collected = _Collected()
    logging.getLogger("asyncio").addHandler(collected)
    try:

        async def collect() -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()

        node.run(collect())
    finally:
        logging.getLogger("asyncio").removeHandler(collected)
    return [m for m in collected.messages if "destroyed but it is pending" in m]


def test_client_going_away_leaves_no_pending_task(node: JmapNode, client: JmapClient) -> None:
    """Regression: a client closing an EventSource while the stream waits (no ping)
    cancelled the stream and left its ``Subscription.wait()`` task pending forever
    ("Task was destroyed but it is pending" at the next garbage collection)."""
    assert node.account is not None
    account_id = node.account.id
    with socket.create_connection((node.host, node.http_port), timeout=10) as sock:
        sock.sendall(
            b"GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\n"
            + f"Host: {node.host}\r\nAuthorization: {basic()}\r\n\r\n".encode()
        )
        received = b""
        while b": subscribed" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        assert node.services.bus.subscriber_count(account_id) == 1
    # The server notices the disconnection and ends the stream (and its subscription).
    wait_for(lambda: node.services.bus.subscriber_count(account_id) == 0)
    assert _pending_task_reports(node) == []


def test_stopping_with_an_open_event_source_leaves_no_pending_task(
    node: JmapNode, client: JmapClient
) -> None:
    stream = Events(client, "types=*&closeafter=no&ping=0")
    assert stream.next() == ("comment", ": subscribed")
    http = next(listener for listener in node.listeners if listener.name == "http")
    node.run(http.stop())
    node.listeners.remove(http)
    assert stream.next(timeout=5) is None
    assert _pending_task_reports(node) == []


def test_email_delivery_is_pushed_for_delivered_mail(node: JmapNode, client: JmapClient) -> None:
    """RFC 8621 §1.5: EmailDelivery changes when mail is delivered..."""
    with events(client, "types=*&closeafter=no&ping=1") as stream:
        node.deliver(message("delivered"))
        event = stream.next()
        assert event is not None and event[0] == "state"
        changed = event[1]["changed"][client.account_id]
        assert {"Email", "EmailDelivery"} <= set(changed)
        assert changed["EmailDelivery"] == changed["Email"]
    with events(client, "types=EmailDelivery&closeafter=state&ping=0") as stream:
        node.deliver(message("again"))
        event = stream.next()
        assert event is not None
        assert list(event[1]["changed"][client.account_id]) == ["EmailDelivery"]


def test_email_delivery_is_not_pushed_for_other_changes(node: JmapNode, client: JmapClient) -> None:
    """...not when a flag changes, nor for mail filed by the user (IMAP APPEND)."""
    node.deliver(message("flag me"))
    with events(client, "types=*&closeafter=no&ping=1") as stream:
        imap_flag(node)
        event = stream.next()
        assert event is not None and event[0] == "state"
        assert "Email" in event[1]["changed"][client.account_id]
        assert "EmailDelivery" not in event[1]["changed"][client.account_id]
        imap = node.imap()
        imap.login("alice@example.test", PASSWORD)
        assert imap.append("INBOX", "", None, message("appended"))[0] == "OK"
        imap.logout()
        event = stream.next()
        assert event is not None and event[0] == "state"
        assert "Email" in event[1]["changed"][client.account_id]
        assert "EmailDelivery" not in event[1]["changed"][client.account_id]


def test_email_delivery_is_replayed_after_reconnection(node: JmapNode, client: JmapClient) -> None:
    """Last-Event-ID resumption finds deliveries in the journal too."""
    seen = first_id(client)
    node.deliver(message("while away"))
    with events(
        client, "types=EmailDelivery&closeafter=state&ping=0", headers={"Last-Event-ID": seen}
    ) as stream:
        event = stream.next()
        assert event is not None
        assert list(event[1]["changed"][client.account_id]) == ["EmailDelivery"]
