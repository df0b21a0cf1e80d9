"""The TLS policy on every listener of a running node, checked with ``openssl s_client``
(implicit TLS: imaps, pop3s, submissions, https; STARTTLS: imap, pop3, submission,
smtp): TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted, TLS 1.2 only with forward-secret
AEAD ciphers; the certificate reloaded on SIGHUP; and no authentication on a plain-text
port before STARTTLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import re
import signal
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hirondelle import tls
from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.services import Services

PASSWORD = "correct horse battery"
ALICE = "alice@example.test"

# listener -> the s_client -starttls protocol (None: implicit TLS)
LISTENERS = {
    "imaps": None,
    "pop3s": None,
    "submissions": None,
    "https": None,
    "imap": "imap",
    "pop3": "pop3",
    "submission": "smtp",
    "smtp": "smtp",
}
NEGOTIATED = re.compile(rb"New, (TLSv1(?:\.\d)?), Cipher is (\S+)")


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[Node]:
    tls.generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="localhost")
    listen = ListenSettings.model_validate(dict.fromkeys(LISTENERS, "127.0.0.1:0"))
    running = Node(settings.model_copy(update={"listen": listen}))
    await running.start()
    try:
        assert running.services is not None
        await add_alice(running.services)
        yield running
    finally:
        await running.stop()


async def add_alice(services: Services) -> None:
    await services.accounts.add_domain("example.test")
    await services.accounts.add_account(ALICE, password=PASSWORD)
    await services.accounts.update_account(
        ALICE, switches={"imap": True, "pop3": True, "smtp": True, "dav": True, "web": True}
    )


def port(node: Node, name: str) -> int:
    return next(listener.port for listener in node.listeners if listener.name == name)


@dataclass
class Handshake:
    ok: bool
    version: str
    cipher: str
    certificate: str
    output: str


async def s_client(node: Node, name: str, *options: str, sni: bool = False) -> Handshake:
    """``openssl s_client`` against listener ``name`` (STARTTLS where the listener
    starts in plain text); stdin is empty, so it closes after the handshake."""
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port(node, name)}"]
    command += ["-servername", "localhost"] if sni else ["-noservername"]
    if LISTENERS[name] is not None:
        command += ["-starttls", str(LISTENERS[name])]
    command += ["-showcerts", *options]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    match = NEGOTIATED.search(output)
    version = match.group(1).decode() if match else ""
    cipher = match.group(2).decode() if match else ""
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", output, re.S)
    return Handshake(
        ok=process.returncode == 0 and bool(match) and cipher != "(NONE)",
        version=version,
        cipher=cipher,
        certificate=pem.group(0).decode() if pem else "",
        output=output.decode(errors="replace"),
    )


def cannot_offer(handshake: Handshake) -> bool:
    """This OpenSSL build refuses to even offer the old protocol (then nothing is
    tested about the server)."""
    return "no protocols available" in handshake.output or "no ciphers available" in (
        handshake.output
    )


async def test_tls_10_and_11_are_refused_everywhere(node: Node) -> None:
    for name in LISTENERS:
        for version in ("-tls1", "-tls1_1"):
            result = await s_client(node, name, version, "-cipher", "DEFAULT:@SECLEVEL=0")
            if cannot_offer(result):
                pytest.skip(f"this OpenSSL cannot offer {version}: {result.output[-300:]}")
            assert not result.ok, (name, version, result.output)
            # Either the server's protocol_version alert or, where asyncio closes the
            # connection before flushing that alert, the end of the stream.
            assert re.search(
                r"unsupported protocol|protocol version|wrong version|unexpected eof",
                result.output,
                re.I,
            ), (name, version, result.output)
            assert "Cipher is (NONE)" in result.output, (name, version, result.output)


async def test_tls_12_and_13_are_accepted_everywhere(node: Node) -> None:
    for name in LISTENERS:
        result = await s_client(node, name, "-tls1_3")
        assert result.ok and result.version == "TLSv1.3", (name, result.output)
        result = await s_client(node, name, "-tls1_2")
        assert result.ok and result.version == "TLSv1.2", (name, result.output)
        assert result.cipher.startswith("ECDHE-"), (name, result.cipher)
        assert "GCM" in result.cipher or "CHACHA20" in result.cipher, (name, result.cipher)
        # Without a version option, the newest one.
        result = await s_client(node, name, sni=True)
        assert result.version == "TLSv1.3", (name, result.output)


async def test_weak_tls_12_ciphers_are_refused_everywhere(node: Node) -> None:
    """No RSA key exchange (no forward secrecy), no CBC."""
    for name in LISTENERS:
        for cipher in ("AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA", "AES256-SHA"):
            result = await s_client(node, name, "-tls1_2", "-cipher", cipher)
            assert not result.ok, (name, cipher, result.output)


# --------------------------------------------------------------------------- SIGHUP


async def tls_imap_session(node: Node) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = tls.client_context(verify=False)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port(node, "imaps"), ssl=context, server_hostname="localhost"
    )
    assert (await reader.readline()).startswith(b"* OK")
    return reader, writer


async def served_certificate(node: Node, name: str = "imaps") -> str:
    result = await s_client(node, name)
    assert result.ok, result.output
    return result.certificate.strip()


async def test_sighup_reloads_the_certificate(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    settings = node.settings
    running = asyncio.create_task(node.run_until_signalled())
    await asyncio.sleep(0)  # let it install its signal handlers
    try:
        before = await served_certificate(node)
        assert before == settings.certificate_path().read_text().strip()
        reader, writer = await tls_imap_session(node)

        tls.generate_self_signed(
            settings.certificate_path(), settings.key_path(), hostname="renewed.example.test"
        )
        renewed = settings.certificate_path().read_text().strip()
        assert renewed != before
        assert await served_certificate(node) == before  # nothing changes before SIGHUP
        with caplog.at_level(logging.INFO, logger="hirondelle.node"):
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.1)
        assert "certificate reloaded" in caplog.text
        for name in LISTENERS:
            assert await served_certificate(node, name) == renewed, name
        # The connection opened before goes on, with its certificate.
        writer.write(b"a NOOP\r\n")
        await writer.drain()
        assert await reader.readline() == b"a OK NOOP completed\r\n"
        ssl_object = writer.get_extra_info("ssl_object")
        old_der = ssl_object.getpeercert(binary_form=True)
        assert ssl.DER_cert_to_PEM_cert(old_der).strip() == before

        # A broken key: refused with a log line, the renewed certificate stays.
        settings.key_path().write_text("-----BEGIN PRIVATE KEY-----\nbroken\n")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hirondelle.node"):
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.1)
        assert "cannot be used" in caplog.text and "stays in service" in caplog.text
        assert await served_certificate(node) == renewed
        writer.close()
    finally:
        node._stopping.set()
        with contextlib.suppress(Exception):
            await running


# --------------------------------------------------------------------------- plain text


async def plain(node: Node, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port(node, name))


async def smtp_reply(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while True:
        line = await reader.readline()
        lines.append(line.rstrip(b"\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines


async def test_no_authentication_before_starttls_on_imap(node: Node) -> None:
    reader, writer = await plain(node, "imap")
    try:
        greeting = await reader.readline()
        assert greeting.startswith(b"* OK")
        writer.write(b"a CAPABILITY\r\n")
        capability = await reader.readline()
        assert await reader.readline() == b"a OK CAPABILITY completed\r\n"
        assert b"LOGINDISABLED" in capability and b"STARTTLS" in capability
        assert b"AUTH=" not in capability
        writer.write(f'b LOGIN {ALICE} "{PASSWORD}"\r\n'.encode())
        assert await reader.readline() == b"b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())
        writer.write(b"c AUTHENTICATE PLAIN " + token + b"\r\n")
        assert await reader.readline() == b"c NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"
        # Still not authenticated: a command that needs a login is refused.
        writer.write(b"d SELECT INBOX\r\n")
        assert (await reader.readline()).startswith(b"d BAD SELECT is not allowed now")
    finally:
        writer.close()


async def test_no_authentication_before_stls_on_pop3(node: Node) -> None:
    reader, writer = await plain(node, "pop3")
    try:
        assert (await reader.readline()).startswith(b"+OK")
        writer.write(b"CAPA\r\n")
        capabilities = []
        assert (await reader.readline()).startswith(b"+OK")
        while (line := await reader.readline()) != b".\r\n":
            capabilities.append(line.strip())
        assert b"STLS" in capabilities
        assert not any(c == b"USER" or c.startswith(b"SASL") for c in capabilities)
        refusal = (
            b"-ERR [SYS/PERM] log in only after STLS (TLS is required) / "
            b"connexion seulement apres STLS (TLS est obligatoire)\r\n"
        )
        writer.write(f"USER {ALICE}\r\n".encode())
        assert await reader.readline() == refusal
        writer.write(f"PASS {PASSWORD}\r\n".encode())
        assert await reader.readline() == refusal
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())
        writer.write(b"AUTH PLAIN " + token + b"\r\n")
        assert await reader.readline() == refusal
        writer.write(b"STAT\r\n")
        assert await reader.readline() == b"-ERR log in first (USER and PASS, or AUTH)\r\n"
    finally:
        writer.close()


@pytest.mark.parametrize("name", ["submission", "smtp"])
async def test_no_authentication_before_starttls_on_smtp(node: Node, name: str) -> None:
    reader, writer = await plain(node, name)
    try:
        assert (await smtp_reply(reader))[0].startswith(b"220")
        writer.write(b"EHLO client.example\r\n")
        ehlo = await smtp_reply(reader)
        assert ehlo[0].startswith(b"250")
        assert any(b"STARTTLS" in line for line in ehlo)
        assert not any(b"AUTH" in line for line in ehlo), ehlo
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())
        writer.write(b"AUTH PLAIN " + token + b"\r\n")
        expected = {
            "submission": b"530 5.7.0 Must issue a STARTTLS command first",
            "smtp": b"502 5.5.1 AUTH is not available on this port",  # MX: never AUTH
        }
        assert await smtp_reply(reader) == [expected[name]]
    finally:
        writer.close()


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (no packet is sent)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # routing only: UDP connect sends nothing
        address = str(probe.getsockname()[0])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


async def test_no_password_over_plain_http_off_loopback(settings: Settings) -> None:
    """DAV and JMAP Basic credentials and the webmail's sign-in are refused on plain HTTP
    unless the socket is loopback (then the traffic never leaves the machine)."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    listen = ListenSettings.model_validate({"http": f"{address}:0"})
    node = Node(settings.model_copy(update={"listen": listen}))
    await node.start()
    try:
        assert node.services is not None
        await add_alice(node.services)
        base = f"http://{address}:{port(node, 'http')}"
        async with httpx.AsyncClient(auth=(ALICE, PASSWORD)) as client:
            for method, path in (
                ("PROPFIND", "/dav/"),
                ("GET", "/.well-known/jmap"),
                ("GET", "/jmap/session"),
            ):
                response = await client.request(method, base + path)
                assert response.status_code == 403, (path, response.text)
            response = await client.post(
                base + "/api/session",
                json={"address": ALICE, "password": PASSWORD, "staySignedIn": False},
                auth=None,
            )
            assert response.status_code == 403, response.text
            assert "set-cookie" not in response.headers
        # Nothing reached the gate: no attempt was even audited.
        assert await node.services.authenticator.attempts(address=ALICE) == []
    finally:
        await node.stop()


