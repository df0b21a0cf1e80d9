"""Identity work a node does on its own: pruning the audit log and the shared login
limits (at start, then daily) and syncing the accounts of the LDAP directory (every
``[ldap] sync_interval_seconds`` when ``[identity] source = "ldap"``).

Each node does it; the work is idempotent, so several nodes doing it is harmless.
A failure is logged and retried at the next turn, never fatal to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hirondelle.identity.ldap import DirectoryUnavailable, LdapDirectory, sync_accounts
from hirondelle.services import Services
from hirondelle.store import audit, login_limits
from hirondelle.store.database import WriteContext, now_us

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 86400.0


async def prune(services: Services) -> int:
    """Drop audit rows older than ``[identity] audit_retention_days`` and rate-limit
    rows that no longer matter; returns how many audit rows went."""
    authenticator = services.authenticator
    now = now_us()
    before = now - services.settings.identity.audit_retention_days * 86_400_000_000
    shared = authenticator.shared_limits

    def write(ctx: WriteContext) -> int:
        removed = audit.prune(ctx, before=before)
        login_limits.prune(ctx, now, shared)
        return removed

    removed = await services.database.write(write)
    if removed:
        log.info(
            "audit log: %d rows older than %d days removed",
            removed,
            services.settings.identity.audit_retention_days,
        )
    return removed


async def run(services: Services, *, prune_interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    """Until cancelled: prune every ``prune_interval`` seconds (the first time at once),
    sync the directory every ``[ldap] sync_interval_seconds`` (the first time at once)."""
    directory = services.authenticator.directory
    sync_interval = float(services.settings.ldap.sync_interval_seconds)
    syncing = isinstance(directory, LdapDirectory) and sync_interval > 0
    next_prune = next_sync = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_prune:
            next_prune = now + prune_interval
            try:
                await prune(services)
            except Exception:
                log.exception("pruning the audit log failed; retried in %.0f s", prune_interval)
        if syncing and now >= next_sync:
            assert isinstance(directory, LdapDirectory)
            next_sync = now + sync_interval
            try:
                await sync_accounts(services.database, directory)
            except DirectoryUnavailable as error:
                log.warning("LDAP sync skipped, nothing changed: %s", error)
            except Exception:
                log.exception("LDAP sync failed; retried in %.0f s", sync_interval)
        wake = min(next_prune, next_sync) if syncing else next_prune
        await asyncio.sleep(max(0.0, wake - time.monotonic()))
