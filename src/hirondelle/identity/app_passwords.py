"""App passwords: one generated password per device or client, limited to the client
protocols it was made for, revocable alone (DESIGN.md "Identity and security").

They are what mail, calendar and contacts clients use once an account has a second
factor. Generated here, shown once, stored as argon2 hashes only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.identity.passwords import hash_password
from hirondelle.mail.addresses import normalize_address
from hirondelle.store import credentials, directory
from hirondelle.store.credentials import AppPassword
from hirondelle.store.database import Database, WriteContext, now_us

# The client protocols an app password can open (the web interface needs the account's
# own password and, when set, its second factor).
CLIENT_PROTOCOLS = ("imap", "pop3", "smtp", "dav", "jmap")
# No 0/o, 1/l/i: read out or typed on a phone without ambiguity. 16 characters of a
# 31-letter alphabet: 79 bits.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
SHAPE = re.compile(rf"^[{ALPHABET}]{{4}}(-[{ALPHABET}]{{4}}){{3}}$")
MAX_LABEL = 100
MAX_PER_ACCOUNT = 50


def generate() -> str:
    """Four groups of four readable characters, e.g. ``k7mq-2xpd-hr4t-9vwa``."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(4))


def hint(secret: str) -> str:
    """A short non-secret digest that picks the one app password worth checking with
    argon2: 32 bits of SHA-256 of a 79-bit random secret reveal nothing usable."""
    return hashlib.sha256(secret.strip().lower().encode()).hexdigest()[:8]


def looks_like_app_password(secret: str) -> bool:
    """Only secrets of this shape are tried against app passwords, so a wrong main
    password costs one argon2 check, not one per app password."""
    return SHAPE.match(secret.strip().lower()) is not None


def parse_protocols(protocols: Iterable[str]) -> tuple[str, ...]:
    chosen = {p.strip().lower() for p in protocols if p.strip()}
    unknown = sorted(chosen - set(CLIENT_PROTOCOLS))
    if unknown:
        raise Refused(
            Reason.INVALID,
            f"unknown protocol {', '.join(unknown)}: choose among {', '.join(CLIENT_PROTOCOLS)}",
        )
    if not chosen:
        raise Refused(Reason.INVALID, "an app password needs at least one protocol")
    return tuple(p for p in CLIENT_PROTOCOLS if p in chosen)


class AppPasswordService:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(
        self, address: str, label: str, protocols: Iterable[str] = CLIENT_PROTOCOLS
    ) -> tuple[AppPassword, str]:
        """Create an app password; returns it with the secret, which is never kept."""
        normalized = normalize_address(address)
        label = label.strip()
        if not label or len(label) > MAX_LABEL or not label.isprintable():
            raise Refused(
                Reason.INVALID, f"the label must be 1 to {MAX_LABEL} printable characters"
            )
        chosen = parse_protocols(protocols)
        secret = generate()
        password_hash = await hash_password(secret)

        def write(ctx: WriteContext) -> AppPassword:
            account = directory.get_account(ctx.conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            if len(credentials.list_app_passwords(ctx.conn, account.id)) >= MAX_PER_ACCOUNT:
                raise Refused(
                    Reason.INVALID, f"at most {MAX_PER_ACCOUNT} app passwords: revoke one first"
                )
            return credentials.insert_app_password(
                ctx,
                account_id=account.id,
                label=label,
                protocols=chosen,
                password_hash=password_hash,
                hint=hint(secret),
                at=now_us(),
            )

        return await self.database.write(write), secret

    async def list(self, address: str, *, include_revoked: bool = False) -> list[AppPassword]:
        normalized = normalize_address(address)

        def read(conn: Connection) -> list[AppPassword]:
            account = directory.get_account(conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            return credentials.list_app_passwords(conn, account.id, include_revoked=include_revoked)

        return await self.database.read(read)

    async def revoke(self, address: str, app_password_id: int) -> None:
        normalized = normalize_address(address)

        def write(ctx: WriteContext) -> None:
            account = directory.get_account(ctx.conn, normalized)
            if account is None:
                raise Refused(Reason.NOT_FOUND, f"no account {normalized}")
            if not credentials.revoke_app_password(ctx, account.id, app_password_id, now_us()):
                raise Refused(
                    Reason.NOT_FOUND, f"no app password {app_password_id} for {normalized}"
                )

        await self.database.write(write)
