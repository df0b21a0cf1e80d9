"""Where mail for an address goes: accounts, aliases, catch-all, plus-addressing.

The order of resolution, first match wins, is the one Postfix's virtual maps and most
servers use, so administrators get no surprise:

1. an account with exactly that address;
2. an alias with exactly that address (expanded recursively, at most ``MAX_ALIAS_DEPTH``
   levels, each target resolved the same way; loops are cut);
3. the same two steps for the address without its ``+tag`` (RFC 5233 subaddress);
4. the domain's catch-all alias ``@domain``.

A local domain's address that matches nothing is unknown (SMTP ``550 5.1.1``); an
address of a domain that is not local is external (forwarded by an alias, or refused as
relaying by the SMTP front end).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mail.addresses import (
    catch_all_address,
    normalize_address,
    normalize_domain,
    split_address,
    without_subaddress,
)
from hirondelle.store import directory
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.directory import Alias

MAX_ALIAS_DEPTH = 10
MAX_EXPANSION = 1000


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    account_id: int
    address: str  # the account's address


@dataclass(slots=True)
class Resolution:
    """What one RCPT address resolves to."""

    address: str
    is_local_domain: bool
    local: list[LocalRecipient] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    @property
    def unknown(self) -> bool:
        return self.is_local_domain and not self.local and not self.external


def resolve(conn: Connection, address: str) -> Resolution:
    """RFC 5321 §3.6-style expansion of one recipient address (see module docstring)."""
    normalized = normalize_address(address)
    _, domain = split_address(normalized)
    is_local = directory.get_domain(conn, domain) is not None
    resolution = Resolution(address=normalized, is_local_domain=is_local)
    if not is_local:
        resolution.external.append(normalized)
        return resolution
    seen: set[str] = set()
    _expand(conn, normalized, resolution, seen, depth=0, top=True)
    # Duplicates (two aliases leading to one account) receive one copy.
    resolution.local = list({r.account_id: r for r in resolution.local}.values())
    resolution.external = list(dict.fromkeys(resolution.external))
    return resolution


def _expand(
    conn: Connection, address: str, out: Resolution, seen: set[str], *, depth: int, top: bool
) -> None:
    if address in seen or depth > MAX_ALIAS_DEPTH or len(seen) > MAX_EXPANSION:
        return
    seen.add(address)
    _, domain = split_address(address)
    if directory.get_domain(conn, domain) is None:
        out.external.append(address)
        return
    candidates = [address]
    base = without_subaddress(address)
    if base is not None:
        candidates.append(base)
    for candidate in candidates:
        account = directory.get_account(conn, candidate)
        if account is not None:
            out.local.append(LocalRecipient(account.id, account.address))
            return
        alias = directory.get_alias(conn, candidate)
        if alias is not None:
            for target in alias.targets:
                _expand(conn, target, out, seen, depth=depth + 1, top=False)
            return
    if top:
        catch_all = directory.get_alias(conn, catch_all_address(domain))
        if catch_all is not None:
            for target in catch_all.targets:
                _expand(conn, target, out, seen, depth=depth + 1, top=False)


class AliasService:
    """Administration of aliases (the `hirondelle alias` commands)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    def _alias_address(alias: str) -> tuple[str, str]:
        """``name@domain`` or ``@domain`` (catch-all) -> (normalized, domain)."""
        text = alias.strip().lower()
        if text.startswith("@"):
            domain = normalize_domain(text[1:])
            return catch_all_address(domain), domain
        normalized = normalize_address(text)
        return normalized, split_address(normalized)[1]

    async def add(self, alias: str, targets: list[str]) -> Alias:
        if not targets:
            raise Refused(Reason.INVALID, "an alias needs at least one target")
        address, domain_name = self._alias_address(alias)
        normalized_targets = [normalize_address(t) for t in targets]
        if address in normalized_targets:
            raise Refused(Reason.INVALID, f"alias {address} cannot point to itself")

        def write(ctx: WriteContext) -> Alias:
            domain = directory.get_domain(ctx.conn, domain_name)
            if domain is None:
                raise Refused(
                    Reason.NOT_FOUND,
                    f"unknown domain {domain_name}: add it first with `domain add`",
                )
            return directory.add_alias(
                ctx, domain=domain, address=address, targets=normalized_targets
            )

        return await self.database.write(write)

    async def remove(self, alias: str) -> None:
        address, _ = self._alias_address(alias)
        await self.database.write(lambda ctx: directory.remove_alias(ctx, address))

    async def list(self, *, domain: str | None = None) -> list[Alias]:
        name = normalize_domain(domain) if domain is not None else None
        return await self.database.read(lambda conn: directory.list_aliases(conn, domain=name))

    async def resolve(self, address: str) -> Resolution:
        return await self.database.read(lambda conn: resolve(conn, address))
