"""Web sessions of the webmail: sign-in (password, then the second factor when the
account has one), the session cookie's token, CSRF tokens, listing and ending sessions
(DESIGN.md "Identity and security", issue 6 item 5; the HTTP side is
:mod:`hirondelle.web.session_api`).

- A session token is 256 random bits (43 base64url characters); the store keeps only its
  SHA-256. The CSRF token is SHA-256 of the token under another label: the browser's
  script reads it from the API, a cross-site page can neither read it nor derive it.
- "Stay signed in" is off unless asked for: then the session lives 12 hours at most and
  the cookie dies with the browser; with it, 30 days. Neither is extended by use (an
  absolute lifetime: a stolen cookie does not live forever by being used).
- A password change ends every session of the account (``AccountService.set_password``
  and password resets call :func:`hirondelle.store.web_sessions.revoke_all` in the same
  transaction), and so does disabling the account or its web switch (checked on each
  request by :meth:`WebSessionService.resolve`).
- Sign-in goes through :meth:`Authenticator.authenticate` with protocol "web" (rate
  limits, audit). Wrong second factors are limited like wrong passwords (same numbers,
  a limiter of their own that a correct password does not reset), a pending sign-in
  takes at most five, and each is written to the audit log.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.engine import Connection

from hirondelle.errors import Refused
from hirondelle.identity.authentication import Authenticator, Outcome, limits_of
from hirondelle.identity.rate_limits import InProcessRateLimiter
from hirondelle.identity.second_factor import SecondFactorService
from hirondelle.store import audit, directory
from hirondelle.store import web_sessions as store
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.directory import Account

SESSION_SECONDS = 12 * 3600
STAY_SIGNED_IN_SECONDS = 30 * 86400
PENDING_SECONDS = 5 * 60
MAX_SECOND_FACTOR_FAILURES = 5
# Last-seen is written again only after this long (or from another address).
LAST_SEEN_GRANULARITY_US = 60_000_000
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
US = 1_000_000


def new_token() -> str:
    return secrets.token_urlsafe(32)


def parse_token(text: str) -> str | None:
    """The token in a cookie or request body, or None if it cannot be one (anything
    but 43 base64url characters): such input never reaches the store."""
    return text if TOKEN_RE.fullmatch(text) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(b"session\x00" + token.encode("ascii")).hexdigest()


def csrf_token_of(token: str) -> str:
    return hashlib.sha256(b"csrf\x00" + token.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: its account (re-read on every request) and its CSRF token."""

    id: int
    account: Account
    csrf_token: str
    stay_signed_in: bool
    created_at: int
    expires_at: int
    registration_challenge: str | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    created_at: int
    last_seen_at: int
    remote: str
    user_agent: str
    current: bool


class SignInStatus(StrEnum):
    SIGNED_IN = "signed-in"
    SECOND_FACTOR = "second-factor"
    FAILED = "failed"
    RATE_LIMITED = "rate-limited"
    UNAVAILABLE = "unavailable"  # the account directory does not answer


@dataclass(frozen=True, slots=True)
class SignIn:
    status: SignInStatus
    token: str = ""  # the cookie's value, when signed in
    session: WebSession | None = None
    pending: str = ""  # when a second factor is owed
    methods: tuple[str, ...] = ()
    retry_after: int = 0


