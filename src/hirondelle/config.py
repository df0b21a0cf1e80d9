"""Hirondelle's configuration: one typed schema, its loader, and the documents made from it.

The configuration lives in ``DATA/hirondelle.toml`` (TOML 1.0, read with :mod:`tomllib`).
Any key can be overridden by an environment variable ``HIRONDELLE_<SECTION>_<KEY>``, e.g.
``HIRONDELLE_LISTEN_IMAP=127.0.0.1:1143``; the variable's text is parsed as the key's type
(whole numbers, booleans ``on/off/true/false/yes/no/1/0``, sizes such as ``50M``, and for a
key that may be unset, an empty value unsets it). Variables whose section is unknown are
ignored (``HIRONDELLE_DATA`` belongs to the command line), unless the section is a near
miss of a real one, which is reported as a typo.

Every field carries its documentation (``Field(description=...)``); the reference page
``docs/configuration.md`` and the commented sample written by ``hirondelle init`` are
generated from this schema (:func:`config_reference_markdown`, :func:`render_config`), so
the documentation cannot drift from the code.

Errors are collected, not raised one at a time, and reported in one :class:`ConfigError`
whose message names the file and line (or the environment variable) of each problem:

    hirondelle.toml line 7: [listen] imap = "127.0.0.1:99999": port must be between 0 and 65535
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import json
import os
import re
import textwrap
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "SECTIONS",
    "ConfigError",
    "Endpoint",
    "IdentitySettings",
    "LdapSettings",
    "LimitsSettings",
    "ListenSettings",
    "ServerSettings",
    "Settings",
    "SmtpSettings",
    "StoreSettings",
    "TLSSettings",
    "TLSVersion",
    "config_reference_markdown",
    "load_settings",
    "parse_size",
    "render_config",
    "sample_config",
]

CONFIG_FILE_NAME = "hirondelle.toml"
ENV_PREFIX = "HIRONDELLE_"

TLSVersion = Literal["1.2", "1.3"]


class ConfigError(Exception):
    """The configuration cannot be used; ``str(error)`` is ready to print, one problem a line."""


# --------------------------------------------------------------------------- value types

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_RE = re.compile(r"^\s*([0-9]+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Parse a size in bytes: ``52428800``, ``"512K"``, ``"50M"``, ``"2G"``, ``"1T"``.

    Units are binary (``"1K"`` is 1024) and case-insensitive; ``"50MB"`` and ``"50MiB"``
    are accepted too. Raises :class:`ValueError` with a message naming the bad input.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}: expected a number of bytes or a text like '50M'")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text}: a size cannot be negative")
        return text
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(
            f"invalid size {text!r}: expected a whole number with an optional unit "
            "K, M, G or T, e.g. '50M'"
        )
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def _format_size(size: int) -> str:
    """The shortest exact spelling of ``size``: 52428800 -> ``"50M"``."""
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_UNITS[unit]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_NUMERIC_HOST_RE = re.compile(r"^[0-9.]+$")


def _check_host_name(text: str) -> str:
    """Validate a DNS host name (IDNA names become A-labels); return it in lower case."""
    name = text.strip()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f'"{text}" is not a valid host name') from None
    if _NUMERIC_HOST_RE.match(name):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ValueError(f'"{text}" is not a valid IPv4 address') from None
        return name
    if not _HOSTNAME_RE.match(name):
        raise ValueError(f'"{text}" is not a valid host name')
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class Endpoint:
    """An address to listen on, written ``"host:port"`` (``"[::1]:143"`` for IPv6).

    Port 0 asks the system for any free port (tests use it).
    """

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Parse ``"host:port"`` or ``"[ipv6]:port"``; :class:`ValueError` says what is wrong."""
        text = text.strip()
        example = 'e.g. "0.0.0.0:143" or "[::1]:143"'
        if text.startswith("["):
            close = text.find("]")
            if close < 0:
                raise ValueError(f'missing "]" after the IPv6 address, {example}')
            host, rest = text[1:close], text[close + 1 :]
            if not rest.startswith(":"):
                raise ValueError(f'expected "[address]:port", {example}')
            port_text = rest[1:]
            try:
                host = str(ipaddress.IPv6Address(host))
            except ValueError:
                raise ValueError(f'"{host}" is not an IPv6 address') from None
        else:
            host, separator, port_text = text.rpartition(":")
            if not separator:
                raise ValueError(f'expected "host:port", {example}')
            if ":" in host:
                raise ValueError(f"put an IPv6 address in brackets, {example}")
            if not host:
                raise ValueError(f"missing host before the port, {example}")
            host = _check_host_name(host)
        if not re.fullmatch(r"[0-9]+", port_text):
            raise ValueError(f'port "{port_text}" is not a number')
        port = int(port_text)
        if port > 65535:
            raise ValueError("port must be between 0 and 65535")
        return cls(host, port)

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class _Kind:
    """Annotation marker naming a value's kind for the generated documentation."""

    def __init__(self, name: str) -> None:
        self.name = name


