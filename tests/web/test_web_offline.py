"""The administrator's switch for the webmail's offline copy, per domain and per account:
the policy on both backends, and `hirondelle account|domain set --web-offline` as a real
subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from hirondelle.config import load_settings
from hirondelle.errors import Refused
from hirondelle.identity.web_offline import WebOfflinePolicy
from hirondelle.services import Services, open_services
from tests.cli.conftest import BOB, DOMAIN, base, data, initialised, run_cli

__all__ = ["base", "data", "initialised"]  # fixtures of tests/cli, used here


@pytest.fixture
async def accounts(services: Services) -> tuple[int, int]:
    await services.accounts.add_domain("example.org")
    await services.accounts.add_domain("other.example")
    alice = await services.accounts.add_account("alice@example.org", password="alice-password-1")
    carol = await services.accounts.add_account("carol@other.example", password="carol-password-1")
    return alice.id, carol.id


async def test_allowed_by_default(services: Services, accounts: tuple[int, int]) -> None:
    policy = WebOfflinePolicy(services.database)
    assert await policy.allowed(accounts[0]) is True
    state = await policy.state("alice@example.org")
    assert (state.account, state.domain, state.allowed) == (None, None, True)


async def test_account_switch_touches_only_that_account(
    services: Services, accounts: tuple[int, int]
) -> None:
    policy = WebOfflinePolicy(services.database)
    state = await policy.set_account("Alice@Example.org", allowed=False)
    assert (state.address, state.allowed) == ("alice@example.org", False)
    assert await policy.allowed(accounts[0]) is False
    assert await policy.allowed(accounts[1]) is True
    await policy.set_account("alice@example.org", allowed=True)
    assert await policy.allowed(accounts[0]) is True


async def test_domain_switch_wins_over_the_account(
    services: Services, accounts: tuple[int, int]
) -> None:
    policy = WebOfflinePolicy(services.database)
    await policy.set_account("alice@example.org", allowed=True)
    await policy.set_domain("EXAMPLE.org", allowed=False)
    assert await policy.allowed(accounts[0]) is False
    assert await policy.allowed(accounts[1]) is True
    state = await policy.state("alice@example.org")
    assert (state.account, state.domain, state.allowed) == (True, False, False)
    await policy.set_domain("example.org", allowed=True)
    assert await policy.allowed(accounts[0]) is True


async def test_unknown_names_are_refused(services: Services, accounts: tuple[int, int]) -> None:
    policy = WebOfflinePolicy(services.database)
    with pytest.raises(Refused):
        await policy.set_account("nobody@example.org", allowed=False)
    with pytest.raises(Refused):
        await policy.set_domain("nowhere.example", allowed=False)


async def test_removing_the_account_removes_its_switch(
    services: Services, accounts: tuple[int, int]
) -> None:
    policy = WebOfflinePolicy(services.database)
    await policy.set_account("alice@example.org", allowed=False)
    await services.accounts.remove_account("alice@example.org")
    again = await services.accounts.add_account("alice@example.org", password="alice-password-1")
    assert await policy.allowed(again.id) is True


async def switches_in(directory: Path, address: str) -> tuple[bool | None, bool | None]:
    services = open_services(load_settings(directory))
    try:
        state = await WebOfflinePolicy(services.database).state(address)
    finally:
        services.close()
    return state.account, state.domain


async def test_cli_account_and_domain_switches(data: Path) -> None:
    result = run_cli("--data", data, "account", "set", BOB, "--web-offline", "off")
    assert f"account {BOB}: web offline off\n" in result.stdout
    domain = run_cli("--data", data, "domain", "set", DOMAIN, "--web-offline", "off")
    assert domain.stdout == f"domain {DOMAIN}: web offline off\n"
    assert await switches_in(data, BOB) == (False, False)
    shadowed = run_cli("--data", data, "account", "set", BOB, "--web-offline", "on")
    assert "(the domain forbids it)" in shadowed.stdout
    assert await switches_in(data, BOB) == (True, False)
    missing = run_cli(
        "--data", data, "domain", "set", "nowhere.test", "--web-offline", "off", expect=1
    )
    assert "nowhere.test" in missing.stdout + missing.stderr
