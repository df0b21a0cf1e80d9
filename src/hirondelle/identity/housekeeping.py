"""Identity work a node does on its own: sealing TOTP secrets stored before they were
encrypted (at start), pruning the audit log and the shared login limits (at start, then
daily) and syncing the accounts of the LDAP directory (every
``[ldap] sync_interval_seconds`` when ``[identity] source = "ldap"``).

Each node does it; the work is idempotent, so several nodes doing it is harmless.
A failure is logged and retried at the next turn, never fatal to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hirondelle.identity.ldap import DirectoryUnavailable, LdapDirectory, sync_accounts
from hirondelle.identity.second_factor import TOTP_PURPOSE
from hirondelle.identity.secret_box import SecretKeyError
from hirondelle.services import Services
from hirondelle.store import audit, login_limits
from hirondelle.store import second_factor_secrets as unsealed
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


async def seal_secrets(services: Services) -> int:
    """Seal the TOTP secrets (factors and enrolments) still stored as base32 (written
    before migration 0021); returns how many were sealed. Loads, or creates, the key
    file even when there is nothing to seal, so that a key file that cannot be read or
    written is reported at start, not at someone's sign-in.

    Each row is replaced only if it still holds what was read (another node may be
    doing the same); running it again finds nothing to do."""
    box = services.second_factors.secret_box
    await box.key()
    database = services.database
    factors = await database.read(unsealed.unsealed_totp_factors)
    enrolments = await database.read(unsealed.unsealed_totp_enrolments)
    sealed_factors = [
        (factor_id, old, await box.seal(old, purpose=TOTP_PURPOSE, owner=account_id))
        for factor_id, account_id, old in factors
    ]
    sealed_enrolments = [
        (account_id, old, await box.seal(old, purpose=TOTP_PURPOSE, owner=account_id))
        for account_id, old in enrolments
    ]
    if not sealed_factors and not sealed_enrolments:
        return 0

    def write(ctx: WriteContext) -> int:
        done = 0
        for factor_id, old, new in sealed_factors:
            done += unsealed.replace_totp_factor_secret(ctx, factor_id, old, new)
        for account_id, old, new in sealed_enrolments:
            done += unsealed.replace_totp_enrolment_secret(ctx, account_id, old, new)
        return done

    done = await database.write(write)
    log.info("sealed %d TOTP secrets stored in clear (key file %s)", done, box.key_path)
    return done


async def run(services: Services, *, prune_interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    """Until cancelled: seal the secrets still in clear (once), prune every
    ``prune_interval`` seconds (the first time at once), sync the directory every
    ``[ldap] sync_interval_seconds`` (the first time at once)."""
    directory = services.authenticator.directory
    sync_interval = float(services.settings.ldap.sync_interval_seconds)
    syncing = isinstance(directory, LdapDirectory) and sync_interval > 0
    try:
        await seal_secrets(services)
    except SecretKeyError as error:
        log.error("TOTP secrets cannot be sealed or read: %s", error)
    except Exception:
        log.exception("sealing the TOTP secrets stored in clear failed; retried at next start")
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