def _validate_endpoint(value: object) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a string "host:port", e.g. "0.0.0.0:143"')
    return Endpoint.parse(value)


def _validate_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('must be a number of bytes or a size such as "50M"')
    try:
        size = parse_size(value)
    except ValueError:
        raise ValueError(
            'expected a whole number with an optional unit K, M, G or T, e.g. "50M"'
        ) from None
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


EndpointValue = Annotated[
    Endpoint,
    PlainValidator(_validate_endpoint),
    PlainSerializer(str, return_type=str),
    _Kind("host:port"),
]
Size = Annotated[int, PlainValidator(_validate_size), _Kind("size")]
Count = Annotated[int, Strict()]

# --------------------------------------------------------------------------- the schema


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Who this server is."""

    hostname: str = Field(
        default="localhost",
        description=(
            "The fully qualified host name of this server, as clients and other mail "
            "servers reach it. It names the server in SMTP greetings and is the name "
            "the TLS certificate must carry. `hirondelle init` always writes it."
        ),
        examples=["mail.example.org"],
    )
    default_domain: str | None = Field(
        default=None,
        description=(
            "The mail domain used when a user signs in with a bare name (`alice` means "
            "`alice@DOMAIN`). Not set: users sign in with their full address."
        ),
        examples=["example.org"],
    )
    webapp: str = Field(
        default="",
        description=(
            "The directory of the built webmail (what `npm run build` writes to "
            "`webapp/dist`). Empty: the one built in the source tree, if any; without a "
            "built webmail, `/` shows the status page."
        ),
        examples=["/usr/share/hirondelle/webapp"],
    )

    public_url: str | None = Field(
        default=None,
        description=(
            "The address users open the webmail at, scheme and host (and port) only. "
            "Password-reset links start with it, and it is the WebAuthn origin (security "
            "keys and passkeys are bound to its host name). Not set: `https://HOSTNAME`."
        ),
        examples=["https://mail.example.org"],
    )

    parse_processes: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description=(
            "How many worker processes parse incoming messages (SMTP, LMTP, IMAP APPEND, "
            "JMAP import). Parsing is CPU work that, inside the server process, would "
            "compete with every connection for the one Python interpreter lock. 0: parse "
            "on threads of the server process. Not set: one per CPU, at most 4 (0 on a "
            "one-CPU machine)."
        ),
        examples=[2],
    )

    @field_validator("hostname", "default_domain")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_host_name(value)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{value!r}: give the scheme and host only, no path")
        return f"{parts.scheme}://{parts.netloc}"

    def web_url(self) -> str:
        """Where users reach the webmail: ``public_url`` or ``https://hostname``."""
        return self.public_url or f"https://{self.hostname}"


# The standard ports of each listener: the examples of the configuration reference and
# what `hirondelle init` writes.
STANDARD_LISTEN = {
    "smtp": "0.0.0.0:25",
    "submission": "0.0.0.0:587",
    "submissions": "0.0.0.0:465",
    "lmtp": "127.0.0.1:24",
    "imap": "0.0.0.0:143",
    "imaps": "0.0.0.0:993",
    "pop3": "0.0.0.0:110",
    "pop3s": "0.0.0.0:995",
    "http": "0.0.0.0:80",
    "https": "0.0.0.0:443",
}


def _listener(description: str, name: str) -> Any:
    return Field(
        None,
        description=description + " Not set: this listener is off.",
        examples=[STANDARD_LISTEN[name]],
    )


class ListenSettings(_Section):
    """Where each protocol listens, as `"host:port"`; a key left out turns its listener off.

    Use `"[::]:port"` to listen on every IPv6 (and, on most systems, IPv4) address, and
    port 0 for any free port.
    """

    smtp: EndpointValue | None = _listener(
        "SMTP from other mail servers (RFC 5321), usually port 25; STARTTLS is offered.",
        "smtp",
    )
    submission: EndpointValue | None = _listener(
        "Mail submission by users' clients with STARTTLS (RFC 6409), usually port 587.",
        "submission",
    )
    submissions: EndpointValue | None = _listener(
        "Mail submission over implicit TLS (RFC 8314), usually port 465.", "submissions"
    )
    lmtp: EndpointValue | None = _listener(
        "LMTP (RFC 2033) for delivery from a local mail transfer agent; keep it on a "
        "loopback or private address.",
        "lmtp",
    )
    imap: EndpointValue | None = _listener(
        "IMAP (RFC 9051) with STARTTLS, usually port 143.", "imap"
    )
    imaps: EndpointValue | None = _listener(
        "IMAP over implicit TLS (RFC 8314), usually port 993.", "imaps"
    )
    pop3: EndpointValue | None = _listener(
        "POP3 (RFC 1939) with STLS (RFC 2595), usually port 110.", "pop3"
    )
    pop3s: EndpointValue | None = _listener(
        "POP3 over implicit TLS (RFC 8314), usually port 995.", "pop3s"
    )
    http: EndpointValue | None = _listener(
        "Plain HTTP: webmail, JMAP, CalDAV and CardDAV. Put it behind a TLS-terminating "
        "proxy, or use it only to redirect to https.",
        "http",
    )
    https: EndpointValue | None = _listener(
        "HTTPS: webmail, JMAP (RFC 8620), CalDAV (RFC 4791), CardDAV (RFC 6352) and "
        "autoconfiguration, usually port 443.",
        "https",
    )

    @model_validator(mode="after")
    def _no_shared_endpoint(self) -> ListenSettings:
        seen: dict[Endpoint, str] = {}
        for name, endpoint in self.enabled().items():
            if endpoint.port != 0 and endpoint in seen:
                raise ValueError(f'{seen[endpoint]} and {name} both use "{endpoint}"')
            seen.setdefault(endpoint, name)
        return self

    def enabled(self) -> dict[str, Endpoint]:
        """The listeners that are on, name -> endpoint, in the schema's order."""
        result: dict[str, Endpoint] = {}
        for name in type(self).model_fields:
            endpoint = getattr(self, name)
            if endpoint is not None:
                result[name] = endpoint
        return result


