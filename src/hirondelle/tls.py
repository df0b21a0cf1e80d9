"""TLS for every listener and outgoing connection: the one place where ``ssl`` is configured.

Server side (RFC 8996: no TLS 1.0/1.1; RFC 9325 recommendations): TLS 1.2 minimum (1.3 if
configured), TLS 1.2 limited to forward-secret AEAD suites (ECDHE with AES-GCM or
ChaCha20-Poly1305), no compression (CRIME), no renegotiation, the server's cipher order,
no stateless session tickets (the ticket key would live as long as the process; sessions
are resumed from the server's cache instead). TLS 1.3 suites are OpenSSL's defaults,
which are all AEAD.

Also here: the self-signed certificate that ``hirondelle init`` generates, the certificate
summary used by ``hirondelle doctor``, and :class:`ReloadableServerContext`, which lets a
running server pick up renewed certificate files on SIGHUP without closing listeners.
"""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hirondelle.config import Settings, TLSVersion

__all__ = [
    "TLS12_CIPHERS",
    "CertificateInfo",
    "ReloadableServerContext",
    "TLSVersion",
    "certificate_info",
    "client_context",
    "generate_self_signed",
    "server_context",
    "server_context_from_settings",
]

#: OpenSSL cipher string for TLS 1.2: ECDHE key exchange with an AEAD cipher, nothing else.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP:!DSS"

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _harden(context: ssl.SSLContext, minimum_version: TLSVersion) -> None:
    try:
        context.minimum_version = _VERSIONS[minimum_version]
    except KeyError:
        raise ValueError(f'unknown TLS version "{minimum_version}": use "1.2" or "1.3"') from None
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION


def server_context(
    certificate: Path | str,
    key: Path | str,
    *,
    minimum_version: TLSVersion = "1.2",
    alpn_protocols: Sequence[str] = (),
) -> ssl.SSLContext:
    """A server context for the PEM ``certificate`` (chain) and ``key`` files.

    ``alpn_protocols`` lists the ALPN names this listener speaks, in preference order
    (``"imap"``, ``"pop3"``, ``"smtp"``, ``"h2"``, ``"http/1.1"``; RFC 7301). Raises
    :class:`OSError` for unreadable files and :class:`ssl.SSLError` for bad PEM data or a
    key that does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context, minimum_version)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE | ssl.OP_NO_TICKET
    context.load_cert_chain(certfile=str(certificate), keyfile=str(key))
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))
    return context


def server_context_from_settings(
    settings: Settings, *, alpn_protocols: Sequence[str] = ()
) -> ssl.SSLContext:
    """:func:`server_context` for the configured certificate, key and minimum version."""
    return server_context(
        settings.certificate_path(),
        settings.key_path(),
        minimum_version=settings.tls.minimum_version,
        alpn_protocols=alpn_protocols,
    )


def client_context(
    *,
    verify: bool = True,
    cafile: Path | str | None = None,
    minimum_version: TLSVersion = "1.2",
) -> ssl.SSLContext:
    """A client context: the system's trusted roots (or ``cafile``) and host name checks.

    ``verify=False`` accepts any certificate; it is for opportunistic STARTTLS to other
    mail servers (RFC 7435), never for anything that sends a password.
    """
    context = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
    _harden(context, minimum_version)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ReloadableServerContext:
    """A server context whose certificate and key can be reloaded from their files.

    Listeners are started once with :attr:`context`; :meth:`reload` (on SIGHUP) builds a
    fresh context from the files, and every handshake from then on uses it: the stable
    front context's SNI callback switches each connection to the newest context.
    Connections already open keep their certificate. A failed reload raises and leaves
    the current context in service. The minimum version and ALPN are fixed at creation.
    """

    def __init__(
        self,
        certificate: Path | str,
        key: Path | str,
        *,
        minimum_version: TLSVersion = "1.2",
        alpn_protocols: Sequence[str] = (),
    ) -> None:
        self._certificate = Path(certificate)
        self._key = Path(key)
        self._minimum_version: TLSVersion = minimum_version
        self._alpn_protocols = tuple(alpn_protocols)
        self._current = self._build()
        self._front = self._build()
        self._front.sni_callback = self._switch

    @classmethod
    def from_settings(
        cls, settings: Settings, *, alpn_protocols: Sequence[str] = ()
    ) -> ReloadableServerContext:
        """A reloadable context for the configured files and minimum version."""
        return cls(
            settings.certificate_path(),
            settings.key_path(),
            minimum_version=settings.tls.minimum_version,
            alpn_protocols=alpn_protocols,
        )

    def _build(self) -> ssl.SSLContext:
        return server_context(
            self._certificate,
            self._key,
            minimum_version=self._minimum_version,
            alpn_protocols=self._alpn_protocols,
        )

    def _switch(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: object
    ) -> None:
        connection.context = self._current

    @property
    def context(self) -> ssl.SSLContext:
        """The context to give to ``asyncio.start_server(ssl=...)`` or ``wrap_socket``."""
        return self._front

    def reload(self) -> None:
        """Rebuild from the files; on error (OSError, ssl.SSLError) keep the current one."""
        self._current = self._build()


# --------------------------------------------------------------------------- certificates


def _write_atomically(path: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to a temporary file next to ``path``, fsynced; return its name."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def generate_self_signed(
    cert_path: Path, key_path: Path, *, hostname: str, days: int = 825
) -> None:
    """Write a self-signed EC P-256 certificate and its key (mode 0600), atomically.

    The certificate names ``hostname``, ``localhost``, 127.0.0.1 and ::1 (subjectAltName)
    and is valid from one hour ago for ``days`` days (825 is the longest Apple platforms
    accept). Both files are written to temporaries, fsynced, then renamed over the old
    ones, so a crash never leaves a truncated file.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hirondelle (self-signed)")]
    if len(hostname) <= 64:  # the commonName upper bound (RFC 5280 appendix A)
        attributes.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, hostname))
    name = x509.Name(attributes)
    dns_names = dict.fromkeys([hostname, "localhost"])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(dns) for dns in dns_names]
                + [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)

    cert_path, key_path = Path(cert_path), Path(key_path)
    for directory in {cert_path.parent, key_path.parent}:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_temporary = _write_atomically(key_path, key_pem, 0o600)
    try:
        cert_temporary = _write_atomically(cert_path, cert_pem, 0o644)
    except BaseException:
        key_temporary.unlink(missing_ok=True)
        raise
    os.replace(key_temporary, key_path)
    os.replace(cert_temporary, cert_path)
    for directory in {cert_path.parent, key_path.parent}:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@dataclass(frozen=True)
