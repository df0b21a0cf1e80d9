"""Helpers for black-box tests of the ``hirondelle`` command, run as a real subprocess.

``run_cli`` runs one command and asserts its exit status (0 unless told otherwise), so a
test cannot silently pass; ``ServerProcess`` runs ``serve`` or ``demo`` in the
background, reads its output lines with a timeout and always kills it at exit.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest

from hirondelle.config import load_settings
from hirondelle.identity.authentication import Outcome
from hirondelle.services import open_services

HIRONDELLE = Path(sys.executable).parent / "hirondelle"

DOMAIN = "example.test"
HOSTNAME = "mx.example.test"
BOB = f"bob@{DOMAIN}"
BOB_PASSWORD = "bob-password-1"

LISTENING_RE = re.compile(r"^listening (\S+) (\S+):(\d+)$")


def cli_environment(extra: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """This process's environment without any ``HIRONDELLE_*`` variable, plus ``extra``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HIRONDELLE_")}
    environment.update({"PYTHONUNBUFFERED": "1", "TERM": "dumb", "COLUMNS": "200"})
    environment.update(extra or {})
    environment.update(overrides)
    return environment


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ hirondelle {' '.join(self.args)}\n[exit {self.returncode}]\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    @property
    def error_line(self) -> str:
        """The one ``error:`` line on stderr; asserts there is exactly one, no traceback."""
        assert self.returncode != 0, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.describe()
        assert lines[0].startswith("error: "), self.describe()
        return lines[0]


def run_cli(
    *args: str | Path,
    input: str | None = None,
    expect: int | None = 0,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Result:
    """Run ``hirondelle ARGS`` and assert its exit status is ``expect`` (None: any)."""
    arguments = tuple(str(arg) for arg in args)
    completed = subprocess.run(
        [str(HIRONDELLE), *arguments],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        env=cli_environment(env),
        timeout=timeout,
        check=False,
    )
    result = Result(arguments, completed.returncode, completed.stdout, completed.stderr)
    if expect is not None:
        assert result.returncode == expect, result.describe()
        if expect == 0:
            assert "Traceback" not in result.stderr, result.describe()
    return result


class ServerProcess:
    """``hirondelle ARGS`` (serve or demo) in the background, its output read line by line.

    Use as a context manager; the process is killed at exit if it is still running.
    """

    def __init__(self, *args: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.args = tuple(str(arg) for arg in args)
        self.env = cli_environment(env)
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "the server is not started"
        return self._process

    def __enter__(self) -> ServerProcess:
        self._process = subprocess.Popen(
            [str(HIRONDELLE), *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self._process.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self._process.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)

    def _pump(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            if is_stdout:
                self._queue.put(line.rstrip("\n"))
            else:
                self.stderr_lines.append(line.rstrip("\n"))
        if is_stdout:
            self._queue.put(None)

    def describe(self) -> str:
        return (
            f"$ hirondelle {' '.join(self.args)}\n[exit {self.process.poll()}]\n"
            "--- stdout ---\n"
            + "\n".join(self.lines)
            + "\n--- stderr ---\n"
            + "\n".join(self.stderr_lines)
        )

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 30) -> re.Match[str]:
        """The next stdout line matching ``pattern`` (re.search); fails at EOF or timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line matching {regex.pattern!r} in {timeout} s\n{self.describe()}"
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)  # stays at end of output for later calls
                self.process.wait(timeout=10)
                raise AssertionError(f"output ended before {regex.pattern!r}\n{self.describe()}")
            self.lines.append(line)
            if match := regex.search(line):
                return match

    def wait_listening(self, *names: str, timeout: float = 30) -> dict[str, tuple[str, int]]:
        """Wait for ``listening NAME HOST:PORT`` for each of ``names``; their addresses."""
        found: dict[str, tuple[str, int]] = {}
        deadline = time.monotonic() + timeout
        while set(names) - set(found):
            match = self.wait_for(LISTENING_RE, timeout=max(deadline - time.monotonic(), 0.01))
            found[match.group(1)] = (match.group(2), int(match.group(3)))
        return found

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``signum`` and return the exit status; fails if it takes over ``timeout``."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout} s after {signum.name}\n{self.describe()}"
            ) from None


def free_port_holder() -> socket.socket:
    """A socket listening on an ephemeral loopback port, for "port in use" tests."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    return holder


def set_listen(data: Path, **listeners: str) -> None:
    """Replace the [listen] section of DATA/hirondelle.toml with ``listeners``."""
    config = data / "hirondelle.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index("[listen]\n")
    end = text.index("\n[", start + 1)
    body = "".join(f'{name} = "{value}"\n' for name, value in listeners.items())
    config.write_text(text[:start] + "[listen]\n" + body + text[end:], encoding="utf-8")


def line_number(path: Path, prefix: str) -> int:
    """The 1-based number of the first line of ``path`` starting with ``prefix``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(prefix):
            return number
    raise AssertionError(f"no line starting with {prefix!r} in {path}")


def http_get(
    host: str,
    port: int,
    path: str,
    *,
    context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[int, bytes, str | None]:
    """One HTTP/1.1 GET: (status, body, TLS version or None)."""
    with socket.create_connection((host, port), timeout=10) as raw:
        sock: socket.socket = raw
        version = None
        if context is not None:
            sock = context.wrap_socket(raw, server_hostname=server_hostname or host)
            version = sock.version()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {server_hostname or host}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return status, body, version


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


async def login(data: Path, address: str, password: str, protocol: str = "imap") -> Outcome:
    """What the authentication gate of the data directory ``data`` says to this login."""
    services = open_services(load_settings(data, environ={}))
    try:
        result = await services.authenticator.authenticate(address, password, protocol=protocol)
    finally:
        services.close()
    return result.outcome


def field(output: str, name: str) -> str:
    """The value of row ``name`` in the output of ``account show``."""
    for line in output.splitlines():
        key, _, value = line.partition("  ")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"no row {name!r} in:\n{output}")


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Result]]:
    """A data directory set up once: `init` for example.test and the account bob.

    Read-only: tests that change anything use ``data``, a copy of it.
    """
    data = tmp_path_factory.mktemp("cli-base") / "data"
    init = run_cli("--data", data, "init", "--domain", DOMAIN, "--hostname", HOSTNAME)
    run_cli(
        "--data",
        data,
        "account",
        "add",
        BOB,
        "--name",
        "Bob",
        "--password-stdin",
        input=f"{BOB_PASSWORD}\n",
    )
    yield data, init


@pytest.fixture
def base(initialised: tuple[Path, Result]) -> Path:
    return initialised[0]


@pytest.fixture
def data(base: Path, tmp_path: Path) -> Path:
    """A fresh copy of the initialised data directory, for this test alone."""
    copy = tmp_path / "data"
    shutil.copytree(base, copy)
    return copy
