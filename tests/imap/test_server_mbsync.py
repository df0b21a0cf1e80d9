"""mbsync (Debian isync), a real synchronising client: 2,000 messages both ways, flag
changes and deletions on each side, then a run with nothing to do.

SQLite only: the 2,000-message run takes most of a minute on a loaded machine, and the
store behaviour it relies on (UIDs, journal, flags) is covered on PostgreSQL by the
other IMAP tests and tests/store; running it twice would double the suite's longest test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hirondelle.store import emails
from tests.imap.conftest import ADDRESS, PASSWORD, ImapServer
from tests.messages import simple_message

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None, reason="needs isync")

COUNT = 2000


def _config(imap: ImapServer, root: Path) -> Path:
    maildir = root / "mail"
    maildir.mkdir()
    config = root / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {imap.tls_port}
User {ADDRESS}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {imap.cafile}
AuthMechs PLAIN

IMAPStore remote
Account test

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
"""
    )
    return config


def _mbsync(config: Path) -> str:
    result = subprocess.run(
        ["mbsync", "-c", str(config), "-a"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _local(root: Path) -> dict[str, str]:
    """Message-ID -> maildir flags of the local INBOX."""
    out: dict[str, str] = {}
    for sub in ("cur", "new"):
        for path in (root / "mail" / "INBOX" / sub).iterdir():
            head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
            message_id = next(
                line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                for line in head.splitlines()
                if line.lower().startswith(b"message-id:")
            )
            flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            out[message_id] = flags
    return out


def _server_messages(imap: ImapServer) -> dict[str, tuple[int, str]]:
    """Message-ID -> (UID, stored keywords) in the server's INBOX."""
    inbox = imap.mailbox("INBOX")

    async def read() -> dict[str, tuple[int, str]]:
        views = await imap.services.database.read(lambda c: emails.list_messages(c, inbox.id))
        rows = await imap.services.database.read(
            lambda c: [emails.email_row(c, inbox.account_id, v.email_id) for v in views]
        )
        return {
            str(r["message_id"]): (v.uid, v.keywords) for v, r in zip(views, rows, strict=True) if r
        }

    return imap.run(read())


def _server(imap: ImapServer) -> dict[str, str]:
    return {key: keywords for key, (_, keywords) in _server_messages(imap).items()}


def test_mbsync_two_way_sync_of_2000_messages(
    imap: ImapServer, backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only (see the module docstring)")

    async def fill() -> None:
        assert imap.account is not None
        batch = [simple_message(message_id=f"m{i}@test") for i in range(COUNT)]
        for start in range(0, COUNT, 200):
            await asyncio.gather(
                *(
                    imap.services.mail.deliver(raw, [imap.account.id])
                    for raw in batch[start : start + 200]
                )
            )

    imap.run(fill())
    config = _config(imap, tmp_path)
    _mbsync(config)
    local = _local(tmp_path)
    assert len(local) == COUNT

    # Server side: flag m1..m9, delete m10..m19 (through IMAP, as another client would).
    uids = {key: uid for key, (uid, _) in _server_messages(imap).items()}
    flagged = ",".join(str(uids[f"m{n}@test"]) for n in range(1, 10))
    deleted = ",".join(str(uids[f"m{n}@test"]) for n in range(10, 20))
    client = imap.imaplib()
    client.ok(client.imap.select("INBOX"))
    client.ok(client.imap.uid("STORE", flagged, "+FLAGS", "\\Flagged"))
    client.ok(client.imap.uid("STORE", deleted, "+FLAGS", "\\Deleted"))
    client.ok(client.imap.expunge())
    client.close()
    # Local side: mark m100..m109 seen, delete m200..m209, add one new message.
    cur = tmp_path / "mail" / "INBOX" / "cur"
    new = tmp_path / "mail" / "INBOX" / "new"
    for folder in (cur, new):
        for path in list(folder.iterdir()):
            data = path.read_bytes()
            number = int(data.split(b"Message-ID: <m", 1)[1].split(b"@", 1)[0])
            if 100 <= number < 110:
                base = path.name.split(":2,", 1)[0]
                flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
                path.rename(cur / f"{base}:2,{''.join(sorted(set(flags + 'S')))}")
            elif 200 <= number < 210:
                path.unlink()
    (new / "1700000000.local.host").write_bytes(simple_message(message_id="local-new@test"))

    _mbsync(config)
    local = _local(tmp_path)
    server = _server(imap)
    assert set(local) == set(server)
    assert len(server) == COUNT - 10 - 10 + 1
    assert "local-new@test" in server
    for number in range(1, 10):
        assert "F" in local[f"m{number}@test"]
    for number in range(100, 110):
        assert "$seen" in server[f"m{number}@test"].split()
    assert not any(f"m{n}@test" in server for n in range(200, 210))
    assert not any(f"m{n}@test" in local for n in range(10, 20))

    # A second run in a row has nothing to do: neither side changes.
    before_modseq = imap.mailbox("INBOX").highest_modseq
    before_files = sorted(os.listdir(cur)) + sorted(os.listdir(new))
    _mbsync(config)
    assert imap.mailbox("INBOX").highest_modseq == before_modseq
    assert sorted(os.listdir(cur)) + sorted(os.listdir(new)) == before_files
