"""PushSubscription across a real node restart (node.py starts and stops the push
dispatcher): a subscription made before the restart is still there after it, and the
change made while no node ran is pushed as soon as the node is back."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hirondelle.config import JmapSettings, ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.services import open_services
from tests.jmap.conftest import message
from tests.jmap.test_push_subscription import Receiver

ADDRESS = "alice@example.test"
PASSWORD = "correct horse battery"
CORE = ["urn:ietf:params:jmap:core"]


@pytest.fixture
def node_settings(settings: Settings) -> Settings:
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    return settings.model_copy(
        update={"listen": listen, "jmap": JmapSettings(push_allow_loopback=True)}
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


async def push_set(node: Node, args: dict[str, Any]) -> dict[str, Any]:
    listener = next(item for item in node.listeners if item.name == "http")
    token = base64.b64encode(f"{ADDRESS}:{PASSWORD}".encode()).decode()
    async with httpx.AsyncClient(
        base_url=f"http://{listener.address}", headers={"Authorization": f"Basic {token}"}
    ) as http:
        response = await http.post(
            "/jmap/api/",
            json={"using": CORE, "methodCalls": [["PushSubscription/set", args, "p"]]},
        )
    assert response.status_code == 200, response.text
    name, result, _ = response.json()["methodResponses"][0]
    assert name == "PushSubscription/set", result
    answer: dict[str, Any] = result
    return answer


async def test_a_restarted_node_pushes_what_changed_while_it_was_down(
    node_settings: Settings, receiver: Receiver
) -> None:
    first = Node(node_settings)
    await first.start()
    try:
        assert first.services is not None
        await first.services.accounts.add_domain("example.test")
        account = await first.services.accounts.add_account(ADDRESS, password=PASSWORD)
        created = await push_set(
            first, {"create": {"s": {"deviceClientId": "phone", "url": receiver.url}}}
        )
        subscription_id = created["created"]["s"]["id"]
        verification = await asyncio.to_thread(receiver.next)
        assert verification.body["pushSubscriptionId"] == subscription_id
        code = verification.body["verificationCode"]
        await push_set(first, {"update": {subscription_id: {"verificationCode": code}}})
    finally:
        await first.stop()
    # No node runs: mail arrives through the store directly (another node, say).
    services = open_services(node_settings)
    try:
        outcomes = await services.mail.deliver(message("while down"), [account.id])
        assert outcomes[0].stored is not None
    finally:
        services.close()
    assert receiver.posts.empty()
    second = Node(node_settings)
    await second.start()
    try:
        post = await asyncio.to_thread(receiver.next)
        changed = post.body["changed"][f"A{account.id}"]
        assert {"Email", "Mailbox", "EmailDelivery"} <= set(changed)
        assert changed["Email"] == str(outcomes[0].stored.modseq)
    finally:
        await second.stop()
