"""LMTP delivery throughput: Hirondelle's LMTP listener against Dovecot's LMTP server.

Both servers run as separate processes and get the same client: ``--concurrency``
connections, each delivering its share of ``--messages`` generated messages (the
``bench.corpus`` mix) to one local user, one LMTP transaction per message. A delivery
counts when the server's 250 arrives, and both servers answer 250 only once the message
is durable (Hirondelle: SQLite/PostgreSQL commit with fsynced blobs; Dovecot:
``mail_fsync = optimized``, its default).

    .venv/bin/python -m bench.smtp                       # Hirondelle only
    .venv/bin/python -m bench.smtp --compare-dovecot     # needs dovecot-lmtpd
    .venv/bin/python -m bench.smtp --messages 2000 --concurrency 1 16 --json /tmp/smtp.json
    .venv/bin/python -m bench.smtp --chunking --compare-dovecot   # BDAT, as Postfix sends
    .venv/bin/python -m bench.smtp --size 10240 --compare-dovecot # 10 KB each, as issue 3

The server's CPU is that of its process tree (the parse workers included), read
``SETTLE_S`` after the last reply so that it includes work done after the replies
(Hirondelle indexes new mail for search in batches, within half a second).

With ``--chunking`` each transaction is one write (MAIL, RCPT and ``BDAT n LAST`` with
the message, RFC 3030 with RFC 2920) and one wait for the three replies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import corpus
from bench.machine import process_tree
from bench.serve import start_serve
from bench.store import throwaway_database

USER = "bench@example.test"

# How long the server is left alone before and after a measured run, for the CPU it
# spends on deferred work (Hirondelle's search index: DEFERRED_MAX_DELAY_S, 0.5 s).
SETTLE_S = 1.5


async def _reply(reader: asyncio.StreamReader) -> str:
    while True:
        line = (await reader.readline()).decode("utf-8", "replace")
        if not line:
            raise ConnectionError("the server closed the connection")
        if len(line) < 4 or line[3] != "-":
            return line.rstrip("\r\n")


async def _expect(reader: asyncio.StreamReader, code: str) -> None:
    reply = await _reply(reader)
    if not reply.startswith(code):
        raise RuntimeError(f"expected {code}, got {reply!r}")


def _dot_stuffed(raw: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency, with CRLF line ends and the final dot."""
    text = re.sub(rb"\r?\n", b"\r\n", raw)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    text = re.sub(rb"(?m)^\.", b"..", text)
    return text + b".\r\n"


def _crlf(raw: bytes) -> bytes:
    text = re.sub(rb"\r?\n", b"\r\n", raw)
    return text if text.endswith(b"\r\n") else text + b"\r\n"


async def _lhlo(reader: asyncio.StreamReader) -> list[str]:
    lines = []
    while True:
        line = (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n")
        if not line.startswith("250"):
            raise RuntimeError(f"expected 250, got {line!r}")
        lines.append(line[4:].upper())
        if line[3] != "-":
            return lines


async def _connection(port: int, messages: Sequence[bytes], *, chunking: bool = False) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    await _expect(reader, "220")
    writer.write(b"LHLO bench.example.test\r\n")
    extensions = await _lhlo(reader)
    if chunking and "CHUNKING" not in extensions:
        raise RuntimeError("the server does not offer CHUNKING (RFC 3030)")
    for raw in messages:
        if chunking:
            # RFC 3030 with PIPELINING: the whole transaction in one write, one wait.
            body = _crlf(raw)
            writer.write(
                f"MAIL FROM:<sender@example.net>\r\nRCPT TO:<{USER}>\r\n"
                f"BDAT {len(body)} LAST\r\n".encode()
                + body
            )
            for _ in range(3):
                await _expect(reader, "250")
            continue
        writer.write(f"MAIL FROM:<sender@example.net>\r\nRCPT TO:<{USER}>\r\nDATA\r\n".encode())
        await _expect(reader, "250")
        await _expect(reader, "250")
        await _expect(reader, "354")
        writer.write(_dot_stuffed(raw))
        await _expect(reader, "250")
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def deliver_all(
    port: int, messages: list[bytes], concurrency: int, *, chunking: bool = False
) -> float:
    """Seconds to deliver every message over ``concurrency`` connections."""
    shares = [messages[i::concurrency] for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, share, chunking=chunking) for share in shares if share)
    )
    return time.perf_counter() - start


