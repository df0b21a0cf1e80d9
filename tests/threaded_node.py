"""What the test servers of tests/imap and tests/jmap share: a node whose event loop runs on
a thread, so blocking clients (imaplib, mbsync, httpx, jmapc) are used straight from the
test, and store setup (accounts, mailboxes, deliveries) goes through the services on that
loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from hirondelle.services import Services
from hirondelle.store import mailboxes
from hirondelle.store.directory import Account

T = TypeVar("T")
PASSWORD = "correct horse battery"
ADDRESS = "alice@example.test"


class LoopThreadNode:
    """Store helpers for a test node; subclasses are dataclasses with these fields."""

    services: Services
    loop: asyncio.AbstractEventLoop
    account: Account | None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the node's loop and wait for it (at most a minute)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def add_account(self, address: str = ADDRESS, **kwargs: Any) -> Account:
        """An account with :data:`PASSWORD`, its domain added first when it is new."""

        async def create() -> Account:
            domain = address.split("@", 1)[1]
            known = [d.name for d, _ in await self.services.accounts.list_domains()]
            if domain not in known:
                await self.services.accounts.add_domain(domain)
            return await self.services.accounts.add_account(address, password=PASSWORD, **kwargs)

        return self.run(create())

    def mailbox(self, name: str, account: Account | None = None) -> mailboxes.Mailbox:
        owner = account or self.account
        assert owner is not None

        async def read() -> mailboxes.Mailbox | None:
            return await self.services.database.read(
                lambda conn: mailboxes.get_mailbox(conn, owner.id, name)
            )

        found = self.run(read())
        assert found is not None, name
        return found

    def deliver(self, raw: bytes, account: Account | None = None) -> None:
        """Deliver ``raw`` to the account through the mail service; it must be accepted."""
        owner = account or self.account
        assert owner is not None
        outcomes = self.run(self.services.mail.deliver(raw, [owner.id]))
        assert outcomes[0].refused is None
