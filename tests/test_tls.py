"""TLS contexts, the self-signed certificate, and real handshakes on loopback."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import stat
import threading
import warnings
from pathlib import Path

import pytest

from hirondelle.config import Settings
from hirondelle.tls import (
    ReloadableServerContext,
    certificate_info,
    client_context,
    generate_self_signed,
    server_context,
    server_context_from_settings,
)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate and key for mail.example.org."""
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    generate_self_signed(cert, key, hostname="mail.example.org")
    return cert, key


async def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> tuple[str | None, tuple[str, str, int] | None, bytes | None]:
    """Connect ``client`` to an asyncio TLS server on an ephemeral loopback port.

    Returns the negotiated version, cipher and the server certificate (DER) the client saw.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=server_hostname
        )
        assert await reader.readline() == b"hello\r\n"
        ssl_object = writer.get_extra_info("ssl_object")
        result = (
            ssl_object.version(),
            ssl_object.cipher(),
            ssl_object.getpeercert(binary_form=True),
        )
        writer.close()
        await writer.wait_closed()
        return result
    finally:
        listener.close()
        await listener.wait_closed()


def handshake_refused(server: ssl.SSLContext, client: ssl.SSLContext) -> BaseException:
    """Run a blocking handshake expected to fail; return the server side's exception."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        server_errors: list[BaseException] = []

        def accept() -> None:
            connection, _ = listener.accept()
            with connection:
                try:
                    with server.wrap_socket(connection, server_side=True):
                        pass
                except (ssl.SSLError, OSError) as error:
                    server_errors.append(error)

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with pytest.raises(ssl.SSLError) as caught:
                    client.wrap_socket(raw, server_hostname="localhost")
                if "NO_PROTOCOLS_AVAILABLE" in str(caught.value) or (
                    "NO_CIPHERS_AVAILABLE" in str(caught.value)
                ):
                    pytest.skip(f"this OpenSSL cannot offer the old protocol: {caught.value}")
        finally:
            thread.join(timeout=10)
        assert server_errors, "the server accepted the handshake"
        return server_errors[0]


def legacy_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers nothing newer than ``maximum``, or skip if OpenSSL refuses."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point here
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum
        context.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as error:
        pytest.skip(f"this OpenSSL cannot build a {maximum.name} client: {error}")
    return context


# --------------------------------------------------------------------------- certificate


def test_generated_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    info = certificate_info(cert)
    assert info.sans == ("mail.example.org", "localhost", "127.0.0.1", "::1")
    assert "CN=mail.example.org" in info.subject
    assert info.self_signed
    now = datetime.datetime.now(datetime.UTC)
    assert info.not_before <= now
    assert info.not_after - now > datetime.timedelta(days=824)
    assert info.not_after - info.not_before <= datetime.timedelta(days=825, hours=1)
    assert len(info.fingerprint_sha256.split(":")) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key.read_text()
    # Nothing temporary is left behind.
    assert sorted(path.name for path in cert.parent.iterdir()) == ["cert.pem", "key.pem"]


def test_regenerating_replaces_both_files(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    before = certificate_info(cert).fingerprint_sha256
    generate_self_signed(cert, key, hostname="other.example.org", days=30)
    info = certificate_info(cert)
    assert info.fingerprint_sha256 != before
    assert info.sans[0] == "other.example.org"
    assert info.not_after - info.not_before <= datetime.timedelta(days=30, hours=1)
    server_context(cert, key)  # the new key matches the new certificate


def test_certificate_info_rejects_non_pem(tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_text("not a certificate")
    with pytest.raises(ValueError):
        certificate_info(path)


# --------------------------------------------------------------------------- contexts


def test_server_context_settings(certificate: tuple[Path, Path]) -> None:
    context = server_context(*certificate)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    for option in (
        ssl.OP_NO_COMPRESSION,
        ssl.OP_NO_RENEGOTIATION,
        ssl.OP_CIPHER_SERVER_PREFERENCE,
        ssl.OP_NO_TICKET,
    ):
        assert context.options & option
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["aead"], cipher["name"]
        assert cipher["kea"] == "kx-ecdhe", cipher["name"]


def test_server_context_rejects_mismatched_key(tmp_path: Path) -> None:
    generate_self_signed(tmp_path / "a.pem", tmp_path / "a.key", hostname="a.example")
    generate_self_signed(tmp_path / "b.pem", tmp_path / "b.key", hostname="b.example")
    with pytest.raises(ssl.SSLError):
        server_context(tmp_path / "a.pem", tmp_path / "b.key")


def test_server_context_from_settings(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "tls": {"minimum_version": "1.3"}})
    generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="a.example")
    context = server_context_from_settings(settings)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_client_context_without_verification() -> None:
    context = client_context(verify=False)
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# --------------------------------------------------------------------------- handshakes


async def test_handshake_with_a_client_that_trusts_the_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    client = client_context(cafile=cert)
    client.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    for name in ("mail.example.org", "localhost", "127.0.0.1"):
        version, _, _ = await handshake(server_context(cert, key), client, name)
        assert version == "TLSv1.3"


async def test_handshake_checks_the_host_name(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await handshake(server_context(cert, key), client_context(cafile=cert), "evil.example")


async def test_tls12_client_gets_an_ecdhe_aead_cipher(certificate: tuple[Path, Path]) -> None:
    client = client_context(cafile=certificate[0])
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher, _ = await handshake(server_context(*certificate), client)
    assert version == "TLSv1.2"
    assert cipher is not None
    assert cipher[0].startswith("ECDHE-")
    assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]


async def test_alpn(certificate: tuple[Path, Path]) -> None:
    server = server_context(*certificate, alpn_protocols=["imap"])
    client = client_context(cafile=certificate[0])
    client.set_alpn_protocols(["imap"])
    listener_done = asyncio.Event()
    chosen: list[str | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chosen.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        writer.close()
        listener_done.set()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        await listener_done.wait()
        writer.close()
    assert chosen == ["imap"]


def test_tls11_client_is_refused(certificate: tuple[Path, Path]) -> None:
    error = handshake_refused(server_context(*certificate), legacy_client(ssl.TLSVersion.TLSv1_1))
    assert "UNSUPPORTED_PROTOCOL" in str(error) or "VERSION" in str(error).upper()


def test_tls12_client_is_refused_when_13_is_required(certificate: tuple[Path, Path]) -> None:
    server = server_context(*certificate, minimum_version="1.3")
    client = client_context(verify=False)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    error = handshake_refused(server, client)
    assert "UNSUPPORTED_PROTOCOL" in str(error) or "VERSION" in str(error).upper()


async def test_reload_serves_the_new_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    reloadable = ReloadableServerContext(cert, key)
    client = client_context(verify=False)
    _, _, first = await handshake(reloadable.context, client)
    assert first is not None

    generate_self_signed(cert, key, hostname="renewed.example.org")
    _, _, unchanged = await handshake(reloadable.context, client)
    assert unchanged == first  # nothing changes until reload()

    reloadable.reload()
    _, _, second = await handshake(reloadable.context, client)
    assert second is not None and second != first
    renewed = ssl.DER_cert_to_PEM_cert(second)
    assert renewed == cert.read_text()


async def test_failed_reload_keeps_the_current_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    reloadable = ReloadableServerContext(cert, key)
    client = client_context(verify=False)
    _, _, before = await handshake(reloadable.context, client)
    key.write_text("broken")
    with pytest.raises(ssl.SSLError):
        reloadable.reload()
    _, _, after = await handshake(reloadable.context, client)
    assert after == before