class CertificateInfo:
    """What ``hirondelle doctor`` shows about a certificate.

    ``sans`` holds the subjectAltName DNS names and IP addresses as plain text; times are
    timezone-aware UTC; ``fingerprint_sha256`` is upper-case hex pairs joined by colons.
    """

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint_sha256: str

    @property
    def self_signed(self) -> bool:
        """Whether the issuer is the subject (no certificate authority vouches for it)."""
        return self.subject == self.issuer


def certificate_info(path: Path | str) -> CertificateInfo:
    """Summarise the first (leaf) certificate of a PEM file.

    Raises :class:`OSError` if the file cannot be read and :class:`ValueError` if it holds
    no PEM certificate.
    """
    certificate = x509.load_pem_x509_certificates(Path(path).read_bytes())[0]
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        sans: tuple[str, ...] = ()
    else:
        names = extension.value
        sans = tuple(names.get_values_for_type(x509.DNSName)) + tuple(
            str(address) for address in names.get_values_for_type(x509.IPAddress)
        )
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        sans=sans,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=":".join(
            fingerprint[index : index + 2] for index in range(0, len(fingerprint), 2)
        ),
    )


# asyncio's TLS transport reads into a 256 KiB buffer per connection
# (asyncio.sslproto.SSLProtocol.max_size), which alone would put 2,000 idle IMAP clients
# at about 600 MB (measured: 683 MB RSS; 204 MB with 16 KiB). A TLS record carries at
# most 16 KiB of data, so a larger read buffer buys nothing; a smaller one only makes a
# large record arrive in several reads (OpenSSL keeps the rest), which costs little on
# what clients send (commands, APPEND, DATA, PUT) and saves 12 KiB per idle connection.
TLS_READ_BUFFER = 4 * 1024


def limit_read_buffers() -> None:
    """Lower asyncio's per-connection TLS read buffer to one TLS record, for every TLS
    listener of the process (the node calls it once at start)."""
    if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