# -- the servers ------------------------------------------------------------------------


class HirondelleServer:
    """``hirondelle serve`` with only an LMTP listener, on a fresh data directory."""

    def __init__(self, root: Path, database: str, parse_processes: int | None = None) -> None:
        from hirondelle.config import CONFIG_FILE_NAME, Settings, render_config
        from hirondelle.services import open_services

        self.data = root / "hirondelle"
        self.data.mkdir()
        text = render_config(
            hostname="mail.example.test",
            default_domain=None,
            listen={"lmtp": "127.0.0.1:0"},
            database=database,
        )
        if parse_processes is not None:
            text = text.replace("[server]\n", f"[server]\nparse_processes = {parse_processes}\n", 1)
        (self.data / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
        settings = Settings.model_validate({"data_dir": self.data, "store": {"database": database}})
        services = open_services(settings)
        try:
            asyncio.run(self._account(services))
        finally:
            services.close()
        self.process: subprocess.Popen[str] | None = None

    @staticmethod
    async def _account(services: Any) -> None:
        await services.accounts.add_domain("example.test")
        await services.accounts.add_account(USER, password=None)

    def start(self) -> int:
        self.process, port = start_serve(self.data, "lmtp")
        return port

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process, all threads, and of its descendants
        (the fork server and the parse workers)."""
        assert self.process is not None
        return _cpu_seconds(process_tree(self.process.pid))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


_DOVECOT_CONFIG = """\
base_dir = {root}/run
log_path = {root}/dovecot.log
protocols = lmtp
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
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of each process (Linux /proc), in seconds; 0 for a gone process."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DovecotLmtp:
    """A throw-away Dovecot whose only service is LMTP on a loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root / "dovecot"
        (self.root / "mail").mkdir(parents=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            internal, login = "dovecot", "dovenull"
        else:
            user = pwd.getpwuid(os.geteuid())
            internal = login = user.pw_name
        os.chown(self.root / "mail", user.pw_uid, user.pw_gid)
        for directory in (self.root, *self.root.parents):
            if directory == Path("/"):
                break
            directory.chmod(directory.stat().st_mode | 0o011)
        self.port = _free_port()
        self.config = self.root / "dovecot.conf"
        self.config.write_text(
            _DOVECOT_CONFIG.format(
                root=self.root,
                internal=internal,
                login=login,
                uid=user.pw_uid,
                gid=user.pw_gid,
                port=self.port,
            )
        )

    def start(self) -> int:
        subprocess.run(
            ["dovecot", "-c", str(self.config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.port
            except OSError:
                if time.monotonic() > deadline:
                    log = (self.root / "dovecot.log").read_text(errors="replace")
                    raise RuntimeError(f"dovecot did not start:\n{log}") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU of the running ``lmtp`` service processes (Dovecot forks
        them per connection; the master and auth processes are not counted)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    command = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if command and command[0].endswith(b"dovecot/lmtp"):
                    pids.append(int(entry.name))
        return _cpu_seconds(pids)

    def stop(self) -> None:
        subprocess.run(
            ["doveadm", "-c", str(self.config), "stop"], check=False, capture_output=True
        )


def dovecot_missing() -> str | None:
    if shutil.which("dovecot") is None:
        return "dovecot not found (apt-get install dovecot-lmtpd)"
    if not Path("/usr/lib/dovecot/lmtp").exists():
        return "Dovecot's lmtp service not found (apt-get install dovecot-lmtpd)"
    return None


# -- the run ------------------------------------------------------------------------


def run(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    messages = [
        corpus.with_trace(message.raw, "smtp", number)
        for number, message in enumerate(
            corpus.generate(arguments.messages, seed=arguments.seed, size=arguments.size)
        )
    ]
    results: list[dict[str, Any]] = []
    servers: list[str] = ["hirondelle"]
    if arguments.compare_dovecot:
        missing = dovecot_missing()
        if missing:
            raise SystemExit(f"error: {missing}")
        servers.append("dovecot")
    # Servers alternate within each concurrency and round, so that both meet about the
    # same machine load (the VM is shared); the ratio is taken within a round.
    for round_number in range(1, arguments.rounds + 1):
        for concurrency in arguments.concurrency:
            for name in servers:
                _run_one(arguments, messages, name, concurrency, round_number, results)
    if arguments.compare_dovecot:
        _print_ratios(results)
    return results


def _run_one(
    arguments: argparse.Namespace,
    messages: list[bytes],
    name: str,
    concurrency: int,
    round_number: int,
    results: list[dict[str, Any]],
) -> None:
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-smtp-")))
        # A PostgreSQL URL names the server: each run gets its own database,
        # dropped at the end, never the one in the URL.
        database = stack.enter_context(throwaway_database(arguments.database or "sqlite", root))
        server: HirondelleServer | DovecotLmtp = (
            HirondelleServer(root, database, arguments.parse_processes)
            if name == "hirondelle"
            else DovecotLmtp(root)
        )
        port = server.start()
        try:
            if arguments.warmup:
                # Steady state is measured: both servers first take a few messages
                # (Hirondelle's parse workers, Dovecot's lmtp processes come up).
                warmup = [
                    corpus.with_trace(raw, "warmup", number)
                    for number, raw in enumerate(messages[: arguments.warmup])
                ]
                asyncio.run(deliver_all(port, warmup, concurrency, chunking=arguments.chunking))
                time.sleep(SETTLE_S)
            cpu_before = server.cpu_seconds()
            seconds = asyncio.run(
                deliver_all(port, messages, concurrency, chunking=arguments.chunking)
            )
            # The CPU counts the work a server defers past its replies (Hirondelle
            # indexes new mail for search in batches, up to half a second later).
            time.sleep(SETTLE_S)
            cpu = server.cpu_seconds() - cpu_before
        finally:
            server.stop()
    results.append(
        {
            "server": name,
            "concurrency": concurrency,
            "messages": len(messages),
            "seconds": round(seconds, 3),
            "messages_per_second": round(len(messages) / seconds, 1),
            "server_cpu_ms_per_message": round(cpu * 1000 / len(messages), 2),
            "chunking": arguments.chunking,
            "message_size": arguments.size or "corpus mix",
            "parse_processes": arguments.parse_processes,
            "round": round_number,
            "load_average": round(os.getloadavg()[0], 1),
            "database": "postgresql" if arguments.database else "sqlite",
        }
    )
    row = results[-1]
    print(
        f"round {round_number} {name:<10} concurrency {concurrency:>3}: "
        f"{row['messages']} messages in "
        f"{row['seconds']:.2f} s = {row['messages_per_second']:.0f} msg/s, "
        f"server CPU {row['server_cpu_ms_per_message']:.2f} ms/msg, "
        f"load {row['load_average']}",
        flush=True,
    )


def _print_ratios(results: list[dict[str, Any]]) -> None:
    """Hirondelle / Dovecot per round and concurrency, and the median over rounds."""
    rate = {
        (row["round"], row["concurrency"], row["server"]): row["messages_per_second"]
        for row in results
    }
    for concurrency in sorted({row["concurrency"] for row in results}):
        ratios = sorted(
            rate[(r, concurrency, "hirondelle")] / rate[(r, concurrency, "dovecot")]
            for r in sorted({row["round"] for row in results})
        )
        median = statistics.median(ratios)
        listed = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(f"concurrency {concurrency:>3}: ratio to Dovecot {listed}; median {median:.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.smtp", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--database",
        default="",
        help="empty: SQLite; or a PostgreSQL URL (a throw-away database is created there)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="messages delivered before the measurement starts (not counted)",
    )
    parser.add_argument(
        "--parse-processes",
        type=int,
        default=None,
        help="Hirondelle's [server] parse_processes (0: parse on threads); default: its own",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="every message about this many bytes (issue 3 asks for 10 KB: --size 10240); "
        "default: the bench.corpus mix (2-20 KB text, 10%% with a 50-500 KB attachment)",
    )
    parser.add_argument("--compare-dovecot", action="store_true")
    parser.add_argument(
        "--chunking",
        action="store_true",
        help="send each message with BDAT LAST (RFC 3030), MAIL and RCPT pipelined",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the whole comparison; medians printed"
    )
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args(argv)
    results = run(arguments)
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
