"""Every error of the `hirondelle` command: one line on stderr starting with ``error:``,
a non-zero exit status, never a traceback.

The failing commands are independent, so they run once, concurrently, each on its own
copy of the initialised data directory (``outcomes``); each case then has two tests:
the shape of the error (one line, no traceback) and its exact message.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli.conftest import (
    BOB,
    Result,
    free_port_holder,
    line_number,
    run_cli,
    set_listen,
)


@dataclass(frozen=True)
class Case:
    """One failing command.

    ``args`` and ``expected`` may hold ``{data}`` (the data directory), ``{port}`` (a
    port in use) and ``{line}`` (the line of the config starting with ``line_of``).
    ``expected`` is the whole error line, or a part of it when ``partial``.
    """

    args: tuple[str, ...]
    expected: str
    input: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    listen: dict[str, str] | None = None  # replaces [listen] in the config
    line_of: str | None = None
    data: str = "copy"  # or "empty" (a directory without a config) or "missing"
    partial: bool = False
    bad_shape: str = ""  # xfail reason for the shape test
    bad_message: str = ""  # xfail reason for the message test


NO_CONFIG = (
    "error: no configuration at {data}/hirondelle.toml; run `hirondelle --data {data} init` first"
)
LOOPBACK = {"http": "127.0.0.1:0", "https": "127.0.0.1:0"}

CASES: dict[str, Case] = {
    "account add, unknown domain": Case(
        ("account", "add", "x@unknown.test"),
        "error: unknown domain unknown.test: add it first with `domain add`",
    ),
    "account add, duplicate": Case(
        ("account", "add", "BOB@Example.Test", "--password-stdin"),
        f"error: account {BOB} already exists",
        input="another-password-1\n",
    ),
    "account add, not an address": Case(
        ("account", "add", "not-an-address"),
        "error: invalid address 'not-an-address': expected local-part@domain",
    ),
    "account add, a@b": Case(("account", "add", "a@b"), "error: invalid domain name 'b'"),
    "account add, password too short": Case(
        ("account", "add", "carol@example.test", "--password-stdin"),
        "error: password too short: at least 10 characters / mot de passe trop court : au "
        "moins 10 caractères",
        input="short\n",
    ),
    "account add, empty stdin": Case(
        ("account", "add", "carol@example.test", "--password-stdin"),
        "error: no password on standard input",
        input="",
    ),
    "account add, bad quota": Case(
        ("account", "add", "carol@example.test", "--quota", "12X"),
        "error: invalid quota '12X': invalid size '12X': "
        "expected a whole number with an optional unit K, M, G or T, e.g. '50M'",
    ),
    "account show, unknown": Case(
        ("account", "show", "nobody@example.test"), "error: no account nobody@example.test"
    ),
    "account passwd, unknown": Case(
        ("account", "passwd", "nobody@example.test", "--password-stdin"),
        "error: no account nobody@example.test",
        input="a-long-password\n",
    ),
    "account remove, unknown": Case(
        ("account", "remove", "nobody@example.test"), "error: no account nobody@example.test"
    ),
    "account set, unknown": Case(
        ("account", "set", "nobody@example.test", "--imap", "off"),
        "error: no account nobody@example.test",
    ),
    "account set, quota too large": Case(
        ("account", "set", BOB, "--quota", "99999999999T"),
        "error: invalid quota '99999999999T'",
        partial=True,
    ),
    "account set, bad switch value": Case(
        ("account", "set", BOB, "--imap", "maybe"),
        "--imap",
        partial=True,
    ),
    "domain add, duplicate": Case(
        ("domain", "add", "EXAMPLE.TEST"), "error: domain example.test already exists"
    ),
    "domain remove, has accounts": Case(
        ("domain", "remove", "example.test"),
        "error: domain example.test still has 1 account(s); remove them first",
    ),
    "alias add, to itself": Case(
        ("alias", "add", "loop@example.test", "loop@example.test"),
        "error: alias loop@example.test cannot point to itself",
    ),
    "alias add, unknown domain": Case(
        ("alias", "add", "info@unknown.test", BOB),
        "error: unknown domain unknown.test: add it first with `domain add`",
    ),
    "alias add, name of an account": Case(
        ("alias", "add", BOB, "other@example.test"), f"error: {BOB} is an account, not an alias"
    ),
    "no config, empty directory": Case(
        ("account", "list"),
        NO_CONFIG,
        data="empty",
    ),
    "init, already initialised": Case(
        ("init", "--domain", "example.test"),
        "error: {data} is already initialised ({data}/hirondelle.toml exists)",
    ),
    "init, bad domain": Case(
        ("init", "--domain", "bad domain"),
        "error: invalid domain name 'bad domain'",
        data="missing",
    ),
    "serve, port in use": Case(
        ("serve",),
        "error: cannot listen on 127.0.0.1:{port}: Address already in use",
        listen={"http": "127.0.0.1:{port}", "https": "127.0.0.1:0"},
    ),
    "serve, bad port in config": Case(
        ("serve",),
        'error: hirondelle.toml line {line}: [listen] http = "127.0.0.1:99999": '
        "port must be between 0 and 65535",
        listen={**LOOPBACK, "http": "127.0.0.1:99999"},
        line_of="http =",
    ),
    "serve, unknown key in config": Case(
        ("serve",),
        'error: hirondelle.toml line {line}: unknown key "htp" in [listen] (did you mean "http"?)',
        listen={"htp": "127.0.0.1:0", "https": "127.0.0.1:0"},
        line_of="htp =",
    ),
    "serve, bad port in environment": Case(
        ("serve",),
        'error: environment variable HIRONDELLE_LISTEN_HTTPS="127.0.0.1:99999": '
        "port must be between 0 and 65535",
        env={"HIRONDELLE_LISTEN_HTTP": "127.0.0.1:0", "HIRONDELLE_LISTEN_HTTPS": "127.0.0.1:99999"},
    ),
}


@dataclass(frozen=True)
class Ran:
    result: Result
    expected: str


def _prepare(case: Case, base: Path, work: Path, port: int) -> Callable[[], Ran]:
    data = work / "data"
    if case.data == "copy":
        shutil.copytree(base, data)
    elif case.data == "empty":
        data.mkdir(parents=True)
    values = {"data": str(data), "port": str(port), "line": ""}
    if case.listen is not None:
        set_listen(data, **{name: value.format(**values) for name, value in case.listen.items()})
    if case.line_of is not None:
        values["line"] = str(line_number(data / "hirondelle.toml", case.line_of))
    args = [arg.format(**values) for arg in case.args]

    def call() -> Ran:
        result = run_cli("--data", data, *args, input=case.input, env=case.env, expect=None)
        return Ran(result, case.expected.format(**values))

    return call


@pytest.fixture(scope="module")
def outcomes(
    initialised: tuple[Path, Result], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Ran]]:
    """Run every case once, concurrently."""
    base = initialised[0]
    root = tmp_path_factory.mktemp("cli-errors")
    with free_port_holder() as holder:
        port = holder.getsockname()[1]
        calls = {
            name: _prepare(case, base, root / f"case{index}", port)
            for index, (name, case) in enumerate(CASES.items())
        }
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {name: pool.submit(call) for name, call in calls.items()}
            yield {name: future.result() for name, future in futures.items()}


def _params(reason_field: str) -> list[object]:
    params: list[object] = []
    for name, case in CASES.items():
        reason = getattr(case, reason_field)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", _params("bad_shape"))
def test_error_is_one_line_without_traceback(outcomes: dict[str, Ran], name: str) -> None:
    result = outcomes[name].result
    assert result.error_line  # non-zero exit, one line, "error: ", no traceback
    assert result.stdout == "", result.describe()


@pytest.mark.parametrize("name", _params("bad_message"))
def test_error_message(outcomes: dict[str, Ran], name: str) -> None:
    outcome = outcomes[name]
    line = outcome.result.error_line
    if CASES[name].partial:
        assert outcome.expected in line
    else:
        assert line == outcome.expected


def test_failed_init_leaves_nothing(outcomes: dict[str, Ran]) -> None:
    data = Path(outcomes["init, bad domain"].result.args[1])
    assert not data.exists()