class StoreSettings(_Section):
    """Where mail, calendars and contacts are kept."""

    database: str = Field(
        default="",
        description=(
            "The metadata database, as a SQLAlchemy URL: `sqlite:///path/to/file` (a "
            "relative path is under the data directory) or `postgresql://user@host/db` "
            "(`postgres://` is accepted; both use the psycopg driver). Empty: the SQLite "
            "file `DATA/hirondelle.sqlite3`."
        ),
        examples=["postgresql://hirondelle@localhost/hirondelle"],
    )
    blobs: str = Field(
        default="",
        description=(
            "The directory that holds message, event and contact contents. A relative "
            "path is under the data directory. Empty: `DATA/blobs`."
        ),
        examples=["/srv/hirondelle/blobs"],
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description=(
            "SQLite's `synchronous` setting. `full` survives a power loss without losing "
            "a committed change; `normal` is faster but may lose the last transactions "
            "(never corrupts). Ignored with PostgreSQL."
        ),
    )

    @field_validator("database")
    @classmethod
    def _normalise_database(cls, value: str) -> str:
        url = value.strip()
        if not url:
            return ""
        scheme, separator, rest = url.partition("://")
        if not separator:
            raise ValueError(
                'expected a URL such as "postgresql://user@host/db" or '
                '"sqlite:///path/to/file.sqlite3", or "" for the built-in SQLite file'
            )
        scheme = scheme.lower()
        if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
            return f"postgresql+psycopg://{rest}"
        if scheme in ("sqlite", "sqlite+pysqlite"):
            return f"{scheme}://{rest}"
        raise ValueError(f'unsupported database "{scheme}": use sqlite:/// or postgresql://')