def test_sighup_to_hirondelle_serve(tmp_path: Path) -> None:
    """The real command: `hirondelle serve`, the files replaced, `kill -HUP`: the log
    says so and the next connection gets the new certificate; the process keeps
    running, and SIGTERM still stops it."""
    from tests.cli.conftest import ServerProcess, run_cli, set_listen

    data = tmp_path / "data"
    run_cli("--data", data, "init", "--domain", "example.test", "--hostname", "localhost")
    set_listen(data, imaps="127.0.0.1:0")
    certificate, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"

    def served(port: int) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            context = tls.client_context(verify=False)
            with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
                der = wrapped.getpeercert(binary_form=True)
        assert der is not None
        return ssl.DER_cert_to_PEM_cert(der).strip()

    with ServerProcess("--data", data, "serve") as server:
        port = server.wait_listening("imaps")["imaps"][1]
        before = served(port)
        assert before == certificate.read_text().strip()
        tls.generate_self_signed(certificate, key, hostname="renewed.example.test")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any("certificate reloaded" in line for line in server.stderr_lines):
            assert time.monotonic() < deadline, server.describe()
            time.sleep(0.05)
        assert served(port) == certificate.read_text().strip() != before
        assert server.stop() == 0
    assert "Traceback" not in "\n".join(server.stderr_lines)
