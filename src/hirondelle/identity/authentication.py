"""The one gate every login goes through, on every protocol.

DESIGN.md "Identity and security": IMAP, POP3, SMTP submission, DAV, JMAP and the web
all call :meth:`Authenticator.authenticate`. It checks, in order, the rate limits
(:mod:`hirondelle.identity.rate_limits`; a refused attempt costs no argon2 work), the
secret (the account's password, or one of its app passwords), the account (exists, not
disabled), the second-factor rule and the account's switch for the protocol, and writes
one audit row per attempt (time, protocol, remote address, client id, outcome, reason).

What the client learns is deliberately less than what the audit log records: a wrong
password, an unknown address and a disabled account all look the same
(``Outcome.FAILED``); that a protocol is switched off, or that an app password is
needed, is said only to someone who proved the password, so it reveals nothing to a
guesser. Rate limits apply to unknown addresses exactly as to real ones.

Successful checks are remembered for a few minutes
(:mod:`hirondelle.identity.verification_cache`) because DAV and JMAP clients send their
credentials with every request; argon2 itself runs on a worker pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.engine import Connection

from hirondelle.config import IdentitySettings
from hirondelle.errors import Refused
from hirondelle.identity.app_passwords import hint as app_password_hint
from hirondelle.identity.app_passwords import looks_like_app_password
from hirondelle.identity.ldap import DirectoryUnavailable, LdapDirectory, provision
from hirondelle.identity.passwords import verify_password
from hirondelle.identity.rate_limits import (
    KNOWN_GOOD_SECONDS,
    STRIKE_MEMORY_SECONDS,
    InProcessRateLimiter,
    Limits,
    RateLimiter,
)
from hirondelle.identity.verification_cache import VerificationCache
from hirondelle.mail.addresses import normalize_address
from hirondelle.store import audit, credentials, directory, login_limits
from hirondelle.store.credentials import AppPassword
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.directory import Account

log = logging.getLogger(__name__)

# Which account switch each protocol obeys (JMAP is the webmail's API: the web switch).
PROTOCOL_SWITCH = {
    "imap": "imap",
    "pop3": "pop3",
    "smtp": "smtp",
    "dav": "dav",
    "jmap": "web",
    "web": "web",
}
# Where an account with a second factor must use an app password: clients that cannot
# ask for the second factor. JMAP is one of them (HTTP Basic); the webmail signs in with
# protocol "web" and reaches JMAP with its session cookie.
APP_PASSWORD_ONLY = frozenset({"imap", "pop3", "smtp", "dav", "jmap"})
# Reasons that count as a guess for the rate limits.
GUESS_REASONS = frozenset(
    {"unknown-account", "bad-password", "account-disabled", "app-password-protocol"}
)
# The audit log is pruned at most this often, by the login that finds it due.
PRUNE_INTERVAL_SECONDS = 3600.0
# An app password's last use is written again only after this long (or from elsewhere).
LAST_USE_GRANULARITY_US = 60_000_000
# When the LDAP directory does not answer, clients are told to come back after this long
# (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0, HTTP 503: all temporary).
DIRECTORY_RETRY_SECONDS = 30


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"  # what the client is told for any wrong credential
    PROTOCOL_DISABLED = "protocol-disabled"
    RATE_LIMITED = "rate-limited"  # try again after AuthResult.retry_after seconds
    # The account directory (LDAP) does not answer: nobody's fault, try again after
    # AuthResult.retry_after seconds. Not told as "too many failed logins".
    UNAVAILABLE = "unavailable"
    APP_PASSWORD_REQUIRED = "app-password-required"  # right password, second factor on
    # Web sign-in only: right password, the second factor still owed. Not a success: it
    # neither clears the failure counts nor makes the address a known-good one, which
    # would let someone holding only the password lock nobody out but themselves.
    SECOND_FACTOR_REQUIRED = "second-factor-required"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: Outcome
    account: Account | None = None
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@dataclass(frozen=True, slots=True)
class _Found:
    account: Account | None
    second_factor: bool
    app_passwords: tuple[AppPassword, ...]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _for_log(text: str) -> str:
    """What a client sent, safe to store and show: control characters (NUL included,
    which PostgreSQL text refuses) become "?"."""
    return "".join(c if c.isprintable() else "?" for c in text)


def limits_of(settings: IdentitySettings) -> Limits:
    return Limits(
        account_failures=settings.account_failures,
        address_failures=settings.address_failures,
        window_seconds=float(settings.failure_window_seconds),
        lockout_seconds=float(settings.lockout_seconds),
        max_lockout_seconds=float(settings.max_lockout_seconds),
    )


class Authenticator:
    def __init__(
        self,
        database: Database,
        settings: IdentitySettings | None = None,
        *,
        limiter: RateLimiter | None = None,
        directory: LdapDirectory | None = None,
    ) -> None:
        self.database = database
        # With [identity] source = "ldap": main passwords are checked by the directory.
        self.directory = directory
        self.settings = settings if settings is not None else IdentitySettings()
        self.limiter = limiter or InProcessRateLimiter(limits_of(self.settings))
        self.shared_limits = login_limits.SharedLimits(
            account_failures=self.settings.account_failures,
            address_failures=self.settings.address_failures,
            window_us=self.settings.failure_window_seconds * 1_000_000,
            lockout_us=self.settings.lockout_seconds * 1_000_000,
            max_lockout_us=self.settings.max_lockout_seconds * 1_000_000,
            strike_memory_us=int(STRIKE_MEMORY_SECONDS * 1_000_000),
        )
        self.cache = VerificationCache(float(self.settings.verification_cache_seconds))
        self._next_prune = 0.0
        self._decision: asyncio.Event | None = None

    async def _attempt_decided(self) -> None:
        """Wait until some attempt in flight is decided (or a second has passed)."""
        if self._decision is None:
            self._decision = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._decision.wait(), 1.0)

    def _decided(self) -> None:
        if self._decision is not None:
            self._decision.set()
            self._decision = None

    async def authenticate(
        self,
        address: str,
        secret: str,
        *,
        protocol: str,
        remote: str = "",
        client_id: str = "",
    ) -> AuthResult:
        switch = PROTOCOL_SWITCH.get(protocol)
        if switch is None:
            raise ValueError(f"unknown protocol {protocol!r}")
        # Text that is not valid Unicode (lone surrogates) can be neither stored nor
        # hashed: such an address names no account, such a secret matches nothing.
        # Control characters (NUL included, which PostgreSQL text refuses) are never
        # part of an address (RFC 5321 §4.1.2).
        address_ok, secret_ok = _encodable(address), _encodable(secret)
        if not address_ok:
            address = address.encode("utf-8", "replace").decode("utf-8")
        address_ok = address_ok and address.strip().isprintable()
        typed = address.strip().lower()[:320]
        try:
            normalized: str | None = normalize_address(address) if address_ok else None
        except Refused:
            normalized = None
        key = normalized or typed

        while True:
            # Lockouts decided by other nodes first, not between the saturation check
            # and begin(): an await there would let parallel guesses all pass together.
            await self._adopt_shared_lockouts(key, remote)
            wait = self.limiter.retry_after(key, remote)
            if wait > 0 and normalized is not None and remote:
                wait = await self._unless_known_good(normalized, remote, wait)
            if wait > 0:
                result = AuthResult(Outcome.RATE_LIMITED, retry_after=max(1, math.ceil(wait)))
                await self._audit(key, None, protocol, remote, client_id, result, "rate-limited")
                return result
            if not self.limiter.saturated(key, remote):
                break
            # Attempts in flight could use up what may still fail: wait until one is
            # decided, then look again (it may have locked the account, or freed room).
            await self._attempt_decided()

        self.limiter.begin(key, remote)
        try:
            found = await self._find(normalized, secret)
            refusal = ""
            if secret_ok and self.directory is not None and normalized is not None:
                found, verified, app_password, refusal = await self._verify_in_directory(
                    self.directory, found, normalized, secret
                )
            elif secret_ok:
                verified, app_password = await self._verify(found, secret)
            else:
                await verify_password(None, "")  # the same work as a wrong password
                verified, app_password = False, None
        except BaseException:
            self.limiter.end(key, remote)
            self._decided()
            raise
        account = found.account
        if refusal == "directory-unavailable":
            result = AuthResult(Outcome.UNAVAILABLE, retry_after=DIRECTORY_RETRY_SECONDS)
            reason = refusal
        elif refusal:
            result, reason = AuthResult(Outcome.FAILED), refusal
        elif account is None:
            result, reason = AuthResult(Outcome.FAILED), "unknown-account"
        elif not verified:
            result, reason = AuthResult(Outcome.FAILED), "bad-password"
        elif account.disabled:
            result, reason = AuthResult(Outcome.FAILED), "account-disabled"
        elif app_password is not None and protocol not in app_password.protocols:
            result, reason = AuthResult(Outcome.FAILED), "app-password-protocol"
        elif app_password is None and found.second_factor and protocol in APP_PASSWORD_ONLY:
            result, reason = AuthResult(Outcome.APP_PASSWORD_REQUIRED), "app-password-required"
        elif not account.allows(switch):
            result, reason = AuthResult(Outcome.PROTOCOL_DISABLED), f"{switch}-disabled"
        elif app_password is None and found.second_factor:
            result = AuthResult(Outcome.SECOND_FACTOR_REQUIRED, account)
            reason = "second-factor-pending"
        else:
            result, reason = AuthResult(Outcome.SUCCESS, account), ""
            if app_password is not None:
                reason = f"app-password {app_password.id}"

        self.limiter.end(key, remote)
        self._decided()
        if reason in GUESS_REASONS:
            if self.limiter.record_failure(key, remote) and account is not None:
                self.cache.forget_account(account.id)
        elif result.ok:
            self.limiter.record_success(key, remote)
        used = app_password if result.ok else None
        await self._audit(
            key, account.id if account else None, protocol, remote, client_id, result, reason, used
        )
        return result

    async def second_factor_passed(self, account: Account, remote: str) -> None:
        """The web sign-in's second step succeeded: only now is the login a success for
        the rate limits (counts cleared, the address known-good for this account). The
        caller writes the audit row of that step."""
        self.limiter.record_success(account.address, remote)
        address = account.address
        await self.database.write(lambda ctx: login_limits.record_success(ctx, address))

    async def _adopt_shared_lockouts(self, key: str, remote: str) -> bool:
        """Apply the lockouts in force in the store (decided by any node) to this node's
        limiter; True when that changed anything."""
        now = now_us()
        lockouts = await self.database.read(
            lambda conn: login_limits.locked_until(conn, key, remote, now)
        )
        return self._impose(lockouts, key, remote, now)

    def _impose(self, lockouts: dict[str, int], key: str, remote: str, now: int) -> bool:
        changed = False
        for scope, until in lockouts.items():
            target = key if scope == login_limits.ACCOUNT else remote
            changed |= self.limiter.impose(scope, target, (until - now) / 1_000_000)
        return changed

    async def _unless_known_good(self, address: str, remote: str, wait: float) -> float:
        """The account is locked out, perhaps not for this address: one it logged in
        from before (per the audit log, which survives restarts) still gets in."""
        if self.limiter.address_retry_after(remote) > 0:
            return wait
        since = now_us() - int(KNOWN_GOOD_SECONDS * 1_000_000)
        if not await self.database.read(
            lambda conn: credentials.succeeded_from(conn, address, remote, since)
        ):
            return wait
        self.limiter.record_known_good(address, remote)
        return self.limiter.retry_after(address, remote)

    async def _find(self, normalized: str | None, secret: str) -> _Found:
        if normalized is None:
            return _Found(None, False, ())
        try_app_passwords = looks_like_app_password(secret)

        def read(conn: Connection) -> _Found:
            account = directory.get_account(conn, normalized)
            if account is None:
                return _Found(None, False, ())
            return _Found(
                account,
                credentials.has_second_factor(conn, account.id),
                tuple(credentials.list_app_passwords(conn, account.id))
                if try_app_passwords
                else (),
            )

        return await self.database.read(read)

    async def _verify(self, found: _Found, secret: str) -> tuple[bool, AppPassword | None]:
        """Whether ``secret`` is the account's password or one of its app passwords
        (which one). Always pays for at least one argon2 check on a cache miss, also for
        an unknown account, so that timing does not tell accounts apart."""
        account = found.account
        if account is not None:
            hit = self.cache.get(account.id, account.credentials_version, secret)
            if hit is not None:
                if hit.app_password_id is None:
                    return True, None
                for candidate in found.app_passwords:
                    if candidate.id == hit.app_password_id:
                        return True, candidate
        password_hash = account.password_hash if account is not None else None
        if await verify_password(password_hash, secret):
            assert account is not None  # a dummy hash never verifies
            self.cache.put(account.id, account.credentials_version, secret, None)
            return True, None
        return await self._verify_app_passwords(found, secret)

    async def _verify_app_passwords(
        self, found: _Found, secret: str
    ) -> tuple[bool, AppPassword | None]:
        account = found.account
        # Only the app password whose hint matches is worth argon2 (rows without a hint
        # predate hints): the timing does not depend on how many the account has.
        wanted = app_password_hint(secret)
        for candidate in found.app_passwords:
            if candidate.hint not in (wanted, ""):
                continue
            if await verify_password(candidate.hash, secret.strip().lower()):
                assert account is not None
                self.cache.put(account.id, account.credentials_version, secret, candidate.id)
                return True, candidate
        return False, None

    async def _verify_in_directory(
        self, ldap: LdapDirectory, found: _Found, address: str, secret: str
    ) -> tuple[_Found, bool, AppPassword | None, str]:
        """The main password is the directory's (a bind); app passwords stay local.

        Returns the account as found (created or refreshed from the directory after a
        successful bind), whether the secret was verified, the app password used, and a
        refusal reason ("directory-unavailable", "directory-not-local") or ""."""
        account = found.account
        if account is not None:
            hit = self.cache.get(account.id, account.credentials_version, secret)
            if hit is not None:
                if hit.app_password_id is None:
                    return found, True, None, ""
                for candidate in found.app_passwords:
                    if candidate.id == hit.app_password_id:
                        return found, True, candidate, ""
            if found.app_passwords:
                verified, app_password = await self._verify_app_passwords(found, secret)
                if verified:
                    return found, True, app_password, ""
        try:
            entry = await ldap.authenticate(address, secret)
        except DirectoryUnavailable as error:
            log.warning("LDAP directory unavailable: %s", error)
            return found, False, None, "directory-unavailable"
        if entry is None:
            return found, False, None, ""
        provisioned = await provision(self.database, entry)
        if provisioned is None:
            log.warning(
                "LDAP entry %s has the address %s, which is in no local domain",
                entry.dn,
                entry.address,
            )
            return found, False, None, "directory-not-local"
        found = await self._find(provisioned.address, "")
        assert found.account is not None
        self.cache.put(found.account.id, found.account.credentials_version, secret, None)
        return found, True, None, ""

    async def _audit(
        self,
        address: str,
        account_id: int | None,
        protocol: str,
        remote: str,
        client_id: str,
        result: AuthResult,
        reason: str,
        app_password: AppPassword | None = None,
    ) -> None:
        at = now_us()
        entry = audit.AuditEntry(
            at=at,
            protocol=protocol,
            remote=_for_log(remote),
            client_id=_for_log(client_id),
            address=_for_log(address),
            account_id=account_id,
            outcome=result.outcome.value,
            reason=reason,
        )
        touch = app_password is not None and (
            app_password.last_used_at is None
            or at - app_password.last_used_at >= LAST_USE_GRANULARITY_US
            or app_password.last_used_remote != remote[:64]
        )
        prune_before = None
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
            prune_before = at - self.settings.audit_retention_days * 86_400_000_000

        shared = self.shared_limits

        def write(ctx: WriteContext) -> dict[str, int]:
            audit.record(ctx, entry)
            if touch and app_password is not None:
                credentials.record_app_password_use(ctx, app_password.id, at, remote)
            if prune_before is not None:
                audit.prune(ctx, before=prune_before)
                login_limits.prune(ctx, at, shared)
            # The limits every node shares, in the same transaction as the audit row.
            if reason in GUESS_REASONS:
                return login_limits.record_failure(ctx, address, remote, at, shared)
            if result.ok:
                login_limits.record_success(ctx, address)
            return {}

        started = await self.database.write(write)
        if started:
            self._impose(started, address, remote, at)

    async def attempts(
        self, *, address: str | None = None, since: int | None = None, limit: int = 1000
    ) -> list[audit.AuditEntry]:
        """The audit log, newest first: every attempt, or those naming ``address``
        (as typed, normalized), since ``since`` (microseconds)."""
        key = normalize_address(address) if address is not None else None
        return await self.database.read(
            lambda conn: audit.query(conn, address=key, since=since, limit=limit)
        )

    async def prune_audit(self) -> int:
        """Drop audit rows older than ``audit_retention_days``; returns how many."""
        before = now_us() - self.settings.audit_retention_days * 86_400_000_000
        return await self.database.write(lambda ctx: audit.prune(ctx, before=before))