class TLSSettings(_Section):
    """The certificate for every TLS listener and STARTTLS.

    `hirondelle init` generates a self-signed certificate; in production point these at
    real files (e.g. from Let's Encrypt). After replacing the files, send SIGHUP to reload.
    """

    certificate: str = Field(
        default="",
        description=(
            "PEM file with the certificate followed by its intermediate certificates. A "
            "relative path is under the data directory. Empty: `DATA/tls/cert.pem`."
        ),
        examples=["/etc/letsencrypt/live/mail.example.org/fullchain.pem"],
    )
    key: str = Field(
        default="",
        description=(
            "PEM file with the certificate's private key (unencrypted; keep it mode 0600). "
            "A relative path is under the data directory. Empty: `DATA/tls/key.pem`."
        ),
        examples=["/etc/letsencrypt/live/mail.example.org/privkey.pem"],
    )
    minimum_version: TLSVersion = Field(
        default="1.2",
        description=(
            'The oldest TLS version accepted, "1.2" or "1.3". TLS 1.2 is limited to '
            "forward-secret AEAD ciphers (ECDHE with AES-GCM or ChaCha20-Poly1305)."
        ),
    )

    @field_validator("minimum_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # `minimum_version = 1.3` (a TOML float) is a natural slip; take it as meant.
        if isinstance(value, float) and value in (1.2, 1.3):
            return str(value)
        return value


class LimitsSettings(_Section):
    """Limits that protect the server from oversized or abusive input."""

    max_message_size: Size = Field(
        default=50 * 1024**2,
        description=(
            "The largest message accepted by SMTP, IMAP APPEND and JMAP upload, in bytes "
            'or with a unit ("512K", "50M", "2G"). Advertised in the SMTP SIZE extension '
            "(RFC 1870)."
        ),
    )
    max_recipients: Count = Field(
        default=100,
        ge=1,
        description="The most recipients one SMTP transaction may name (RFC 5321 §4.5.3.1.8).",
    )
    imap_idle_timeout_seconds: Count = Field(
        default=1800,
        ge=60,
        description=(
            "How long an idle IMAP connection is kept, in seconds. RFC 9051 §5.4 asks for "
            "at least 30 minutes."
        ),
    )
    max_command_length: Count = Field(
        default=65536,
        ge=8192,
        description=(
            "The longest command line accepted by IMAP, POP3 and SMTP, in bytes, literals "
            "excluded. RFC 7162 §4 asks for at least 8192."
        ),
    )


class SmtpSettings(_Section):
    """Mail transport: the outbound queue, the smarthost, inbound checks and submission."""

    relay: EndpointValue | None = Field(
        default=None,
        description=(
            'A smarthost, `"host:port"`, that receives every outgoing message instead of '
            "the recipients' MX servers. STARTTLS is used when the relay offers it. Not "
            "set: mail goes directly to each domain's MX (RFC 5321 §5.1)."
        ),
        examples=["smtp.provider.example:587"],
    )
    relay_username: str = Field(
        default="",
        description="The user name for AUTH at the smarthost. Empty: no authentication.",
        examples=["mail@example.org"],
    )
    relay_password: str = Field(
        default="",
        description="The password for AUTH at the smarthost (sent only over TLS).",
    )
    queue_lifetime_seconds: Count = Field(
        default=5 * 86400,
        ge=60,
        description=(
            "How long an outgoing message is retried before it is returned to its sender "
            "with a delivery status notification (RFC 5321 §4.5.4.1: 4-5 days)."
        ),
    )
    delay_warning_seconds: Count = Field(
        default=4 * 3600,
        ge=60,
        description=(
            "After how long a still-undelivered message earns its sender one warning "
            "(a delayed-delivery notice, RFC 3464 action=delayed)."
        ),
    )
    retry_initial_seconds: Count = Field(
        default=300,
        ge=1,
        description=(
            "The wait before the first retry of a temporary failure; each further wait "
            "doubles, up to 4 hours (RFC 5321 §4.5.4.1)."
        ),
    )
    max_auth_failures: Count = Field(
        default=5,
        ge=1,
        description=(
            "Failed AUTH attempts after which a submission connection is closed with `421 4.7.0`."
        ),
    )
    verify_inbound: bool = Field(
        default=True,
        description=(
            "Check SPF, DKIM and DMARC of mail from other servers, record the verdicts in "
            "an Authentication-Results header (RFC 8601) and refuse DMARC `p=reject` "
            "failures."
        ),
    )


class IdentitySettings(_Section):
    """Accounts, passwords, login rate limits and the audit log."""

    password_min_length: Count = Field(
        default=10,
        ge=1,
        description="The fewest characters a new password may have.",
    )
    account_failures: Count = Field(
        default=10,
        ge=1,
        description=(
            "Failed logins to one account within `failure_window_seconds` after which the "
            "account is locked out (except from addresses it logged in from before)."
        ),
    )
    address_failures: Count = Field(
        default=30,
        ge=1,
        description=(
            "Failed logins from one remote address within `failure_window_seconds` after "
            "which that address is refused for a while, whatever account it tries."
        ),
    )
    failure_window_seconds: Count = Field(
        default=900,
        ge=1,
        description="The sliding window in which failed logins are counted.",
    )
    lockout_seconds: Count = Field(
        default=900,
        ge=1,
        description=(
            "How long the first lockout lasts; each further lockout within a day doubles "
            "it, up to `max_lockout_seconds`."
        ),
    )
    max_lockout_seconds: Count = Field(
        default=86400,
        ge=1,
        description="The longest a lockout lasts, however often it recurs.",
    )
    verification_cache_seconds: Count = Field(
        default=300,
        ge=0,
        description=(
            "How long a successful password check is remembered in memory, so that DAV and "
            "JMAP clients sending Basic credentials on every request do not pay argon2 each "
            "time; 0 turns the cache off."
        ),
    )
    audit_retention_days: Count = Field(
        default=90,
        ge=1,
        description="How long rows of the authentication audit log are kept.",
    )
    secret_key_file: str = Field(
        default="",
        description=(
            "File with the key (32 random bytes, base64) that encrypts second-factor "
            "secrets in the store (AES-256-GCM). A relative path is under the data "
            "directory. Empty: `DATA/secret.key`, created with mode 0600 at first use. "
            "Nodes sharing one database must share this key; back it up apart from the "
            "database: without it, users must set up their authenticator app again."
        ),
        examples=["/etc/hirondelle/secret.key"],
    )
    source: Literal["local", "ldap"] = Field(
        default="local",
        description=(
            'Where passwords are checked: "local" (the hashes in the store) or "ldap" (a '
            "bind to the directory of the [ldap] section; accounts are created at their "
            "first login). App passwords and second factors stay local either way."
        ),
    )


class LdapSettings(_Section):
    """The LDAP directory used when `[identity] source = "ldap"`.

    Two ways to find a user: with `user_dn_template`, the server binds directly as the DN
    it names (bind as user); otherwise it binds as `bind_dn` (or anonymously), searches
    `base_dn` with `user_filter`, then binds as the entry found (search and bind).
    """

    urls: str = Field(
        default="",
        description=(
            "One or more `ldap://` or `ldaps://` URLs, separated by spaces; the next one is "
            "tried when a server does not answer."
        ),
        examples=["ldaps://ldap1.example.org ldaps://ldap2.example.org"],
    )
    start_tls: bool = Field(
        default=False,
        description="Upgrade `ldap://` connections with StartTLS (RFC 4513 §3) before binding.",
    )
    ca_file: str = Field(
        default="",
        description=(
            "PEM file of the certificate authorities trusted for `ldaps://` and StartTLS. "
            "Empty: the system's trusted roots."
        ),
        examples=["/etc/ssl/certs/directory-ca.pem"],
    )
    bind_dn: str = Field(
        default="",
        description=(
            "The DN the server binds as to search for users and to sync. Empty: anonymous."
        ),
        examples=["cn=hirondelle,ou=services,dc=example,dc=org"],
    )
    bind_password: str = Field(
        default="",
        description="The password of `bind_dn` (or set HIRONDELLE_LDAP_BIND_PASSWORD).",
    )
    user_dn_template: str = Field(
        default="",
        description=(
            "Bind as user: the DN of the user typed as LOCAL@DOMAIN, with `{local}`, "
            "`{domain}` and `{address}` (escaped per RFC 4514). Empty: search and bind."
        ),
        examples=["uid={local},ou=people,dc=example,dc=org"],
    )
    base_dn: str = Field(
        default="",
        description=(
            "Where people are searched (the whole subtree), at login and by the sync. "
            'Required with `[identity] source = "ldap"`.'
        ),
        examples=["ou=people,dc=example,dc=org"],
    )
    user_filter: str = Field(
        default="(&(objectClass=inetOrgPerson)(mail={address}))",
        description=(
            "The search filter for the address typed at login, `{address}` escaped per "
            "RFC 4515. The sync uses it with `{address}` replaced by `*`."
        ),
    )
    mail_attribute: str = Field(
        default="mail",
        description="The attribute holding the account's address.",
    )
    name_attribute: str = Field(
        default="displayName",
        description="The attribute holding the account's display name.",
    )
    alias_attribute: str = Field(
        default="mailLocalAddress",
        description=(
            "The attribute holding further addresses of the account; each one in a local "
            "domain becomes an alias. Empty: no aliases."
        ),
    )
    timeout_seconds: Count = Field(
        default=10,
        ge=1,
        description="How long to wait for the directory to connect or answer.",
    )
    sync_interval_seconds: Count = Field(
        default=3600,
        ge=0,
        description=(
            "How often a node syncs the accounts it created from the directory (refresh "
            "names and aliases, disable accounts no longer there); 0: only "
            "`hirondelle ldap sync`."
        ),
    )


class JmapSettings(_Section):
    """JMAP (RFC 8620, 8621): the webmail's API and that of modern clients."""

    push_allow_loopback: bool = Field(
        default=False,
        description=(
            "Let push subscriptions (RFC 8620 §7.2) use an endpoint on this machine: "
            "`http://` or `https://` to a loopback address. For tests and development "
            "only. Otherwise a push URL must be `https://` and its host must resolve to "
            "public addresses only, so that no user can make the server send requests "
            "into the internal network."
        ),
    )


class Settings(BaseModel):
    """The whole configuration, plus the data directory it was loaded from.

    Build it with :func:`load_settings`; tests may build it directly, e.g.
    ``Settings(data_dir=tmp_path, listen={"imap": "127.0.0.1:0"})``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    listen: ListenSettings = Field(default_factory=ListenSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    tls: TLSSettings = Field(default_factory=TLSSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    jmap: JmapSettings = Field(default_factory=JmapSettings)
    data_dir: Path = Field(description="The data directory; set by the loader, not the file.")

    def _under_data_dir(self, configured: str, default: str) -> Path:
        path = Path(configured or default).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    def database_url(self) -> str:
        """The SQLAlchemy URL to connect to; SQLite file paths are made absolute."""
        url = self.store.database
        if not url:
            return f"sqlite:///{self.data_dir / 'hirondelle.sqlite3'}"
        scheme, _, rest = url.partition("://")
        if not scheme.startswith("sqlite") or not rest.startswith("/"):
            return url
        path, question, query = rest[1:].partition("?")
        if not path or path == ":memory:" or path.startswith("file:"):
            return url
        return f"{scheme}:///{self._under_data_dir(path, path)}{question}{query}"

    def blob_dir(self) -> Path:
        """The directory that holds blobs."""
        return self._under_data_dir(self.store.blobs, "blobs")

    def certificate_path(self) -> Path:
        """The PEM certificate (chain) file."""
        return self._under_data_dir(self.tls.certificate, "tls/cert.pem")

    def key_path(self) -> Path:
        """The PEM private key file."""
        return self._under_data_dir(self.tls.key, "tls/key.pem")

    def secret_key_path(self) -> Path:
        """The key file that encrypts second-factor secrets in the store."""
        return self._under_data_dir(self.identity.secret_key_file, "secret.key")


def _sections() -> dict[str, type[_Section]]:
    """Section name -> model, in the schema's order."""
    result: dict[str, type[_Section]] = {}
    for name, info in Settings.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, _Section):
            result[name] = info.annotation
    return result


