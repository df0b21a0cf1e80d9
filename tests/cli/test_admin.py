"""`hirondelle domain|account|alias`: what each command does, seen through the command
itself and through the authentication gate of the data directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hirondelle.identity.authentication import Outcome
from tests.cli.conftest import BOB, BOB_PASSWORD, DOMAIN, field, login, run_cli

PASSWORD_RE = re.compile(r"^password: (\S+)  \(shown once\)$", re.MULTILINE)


def rows(listing: str) -> dict[str, list[str]]:
    """The rows of a table printed by a `list` command, by first column (header skipped)."""
    lines = [line.split() for line in listing.splitlines() if line.strip()]
    return {cells[0]: cells[1:] for cells in lines[1:]}


# -- domains --------------------------------------------------------------------------


def test_domain_add_list_remove(data: Path) -> None:
    added = run_cli("--data", data, "domain", "add", "Example.ORG")
    assert added.stdout == "domain example.org added\n"
    listed = rows(run_cli("--data", data, "domain", "list").stdout)
    assert listed["example.org"][0] == "0"
    assert listed[DOMAIN][0] == "1"
    # New accounts get every protocol but POP3 (the domain default).
    assert listed["example.org"][1].split(",") == ["imap", "smtp", "dav", "web"]
    removed = run_cli("--data", data, "domain", "remove", "example.org")
    assert removed.stdout == "domain example.org removed\n"
    assert set(rows(run_cli("--data", data, "domain", "list").stdout)) == {DOMAIN}


# -- accounts -------------------------------------------------------------------------


@pytest.fixture
def generated(data: Path) -> tuple[Path, str, str]:
    """`account add` without --password-stdin: its output and the password it printed."""
    result = run_cli("--data", data, "account", "add", "Carol@Example.Test", "--name", "Carol C")
    match = PASSWORD_RE.search(result.stdout)
    assert match, result.describe()
    return data, result.stdout, match.group(1)


async def test_account_add_prints_a_working_password_once(generated: tuple[Path, str, str]) -> None:
    data, stdout, password = generated
    assert stdout == f"account carol@example.test added\npassword: {password}  (shown once)\n"
    assert await login(data, "carol@example.test", password) is Outcome.SUCCESS
    assert await login(data, "carol@example.test", "wrong-password") is Outcome.FAILED


def test_account_add_with_password_stdin_prints_no_password(base: Path) -> None:
    # bob was added with --password-stdin when the base directory was set up
    shown = run_cli("--data", base, "account", "show", BOB).stdout
    assert field(shown, "address") == BOB
    assert field(shown, "name") == "Bob"
    assert field(shown, "state") == "active"
    assert field(shown, "quota") == "unlimited"
    assert BOB_PASSWORD not in shown
    # the domain default: every protocol but POP3
    switches = {p: field(shown, p) for p in ("imap", "pop3", "smtp", "dav", "web")}
    assert switches == {"imap": "on", "pop3": "off", "smtp": "on", "dav": "on", "web": "on"}


async def test_base_account_password_works(base: Path) -> None:
    assert await login(base, BOB, BOB_PASSWORD) is Outcome.SUCCESS
    assert await login(base, BOB, BOB_PASSWORD, protocol="pop3") is Outcome.PROTOCOL_DISABLED


@pytest.fixture
def changed_password(data: Path) -> tuple[Path, str]:
    new = "a brand new passphrase"
    result = run_cli("--data", data, "account", "passwd", BOB, "--password-stdin", input=f"{new}\n")
    assert result.stdout == f"password of {BOB} changed\n"
    return data, new


async def test_account_passwd_replaces_the_password(changed_password: tuple[Path, str]) -> None:
    data, new = changed_password
    assert await login(data, BOB, BOB_PASSWORD) is Outcome.FAILED
    assert await login(data, BOB, new) is Outcome.SUCCESS


async def test_account_set_switches(data: Path) -> None:
    result = run_cli("--data", data, "account", "set", BOB, "--pop3", "on", "--imap", "off")
    assert result.stdout == (
        f"account {BOB}: imap off, pop3 on, smtp on, dav on, web on, quota unlimited\n"
    )
    shown = run_cli("--data", data, "account", "show", BOB).stdout
    assert (field(shown, "imap"), field(shown, "pop3"), field(shown, "smtp")) == ("off", "on", "on")
    # and the authentication gate obeys them
    assert await login(data, BOB, BOB_PASSWORD, protocol="pop3") is Outcome.SUCCESS
    assert await login(data, BOB, BOB_PASSWORD, protocol="imap") is Outcome.PROTOCOL_DISABLED


def test_account_quota_on_add_then_unlimited(data: Path) -> None:
    run_cli(
        "--data",
        data,
        "account",
        "add",
        "dave@example.test",
        "--quota",
        "2G",
        "--password-stdin",
        input="dave-password-1\n",
    )
    listed = rows(run_cli("--data", data, "account", "list").stdout)
    # address  name  used  quota  protocols  state (dave has no name: one cell fewer)
    assert listed["dave@example.test"] == ["0B", "2.0G", "imap,smtp,dav,web", "active"]
    assert listed[BOB] == ["Bob", "0B", "unlimited", "imap,smtp,dav,web", "active"]
    result = run_cli("--data", data, "account", "set", "dave@example.test", "--quota", "none")
    assert result.stdout.endswith(", quota unlimited\n")


def test_account_remove(data: Path) -> None:
    result = run_cli("--data", data, "account", "remove", BOB.upper())
    assert result.stdout == f"account {BOB} removed\n"
    # the domain has no account left, so it can go
    run_cli("--data", data, "domain", "remove", DOMAIN)


# -- aliases --------------------------------------------------------------------------


def test_alias_add_list_remove(data: Path) -> None:
    added = run_cli("--data", data, "alias", "add", "Info@Example.Test", BOB, "ext@elsewhere.org")
    assert added.stdout == f"alias info@example.test -> {BOB}, ext@elsewhere.org\n"
    catch_all = run_cli("--data", data, "alias", "add", "@example.test", BOB)
    assert catch_all.stdout == f"alias @example.test -> {BOB}\n"
    assert rows(run_cli("--data", data, "alias", "list").stdout) == {
        "@example.test": [BOB],
        "info@example.test": [f"{BOB},", "ext@elsewhere.org"],
    }
    removed = run_cli("--data", data, "alias", "remove", "@example.test")
    assert removed.stdout == "alias @example.test removed\n"
    assert set(rows(run_cli("--data", data, "alias", "list").stdout)) == {"info@example.test"}
