"""RFC 8620 §7.2 PushSubscription/get|set and §7.1 StateChange POSTs, against a real HTTP
receiver on loopback (``[jmap] push_allow_loopback`` on): verification, coalescing,
retries, destruction on 410 / repeated refusals / expiry, survival across a restart of
the dispatcher, and the URL rules."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hirondelle.config import JmapSettings, Settings
from hirondelle.jmap import push_sender
from hirondelle.jmap.push_sender import PushDispatcher, PushFailed, post_json, url_problem
from hirondelle.store import jmap_push
from hirondelle.store.database import now_us
from tests.jmap.conftest import JmapClient, JmapNode, message

CORE = ["urn:ietf:params:jmap:core"]
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """A push endpoint: records every POST; answers the statuses queued in ``answers``
    (201 once they are used up); while ``gate`` is clear, holds its answers."""

    def __init__(self) -> None:
        self.posts: queue.Queue[Post] = queue.Queue()
        self.answers: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                receiver.count += 1
                receiver.posts.put(
                    Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                receiver.gate.wait(10)
                status = receiver.answers.pop(0) if receiver.answers else 201
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/push/device-1?x=1"

    def next(self, timeout: float = 10.0) -> Post:
        return self.posts.get(timeout=timeout)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jmap_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"jmap": JmapSettings(push_allow_loopback=True)})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def dispatcher(node: JmapNode) -> Iterator[PushDispatcher]:
    """The node's dispatcher, started as node.py starts it (the test node starts only
    listeners)."""
    made = push_sender.dispatcher_of(node.services)
    node.run(made.start())
    try:
        yield made
    finally:
        node.run(made.stop())


def push_set(client: JmapClient, args: dict[str, Any]) -> dict[str, Any]:
    answer = client.request([["PushSubscription/set", args, "p"]], using=CORE)
    name, result, _ = answer["methodResponses"][0]
    assert name == "PushSubscription/set", result
    assert "accountId" not in result and "newState" not in result
    response: dict[str, Any] = result
    return response


def push_get(client: JmapClient, args: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = client.request([["PushSubscription/get", args or {"ids": None}, "g"]], using=CORE)
    name, result, _ = answer["methodResponses"][0]
    assert name == "PushSubscription/get", result
    response: dict[str, Any] = result
    return response


def subscribe(client: JmapClient, receiver: Receiver, *, verify: bool = True, **extra: Any) -> str:
    """Create a subscription to ``receiver``; with ``verify``, echo the code it gets."""
    created = push_set(
        client,
        {"create": {"s": {"deviceClientId": "phone-1", "url": receiver.url, **extra}}},
    )["created"]["s"]
    subscription_id: str = created["id"]
    post = receiver.next()
    assert post.body == {
        "@type": "PushVerification",
        "pushSubscriptionId": subscription_id,
        "verificationCode": post.body["verificationCode"],
    }
    assert post.path == "/push/device-1?x=1"
    if verify:
        updated = push_set(
            client,
            {"update": {subscription_id: {"verificationCode": post.body["verificationCode"]}}},
        )
        assert updated["updated"] == {subscription_id: None}
    return subscription_id


def flag_something(node: JmapNode, client: JmapClient) -> int:
    """A Mailbox change (a new mailbox); returns the account's new state."""
    result = client.call("Mailbox/set", {"create": {"m": {"name": f"Box {time.monotonic()}"}}})
    return int(result["newState"])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_verification_then_state_changes(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    subscription_id = subscribe(client, receiver, verify=False)
    listed = push_get(client)["list"]
    assert listed == [
        {
            "id": subscription_id,
            "deviceClientId": "phone-1",
            "verificationCode": None,
            "expires": listed[0]["expires"],
            "types": None,
        }
    ]
    # Not verified: this change is not pushed.
    flag_something(node, client)
    code = "wrong"
    refused = push_set(client, {"update": {subscription_id: {"verificationCode": code}}})
    assert refused["notUpdated"][subscription_id]["type"] == "invalidProperties"
    assert refused["notUpdated"][subscription_id]["properties"] == ["verificationCode"]
    # The real code: the one the endpoint received (read from the store here, since the
    # verification POST was consumed by subscribe()).
    number = int(subscription_id[1:])
    stored = node.run(
        node.services.database.read(
            lambda conn: jmap_push.get_subscription(conn, node.account.id, number)  # type: ignore[union-attr]
        )
    )
    assert stored is not None
    push_set(client, {"update": {subscription_id: {"verificationCode": stored.verification_code}}})
    assert push_get(client)["list"][0]["verificationCode"] == stored.verification_code
    state = flag_something(node, client)
    post = receiver.next()
    # The first POST after the verification is this change, not the earlier one.
    assert post.body["@type"] == "StateChange"
    changed = post.body["changed"][client.account_id]
    assert changed["Mailbox"] == str(state)
    assert "MailboxMessage" not in changed
    assert post.headers["content-type"].startswith("application/json")
    assert int(post.headers["ttl"]) > 0
    assert receiver.posts.empty()


def test_types_filter_and_email_changes(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    subscribe(client, receiver, types=["Email"])
    flag_something(node, client)  # a Mailbox change only: not pushed
    node.deliver(message("pushed"))
    post = receiver.next()
    assert list(post.body["changed"][client.account_id]) == ["Email"]


def test_changes_are_coalesced_while_a_post_is_in_flight(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    subscribe(client, receiver)
    receiver.gate.clear()  # the endpoint holds its answer
    first = flag_something(node, client)
    held = receiver.next()
    assert held.body["changed"][client.account_id]["Mailbox"] == str(first)
    states = [flag_something(node, client) for _ in range(5)]
    node.deliver(message("during"))
    receiver.gate.set()
    merged = receiver.next()
    changed = merged.body["changed"][client.account_id]
    assert set(changed) >= {"Mailbox", "Email", "Thread"}
    assert int(changed["Mailbox"]) > states[-1]
    wait_for(lambda: dispatcher.attempts >= 3)
    # Seven changes, three POSTs (verification, the held one, the merged one).
    assert receiver.count == 3


def test_retry_after_server_error(
    node: JmapNode,
    client: JmapClient,
    receiver: Receiver,
    dispatcher: PushDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push_sender, "FIRST_RETRY_SECONDS", 0.05)
    subscribe(client, receiver)
    receiver.answers = [503, 429]
    state = flag_something(node, client)
    posts = [receiver.next(), receiver.next(), receiver.next()]
    for post in posts:
        assert post.body["changed"][client.account_id]["Mailbox"] == str(state)
    # Accepted by the third: remembered in the store.
    number = int(push_get(client)["list"][0]["id"][1:])
    wait_for(
        lambda: (
            node.run(
                node.services.database.read(
                    lambda conn: jmap_push.get_subscription(conn, node.account.id, number)  # type: ignore[union-attr]
                )
            ).pushed_modseq  # type: ignore[union-attr]
            == state
        )
    )


def test_gone_endpoint_destroys_the_subscription(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    subscribe(client, receiver)
    receiver.answers = [410]
    flag_something(node, client)
    receiver.next()
    wait_for(lambda: push_get(client)["list"] == [])


def test_repeated_refusals_destroy_the_subscription(
    node: JmapNode,
    client: JmapClient,
    receiver: Receiver,
    dispatcher: PushDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push_sender, "FIRST_RETRY_SECONDS", 0.02)
    subscribe(client, receiver)
    receiver.answers = [400] * push_sender.MAX_REFUSALS
    flag_something(node, client)
    for _ in range(push_sender.MAX_REFUSALS):
        receiver.next()
    wait_for(lambda: push_get(client)["list"] == [])


def test_expired_subscription_is_destroyed(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    subscription_id = subscribe(client, receiver)
    number = int(subscription_id[1:])
    account_id = node.account.id  # type: ignore[union-attr]

    async def expire() -> None:
        updated = await node.services.database.write(
            lambda ctx: jmap_push.update_subscription(
                ctx, account_id, number, expires_at=now_us() - 1
            )
        )
        assert updated is not None
        dispatcher.updated(updated)

    node.run(expire())
    assert push_get(client)["list"] == []  # an expired one is not listed
    flag_something(node, client)
    wait_for(
        lambda: (
            node.run(
                node.services.database.read(
                    lambda conn: jmap_push.count_subscriptions(conn, account_id)
                )
            )
            == 0
        )
    )
    assert receiver.posts.empty()


def test_subscriptions_survive_a_restart(
    node: JmapNode, client: JmapClient, receiver: Receiver, dispatcher: PushDispatcher
) -> None:
    """A node that was down pushes at start what changed meanwhile."""
    subscribe(client, receiver)
    node.run(dispatcher.stop())
    state = flag_something(node, client)
    restarted = PushDispatcher(
        database=node.services.database, bus=node.services.bus, allow_loopback=True
    )
    node.run(restarted.start())
    try:
        post = receiver.next()
        assert post.body["changed"][client.account_id]["Mailbox"] == str(state)
        # And it goes on with new changes.
        later = flag_something(node, client)
        assert receiver.next().body["changed"][client.account_id]["Mailbox"] == str(later)
    finally:
        node.run(restarted.stop())


def test_create_rules(node: JmapNode, client: JmapClient, receiver: Receiver) -> None:
    def refused(properties: dict[str, Any]) -> dict[str, Any]:
        result = push_set(client, {"create": {"x": properties}})
        assert result["created"] is None, result
        error: dict[str, Any] = result["notCreated"]["x"]
        return error

    base = {"deviceClientId": "d", "url": receiver.url}
    error = refused({**base, "url": "http://push.example.com/x"})
    assert error["type"] == "invalidProperties" and error["properties"] == ["url"]
    assert refused({**base, "url": "ftp://127.0.0.1/x"})["properties"] == ["url"]
    assert refused({**base, "url": "not a url"})["properties"] == ["url"]
    error = refused({**base, "keys": {"p256dh": "AAAA", "auth": "BBBB"}})
    assert error["type"] == "invalidProperties" and error["properties"] == ["keys"]
    assert refused({**base, "verificationCode": "abc"})["properties"] == ["verificationCode"]
    assert refused({**base, "expires": "2001-01-01T00:00:00Z"})["properties"] == ["expires"]
    assert refused({**base, "expires": "tomorrow"})["properties"] == ["expires"]
    assert refused({**base, "types": "Email"})["properties"] == ["types"]
    assert refused({"url": receiver.url})["properties"] == ["deviceClientId"]
    # expires is clamped to the server's longest lifetime, and the kept value returned.
    created = push_set(client, {"create": {"y": {**base, "expires": "2099-01-01T00:00:00Z"}}})[
        "created"
    ]["y"]
    kept = time.mktime(time.strptime(created["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert kept <= time.time() + 7 * 24 * 3600 + 5
    assert kept > time.time() + 7 * 24 * 3600 - 60


def test_get_and_destroy(node: JmapNode, client: JmapClient, receiver: Receiver) -> None:
    created = push_set(
        client,
        {
            "create": {
                "a": {"deviceClientId": "a", "url": receiver.url, "types": ["Mailbox"]},
                "b": {"deviceClientId": "b", "url": receiver.url},
            }
        },
    )["created"]
    a, b = created["a"]["id"], created["b"]["id"]
    got = push_get(client, {"ids": [a, "S999999", "nonsense"], "properties": ["types"]})
    assert got["list"] == [{"id": a, "types": ["Mailbox"]}]
    assert got["notFound"] == ["S999999", "nonsense"]
    answer = client.request(
        [["PushSubscription/get", {"ids": None, "properties": ["url"]}, "g"]], using=CORE
    )
    assert answer["methodResponses"][0][0] == "error"
    assert answer["methodResponses"][0][1]["type"] == "forbidden"
    result = push_set(client, {"destroy": [a, "S999999"], "update": {b: {"url": "https://x/"}}})
    assert result["destroyed"] == [a]
    assert result["notDestroyed"]["S999999"]["type"] == "notFound"
    assert result["notUpdated"][b]["properties"] == ["url"]
    assert [s["id"] for s in push_get(client)["list"]] == [b]
    # Another account sees none of them and cannot destroy them.
    other = node.add_account("bob@example.test")
    bob = node.client(other, address="bob@example.test")
    assert push_get(bob)["list"] == []
    assert push_set(bob, {"destroy": [b]})["notDestroyed"][b]["type"] == "notFound"


def test_methods_need_no_account_and_core_only(client: JmapClient) -> None:
    answer = client.request([["PushSubscription/get", {"ids": None}, "g"]], using=CORE)
    assert answer["methodResponses"][0][0] == "PushSubscription/get"
    bad = client.request(
        [["PushSubscription/set", {"ifInState": "1", "create": {}}, "s"]], using=USING
    )
    assert bad["methodResponses"][0][1]["type"] == "invalidArguments"


def test_url_rules() -> None:
    assert url_problem("https://push.example.com/a?b=c", allow_loopback=False) is None
    assert url_problem("http://push.example.com/a", allow_loopback=False) is not None
    assert url_problem("http://127.0.0.1:8080/a", allow_loopback=False) is not None
    assert url_problem("http://127.0.0.1:8080/a", allow_loopback=True) is None
    assert url_problem("http://10.0.0.1/a", allow_loopback=True) is not None
    assert url_problem("https://user:pw@push.example.com/", allow_loopback=False) is not None
    assert url_problem("https://push.example.com/a b", allow_loopback=False) is not None
    assert url_problem("https://[::1/", allow_loopback=False) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/push",
        "https://192.168.0.1/push",
        "https://169.254.169.254/latest",
        "https://127.0.0.1/push",
        "https://[::1]/push",
        "https://[::ffff:10.0.0.1]/push",
    ],
)
def test_internal_addresses_are_never_contacted(url: str) -> None:
    """RFC 8620 §8.7: no request into the internal network (refused before connecting)."""
    with pytest.raises(PushFailed) as failed:
        asyncio.run(post_json(url, {"@type": "StateChange"}, allow_loopback=False))
    assert failed.value.permanent
    assert "public" in str(failed.value)


def test_sweep_destroys_expired_subscriptions(
    node: JmapNode,
    client: JmapClient,
    receiver: Receiver,
    dispatcher: PushDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Expired rows go even when no change comes to try them (the sweep)."""
    subscription_id = subscribe(client, receiver)
    number = int(subscription_id[1:])
    account_id = node.account.id  # type: ignore[union-attr]
    node.run(dispatcher.stop())
    monkeypatch.setattr(push_sender, "SWEEP_SECONDS", 0.05)
    restarted = PushDispatcher(
        database=node.services.database, bus=node.services.bus, allow_loopback=True
    )
    node.run(restarted.start())
    try:
        node.run(
            node.services.database.write(
                lambda ctx: jmap_push.update_subscription(
                    ctx, account_id, number, expires_at=now_us() - 1
                )
            )
        )
        wait_for(
            lambda: (
                node.run(
                    node.services.database.read(
                        lambda conn: jmap_push.count_subscriptions(conn, account_id)
                    )
                )
                == 0
            )
        )
    finally:
        node.run(restarted.stop())
    assert receiver.posts.empty()


def test_update_and_destroy_by_creation_id(client: JmapClient, receiver: Receiver) -> None:
    """RFC 8620 §5.3: "#creationId" names what the same request created (create runs
    before update and destroy)."""
    answer = client.request(
        [
            [
                "PushSubscription/set",
                {
                    "create": {"n": {"deviceClientId": "d", "url": receiver.url}},
                    "update": {"#n": {"types": ["Email"]}},
                },
                "a",
            ],
            ["PushSubscription/get", {"ids": ["#n"], "properties": ["types"]}, "b"],
            ["PushSubscription/set", {"destroy": ["#n"]}, "c"],
        ],
        using=CORE,
    )
    first, second, third = answer["methodResponses"]
    created_id = first[1]["created"]["n"]["id"]
    assert first[1]["updated"] == {created_id: None}
    assert second[1]["list"] == [{"id": created_id, "types": ["Email"]}]
    assert third[1]["destroyed"] == [created_id]
    assert push_get(client)["list"] == []
