"""Password-reset links (issue 6 item 6): ``hirondelle account reset-link ADDRESS`` makes
one, valid one hour and usable once; the webmail's reset page sends its token and the new
password to ``POST /api/password-reset``.

The token (256 random bits) travels in the link's fragment (``#token=…``, which the
webmail's reset page reads), which browsers never send to a server or put in a Referer,
so it does not end up in proxy or access logs; the
store keeps its SHA-256 only. Using a link applies the password policy, sets the password,
ends every web session and pending sign-in of the account and spends every other link of
the account, all in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hirondelle.errors import Reason, Refused
from hirondelle.identity import password_policy
from hirondelle.identity.passwords import hash_password
from hirondelle.identity.web_sessions import new_token, parse_token
from hirondelle.mail.addresses import normalize_address
from hirondelle.store import directory, schema
from hirondelle.store import web_sessions as store
from hirondelle.store.database import Database, WriteContext, now_us

LINK_SECONDS = 3600
RESET_PATH = "/reset-password"


class InvalidResetToken(Refused):
    def __init__(self) -> None:
        super().__init__(
            Reason.NOT_FOUND,
            "this reset link is invalid, expired or already used / ce lien de "
            "réinitialisation est invalide, expiré ou déjà utilisé",
        )


@dataclass(frozen=True, slots=True)
class ResetLink:
    address: str
    url: str
    expires_at: int


def _hash(token: str) -> str:
    return hashlib.sha256(b"reset\x00" + token.encode("ascii")).hexdigest()


class PasswordResetService:
    def __init__(self, database: Database, *, base_url: str, password_min_length: int) -> None:
        self.database = database
        self.base_url = base_url.rstrip("/")
        self.password_min_length = password_min_length

    async def create_link(self, address: str) -> ResetLink:
        normalized = normalize_address(address)
        token = new_token()
        at = now_us()
        expires_at = at + LINK_SECONDS * 1_000_000

        def write(ctx: WriteContext) -> None:
            account = directory.get_account(ctx.conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            store.insert_reset(
                ctx, account_id=account.id, token_hash=_hash(token), at=at, expires_at=expires_at
            )

        await self.database.write(write)
        return ResetLink(
            address=normalized,
            url=f"{self.base_url}{RESET_PATH}#token={token}",
            expires_at=expires_at,
        )

    async def reset(self, token: str, password: str) -> str:
        """Set the password through a link; returns the account's address. Raises
        :class:`InvalidResetToken` or :class:`~hirondelle.identity.password_policy.WeakPassword`
        (checked first: a weak password does not spend the link)."""
        parsed = parse_token(token)
        if parsed is None:
            raise InvalidResetToken()
        password_policy.check(password, min_length=self.password_min_length)
        password_hash = await hash_password(password)
        digest = _hash(parsed)

        def write(ctx: WriteContext) -> str:
            at = now_us()
            account_id = store.use_reset(ctx, digest, at)
            account = (
                directory.get_account_by_id(ctx.conn, account_id)
                if account_id is not None
                else None
            )
            if account is None:
                raise InvalidResetToken()
            directory.update_account(
                ctx,
                account.address,
                password_hash=password_hash,
                credentials_version=schema.accounts.c.credentials_version + 1,
            )
            store.revoke_all(ctx, account.id)
            return account.address

        return await self.database.write(write)
