"""Fixtures for the identity tests: services with tight, fast rate limits, accounts, and
a node serving IMAP, POP3, SMTP submission and HTTPS (DAV, JMAP, the session API) over
implicit TLS on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pyotp
import pytest

from hirondelle import tls
from hirondelle.config import IdentitySettings, ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.services import Services, open_services
from hirondelle.store import credentials
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.directory import Account

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
PASSWORD = "correct horse battery"
# Small numbers keep the tests fast; the logic is the same as with the defaults.
IDENTITY = {
    "account_failures": 5,
    "address_failures": 8,
    "failure_window_seconds": 600,
    "lockout_seconds": 60,
    "max_lockout_seconds": 240,
}


@pytest.fixture
def identity_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"identity": IdentitySettings.model_validate(IDENTITY)})


@pytest.fixture
async def services(identity_settings: Settings) -> AsyncIterator[Services]:
    opened = open_services(identity_settings)
    try:
        yield opened
    finally:
        opened.close()


async def make_account(services: Services, address: str = ALICE) -> Account:
    domain = address.split("@", 1)[1]
    if domain not in [d.name for d, _ in await services.accounts.list_domains()]:
        await services.accounts.add_domain(domain)
    await services.accounts.add_account(address, password=PASSWORD)
    return await services.accounts.update_account(
        address, switches={"imap": True, "pop3": True, "smtp": True, "dav": True, "web": True}
    )


async def add_second_factor(services: Services, account: Account) -> None:
    """A second-factor row without any usable detail, set in the store directly: what
    the login gate looks at (:func:`enrol_totp` enrols a real one)."""

    def write(ctx: WriteContext) -> None:
        credentials.add_second_factor(ctx, account.id, "totp", now_us())

    await services.database.write(write)


async def enrol_totp(services: Services, account: Account) -> tuple[str, list[str]]:
    """Enrol an authenticator app as the settings screen does; returns its secret and
    the recovery codes."""
    enrolment = await services.second_factors.begin_totp(account)
    codes = await services.second_factors.confirm_totp(account, pyotp.TOTP(enrolment.secret).now())
    return enrolment.secret, codes


@pytest.fixture
async def alice(services: Services) -> Account:
    return await make_account(services)


@pytest.fixture
async def node(identity_settings: Settings) -> AsyncIterator[Node]:
    tls.generate_self_signed(
        identity_settings.certificate_path(), identity_settings.key_path(), hostname="localhost"
    )
    listen = ListenSettings.model_validate(
        {
            "imaps": "127.0.0.1:0",
            "pop3s": "127.0.0.1:0",
            "submissions": "127.0.0.1:0",
            "https": "127.0.0.1:0",
        }
    )
    running = Node(identity_settings.model_copy(update={"listen": listen}))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def node_services(node: Node) -> Services:
    assert node.services is not None
    return node.services