class WebSessionService:
    def __init__(
        self,
        database: Database,
        authenticator: Authenticator,
        second_factors: SecondFactorService,
    ) -> None:
        self.database = database
        self.authenticator = authenticator
        self.second_factors = second_factors
        # Wrong second factors have their own limiter, with the same limits: the
        # password step's success resets the account's count in the authenticator's,
        # which would let someone who knows the password guess codes without end. Only
        # a correct second factor resets this one (and makes its address known-good).
        self.second_factor_limiter = InProcessRateLimiter(limits_of(authenticator.settings))

    # -- sessions -------------------------------------------------------------------------------

    async def create(
        self, account: Account, *, stay_signed_in: bool, remote: str, user_agent: str
    ) -> tuple[str, WebSession]:
        token = new_token()
        at = now_us()
        lifetime = STAY_SIGNED_IN_SECONDS if stay_signed_in else SESSION_SECONDS

        def write(ctx: WriteContext) -> store.SessionRow:
            store.prune_expired(ctx, at)
            return store.insert_session(
                ctx,
                account_id=account.id,
                token_hash=token_hash(token),
                stay_signed_in=stay_signed_in,
                at=at,
                expires_at=at + lifetime * US,
                remote=remote,
                user_agent=_printable(user_agent),
            )

        row = await self.database.write(write)
        return token, self._session(row, account, token)

    @staticmethod
    def _session(row: store.SessionRow, account: Account, token: str) -> WebSession:
        return WebSession(
            id=row.id,
            account=account,
            csrf_token=csrf_token_of(token),
            stay_signed_in=row.stay_signed_in,
            created_at=row.created_at,
            expires_at=row.expires_at,
            registration_challenge=row.registration_challenge,
        )

    async def resolve(self, token: str, *, remote: str) -> WebSession | None:
        """The session a cookie names, or None (unknown, expired, account disabled or
        switched off for the web); refreshes last-seen (at most once a minute)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        digest = token_hash(parsed)
        now = now_us()

        def read(conn: Connection) -> tuple[store.SessionRow, Account] | None:
            row = store.find_session(conn, digest)
            if row is None or row.expires_at <= now:
                return None
            account = directory.get_account_by_id(conn, row.account_id)
            if account is None or account.disabled or not account.allows("web"):
                return None
            return row, account

        found = await self.database.read(read)
        if found is None:
            return None
        row, account = found
        if now - row.last_seen_at >= LAST_SEEN_GRANULARITY_US or row.remote != remote[:64]:
            await self.database.write(lambda ctx: store.touch_session(ctx, row.id, now, remote))
        return self._session(row, account, parsed)

    async def sessions(self, account_id: int, *, current: int | None = None) -> list[SessionInfo]:
        now = now_us()
        rows = await self.database.read(lambda conn: store.list_sessions(conn, account_id, now))
        return [
            SessionInfo(
                id=r.id,
                created_at=r.created_at,
                last_seen_at=r.last_seen_at,
                remote=r.remote,
                user_agent=r.user_agent,
                current=r.id == current,
            )
            for r in rows
        ]

    async def revoke(self, account_id: int, session_id: int) -> bool:
        """End one session of the account; False if it has none of that id."""
        return await self.database.write(
            lambda ctx: store.delete_session(ctx, account_id, session_id)
        )

    async def sign_out(self, token: str) -> None:
        parsed = parse_token(token)
        if parsed is not None:
            digest = token_hash(parsed)
            await self.database.write(lambda ctx: store.delete_session_by_hash(ctx, digest))

    async def revoke_all(self, account_id: int) -> int:
        return await self.database.write(lambda ctx: store.revoke_all(ctx, account_id))

    # -- sign-in --------------------------------------------------------------------------------

    async def sign_in(
        self,
        address: str,
        password: str,
        *,
        stay_signed_in: bool,
        remote: str,
        user_agent: str,
    ) -> SignIn:
        """The password step. A switched-off web access answers like a wrong password
        (the session API's contract: one generic answer)."""
        result = await self.authenticator.authenticate(
            address, password, protocol="web", remote=remote, client_id=user_agent
        )
        if result.outcome is Outcome.RATE_LIMITED:
            return SignIn(SignInStatus.RATE_LIMITED, retry_after=result.retry_after)
        if result.outcome is Outcome.UNAVAILABLE:
            return SignIn(SignInStatus.UNAVAILABLE, retry_after=result.retry_after)
        owes_factor = result.outcome is Outcome.SECOND_FACTOR_REQUIRED
        if not (result.ok or owes_factor) or result.account is None:
            return SignIn(SignInStatus.FAILED)
        account = result.account
        if not owes_factor:
            token, session = await self.create(
                account, stay_signed_in=stay_signed_in, remote=remote, user_agent=user_agent
            )
            return SignIn(SignInStatus.SIGNED_IN, token=token, session=session)
        pending = new_token()
        at = now_us()
        await self.database.write(
            lambda ctx: store.insert_sign_in(
                ctx,
                account_id=account.id,
                token_hash=token_hash(pending),
                stay_signed_in=stay_signed_in,
                at=at,
                expires_at=at + PENDING_SECONDS * US,
            )
        )
        methods = await self.second_factors.methods(account.id)
        # An account whose factor rows have no usable detail (set by an administrator
        # tool, say) still owes a second factor: it can only use a recovery code then.
        return SignIn(
            SignInStatus.SECOND_FACTOR, pending=pending, methods=tuple(methods) or ("recovery",)
        )

    async def _pending(self, pending: str) -> tuple[store.SignInRow, Account] | None:
        parsed = parse_token(pending)
        if parsed is None:
            return None
        digest, now = token_hash(parsed), now_us()

        def read(conn: Connection) -> tuple[store.SignInRow, Account] | None:
            row = store.find_sign_in(conn, digest, now)
            if row is None:
                return None
            account = directory.get_account_by_id(conn, row.account_id)
            if account is None or account.disabled or not account.allows("web"):
                return None
            return row, account

        return await self.database.read(read)

    async def webauthn_options(self, pending: str) -> str | None:
        """Request options for the pending sign-in's WebAuthn step (None: no such
        sign-in, or no credential)."""
        found = await self._pending(pending)
        if found is None:
            return None
        row, _account = found
        try:
            options, challenge = await self.second_factors.webauthn_authentication_options(
                row.account_id
            )
        except Refused:
            return None
        await self.database.write(lambda ctx: store.set_sign_in_challenge(ctx, row.id, challenge))
        return options

    async def second_factor(
        self,
        pending: str,
        *,
        totp: str | None = None,
        recovery_code: str | None = None,
        webauthn: object = None,
        remote: str,
        user_agent: str,
    ) -> SignIn:
        """The second step: one of a TOTP code, a recovery code or a WebAuthn assertion."""
        found = await self._pending(pending)
        if found is None:
            return SignIn(SignInStatus.FAILED)
        row, account = found
        key = account.address
        limiter = self.second_factor_limiter
        wait = limiter.retry_after(key, remote)
        # Guesses sent in parallel must not all be checked before the first failure is
        # counted: beyond what may still fail, they are turned away (a person never
        # sends two second factors at once).
        if wait <= 0 and limiter.saturated(key, remote):
            wait = 1
        if wait > 0:
            # Turned away unchecked, but an attempt all the same: audited like a
            # password attempt refused by the limits.
            given = _method_given(totp, recovery_code, webauthn)
            await self._audit(account, remote, user_agent, "rate-limited", f"second-factor {given}")
            return SignIn(SignInStatus.RATE_LIMITED, retry_after=max(1, math.ceil(wait)))
        limiter.begin(key, remote)
        try:
            method, ok = await self._check_factor(row, account, totp, recovery_code, webauthn)
        finally:
            limiter.end(key, remote)
        if not ok:
            limiter.record_failure(key, remote)
            await self._audit(account, remote, user_agent, "failed", f"second-factor {method}")
            await self.database.write(
                lambda ctx: store.count_sign_in_failure(ctx, row.id, MAX_SECOND_FACTOR_FAILURES)
            )
            return SignIn(SignInStatus.FAILED)
        if not await self.database.write(lambda ctx: store.delete_sign_in(ctx, row.id)):
            return SignIn(SignInStatus.FAILED)  # used by a concurrent request
        limiter.record_success(key, remote)
        await self.authenticator.second_factor_passed(account, remote)
        await self._audit(account, remote, user_agent, "success", f"second-factor {method}")
        token, session = await self.create(
            account, stay_signed_in=row.stay_signed_in, remote=remote, user_agent=user_agent
        )
        return SignIn(SignInStatus.SIGNED_IN, token=token, session=session)

    async def _check_factor(
        self,
        row: store.SignInRow,
        account: Account,
        totp: str | None,
        recovery_code: str | None,
        webauthn: object,
    ) -> tuple[str, bool]:
        if totp is not None:
            return "totp", await self.second_factors.verify_totp(account.id, totp)
        if recovery_code is not None:
            return "recovery", await self.second_factors.use_recovery_code(
                account.id, recovery_code
            )
        if webauthn is not None and row.webauthn_challenge is not None:
            challenge = row.webauthn_challenge
            # One challenge, one try.
            await self.database.write(lambda ctx: store.set_sign_in_challenge(ctx, row.id, None))
            return "webauthn", await self.second_factors.verify_webauthn(
                account.id, challenge, webauthn
            )
        return "none", False

    async def _audit(
        self, account: Account, remote: str, user_agent: str, outcome: str, reason: str
    ) -> None:
        entry = audit.AuditEntry(
            at=now_us(),
            protocol="web",
            remote=_printable(remote),
            client_id=_printable(user_agent),
            address=account.address,
            account_id=account.id,
            outcome=outcome,
            reason=reason,
        )
        await self.database.write(lambda ctx: audit.record(ctx, entry))


def _method_given(totp: str | None, recovery_code: str | None, webauthn: object) -> str:
    """The factor a second step offers, as the audit log names it."""
    if totp is not None:
        return "totp"
    if recovery_code is not None:
        return "recovery"
    return "webauthn" if webauthn is not None else "none"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:200]
