"""`hirondelle account app-password` and `hirondelle audit`, run as the real console
script on a data directory (SQLite: the commands add nothing backend-specific to what
tests/identity/test_gate.py checks on both backends)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from hirondelle.identity.authentication import Outcome
from tests.cli.conftest import BOB, BOB_PASSWORD, base, data, initialised, login, run_cli

__all__ = ["base", "data", "initialised"]  # the fixtures, for pytest

PASSWORD_RE = re.compile(r"^password: (\S+)  \(shown once\)$", re.MULTILINE)


def add(data: Path, *args: str) -> str:
    result = run_cli("--data", data, "account", "app-password", "add", BOB, *args)
    match = PASSWORD_RE.search(result.stdout)
    assert match is not None, result.stdout
    return match.group(1)


def test_app_password_add_shows_it_once_and_it_logs_in(data: Path) -> None:
    secret = add(data, "--label", "Phone", "--protocols", "imap,smtp")
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", secret)
    assert asyncio.run(login(data, BOB, secret, "imap")) is Outcome.SUCCESS
    assert asyncio.run(login(data, BOB, secret, "pop3")) is Outcome.FAILED
    listing = run_cli("--data", data, "account", "app-password", "list", BOB).stdout
    assert secret not in listing
    [row] = [line.split() for line in listing.splitlines() if line.strip().startswith("1 ")]
    assert row[:3] == ["1", "Phone", "imap,smtp"]
    assert row[-1] == "active"


def test_app_password_revoke_stops_it(data: Path) -> None:
    secret = add(data, "--label", "Tablet")
    result = run_cli("--data", data, "account", "app-password", "revoke", BOB, "1")
    assert result.stdout == "app password 1 of bob@example.test revoked\n"
    assert asyncio.run(login(data, BOB, secret, "imap")) is Outcome.FAILED
    listing = run_cli("--data", data, "account", "app-password", "list", BOB).stdout
    assert "Tablet" not in listing
    assert (
        "Tablet" in run_cli("--data", data, "account", "app-password", "list", BOB, "--all").stdout
    )


def test_app_password_with_unknown_protocol_is_refused(data: Path) -> None:
    result = run_cli(
        "--data",
        data,
        "account",
        "app-password",
        "add",
        BOB,
        "--label",
        "X",
        "--protocols",
        "imap,gopher",
        expect=1,
    )
    assert result.stderr == (
        "error: unknown protocol gopher: choose among imap, pop3, smtp, dav, jmap\n"
    )


def test_revoking_an_unknown_app_password_fails(data: Path) -> None:
    result = run_cli("--data", data, "account", "app-password", "revoke", BOB, "7", expect=1)
    assert result.stderr == "error: no app password 7 for bob@example.test\n"


def test_audit_shows_attempts_of_one_account(data: Path) -> None:
    asyncio.run(login(data, BOB, BOB_PASSWORD, "imap"))
    asyncio.run(login(data, BOB, "wrong", "pop3"))
    asyncio.run(login(data, "eve@example.test", "wrong", "smtp"))
    output = run_cli(
        "--data", data, "audit", "--account", "Bob@Example.Test", "--since", "1h"
    ).stdout
    lines = [line.split() for line in output.splitlines()[1:] if line.strip()]
    assert [(cells[3], cells[4], cells[5]) for cells in lines] == [
        ("pop3", BOB, "failed"),
        ("imap", BOB, "success"),
    ]
    assert "eve@example.test" in run_cli("--data", data, "audit").stdout


def test_audit_with_a_bad_duration_says_how_to_write_it(data: Path) -> None:
    result = run_cli("--data", data, "audit", "--since", "yesterday", expect=1)
    assert result.stderr == (
        "error: invalid duration 'yesterday': use a number and s, m, h, d or w, e.g. 1h\n"
    )


def test_audit_prune_keeps_recent_attempts(data: Path) -> None:
    asyncio.run(login(data, BOB, BOB_PASSWORD, "imap"))
    assert run_cli("--data", data, "audit", "prune").stdout == "0 audit rows removed\n"
    assert "success" in run_cli("--data", data, "audit").stdout
