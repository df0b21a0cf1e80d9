"""poplib, the standard library's POP3 client, against the real server: pop3s, and
pop3 with STLS; retrieve, list, top, uidl, delete."""

from __future__ import annotations

import asyncio
import poplib
from pathlib import Path

from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store import maildrop
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.pop3.conftest import ADDRESS, PASSWORD, client_tls, deliver, port


def pop3s(node: Node, cafile: Path) -> poplib.POP3_SSL:
    client = poplib.POP3_SSL(
        "localhost", port(node, "pop3s"), context=client_tls(cafile), timeout=10
    )
    client.user(ADDRESS)
    client.pass_(PASSWORD)
    return client


async def inbox_uids(services: Services, account: Account) -> list[int]:
    snap = await services.database.read(lambda c: maildrop.snapshot(c, account.id))
    assert snap is not None
    return [m.uid for m in snap.messages]


async def test_poplib_retrieves_messages_intact_over_pop3s(
    node: Node, services: Services, alice: Account, cafile: Path
) -> None:
    raws = [simple_message(subject=f"n{i}") for i in range(3)]
    for raw in raws:
        await deliver(services, alice, raw)

    def fetch() -> list[bytes]:
        client = pop3s(node, cafile)
        try:
            count, _size = client.stat()
            return [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]
        finally:
            client.quit()

    assert await asyncio.to_thread(fetch) == raws


async def test_poplib_deletes_at_quit_and_the_maildrop_is_then_empty(
    node: Node, services: Services, alice: Account, cafile: Path
) -> None:
    for i in range(2):
        await deliver(services, alice, simple_message(subject=f"d{i}"))

    def delete_all() -> None:
        client = pop3s(node, cafile)
        count, _ = client.stat()
        for n in range(1, count + 1):
            client.dele(n)
        client.quit()

    await asyncio.to_thread(delete_all)
    assert await inbox_uids(services, alice) == []


async def test_poplib_logs_in_after_stls_on_the_plain_port(
    node: Node, services: Services, alice: Account, cafile: Path
) -> None:
    raw = simple_message(subject="via STLS")
    await deliver(services, alice, raw)

    def fetch() -> bytes:
        client = poplib.POP3("localhost", port(node, "pop3"), timeout=10)
        try:
            assert "STLS" in client.capa()
            client.stls(context=client_tls(cafile))
            assert "USER" in client.capa()
            client.user(ADDRESS)
            client.pass_(PASSWORD)
            return b"\r\n".join(client.retr(1)[1]) + b"\r\n"
        finally:
            client.quit()

    assert await asyncio.to_thread(fetch) == raw
