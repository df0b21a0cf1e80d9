"""A throw-away Dovecot instance to compare against (``--compare-dovecot``).

Dovecot runs from a minimal configuration in a temporary directory: Maildir, a static
passdb/userdb (no authentication), no listening socket that matters (the imap-login
listeners are disabled), ``mail_fsync = optimized`` (Dovecot's default: message files
are fsynced before a delivery reports success). Messages are delivered with
``dovecot-lda``, one process per message, as an MTA's local delivery does; reads use
``doveadm``. The master process is started with ``dovecot -c CONF`` and stopped with
``doveadm stop`` (which signals only this instance's master, by its base_dir).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

LDA = Path("/usr/lib/dovecot/dovecot-lda")


class DovecotUnavailable(RuntimeError):
    pass


def available() -> str | None:
    """Why Dovecot cannot run here, or None when it can."""
    for tool in ("dovecot", "doveadm"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install dovecot-imapd)"
    if not LDA.exists():
        return f"{LDA} not found"
    return None


def version() -> str:
    return subprocess.run(
        ["dovecot", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[0]


_CONFIG = """\
base_dir = {root}/run
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
mail_location = maildir:{root}/mail/%u
mail_fsync = optimized
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class Dovecot:
    """One running Dovecot under ``root`` (an empty directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "dovecot.conf"
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            internal, login = "dovecot", "dovenull"
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            internal = login = mail_user.pw_name
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        (root / "mail").mkdir(parents=True)
        os.chown(root / "mail", self.uid, self.gid)
        # The mail user must be able to reach its directory.
        for directory in (root, *root.parents):
            if directory == Path("/"):
                break
            mode = directory.stat().st_mode
            if not mode & 0o001:
                directory.chmod(mode | 0o011)
        self.config.write_text(
            _CONFIG.format(root=root, internal=internal, login=login, uid=self.uid, gid=self.gid)
        )

    def start(self) -> None:
        # The master daemonises and its children keep the inherited descriptors: no pipes.
        subprocess.run(
            ["dovecot", "-c", str(self.config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (self.root / "run" / "auth-userdb").exists():
            if time.monotonic() > deadline:
                log = (self.root / "dovecot.log").read_text(errors="replace")
                raise DovecotUnavailable(f"dovecot did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(
            ["doveadm", "-c", str(self.config), "stop"], check=False, capture_output=True
        )

    def doveadm(self, *args: str) -> list[str]:
        return ["doveadm", "-c", str(self.config), *args]

    async def deliver(self, user: str, raw: bytes) -> None:
        process = await asyncio.create_subprocess_exec(
            str(LDA),
            "-c",
            str(self.config),
            "-d",
            user,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate(raw)
        if process.returncode != 0:
            raise DovecotUnavailable(
                f"dovecot-lda exited with {process.returncode}: {stderr.decode()}"
            )

    def fill_maildir(self, user: str, messages: list[tuple[bytes, str]]) -> None:
        """Write messages straight into ``user``'s Maildir ``cur/`` with their flags in
        the file names (``S`` seen, ``F`` flagged; Maildir's own format), then let
        Dovecot index them: the same kind of synthetic fill as Hirondelle's."""
        home = self.root / "mail" / user
        for sub in ("cur", "new", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        base = int(time.time())
        for number, (raw, flags) in enumerate(messages):
            name = f"{base}.M{number}P{os.getpid()}.bench,S={len(raw)}:2,{flags}"
            (home / "cur" / name).write_bytes(raw)
        for path in (home, *home.rglob("*")):
            os.chown(path, self.uid, self.gid)
        subprocess.run(
            self.doveadm("force-resync", "-u", user, "INBOX"),
            check=True,
            capture_output=True,
            text=True,
        )

    def timed(self, *args: str) -> tuple[float, str]:
        """Wall time of one doveadm command (process start included) and its output."""
        start = time.perf_counter()
        result = subprocess.run(self.doveadm(*args), check=True, capture_output=True, text=True)
        return time.perf_counter() - start, result.stdout