SECTIONS = _sections()

# --------------------------------------------------------------------------- locating keys

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*"
_HEADER_RE = re.compile(rf"^[ \t]*\[\[?[ \t]*({_DOTTED_KEY})[ \t]*\]")
_ASSIGNMENT_RE = re.compile(rf"^[ \t]*({_DOTTED_KEY})[ \t]*=")
_KEY_PART_RE = re.compile(_KEY_PART)


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in _KEY_PART_RE.finditer(dotted):
        part = match.group(0)
        if part.startswith('"'):
            part = tomllib.loads(f"k = {part}")["k"]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


class _KeyLines:
    """Line numbers of tables and keys in a TOML text (tomllib does not report them).

    A line scanner, not a parser: it follows ``[table]`` headers and ``key =`` lines,
    dotted keys included, and skips multi-line strings. A key inside an inline table is
    located at the line of the table's own key.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        open_quote: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_quote is not None:
                if line.count(open_quote) % 2 == 1:
                    open_quote = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                table = _key_parts(header.group(1))
                self._lines.setdefault(table, number)
                continue
            assignment = _ASSIGNMENT_RE.match(line)
            if assignment:
                self._lines.setdefault(table + _key_parts(assignment.group(1)), number)
                value = line[assignment.end() :]
                for quote in ('"""', "'''"):
                    if value.count(quote) % 2 == 1:
                        open_quote = quote
                        break

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line of ``path``; else of its first key; else of its nearest enclosing table."""
        if path in self._lines:
            return self._lines[path]
        inside = [n for key, n in self._lines.items() if key[: len(path)] == path]
        if inside:
            return min(inside)
        for length in range(len(path) - 1, 0, -1):
            if path[:length] in self._lines:
                return self._lines[path[:length]]
        return None


# --------------------------------------------------------------------------- loading


def _toml_value(value: object) -> str | None:
    """TOML spelling of a scalar (``None`` for tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Endpoint):
        return json.dumps(str(value), ensure_ascii=False)
    return None


