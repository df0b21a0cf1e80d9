"""Nothing accepted is lost: a message answered with 250 is in the recipient's mailbox
even when the server is killed with SIGKILL right after the reply (`hirondelle serve`
as a real process; the store reopened afterwards)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import sys
from pathlib import Path

import pytest

from hirondelle.config import CONFIG_FILE_NAME, Settings, render_config
from hirondelle.services import open_services
from tests.messages import simple_message
from tests.smtp.conftest import mailbox_messages, make_account

HIRONDELLE = Path(sys.executable).parent / "hirondelle"


def write_config(settings: Settings) -> None:
    text = render_config(
        hostname="mail.example.test",
        default_domain=None,
        listen={"smtp": "127.0.0.1:0"},
        database=settings.store.database,
    )
    (settings.data_dir / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("command", ["DATA", "BDAT"])
async def test_message_accepted_with_250_survives_kill_9(settings: Settings, command: str) -> None:
    services = open_services(settings)
    try:
        await make_account(services, "alice@example.test")
    finally:
        services.close()
    write_config(settings)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HIRONDELLE_")}
    process = await asyncio.create_subprocess_exec(
        str(HIRONDELLE),
        "--data",
        str(settings.data_dir),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
        env=environment,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        match = re.match(r"^listening smtp 127\.0\.0\.1:(\d+)$", line.strip())
        assert match, f"unexpected first line {line!r}"
        port = int(match.group(1))
        raw = simple_message(subject="Durable")

        def send() -> tuple[int, bytes]:
            client = smtplib.SMTP("127.0.0.1", port, timeout=20)
            client.ehlo("client.test")
            client.mail("carol@elsewhere.test")
            client.rcpt("alice@example.test")
            if command == "DATA":
                reply = client.data(raw)
            else:  # RFC 3030: the same guarantee for the chunked path
                client.send(f"BDAT {len(raw)} LAST\r\n".encode() + raw)
                reply = client.getreply()
            # SIGKILL the moment the 250 is in: no chance for a clean shutdown.
            os.kill(process.pid, signal.SIGKILL)
            return reply

        code, text = await asyncio.to_thread(send)
        assert code == 250, text
        assert await asyncio.wait_for(process.wait(), timeout=10) == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    reopened = open_services(settings)
    try:
        alice = await reopened.accounts.get_account("alice@example.test")
        [stored] = await mailbox_messages(reopened, alice)
        assert b"Subject: Durable" in stored
    finally:
        reopened.close()
