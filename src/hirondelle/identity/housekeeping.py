"""Identity work a node does on its own: sealing TOTP secrets stored in clear before
they were encrypted, or under a previous key (at start), pruning the audit log and the
shared login limits (at start, then daily) and syncing the accounts of the LDAP
directory (every ``[ldap] sync_interval_seconds`` when ``[identity] source = "ldap"``).

Each node does it; the work is idempotent, so several nodes doing it is harmless.
A failure is logged and retried at the next turn, never fatal to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hirondelle.identity.ldap import DirectoryUnavailable, LdapDirectory, sync_accounts
from hirondelle.identity.second_factor import TOTP_PURPOSE
from hirondelle.identity.secret_box import SealedSecretError, SecretKeyError
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
    """Seal under the current key the TOTP secrets (factors and enrolments) that are not:
    stored in clear (written before migration 0021) or sealed under the previous key (a
    rotation); returns how many. Loads, or creates, the key file even when there is
    nothing to do, so that a key file that cannot be read or written is reported at
    start, not at someone's sign-in. A value that does not open is left as it is (and
    logged): deleting it is the user's choice, through a recovery code.

    Each row is replaced only if it still holds what was read (another node may be
    doing the same); running it again finds nothing to do."""
    box = services.second_factors.secret_box
    current = await box.current_prefix()
    database = services.database
    factors = await database.read(lambda conn: unsealed.unsealed_totp_factors(conn, current))
    enrolments = await database.read(lambda conn: unsealed.unsealed_totp_enrolments(conn, current))

    async def again(stored: str, account_id: int) -> str | None:
        try:
            secret = await box.open(stored, purpose=TOTP_PURPOSE, owner=account_id)
        except SealedSecretError as error:
            log.error("the TOTP secret of account %d cannot be read: %s", account_id, error)
            return None
        return await box.seal(secret, purpose=TOTP_PURPOSE, owner=account_id)

    sealed_factors = [
        (factor_id, old, new)
        for factor_id, account_id, old in factors
        if (new := await again(old, account_id)) is not None
    ]
    sealed_enrolments = [
        (account_id, old, new)
        for account_id, old in enrolments
        if (new := await again(old, account_id)) is not None
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
    log.info("sealed %d TOTP secrets under the key of %s", done, box.key_path)
    return done


async def run(services: Services, *, prune_interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    """Until cancelled: seal the secrets still in clear (once), prune every
    ``prune_interval`` seconds (the first time at once), sync the directory every
    ``[ldap] sync_interval_seconds`` (the first time at once)."""
    directory = services.authenticator.directory
    sync_interval = float(services.settings.ldap.sync_interval_seconds)
    syncing = isinstance(directory, LdapDirectory) and sync_interval > 0
    sealed = False
    next_prune = next_sync = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_prune:
            next_prune = now + prune_interval
            try:
                await prune(services)
            except Exception:
                log.exception("pruning the audit log failed; retried in %.0f s", prune_interval)
        if not sealed:
            # Once, after the first pruning turn (which stays immediate).
            sealed = True
            try:
                await seal_secrets(services)
            except SecretKeyError as error:
                log.error("TOTP secrets cannot be sealed or read: %s", error)
            except Exception:
                log.exception("sealing the TOTP secrets failed; retried at the next start")
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
