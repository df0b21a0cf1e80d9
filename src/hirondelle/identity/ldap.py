"""Accounts and passwords from an LDAP directory (DESIGN.md "Identity and security").

With ``[identity] source = "ldap"`` the main password of every account is checked by a
bind to the directory (RFC 4513 §5.1.3, simple bind), either directly as the DN that
``user_dn_template`` builds from the typed address ("bind as user") or as the DN found by
searching ``base_dn`` with ``user_filter`` ("search and bind", RFC 4511 §4.5). The
connection is protected by LDAPS or StartTLS (RFC 4513 §3) with the configured CA.

The first successful login creates the local account (in the local domain of its
``mail`` attribute) with its display name and aliases; later logins and the sync refresh
them. The sync (:func:`sync_accounts`: ``hirondelle ldap sync`` and periodically in the
node) disables the accounts whose entry has left the directory and re-enables those it
disabled when they come back. App passwords and second factors stay local.

ldap3 is blocking: every directory operation runs in a worker thread.

Security notes: an empty password is refused before any bind (RFC 4513 §5.1.2: a simple
bind with a DN and no password is an "unauthenticated bind" that many servers accept);
typed text is escaped for filters (RFC 4515 §3) and DNs (RFC 4514 §2.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import ldap3  # type: ignore[import-untyped]  # ldap3 ships no type hints
from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]
from ldap3.utils.dn import escape_rdn  # type: ignore[import-untyped]

from hirondelle.config import ConfigError, LdapSettings, Settings
from hirondelle.errors import Refused
from hirondelle.mail.addresses import normalize_address, split_address
from hirondelle.store import directory_accounts
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.directory import Account
from hirondelle.store.directory_accounts import SyncReport

__all__ = [
    "DirectoryEntry",
    "DirectoryUnavailable",
    "LdapDirectory",
    "SyncReport",
    "directory_from_settings",
    "provision",
    "sync_accounts",
]

log = logging.getLogger(__name__)

SOURCE = "ldap"
# Result code 49: invalidCredentials (RFC 4511 §4.1.9); 32: noSuchObject.
INVALID_CREDENTIALS = 49


class DirectoryUnavailable(Exception):
    """No directory server answered (or the TLS handshake with it failed)."""


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """What the directory says about one person."""

    dn: str
    address: str  # the mail attribute, normalized
    display_name: str
    aliases: tuple[str, ...]  # normalized, without the address itself


def _first(values: Any) -> str:
    if isinstance(values, list | tuple):
        return str(values[0]) if values else ""
    return "" if values is None else str(values)


def _all(values: Any) -> list[str]:
    if isinstance(values, list | tuple):
        return [str(value) for value in values]
    return [] if values in (None, "") else [str(values)]


def _close(connection: ldap3.Connection) -> None:
    """Unbind; a connection that already failed may not even manage that."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()


