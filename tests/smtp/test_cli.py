"""`hirondelle queue`, `hirondelle dkim` and `hirondelle dns`, run as real processes on
every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hirondelle.config import CONFIG_FILE_NAME, Settings, render_config
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.queue import OutboundQueue
from hirondelle.services import open_services
from tests.messages import simple_message

HIRONDELLE = Path(sys.executable).parent / "hirondelle"


@pytest.fixture
def data(settings: Settings) -> Path:
    text = render_config(
        hostname="mail.example.test",
        default_domain=None,
        listen={"submissions": "0.0.0.0:465", "imaps": "0.0.0.0:993"},
        database=settings.store.database,
    )
    (settings.data_dir / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
    return settings.data_dir


def hirondelle(data: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the command; its exit status must be ``expect``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HIRONDELLE_")}
    environment["COLUMNS"] = "300"
    done = subprocess.run(
        [str(HIRONDELLE), "--data", str(data), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert done.returncode == expect, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


async def queue_one(settings: Settings) -> int:
    services = open_services(settings)
    try:
        return await OutboundQueue(services.database, services.blobs).enqueue(
            simple_message(), mail_from="alice@example.test", recipients=["bob@remote.test"]
        )
    finally:
        services.close()


def test_dkim_generate_prints_an_rsa_and_an_ed25519_record(data: Path) -> None:
    output = hirondelle(data, "dkim", "generate", "example.test").stdout
    lines = output.splitlines()
    assert len(lines) == 2
    assert "._domainkey.example.test. TXT " in lines[0] and "k=rsa" in lines[0]
    assert '" "' in lines[0], "an RSA key is split into 255-octet strings"
    assert "k=ed25519" in lines[1]


async def test_dns_prints_every_record_to_publish(settings: Settings, data: Path) -> None:
    services = open_services(settings)
    try:
        await DkimService(services.database).generate("example.test", stamp="t")
    finally:
        services.close()
    lines = hirondelle(data, "dns", "example.test").stdout.splitlines()
    assert "example.test. MX 10 mail.example.test." in lines
    assert 'example.test. TXT "v=spf1 mx -all"' in lines
    assert any(line.startswith("_dmarc.example.test. TXT") for line in lines)
    assert sum("._domainkey.example.test." in line for line in lines) == 2
    assert "_submissions._tcp.example.test. SRV 0 1 465 mail.example.test." in lines
    assert "_imaps._tcp.example.test. SRV 0 1 993 mail.example.test." in lines
    assert "_pop3s._tcp.example.test. SRV 0 0 0 ." in lines, "not offered: RFC 6186 §3"


async def test_queue_list_retry_delete(settings: Settings, data: Path) -> None:
    message_id = await queue_one(settings)
    listed = hirondelle(data, "queue", "list").stdout
    assert "bob@remote.test" in listed and "alice@example.test" in listed
    assert "1 recipient(s) due now" in hirondelle(data, "queue", "retry").stdout
    removed = hirondelle(data, "queue", "delete", str(message_id)).stdout
    assert "1 recipient(s) removed" in removed
    services = open_services(settings)
    try:
        assert await OutboundQueue(services.database, services.blobs).entries() == []
    finally:
        services.close()
