"""IMAP load: Hirondelle and Dovecot side by side, in one run, with the same mailbox.

    .venv/bin/python -m bench.imap                       # both servers, the defaults
    .venv/bin/python -m bench.imap --messages 2000 --duration 3 --idle-connections 500
    .venv/bin/python -m bench.imap --json /tmp/imap.json

What runs:

* **Hirondelle**: ``hirondelle serve`` in a subprocess, on a temporary data directory
  (SQLite, or ``--database`` PostgreSQL URL), only an ``imap`` listener on 127.0.0.1:0.
  Before it starts, the account ``bench@example.test`` gets the ``--messages`` generated
  messages (:mod:`bench.corpus`, seed ``--seed``; 30% ``\\Seen``, 5% ``\\Flagged``)
  through ``services.mail.append`` (parse, blob, index; blob fsync turned off for the
  fill only: the fill is not measured), and ``big@example.test`` gets ``--big``
  synthetic messages by direct multi-row INSERTs (``bench.store``'s fill: one parsed
  message's ENVELOPE/BODYSTRUCTURE reused, no blob files) for the SELECT target.
* **Dovecot** (``dovecot-imapd``): a throw-away instance (:mod:`bench.dovecot`) with an
  IMAP listener on a loopback port, Maildir, the SAME messages and flags written into
  ``cur/`` then indexed with ``doveadm force-resync``; no FTS plugin (Debian's default,
  so SEARCH TEXT reads the message files).
* Both on **plain IMAP over loopback, no TLS**: the servers are measured, not OpenSSL.
* Both accounts have the same cheap argon2id password hash (m=64 KiB, t=1, p=1):
  LOGIN measures the servers, not the password hash (Hirondelle's default hash costs
  about 200 ms of CPU per LOGIN by design, see ``identity/passwords.py``). Hirondelle's
  login rate limits are raised (``[identity] account_failures``/``address_failures``):
  the limiter counts logins in flight as failures, so parallel LOGINs of one account
  would be refused.
* ``--tls``: the idle connections use implicit TLS (imaps, a self-signed certificate,
  both servers; Hirondelle is restarted with an ``imaps`` listener only). The operations
  always run on plain IMAP.
* Memory per idle connection is measured on a freshly restarted ``hirondelle serve``
  (after one LOGIN + SELECT to load the code paths), so the heap grown by the operations
  above does not hide it.

The load generator (this process, asyncio, raw IMAP over streams) runs each operation
for ``--duration`` seconds with ``--clients`` concurrent connections against one server,
then the other: connect + LOGIN; SELECT INBOX; FETCH 1:* (UID FLAGS RFC822.SIZE
ENVELOPE); UID FETCH of a random UID's BODY.PEEK[]; SEARCH TEXT of a word found in 1% of
messages; IDLE (``--clients`` connections in IDLE, one more appends a small message and
each IDLE connection's latency runs from the APPEND being sent to its ``* n EXISTS``).
It reports operations per second, p50/p99 latency and the Hirondelle/Dovecot ratio.

Then: SELECT of the ``--big`` (100,000) message mailbox (Hirondelle only: cold, the
median of 5 unchanged, and the median of 5 each after a flag change), and memory per
idle connection: ``--idle-connections`` connections that LOGIN, SELECT INBOX and IDLE,
opened 50 at a time, to each server; RSS (and PSS, which counts shared pages once)
before and after. Hirondelle: its one process. Dovecot: the
master and every process whose parent is the master (imap, imap-login, auth, anvil, log,
config...) -- the imap processes, one per connection, are also reported alone.

The load generator shares the machine's cores with the servers: on a 2-core machine the
client's own CPU weighs on every number, equally for both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from bench import corpus, machine
from bench import dovecot as dovecot_harness
from bench.serve import start_serve
from bench.store import throwaway_database

DOMAIN = "example.test"
PASSWORD = "bench-password"
SEARCH_WORD = corpus.MARKER_WORD
#: A cheap argon2id hash shared by both servers (see the module docstring).
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)
OPEN_AT_ONCE = 50
#: ``--tls``: both servers present the same self-signed certificate on loopback.
_CLIENT_TLS = ssl.create_default_context()
_CLIENT_TLS.check_hostname = False
_CLIENT_TLS.verify_mode = ssl.CERT_NONE


# -- a minimal IMAP client -------------------------------------------------------------


class ImapError(RuntimeError):
    pass


class Client:
    """One raw IMAP connection: commands, their untagged responses counted, literals
    skipped by their announced size."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tags = 0
        self.bytes_read = 0

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, limit=2**22, ssl=_CLIENT_TLS if tls else None
        )
        client = cls(reader, writer)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting: {greeting!r}")
        return client

    async def response_line(self) -> bytes:
        """One whole response (literals included), without its final CRLF."""
        parts = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            self.bytes_read += len(line)
            parts.append(line)
            if line.endswith(b"}\r\n"):
                size = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
                parts.append(await self.reader.readexactly(size))
                self.bytes_read += size
                continue
            return b"".join(parts)[:-2]

    async def command(self, text: bytes, *, literal: bytes | None = None) -> tuple[bytes, int]:
        """Send ``text`` (and a LITERAL+ literal) and read up to the tagged OK; the
        tagged line and the number of untagged responses."""
        self.tags += 1
        tag = b"a%d" % self.tags
        if literal is None:
            self.writer.write(tag + b" " + text + b"\r\n")
        else:
            self.writer.write(b"%s %s {%d+}\r\n%s\r\n" % (tag, text, len(literal), literal))
        untagged = 0
        prefix = tag + b" "
        while True:
            line = await self.response_line()
            if line.startswith(prefix):
                if line[len(prefix) : len(prefix) + 2] != b"OK":
                    raise ImapError(f"{text[:60]!r}: {line[:200]!r}")
                return line, untagged
            if line.startswith(b"* "):
                untagged += 1

    async def login(self, user: str) -> None:
        await self.command(f'LOGIN "{user}" "{PASSWORD}"'.encode())

    async def idle(self) -> None:
        self.tags += 1
        self.idle_tag = b"a%d" % self.tags
        self.writer.write(self.idle_tag + b" IDLE\r\n")
        while True:
            line = await self.response_line()
            if line.startswith(b"+"):
                return
            if line.startswith(self.idle_tag):
                raise ImapError(f"IDLE: {line!r}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


# -- the servers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Mailbox:
    """The generated messages and their flags (IMAP flags and Maildir letters)."""

    raws: list[bytes]
    flags: list[tuple[str, ...]]


def build_mailbox(count: int, seed: int) -> Mailbox:
    rng = random.Random(seed)
    raws, flags = [], []
    for message in corpus.generate(count, seed=seed):
        raws.append(message.raw)
        chosen = []
        if rng.random() < 0.30:
            chosen.append("\\Seen")
        if rng.random() < 0.05:
            chosen.append("\\Flagged")
        flags.append(tuple(chosen))
    return Mailbox(raws, flags)


class HirondelleImap:
    """``hirondelle serve`` with one plain ``imap`` listener on a fresh data directory."""

    name = "hirondelle"
    tls_port = 0

    def __init__(self, root: Path, database: str) -> None:
        self.data = root / "hirondelle"
        self.data.mkdir()
        self.database = database
        self.user = f"bench@{DOMAIN}"
        self.big_user = f"big@{DOMAIN}"
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def fill(self, mailbox: Mailbox, big: int, seed: int) -> tuple[float, float]:
        """Seconds taken by the two fills (not benchmarks)."""
        from hirondelle.config import Settings
        from hirondelle.services import open_services

        self._configure("imap")
        settings = Settings.model_validate(
            {"data_dir": self.data, "store": {"database": self.database}}
        )
        services = open_services(settings)
        try:
            return asyncio.run(self._fill(services, mailbox, big, seed))
        finally:
            services.close()

    async def _fill(
        self, services: Any, mailbox: Mailbox, big: int, seed: int
    ) -> tuple[float, float]:
        from bench.store import _fill_mailbox
        from hirondelle.store import directory, emails, mailboxes
        from hirondelle.store.database import WriteContext

        await services.accounts.add_domain(DOMAIN)
        inboxes = []
        for user in (self.user, self.big_user):
            account = await services.accounts.add_account(user, password=None)
            await services.database.write(
                lambda ctx, u=user: directory.update_account(ctx, u, password_hash=CHEAP_HASH)
            )
            inbox = await services.database.read(
                lambda c, a=account.id: mailboxes.get_mailbox_by_role(c, a, "inbox")
            )
            inboxes.append((account.id, inbox.id))
        # Not measured: durability of the fill does not matter, speed of the run does.
        services.blobs.fsync = False
        (account_id, inbox_id), (big_account, big_inbox) = inboxes
        semaphore = asyncio.Semaphore(64)
        from hirondelle.mail import keywords

        async def append(index: int) -> None:
            async with semaphore:
                await services.mail.append(
                    account_id=account_id,
                    mailbox_id=inbox_id,
                    raw=mailbox.raws[index],
                    keywords=[keywords.from_imap(f) for f in mailbox.flags[index]],
                    received_at=None,
                )

        start = time.perf_counter()
        # In order, 64 in flight (group commit): UIDs follow the list closely enough.
        await asyncio.gather(*(append(i) for i in range(len(mailbox.raws))))
        appended = time.perf_counter() - start
        start = time.perf_counter()

        def fill(ctx: WriteContext) -> None:
            _fill_mailbox(ctx, account_id=big_account, mailbox_id=big_inbox, count=big, seed=seed)
            # The fill writes memberships directly: list their keywords as the store would.
            emails.note_mailbox_keywords(ctx.conn, big_inbox)

        await services.database.write(fill)
        if services.database.dialect == "postgresql":
            from bench.store import _analyze

            _analyze(services)
        return appended, time.perf_counter() - start

    def _configure(self, listener: str) -> None:
        """One listener: ``imap`` (plain, no certificate, so LOGIN is allowed) or
        ``imaps`` (implicit TLS with a self-signed certificate)."""
        from hirondelle.config import CONFIG_FILE_NAME, Settings, render_config

        text = render_config(
            hostname="mail.example.test",
            default_domain=None,
            listen={listener: "127.0.0.1:0"},
            database=self.database,
        )
        # The login limiter counts logins in flight as failures until they are decided:
        # with its defaults, 50 parallel LOGINs to one account would be refused.
        text = text.replace(
            "\n[identity]\n",
            "\n[identity]\naccount_failures = 1000000\naddress_failures = 1000000\n",
            1,
        )
        (self.data / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
        if listener == "imaps":
            from hirondelle import tls

            settings = Settings.model_validate({"data_dir": self.data})
            tls.generate_self_signed(
                settings.certificate_path(), settings.key_path(), hostname="mail.example.test"
            )

    def restart(self, *, tls: bool) -> int:
        """A fresh process (with an ``imaps`` listener only when ``tls``)."""
        self.stop()
        if tls:
            self._configure("imaps")
        return self.start()

    def start(self) -> int:
        self.process, self.port = start_serve(self.data, "imaps?")
        self.tls_port = self.port
        return self.port

    def memory(self) -> dict[str, float]:
        assert self.process is not None
        rss, pss = _rss_pss(self.process.pid)
        return {"processes": 1, "rss_mb": rss, "pss_mb": pss, "imap_rss_mb": rss}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


_DOVECOT_IMAP_CONFIG = """\
base_dir = {root}/run
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
mail_location = maildir:{root}/mail/%u
mail_fsync = optimized
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
# Room for --idle-connections connections of one user from one address.
default_process_limit = {processes}
default_client_limit = {clients}
protocol imap {{
  mail_max_userip_connections = {clients}
}}
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service imap {{
  process_limit = {processes}
}}
"""


class DovecotImap(dovecot_harness.Dovecot):
    """bench.dovecot's throw-away Dovecot, with an IMAP listener on a loopback port and
    a passwd-file holding the same argon2id hash as Hirondelle's account."""

    name = "dovecot"

    def __init__(self, root: Path, connections: int, *, tls: bool) -> None:
        super().__init__(root / "dovecot")
        self.user = "bench"
        self.port = _free_port()
        self.tls_port = _free_port() if tls else 0
        (self.root / "passwd").write_text(f"{self.user}:{{ARGON2ID}}{CHEAP_HASH}\n")
        ssl_settings = "ssl = no"
        if tls:
            from hirondelle import tls as tls_policy

            certificate, key = self.root / "cert.pem", self.root / "key.pem"
            tls_policy.generate_self_signed(certificate, key, hostname="mail.example.test")
            ssl_settings = f"ssl = yes\nssl_cert = <{certificate}\nssl_key = <{key}"
        self.config.write_text(
            _DOVECOT_IMAP_CONFIG.format(
                root=self.root,
                internal="dovecot" if os.geteuid() == 0 else _user_name(),
                login="dovenull" if os.geteuid() == 0 else _user_name(),
                uid=self.uid,
                gid=self.gid,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl_settings,
                processes=connections + 200,
                clients=connections + 1000,
            )
        )

    def fill(self, mailbox: Mailbox) -> float:
        start = time.perf_counter()
        letters = {"\\Seen": "S", "\\Flagged": "F"}
        self.fill_maildir(
            self.user,
            [
                (raw, "".join(sorted(letters[f] for f in flags)))
                for raw, flags in zip(mailbox.raws, mailbox.flags, strict=True)
            ],
        )
        return time.perf_counter() - start

    def memory(self) -> dict[str, float]:
        master = int((self.root / "run" / "master.pid").read_text().split()[0])
        pids = [master, *machine.children_by_parent().get(master, [])]
        rss = pss = imap_rss = 0.0
        for pid in pids:
            one_rss, one_pss = _rss_pss(pid)
            rss += one_rss
            pss += one_pss
            if _command(pid) == "imap":
                imap_rss += one_rss
        return {"processes": len(pids), "rss_mb": rss, "pss_mb": pss, "imap_rss_mb": imap_rss}


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_pss(pid: int) -> tuple[float, float]:
    """RSS and PSS of one process in MB (PSS splits shared pages among their users)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0]) / 1024
    except OSError:
        return 0.0, 0.0
    return values.get("Rss", 0.0), values.get("Pss", 0.0)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# -- the operations -------------------------------------------------------------------


@dataclass
class OperationResult:
    operation: str
    server: str
    clients: int
    count: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    detail: str


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def _result(
    operation: str, server: str, clients: int, latencies: list[float], seconds: float, detail: str
) -> OperationResult:
    return OperationResult(
        operation=operation,
        server=server,
        clients=clients,
        count=len(latencies),
        seconds=round(seconds, 2),
        per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(_percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
        detail=detail,
    )


async def _selected(port: int, user: str, mailbox: str = "INBOX", *, tls: bool = False) -> Client:
    client = await Client.connect(port, tls=tls)
    await client.login(user)
    await client.command(f"SELECT {mailbox}".encode())
    return client


async def _loop(
    port: int,
    user: str,
    clients: int,
    duration: float,
    step: Callable[[Client, random.Random], Awaitable[None]],
    *,
    seed: int,
) -> tuple[list[float], float]:
    """``clients`` selected connections each running ``step`` until ``duration`` is over;
    every step's latency and the wall time."""
    connections = [await _selected(port, user) for _ in range(clients)]
    latencies: list[float] = []

    async def run(client: Client, rng: random.Random, deadline: float) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await step(client, rng)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(
        *(run(c, random.Random(seed + i), deadline) for i, c in enumerate(connections))
    )
    seconds = time.perf_counter() - start
    for client in connections:
        await client.close()
    return latencies, seconds


async def bench_login(
    port: int, user: str, clients: int, duration: float
) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def run(deadline: float) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            client = await Client.connect(port)
            await client.login(user)
            latencies.append(time.perf_counter() - start)
            await client.command(b"LOGOUT")
            await client.close()

    start = time.perf_counter()
    await asyncio.gather(*(run(start + duration) for _ in range(clients)))
    return latencies, time.perf_counter() - start


async def bench_idle(
    port: int, user: str, clients: int, duration: float
) -> tuple[list[float], float, int]:
    """``clients`` connections in IDLE; one more APPENDs small messages one after the
    other, each once every IDLE connection has seen the previous one's EXISTS."""
    idlers = [await _selected(port, user) for _ in range(clients)]
    appender = await _selected(port, user)
    latencies: list[float] = []
    sent_at = 0.0
    seen = 0
    all_seen = asyncio.Event()

    async def watch(client: Client) -> None:
        nonlocal seen
        await client.idle()
        while True:
            line = await client.response_line()
            if line.endswith(b" EXISTS"):
                latencies.append(time.perf_counter() - sent_at)
                seen += 1
                if seen == clients:
                    all_seen.set()

    watchers = [asyncio.create_task(watch(c)) for c in idlers]
    # Every connection must be idling before the first APPEND.
    await asyncio.sleep(0)
    appends = 0
    start = time.perf_counter()
    deadline = start + duration
    while time.perf_counter() < deadline:
        seen = 0
        all_seen.clear()
        raw = corpus.small_message(900_000 + appends)
        sent_at = time.perf_counter()
        await appender.command(b"APPEND INBOX", literal=raw)
        await asyncio.wait_for(all_seen.wait(), 30)
        appends += 1
    seconds = time.perf_counter() - start
    for task in watchers:
        task.cancel()
    for client in [*idlers, appender]:
        await client.close()
    return latencies, seconds, appends


async def bench_operations(
    server: HirondelleImap | DovecotImap, args: argparse.Namespace, messages: int
) -> list[OperationResult]:
    port, user, n, duration = server.port, server.user, args.clients, args.duration
    results = []

    latencies, seconds = await bench_login(port, user, n, duration)
    results.append(_result("connect + LOGIN", server.name, n, latencies, seconds, ""))

    async def select(client: Client, rng: random.Random) -> None:
        await client.command(b"SELECT INBOX")

    latencies, seconds = await _loop(port, user, n, duration, select, seed=args.seed)
    results.append(_result(f"SELECT INBOX ({messages:,})", server.name, n, latencies, seconds, ""))

    fetched: list[int] = []

    async def fetch_all(client: Client, rng: random.Random) -> None:
        _, count = await client.command(b"FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")
        fetched.append(count)

    latencies, seconds = await _loop(port, user, n, duration, fetch_all, seed=args.seed)
    results.append(
        _result(
            "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)",
            server.name,
            n,
            latencies,
            seconds,
            f"{sum(fetched) / seconds:,.0f} messages/s; {fetched[0]:,} per FETCH",
        )
    )

    body_bytes = 0

    async def fetch_body(client: Client, rng: random.Random) -> None:
        nonlocal body_bytes
        before = client.bytes_read
        await client.command(b"UID FETCH %d BODY.PEEK[]" % rng.randint(1, messages))
        body_bytes += client.bytes_read - before

    latencies, seconds = await _loop(port, user, n, duration, fetch_body, seed=args.seed)
    results.append(
        _result(
            "UID FETCH <random> BODY.PEEK[]",
            server.name,
            n,
            latencies,
            seconds,
            f"{body_bytes / seconds / 1e6:.1f} MB/s",
        )
    )

    hits: list[bytes] = []

    async def search_text(client: Client, rng: random.Random) -> None:
        client.tags += 1
        tag = b"a%d" % client.tags
        client.writer.write(tag + b" SEARCH TEXT " + SEARCH_WORD.encode() + b"\r\n")
        while True:
            line = await client.response_line()
            if line.startswith(b"* SEARCH"):
                hits.append(line)
            elif line.startswith(tag + b" OK"):
                return
            elif line.startswith(tag):
                raise ImapError(f"SEARCH: {line!r}")

    latencies, seconds = await _loop(port, user, n, duration, search_text, seed=args.seed)
    found = len(hits[0].split()) - 2 if hits else 0
    results.append(
        _result(f"SEARCH TEXT {SEARCH_WORD}", server.name, n, latencies, seconds, f"{found} hits")
    )

    latencies, seconds, appends = await bench_idle(port, user, n, duration)
    results.append(
        _result(
            "IDLE: APPEND -> EXISTS",
            server.name,
            n,
            latencies,
            seconds,
            f"{appends} APPENDs, each seen by {n} IDLE connections",
        )
    )
    return results


async def bench_big_select(server: HirondelleImap, runs: int = 5) -> dict[str, float]:
    """SELECT of the big mailbox: the first (cold), then ``runs`` more with nothing
    changed (the listener reuses the columns it read: ``imap/selected.RecentColumns``),
    then ``runs`` more each after a flag change in the account, which makes every one
    read the 100,000 rows again."""
    client = await Client.connect(server.port)
    await client.login(server.big_user)
    timings = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        await client.command(b"SELECT INBOX")
        timings.append(time.perf_counter() - start)
        await client.command(b"UNSELECT")
    changed = []
    for run in range(runs):
        await client.command(b"SELECT INBOX")
        sign = b"+" if run % 2 == 0 else b"-"
        await client.command(b"STORE 1 " + sign + b"FLAGS.SILENT (\\Flagged)")
        await client.command(b"UNSELECT")
        start = time.perf_counter()
        await client.command(b"SELECT INBOX")
        changed.append(time.perf_counter() - start)
        await client.command(b"UNSELECT")
    await client.close()
    return {
        "cold_ms": round(timings[0] * 1000, 1),
        "median_ms": round(statistics.median(timings[1:]) * 1000, 1),
        "max_ms": round(max(timings[1:]) * 1000, 1),
        "after_change_median_ms": round(statistics.median(changed) * 1000, 1),
        "after_change_max_ms": round(max(changed) * 1000, 1),
    }


async def bench_idle_memory(
    server: HirondelleImap | DovecotImap, connections: int, *, tls: bool
) -> dict[str, Any]:
    before = server.memory()
    clients: list[Client] = []
    semaphore = asyncio.Semaphore(OPEN_AT_ONCE)

    async def one() -> None:
        async with semaphore:
            port = server.tls_port if tls else server.port
            client = await _selected(port, server.user, tls=tls)
            await client.idle()
            clients.append(client)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    opened = time.perf_counter() - start
    # Let the servers settle (Dovecot's login processes exit once they handed over).
    await asyncio.sleep(2)
    after = server.memory()
    for client in clients:
        client.writer.close()
    await asyncio.gather(*(c.close() for c in clients))
    return {
        "server": server.name,
        "tls": tls,
        "connections": connections,
        "open_seconds": round(opened, 1),
        "before": {k: round(v, 1) for k, v in before.items()},
        "after": {k: round(v, 1) for k, v in after.items()},
        "rss_per_connection_kb": round(
            (after["rss_mb"] - before["rss_mb"]) * 1024 / connections, 1
        ),
        "pss_per_connection_kb": round(
            (after["pss_mb"] - before["pss_mb"]) * 1024 / connections, 1
        ),
    }


# -- the run --------------------------------------------------------------------------


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        raise SystemExit(f"error: RLIMIT_NOFILE hard limit {hard} < {needed}")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # Both ends of every connection may live in this machine's processes; the servers
    # inherit the limit.
    _raise_file_limit(2 * args.idle_connections + 1000)
    report: dict[str, Any] = {
        "command": " ".join(["python -m bench.imap", *sys.argv[1:]]),
        "machine": machine.describe(work),
        "dovecot": dovecot_harness.version(),
    }
    start = time.perf_counter()
    mailbox = build_mailbox(args.messages, args.seed)
    log(
        f"generated {len(mailbox.raws):,} messages,"
        f" {sum(map(len, mailbox.raws)) / 1e6:.0f} MB, in {time.perf_counter() - start:.0f} s"
    )
    with throwaway_database(args.database, work) as database_url:
        return _run_servers(args, work, mailbox, database_url, report)


def _run_servers(
    args: argparse.Namespace,
    work: Path,
    mailbox: Mailbox,
    database_url: str,
    report: dict[str, Any],
) -> dict[str, Any]:
    hirondelle = HirondelleImap(work, database_url)
    appended, big = hirondelle.fill(mailbox, args.big, args.seed)
    log(f"hirondelle: appended in {appended:.0f} s, {args.big:,} synthetic in {big:.0f} s")
    if args.select_only:
        hirondelle.start()
        try:
            report["big_select"] = asyncio.run(bench_big_select(hirondelle, args.select_runs))
            log(f"hirondelle: SELECT of {args.big:,}: {report['big_select']}")
        finally:
            hirondelle.stop()
        return report
    dovecot = DovecotImap(work, args.idle_connections, tls=args.tls)
    report["fill_seconds"] = {
        "hirondelle_append": round(appended, 1),
        "hirondelle_big": round(big, 1),
    }
    hirondelle.start()
    try:
        # doveadm force-resync looks the user up through the running instance.
        dovecot.start()
        try:
            log(f"dovecot: Maildir filled and indexed in {dovecot.fill(mailbox):.0f} s")
            del mailbox
            report.update(asyncio.run(_measure(args, hirondelle, dovecot)))
        finally:
            dovecot.stop()
    finally:
        hirondelle.stop()
    return report


async def _measure(
    args: argparse.Namespace, hirondelle: HirondelleImap, dovecot: DovecotImap
) -> dict[str, Any]:
    results: dict[str, Any] = {"operations": [], "ratios": []}
    by_server: dict[str, list[OperationResult]] = {}
    for server in (hirondelle, dovecot):
        # Warm-up: one FETCH of everything and one SEARCH (caches, Dovecot's index).
        client = await _selected(server.port, server.user)
        await client.command(b"FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")
        await client.command(b"SEARCH TEXT " + SEARCH_WORD.encode())
        await client.close()
    for server in (hirondelle, dovecot):
        log(f"{server.name}: operations, {args.clients} clients, {args.duration} s each")
        by_server[server.name] = await bench_operations(server, args, args.messages)
        for r in by_server[server.name]:
            log(f"  {r.operation}: {r.per_second}/s p50 {r.p50_ms} ms p99 {r.p99_ms} ms {r.detail}")
    for h, d in zip(by_server["hirondelle"], by_server["dovecot"], strict=True):
        results["operations"] += [asdict(h), asdict(d)]
        results["ratios"].append(
            {
                "operation": h.operation,
                "throughput_hirondelle_over_dovecot": round(h.per_second / d.per_second, 2),
                "p50_hirondelle_over_dovecot": round(h.p50_ms / d.p50_ms, 2),
            }
        )
    results["big_select"] = await bench_big_select(hirondelle, args.select_runs)
    log(f"hirondelle: SELECT of {args.big:,}: {results['big_select']}")
    results["idle_memory"] = []
    for server in (hirondelle, dovecot):
        if server is hirondelle:
            # A fresh process: the heap the operations above grew (10,000-message FETCH
            # responses) would otherwise hide what the idle connections cost.
            hirondelle.restart(tls=args.tls)
            client = await _selected(hirondelle.port, server.user, tls=args.tls)
            await client.command(b"LOGOUT")
            await client.close()
        memory = await bench_idle_memory(server, args.idle_connections, tls=args.tls)
        log(f"{server.name}: {memory}")
        results["idle_memory"].append(memory)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imap", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="messages in the SELECT test")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per operation")
    parser.add_argument("--idle-connections", type=int, default=2000)
    parser.add_argument("--database", default="sqlite", help="sqlite or a PostgreSQL URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--tls", action="store_true", help="idle connections over implicit TLS (imaps)"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--select-only",
        action="store_true",
        help="only the SELECT of the --big mailbox (Hirondelle; no Dovecot, no operations)",
    )
    parser.add_argument(
        "--select-runs", type=int, default=5, help="SELECTs per case in the --big test"
    )
    args = parser.parse_args(argv)
    missing = None if args.select_only else dovecot_harness.available()
    if missing:
        raise SystemExit(f"error: {missing}")
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as directory:
        report = run(args, Path(directory))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