def _suggest(word: str, choices: typing.Iterable[str], spell: str = '"{}"') -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {spell.format(close[0])}?)" if close else ""


def _describe(error: Mapping[str, Any]) -> str:
    """A short English sentence for one pydantic error."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in context:
        return str(context["error"])
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind == "string_type":
        return "must be a string"
    if kind == "literal_error":
        return "must be one of " + str(context.get("expected", "")).replace("'", '"')
    if kind == "greater_than_equal":
        return f"must be at least {context['ge']}"
    if kind == "greater_than":
        return f"must be greater than {context['gt']}"
    if kind == "less_than_equal":
        return f"must be at most {context['le']}"
    if kind == "less_than":
        return f"must be less than {context['lt']}"
    if kind == "missing":
        return "is required"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _field_kind(info: FieldInfo) -> str:
    """``host:port``, ``size``, ``choice``, ``boolean``, ``integer`` or ``string``."""
    annotation: Any = info.annotation
    metadata: list[Any] = list(info.metadata)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata.extend(extra)
    for item in metadata:
        if isinstance(item, _Kind):
            return item.name
    if typing.get_origin(annotation) is Literal:
        return "choice"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    return "string"


def _is_optional(info: FieldInfo) -> bool:
    return type(None) in typing.get_args(info.annotation)


_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no"}


def _env_value(info: FieldInfo, text: str) -> object:
    """Parse an environment variable's text as the field's type (raises ValueError)."""
    kind = _field_kind(info)
    if text == "" and _is_optional(info):
        return None
    if kind == "boolean":
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError("must be on/off, true/false, yes/no or 1/0")
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
    return text


def _env_overrides(
    environ: Mapping[str, str],
) -> tuple[dict[str, dict[str, object]], dict[tuple[str, str], str], list[str]]:
    """Values from ``HIRONDELLE_<SECTION>_<KEY>`` variables, where each came from, errors."""
    values: dict[str, dict[str, object]] = {}
    origins: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        section, _, key = variable[len(ENV_PREFIX) :].lower().partition("_")
        text = environ[variable]
        if section not in SECTIONS:
            if difflib.get_close_matches(section, SECTIONS, n=1, cutoff=0.75) and key:
                problems.append(
                    f"environment variable {variable}: unknown section [{section}]"
                    + _suggest(section, SECTIONS, "[{}]")
                )
            continue
        fields = SECTIONS[section].model_fields
        if key not in fields:
            what = f'unknown key "{key}" in [{section}]' if key else "names no key"
            problems.append(f"environment variable {variable}: {what}" + _suggest(key, fields))
            continue
        try:
            values.setdefault(section, {})[key] = _env_value(fields[key], text)
        except ValueError as error:
            problems.append(f"environment variable {variable}={json.dumps(text)}: {error}")
            continue
        origins[(section, key)] = variable
    return values, origins, problems


def _validate(
    text: str,
    *,
    source: str,
    data_dir: Path,
    environ: Mapping[str, str],
) -> Settings:
    """Parse and validate a configuration text plus environment overrides."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if position is None:
            raise ConfigError(f"{source}: TOML syntax error: {message}") from None
        raise ConfigError(
            f"{source} line {position.group(1)}: TOML syntax error: "
            f"{message[: position.start()]} (column {position.group(2)})"
        ) from None

    lines = _KeyLines(text)
    problems: list[tuple[float, str]] = []

    def at(path: tuple[str, ...]) -> tuple[float, str]:
        line = lines.line_of(path)
        return (float("inf"), f"{source}:") if line is None else (line, f"{source} line {line}:")

    merged: dict[str, Any] = {}
    for name, value in document.items():
        order, where = at((name,))
        if name in SECTIONS and isinstance(value, dict):
            merged[name] = dict(value)
        elif name in SECTIONS:
            problems.append((order, f'{where} "{name}" must be a section [{name}], not a value'))
        elif isinstance(value, dict):
            problems.append(
                (order, f"{where} unknown section [{name}]" + _suggest(name, SECTIONS, "[{}]"))
            )
        else:
            owners = [s for s, model in SECTIONS.items() if name in model.model_fields]
            hint = f" (it belongs in [{owners[0]}])" if owners else ""
            problems.append((order, f'{where} unknown key "{name}" outside any section{hint}'))

    overrides, origins, env_problems = _env_overrides(environ)
    problems.extend((float("inf"), problem) for problem in env_problems)
    for section, values in overrides.items():
        if section in merged or section not in document:
            merged.setdefault(section, {}).update(values)

    try:
        settings = Settings.model_validate({**merged, "data_dir": data_dir})
    except ValidationError as error:
        for item in error.errors():
            loc = tuple(str(part) for part in item["loc"])
            section, key = loc[0], (loc[1] if len(loc) > 1 else None)
            if key is None:
                order, where = at((section,))
                problems.append((order, f"{where} [{section}]: {_describe(item)}"))
                continue
            if (section, key) in origins:
                variable = origins[(section, key)]
                shown = json.dumps(environ[variable], ensure_ascii=False)
                problems.append(
                    (float("inf"), f"environment variable {variable}={shown}: {_describe(item)}")
                )
                continue
            order, where = at(loc)
            if item["type"] == "extra_forbidden":
                fields = SECTIONS[section].model_fields
                problems.append(
                    (order, f'{where} unknown key "{key}" in [{section}]' + _suggest(key, fields))
                )
                continue
            value = _toml_value(item["input"])
            shown = f"{key} = {value}" if value is not None else key
            problems.append((order, f"{where} [{section}] {shown}: {_describe(item)}"))
    else:
        if not problems:
            return settings
    problems.sort(key=lambda problem: problem[0])
    raise ConfigError("\n".join(problem for _, problem in problems))


