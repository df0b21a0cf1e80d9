"""`hirondelle init`, `serve` and `demo`, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
from pathlib import Path

import pytest

from hirondelle import tls
from hirondelle.config import load_settings
from hirondelle.identity.authentication import Outcome
from hirondelle.node import FRONT_ENDS
from tests.cli.conftest import (
    DOMAIN,
    HOSTNAME,
    Result,
    ServerProcess,
    http_get,
    login,
    run_cli,
    set_listen,
)

# Every listener this version has, on a free loopback port: `init` writes the standard
# (privileged, shared) ports for each of them.
# A clean stop takes well under a second on a quiet machine; the margin is for a loaded CI
# machine, where the interpreter's own exit can take seconds. A hang still fails.
STOP_TIMEOUT = 20

LOOPBACK_ENV = {f"HIRONDELLE_LISTEN_{name.upper()}": "127.0.0.1:0" for name in FRONT_ENDS}


# -- init -----------------------------------------------------------------------------


def test_init_creates_config_database_certificate(initialised: tuple[Path, Result]) -> None:
    data, result = initialised
    assert (data / "hirondelle.toml").is_file()
    assert (data / "hirondelle.sqlite3").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert result.stdout.splitlines()[0] == f"initialised {data}"
    assert f"next: hirondelle --data {data} account add postmaster@{DOMAIN}" in result.stdout
    settings = load_settings(data, environ={})
    assert settings.server.hostname == HOSTNAME
    assert settings.server.default_domain == DOMAIN
    assert stat.S_IMODE(settings.key_path().stat().st_mode) & 0o077 == 0
    info = tls.certificate_info(settings.certificate_path())
    assert HOSTNAME in info.sans
    assert info.self_signed


def test_init_default_hostname_is_mail_dot_domain(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    run_cli("--data", data, "init", "--domain", "Example.ORG")
    settings = load_settings(data, environ={})
    assert settings.server.hostname == "mail.example.org"
    assert "mail.example.org" in tls.certificate_info(settings.certificate_path()).sans


# -- serve ----------------------------------------------------------------------------


def check_http(address: tuple[str, int]) -> None:
    status, body, _ = http_get(*address, "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def check_https(address: tuple[str, int], data: Path) -> None:
    cafile = load_settings(data, environ={}).certificate_path()
    context = tls.client_context(cafile=cafile)
    status, body, version = http_get(
        *address, "/healthz", context=context, server_hostname=HOSTNAME
    )
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    assert version in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    ("configured_by", "stop_signal"),
    [("config-file", signal.SIGTERM), ("environment", signal.SIGINT)],
    ids=["toml-SIGTERM", "env-SIGINT"],
)
def test_serve_announces_answers_and_stops(
    data: Path, configured_by: str, stop_signal: signal.Signals
) -> None:
    """http and https on ephemeral ports, set in hirondelle.toml or in the environment."""
    if configured_by == "config-file":
        set_listen(data, http="127.0.0.1:0", https="127.0.0.1:0")
        env = {}
    else:
        env = LOOPBACK_ENV
    with ServerProcess("--data", data, "serve", env=env) as server:
        addresses = server.wait_listening("http", "https")
        assert {host for host, _ in addresses.values()} == {"127.0.0.1"}
        assert all(port > 0 for _, port in addresses.values())
        check_http(addresses["http"])
        check_https(addresses["https"], data)
        with socket.create_connection(addresses["http"], timeout=10) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")
            # This keep-alive connection stays open while the server stops.
            assert server.stop(stop_signal, timeout=STOP_TIMEOUT) == 0
    assert server.lines == [
        f"listening {name} {host}:{port}" for name, (host, port) in addresses.items()
    ]
    assert "Traceback" not in "\n".join(server.stderr_lines)


@pytest.mark.parametrize("signals", [1, 2], ids=["once", "twice"])
def test_a_signal_right_after_the_first_announcement_stops_cleanly(
    data: Path, signals: int
) -> None:
    """Regression: SIGTERM sent as soon as "listening" was printed killed the server (exit
    -15): the handlers were installed only after start had bound every listener, pruned the
    audit log and loaded push subscriptions. A second SIGTERM during shutdown must not kill
    it either."""
    set_listen(data, **dict.fromkeys(FRONT_ENDS, "127.0.0.1:0"))
    with ServerProcess("--data", data, "serve") as server:
        server.wait_for(r"^listening ")
        for _ in range(signals - 1):
            server.process.send_signal(signal.SIGTERM)
        assert server.stop(signal.SIGTERM, timeout=STOP_TIMEOUT) == 0, server.describe()
    assert "Traceback" not in "\n".join(server.stderr_lines)


# -- demo -----------------------------------------------------------------------------


def run_demo(tmp_path: Path, *, keep: bool) -> tuple[Path, str]:
    """Start `demo`, check it answers, stop it; its data directory and printed password."""
    args = ["demo", "--keep"] if keep else ["demo"]
    with ServerProcess(*args, env={"TMPDIR": str(tmp_path)}) as server:
        addresses = server.wait_listening("http", "https")
        data = Path(server.wait_for(r"^\s+data directory\s+(\S+)$").group(1))
        assert server.wait_for(r"^\s+account\s+(\S+)$").group(1) == "demo@example.test"
        password = server.wait_for(r"^\s+password\s+(\S+)$").group(1)
        assert data.parent == tmp_path
        check_http(addresses["http"])
        assert server.stop(signal.SIGTERM, timeout=STOP_TIMEOUT) == 0
    assert "Traceback" not in "\n".join(server.stderr_lines)
    return data, password


@pytest.fixture
def kept_demo(tmp_path: Path) -> tuple[Path, str]:
    return run_demo(tmp_path, keep=True)


async def test_demo_password_authenticates(kept_demo: tuple[Path, str]) -> None:
    data, password = kept_demo
    assert data.is_dir()
    assert await login(data, "demo@example.test", password) is Outcome.SUCCESS
    assert await login(data, "demo@example.test", password + "x") is Outcome.FAILED


def test_demo_removes_its_data_directory(tmp_path: Path) -> None:
    data, _ = run_demo(tmp_path, keep=False)
    assert not data.exists()
    assert os.listdir(tmp_path) == []
