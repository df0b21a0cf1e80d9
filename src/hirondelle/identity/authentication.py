"""The one gate every login goes through, on every protocol.

DESIGN.md "Identity and security": IMAP, POP3, SMTP submission, DAV, JMAP and the web
all call :meth:`Authenticator.authenticate`. It checks the account (exists, not
disabled), the secret, then the account's switch for the protocol, and writes one audit
row per attempt (time, protocol, remote address, client id, outcome, reason).

What the client learns is deliberately less than what the audit log records: a wrong
password, an unknown address and a disabled account all look the same
(``Outcome.FAILED``); that a protocol is switched off for the account is said only to
someone who proved the password, so it reveals nothing to a guesser.

The identity issue extends this gate (rate limits first, app passwords, second
factors, a verification cache); protocols only ever see :class:`AuthResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hirondelle.errors import Refused
from hirondelle.identity.passwords import verify_password
from hirondelle.mail.addresses import normalize_address
from hirondelle.store import audit, directory
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.directory import Account

# Which account switch each protocol obeys (JMAP is the webmail's API: the web switch).
PROTOCOL_SWITCH = {
    "imap": "imap",
    "pop3": "pop3",
    "smtp": "smtp",
    "dav": "dav",
    "jmap": "web",
    "web": "web",
}


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"  # what the client is told for any wrong credential
    PROTOCOL_DISABLED = "protocol-disabled"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: Outcome
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


class Authenticator:
    def __init__(self, database: Database) -> None:
        self.database = database

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
        typed = address.strip().lower()[:320]
        try:
            normalized = normalize_address(address)
        except Refused:
            normalized = None
        account = (
            await self.database.read(lambda conn: directory.get_account(conn, normalized))
            if normalized is not None
            else None
        )
        password_hash = account.password_hash if account is not None else None
        # Always pay for one verification so that timing does not tell accounts apart.
        password_ok = await verify_password(password_hash, secret)
        if account is None:
            result, reason = AuthResult(Outcome.FAILED), "unknown-account"
        elif password_hash is None or not password_ok:
            result, reason = AuthResult(Outcome.FAILED), "bad-password"
        elif account.disabled:
            result, reason = AuthResult(Outcome.FAILED), "account-disabled"
        elif not account.allows(switch):
            result, reason = AuthResult(Outcome.PROTOCOL_DISABLED), f"{switch}-disabled"
        else:
            result, reason = AuthResult(Outcome.SUCCESS, account), ""
        entry = audit.AuditEntry(
            at=now_us(),
            protocol=protocol,
            remote=remote,
            client_id=client_id,
            address=normalized or typed,
            account_id=account.id if account is not None else None,
            outcome=result.outcome.value,
            reason=reason,
        )

        def write(ctx: WriteContext) -> None:
            audit.record(ctx, entry)

        await self.database.write(write)
        return result