def load_settings(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Load ``data_dir/hirondelle.toml`` with ``HIRONDELLE_*`` overrides from ``environ``.

    ``environ`` defaults to :data:`os.environ`. Raises :class:`ConfigError` listing every
    problem found, each with its line or environment variable.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    path = data_dir / CONFIG_FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration at {path}; run `hirondelle --data {data_dir} init` first"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{CONFIG_FILE_NAME} line {line}: not valid UTF-8") from None
    return _validate(
        text,
        source=CONFIG_FILE_NAME,
        data_dir=data_dir,
        environ=os.environ if environ is None else environ,
    )


# --------------------------------------------------------------------------- documents


def _fields(section: str) -> Iterator[tuple[str, FieldInfo]]:
    yield from SECTIONS[section].model_fields.items()


def _spell_default(info: FieldInfo) -> str | None:
    """The TOML spelling of a field's default, or ``None`` when it has none to show."""
    default = info.get_default(call_default_factory=True)
    if default is None:
        return None
    if _field_kind(info) == "size" and isinstance(default, int):
        return json.dumps(_format_size(default))
    return _toml_value(default)


def _commented_example(info: FieldInfo) -> str | None:
    """The value shown on a commented-out line: the default, or an example when empty."""
    default = info.get_default(call_default_factory=True)
    if (default is None or default == "") and info.examples:
        return _toml_value(info.examples[0])
    return _spell_default(info)


def _comment(text: str, width: int = 88) -> list[str]:
    return textwrap.wrap(
        text.replace("`", ""),
        width=width,
        initial_indent="# ",
        subsequent_indent="# ",
        break_on_hyphens=False,
    )


