"""fetchmail (Debian package ``fetchmail``) retrieves and deletes, over pop3s and over
pop3 with STLS, checking the server certificate against the test's certificate."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store import maildrop
from hirondelle.store.directory import Account
from tests.messages import simple_message
from tests.pop3.conftest import ADDRESS, PASSWORD, deliver, port

pytestmark = pytest.mark.skipif(
    shutil.which("fetchmail") is None, reason="fetchmail is not installed (scripts/test.sh)"
)


async def run_fetchmail(tmp_path: Path, cafile: Path, *, port_number: int, implicit: bool) -> Path:
    """Run fetchmail once with keep off; return the directory its MDA wrote into."""
    out = tmp_path / "delivered"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "{out}/$(date +%s%N).$$"\n')
    mda.chmod(0o755)
    tls_options = "ssl" if implicit else "sslproto 'TLS1.2+'"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\nset invisible\n"
        f"poll localhost via 127.0.0.1 with proto POP3 service {port_number}\n"
        f'  user "{ADDRESS}" there with password "{PASSWORD}" is "tester" here\n'
        f'  {tls_options} sslcertck sslcertfile "{cafile}" sslcommonname localhost\n'
        f'  nokeep mda "{mda}"\n'
    )
    rc.chmod(0o600)
    process = await asyncio.create_subprocess_exec(
        "fetchmail",
        "--fetchmailrc",
        str(rc),
        "--idfile",
        str(tmp_path / "fetchids"),
        "--pidfile",
        str(tmp_path / "fetchmail.pid"),
        "--nodetach",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    # fetchmail exits 0 when it retrieved mail.
    assert process.returncode == 0, output.decode(errors="replace")
    return out


async def inbox_size(services: Services, account: Account) -> int:
    snap = await services.database.read(lambda c: maildrop.snapshot(c, account.id))
    assert snap is not None
    return len(snap.messages)


@pytest.mark.parametrize("implicit", [True, False], ids=["pop3s", "pop3-stls"])
async def test_fetchmail_retrieves_and_deletes(
    node: Node, services: Services, alice: Account, cafile: Path, tmp_path: Path, implicit: bool
) -> None:
    raws = [
        simple_message(subject="first"),
        simple_message(subject="second", body=".leading dot\r\n..two\r\nend\r\n"),
        # Bare LF line endings as some senders store them: sizes must still match.
        simple_message(subject="third").replace(b"\r\n", b"\n"),
    ]
    for raw in raws:
        await deliver(services, alice, raw)
    out = await run_fetchmail(
        tmp_path, cafile, port_number=port(node, "pop3s" if implicit else "pop3"), implicit=implicit
    )
    received = sorted(path.read_bytes() for path in out.iterdir())
    # fetchmail hands the MDA LF line endings.
    assert received == sorted(raw.replace(b"\r\n", b"\n") for raw in raws)
    assert await inbox_size(services, alice) == 0