class LdapDirectory:
    """The blocking ldap3 side; the ``async`` methods run it in worker threads."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        urls = settings.urls.split()
        if not urls:
            raise ConfigError(
                '[identity] source = "ldap" needs [ldap] urls, e.g. "ldaps://ldap.example.org"'
            )
        if not settings.base_dn:
            raise ConfigError(
                '[identity] source = "ldap" needs [ldap] base_dn, where people are searched '
                '(e.g. "ou=people,dc=example,dc=org")'
            )
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        servers = []
        for url in urls:
            if not url.lower().startswith(("ldap://", "ldaps://")):
                raise ConfigError(f'[ldap] urls: "{url}" is not an ldap:// or ldaps:// URL')
            servers.append(
                ldap3.Server(
                    url,
                    tls=tls,
                    get_info=ldap3.NONE,
                    connect_timeout=settings.timeout_seconds,
                )
            )
        if settings.user_dn_template:
            try:
                settings.user_dn_template.format(local="l", domain="d", address="a")
            except (KeyError, IndexError, ValueError):
                raise ConfigError(
                    f'[ldap] user_dn_template "{settings.user_dn_template}": only {{local}}, '
                    "{domain} and {address} may be used"
                ) from None
        # Tried in order by _bind. Not ldap3's ServerPool: when every server is down it
        # sleeps 10 s before giving up, and a login would hang that long.
        self._servers = servers
        self._attributes = [
            name
            for name in (settings.mail_attribute, settings.name_attribute, settings.alias_attribute)
            if name
        ]

    # -- connections ---------------------------------------------------------------

    def _bind(self, user: str | None, password: str | None) -> ldap3.Connection | None:
        """An open, bound connection, or None when the directory refused the credentials.

        Raises :class:`DirectoryUnavailable` when no server could be used."""
        problems = []
        for server in self._servers:
            try:
                return self._bind_to(server, user, password)
            except DirectoryUnavailable as error:
                problems.append(f"{server.name}: {error}")
        raise DirectoryUnavailable("; ".join(problems))

    def _bind_to(
        self, server: ldap3.Server, user: str | None, password: str | None
    ) -> ldap3.Connection | None:
        connection = ldap3.Connection(
            server,
            user=user,
            password=password,
            authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self.settings.timeout_seconds,
            read_only=True,
            raise_exceptions=False,
            auto_referrals=False,
        )
        try:
            connection.open()
            started = not self.settings.start_tls or connection.server.ssl
            if not started and not connection.start_tls():
                raise DirectoryUnavailable(f"StartTLS refused: {connection.result}")
            if connection.bind():
                return connection
            result = connection.result or {}
        except LDAPException as error:
            _close(connection)
            raise DirectoryUnavailable(f"{type(error).__name__}: {error}") from None
        except BaseException:
            _close(connection)
            raise
        _close(connection)
        if result.get("result") == INVALID_CREDENTIALS:
            return None
        raise DirectoryUnavailable(f"bind refused: {result.get('description')}")

    def _service(self) -> ldap3.Connection:
        connection = self._bind(self.settings.bind_dn or None, self.settings.bind_password or None)
        if connection is None:
            raise DirectoryUnavailable(f"the directory refused bind_dn {self.settings.bind_dn}")
        return connection

    def _entry(self, dn: str, attributes: dict[str, Any]) -> DirectoryEntry | None:
        settings = self.settings
        try:
            address = normalize_address(_first(attributes.get(settings.mail_attribute)))
        except Refused:
            return None
        aliases: list[str] = []
        if settings.alias_attribute:
            for value in _all(attributes.get(settings.alias_attribute)):
                try:
                    alias = normalize_address(value)
                except Refused:
                    continue
                if alias != address and alias not in aliases:
                    aliases.append(alias)
        name = _first(attributes.get(settings.name_attribute)) if settings.name_attribute else ""
        return DirectoryEntry(
            dn=dn, address=address, display_name=name[:200], aliases=tuple(aliases)
        )

    def _search(self, connection: ldap3.Connection, address: str) -> list[tuple[str, Any]]:
        query = self.settings.user_filter.replace("{address}", address)
        try:
            found = connection.extend.standard.paged_search(
                self.settings.base_dn,
                query,
                search_scope=ldap3.SUBTREE,
                attributes=self._attributes,
                paged_size=500,
                generator=False,
            )
        except LDAPException as error:  # a dropped connection, a malformed filter...
            raise DirectoryUnavailable(f"search failed: {type(error).__name__}: {error}") from None
        result = connection.result or {}
        if result.get("result", 0) != 0:
            raise DirectoryUnavailable(f"search failed: {result.get('description')}")
        return [
            (item["dn"], item.get("attributes", {}))
            for item in found
            if item.get("type") == "searchResEntry"
        ]

    # -- blocking operations ---------------------------------------------------------

    def authenticate_blocking(self, address: str, password: str) -> DirectoryEntry | None:
        """The entry of the person who typed ``address`` (normalized) and ``password``,
        or None when the directory does not know them or the password is wrong."""
        if not password:
            return None  # an unauthenticated bind would "succeed" (RFC 4513 §5.1.2)
        settings = self.settings
        if settings.user_dn_template:
            local, domain = split_address(address)
            dn = settings.user_dn_template.format(
                local=escape_rdn(local), domain=escape_rdn(domain), address=escape_rdn(address)
            )
        else:
            service = self._service()
            try:
                found = self._search(service, escape_filter_chars(address))
            finally:
                _close(service)
            if len(found) != 1:  # none, or ambiguous: never guess which person is meant
                return None
            dn = found[0][0]
        user = self._bind(dn, password)
        if user is None:
            return None
        try:
            user.search(dn, "(objectClass=*)", ldap3.BASE, attributes=self._attributes)
            entries = [e for e in user.response or [] if e.get("type") == "searchResEntry"]
            if not entries:
                log.warning("LDAP: bound as %s but cannot read that entry (access rules?)", dn)
                return None
            return self._entry(dn, entries[0].get("attributes", {}))
        except LDAPException as error:
            raise DirectoryUnavailable(f"{type(error).__name__}: {error}") from None
        finally:
            _close(user)

    def entries_blocking(self) -> list[DirectoryEntry]:
        """Every person the filter selects (for the sync)."""
        service = self._service()
        try:
            found = self._search(service, "*")
        except LDAPException as error:
            raise DirectoryUnavailable(f"{type(error).__name__}: {error}") from None
        finally:
            _close(service)
        entries = [self._entry(dn, attributes) for dn, attributes in found]
        return [entry for entry in entries if entry is not None]

    # -- from the event loop -----------------------------------------------------------

    async def authenticate(self, address: str, password: str) -> DirectoryEntry | None:
        return await asyncio.to_thread(self.authenticate_blocking, address, password)

    async def entries(self) -> list[DirectoryEntry]:
        return await asyncio.to_thread(self.entries_blocking)


async def provision(database: Database, entry: DirectoryEntry) -> Account | None:
    """Create or refresh the local account of ``entry`` after a successful bind; None
    when its address is in no local domain (the directory names someone this server does
    not host)."""
    return await database.write(
        lambda ctx: directory_accounts.provision(
            ctx,
            source=SOURCE,
            external_id=entry.dn,
            address=entry.address,
            display_name=entry.display_name,
            aliases=entry.aliases,
        )
    )


async def sync_accounts(database: Database, ldap: LdapDirectory) -> SyncReport:
    """Compare the accounts created from the directory with the directory: refresh
    names and aliases, disable those that left it, re-enable those that came back.

    Raises :class:`DirectoryUnavailable` without changing anything when the directory
    cannot be read: a failed search must never disable everyone."""
    entries = await ldap.entries()
    present = {
        entry.dn.lower(): (entry.address, entry.display_name, entry.aliases) for entry in entries
    }

    def write(ctx: WriteContext) -> SyncReport:
        return directory_accounts.sync(ctx, source=SOURCE, present=present)

    report = await database.write(write)
    log.info(
        "directory sync: %d accounts seen, %d refreshed, %d disabled, %d enabled",
        len(entries),
        report.refreshed,
        report.disabled,
        report.enabled,
    )
    return report


def directory_from_settings(settings: Settings) -> LdapDirectory | None:
    """The directory of ``[ldap]`` when ``[identity] source = "ldap"``, else None."""
    if settings.identity.source != SOURCE:
        return None
    return LdapDirectory(settings.ldap)