def render_config(
    *,
    hostname: str,
    default_domain: str | None,
    listen: Mapping[str, str],
    database: str = "",
) -> str:
    """A commented ``hirondelle.toml`` for ``hirondelle init`` and ``hirondelle demo``.

    ``listen`` maps listener names (``"imap"``, ``"smtp"``...) to ``"host:port"``; other
    listeners appear commented out. Every other key appears commented out at its default.
    Raises :class:`ValueError` if the result would not load.
    """
    unknown = set(listen) - set(ListenSettings.model_fields)
    if unknown:
        raise ValueError(f"unknown listeners: {', '.join(sorted(unknown))}")
    chosen: dict[str, dict[str, object]] = {
        "server": {"hostname": hostname, "default_domain": default_domain},
        "listen": dict(listen),
        "store": {"database": database or None},
    }
    out = [
        "# Hirondelle configuration.",
        "#",
        "# Every key is described in docs/configuration.md. A commented-out key shows its",
        "# default (or, when the default is empty, an example). Any key can be overridden by",
        "# an environment variable HIRONDELLE_<SECTION>_<KEY>, e.g.",
        "# HIRONDELLE_LISTEN_IMAP=127.0.0.1:1143.",
    ]
    for section, model in SECTIONS.items():
        out += ["", f"[{section}]"]
        for key, info in model.model_fields.items():
            out.append("")
            out += _comment(info.description or "")
            value = chosen.get(section, {}).get(key)
            if value is not None:
                out.append(f"{key} = {_toml_value(value)}")
                continue
            shown = _commented_example(info)
            if shown is not None:
                out.append(f"# {key} = {shown}")
    text = "\n".join(out) + "\n"
    try:
        _validate(text, source="generated configuration", data_dir=Path("."), environ={})
    except ConfigError as error:
        raise ValueError(str(error)) from None
    return text


def sample_config() -> str:
    """The sample configuration shown in the documentation."""
    return render_config(
        hostname="mail.example.org",
        default_domain="example.org",
        listen={
            name: STANDARD_LISTEN[name]
            for name in ("smtp", "submission", "submissions", "imap", "imaps", "https")
        },
    )


_KIND_TEXT = {
    "host:port": '`"host:port"`',
    "size": 'size in bytes, or a string with a unit: `"512K"`, `"50M"`, `"2G"`, `"1T"`',
    "boolean": "boolean",
    "integer": "whole number",
    "string": "string",
}


def config_reference_markdown() -> str:
    """``docs/configuration.md``: the reference page generated from the schema."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from src/hirondelle/config.py by scripts/gen_config_docs.py;",
        "     do not edit by hand. -->",
        "",
        "Hirondelle reads `DATA/hirondelle.toml`, where `DATA` is the data directory given",
        "with `hirondelle --data DATA`. `hirondelle init` writes a commented one. Unknown",
        "sections and keys are errors, reported with their line and a suggestion.",
        "",
        "## Environment variables",
        "",
        "Every key can be overridden by an environment variable named",
        "`HIRONDELLE_<SECTION>_<KEY>` in upper case, e.g. `HIRONDELLE_LISTEN_IMAP=127.0.0.1:1143`",
        "or `HIRONDELLE_STORE_DATABASE=postgresql://hirondelle@db/hirondelle`. A variable",
        "wins over the file. Its text is read as the key's type: whole numbers; booleans",
        "`on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`; sizes such as `50M`. An empty",
        "value unsets a key that may be unset (`HIRONDELLE_LISTEN_POP3=` turns POP3 off).",
        "Variables whose section is not one of those below are ignored, unless the name is",
        "a near miss of a real section, which is reported.",
        "",
        "## Sections",
        "",
    ]
    for section in SECTIONS:
        out.append(f"- [`[{section}]`](#{section})")
    for section, model in SECTIONS.items():
        out += ["", f"## [{section}]", "", inspect.cleandoc(model.__doc__ or "")]
        for key, info in _fields(section):
            kind = _field_kind(info)
            if kind == "choice":
                choices = typing.get_args(info.annotation)
                type_text = "one of " + ", ".join(f'`"{choice}"`' for choice in choices)
            else:
                type_text = _KIND_TEXT[kind]
            default = _spell_default(info)
            out += [
                "",
                f"### `{key}`",
                "",
                info.description or "",
                "",
                f"- Type: {type_text}",
                f"- Default: {'not set' if default is None else f'`{default}`'}",
                f"- Environment: `{ENV_PREFIX}{section.upper()}_{key.upper()}`",
            ]
            if info.examples:
                out.append(f"- Example: `{key} = {_toml_value(info.examples[0])}`")
    out += [
        "",
        "## Sample configuration",
        "",
        "A file as `hirondelle init` writes it (which listeners are on depends on how it",
        "was asked):",
        "",
        "```toml",
        sample_config().rstrip("\n"),
        "```",
    ]
    return "\n".join(out) + "\n"
