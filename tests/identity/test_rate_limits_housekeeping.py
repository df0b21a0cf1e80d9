"""What a node prunes on its own: the audit log after `audit_retention_days` and the
shared login limits, at start and then on a timer; and the periodic LDAP sync."""

from __future__ import annotations

import asyncio

from hirondelle.config import IdentitySettings, ListenSettings, Settings
from hirondelle.identity import housekeeping
from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store import audit, login_limits
from hirondelle.store.database import now_us
from tests.identity.conftest import ALICE

DAY_US = 86_400_000_000


def entry(at: int) -> audit.AuditEntry:
    return audit.AuditEntry(at, "imap", "192.0.2.1", "", ALICE, None, "failed", "bad-password")


async def audit_times(services: Services) -> list[int]:
    rows = await services.database.read(lambda conn: audit.query(conn, address=ALICE))
    return sorted(row.at for row in rows)


async def test_node_prunes_the_audit_log_at_start(identity_settings: Settings) -> None:
    settings = identity_settings.model_copy(
        update={
            "identity": IdentitySettings.model_validate(
                {**identity_settings.identity.model_dump(), "audit_retention_days": 30}
            ),
            "listen": ListenSettings(),
        }
    )
    node = Node(settings)
    await node.start()
    services = node.services
    assert services is not None
    now = now_us()
    kept = now - 29 * DAY_US
    await services.database.write(lambda ctx: audit.record(ctx, entry(now - 31 * DAY_US)))
    await services.database.write(lambda ctx: audit.record(ctx, entry(kept)))
    await node.stop()

    node = Node(settings)  # a restart prunes
    await node.start()
    try:
        assert node.services is not None
        assert await audit_times(node.services) == [kept]
    finally:
        await node.stop()


async def test_the_timer_prunes_again(services: Services) -> None:
    shared = services.authenticator.shared_limits
    task = asyncio.create_task(housekeeping.run(services, prune_interval=0.2))
    try:
        await asyncio.sleep(0.1)  # the first turn ran on an empty store
        old = now_us() - 91 * DAY_US
        await services.database.write(lambda ctx: audit.record(ctx, entry(old)))
        await services.database.write(
            lambda ctx: login_limits.record_failure(ctx, ALICE, "192.0.2.1", old, shared)
        )
        for _ in range(50):
            await asyncio.sleep(0.1)
            if not await audit_times(services):
                break
        assert await audit_times(services) == []
        # The shared failures went in the same turn.
        removed = await services.database.write(
            lambda ctx: login_limits.prune(ctx, now_us(), shared)
        )
        assert removed == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
